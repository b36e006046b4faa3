"""Keeping credentials out of what the sync stores and prints.

A provider's error reply is recorded in an immutable ``ProviderCommandFailed`` event and
printed by ``sync apply``, ``sync status`` and ``export``. Some servers and proxies quote
the request in their error body, ``Authorization`` header included, so every error text
goes through :func:`redact` before it becomes a :class:`ProviderError`, and again (with
the configured secrets unknown) before it is stored or shown. It removes:

* the values of credential headers (``Authorization``, ``Proxy-Authorization``,
  ``X-Amz-Security-Token``, ``X-Api-Key``, ``Cookie``), however quoted;
* AWS signature parts (``Credential=...``, ``Signature=...``) and access key ids
  (``AKIA...``, ``ASIA...``);
* ``Token ...`` and ``Bearer ...`` values, and passwords in URLs (``https://user:pw@``);
* every configured secret (the Prolific token, the AWS keys), also in its JSON-escaped
  and URL-encoded spellings.

:func:`stored_error` also caps the text at :data:`MAX_ERROR` characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

__all__ = ["MAX_ERROR", "REDACTED", "redact", "redacted_document", "stored_error"]

REDACTED = "[redacted]"
MAX_ERROR = 4000  # characters of a provider's error kept in the ledger

_HEADER = re.compile(
    r"""(?ix)
    \b(authorization|proxy-authorization|x-amz-security-token|x-api-key|set-cookie|cookie)
    (["']?\s*[:=]\s*["']?)          # Authorization: / "Authorization": " / authorization=
    [^\r\n"'<>]*                    # the value, to the end of the line or quote
    """
)
_SECRET_PARTS = (
    (re.compile(r"(?i)\b(Credential=)[^\s,\"'&;<>]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(Signature=)[^\s,\"'&;<>]+"), rf"\1{REDACTED}"),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|ANPA|AGPA)[A-Z0-9]{12,}\b"), REDACTED),
    (re.compile(r"(?i)\b(Token|Bearer)(\s+)[A-Za-z0-9._~+/=-]{20,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{REDACTED}@"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without credentials (see the module); ``secrets`` are removed verbatim."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        for spelling in {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}:
            text = text.replace(spelling, REDACTED)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for pattern, replacement in _SECRET_PARTS:
        text = pattern.sub(replacement, text)
    return text


def stored_error(text: str, secrets: Iterable[str | None] = ()) -> str:
    """What of a provider's error the ledger keeps: redacted, at most MAX_ERROR characters."""
    clean = redact(text, secrets)
    if len(clean) <= MAX_ERROR:
        return clean
    return f"{clean[:MAX_ERROR]}... (cut: {len(clean)} characters in all)"


# The events that carry a provider's error text.
_PROVIDER_ERRORS = frozenset({"ProviderCommandFailed"})


def redacted_document(doc: dict[str, Any]) -> dict[str, Any]:
    """An event's document as it leaves the ledger (``export``, ``history --json``): the
    provider's error of a failed command is redacted again, in place. An event recorded
    before redaction existed (or imported from such a ledger) keeps the raw text in the
    log, which is never rewritten; it is cleaned on every way out instead."""
    error = doc.get("error")
    if doc.get("type") in _PROVIDER_ERRORS and isinstance(error, str):
        doc["error"] = redact(error)
    return doc
