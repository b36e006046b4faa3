"""The web app's factory: one ASGI app with the review pages, the login and the HTTP API.

Example::

    from crowdledger.adapters.web.app import create_app

    app = create_app("sqlite:///crowd.db", ["transcription.yaml"])
    # uvicorn.run(app, host="127.0.0.1", port=8765), or `crowdledger serve`

The app holds one :class:`~crowdledger.Ledger` and the rule sets it was given
(``app.state.web``, a :class:`WebState`). The HTML pages live in
:mod:`~crowdledger.adapters.web.pages`; the JSON API (``crowdledger.adapters.web.api``)
and the webhooks (``crowdledger.adapters.web.hooks``) are mounted when installed. Every
route asks :func:`~crowdledger.adapters.web.auth.require` for what it does.
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from crowdledger import __version__
from crowdledger.adapters.web.auth import AuthError, LoginLimiter, Sessions, TokenCache
from crowdledger.adapters.web.security import SecurityMiddleware

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.rules.ruleset import RuleSet

__all__ = ["SESSION_KEY_ENV", "WebState", "app_from_env", "create_app"]

HERE = Path(__file__).parent
SESSION_KEY_ENV = "CROWDLEDGER_SESSION_KEY"
"""Hex session key shared by the processes of ``serve --workers N`` (else one per app)."""

# The routers web-api provides; each is mounted when its module exists.
OPTIONAL_ROUTERS = ("crowdledger.adapters.web.api", "crowdledger.adapters.web.hooks")


@dataclass
class WebState:
    """What every request handler reaches through ``request.app.state.web``."""

    ledger: Ledger
    rulesets: dict[str, RuleSet]
    tokens: TokenCache
    sessions: Sessions
    limiter: LoginLimiter
    templates: Environment
    secure_cookies: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def templates() -> Environment:
    """Jinja2 with autoescaping everywhere: worker-written text is only ever data."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = __version__
    env.filters["show"] = shown
    return env


def shown(value: object) -> str:
    """An event field as text: JSON for answers and other structures, ISO for times.
    Plain text either way: the template escapes it."""
    import orjson

    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _load_rulesets(ledger: Ledger, rule_files: Iterable[str | Path]) -> dict[str, RuleSet]:
    from crowdledger.adapters.ledger.rule_files import RuleSet as RuleFile

    loaded: dict[str, RuleSet] = {}
    for path in rule_files:
        ruleset = RuleFile.load(path, defined=ledger.definitions())
        loaded[ruleset.name] = ruleset
    return loaded


def create_app(
    ledger_url: str | None,
    rule_files: Iterable[str | Path] = (),
    *,
    ledger: Ledger | None = None,
    session_key: bytes | None = None,
    allowed_hosts: Iterable[str] | None = None,
    secure_cookies: bool = False,
    login_limit: int = 5,
    login_window: float = 60.0,
) -> FastAPI:
    """The app for the ledger at ``ledger_url`` (or an open ``ledger``) and ``rule_files``.

    ``session_key`` signs session cookies (default: ``CROWDLEDGER_SESSION_KEY``, else a
    random key, so sessions end with the process). ``allowed_hosts``: the ``Host`` names
    answered (default: loopback only; ``"*"``: any). ``secure_cookies`` marks the session
    cookie Secure (behind TLS). A bad rule file raises ``RuleSetError`` here, before the
    server listens.
    """
    from crowdledger.adapters.ledger.application import Ledger

    if ledger is None:
        ledger = Ledger.open(ledger_url)
    if session_key is None:
        env_key = os.environ.get(SESSION_KEY_ENV)
        session_key = bytes.fromhex(env_key) if env_key else secrets.token_bytes(32)
    state = WebState(
        ledger=ledger,
        rulesets=_load_rulesets(ledger, rule_files),
        tokens=TokenCache(ledger),
        sessions=Sessions(session_key),
        limiter=LoginLimiter(login_limit, login_window),
        templates=templates(),
        secure_cookies=secure_cookies,
    )
    app = FastAPI(
        title="crowdledger",
        version=__version__,
        description="The ledger of crowd workers' qualifications, over HTTP.",
        docs_url=None,  # the Swagger page loads script from a CDN: not here
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.web = state
    app.add_middleware(SecurityMiddleware, allowed_hosts=allowed_hosts)
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from crowdledger.adapters.web import login, pages

    app.include_router(login.router)
    app.include_router(pages.router)
    for module in OPTIONAL_ROUTERS:
        try:
            router = importlib.import_module(module).router
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.include_router(router)
    return app


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/hooks/")) or "authorization" in request.headers


async def _auth_error(request: Request, exc: AuthError) -> Response:
    if wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message, "field": None}},
            status_code=exc.status,
            headers=headers,
        )
    if exc.status == 401 and request.method == "GET":
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    from crowdledger.adapters.web.render import render

    return render(
        request,
        "error.html",
        {"title": "Not allowed", "status": exc.status, "message": exc.message},
        status=exc.status,
    )


def app_from_env() -> FastAPI:
    """The app ``crowdledger serve`` describes in ``CROWDLEDGER_SERVE`` (JSON: db, rules,
    allowed_hosts, secure): what each uvicorn worker process builds."""
    import orjson

    settings = orjson.loads(os.environ["CROWDLEDGER_SERVE"])
    return create_app(
        settings["db"],
        settings["rules"],
        allowed_hosts=settings["allowed_hosts"],
        secure_cookies=settings["secure"],
    )
