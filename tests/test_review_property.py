"""Every review and bonus the ledger records is carried out on the provider exactly once
(bonuses at most once, the unknown ones reported), whatever fails on the way.

Random reviews (approve, reject, soft-reject, a rejection overturned later) and bonuses
of submissions ingested from both fakes; pushes while the fakes throttle and fail every
third call and lose replies (the call takes effect, the answer never comes), and while
the pusher is killed at a random request (before or after the provider carried it out:
nothing of what it had not recorded yet is recorded, as after a SIGKILL). Pushes go on
until the outbox is quiet; an operator settles the bonuses left unknown by looking at
the provider, as ``review settle`` asks. Then:

* each submission's state on the provider is the ledger's (a soft rejection is an
  approval); the one exception, Prolific's irreversible rejection, is reported as a
  failed review in the queue;
* MTurk paid each bonus exactly once (its token makes retries safe); Prolific never paid
  one twice, and every bonus was paid once the operator had settled the unknown ones;
* every pay that went unanswered was reported (``sync status``: unknown) before it was
  settled.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crowdledger import Ledger
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.prolific.provider import ProlificAPI, ProlificSync
from crowdledger.adapters.sync.engine import Sync, sync_status
from crowdledger.adapters.sync.review_outbox import push_reviews, settle_bonus
from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.prolific import FakeProlific

from .conftest import REJECTION, Clock


class Killed(BaseException):
    """The pusher's process died (not an Exception: nothing catches it on the way)."""


class Killer:
    """Kills the pusher at its n-th provider request, before or after the provider
    carried the request out; once dead, nothing more gets recorded."""

    def __init__(self) -> None:
        self.countdown: int | None = None
        self.after = False
        self.dead = False

    def arm(self, at: int | None, after: bool) -> None:
        self.countdown, self.after, self.dead = at, after, False

    def around(self, handle: Any) -> Any:
        def handler(*args: Any) -> Any:
            if self.countdown is not None:
                self.countdown -= 1
                if self.countdown <= 0:
                    self.countdown, self.dead = None, True
                    if not self.after:
                        raise Killed
                    handle(*args)
                    raise Killed
            return handle(*args)

        return handler

    def guard(self, sync: Sync) -> None:
        """A dead process records nothing (its `finally` blocks do not run either)."""
        record, mark = sync._record, sync._mark_sent

        def guarded_record(*args: Any) -> None:
            if self.dead:
                raise Killed
            record(*args)

        def guarded_mark(*args: Any) -> None:
            if self.dead:
                raise Killed
            mark(*args)

        sync._record = guarded_record  # type: ignore[method-assign]
        sync._mark_sent = guarded_mark  # type: ignore[method-assign]


MTURK_WORKERS = [f"A{n}ZZZZZZ" for n in range(1, 6)]
PROLIFIC_WORKERS = [f"{n:024x}" for n in range(1, 6)]
ACTIONS = st.sampled_from(["none", "approve", "reject", "soft", "reject-then-approve"])
submission_plans = st.lists(
    st.tuples(ACTIONS, st.one_of(st.none(), st.sampled_from(["0.25", "1.00", "3.50"]))),
    min_size=1,
    max_size=5,
)
kills = st.lists(
    st.tuples(st.integers(min_value=1, max_value=12), st.booleans()), min_size=0, max_size=4
)


def _review(ledger: Ledger, submission: str, action: str, stage: int) -> None:
    if stage == 0 and action in ("approve",):
        ledger.approve(submission, feedback="Thanks")
    elif stage == 0 and action in ("reject", "reject-then-approve"):
        ledger.reject(submission, **REJECTION)
    elif stage == 0 and action == "soft":
        ledger.soft_reject(submission, feedback="Below the bar")
    elif stage == 1 and action == "reject-then-approve":
        ledger.approve(submission, feedback="Our mistake")


def _push(sync: Sync, killer: Killer, kill: tuple[int, bool] | None) -> None:
    killer.arm(*(kill or (None, False)))
    try:
        push_reviews(sync, sync.provider.review_source)  # type: ignore[attr-defined]
    except Killed:
        event(f"killed ({'after' if killer.after else 'before'} the call)")
    finally:
        killer.arm(None, False)


def _settle_unknown(ledger: Ledger, prolific: FakeProlific, target: str, seen: set[str]) -> None:
    """The operator: look at each unknown pay on Prolific, and say what happened."""
    status = sync_status(ledger, target, limit=1000)
    for row in status.unknown:
        event("a pay left unknown, settled by the operator")
        seen.add(row.key)
        match = re.search(r"bonus payment (\w+)", row.error or "")
        paid = match is not None and prolific.bonus_payments()[match.group(1)]["pays"] > 0
        settle_bonus(ledger, row.key, paid=paid)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(submission_plans, submission_plans, kills, st.integers(min_value=2, max_value=5))
def test_reviews_and_bonuses_are_carried_out_exactly_once(
    on_mturk: list[tuple[str, str | None]],
    on_prolific: list[tuple[str, str | None]],
    kill_plan: list[tuple[int, bool]],
    lost_every: int,
) -> None:
    clock = Clock()
    when = clock.now - timedelta(days=1)
    killer = Killer()
    mturk, prolific = FakeMTurk(), FakeProlific()
    mturk._handle = killer.around(mturk._handle)  # type: ignore[method-assign]
    prolific._handle = killer.around(prolific._handle)  # type: ignore[method-assign]
    mturk.fail_every(3, kind="throttle")
    mturk.fail_every(
        lost_every,
        kind="lost",
        operations={"ApproveAssignment", "RejectAssignment", "SendBonus"},
    )
    prolific.fail_every(3, status=503)
    hit = mturk.add_hit(hit_type_id="3HITTYPE")
    study = prolific.add_study(status="ACTIVE")
    assignments = [
        mturk.add_assignment(hit, MTURK_WORKERS[i], submit_time=when) for i in range(len(on_mturk))
    ]
    submissions = [
        prolific.add_submission(study, PROLIFIC_WORKERS[i], completed_at=when)
        for i in range(len(on_prolific))
    ]
    with Ledger.open("memory://", clock=clock) as ledger:
        to_mturk = MTurkSync(ledger, mturk_client(mturk), batch=2)
        client = prolific.client()
        to_prolific = ProlificSync(
            ledger,
            client,
            workspace=prolific.workspace_id,
            study=study,
            api=ProlificAPI(client, sleep=lambda _s: None),
            batch=2,
        )
        for sync in (to_mturk, to_prolific):
            killer.guard(sync)
        assert to_mturk.ingest([hit], task="t").recorded == len(assignments)
        assert to_prolific.ingest([study], task="t").recorded == len(submissions)
        plans = [
            *(
                ("mturk", MTURK_WORKERS[i], a, p)
                for i, (a, p) in enumerate(zip(assignments, on_mturk, strict=False))
            ),
            *(
                ("prolific", PROLIFIC_WORKERS[i], s, p)
                for i, (s, p) in enumerate(zip(submissions, on_prolific, strict=False))
            ),
        ]
        for provider, worker, submission, (action, bonus) in plans:
            _review(ledger, submission, action, 0)
            if bonus is not None:
                currency = "USD" if provider == "mturk" else "GBP"
                ledger.bonus(
                    f"{provider}:{worker}",
                    amount=bonus,
                    currency=currency,
                    submission=submission,
                    reason="Well done",
                    key=f"bonus-{submission}",
                )
        kills_left = list(kill_plan)
        unknown_seen: set[str] = set()
        for stage in (0, 1):
            if stage == 1:
                for _provider, _worker, submission, (action, _bonus) in plans:
                    _review(ledger, submission, action, 1)
            for _round in range(3):
                for sync in (to_mturk, to_prolific):
                    _push(sync, killer, kills_left.pop(0) if kills_left else None)
        # The faults stop; push until the outbox is quiet, settling what is unknown.
        mturk.clear_faults()
        prolific.clear_faults()
        for _round in range(4):
            for sync in (to_mturk, to_prolific):
                _push(sync, killer, None)
            _settle_unknown(ledger, prolific, to_prolific.target, unknown_seen)
        for sync in (to_mturk, to_prolific):
            counts = sync_status(ledger, sync.target).counts
            assert counts.get("pending", 0) == counts.get("unknown", 0) == 0, counts

        states = {item["submission"]: item["status"] for item in _ledger_states(ledger)}
        refused = {i.submission for i in ledger.review_queue() if i.status == "failed"}
        for submission in assignments:
            wanted = {"approved": "Approved", "soft_rejected": "Approved", "rejected": "Rejected"}
            assert mturk.assignment_status(submission) == wanted.get(
                states[submission], "Submitted"
            ), (submission, states[submission])
        assert not refused & set(assignments)
        shown = {s: v["status"] for s, v in prolific.submissions().items()}
        for submission, (action, _bonus) in zip(submissions, on_prolific, strict=False):
            wanted_p = {"approved": "APPROVED", "soft_rejected": "APPROVED", "rejected": "REJECTED"}
            if action == "reject-then-approve":
                # Prolific cannot reverse a rejection: reported, not pretended.
                assert shown[submission] == "REJECTED"
                assert submission in refused
            else:
                assert shown[submission] == wanted_p.get(states[submission], "AWAITING REVIEW")
                assert submission not in refused
        # Money: MTurk exactly once per bonus; Prolific never twice, and paid in the end.
        paid_mturk = [b["AssignmentId"] for b in mturk.bonuses()]
        expected_mturk = [a for a, (_x, bonus) in zip(assignments, on_mturk, strict=False) if bonus]
        assert sorted(paid_mturk) == sorted(expected_mturk)
        assert all(p["pays"] <= 1 for p in prolific.bonus_payments().values())
        paid_prolific = sorted(participant for participant, _amount in prolific.paid_bonuses())
        expected_prolific = sorted(
            PROLIFIC_WORKERS[i] for i, (_x, bonus) in enumerate(on_prolific) if bonus
        )
        assert paid_prolific == expected_prolific


def _ledger_states(ledger: Ledger) -> list[dict[str, str]]:
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute("SELECT submission, status FROM cl_submissions").fetchall()
    return [{"submission": s, "status": st_} for s, st_ in rows]
