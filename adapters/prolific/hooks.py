"""Prolific webhooks: the workspace's signing secret and the subscriptions to our URL.

``POST /hooks/secrets/`` creates the workspace's one secret (creating it again replaces
it); Prolific signs each delivery with it (``X-Prolific-Request-Signature`` =
base64(HMAC-SHA256(secret, timestamp + body))). The secret is written to a JSON file with
mode 0600 (``{"workspace_id", "secret", "subscriptions", "target_url"}``), which the web
app's receiving end reads; it never enters the ledger (whose events are immutable and
exported). Each subscription (``POST /hooks/subscriptions/``) answers an
``X-Hook-Secret`` that is echoed back to confirm it (``POST /hooks/subscriptions/{id}/``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from crowdledger.adapters.sync.engine import ProviderError
from crowdledger.adapters.sync.redaction import stored_error
from crowdledger.domain.errors import InvalidInputError, quoted

if TYPE_CHECKING:
    from crowdledger.adapters.prolific.provider import ProlificAPI

__all__ = ["EVENT_TYPES", "HookSetup", "read_secret", "subscribe"]

# What the review loop needs to hear about.
EVENT_TYPES = ("submission.status.change", "participant.submission.created", "study.status.change")


@dataclass(frozen=True)
class HookSetup:
    workspace: str
    target_url: str
    secret_file: str
    subscriptions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace,
            "target_url": self.target_url,
            "secret_file": self.secret_file,
            "subscriptions": list(self.subscriptions),
        }


def _write_secret(path: str, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` readable by its owner only (replacing it whole)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
        out.write("\n")
    os.replace(temporary, target)


def read_secret(path: str) -> dict[str, Any]:
    """The document :func:`subscribe` wrote (``secret``: what deliveries are signed with)."""
    loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or not isinstance(loaded.get("secret"), str):
        raise InvalidInputError("secret_file", f"{quoted(path)} holds no Prolific hook secret")
    return loaded


def subscribe(
    api: ProlificAPI,
    workspace: str,
    target_url: str,
    secret_file: str,
    event_types: Sequence[str] = EVENT_TYPES,
) -> HookSetup:
    """Create the workspace's secret, keep it in ``secret_file``, subscribe ``target_url``
    to ``event_types`` and confirm each subscription."""
    if not target_url.startswith("https://"):
        raise InvalidInputError("url", f"{quoted(target_url)}: Prolific calls https URLs only")
    created = api.request("POST", "hooks/secrets/", json={"workspace_id": workspace})
    secret = created.get("value") if isinstance(created, dict) else None
    if not isinstance(secret, str) or not secret:
        raise ProviderError("Prolific's reply to creating the hook secret has no value")
    _write_secret(
        secret_file,
        {
            "workspace_id": workspace,
            "secret": secret,
            "target_url": target_url,
            "subscriptions": [],
        },
    )
    made: list[str] = []
    for event_type in event_types:
        hook, confirm = _subscription(api, workspace, target_url, event_type)
        _post(api, f"hooks/subscriptions/{hook}/", headers={"X-Hook-Secret": confirm})
        made.append(hook)
    _write_secret(
        secret_file,
        {
            "workspace_id": workspace,
            "secret": secret,
            "target_url": target_url,
            "subscriptions": made,
        },
    )
    return HookSetup(workspace, target_url, secret_file, tuple(made))


def _subscription(
    api: ProlificAPI, workspace: str, target_url: str, event_type: str
) -> tuple[str, str]:
    """Subscribe; the subscription's id and the X-Hook-Secret to confirm it with."""
    body = {"event_type": event_type, "target_url": target_url, "workspace_id": workspace}

    response = _post(api, "hooks/subscriptions/", json=body)
    try:
        hook = response.json().get("id")
    except ValueError:
        hook = None
    confirm = response.headers.get("X-Hook-Secret")
    if not isinstance(hook, str) or not confirm:
        raise ProviderError("Prolific's reply to a subscription has no id or X-Hook-Secret")
    return hook, confirm


def _post(api: ProlificAPI, path: str, **options: Any) -> httpx.Response:
    """One POST whose headers matter (the API helper gives bodies only); errors redacted."""
    from crowdledger.adapters.prolific.provider import _detail

    try:
        response = api.client.request("POST", api.base.join(path), **options)
    except httpx.TransportError as exc:
        raise ProviderError(
            f"Prolific did not answer POST {path}: {type(exc).__name__}", retryable=True
        ) from None
    if response.status_code >= 400:
        raise ProviderError(
            stored_error(
                f"Prolific POST {path}: HTTP {response.status_code}: {_detail(response)}",
                api.secrets(),
            ),
            code=str(response.status_code),
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    return response
