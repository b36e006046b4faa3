"""``crowdledger serve`` (the review web app and the HTTP API) and ``crowdledger tokens``.

FastAPI, Jinja2 and uvicorn are imported inside ``serve`` only; ``tokens`` needs just the
ledger. A token's secret is printed once, on stdout, by ``tokens create``; the ledger
keeps only its hash.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated

import orjson
import typer

from crowdledger.adapters.cli.state import STATE
from crowdledger.adapters.cli.support import (
    Actor,
    AsJson,
    Reason,
    command_group,
    emit_json,
    fail,
    handles_errors,
    note,
    opened,
    say,
)

__all__ = ["commands", "tokens_app"]

commands = command_group()
tokens_app = command_group("Manage the access tokens of the web app and the HTTP API.")

REMOTE_WARNING = (
    "warning: serving on {host}, beyond this machine: the server speaks plain HTTP, so "
    "TLS must be terminated in front of it (a reverse proxy with HTTPS); tokens and "
    "session cookies would otherwise cross the network in clear text"
)

# The settings `serve --workers N` passes to each worker process (uvicorn imports the
# app by name there: see crowdledger.adapters.web.app.app_from_env).
SERVE_ENV = "CROWDLEDGER_SERVE"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@commands.command("serve")
@handles_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="H", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="P", min=1, max=65535)] = 8765,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", metavar="FILE", help="A rule file to serve (repeatable)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", metavar="N", min=1, max=64, help="Server processes.")
    ] = 1,
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Listen on a non-loopback address (TLS in front!)."),
    ] = False,
) -> None:
    """Serve the review web app and the HTTP API (on 127.0.0.1:8765 unless told)."""
    import uvicorn

    from crowdledger.adapters.ledger.access_tokens import list_tokens
    from crowdledger.adapters.store.url import default_url, redact
    from crowdledger.adapters.web.app import SESSION_KEY_ENV, create_app

    if not is_loopback(host) and not allow_remote:
        raise fail(
            f"--host {host} would accept connections from other machines; "
            "pass --allow-remote to mean it (and terminate TLS in front of the server)"
        )
    key_text = os.environ.get(SESSION_KEY_ENV, "")
    try:
        if key_text and len(bytes.fromhex(key_text)) < 16:
            raise ValueError
    except ValueError:
        raise fail(f"{SESSION_KEY_ENV} must be at least 32 hex digits (16 bytes)") from None
    url = STATE.db or default_url()
    files = [str(path) for path in rules or []]
    allowed_hosts = ["*"] if allow_remote else None
    with opened() as ledger:  # refuse a bad store or rule file before listening
        app = create_app(None, files, ledger=ledger, allowed_hosts=allowed_hosts)
        names = ", ".join(app.state.web.rulesets) or "none"
        tokens = [t for t in list_tokens(ledger) if t.active]
    if allow_remote:
        say(REMOTE_WARNING.format(host=host), err=True)
    say(f"serving {redact(url)} on http://{host}:{port} (rule sets: {names})", err=True)
    if not tokens:
        say(
            "no access token yet: create one with `crowdledger tokens create NAME --role admin`",
            err=True,
        )
    key = os.environ.get(SESSION_KEY_ENV)
    if not key:  # one key for every worker process, so each accepts the others' sessions
        os.environ[SESSION_KEY_ENV] = secrets.token_hex(32)
    os.environ[SERVE_ENV] = orjson.dumps(
        {"db": url, "rules": files, "allowed_hosts": allowed_hosts, "secure": allow_remote}
    ).decode()
    uvicorn.run(
        "crowdledger.adapters.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        # A line per request costs more than a check does (bench/bench_serve.py); the
        # ledger itself records who did what through the server.
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


@tokens_app.command("create")
@handles_errors
def create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Who holds it: the actor of what they do.")
    ],
    role: Annotated[str, typer.Option("--role", metavar="ROLE", help="viewer, reviewer or admin.")],
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Create an access token NAME with a role; prints its secret, once."""
    from crowdledger.adapters.ledger.access_tokens import create_token

    with opened() as ledger:
        event, secret = create_token(ledger, name, role, actor=actor, reason=reason)
    typer.echo(secret)
    note(event, f"token {name!r} ({role}) created; it is shown only now: keep it secret")


@tokens_app.command("list")
@handles_errors
def list_(as_json: AsJson = False) -> None:
    """List the access tokens (names and roles; never their secrets)."""
    from crowdledger.adapters.ledger.access_tokens import list_tokens

    with opened(create=False) as ledger:
        tokens = list_tokens(ledger)
    if as_json:
        emit_json([t.as_dict() for t in tokens])
        return
    if not tokens:
        say("no tokens", err=True)
    for t in tokens:
        state = "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}"
        when = f"{t.created_at:%Y-%m-%d %H:%M}"
        say(f"{t.name:<20} {t.role:<9} {state:<25} created {when} by {t.created_by}")


@tokens_app.command("revoke")
@handles_errors
def revoke(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Revoke the access token NAME: it and its sessions stop working."""
    from crowdledger.adapters.ledger.access_tokens import revoke_token

    with opened() as ledger:
        event = revoke_token(ledger, name, actor=actor, reason=reason)
    note(event, f"token {name!r} revoked")
