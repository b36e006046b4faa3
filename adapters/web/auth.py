"""Who is asking, and may they: tokens, sessions, roles, CSRF and the login rate limit.

A request is authenticated in one of two ways, both ending in a :class:`Principal`
(the token's name and role):

- ``Authorization: Bearer <secret>`` (the HTTP API, scripts). No cookie is involved, so no
  CSRF check is needed: a cross-site page cannot make a browser send that header.
- the ``cl_session`` cookie that the login page issues in exchange for a token (HttpOnly,
  SameSite=Strict, signed with the server's session key, tied to the token's hash so a
  revoked token ends its sessions). A state-changing request made with it must also carry
  the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``) and an
  ``Origin`` (or ``Referer``) of this server.

Routes ask for an action, never a role: ``Depends(require("approve"))``. Which role may
do what is one table, :data:`PERMISSIONS`; what is not in it is refused. Secrets are
never logged, echoed or put in a page; failures say only what kind of failure it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from fastapi import Request

from crowdledger.adapters.ledger.access_tokens import AccessToken, find_token, list_tokens
from crowdledger.domain.access_token import ROLES

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PERMISSIONS",
    "SESSION_COOKIE",
    "AuthError",
    "LoginLimiter",
    "Principal",
    "Sessions",
    "TokenCache",
    "allowed",
    "current_principal",
    "require",
]

SESSION_COOKIE = "cl_session"
PRELOGIN_COOKIE = "cl_prelogin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600

PERMISSIONS: dict[str, str] = {
    # viewers read
    "read": "viewer",
    # reviewers also review, award bonuses and flag
    "approve": "reviewer",
    "reject": "reviewer",
    "soft-reject": "reviewer",
    "flag": "reviewer",
    "unflag": "reviewer",
    "bonus": "reviewer",
    "review": "reviewer",
    "record-submission": "reviewer",
    # admins also grant, revoke, block and manage tokens
    "grant": "admin",
    "revoke": "admin",
    "adjust": "admin",
    "block": "admin",
    "unblock": "admin",
    "tokens": "admin",
}
"""The least role allowed each action; an action not listed is allowed to nobody."""

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def allowed(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (roles are cumulative: viewer < reviewer < admin)."""
    least = PERMISSIONS.get(action)
    if least is None or role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(least)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the token's name (every event's ``actor``) and its role."""

    name: str
    role: str
    via: str  # "bearer" or "session"
    csrf: str | None = None  # the session's CSRF token (None for bearer requests)

    @property
    def actor(self) -> str:
        """The ``actor`` to record on events done for this request."""
        return self.name

    def may(self, action: str) -> bool:
        return allowed(self.role, action)


class AuthError(Exception):
    """A request refused before it did anything. ``status`` is the HTTP status; ``code``
    is stable (``unauthenticated``, ``forbidden``, ``csrf_failed``, ``bad_origin``,
    ``rate_limited``); the message never holds a secret."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TokenCache:
    """The ledger's tokens, re-read at most every ``ttl`` seconds (and at once after this
    process creates or revokes one: :meth:`invalidate`). A token revoked by another
    process stops working within ``ttl``."""

    def __init__(self, ledger: Ledger, ttl: float = 1.0) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._tokens: list[AccessToken] = []
        self._read_at = -1e9
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = -1e9

    def tokens(self) -> list[AccessToken]:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at > self._ttl:
                self._tokens = list_tokens(self._ledger)
                self._read_at = now
            return self._tokens

    def by_secret(self, secret: str) -> AccessToken | None:
        return find_token(self.tokens(), secret)

    def by_name(self, name: str) -> AccessToken | None:
        for token in self.tokens():
            if token.name == name and token.active:
                return token
        return None


class LoginLimiter:
    """At most ``limit`` failed logins per client address in any ``window`` seconds; past
    that, every attempt from the address is refused (429) until the window has passed."""

    def __init__(self, limit: int = 5, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def check(self, address: str) -> None:
        with self._lock:
            if len(self._recent(address, time.monotonic())) >= self.limit:
                raise AuthError(429, "rate_limited", "too many failed logins; try again later")

    def failed(self, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # forget the quietest addresses first
                for key in [k for k, v in self._failures.items() if not v][:5000]:
                    del self._failures[key]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signed, self-contained session cookies and the CSRF tokens derived from them.

    The cookie holds the token's name, the first 16 hex digits of its hash, an expiry and
    a random nonce, signed with HMAC-SHA256 under ``key``; processes that share the key
    (``serve --workers N``) accept each other's sessions. Nothing secret is in it.
    """

    def __init__(self, key: bytes, seconds: int = SESSION_SECONDS) -> None:
        self._key = key
        self.seconds = seconds

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def issue(self, token: AccessToken) -> str:
        payload = orjson.dumps(
            {
                "n": token.name,
                "h": token.token_hash[:16],
                "e": int(time.time()) + self.seconds,
                "c": secrets.token_urlsafe(16),
            }
        )
        return f"{_b64(payload)}.{self._sign(payload)}"

    def read(self, cookie: str) -> dict[str, Any] | None:
        """The session's fields, or None if the cookie is forged, damaged or expired."""
        body, _, signature = cookie.partition(".")
        try:
            payload = _unb64(body)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("e"), int):
            return None
        if data["e"] < time.time():
            return None
        return data

    def seal(self, text: str) -> str:
        """A signature for a notice passed in a redirect, so that no other site can make
        our pages say something (``?notice=...`` with a forged text is not shown)."""
        return self._sign(b"notice:" + text.encode())

    def csrf_for(self, nonce: str) -> str:
        """The CSRF token of a session (or of a pre-login nonce)."""
        return self._sign(b"csrf:" + nonce.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (else ``Referer``) names this server's host.

    Compared with the ``Host`` header (which the host check has already accepted), host
    and port only: behind a TLS proxy the scheme the browser saw is not the one we see.
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.headers.get("host", "").lower()


def _web(request: Request) -> Any:
    return request.app.state.web


def current_principal(request: Request) -> Principal | None:
    """The request's principal, or None when it carries no credentials at all; raises
    :class:`AuthError` for credentials that are wrong (and counts the failure)."""
    cached: object = getattr(request.state, "principal", False)
    if cached is None or isinstance(cached, Principal):
        return cached
    web = _web(request)
    principal: Principal | None = None
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        address = client_address(request)
        web.limiter.check(address)
        token = web.tokens.by_secret(secret.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            web.limiter.failed(address)
            raise AuthError(401, "unauthenticated", "the bearer token is not valid")
        principal = Principal(token.name, token.role, "bearer")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = web.sessions.read(cookie) if cookie else None
        if session is not None:
            token = web.tokens.by_name(session.get("n"))
            if token is not None and token.token_hash[:16] == session.get("h"):
                principal = Principal(
                    token.name, token.role, "session", web.sessions.csrf_for(str(session["c"]))
                )
    request.state.principal = principal
    return principal


async def check_csrf(request: Request, principal: Principal) -> None:
    """A cookie-authenticated change must come from one of our own pages: its Origin is
    ours and it carries the session's CSRF token (form field or header)."""
    if principal.via != "session" or request.method not in STATE_CHANGING:
        return
    if not same_origin(request):
        raise AuthError(403, "bad_origin", "the request does not come from this site")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is None or principal.csrf is None or not hmac.compare_digest(sent, principal.csrf):
        raise AuthError(403, "csrf_failed", "the form is stale or was not made by this site")


def require(action: str) -> Callable[[Request], Any]:
    """A FastAPI dependency: the request's :class:`Principal`, if it may do ``action``.

    Refuses with :class:`AuthError`: 401 without valid credentials, 403 for a role that
    may not, or for a cookie-authenticated change without our Origin and CSRF token.
    Use ``principal.actor`` as the events' ``actor``.
    """
    if action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}: add it to PERMISSIONS")

    async def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise AuthError(401, "unauthenticated", "log in, or send Authorization: Bearer")
        await check_csrf(request, principal)
        if not principal.may(action):
            raise AuthError(
                403, "forbidden", f"the {principal.role} role may not {action.replace('-', ' ')}"
            )
        return principal

    dependency.__name__ = f"require_{action.replace('-', '_')}"
    return dependency
