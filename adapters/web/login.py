"""The login page: a token in, a session cookie out; and logging out.

The login form is protected like every other form: before anyone is signed in, a random
``cl_prelogin`` cookie stands for the session, and the form carries its CSRF token; the
POST must come from our own Origin. Failed attempts are counted per client address
(:class:`~crowdledger.adapters.web.auth.LoginLimiter`). The token typed in is never
written back into the page, a log line or an error.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from crowdledger.adapters.web.auth import (
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    AuthError,
    Principal,
    client_address,
    require,
    same_origin,
)
from crowdledger.adapters.web.render import render

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _prelogin_csrf(request: Request, nonce: str) -> str:
    return str(request.app.state.web.sessions.csrf_for("pre:" + nonce))


def _login_page(
    request: Request, nonce: str, target: str, message: str | None, status: int
) -> Response:
    response = render(
        request,
        "login.html",
        {
            "title": "Log in",
            "login_csrf": _prelogin_csrf(request, nonce),
            "next": target,
            "message": message,
        },
        status=status,
    )
    response.set_cookie(
        PRELOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.app.state.web.secure_cookies,
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form (a token field); a fresh pre-login nonce for its CSRF token."""
    nonce = request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(16)
    return _login_page(request, nonce, safe_next(next), None, 200)


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Exchange a token for a session cookie (HttpOnly, SameSite=Strict)."""
    web = request.app.state.web
    target = safe_next(next)
    address = client_address(request)
    web.limiter.check(address)
    nonce = request.cookies.get(PRELOGIN_COOKIE)
    if (
        not same_origin(request)
        or nonce is None
        or not hmac.compare_digest(csrf_token, _prelogin_csrf(request, nonce))
    ):
        raise AuthError(403, "csrf_failed", "the login form is stale or was not made by this site")
    found = web.tokens.by_secret(token.strip())
    if found is None:
        web.limiter.failed(address)
        return _login_page(request, nonce, target, "That token is not valid.", 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        web.sessions.issue(found),
        max_age=web.sessions.seconds,
        httponly=True,
        samesite="strict",
        secure=web.secure_cookies,
        path="/",
    )
    response.delete_cookie(PRELOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(principal: Annotated[Principal, Depends(require("read"))]) -> Response:
    """End the browser's session (the token itself stays valid until revoked)."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
