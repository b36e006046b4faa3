"""Tests of the Prolific fake, driven through a real ``httpx.Client``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdledger.testing.prolific import BULK_APPROVE_MAX, FakeProlific

TOKEN = "tok-9f8e7d6c5b4a-never-echo"
LONG_MESSAGE = "Your submission did not follow the written instructions of the task. " * 2


def pid(n: int) -> str:
    """A valid participant id (24 lowercase hex characters)."""
    return f"{n:024x}"


@pytest.fixture
def fake() -> FakeProlific:
    return FakeProlific(token=TOKEN)


@pytest.fixture
def http(fake: FakeProlific) -> Iterator[httpx.Client]:
    with fake.client() as client:
        yield client


def make_group(
    http: httpx.Client, fake: FakeProlific, name: str = "g", members: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "workspace_id": fake.workspace_id}
    if members is not None:
        body["participant_ids"] = members
    r = http.post("participant-groups/", json=body)
    assert r.status_code == 201, r.text
    group: dict[str, Any] = r.json()
    return group


def walk(http: httpx.Client, url: str, **params: Any) -> tuple[list[dict[str, Any]], int, int]:
    """Follow ``_links.next`` from ``url``; return (items, pages, meta.count)."""
    r = http.get(url, params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = []
    pages = 0
    count = r.json()["meta"]["count"]
    while True:
        page = r.json()
        items.extend(page["results"])
        pages += 1
        nxt = page["_links"]["next"]["href"]
        if nxt is None:
            return items, pages, count
        r = http.get(nxt)
        assert r.status_code == 200, r.text


def reject_body(
    category: str = "FAILED_INSTRUCTIONS", message: str = LONG_MESSAGE
) -> dict[str, str]:
    return {"action": "REJECT", "message": message, "rejection_category": category}


# ------------------------------------------------------------------ groups


def test_group_crud(http: httpx.Client, fake: FakeProlific) -> None:
    group = make_group(http, fake, "Cohort A", [pid(1), pid(2)])
    assert group["name"] == "Cohort A"
    assert group["workspace_id"] == fake.workspace_id
    assert group["participant_count"] == 2
    assert group["is_deleted"] is False
    gid = group["id"]

    assert http.get(f"participant-groups/{gid}/").json() == group
    r = http.patch(f"participant-groups/{gid}/", json={"name": "Cohort B", "description": "d"})
    assert r.status_code == 200
    assert r.json()["name"] == "Cohort B"
    assert r.json()["description"] == "d"

    listed = http.get("participant-groups/", params={"workspace_id": fake.workspace_id}).json()
    assert [g["id"] for g in listed["results"]] == [gid]
    assert listed["meta"]["count"] == 1

    assert http.delete(f"participant-groups/{gid}/").status_code == 204
    assert http.get("participant-groups/does-not-exist/").status_code == 404


def test_group_create_and_list_validation(http: httpx.Client, fake: FakeProlific) -> None:
    assert (
        http.post("participant-groups/", json={"workspace_id": fake.workspace_id}).status_code
        == 400
    )
    assert http.post("participant-groups/", json={"name": "x"}).status_code == 400
    other_ws = {"name": "x", "workspace_id": "0" * 24}
    assert http.post("participant-groups/", json=other_ws).status_code == 400
    assert http.get("participant-groups/").status_code == 400  # workspace_id is required
    assert fake.groups() == {}


def test_add_via_post_and_remove_via_delete_with_body(
    http: httpx.Client, fake: FakeProlific
) -> None:
    gid = make_group(http, fake, members=[pid(1)])["id"]
    url = f"participant-groups/{gid}/participants/"

    r = http.post(url, json={"participant_ids": [pid(1), pid(2), pid(3)]})
    assert r.status_code == 200
    assert {m["participant_id"] for m in r.json()["results"]} == {pid(1), pid(2), pid(3)}
    assert fake.group_members(gid) == {pid(1), pid(2), pid(3)}

    # httpx's Client.delete() takes no body: clients must use request("DELETE", json=...)
    r = http.request("DELETE", url, json={"participant_ids": [pid(2), pid(99)]})
    assert r.status_code == 200
    assert [m["participant_id"] for m in r.json()["results"]] == [pid(1), pid(3)]
    assert fake.group_members(gid) == {pid(1), pid(3)}

    assert http.delete(url).status_code == 400  # no body: nothing to remove
    assert fake.group_members(gid) == {pid(1), pid(3)}


@pytest.mark.parametrize(
    "bad",
    ["ABCDEF0123456789abcdef01", "abc", pid(1) + "0", 12345, "g" * 24],
)
def test_invalid_participant_ids_are_400_and_change_nothing(
    http: httpx.Client, fake: FakeProlific, bad: object
) -> None:
    gid = make_group(http, fake, members=[pid(1)])["id"]
    r = http.post(
        f"participant-groups/{gid}/participants/", json={"participant_ids": [pid(2), bad]}
    )
    assert r.status_code == 400
    assert "participant_ids" in r.json()["error"]["detail"]
    assert fake.group_members(gid) == {pid(1)}
    create = {"name": "x", "workspace_id": fake.workspace_id, "participant_ids": [bad]}
    assert http.post("participant-groups/", json=create).status_code == 400
    assert len(fake.groups()) == 1


def test_member_pagination_over_250(http: httpx.Client, fake: FakeProlific) -> None:
    members = [pid(i) for i in range(1, 201)]
    gid = make_group(http, fake, members=members)["id"]
    extra = [pid(i) for i in range(201, 262)]
    http.post(f"participant-groups/{gid}/participants/", json={"participant_ids": extra})

    url = f"participant-groups/{gid}/participants/"
    items, pages, count = walk(http, url)
    ids = [m["participant_id"] for m in items]
    assert count == 261
    assert ids == members + extra  # no skips, no duplicates, insertion order
    assert pages == 14  # default page size 20

    items, pages, _ = walk(http, url, limit=1000)  # capped at page_size_max
    assert pages == 3
    assert [m["participant_id"] for m in items] == members + extra

    first = http.get(url, params={"limit": 100, "offset": 200}).json()
    assert len(first["results"]) == 61
    assert first["_links"]["next"]["href"] is None
    assert first["_links"]["previous"]["href"] is not None
    assert http.get(url, params={"limit": 0}).status_code == 400
    assert http.get(url, params={"offset": -1}).status_code == 400


def test_group_list_pagination_over_100(http: httpx.Client, fake: FakeProlific) -> None:
    created = [make_group(http, fake, f"g{i}")["id"] for i in range(105)]
    items, pages, count = walk(
        http, "participant-groups/", workspace_id=fake.workspace_id, limit=50
    )
    assert count == 105
    assert pages == 3
    assert [g["id"] for g in items] == created

    by_offset: list[str] = []
    offset = 0
    while True:
        page = http.get(
            "participant-groups/",
            params={"workspace_id": fake.workspace_id, "limit": 40, "offset": offset},
        ).json()["results"]
        if not page:
            break
        by_offset.extend(g["id"] for g in page)
        offset += len(page)
    assert by_offset == created


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 130), limit=st.integers(1, 150), page_size_max=st.integers(1, 60))
def test_pages_partition_the_members(n: int, limit: int, page_size_max: int) -> None:
    fake = FakeProlific(page_size_max=page_size_max)
    with fake.client() as http:
        gid = make_group(http, fake, members=[pid(i) for i in range(n)])["id"]
        items, pages, count = walk(http, f"participant-groups/{gid}/participants/", limit=limit)
    size = min(limit, page_size_max)
    assert count == n
    assert [m["participant_id"] for m in items] == [pid(i) for i in range(n)]
    assert pages == max(1, -(-n // size))


def test_soft_delete_is_visible_only_via_is_deleted(http: httpx.Client, fake: FakeProlific) -> None:
    keep = make_group(http, fake, "keep", [pid(1)])["id"]
    gone = make_group(http, fake, "gone", [pid(2)])["id"]
    before = http.get(f"participant-groups/{gone}/").json()

    assert http.delete(f"participant-groups/{gone}/").status_code == 204
    assert http.delete(f"participant-groups/{gone}/").status_code == 204

    assert http.get(f"participant-groups/{gone}/").json() == before  # not flagged
    listed = http.get(
        "participant-groups/", params={"workspace_id": fake.workspace_id, "active": "true"}
    ).json()
    assert [g["id"] for g in listed["results"]] == [keep, gone]
    assert fake.is_deleted(gone)
    assert not fake.is_deleted(keep)
    assert set(fake.groups(include_deleted=False)) == {keep}
    assert fake.groups()[gone]["is_deleted"] is True

    # writes to the soft-deleted group still succeed ...
    r = http.post(f"participant-groups/{gone}/participants/", json={"participant_ids": [pid(3)]})
    assert r.status_code == 200
    assert fake.group_members(gone) == {pid(2), pid(3)}
    # ... but it no longer gates studies
    sid = fake.add_study(
        filters=[{"filter_id": "participant_group_allowlist", "selected_values": [gone]}]
    )
    assert not fake.admits(sid, pid(2))
    assert not fake.admits(sid, pid(3))


def test_flag_soft_deletes_option() -> None:
    fake = FakeProlific(flag_soft_deletes=True)
    with fake.client() as http:
        gid = make_group(http, fake)["id"]
        http.delete(f"participant-groups/{gid}/")
        assert http.get(f"participant-groups/{gid}/").json()["is_deleted"] is True
        active = http.get(
            "participant-groups/", params={"workspace_id": fake.workspace_id, "active": "true"}
        ).json()
        assert active["results"] == []


def test_participant_count_is_cached_at_creation(http: httpx.Client, fake: FakeProlific) -> None:
    gid = make_group(http, fake, members=[pid(1), pid(2)])["id"]
    url = f"participant-groups/{gid}/participants/"
    http.post(url, json={"participant_ids": [pid(3), pid(4), pid(5)]})
    http.request("DELETE", url, json={"participant_ids": [pid(1)]})
    http.patch(f"participant-groups/{gid}/", json={"participant_ids": [pid(7)]})

    assert fake.group_members(gid) == {pid(7)}  # PATCH overwrote the membership
    assert http.get(f"participant-groups/{gid}/").json()["participant_count"] == 2
    assert http.get(url).json()["meta"]["count"] == 1


# ----------------------------------------------------------------- studies


def draft_body(fake: FakeProlific, group_id: str) -> dict[str, Any]:
    return {
        "name": "Labelling task",
        "internal_name": "batch-1",
        "description": "Label things",
        "external_study_url": "https://example.org/?PID={{%PROLIFIC_PID%}}",
        "total_available_places": 10,
        "reward": 150,
        "estimated_completion_time": 5,
        "filters": [
            {"filter_id": "participant_group_allowlist", "selected_values": [group_id]},
            {"filter_id": "approval_rate", "selected_range": {"lower": 95, "upper": 100}},
        ],
        "eligibility_requirements": [{"_cls": "deprecated.Requirement"}],
    }


def test_study_create_patch_publish_and_frozen_filters(
    http: httpx.Client, fake: FakeProlific
) -> None:
    gid = make_group(http, fake, members=[pid(1)])["id"]
    gid2 = make_group(http, fake, "second")["id"]
    r = http.post("studies/", json=draft_body(fake, gid))
    assert r.status_code == 201, r.text
    study = r.json()
    sid = study["id"]
    assert study["status"] == "UNPUBLISHED"
    assert study["eligibility_requirements"] == [{"_cls": "deprecated.Requirement"}]

    new_filters = [{"filter_id": "participant_group_allowlist", "selected_values": [gid, gid2]}]
    r = http.patch(f"studies/{sid}/", json={"filters": new_filters, "reward": 200})
    assert r.status_code == 200
    assert fake.study_filters(sid) == new_filters

    r = http.post(f"studies/{sid}/transition/", json={"action": "PUBLISH"})
    assert r.status_code == 200
    assert r.json()["status"] == "ACTIVE"

    assert http.patch(f"studies/{sid}/", json={"internal_name": "renamed"}).status_code == 200
    r = http.patch(f"studies/{sid}/", json={"total_available_places": 25})
    assert r.status_code == 200
    assert r.json()["total_available_places"] == 25

    before = fake.studies()[sid]
    r = http.patch(f"studies/{sid}/", json={"filters": [], "internal_name": "x"})
    assert r.status_code == 400
    assert "filters" in r.json()["error"]["detail"]
    assert http.patch(f"studies/{sid}/", json={"total_available_places": 5}).status_code == 400
    assert http.patch(f"studies/{sid}/", json={"reward": 300}).status_code == 400
    assert fake.studies()[sid] == before  # nothing applied
    assert fake.study_filters(sid) == new_filters

    assert [s["id"] for s in http.get("studies/").json()["results"]] == [sid]
    assert http.get("studies/", params={"state": "(ACTIVE|PAUSED)"}).json()["meta"]["count"] == 1
    assert http.get("studies/", params={"state": "(UNPUBLISHED)"}).json()["results"] == []


@pytest.mark.parametrize(
    "filters",
    [
        [{"filter_id": "no_such_filter", "selected_values": ["1"]}],
        [{"filter_id": "participant_group_allowlist", "selected_values": ["6a" + "f" * 22]}],
        [{"filter_id": "participant_group_allowlist", "selected_values": []}],
        [{"filter_id": "custom_allowlist", "selected_values": ["not-an-id"]}],
        [{"filter_id": "approval_rate", "selected_values": ["95"]}],
        [{"filter_id": "approval_rate", "selected_range": {"lower": 99, "upper": 90}}],
        [
            {"filter_id": "custom_allowlist", "selected_values": [pid(1)]},
            {"filter_id": "custom_allowlist", "selected_values": [pid(2)]},
        ],
    ],
)
def test_invalid_filters_are_400(
    http: httpx.Client, fake: FakeProlific, filters: list[dict[str, Any]]
) -> None:
    body = {"name": "s", "total_available_places": 1, "filters": filters}
    assert http.post("studies/", json=body).status_code == 400
    assert fake.studies() == {}


def test_study_transition_state_machine(http: httpx.Client, fake: FakeProlific) -> None:
    sid = http.post("studies/", json={"name": "s", "total_available_places": 3}).json()["id"]

    def act(action: str) -> httpx.Response:
        return http.post(f"studies/{sid}/transition/", json={"action": action})

    for action in ("START", "PAUSE", "STOP", "RESUME"):
        assert act(action).status_code == 400
    assert fake.studies()[sid]["status"] == "UNPUBLISHED"
    assert act("PUBLISH").json()["status"] == "ACTIVE"
    assert act("PUBLISH").status_code == 400
    assert act("START").status_code == 400
    assert act("PAUSE").json()["status"] == "PAUSED"
    assert act("PAUSE").status_code == 400
    assert act("START").json()["status"] == "ACTIVE"
    fake.add_submission(sid, pid(1))
    assert act("STOP").json()["status"] == "AWAITING REVIEW"
    for action in ("START", "PAUSE", "PUBLISH", "STOP"):
        r = act(action)
        assert r.status_code == 400
        assert r.json()["error"]["status"] == 400
    assert http.post("studies/nope/transition/", json={"action": "PUBLISH"}).status_code == 404


# ------------------------------------------------------------- submissions


def test_submission_approve_reject_validation(http: httpx.Client, fake: FakeProlific) -> None:
    sid = fake.add_study(status="ACTIVE")
    a = fake.add_submission(sid, pid(1))
    b = fake.add_submission(sid, pid(2))

    def transition(sub: str, body: dict[str, Any]) -> httpx.Response:
        return http.post(f"submissions/{sub}/transition/", json=body)

    assert transition(b, reject_body(message="too short")).status_code == 400
    assert transition(b, reject_body(message="x" * 99)).status_code == 400
    assert transition(b, reject_body(category="RUDE")).status_code == 400
    no_category = {"action": "REJECT", "message": LONG_MESSAGE}
    assert transition(b, no_category).status_code == 400
    assert transition(b, {"action": "RETURN"}).status_code == 400
    assert fake.submissions()[b]["status"] == "AWAITING REVIEW"

    r = transition(b, reject_body(message="x" * 100))
    assert r.status_code == 200
    assert r.json()["status"] == "REJECTED"
    assert transition(b, {"action": "APPROVE"}).status_code == 400  # cannot be reverted
    assert transition(b, reject_body()).status_code == 400

    r = transition(a, {"action": "APPROVE"})
    assert r.status_code == 200
    assert r.json()["status"] == "APPROVED"
    assert r.json()["participant"] == pid(1)
    again = transition(a, {"action": "APPROVE"})
    assert again.status_code == 400
    assert "already APPROVED" in again.json()["error"]["detail"]
    assert transition(a, reject_body()).status_code == 400
    assert transition("nope", {"action": "APPROVE"}).status_code == 404


def test_repeat_transition_ignore_option() -> None:
    fake = FakeProlific(repeat_transition="ignore")
    sid = fake.add_study(status="ACTIVE")
    sub = fake.add_submission(sid, pid(1))
    with fake.client() as http:
        url = f"submissions/{sub}/transition/"
        assert http.post(url, json={"action": "APPROVE"}).status_code == 200
        assert http.post(url, json={"action": "APPROVE"}).json()["status"] == "APPROVED"
        assert http.post(url, json=reject_body()).status_code == 400


def test_study_submissions_list_and_bulk_approve(http: httpx.Client, fake: FakeProlific) -> None:
    sid = fake.add_study(status="AWAITING REVIEW")
    subs = [fake.add_submission(sid, pid(i)) for i in range(25)]
    returned = fake.add_submission(sid, pid(99), status="RETURNED")

    items, pages, count = walk(http, f"studies/{sid}/submissions/")
    assert (count, pages) == (26, 2)
    assert [s["id"] for s in items] == [*subs, returned]
    assert set(items[0]) >= {"id", "participant_id", "status", "started_at", "completed_at"}

    too_many = {"submission_ids": subs * (BULK_APPROVE_MAX // len(subs) + 1)}
    assert http.post("submissions/bulk-approve/", json=too_many).status_code == 400
    unknown = {"submission_ids": [subs[0], "6c" + "f" * 22]}
    assert http.post("submissions/bulk-approve/", json=unknown).status_code == 400
    assert http.post("submissions/bulk-approve/", json={"submission_ids": []}).status_code == 400
    assert all(fake.submissions()[s]["status"] == "AWAITING REVIEW" for s in subs)

    r = http.post("submissions/bulk-approve/", json={"study_id": sid, "submission_ids": subs[:20]})
    assert r.status_code == 200
    assert isinstance(r.json(), str)
    by_participant = {"study_id": sid, "participant_ids": [pid(i) for i in range(20, 25)]}
    assert http.post("submissions/bulk-approve/", json=by_participant).status_code == 200
    stored = fake.submissions()
    assert all(stored[s]["status"] == "APPROVED" for s in subs)
    assert stored[returned]["status"] == "RETURNED"
    assert fake.studies()[sid]["status"] == "COMPLETED"


def test_processing_reads() -> None:
    fake = FakeProlific(processing_reads=2)
    sid = fake.add_study(status="ACTIVE")
    sub = fake.add_submission(sid, pid(1))
    with fake.client() as http:
        assert http.get(f"submissions/{sub}/").json()["status"] == "AWAITING REVIEW"
        r = http.post(f"submissions/{sub}/transition/", json={"action": "APPROVE"})
        assert r.json()["status"] == "APPROVED"
        listed = http.get(f"studies/{sid}/submissions/").json()["results"]
        assert listed[0]["status"] == "PROCESSING"  # lists show it without consuming a read
        seen = [http.get(f"submissions/{sub}/").json()["status"] for _ in range(4)]
        assert seen == ["PROCESSING", "PROCESSING", "APPROVED", "APPROVED"]
        # the real status is final: a second approval is still refused while PROCESSING shows
        sub2 = fake.add_submission(sid, pid(2))
        http.post(f"submissions/{sub2}/transition/", json={"action": "APPROVE"})
        r = http.post(f"submissions/{sub2}/transition/", json={"action": "APPROVE"})
        assert r.status_code == 400


# ---------------------------------------------------------- faults and auth


def test_429_injection_changes_no_state(http: httpx.Client, fake: FakeProlific) -> None:
    gid = make_group(http, fake)["id"]
    url = f"participant-groups/{gid}/participants/"
    fake.fail_next(status=429, times=2, path_contains="/participants/", retry_after=1.5)
    n_before = len(fake.requests)

    for _ in range(2):
        r = http.post(url, json={"participant_ids": [pid(1)]})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1.5"
        assert r.json()["error"]["status"] == 429
    assert fake.group_members(gid) == set()
    assert len(fake.requests) == n_before + 2  # failed requests are recorded

    assert http.get(f"participant-groups/{gid}/").status_code == 200  # path did not match
    assert http.post(url, json={"participant_ids": [pid(1)]}).status_code == 200
    assert fake.group_members(gid) == {pid(1)}

    fake.fail_next(status=500)
    assert http.post("studies/", json={"name": "s", "total_available_places": 1}).status_code == 500
    assert fake.studies() == {}


def test_fail_every_and_clear_faults(http: httpx.Client, fake: FakeProlific) -> None:
    gid = make_group(http, fake)["id"]
    fake.fail_every(3, path_contains="participant-groups")
    codes = [http.get(f"participant-groups/{gid}/").status_code for _ in range(7)]
    assert codes == [200, 200, 503, 200, 200, 503, 200]
    fake.clear_faults()
    assert all(http.get(f"participant-groups/{gid}/").status_code == 200 for _ in range(5))


def test_processing_read_not_consumed_by_injected_failure() -> None:
    fake = FakeProlific(processing_reads=1)
    sid = fake.add_study(status="ACTIVE")
    sub = fake.add_submission(sid, pid(1))
    with fake.client() as http:
        http.post(f"submissions/{sub}/transition/", json={"action": "APPROVE"})
        fake.fail_next(status=503)
        assert http.get(f"submissions/{sub}/").status_code == 503
        assert http.get(f"submissions/{sub}/").json()["status"] == "PROCESSING"
        assert http.get(f"submissions/{sub}/").json()["status"] == "APPROVED"


def test_auth_required_and_token_never_echoed(fake: FakeProlific) -> None:
    responses: list[httpx.Response] = []
    router = respx.Router(assert_all_called=False)
    fake.mount(router)
    transport = httpx.MockTransport(router.handler)

    def keep(response: httpx.Response) -> None:
        response.read()
        responses.append(response)

    hooks = {"response": [keep]}
    with httpx.Client(base_url=fake.BASE_URL, transport=transport, event_hooks=hooks) as anon:
        r = anon.get("participant-groups/", params={"workspace_id": fake.workspace_id})
        assert r.status_code == 401
        assert r.json()["error"]["status"] == 401
        wrong = {"Authorization": "Token wrong"}
        assert anon.get("filters/", headers=wrong).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert anon.get("filters/", headers=bearer).status_code == 401
        assert fake.groups() == {}

    auth = {"Authorization": f"Token {TOKEN}"}
    with httpx.Client(
        base_url=fake.BASE_URL, transport=transport, event_hooks=hooks, headers=auth
    ) as http:
        gid = make_group(http, fake, members=[pid(1)])["id"]
        http.get(f"participant-groups/{gid}/participants/")
        http.get("participant-groups/", params={"workspace_id": fake.workspace_id})
        sid = http.post("studies/", json={"name": "s", "total_available_places": 1}).json()["id"]
        http.patch(f"studies/{sid}/", json={"filters": "bad"})
        http.get("filters/")
        http.get("nowhere/")
        fake.fail_next(retry_after=2)
        http.get("filters/")
    assert len(responses) == 11
    assert {r.status_code for r in responses} >= {200, 201, 400, 401, 404, 429}
    assert all(TOKEN not in r.text for r in responses)


def test_mount_on_a_respx_mock_router(fake: FakeProlific) -> None:
    with respx.mock(assert_all_called=False) as mock:
        fake.mount(mock)
        r = httpx.get(fake.BASE_URL + "filters/", headers={"Authorization": f"Token {TOKEN}"})
    assert r.status_code == 200


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert http.get("no/such/thing/").status_code == 404
    assert http.put("studies/").status_code == 405
    assert http.get("submissions/bulk-approve/").status_code == 405


# ------------------------------------------------------------- eligibility


def test_filters_endpoint_lists_ids(http: httpx.Client, fake: FakeProlific) -> None:
    gid = make_group(http, fake, "Cohort")["id"]
    results = http.get("filters/").json()["results"]
    by_id = {f["filter_id"]: f for f in results}
    assert set(by_id) == {
        "participant_group_allowlist",
        "participant_group_blocklist",
        "previous_studies_allowlist",
        "previous_studies_blocklist",
        "custom_allowlist",
        "custom_blocklist",
        "approval_rate",
        "approval_numbers",
    }
    assert by_id["participant_group_allowlist"]["choices"] == {gid: "Cohort"}
    assert by_id["approval_rate"]["type"] == "range"


def test_admits(http: httpx.Client, fake: FakeProlific) -> None:
    allowed = make_group(http, fake, "allowed", [pid(1), pid(2), pid(3)])["id"]
    blocked = make_group(http, fake, "blocked", [pid(3)])["id"]
    empty = make_group(http, fake, "empty")["id"]
    for p, rate, n in ((pid(1), 99.0, 500), (pid(2), 90.0, 500), (pid(3), 99.0, 500)):
        fake.set_participant_stats(p, approval_rate=rate, approvals=n)
    fake.set_participant_stats(pid(4), approval_rate=100.0, approvals=10)

    sid = fake.add_study(
        filters=[
            {"filter_id": "participant_group_allowlist", "selected_values": [allowed, empty]},
            {"filter_id": "participant_group_blocklist", "selected_values": [blocked]},
            {"filter_id": "approval_rate", "selected_range": {"lower": 95, "upper": 100}},
            {"filter_id": "approval_numbers", "selected_range": {"lower": 100}},
        ]
    )
    assert fake.admits(sid, pid(1))
    assert not fake.admits(sid, pid(2))  # approval rate too low
    assert not fake.admits(sid, pid(3))  # blocklisted
    assert not fake.admits(sid, pid(4))  # not in the allowlisted group

    # membership is live: adding to the group admits, deleting the blocklist group unblocks
    http.post(f"participant-groups/{allowed}/participants/", json={"participant_ids": [pid(4)]})
    assert not fake.admits(sid, pid(4))  # still too few approvals
    http.delete(f"participant-groups/{blocked}/")
    assert fake.admits(sid, pid(3))

    only_empty = fake.add_study(
        filters=[{"filter_id": "participant_group_allowlist", "selected_values": [empty]}]
    )
    assert not any(fake.admits(only_empty, pid(i)) for i in range(1, 6))

    custom = fake.add_study(
        filters=[
            {"filter_id": "custom_allowlist", "selected_values": [pid(1), pid(2)]},
            {"filter_id": "custom_blocklist", "selected_values": [pid(2)]},
        ]
    )
    assert fake.admits(custom, pid(1))
    assert not fake.admits(custom, pid(2))
    assert not fake.admits(custom, pid(5))

    fake.add_submission(custom, pid(7), status="APPROVED")
    follow_up = fake.add_study(
        filters=[{"filter_id": "previous_studies_allowlist", "selected_values": [custom]}]
    )
    assert fake.admits(follow_up, pid(7))
    assert not fake.admits(follow_up, pid(8))
    assert fake.admits(fake.add_study(), pid(9))  # no filters: everyone


def test_unseeded_stats_fail_range_filters(fake: FakeProlific) -> None:
    sid = fake.add_study(filters=[{"filter_id": "approval_rate", "selected_range": {"lower": 0}}])
    assert not fake.admits(sid, pid(1))
    with pytest.raises(ValueError, match="participant id"):
        fake.set_participant_stats("nope", approval_rate=1.0, approvals=1)
