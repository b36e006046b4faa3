"""Prolific's webhooks: ``POST /hooks/prolific``, each delivery verified, recorded once.

Prolific signs every delivery: ``X-Prolific-Request-Signature`` is
base64(HMAC-SHA256(secret, ``X-Prolific-Request-Timestamp`` + raw body)), with the
workspace's secret that ``crowdledger notifications setup --provider prolific`` created
and keeps in a file (see :mod:`crowdledger.adapters.prolific.hooks`). A delivery that is
unsigned, badly signed or stamped more than five minutes away from now is refused (401)
and counted; the counts are in ``GET /api/v1/healthz``.

What is recorded goes through the ordinary commands with the idempotency keys the
submissions' ingestion uses (``prolific:submission:<id>:recorded`` / ``:approved`` /
``:rejected``), so a delivery repeated under the same ``X-Event-ID``, or a submission
both delivered here and ingested by ``sync ingest``, is recorded once. The event id is
the events' ``correlation_id`` (``prolific-hook:<X-Event-ID>``).

- ``participant.submission.created``: the submission is recorded (its study is its task).
- ``submission.status.change``: ``AWAITING REVIEW`` records it if new; ``APPROVED`` and
  ``REJECTED`` record the review Prolific made. Other statuses are acknowledged only.

A delivery names no study for a status change; a submission the ledger has not seen,
without a ``study_id`` in the body or a task configured for the hooks, is acknowledged
but not recorded (counted as ``unmatched``; ``sync ingest`` brings it in).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from crowdledger.adapters.web.errors import LedgerErrorRoute, error_body
from crowdledger.domain.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    OutOfOrderError,
    SubmissionAlreadyRecordedError,
    SubmissionStateError,
    UnknownSubmissionError,
)

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.adapters.web.app import WebState

__all__ = [
    "MAX_SKEW_SECONDS",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "TASK_ENV",
    "hook_stats",
    "router",
    "sign",
]

MAX_SKEW_SECONDS = 300
SECRET_FILE_ENV = "CROWDLEDGER_PROLIFIC_HOOK_SECRET_FILE"
SECRET_ENV = "CROWDLEDGER_PROLIFIC_HOOK_SECRET"
TASK_ENV = "CROWDLEDGER_PROLIFIC_HOOK_TASK"
_COUNTS = (
    "accepted",
    "recorded",
    "duplicate",
    "unmatched",
    "refused_unsigned",
    "refused_bad_signature",
    "refused_stale",
    "refused_no_secret",
)
_SEEN = 10_000  # event ids remembered (repeats beyond are still recorded once, by key)
_REJECTED_NOTE = (
    "Rejected on Prolific; recorded from the submission.status.change webhook, whose "
    "delivery carries neither the researcher's message nor the rejection category."
)

router = APIRouter(prefix="/hooks", tags=["webhooks"], route_class=LedgerErrorRoute)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Prolific's signature of a delivery (what a test, or a relay, puts in the header)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _HookState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.seen: OrderedDict[str, None] = OrderedDict()

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def _state(web: WebState) -> _HookState:
    state = web.extra.get("prolific_hooks")
    if state is None:
        state = web.extra.setdefault("prolific_hooks", _HookState())
    assert isinstance(state, _HookState)
    return state


def hook_stats(web: WebState) -> dict[str, int]:
    """How many deliveries were accepted, recorded, repeated, refused (and why)."""
    state = _state(web)
    with state.lock:
        return dict(state.counts)


def _secret(web: WebState) -> str | None:
    configured = web.extra.get("prolific_hook_secret")
    if isinstance(configured, str):
        return configured
    if SECRET_ENV in os.environ:
        return os.environ[SECRET_ENV]
    path = os.environ.get(SECRET_FILE_ENV)
    if path:
        from crowdledger.adapters.prolific.hooks import read_secret

        secret = read_secret(path)["secret"]
        assert isinstance(secret, str)
        web.extra["prolific_hook_secret"] = secret
        return secret
    return None


def _refuse(state: _HookState, what: str, message: str, status: int = 401) -> JSONResponse:
    state.count(what)
    return JSONResponse(error_body(what, message), status_code=status)


@router.post("/prolific", summary="Prolific webhook deliveries (signed)")
async def prolific(request: Request) -> JSONResponse:
    web: WebState = request.app.state.web
    state = _state(web)
    secret = _secret(web)
    if secret is None:
        return _refuse(state, "refused_no_secret", "no Prolific hook secret is configured", 503)
    signature = request.headers.get("x-prolific-request-signature")
    stamp = request.headers.get("x-prolific-request-timestamp")
    if not signature or not stamp:
        return _refuse(state, "refused_unsigned", "the delivery is not signed")
    body = await request.body()
    if not hmac.compare_digest(sign(secret, stamp, body).encode(), signature.encode()):
        return _refuse(state, "refused_bad_signature", "the signature does not match")
    try:
        sent = int(stamp)
    except ValueError:
        return _refuse(state, "refused_stale", "the timestamp is not UNIX seconds")
    if abs(time.time() - sent) > MAX_SKEW_SECONDS:
        return _refuse(state, "refused_stale", "the delivery is more than 5 minutes old")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        raise InvalidInputError("body", "a Prolific delivery is a JSON object")
    event_id = request.headers.get("x-event-id") or ""
    with state.lock:
        repeated = event_id in state.seen
    if repeated:
        state.count("duplicate")
        return JSONResponse({"recorded": 0, "duplicate": True})
    when = datetime.fromtimestamp(sent, UTC)
    from starlette.concurrency import run_in_threadpool

    recorded, note = await run_in_threadpool(_record, web, payload, event_id, when)
    with state.lock:
        if event_id:
            state.seen[event_id] = None
            while len(state.seen) > _SEEN:
                state.seen.popitem(last=False)
        state.counts["accepted"] += 1
        state.counts["recorded"] += recorded
        if note == "unmatched":
            state.counts["unmatched"] += 1
    if recorded:  # other processes learn of it from the log's NOTIFY trigger
        from crowdledger.adapters.web.api import live_facts

        live_facts(web).sync()
    return JSONResponse({"recorded": recorded, "note": note})


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(key, f"a Prolific delivery needs {key!r}")
    return value


def _record(
    web: WebState, payload: dict[str, Any], event_id: str, when: datetime
) -> tuple[int, str]:
    """Record what the delivery says; (events recorded, a note)."""
    ledger: Ledger = web.ledger
    kind = payload.get("event_type")
    if kind not in ("submission.status.change", "participant.submission.created"):
        return 0, f"event type {kind!r} is not recorded"
    submission = _text(payload, "resource_id")
    worker = f"prolific:{_text(payload, 'participant_id')}"
    status = payload.get("status") if kind == "submission.status.change" else "created"
    context: dict[str, Any] = {
        "actor": "prolific",
        "reason": f"Prolific webhook {kind}",
        "correlation_id": f"prolific-hook:{event_id}"[:200] if event_id else None,
    }
    head = ledger.head()
    prefix = f"prolific:submission:{submission}"
    if status in ("created", "AWAITING REVIEW", "APPROVED", "REJECTED"):
        task = payload.get("study_id") or os.environ.get(TASK_ENV)
        if not _known(ledger, submission):
            if not isinstance(task, str) or not task:
                return 0, "unmatched"
            with contextlib.suppress(SubmissionAlreadyRecordedError, IdempotencyKeyReusedError):
                ledger.record_submission(
                    worker,
                    task=task,
                    submission=submission,
                    accepted_at=when if status == "created" else None,
                    submitted_at=None if status == "created" else when,
                    key=f"{prefix}:recorded",
                    **context,
                )
    if status in ("APPROVED", "REJECTED"):
        review = ledger.approve if status == "APPROVED" else ledger.reject
        extra: dict[str, Any] = (
            {} if status == "APPROVED" else {"feedback": _REJECTED_NOTE, "category": "OTHER"}
        )
        key = f"{prefix}:{status.lower()}"
        for attempt in (when, None):
            try:
                review(submission, occurred_at=attempt, key=key, **extra, **context)
                break
            except OutOfOrderError:
                continue  # the ledger has a later event on it: take effect now instead
            except (SubmissionStateError, UnknownSubmissionError, IdempotencyKeyReusedError):
                break  # already reviewed (here or by a sync), or never recorded
    return ledger.head() - head, str(status)


def _known(ledger: Ledger, submission: str) -> bool:
    with ledger._reading() as (tx, _model):
        found = tx.views.execute(
            "SELECT 1 FROM cl_submissions WHERE submission = ?", (submission,)
        ).fetchone()
    return found is not None
