"""What every response and every request goes through: security headers, the Host check
and the Origin check of state-changing requests.

- ``Host`` must be one the server answers to (loopback names by default): a page on
  another site that rebinds its DNS name to 127.0.0.1 is refused.
- A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` is another site's
  is refused, whatever credentials it carries; cookie-authenticated ones must also carry
  an Origin of ours and a CSRF token (:func:`~crowdledger.adapters.web.auth.check_csrf`).
- Every response says: no script but ours (no inline script, no other origin), no
  framing, no content sniffing, no referrer to other sites, and (pages) no caching.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crowdledger.adapters.web.auth import STATE_CHANGING, same_origin

__all__ = ["CONTENT_SECURITY_POLICY", "LOOPBACK_HOSTS", "SecurityMiddleware"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


_HEADER_BYTES = [(name.lower().encode(), value.encode()) for name, value in HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")


class SecurityMiddleware:
    """A plain ASGI middleware (``app.add_middleware(SecurityMiddleware, allowed_hosts=...)``)
    for the checks above.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: that one runs every request
    in a task group of its own and copies the response through a stream, which cost more
    than the whole ``POST /api/v1/check`` (bench/RESULTS.md). Here the request goes on
    untouched and the headers are added to its ``http.response.start`` message, unless
    the route set them itself.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        hosts = tuple(allowed_hosts) if allowed_hosts is not None else LOOPBACK_HOSTS
        self.any_host = "*" in hosts
        self.hosts = frozenset(h.lower() for h in hosts)

    def _error(self, request: Request, status: int, code: str, message: str) -> Response:
        if request.url.path.startswith(("/api/", "/hooks/")):
            return JSONResponse(
                {"error": {"code": code, "message": message, "field": None}}, status_code=status
            )
        if status != 400:  # a page, styled as ours (not for a Host we do not answer to)
            from crowdledger.adapters.web.render import render

            return render(
                request,
                "error.html",
                {"title": "Refused", "status": status, "message": message},
                status=status,
            )
        return PlainTextResponse(message, status_code=status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
        refusal: Response | None = None
        if not self.any_host and _host_name(host.decode("latin-1")).lower() not in self.hosts:
            refusal = self._error(
                Request(scope), 400, "bad_host", "this server does not answer to that host name"
            )
        elif origin and scope["method"] in STATE_CHANGING and not same_origin(Request(scope)):
            refusal = self._error(
                Request(scope), 403, "bad_origin", "the request does not come from this site"
            )
        extra = list(_HEADER_BYTES)
        if not scope["path"].startswith("/static/"):
            extra.append(_NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend(pair for pair in extra if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
        else:
            await self.app(scope, receive, send_with_headers)
