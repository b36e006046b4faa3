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

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

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


class SecurityMiddleware:
    """An HTTP middleware (``app.middleware("http")``) for the checks above."""

    def __init__(self, allowed_hosts: Iterable[str] | None = None) -> None:
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

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Any]]
    ) -> Response:
        host = request.headers.get("host", "")
        if not self.any_host and _host_name(host).lower() not in self.hosts:
            response: Response = self._error(
                request, 400, "bad_host", "this server does not answer to that host name"
            )
        elif (
            request.method in STATE_CHANGING
            and request.headers.get("origin") is not None
            and not same_origin(request)
        ):
            response = self._error(
                request, 403, "bad_origin", "the request does not come from this site"
            )
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
