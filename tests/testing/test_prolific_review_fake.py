"""The Prolific fake's review, bonus and webhook endpoints, through a real ``httpx.Client``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crowdledger.testing.prolific import FakeProlific

LONG = "Your answer did not follow the instructions given at the top of the task page. " * 2
P1, P2 = f"{1:024x}", f"{2:024x}"


@pytest.fixture
def fake() -> FakeProlific:
    return FakeProlific()


@pytest.fixture
def http(fake: FakeProlific) -> Iterator[httpx.Client]:
    with fake.client() as client:
        yield client


@pytest.fixture
def study(fake: FakeProlific) -> str:
    return fake.add_study(status="ACTIVE")


def test_approve_and_reject_transitions(fake: FakeProlific, http: httpx.Client, study: str) -> None:
    one, two = fake.add_submission(study, P1), fake.add_submission(study, P2)
    assert http.post(f"submissions/{one}/transition/", json={"action": "APPROVE"}).is_success
    short = http.post(
        f"submissions/{two}/transition/",
        json={"action": "REJECT", "message": "too short", "rejection_category": "LOW_EFFORT"},
    )
    assert short.status_code == 400
    assert "message" in short.json()["error"]["detail"]
    uncategorised = http.post(
        f"submissions/{two}/transition/", json={"action": "REJECT", "message": LONG}
    )
    assert "rejection_category" in uncategorised.json()["error"]["detail"]
    rejected = http.post(
        f"submissions/{two}/transition/",
        json={"action": "REJECT", "message": LONG, "rejection_category": "LOW_EFFORT"},
    )
    assert rejected.json()["status"] == "REJECTED"
    # Transitions cannot be reverted.
    back = http.post(f"submissions/{two}/transition/", json={"action": "APPROVE"})
    assert back.status_code == 400
    assert "cannot be reverted" in back.text
    assert {s["status"] for s in fake.submissions().values()} == {"APPROVED", "REJECTED"}


def test_bulk_approve(fake: FakeProlific, http: httpx.Client, study: str) -> None:
    ids = [fake.add_submission(study, f"{n:024x}") for n in range(1, 6)]
    answer = http.post("submissions/bulk-approve/", json={"submission_ids": ids})
    assert answer.status_code == 200
    assert {s["status"] for s in fake.submissions().values()} == {"APPROVED"}


def test_bonus_is_created_then_paid_and_paying_again_pays_again(
    fake: FakeProlific, http: httpx.Client, study: str
) -> None:
    fake.add_submission(study, P1)
    created = http.post(
        "submissions/bonus-payments/", json={"study_id": study, "csv_bonuses": f"{P1},0.50"}
    )
    assert created.status_code == 201, created.text
    payment = created.json()["id"]
    assert fake.paid_bonuses() == []  # created, not paid
    assert http.post(f"bulk-bonus-payments/{payment}/pay/").status_code == 202
    assert fake.paid_bonuses() == [(P1, "0.50")]
    http.post(f"bulk-bonus-payments/{payment}/pay/")
    assert fake.paid_bonuses() == [(P1, "0.50")] * 2  # NOT idempotent
    assert fake.bonus_payments()[payment]["pays"] == 2


def test_bonus_checks_its_lines(fake: FakeProlific, http: httpx.Client, study: str) -> None:
    fake.add_submission(study, P1)
    for csv in (f"{P2},0.50", f"{P1},-1", f"{P1},abc", "nobody,1"):
        answer = http.post(
            "submissions/bonus-payments/", json={"study_id": study, "csv_bonuses": csv}
        )
        assert answer.status_code == 400, csv
    assert http.post("bulk-bonus-payments/6d0000000000000000000099/pay/").status_code == 404
    assert fake.bonus_payments() == {}


def test_a_lost_pay_reply_has_paid(fake: FakeProlific, http: httpx.Client, study: str) -> None:
    fake.add_submission(study, P1)
    payment = http.post(
        "submissions/bonus-payments/", json={"study_id": study, "csv_bonuses": f"{P1},1.00"}
    ).json()["id"]
    fake.bad_reply_next("timeout", path_contains="/pay")
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"bulk-bonus-payments/{payment}/pay/")
    assert fake.paid_bonuses() == [(P1, "1.00")]


def test_hooks_secret_and_confirmed_subscription(fake: FakeProlific, http: httpx.Client) -> None:
    types = http.get("hooks/event-types/").json()["results"]
    assert {"event_type": "submission.status.change"} in types
    secret = http.post("hooks/secrets/", json={"workspace_id": fake.workspace_id}).json()
    assert secret["value"] == fake.hook_secret()
    listed = http.get("hooks/secrets/", params={"workspace_id": fake.workspace_id}).json()
    assert "value" not in listed["results"][0]
    bad = http.post(
        "hooks/subscriptions/",
        json={
            "event_type": "submission.status.change",
            "target_url": "http://plain.example/hook",
            "workspace_id": fake.workspace_id,
        },
    )
    assert bad.status_code == 400
    made = http.post(
        "hooks/subscriptions/",
        json={
            "event_type": "submission.status.change",
            "target_url": "https://crowd.example/hooks/prolific",
            "workspace_id": fake.workspace_id,
        },
    )
    assert made.status_code == 201
    assert not made.json()["is_enabled"]
    hook = made.json()["id"]
    wrong = http.post(f"hooks/subscriptions/{hook}/", headers={"X-Hook-Secret": "guess"})
    assert wrong.status_code == 400
    confirm = http.post(
        f"hooks/subscriptions/{hook}/", headers={"X-Hook-Secret": made.headers["X-Hook-Secret"]}
    )
    assert confirm.json()["is_enabled"]
    assert fake.subscriptions()[hook]["is_enabled"]
