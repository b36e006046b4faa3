"""Reviews and bonuses carried out on the providers through the outbox (review push),
against the stateful fakes through boto3 and httpx."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crowdledger import Ledger
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.prolific.provider import ProlificAPI, ProlificSync
from crowdledger.adapters.sync.review_outbox import bonus_token, push_reviews, settle_bonus
from crowdledger.domain.errors import CommandRefused
from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.prolific import FakeProlific

from .conftest import REJECTION

W1, W2, W3 = "A1AAAAAA", "A2BBBBBB", "A3CCCCCC"
LONG = REJECTION["feedback"]


def mturk_setup(ledger: Ledger, fake: FakeMTurk, n: int = 3) -> tuple[MTurkSync, list[str]]:
    hit = fake.add_hit(hit_type_id="3HITTYPE", sandbox=True)
    when = datetime(2026, 1, 4, tzinfo=UTC)
    ids = [fake.add_assignment(hit, w, submit_time=when) for w in (W1, W2, W3)[:n]]
    sync = MTurkSync(ledger, mturk_client(fake, sandbox=True))
    assert sync.ingest([hit], task="t").recorded == n
    return sync, ids


def push(sync: Any) -> dict[str, Any]:
    report: dict[str, Any] = push_reviews(sync, sync.provider.review_source).to_json()
    return report


def test_mturk_approve_reject_soft_reject_and_bonus_exactly_once(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, (a1, a2, a3) = mturk_setup(ledger, fake)
    ledger.approve(a1, feedback="Thanks!")
    ledger.reject(a2, feedback="Wrong answer")
    ledger.soft_reject(a3, feedback="Below the bar")
    ledger.bonus(f"mturk:{W1}", amount="0.50", submission=a1, reason="Great work", key="b1")
    report = push(sync)
    assert (report["sent"], report["succeeded"], report["failed"], report["pending"]) == (
        4,
        4,
        0,
        0,
    )
    assert [fake.assignment_status(a, sandbox=True) for a in (a1, a2, a3)] == [
        "Approved",
        "Rejected",
        "Approved",  # MTurk has no soft rejection: paid
    ]
    assert [b["BonusAmount"] for b in fake.bonuses(sandbox=True)] == ["0.50"]
    sends = [p for op, p in fake.calls if op == "SendBonus"]
    assert sends[0]["UniqueRequestToken"] == bonus_token("b1")
    # Nothing more to do: a second push sends nothing.
    assert push(sync)["sent"] == 0


def test_mturk_lost_replies_never_pay_twice(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, (a1, _a2, _a3) = mturk_setup(ledger, fake)
    ledger.approve(a1)
    ledger.bonus(f"mturk:{W1}", amount="1.00", submission=a1, reason="r", key="b-lost")
    fake.fail_next("SendBonus", kind="lost", times=9)  # every try of this push lost
    fake.fail_next("ApproveAssignment", kind="lost")
    first = push(sync)
    assert first["pending"] == 1
    assert first["succeeded"] == 1
    assert len(fake.bonuses(sandbox=True)) == 1  # paid by the first try, reply lost
    again = push(sync)  # the same token: MTurk says already granted
    assert again["succeeded"] == 1
    assert again["pending"] == 0
    assert len(fake.bonuses(sandbox=True)) == 1
    assert fake.assignment_status(a1, sandbox=True) == "Approved"


def test_mturk_refusal_is_recorded_with_the_providers_words(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, (a1, _a2, _a3) = mturk_setup(ledger, fake)
    sync.mturk.client.approve_assignment(AssignmentId=a1)  # auto-approved, say
    ledger.reject(a1, feedback="Wrong answer")
    report = push(sync)
    assert report["failed"] == 1
    assert "Submitted" in report["errors"][0]
    assert "Approved" in report["errors"][0]
    status = sync.status().to_json()
    assert status["failed_commands"][0]["kind"] == "review"
    assert push(sync)["sent"] == 0  # refused: not sent again
    (shown,) = [i for i in ledger.review_queue() if i.submission == a1]
    assert shown.status == "failed"
    assert shown.reason is not None
    assert "MTurk holds it Approved" in shown.reason


def test_mturk_override_of_a_rejection(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, (a1, _a2, _a3) = mturk_setup(ledger, fake)
    ledger.reject(a1, feedback="Wrong answer")
    push(sync)
    ledger.approve(a1, feedback="Sorry, our mistake")
    assert push(sync)["succeeded"] == 1
    approvals = [p for op, p in fake.calls if op == "ApproveAssignment"]
    assert approvals[-1]["OverrideRejection"] is True
    assert fake.assignment_status(a1, sandbox=True) == "Approved"


def test_a_submission_recorded_by_hand_stays_bookkeeping(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, _ids = mturk_setup(ledger, fake, n=1)
    ledger.record_submission(f"mturk:{W2}", task="t", submission="HANDMADE1")
    ledger.approve("HANDMADE1")
    assert push(sync)["sent"] == 0


P1, P2, P3 = f"{1:024x}", f"{2:024x}", f"{3:024x}"


def prolific_setup(
    ledger: Ledger, fake: FakeProlific, n: int = 3
) -> tuple[ProlificSync, list[str], str]:
    study = fake.add_study(status="ACTIVE")
    ids = [fake.add_submission(study, p) for p in (P1, P2, P3)[:n]]
    sync = ProlificSync(
        ledger,
        fake.client(),
        workspace=fake.workspace_id,
        study=study,
    )
    sync.prolific.api = ProlificAPI(fake.client(), sleep=lambda _s: None)
    assert sync.ingest([study], task="t").recorded == n
    return sync, ids, study


def test_prolific_bulk_approve_reject_and_bonus(ledger: Ledger) -> None:
    fake = FakeProlific()
    sync, (s1, s2, s3), _study = prolific_setup(ledger, fake)
    ledger.approve(s1)
    ledger.soft_reject(s2)
    ledger.reject(s3, **REJECTION)
    ledger.bonus(f"prolific:{P1}", amount="0.75", currency="GBP", submission=s1, reason="r")
    report = push(sync)
    assert (report["succeeded"], report["failed"], report["unknown"]) == (4, 0, 0)
    assert {k: v["status"] for k, v in fake.submissions().items()} == {
        s1: "APPROVED",
        s2: "APPROVED",
        s3: "REJECTED",
    }
    paths = [r.url.path for r in fake.requests if r.method == "POST"]
    assert sum(p.endswith("bulk-approve/") for p in paths) == 1
    assert fake.paid_bonuses() == [(P1, "0.75")]
    assert push(sync)["sent"] == 0


def test_prolific_cannot_reverse_a_rejection(ledger: Ledger) -> None:
    fake = FakeProlific()
    sync, (s1, _s2, _s3), _study = prolific_setup(ledger, fake)
    ledger.reject(s1, **REJECTION)
    push(sync)
    ledger.approve(s1)
    report = push(sync)
    assert report["failed"] == 1
    assert "cannot reverse a rejection" in report["errors"][0]
    assert fake.submissions()[s1]["status"] == "REJECTED"


def test_prolific_lost_pay_stays_unknown_until_settled(ledger: Ledger) -> None:
    fake = FakeProlific()
    sync, (s1, _s2, _s3), _study = prolific_setup(ledger, fake)
    ledger.approve(s1)
    award = ledger.bonus(f"prolific:{P1}", amount="2.00", currency="GBP", submission=s1, reason="r")
    fake.bad_reply_next("timeout", path_contains="/pay")
    report = push(sync)
    assert report["unknown"] == 1
    assert report["pending"] == 0
    assert fake.paid_bonuses() == [(P1, "2.00")]  # it was paid; the reply was lost
    status = sync.status().to_json()
    assert status["unknown"] == 1
    assert "bonus payment" in status["unknown_commands"][0]["error"]
    assert push(sync)["sent"] == 0  # never paid again blindly
    assert fake.paid_bonuses() == [(P1, "2.00")]
    settled = settle_bonus(ledger, str(award.event_id), paid=True)
    assert settled.paid
    assert settled.bonus == award.bonus
    assert push(sync)["sent"] == 0
    with pytest.raises(CommandRefused):
        settle_bonus(ledger, award.bonus, paid=False)


def test_prolific_settled_unpaid_is_paid_anew(ledger: Ledger) -> None:
    fake = FakeProlific()
    sync, (s1, _s2, _s3), _study = prolific_setup(ledger, fake)
    ledger.approve(s1)
    ledger.bonus(
        f"prolific:{P1}", amount="1.00", currency="GBP", submission=s1, reason="r", key="k"
    )
    fake.fail_next(status=500, path_contains="/pay")  # not paid, but the pusher cannot know
    assert push(sync)["unknown"] == 1
    assert fake.paid_bonuses() == []
    settle_bonus(ledger, "k", paid=False)
    assert push(sync)["succeeded"] == 1
    assert fake.paid_bonuses() == [(P1, "1.00")]


def test_sync_apply_also_sends_reviews(ledger: Ledger) -> None:
    fake = FakeMTurk()
    sync, (a1, _a2, _a3) = mturk_setup(ledger, fake)
    ledger.approve(a1)
    report = sync.apply(
        {"name": "open", "rule": {"metric": "approved_count", "comparator": ">=", "value": 0}}
    )
    assert report.succeeded >= 1
    assert fake.assignment_status(a1, sandbox=True) == "Approved"
