"""The MTurk sync against the stateful fake, through a real boto3 client.

Every test goes through botocore's serializer, parser, error mapping, retry handler and
paginators; the fake keeps state like the service (see ``tests/fakes/mturk.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.domain.errors import ProviderError
from crowdledger.testing.mturk import FakeMTurk, mturk_client

from .conftest import Clock

A1, A2, A3, A4 = "mturk:A1AAAAAA", "mturk:A2BBBBBB", "mturk:A3CCCCCC", "mturk:A4DDDDDD"
P1 = "prolific:5f3c2a1b9d8e7f6a5b4c3d2e"

RULES: dict[str, Any] = {
    "name": "transcription",
    "qualifications": [
        {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
    ],
    "rule": {
        "any_of": [
            {"qualification": "masters", "comparator": "exists"},
            {"metric": "approved_count", "comparator": ">=", "value": 1},
        ]
    },
    "blocked_scopes": ["global", "project:transcription"],
}


def writes(fake: FakeMTurk) -> list[str]:
    return [op for op, _ in fake.calls if not op.startswith(("List", "Get"))]


def admitted(fake: FakeMTurk, sync: MTurkSync, rules: Any, workers: list[str]) -> set[str]:
    """The workers MTurk would let work on a HIT with the sync's requirements."""
    requirements = sync.requirements(rules)
    blocked = fake.blocks(sandbox=sync.mturk.sandbox)
    return {
        w
        for w in workers
        if w.startswith("mturk:")
        and w.partition(":")[2] not in blocked
        and fake.admits(w.partition(":")[2], requirements, sandbox=sync.mturk.sandbox)
    }


def populate(ledger: Ledger) -> None:
    for name in ("english", "masters"):
        ledger.define(name)
    for i, worker in enumerate([A1, A2, A3, A4, P1]):
        ledger.grant(worker, "english", value=i)
    ledger.grant(A3, "masters")
    ledger.grant(A4, "masters")
    ledger.record_submission(A3, task="t", submission="s1")
    ledger.approve("s1")


@pytest.fixture
def fake() -> FakeMTurk:
    return FakeMTurk()


def test_apply_makes_the_gate_admit_exactly_the_eligible_workers(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    populate(ledger)
    ledger.block(A4, scope="project:transcription", reason="pilot misbehaved")
    sync = MTurkSync(ledger, mturk_client(fake, sandbox=True))

    plan = sync.plan(RULES)
    kinds = {(c.operation, c.kind) for c in plan.commands}
    assert ("set", "type") in kinds
    assert ("set", "value") in kinds
    assert not writes(fake), "plan sends nothing"
    assert any("workers unknown to the ledger cannot qualify" in n for n in plan.notes)

    report = sync.apply(RULES)
    assert report.failed == []
    assert report.left_pending == 0
    assert report.succeeded == report.queued == len(plan.commands)
    workers = ledger.workers()
    assert (
        admitted(fake, sync, RULES, workers)
        == {w for w in ledger.eligible_workers(RULES) if w.startswith("mturk:")}
        == {A3}
    )
    assert fake.notifications_sent == [], "workers are never emailed"
    associate = [p for op, p in fake.calls if op == "AssociateQualificationWithWorker"]
    assert associate
    assert all(p["SendNotification"] is False for p in associate)
    # The requirements: native ones for english, Exists on the materialised type, and
    # DoesNotExist for the scoped block.
    comparators = [r["Comparator"] for r in sync.requirements(RULES)]
    assert comparators == ["GreaterThanOrEqualTo", "Exists", "DoesNotExist"]
    assert all(r["ActionsGuarded"] == "DiscoverPreviewAndAccept" for r in sync.requirements(RULES))


def test_a_second_apply_sends_no_write(ledger: Ledger, fake: FakeMTurk) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(RULES)
    before = len(writes(fake))
    report = sync.apply(RULES)
    assert report.queued == report.sent == 0
    assert len(writes(fake)) == before
    assert sync.plan(RULES).commands == ()


def test_revoke_unblock_and_expiry_reach_mturk(
    ledger: Ledger, fake: FakeMTurk, clock: Clock
) -> None:
    populate(ledger)
    ledger.block(A1, reason="spam")
    ledger.block(A2, until=clock.now + timedelta(hours=2))
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(RULES)
    assert set(fake.blocks()) == {"A1AAAAAA", "A2BBBBBB"}
    english = sync.requirements(RULES)[0]["QualificationTypeId"]
    assert fake.worker_values(english)["A3CCCCCC"] == 2

    ledger.revoke(A3, "english")
    ledger.unblock(A1)
    clock.advance(hours=3)  # A2's block runs out without any event
    sync.apply(RULES)
    assert "A3CCCCCC" not in fake.worker_values(english), "a revoke removes it from MTurk"
    assert fake.blocks() == {}
    assert admitted(fake, sync, RULES, ledger.workers()) == ledger.eligible_workers(RULES) == {A4}


def test_a_type_of_that_name_is_adopted_not_duplicated(ledger: Ledger) -> None:
    fake = FakeMTurk()
    for n in range(120):  # more than 100 types: the existing one is on a later page
        fake.seed_qualification_type(f"other-{n:03}")
    existing = fake.seed_qualification_type("english")
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    report = sync.apply(RULES)
    assert report.failed == []
    assert sync.requirements(RULES)[0]["QualificationTypeId"] == existing
    names = [t["Name"] for t in fake.qualification_types().values()]
    assert names.count("english") == 1
    assert sync.pull(RULES).items == ()  # found among all 123 types
    listings = [p for op, p in fake.calls if op == "ListQualificationTypes" and "Query" not in p]
    assert len(listings) >= 2, "the listing went past its first page"


def test_two_ledgers_racing_for_a_type_share_it(tmp_path: Any, fake: FakeMTurk) -> None:
    """Two processes (here: two ledgers on one account) create the same type: the one
    that loses gets "already exists" and adopts the winner's type."""
    with (
        Ledger.open(f"sqlite:///{tmp_path / 'a.db'}") as one,
        Ledger.open(f"sqlite:///{tmp_path / 'b.db'}") as two,
    ):
        for ledger in (one, two):
            populate(ledger)
        first = MTurkSync(one, mturk_client(fake))
        second = MTurkSync(two, mturk_client(fake))
        first.apply(RULES)
        assert second.apply(RULES).failed == []
        assert first.requirements(RULES) == second.requirements(RULES)
        creates = [op for op, _ in fake.calls if op == "CreateQualificationType"]
        # english (required natively), the materialised rules and the scoped block: each
        # tried by both, created once. masters, used only inside any_of, needs no type.
        assert len(creates) == 6
        assert len(fake.qualification_types()) == 3


def test_sandbox_and_production_are_separate_namespaces(ledger: Ledger, fake: FakeMTurk) -> None:
    populate(ledger)
    sandbox = MTurkSync(ledger, mturk_client(fake, sandbox=True))
    production = MTurkSync(ledger, mturk_client(fake))
    assert (sandbox.target, production.target) == ("mturk:sandbox", "mturk:production")
    sandbox.apply(RULES)
    assert production.plan(RULES).commands, "production knows nothing yet"
    production.apply(RULES)
    ids_sandbox = {r["QualificationTypeId"] for r in sandbox.requirements(RULES)}
    ids_production = {r["QualificationTypeId"] for r in production.requirements(RULES)}
    assert ids_sandbox.isdisjoint(ids_production)
    assert len(fake.qualification_types(sandbox=True)) == len(fake.qualification_types()) == 3


def test_throttling_and_service_faults_are_retried_and_nothing_is_lost(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    populate(ledger)
    fake.fail_every(3, kind="throttle")
    fake.fail_every(5, kind="service_fault")
    sync = MTurkSync(ledger, mturk_client(fake))
    report = sync.apply(RULES)
    assert report.failed == []
    assert report.left_pending == 0
    fake.clear_faults()
    assert sync.plan(RULES).commands == ()
    assert sync.pull(RULES).items == ()


def test_a_grant_made_while_mturk_is_down_is_delivered_later(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake, max_attempts=2))
    sync.apply(RULES)
    ledger.grant(A2, "english", value=7, reason="retook the test")
    # MTurk answers apply's first read (the credentials check), then goes down: while it
    # is down from the start, apply queues nothing (tests/test_sync_hygiene.py).
    fake.fail_next("AssociateQualificationWithWorker", kind="service_fault", times=100)
    report = sync.apply(RULES)
    assert report.stopped is not None
    assert "did not answer" in report.stopped
    assert report.failed == []
    assert len(report.unanswered) == 1
    status = sync.status()
    # Unanswered, it may have taken effect: it stays pending, with the error, and is sent
    # again (a refused command would be "failed" and proposed again by the next plan).
    assert status.counts.get("pending") == 1
    assert "failed" not in status.counts
    assert "ServiceUnavailable" in (status.pending[0].error or "")
    assert sync.plan(RULES).commands == (), "it is not queued twice"
    with pytest.raises(ProviderError, match="not yet in line"):
        sync.requirements(RULES)  # a HIT published now would not see the change
    english = sync.requirements(RULES, allow_undelivered=True)[0]["QualificationTypeId"]
    assert fake.worker_values(english)["A2BBBBBB"] == 1

    fake.clear_faults()
    assert sync.apply(RULES).failed == []
    assert fake.worker_values(english)["A2BBBBBB"] == 7


def test_a_throttled_command_stays_pending_and_is_sent_again(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(RULES)
    ledger.grant(A1, "english", value=9)
    fake.fail_next("AssociateQualificationWithWorker", kind="throttle", times=50)
    report = sync.apply(RULES)
    assert report.stopped  # throttled past every retry
    assert report.left_pending == 1
    fake.clear_faults()
    plan = sync.plan(RULES)
    assert plan.commands == ()
    assert [c.subject for c in plan.pending] == [A1]
    assert sync.apply(RULES).succeeded == 1
    assert sync.status().counts.get("pending", 0) == 0


def test_a_refused_command_is_recorded_with_the_error_and_proposed_again(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    """Someone deletes the crowdledger type by hand on MTurk: every grant of it is refused
    (and recorded as failed, with MTurk's error); pull finds the type gone; re-creating
    it fails while MTurk keeps the deleted name reserved, and the error says so."""
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(RULES)
    english = sync.requirements(RULES)[0]["QualificationTypeId"]
    mturk_client(fake).delete_qualification_type(QualificationTypeId=english)
    ledger.grant(A1, "english", value=9)

    report = sync.apply(RULES)
    assert [o.code for o in report.failed] == ["AWS.MechanicalTurk.QualificationTypeDoesNotExist"]
    assert not report.stopped, "a refusal does not stop the others"
    status = sync.status()
    assert status.counts["failed"] == 1
    assert "does not exist" in (status.failed[0].error or "")
    assert status.failed[0].fact_value == "9", "status says what was refused"
    assert [c.subject for c in sync.plan(RULES).commands] == [A1], "proposed again"

    drift = sync.pull(RULES, record=True)
    assert ("type", "english", "") in {item.fact for item in drift.items}
    again = sync.apply(RULES)
    (refused,) = [o for o in again.failed if o.command.kind == "type"]
    assert "up to 48 hours" in (refused.error or "")


def test_a_crash_between_send_and_mark_done_resumes_without_duplicates(
    ledger: Ledger, fake: FakeMTurk, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake), batch=2)
    crashes = iter([True])

    original = MTurkSync._record

    def record(self: MTurkSync, outcomes: Any, run: str) -> None:
        if next(crashes, False):
            raise KeyboardInterrupt("killed after sending, before marking done")
        original(self, outcomes, run)

    monkeypatch.setattr(MTurkSync, "_record", record)
    with pytest.raises(KeyboardInterrupt):
        sync.apply(RULES)
    status = sync.status()
    assert status.counts.get("pending", 0) == len(sync.plan(RULES).pending) > 0
    assert sync.plan(RULES).commands == (), "pending commands are not planned twice"

    report = sync.apply(RULES)
    assert report.failed == []
    assert report.left_pending == 0
    assert sync.status().counts.get("pending", 0) == 0
    assert len(fake.qualification_types()) == 3, "the resent creation adopted its type"
    assert admitted(fake, sync, RULES, ledger.workers()) == ledger.eligible_workers(RULES)


def test_pull_reads_every_page_reports_drift_and_records_it_when_asked(
    ledger: Ledger,
) -> None:
    fake = FakeMTurk(page_size_cap=100)
    ledger.define("english")
    many = [f"mturk:A{n:07}" for n in range(150)]
    for worker in many:
        ledger.grant(worker, "english", value=3)
    for worker in many[:120]:
        ledger.block(worker)
    rules = {
        "name": "big",
        "qualifications": [{"qualification_name": "english", "comparator": "Exists"}],
    }
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(rules)
    assert sync.pull(rules).items == ()
    listings = [p for op, p in fake.calls if op == "ListWorkersWithQualificationType"]
    assert len(listings) >= 2, "more than one page was read"

    english = sync.requirements(rules)[0]["QualificationTypeId"]
    client = mturk_client(fake)
    client.disassociate_qualification_from_worker(
        QualificationTypeId=english, WorkerId="A0000149", Reason="by hand"
    )
    client.associate_qualification_with_worker(
        QualificationTypeId=english, WorkerId="A0000001", IntegerValue=99, SendNotification=False
    )
    client.delete_worker_block(WorkerId="A0000119", Reason="by hand")
    client.create_worker_block(WorkerId="A0000149", Reason="by hand")

    drift = sync.pull(rules)
    assert {(i.fact, i.believed, i.actual) for i in drift.items} == {
        (("value", "english", "mturk:A0000149"), "3", None),
        (("value", "english", "mturk:A0000001"), "3", "99"),
        (("block", "", "mturk:A0000119"), "", None),
        (("block", "", "mturk:A0000149"), None, ""),
    }
    assert drift.recorded == 0
    assert sync.plan(rules).commands == (), "pull changed nothing"

    # The block made by hand keeps a worker out: reported, never recorded or lifted.
    assert sync.pull(rules, record=True).recorded == 3
    assert len(sync.plan(rules).commands) == 3
    sync.apply(rules)
    (left,) = sync.pull(rules).items
    assert (left.fact, left.managed) == (("block", "", "mturk:A0000149"), False)
    assert "A0000149" in fake.blocks()


def test_history_shows_what_mturk_was_told(ledger: Ledger, fake: FakeMTurk) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    sync.apply(RULES)
    told = [e for e in ledger.history(A3) if e.type.startswith("ProviderCommand")]
    assert {e.type for e in told} == {"ProviderCommandQueued", "ProviderCommandSucceeded"}
    assert {(e.key, e.fact_value) for e in told if e.type == "ProviderCommandSucceeded"} == {  # type: ignore[attr-defined]
        ("english", "2"),
        ("crowdledger-rules-transcription", "1"),
    }


def test_ingest_records_each_assignment_once(ledger: Ledger, fake: FakeMTurk, clock: Clock) -> None:
    clock.now = datetime.now(UTC)  # MTurk stamps the work with its own (real) time
    hit = fake.add_hit()
    statuses = ["Submitted", "Approved", "Rejected"]
    ids = [fake.add_assignment(hit, f"A{n:07}", status=statuses[n % 3]) for n in range(130)]
    sync = MTurkSync(ledger, mturk_client(fake))
    report = sync.ingest([hit], task="transcription")
    assert (report.seen, report.recorded, report.approved, report.rejected) == (130, 130, 43, 43)
    again = sync.ingest([hit], task="transcription")
    assert (again.recorded, again.approved, again.rejected) == (0, 0, 0)
    assert ledger.stats("mturk:A0000001")["approved"] == 1
    assert ledger.stats("mturk:A0000002")["rejected"] == 1
    history = ledger.history("mturk:A0000000")
    assert [e.type for e in history] == ["SubmissionRecorded"]
    assert history[0].submission == ids[0]  # type: ignore[attr-defined]
    assert history[0].answer == {"answer": "ok"}  # type: ignore[attr-defined]

    # Reviewed later on MTurk (an override of a rejection): the next ingest records it.
    client = mturk_client(fake)
    client.approve_assignment(AssignmentId=ids[2], OverrideRejection=True)
    assert sync.ingest([hit], task="transcription").approved == 1
    assert ledger.stats("mturk:A0000002")["approved"] == 1


def test_requirements_need_an_apply_first(ledger: Ledger, fake: FakeMTurk) -> None:
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    with pytest.raises(ProviderError, match="run `sync apply` first"):
        sync.requirements(RULES)


def test_system_qualifications_pass_through(ledger: Ledger, fake: FakeMTurk) -> None:
    populate(ledger)
    rules = RuleSet.from_dict(
        {
            **RULES,
            "mturk_specific_qualifications": [
                {
                    "QualificationTypeId": "000000000000000000L0",
                    "Comparator": "GreaterThanOrEqualTo",
                    "IntegerValues": [95],
                },
                {
                    "QualificationTypeId": "00000000000000000071",
                    "Comparator": "In",
                    "LocaleValues": [{"Country": "US"}, {"Country": "GB"}],
                    "ActionsGuarded": "Accept",
                },
            ],
        }
    )
    sync = MTurkSync(ledger, mturk_client(fake), actions_guarded="PreviewAndAccept")
    sync.apply(rules)
    requirements = sync.requirements(rules)
    assert requirements[-2:] == [
        {
            "QualificationTypeId": "000000000000000000L0",
            "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [95],
            "ActionsGuarded": "PreviewAndAccept",
        },
        {
            "QualificationTypeId": "00000000000000000071",
            "Comparator": "In",
            "LocaleValues": [{"Country": "US"}, {"Country": "GB"}],
            "ActionsGuarded": "Accept",
        },
    ]
    # MTurk accepts them: a HIT type with these requirements can be created.
    client = mturk_client(fake)
    client.create_hit_type(
        Title="t",
        Description="d",
        Reward="0.10",
        AssignmentDurationInSeconds=600,
        QualificationRequirements=requirements,  # type: ignore[arg-type]
    )


def test_a_second_sender_waits_for_the_lease(ledger: Ledger, fake: FakeMTurk) -> None:
    from crowdledger.adapters.sync.lease import SendLease

    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake))
    other = SendLease(ledger._db, sync.target)
    other.acquire()  # another live apply is sending this target's outbox
    report = sync.apply(RULES)
    assert report.stopped is not None
    assert "another apply" in report.stopped
    assert report.sent == 0
    assert report.left_pending == report.queued > 0
    other.release()
    assert sync.apply(RULES).succeeded == report.queued


def test_concurrent_appliers_never_send_a_stale_command_last(tmp_path: Any) -> None:
    """A is slowed in the middle of sending a grant; the grant is revoked and B queues the
    removal while A still sends. B must not send (A holds the lease), and A sends B's
    removal after its own grant, so MTurk ends as the ledger says."""
    import threading

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    fake = FakeMTurk()
    with Ledger.open(url) as ledger:
        populate(ledger)
        first = MTurkSync(ledger, mturk_client(fake))
        first.apply(RULES)
        ledger.grant(A1, "english", value=5)  # A1 becomes eligible for english >= 2
    entered, resume = threading.Event(), threading.Event()

    def slow(request: Any, **_kwargs: Any) -> None:
        # A's grant waits on its way to MTurk (outside the fake, which B's apply uses too).
        if b"AssociateQualificationWithWorker" in request.headers.get("X-Amz-Target", b""):
            entered.set()
            resume.wait(10)

    reports: list[Any] = []

    def apply_a() -> None:
        client = mturk_client(fake)
        client.meta.events.register_first("before-send.mturk", slow)
        with Ledger.open(url) as mine:
            reports.append(MTurkSync(mine, client).apply(RULES))

    thread = threading.Thread(target=apply_a)
    thread.start()
    assert entered.wait(10)
    with Ledger.open(url) as ledger:
        ledger.revoke(A1, "english", reason="cheated")
        b = MTurkSync(ledger, mturk_client(fake)).apply(RULES)
        assert b.stopped is not None
        assert "another apply" in b.stopped
        assert b.sent == 0
        resume.set()
        thread.join(10)
        (a,) = reports
        assert a.failed == []
        assert a.left_pending == 0
        sync = MTurkSync(ledger, mturk_client(fake))
        english = sync.requirements(RULES)[0]["QualificationTypeId"]
        assert "A1AAAAAA" not in fake.worker_values(english)
        assert sync.plan(RULES).commands == ()
        assert sync.pull(RULES).items == ()


def test_a_grant_whose_reply_was_lost_is_sent_again_and_a_revoke_still_wins(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    """MTurk carries out the grant but every reply is lost: the command stays pending
    (it may have taken effect), and a revocation queued after it is sent after it."""
    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake, max_attempts=1))
    sync.apply(RULES)
    ledger.grant(A1, "english", value=5)
    handle = fake._handle
    lose = {"left": 2}

    def applied_but_unanswered(request: Any) -> Any:
        answer = handle(request)
        target = request.headers.get("X-Amz-Target", b"")
        if b"AssociateQualificationWithWorker" in target and lose["left"]:
            lose["left"] -= 1
            fake.fail_next("AssociateQualificationWithWorker", kind="http503")
            return handle(request)  # the 503 stands in for the lost reply
        return answer

    fake._handle = applied_but_unanswered  # type: ignore[method-assign]
    report = sync.apply(RULES)
    fake._handle = handle  # type: ignore[method-assign]
    assert report.left_pending == 1
    english = sync.requirements(RULES, allow_undelivered=True)[0]["QualificationTypeId"]
    assert fake.worker_values(english)["A1AAAAAA"] == 5, "MTurk did take it"

    ledger.revoke(A1, "english", reason="cheated")
    sync.apply(RULES)
    assert "A1AAAAAA" not in fake.worker_values(english)
    assert sync.pull(RULES).items == ()


def test_rules_that_a_newcomer_satisfies_become_does_not_exist(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    """ "Has not done the pilot" cannot be checked by MTurk; a worker the ledger has
    never seen satisfies it, so the gate excludes the known workers who fail it with a
    DoesNotExist type instead of requiring a grant newcomers could never have."""
    ledger.record_submission(A1, task="pilot", submission="p1")
    ledger.record_submission(A2, task="main", submission="m1")
    rules = {"name": "fresh", "rule": {"not": {"participated_in": ["pilot"]}}}
    sync = MTurkSync(ledger, mturk_client(fake))
    plan = sync.plan(rules)
    assert any("crowdledger-excluded-fresh" in n and "DoesNotExist" in n for n in plan.notes)
    sync.apply(rules)
    requirements = sync.requirements(rules)
    assert [r["Comparator"] for r in requirements] == ["DoesNotExist"]
    assert not fake.admits("A1AAAAAA", requirements)
    assert fake.admits("A2BBBBBB", requirements)
    assert fake.admits("A8NEWCOMER", requirements), "a newcomer needs to request nothing"
    assert ledger.check("mturk:A8NEWCOMER", rules).eligible


def test_credentials_in_the_endpoint_never_reach_the_ledger(ledger: Ledger) -> None:
    import boto3

    client = boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url="https://user:s3cret@mturk-proxy.example:8443",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="x",
    )
    sync = MTurkSync(ledger, client)
    assert sync.target == "mturk:production@mturk-proxy.example:8443"


def test_a_command_never_answered_is_given_up_and_planned_again(
    ledger: Ledger, fake: FakeMTurk
) -> None:
    from crowdledger.adapters.ledger.commands import MAX_UNANSWERED

    populate(ledger)
    sync = MTurkSync(ledger, mturk_client(fake, max_attempts=0))
    sync.apply(RULES)
    ledger.grant(A1, "english", value=9)
    fake.fail_next("AssociateQualificationWithWorker", kind="service_fault", times=1000)
    for _ in range(MAX_UNANSWERED):
        assert sync.apply(RULES).unanswered
    status = sync.status()
    assert "pending" not in status.counts
    assert status.counts["failed"] == 1
    assert f"no answer after {MAX_UNANSWERED} tries" in (status.failed[0].error or "")
    assert [c.subject for c in sync.plan(RULES).commands] == [A1], "planned again"
    fake.clear_faults()
    sync.apply(RULES)
    assert sync.requirements(RULES)  # in line again
