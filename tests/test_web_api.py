"""The JSON API (/api/v1/) and the Prolific webhooks (/hooks/prolific), through httpx:
against the ASGI app, and against a real uvicorn on a free port.

Each answer is compared with what the library (and so the command line) says for the
same question; each command with what it recorded (actor = the token's name, the
Idempotency-Key as the command's key); each refusal with its status, code and field.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crowdledger import Ledger
from crowdledger.adapters.cli.app import app as cli
from crowdledger.adapters.ledger.reads import show_document
from crowdledger.adapters.web.app import create_app
from crowdledger.adapters.web.hooks import sign
from tests.web_support import Story, running, seed

BASE = "http://127.0.0.1"
SECRET = "whsec-test-secret"


@pytest.fixture
def story(ledger_url: str, tmp_path: Path) -> Iterator[Story]:
    with Ledger.open(ledger_url) as ledger:
        yield seed(ledger, tmp_path)


@pytest.fixture
def app(story: Story) -> Iterator[Any]:
    made = create_app(None, [story.rules], ledger=story.ledger)
    made.state.web.extra["prolific_hook_secret"] = SECRET
    yield made
    live = made.state.web.extra.get("live_facts")
    if live is not None:
        live.close()


def client(app: Any, token: str | None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url=BASE, headers=headers)


def without_time(decision: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in decision.items() if k != "as_of"}


def test_reads_answer_what_the_library_and_cli_answer(story: Story, app: Any) -> None:
    api = client(app, story.viewer)
    shown = api.get("/api/v1/workers/local:w1")
    assert shown.status_code == 200
    assert shown.json() == json.loads(json.dumps(show_document(story.ledger, "local:w1")))
    cli_show = CliRunner().invoke(
        cli, ["--db", story.ledger.url.text, "show", "local:w1", "--json"]
    )
    assert cli_show.exit_code == 0, cli_show.output
    assert json.loads(cli_show.stdout) == shown.json()

    history = api.get("/api/v1/workers/local:w1/history").json()
    assert [e["position"] for e in history] == [
        e.position for e in story.ledger.history("local:w1")
    ]

    for worker in ("local:w0", "local:w1", "local:w2", "local:nobody"):
        answer = api.post("/api/v1/check", json={"worker": worker, "ruleset": "english-speakers"})
        assert answer.status_code == 200
        expected = story.ledger.check(worker, story.rules).model_dump(mode="json")
        assert without_time(answer.json()) == without_time(expected)
    assert api.get("/api/v1/eligible", params={"ruleset": "english-speakers"}).json() == sorted(
        story.ledger.eligible_workers(story.rules)
    )
    queue = api.get("/api/v1/review/queue", params={"task": "cats"}).json()
    assert [item["submission"] for item in queue] == ["cats-1", "cats-2", "cats-3"]


def test_commands_record_the_token_name_and_the_idempotency_key(story: Story, app: Any) -> None:
    admin = client(app, story.admin)
    before = story.ledger.head()
    body = {"worker": "local:w0", "qualification": "english", "value": 5, "reason": "retested"}
    first = admin.post("/api/v1/commands/grant", json=body, headers={"Idempotency-Key": "g-1"})
    assert first.status_code == 200, first.text
    (event,) = first.json()["events"]
    assert event["actor"] == "ada"
    assert event["value"] == 5
    assert event["reason"] == "retested"
    again = admin.post("/api/v1/commands/grant", json=body, headers={"Idempotency-Key": "g-1"})
    assert again.json() == first.json()
    assert story.ledger.head() == before + 1
    # The check sees it at once (facts in memory, brought up to date by the command).
    decided = admin.post(
        "/api/v1/check", json={"worker": "local:w0", "ruleset": "english-speakers"}
    )
    assert decided.json()["eligible"] is True
    reused = admin.post(
        "/api/v1/commands/grant", json={**body, "value": 6}, headers={"Idempotency-Key": "g-1"}
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"

    reviewer = client(app, story.reviewer)
    approved = reviewer.post("/api/v1/commands/approve", json={"submissions": ["cats-1", "cats-2"]})
    assert approved.status_code == 200, approved.text
    assert [e["submission"] for e in approved.json()["events"]] == ["cats-1", "cats-2"]
    assert {e["actor"] for e in approved.json()["events"]} == {"rita"}
    twice = reviewer.post("/api/v1/commands/approve", json={"submissions": "cats-1"})
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "submission_state"


def test_refusals_say_status_code_and_field(story: Story, app: Any) -> None:
    head = story.ledger.head()
    anonymous = client(app, None).get("/api/v1/workers/local:w1")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    viewer = client(app, story.viewer)
    forbidden = viewer.post("/api/v1/commands/approve", json={"submissions": "cats-3"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    reviewer = client(app, story.reviewer)
    assert (
        reviewer.post(
            "/api/v1/commands/grant", json={"worker": "local:w1", "qualification": "english"}
        ).status_code
        == 403
    )
    admin = client(app, story.admin)
    bad = admin.post("/api/v1/commands/grant", json={"worker": "nope", "qualification": "english"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "worker"
    assert bad.json()["error"]["exit_status"] == 2
    missing = admin.post("/api/v1/commands/grant", json={"worker": "local:w1"})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "qualification"
    unknown = admin.post(
        "/api/v1/commands/grant", json={"worker": "local:w1", "qualification": "french"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_qualification"
    not_held = admin.post(
        "/api/v1/commands/unblock", json={"worker": "local:w1", "scope": "global"}
    )
    assert not_held.status_code == 409
    assert not_held.json()["error"]["code"] == "not_blocked"
    no_rules = viewer.post("/api/v1/check", json={"worker": "local:w1", "ruleset": "other"})
    assert no_rules.status_code == 404
    assert no_rules.json()["error"]["field"] == "ruleset"
    # The lean check route keeps the same contract as the others.
    no_field = viewer.post("/api/v1/check", json={"worker": "local:w1"})
    assert no_field.status_code == 422
    assert no_field.json()["error"]["field"] == "ruleset"
    extra = viewer.post(
        "/api/v1/check", json={"worker": "local:w1", "ruleset": "english-speakers", "x": 1}
    )
    assert extra.status_code == 422
    not_json = viewer.post("/api/v1/check", content=b"{nope")
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "invalid_input"
    anonymous = client(app, None).post(
        "/api/v1/check", json={"worker": "local:w1", "ruleset": "english-speakers"}
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    assert story.ledger.head() == head  # nothing recorded by any of them


def test_the_openapi_document_describes_every_route(app: Any, story: Story) -> None:
    document = client(app, None).get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/workers/{worker}",
        "/api/v1/workers/{worker}/history",
        "/api/v1/check",
        "/api/v1/eligible",
        "/api/v1/review/queue",
        "/api/v1/healthz",
        "/hooks/prolific",
    ):
        assert path in paths, path
    commands = {p.rsplit("/", 1)[1] for p in paths if p.startswith("/api/v1/commands/")}
    assert commands == {
        "grant",
        "revoke",
        "adjust",
        "block",
        "unblock",
        "approve",
        "reject",
        "soft-reject",
        "bonus",
        "record-submission",
    }
    check_body = paths["/api/v1/check"]["post"]["requestBody"]["content"]["application/json"]
    assert set(check_body["schema"]["required"]) == {"worker", "ruleset"}
    # Each command documents its own request body (one table serves them all).
    bodies = {
        name: paths[f"/api/v1/commands/{name}"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]["$ref"]
        for name in commands
    }
    assert len(set(bodies.values())) == len(commands)
    assert bodies["grant"].endswith("/GrantBody")
    grant = paths["/api/v1/commands/grant"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in grant["parameters"])
    # Every route the router serves is in the document, and nothing else under /api/v1.
    from crowdledger.adapters.web import api, hooks

    served = {r.path for r in (*api.router.routes, *hooks.router.routes)}  # type: ignore[attr-defined]
    assert served == {p for p in paths if p.startswith(("/api/v1/", "/hooks/"))}


def _delivery(
    body: dict[str, Any], *, event: str, secret: str = SECRET, age: int = 0
) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) - age)
    return {
        "content": raw,
        "headers": {
            "X-Prolific-Request-Timestamp": stamp,
            "X-Prolific-Request-Signature": sign(secret, stamp, raw),
            "X-Event-ID": event,
            "Content-Type": "application/json",
        },
    }


def test_prolific_webhooks_are_verified_and_recorded_once(story: Story, app: Any) -> None:
    hooks = client(app, None)
    created = {
        "event_type": "participant.submission.created",
        "resource_id": "sub-1",
        "participant_id": "5f3b2a1c9d8e7f6a5b4c3d2e",
        "study_id": "study-9",
    }
    head = story.ledger.head()
    ok = hooks.post("/hooks/prolific", **_delivery(created, event="e-1"))
    assert ok.status_code == 200, ok.text
    assert story.ledger.head() == head + 1
    assert hooks.post("/hooks/prolific", **_delivery(created, event="e-1")).json()["duplicate"]
    approved = {
        "event_type": "submission.status.change",
        "resource_id": "sub-1",
        "participant_id": "5f3b2a1c9d8e7f6a5b4c3d2e",
        "status": "APPROVED",
    }
    assert hooks.post("/hooks/prolific", **_delivery(approved, event="e-2")).json()["recorded"] == 1
    # Delivered again under a new id (at least once): the submission's key holds.
    assert hooks.post("/hooks/prolific", **_delivery(approved, event="e-3")).json()["recorded"] == 0
    assert story.ledger.head() == head + 2
    kinds = [type(e).__name__ for e in story.ledger.history("prolific:5f3b2a1c9d8e7f6a5b4c3d2e")]
    assert kinds == ["SubmissionRecorded", "SubmissionApproved"]

    refused = [
        ("refused_bad_signature", _delivery(created, event="e-4", secret="wrong")),
        ("refused_stale", _delivery(created, event="e-5", age=301)),
    ]
    unsigned = _delivery(created, event="e-6")
    del unsigned["headers"]["X-Prolific-Request-Signature"]
    refused.append(("refused_unsigned", unsigned))
    tampered = _delivery(created, event="e-7")
    tampered["content"] = tampered["content"].replace(b"sub-1", b"sub-2")
    refused.append(("refused_bad_signature", tampered))
    for code, delivery in refused:
        answer = hooks.post("/hooks/prolific", **delivery)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == code
    assert story.ledger.head() == head + 2
    counts = hooks.get("/api/v1/healthz").json()["hooks"]
    assert counts["refused_bad_signature"] == 2
    assert counts["refused_stale"] == 1
    assert counts["refused_unsigned"] == 1
    assert counts["duplicate"] == 1
    assert counts["accepted"] == 3


def test_a_real_server_answers_over_http(story: Story, app: Any) -> None:
    with running(app) as url:
        headers = {"Authorization": f"Bearer {story.admin}"}
        with httpx.Client(base_url=url, headers=headers) as http:
            assert http.get("/api/v1/healthz").json()["status"] == "ok"
            granted = http.post(
                "/api/v1/commands/grant",
                json={"worker": "local:w7", "qualification": "english", "value": 3},
                headers={"Idempotency-Key": "real-1"},
            )
            assert granted.status_code == 200
            decided = http.post(
                "/api/v1/check", json={"worker": "local:w7", "ruleset": "english-speakers"}
            )
            assert decided.json()["eligible"] is True
            assert http.get("/api/v1/workers/local:w7").json()["qualifications"] == {"english": 3}
            assert http.get("/api/v1/workers/bad id").status_code == 422


def test_a_rejection_seen_on_prolific_is_recorded_with_its_submission(
    story: Story, app: Any
) -> None:
    hooks = client(app, None)
    worker = "5f3b2a1c9d8e7f6a5b4c3d2f"
    rejected = {
        "event_type": "submission.status.change",
        "resource_id": "sub-9",
        "participant_id": worker,
        "status": "REJECTED",
        "study_id": "study-9",
    }
    answer = hooks.post("/hooks/prolific", **_delivery(rejected, event="r-1"))
    assert answer.json()["recorded"] == 2, answer.text
    kinds = [type(e).__name__ for e in story.ledger.history(f"prolific:{worker}")]
    assert kinds == ["SubmissionRecorded", "SubmissionRejected"]
    assert story.ledger.stats(f"prolific:{worker}")["rejected"] == 1
    unknown = {**rejected, "resource_id": "sub-10", "study_id": None}
    assert (
        hooks.post("/hooks/prolific", **_delivery(unknown, event="r-2")).json()["note"]
        == "unmatched"
    )
    assert hooks.get("/api/v1/healthz").json()["hooks"]["unmatched"] == 1
