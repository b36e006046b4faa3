"""The HTTP answer to each of the library's errors: ``{"error": {code, message, field}}``.

The statuses follow what the command line does with the same error (its exit status is
in the answer too, ``exit_status``): bad input (exit 2) is 422, or 404 for something
named that does not exist, or 409 for a command the ledger's state refuses; the store
(exit 3) is 503 and a provider (exit 4) 502. Nothing was recorded in any of these cases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from crowdledger.adapters.cli.support import EXIT_BAD_INPUT, EXIT_PROVIDER, EXIT_STORE
from crowdledger.adapters.store.url import redact
from crowdledger.domain.errors import (
    BatchError,
    CommandRefused,
    ConcurrencyError,
    InvalidInputError,
    LedgerError,
    ProviderError,
    StoreError,
    UnknownQualificationError,
    UnknownSubmissionError,
)
from crowdledger.rules.errors import RuleSetError

__all__ = ["LedgerErrorRoute", "error_body", "error_of"]


def _code(exc: BaseException) -> str:
    """``QualificationNotHeldError`` -> ``qualification_not_held``."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(code: str, message: str, field: str | None = None, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **more}}


def error_of(exc: LedgerError | RequestValidationError) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for an error a route let through."""
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        return 422, error_body(
            "invalid_input",
            f"{field or 'request'}: {first.get('msg')}",
            field,
            exit_status=EXIT_BAD_INPUT,
        )
    if isinstance(exc, StoreError):
        return 503, error_body("store", redact(str(exc)), exit_status=EXIT_STORE)
    if isinstance(exc, ProviderError):
        return 502, error_body("provider", str(exc), exit_status=EXIT_PROVIDER)
    if isinstance(exc, RuleSetError):
        problem = exc.problems[0] if exc.problems else None
        field = (problem.path or None) if problem is not None else None
        return 422, error_body("invalid_rules", str(exc), field, exit_status=EXIT_BAD_INPUT)
    if isinstance(exc, InvalidInputError):
        status = getattr(exc, "http_status", 422)
        code = getattr(exc, "code", "invalid_input")
        return status, error_body(code, str(exc), exc.field, exit_status=EXIT_BAD_INPUT)
    if isinstance(exc, BatchError):
        items = [{"index": i, **error_of(e)[1]["error"]} for i, e in exc.errors]
        return 409, error_body(
            "batch_refused", str(exc), None, exit_status=EXIT_BAD_INPUT, items=items
        )
    if isinstance(exc, UnknownQualificationError):
        return 404, error_body(_code(exc), str(exc), "qualification", exit_status=EXIT_BAD_INPUT)
    if isinstance(exc, UnknownSubmissionError):
        return 404, error_body(_code(exc), str(exc), "submission", exit_status=EXIT_BAD_INPUT)
    if isinstance(exc, CommandRefused | ConcurrencyError):
        return 409, error_body(_code(exc), str(exc), exit_status=EXIT_BAD_INPUT)
    return 400, error_body(_code(exc), str(exc), exit_status=EXIT_BAD_INPUT)


class LedgerErrorRoute(APIRoute):
    """A route whose library errors (and malformed requests) come back as one JSON error.

    An ``APIRouter`` cannot register exception handlers (only the app can), so the
    routers of this package catch their own; anything else (the auth refusals, bugs)
    goes on to the app."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (LedgerError, RequestValidationError) as exc:
                status, body = error_of(exc)
                return JSONResponse(body, status_code=status)

        return handle
