"""The Prolific sync against the stateful fake, through a real httpx client (respx).

The fake pages every list, answers 429 and 5xx when told to, soft-deletes groups and
freezes a study's filters once it is published (see ``tests/fakes/prolific.py``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from crowdledger import Ledger
from crowdledger.adapters.prolific.provider import ProlificAPI, ProlificSync
from crowdledger.domain.errors import ProviderError
from crowdledger.testing.prolific import FakeProlific

P = [f"prolific:{n:024x}" for n in range(1, 6)]
M1 = "mturk:A1AAAAAA"

RULES: dict[str, Any] = {
    "name": "survey",
    "qualifications": [
        {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
    ],
    "rule": {"not": {"participated_in": ["pilot"]}},
    "blocked_scopes": ["global", "project:survey"],
}


def populate(ledger: Ledger) -> None:
    ledger.define("english")
    for i, worker in enumerate([*P, M1]):
        ledger.grant(worker, "english", value=i)
    ledger.record_submission(P[3], task="pilot", submission="s-pilot")


def writes(fake: FakeProlific) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in fake.requests if r.method != "GET"]


def admitted(fake: FakeProlific, study: str, workers: list[str]) -> set[str]:
    return {w for w in workers if w.startswith("prolific:") and fake.admits(study, w[9:])}


def make_sync(
    ledger: Ledger, fake: FakeProlific, study: str | None, sleeps: list[float] | None = None
) -> ProlificSync:
    client = fake.client()
    api = ProlificAPI(client, sleep=(sleeps if sleeps is not None else []).append)
    return ProlificSync(ledger, client, workspace=fake.workspace_id, study=study, api=api)


@pytest.fixture
def fake() -> FakeProlific:
    return FakeProlific(page_size_max=20)


def test_apply_gates_the_study_to_exactly_the_eligible_participants(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    ledger.block(P[4], scope="project:survey")
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    plan = sync.plan(RULES)
    assert not writes(fake)
    assert {c.kind for c in plan.commands} == {"group", "member", "study"}

    report = sync.apply(RULES)
    assert report.failed == []
    assert report.left_pending == 0
    workers = ledger.workers()
    eligible = {w for w in ledger.eligible_workers(RULES) if w.startswith("prolific:")}
    assert admitted(fake, study, workers) == eligible == {P[2]}
    filters = {f["filter_id"] for f in fake.study_filters(study)}
    assert filters == {"participant_group_allowlist", "participant_group_blocklist"}
    blocked_group = sync.plan(RULES).gate["filters"][0]["selected_values"][0]
    assert fake.group_members(blocked_group) == {P[4][9:]}


def test_a_second_apply_sends_no_write(ledger: Ledger, fake: FakeProlific) -> None:
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    before = len(writes(fake))
    assert sync.apply(RULES).sent == 0
    assert len(writes(fake)) == before


def test_a_rule_set_nobody_satisfies_still_gates_the_study(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    nobody = {
        **RULES,
        "qualifications": [{"qualification_name": "english", "comparator": ">", "value": 100}],
    }
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(nobody)
    allow = next(
        f for f in fake.study_filters(study) if f["filter_id"] == "participant_group_allowlist"
    )
    assert fake.group_members(allow["selected_values"][0]) == set()
    stranger = "0123456789abcdef01234567"
    assert not fake.admits(study, stranger), "an empty eligible group admits nobody"
    assert admitted(fake, study, [*P, f"prolific:{stranger}"]) == set()


def test_revocation_and_blocks_change_membership_of_a_published_study(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    fake._studies[study]["status"] = "ACTIVE"  # published: its filters are now frozen
    assert admitted(fake, study, P) == {P[2], P[4]}

    ledger.revoke(P[2], "english")
    ledger.block(P[4], reason="fraud")
    ledger.grant(P[0], "english", value=5)
    report = sync.apply(RULES)
    assert report.failed == []
    assert fake.studies()[study]["status"] == "ACTIVE"
    assert (
        admitted(fake, study, P)
        == {P[0]}
        == {w for w in ledger.eligible_workers(RULES) if w.startswith("prolific:")}
    )


def test_a_published_study_with_other_filters_is_reported_not_opened(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    study = fake.add_study(status="ACTIVE", filters=[])
    sync = make_sync(ledger, fake, study)
    report = sync.apply(RULES)
    assert [o.command.kind for o in report.failed] == ["study"]
    assert report.failed[0].code == "study_published"
    assert "frozen" in (report.failed[0].error or "")
    assert sync.status().counts["failed"] == 1


def test_pages_of_groups_and_members_are_all_read(ledger: Ledger) -> None:
    fake = FakeProlific(page_size_max=10, default_page_size=10)
    for n in range(25):  # the workspace already has many groups
        fake.client().post(
            "participant-groups/", json={"name": f"g{n}", "workspace_id": fake.workspace_id}
        )
    ledger.define("english")
    many = [f"prolific:{n:024x}" for n in range(1, 131)]
    for worker in many:
        ledger.grant(worker, "english", value=3)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    assert sync.pull(RULES).items == ()
    assert len(admitted(fake, study, many)) == 130

    # A participant removed by hand on Prolific shows up as drift and is put back.
    allow = next(
        f for f in fake.study_filters(study) if f["filter_id"] == "participant_group_allowlist"
    )
    group = allow["selected_values"][0]
    fake.client().request(
        "DELETE",
        f"participant-groups/{group}/participants/",
        json={"participant_ids": [many[-1][9:]]},
    )
    drift = sync.pull(RULES)
    assert [(i.fact, i.believed, i.actual, i.desired) for i in drift.items] == [
        (("member", "crowdledger:survey:eligible", many[-1]), "", None, "")
    ]
    sync.pull(RULES, record=True)
    sync.apply(RULES)
    assert len(admitted(fake, study, many)) == 130


def test_429_with_retry_after_and_5xx_are_retried(ledger: Ledger, fake: FakeProlific) -> None:
    populate(ledger)
    study = fake.add_study()
    sleeps: list[float] = []
    fake.fail_next(status=429, times=2, retry_after=7)
    fake.fail_every(3, status=503)
    sync = make_sync(ledger, fake, study, sleeps)
    report = sync.apply(RULES)
    assert report.failed == []
    assert report.left_pending == 0
    assert sleeps[:2] == [7.0, 7.0], "Retry-After is honoured"
    assert all(0 <= s <= 30 for s in sleeps[2:])
    assert len(sleeps) > 2
    fake.clear_faults()
    assert sync.pull(RULES).items == ()


def test_when_prolific_stays_down_the_rest_waits_in_the_outbox(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    # Down after apply's first read (the token check): down from the start, apply queues
    # nothing (tests/test_sync_hygiene.py).
    fake.fail_next(status=503, times=1000, path_contains="participant-groups")
    report = sync.apply(RULES)
    assert report.stopped
    assert report.left_pending > 0
    assert sync.status().counts["pending"] == report.left_pending
    fake.clear_faults()
    assert sync.apply(RULES).failed == []
    assert sync.status().counts.get("pending", 0) == 0
    assert admitted(fake, study, P) == {P[2], P[4]}
    names = [g["name"] for g in fake.groups().values()]
    assert sorted(names) == ["crowdledger:survey:blocked", "crowdledger:survey:eligible"]


def test_a_group_created_by_a_lost_reply_is_adopted(
    ledger: Ledger, fake: FakeProlific, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study, [])

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt("killed before the answers were recorded")

    monkeypatch.setattr(ProlificSync, "_record", crash)
    with pytest.raises(KeyboardInterrupt):
        sync.apply(RULES)
    monkeypatch.undo()
    assert sync.apply(RULES).failed == []
    assert len(fake.groups()) == 2, "no group was created twice"
    assert admitted(fake, study, P) == {P[2], P[4]}


def test_a_soft_deleted_group_is_seen_when_flagged_and_replaced(ledger: Ledger) -> None:
    fake = FakeProlific(flag_soft_deletes=True)
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    allow = next(
        f for f in fake.study_filters(study) if f["filter_id"] == "participant_group_allowlist"
    )
    fake.client().delete(f"participant-groups/{allow['selected_values'][0]}/")
    assert admitted(fake, study, P) == set(), "a deleted group gates, never opens"
    drift = sync.pull(RULES, record=True)
    assert ("group", "crowdledger:survey:eligible", "") in {i.fact for i in drift.items}
    sync.apply(RULES)
    assert admitted(fake, study, P) == {P[2], P[4]}


def test_native_filters_pass_through(ledger: Ledger, fake: FakeProlific) -> None:
    populate(ledger)
    rules = {
        **RULES,
        "prolific_specific_qualifications": [
            {
                "name": "ApprovalRateEligibilityRequirement",
                "minimum_approval_rate": 95,
                "maximum_approval_rate": 100,
            }
        ],
        "prolific_filters": [
            {
                "filter_id": "participant_group_blocklist",
                "selected_values": ["6a00000000000000000000ff"],
            },
        ],
    }
    fake.client().post(
        "participant-groups/", json={"name": "old", "workspace_id": fake.workspace_id}
    )
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    report = sync.apply(rules)
    assert [o.code for o in report.failed] == ["400"], "the fake knows no group 6a..ff"
    rules["prolific_filters"] = [
        {"filter_id": "participant_group_blocklist", "selected_values": [next(iter(fake.groups()))]}
    ]
    assert sync.apply(rules).failed == []
    filters = {f["filter_id"]: f for f in fake.study_filters(study)}
    assert filters["approval_rate"]["selected_range"] == {"lower": 95.0, "upper": 100.0}
    assert len(filters["participant_group_blocklist"]["selected_values"]) == 2
    fake.set_participant_stats(P[2][9:], approval_rate=99, approvals=10)
    assert admitted(fake, study, P) == {P[2]}, "Prolific's own filter applies on top"


def test_ingest_records_each_submission_once(ledger: Ledger, fake: FakeProlific) -> None:
    study = fake.add_study()
    statuses = ["AWAITING REVIEW", "APPROVED", "REJECTED", "RETURNED"]
    for n in range(45):
        fake.add_submission(study, f"{n + 1:024x}", status=statuses[n % 4])
    sync = make_sync(ledger, fake, None)
    report = sync.ingest([study], task="survey")
    assert (report.seen, report.recorded, report.approved, report.rejected) == (34, 34, 11, 11)
    again = sync.ingest([study], task="survey")
    assert (again.recorded, again.approved, again.rejected) == (0, 0, 0)
    assert ledger.stats(f"prolific:{2:024x}")["approved"] == 1
    assert ledger.stats(f"prolific:{4:024x}")["submitted"] == 0, "a returned submission is not work"


def test_errors_name_the_request_and_never_the_token(ledger: Ledger) -> None:
    fake = FakeProlific(token="s3cret-token")
    populate(ledger)
    client = httpx.Client(
        base_url=FakeProlific.BASE_URL,
        headers={"Authorization": "Token wrong-s3cret"},
        transport=fake.client().__dict__["_transport"],
    )
    sync = ProlificSync(ledger, client, workspace=fake.workspace_id)
    with pytest.raises(ProviderError) as caught:
        sync.pull(RULES)
    assert "HTTP 401" in str(caught.value)
    assert "participant-groups" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_rules_that_a_newcomer_satisfies_keep_the_study_open_to_newcomers(
    ledger: Ledger, fake: FakeProlific
) -> None:
    ledger.record_submission(P[0], task="pilot", submission="p1")
    ledger.record_submission(P[1], task="main", submission="m1")
    ledger.block(P[2], scope="project:fresh")
    rules = {
        "name": "fresh",
        "rule": {"not": {"participated_in": ["pilot"]}},
        "blocked_scopes": ["global", "project:fresh"],
    }
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(rules)
    filters = {f["filter_id"] for f in fake.study_filters(study)}
    assert filters == {"participant_group_blocklist"}, "no allowlist: newcomers may come"
    newcomer = "cccccccccccccccccccccccc"
    assert fake.admits(study, newcomer)
    assert ledger.check(f"prolific:{newcomer}", rules).eligible
    assert admitted(fake, study, P[:3]) == {P[1]}


def test_the_studys_other_filters_are_kept(ledger: Ledger, fake: FakeProlific) -> None:
    populate(ledger)
    theirs = {"filter_id": "custom_blocklist", "selected_values": [f"{9:024x}"]}
    study = fake.add_study(filters=[theirs])
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    filters = {f["filter_id"]: f for f in fake.study_filters(study)}
    assert filters["custom_blocklist"] == theirs, "a filter the researcher set stays"
    assert "participant_group_allowlist" in filters
    assert sync.pull(RULES).items == ()
    assert sync.apply(RULES).sent == 0


def test_a_group_whose_creation_reply_was_lost_is_not_created_twice(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    study = fake.add_study()
    handle = fake._handle
    lost = {"left": 1}

    def created_but_unanswered(request: httpx.Request, base_path: str) -> httpx.Response:
        answer = handle(request, base_path)
        creating = request.method == "POST" and request.url.path.endswith("participant-groups/")
        if creating and lost["left"]:
            lost["left"] -= 1
            return httpx.Response(504, json={"error": {"detail": "gateway timeout"}})
        return answer

    fake._handle = created_but_unanswered  # type: ignore[method-assign]
    sleeps: list[float] = []
    sync = make_sync(ledger, fake, study, sleeps)
    report = sync.apply(RULES)
    assert report.failed == []
    assert sorted(g["name"] for g in fake.groups().values()) == [
        "crowdledger:survey:blocked",
        "crowdledger:survey:eligible",
    ]
    assert admitted(fake, study, P) == {P[2], P[4]}


def test_a_next_link_to_another_host_is_not_followed() -> None:
    router = respx.Router(assert_all_called=False)
    router.get("https://api.prolific.com/api/v1/participant-groups/").mock(
        return_value=httpx.Response(
            200,
            json={
                "results": [{"id": "a", "name": "x"}],
                "_links": {"next": {"href": "https://collector.example/steal?offset=1"}},
            },
        )
    )
    client = httpx.Client(
        base_url=FakeProlific.BASE_URL,
        headers={"Authorization": "Token s3cret"},
        transport=httpx.MockTransport(router.handler),
    )
    api = ProlificAPI(client, sleep=lambda _s: None)
    with pytest.raises(ProviderError, match="not following it"):
        list(api.pages("participant-groups/", {"workspace_id": "w"}))
    assert all(call.request.url.host == "api.prolific.com" for call in router.calls)


def test_retry_after_is_capped(ledger: Ledger, fake: FakeProlific) -> None:
    populate(ledger)
    sleeps: list[float] = []
    fake.fail_next(status=429, times=1, retry_after=86_400)
    sync = make_sync(ledger, fake, fake.add_study(), sleeps)
    assert sync.apply(RULES).failed == []
    assert sleeps[0] == 60.0


def test_switching_rules_to_open_removes_the_old_allowlist(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(RULES)
    assert "participant_group_allowlist" in {f["filter_id"] for f in fake.study_filters(study)}
    open_rules = {"name": "survey", "rule": {"not": {"participated_in": ["pilot"]}}}
    assert sync.apply(open_rules).failed == []
    assert {f["filter_id"] for f in fake.study_filters(study)} == {"participant_group_blocklist"}
    newcomer = "dddddddddddddddddddddddd"
    assert fake.admits(study, newcomer)
    eligible = {w for w in ledger.eligible_workers(open_rules) if w.startswith("prolific:")}
    assert admitted(fake, study, P) == eligible
    assert sync.pull(open_rules).items == ()


def test_a_researchers_own_block_list_is_kept_and_their_allowlist_refused(
    ledger: Ledger, fake: FakeProlific
) -> None:
    populate(ledger)
    client = fake.client()
    theirs = client.post(
        "participant-groups/", json={"name": "hand-blocked", "workspace_id": fake.workspace_id}
    ).json()["id"]
    client.post(f"participant-groups/{theirs}/participants/", json={"participant_ids": [P[2][9:]]})
    blocklist = {"filter_id": "participant_group_blocklist", "selected_values": [theirs]}
    study = fake.add_study(filters=[blocklist])
    sync = make_sync(ledger, fake, study)
    assert sync.apply(RULES).failed == []
    (blocks,) = [f for f in fake.study_filters(study) if f["filter_id"] == blocklist["filter_id"]]
    assert theirs in blocks["selected_values"]
    assert len(blocks["selected_values"]) == 2
    assert admitted(fake, study, P) == {P[4]}, "P[2] stays blocked by hand"
    assert sync.pull(RULES).items == ()

    allowlist = {"filter_id": "participant_group_allowlist", "selected_values": [theirs]}
    other = fake.add_study(filters=[allowlist])
    report = make_sync(ledger, fake, other).apply(RULES)
    assert [o.code for o in report.failed] == ["filter_conflict"]
    assert fake.study_filters(other) == [allowlist], "nothing was changed"


def test_an_interrupted_switch_to_closed_rules_never_opens_the_study(
    ledger: Ledger, fake: FakeProlific
) -> None:
    """Open rules (known excluded participants in the block list) become closed ones
    (an allowlist): if Prolific stops answering half-way, the block list must not have
    been emptied before the allowlist is in place."""
    populate(ledger)
    open_rules = {"name": "survey", "rule": {"not": {"participated_in": ["pilot"]}}}
    study = fake.add_study()
    sync = make_sync(ledger, fake, study)
    sync.apply(open_rules)
    assert not fake.admits(study, P[3][9:]), "P[3] did the pilot"
    closed = {**RULES, "name": "survey"}
    fake.fail_next(status=503, times=1000, path_contains="participants")
    report = sync.apply(closed)
    assert report.stopped
    assert not fake.admits(study, P[3][9:]), "excluded by both versions, and still"
    fake.clear_faults()
    assert sync.apply(closed).failed == []
    eligible = {w for w in ledger.eligible_workers(closed) if w.startswith("prolific:")}
    assert admitted(fake, study, P) == eligible
