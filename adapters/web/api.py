"""The JSON API under ``/api/v1/``: the ledger for task servers that are not Python.

Every answer is the document the command line prints with ``--json`` (``show``,
``history``, ``check``, ``eligible``, ``review queue``), produced by the same functions;
every command is the Python API's method with the same fields, recorded with the
token's name as ``actor`` and the ``Idempotency-Key`` header as its ``key`` (a repeated
request with the same key records nothing and answers the first result). Errors are
``{"error": {"code", "message", "field"}}`` (see :mod:`~crowdledger.adapters.web.errors`).

``POST check`` answers from :class:`~crowdledger.adapters.ledger.live_facts.LiveFacts`
(facts in memory, current with the log), so it makes no query per request on
PostgreSQL and one (the log's head) on SQLite.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crowdledger.adapters.cli.support import parse_time
from crowdledger.adapters.ledger.live_facts import LiveFacts
from crowdledger.adapters.ledger.reads import show_document
from crowdledger.adapters.store.codec import event_to_document
from crowdledger.adapters.sync.redaction import redacted_document
from crowdledger.adapters.web.auth import Principal, require
from crowdledger.adapters.web.errors import LedgerErrorRoute, error_body
from crowdledger.domain.errors import InvalidInputError, quoted
from crowdledger.domain.events import LedgerEvent

if TYPE_CHECKING:
    from crowdledger.adapters.web.app import WebState
    from crowdledger.rules.ruleset import RuleSet

__all__ = ["live_facts", "router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {"application/json": {"example": error_body("code", text)}},
    }
    for status, text in (
        (401, "no valid token"),
        (403, "the token's role may not do this"),
        (404, "no such worker, rule set, qualification or submission"),
        (409, "refused by the ledger's state; nothing recorded"),
        (422, "malformed input; nothing recorded"),
    )
}

router = APIRouter(prefix="/api/v1", tags=["api"], route_class=LedgerErrorRoute, responses=_ERRORS)

Key = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Repeating a command with it records nothing."),
]


def _web(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def live_facts(web: WebState) -> LiveFacts:
    """The app's facts in memory (made on first use): on PostgreSQL woken by NOTIFY from
    any process of the same ledger, on SQLite checking the log's head per request."""
    live = web.extra.get("live_facts")
    if live is None:
        on_postgres = web.ledger.url.kind == "postgresql"
        live = LiveFacts(web.ledger, follow="notify" if on_postgres else "head")
        web.extra["live_facts"] = live
    assert isinstance(live, LiveFacts)
    return live


def _ruleset(web: WebState, name: str) -> RuleSet:
    found = web.rulesets.get(name)
    if found is None:
        known = ", ".join(sorted(web.rulesets)) or "none (start serve with --rules FILE)"
        raise _NoSuchRuleset(f"no rule set named {quoted(name)} is loaded; loaded: {known}")
    return found


class _NoSuchRuleset(InvalidInputError):
    http_status = 404
    code = "unknown_ruleset"

    def __init__(self, message: str) -> None:
        super().__init__("ruleset", message)


def _documents(events: list[LedgerEvent]) -> list[dict[str, Any]]:
    return [redacted_document(event_to_document(e)) for e in events]


# -- reads -----------------------------------------------------------------------------------
@router.get("/healthz", summary="Liveness: the log's head and the webhook counts")
def healthz(request: Request) -> dict[str, Any]:
    web = _web(request)
    from crowdledger.adapters.web.hooks import hook_stats

    live = web.extra.get("live_facts")
    return {
        "status": "ok",
        "position": web.ledger.head(),
        # Which process answered (serve --workers N) and how far its facts in memory have
        # followed the log (None before its first check): what a multi-process test and an
        # operator look at to see every process is current.
        "pid": os.getpid(),
        "facts_position": live.position if isinstance(live, LiveFacts) else None,
        "hooks": hook_stats(web),
    }


@router.get("/workers/{worker}", summary="What `show --json` prints")
def show_worker(
    worker: str, request: Request, who: Annotated[Principal, Depends(require("read"))]
) -> dict[str, Any]:
    return show_document(_web(request).ledger, worker)


@router.get("/workers/{worker}/history", summary="What `history --json` prints")
def worker_history(
    worker: str, request: Request, who: Annotated[Principal, Depends(require("read"))]
) -> list[dict[str, Any]]:
    return _documents(_web(request).ledger.history(worker))


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker: str = Field(description="provider:id, e.g. mturk:A1B2C3D4E5F6G7")
    ruleset: str = Field(description="The name of a rule set loaded with serve --rules")
    as_of: str | None = Field(None, description="ISO 8601; decide as of this time")


_may_read = require("read")
_CHECK_BODY = CheckBody.model_json_schema()


@router.post(
    "/check",
    summary="What `check --json` prints",
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _CHECK_BODY}},
        }
    },
    responses={200: {"description": "The decision, as `check --json` prints it"}},
)
async def check(request: Request) -> Response:
    """The hot path of a task server, kept lean: the body is parsed by pydantic straight
    from its bytes (no FastAPI body or dependency machinery), the answer serialised once
    by orjson. The same refusals as any route: 401/403 from :func:`require`, a malformed
    body as a 422 naming the field, an unknown rule set as a 404."""
    who = await _may_read(request)
    del who  # reading needs no actor; require() has refused whoever may not read
    try:
        body = CheckBody.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    # Answered on the event loop: from memory, with at most one indexed query (SQLite's
    # head); the worker's first check reads the read models once. A check of the past
    # replays events, so it goes to the thread pool like the other routes.
    web = _web(request)
    ruleset = _ruleset(web, body.ruleset)
    when = parse_time(body.as_of, "as_of")
    if when is not None:
        from starlette.concurrency import run_in_threadpool

        decision = await run_in_threadpool(web.ledger.check, body.worker, ruleset, as_of=when)
    else:
        decision = live_facts(web).check(body.worker, ruleset)
    return Response(orjson.dumps(decision.model_dump(mode="json")), media_type="application/json")


@router.get("/eligible", summary="What `eligible --json` prints")
def eligible(
    request: Request,
    who: Annotated[Principal, Depends(require("read"))],
    ruleset: Annotated[str, Query(description="A loaded rule set's name")],
    as_of: Annotated[str | None, Query(description="ISO 8601")] = None,
) -> list[str]:
    web = _web(request)
    found = web.ledger.eligible_workers(_ruleset(web, ruleset), as_of=parse_time(as_of, "as_of"))
    return sorted(found)


@router.get("/review/queue", summary="What `review queue --json` prints")
def review_queue(
    request: Request,
    who: Annotated[Principal, Depends(require("read"))],
    task: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    return [item.as_dict() for item in _web(request).ledger.review_queue(task)]


# -- commands --------------------------------------------------------------------------------
class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None
    occurred_at: str | None = Field(None, description="ISO 8601; default now")
    correlation_id: str | None = None


class GrantBody(_Command):
    worker: str
    qualification: str
    value: int = 1


class RevokeBody(_Command):
    worker: str
    qualification: str


class AdjustBody(_Command):
    worker: str
    qualification: str
    by: int
    initial: int | None = None


class BlockBody(_Command):
    worker: str
    scope: str = "global"
    until: str | None = Field(None, description="ISO 8601; default for good")


class UnblockBody(_Command):
    worker: str
    scope: str = "global"


class ApproveBody(_Command):
    submissions: str | list[str] = Field(description="One id, or several (all or none)")
    feedback: str | None = None


class RejectBody(ApproveBody):
    category: str | None = Field(None, description="Prolific's rejection category")


class SoftRejectBody(ApproveBody):
    pass


class BonusBody(_Command):
    worker: str
    submission: str
    amount: str | int | float = Field(description='Exact, whole cents: "0.50"')
    currency: str = "USD"
    reason: str = Field(description="What the worker is told")


class RecordSubmissionBody(_Command):
    worker: str
    task: str
    submission: str
    answer: dict[str, Any] | None = None
    accepted_at: str | None = None
    submitted_at: str | None = None


def _recorded(web: WebState, result: LedgerEvent | list[Any]) -> dict[str, Any]:
    """The answer to a command; this process's facts learn of it now (other processes
    from the log's NOTIFY trigger, at the command's commit)."""
    live = web.extra.get("live_facts")
    if isinstance(live, LiveFacts):
        live.sync()
    events = result if isinstance(result, list) else [result]
    return {"events": _documents(events)}


# One table of the commands: (path and PERMISSIONS action, request body, Ledger method,
# summary). Every field of a body is the method's keyword of the same name (times parsed
# from ISO 8601), so one handler serves them all; each still has its own documented
# request body and operation in the OpenAPI document.
COMMANDS: tuple[tuple[str, type[_Command], str, str], ...] = (
    ("grant", GrantBody, "grant", "Ledger.grant"),
    ("revoke", RevokeBody, "revoke", "Ledger.revoke"),
    ("adjust", AdjustBody, "adjust", "Ledger.adjust"),
    ("block", BlockBody, "block", "Ledger.block"),
    ("unblock", UnblockBody, "unblock", "Ledger.unblock"),
    ("approve", ApproveBody, "approve", "Ledger.approve (one or several, all or none)"),
    ("reject", RejectBody, "reject", "Ledger.reject (one or several, all or none)"),
    ("soft-reject", SoftRejectBody, "soft_reject", "Ledger.soft_reject (one or several)"),
    ("bonus", BonusBody, "bonus", "Ledger.bonus"),
    ("record-submission", RecordSubmissionBody, "record_submission", "Ledger.record_submission"),
)
_TIMES = frozenset({"occurred_at", "until", "accepted_at", "submitted_at"})


def _command_route(action: str, body_type: type[_Command], method: str, summary: str) -> None:
    def run(
        body: _Command, request: Request, who: Principal, key: str | None = None
    ) -> dict[str, Any]:
        web = _web(request)
        fields = {name: getattr(body, name) for name in type(body).model_fields}
        for name in _TIMES & fields.keys():
            fields[name] = parse_time(fields[name], name)
        result = getattr(web.ledger, method)(**fields, actor=who.actor, key=key)
        return _recorded(web, result)

    # What FastAPI reads to parse, authorise and document the route (the module's
    # annotations are strings, which it could not resolve inside this function).
    run.__annotations__ = {
        "body": body_type,
        "request": Request,
        "who": Annotated[Principal, Depends(require(action))],
        "key": Key,
        "return": dict[str, Any],
    }
    run.__name__ = run.__qualname__ = method
    router.post(f"/commands/{action}", summary=summary)(run)


for _command in COMMANDS:
    _command_route(*_command)
