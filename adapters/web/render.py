"""Rendering a page: the template, the signed-in principal, its CSRF token, a notice.

Every page gets ``principal`` (or None), ``csrf`` (the token every form must carry) and
``notice`` (the one-line result of the last action, passed in the redirect's query
string as plain text and escaped like everything else).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from crowdledger.adapters.web.auth import CSRF_FIELD, AuthError, current_principal

__all__ = ["redirect", "render"]


def redirect(
    request: Request, target: str, *, notice: str | None = None, error: str | None = None
) -> RedirectResponse:
    """A 303 to ``target`` (a path of ours), carrying a signed one-line notice or error."""
    sessions = request.app.state.web.sessions
    query = {}
    for name, text in (("notice", notice), ("error", error)):
        if text:
            text = text[:500]
            query[name] = text
            query[name + "_sig"] = sessions.seal(name + ":" + text)
    separator = "&" if "?" in target else "?"
    return RedirectResponse(
        target + (separator + urlencode(query) if query else ""), status_code=303
    )


def _sealed(request: Request, name: str) -> str | None:
    text = request.query_params.get(name)
    signature = request.query_params.get(name + "_sig")
    if not text or not signature:
        return None
    expected = request.app.state.web.sessions.seal(name + ":" + text)
    return text if hmac.compare_digest(expected, signature) else None


def render(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    web = request.app.state.web
    try:
        principal = current_principal(request)
    except AuthError:  # a bad bearer header on an error page: render it signed out
        principal = None
    notice = _sealed(request, "notice")
    error = _sealed(request, "error")
    page = {
        "request_path": request.url.path,
        "principal": principal,
        "csrf": principal.csrf if principal is not None else None,
        "csrf_field": CSRF_FIELD,
        "notice": notice,
        "error": error,
        **context,
    }
    html = web.templates.get_template(template).render(page)
    return HTMLResponse(html, status_code=status)
