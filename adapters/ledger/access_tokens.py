"""Access tokens of the web app and the HTTP API: create, revoke, list, and find by secret.

Creating a token returns its secret once; the ledger records only its SHA-256
(:mod:`crowdledger.domain.access_token`). The server looks a presented secret up by its
hash (:func:`find_token`), comparing hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from crowdledger.adapters.ledger.commands import Session
from crowdledger.adapters.store.codec import decode_event
from crowdledger.domain.access_token import (
    ACCESS_TOKENS_NAME,
    AccessTokenCreated,
    AccessTokenRevoked,
    AccessTokens,
    check_role,
    check_token_name,
)
from crowdledger.domain.aggregate import Context
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.streams import stream_uuid

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "TOKEN_PREFIX",
    "AccessToken",
    "create_token",
    "find_token",
    "hash_secret",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "clt_"
"""Every secret starts so, which makes a leaked one easy to recognise (and to scan for)."""

_STREAM = stream_uuid(ACCESS_TOKENS_NAME)


@dataclass(frozen=True)
class AccessToken:
    """A token as the ledger knows it (never its secret)."""

    name: str
    role: str
    token_hash: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    ledger: Ledger,
    name: str,
    role: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> tuple[AccessTokenCreated, str]:
    """Create a token; returns its event and the secret (shown once, kept nowhere)."""
    check_token_name(name)
    check_role(role)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hash_secret(secret)
    context = ledger._context(actor, reason, None, None, None)

    def decide(session: Session, ctx: Context) -> LedgerEvent:
        return session.get(AccessTokens, _STREAM).create(name, role, digest, ctx)

    # The command as recorded for idempotency carries no secret and no hash.
    event = ledger._execute(context, {"create_token": name, "role": role}, decide)
    assert isinstance(event, AccessTokenCreated)
    return event, secret


def revoke_token(
    ledger: Ledger, name: str, *, actor: str | None = None, reason: str | None = None
) -> AccessTokenRevoked:
    """Stop the token named ``name`` from letting anyone in."""
    check_token_name(name)
    context = ledger._context(actor, reason, None, None, None)

    def decide(session: Session, ctx: Context) -> LedgerEvent:
        return session.get(AccessTokens, _STREAM).revoke(name, ctx)

    event = ledger._execute(context, {"revoke_token": name}, decide)
    assert isinstance(event, AccessTokenRevoked)
    return event


def list_tokens(ledger: Ledger) -> list[AccessToken]:
    """Every token ever created, revoked ones included, in the order they were created."""
    with ledger._db.transaction(write=False) as tx:
        rows = ledger._log.read_streams(tx.events, [_STREAM])
    tokens: dict[str, AccessToken] = {}
    for position, stream, version, topic, state in rows:
        event = decode_event(topic, stream, version, state, position)
        if isinstance(event, AccessTokenCreated):
            tokens[event.name] = AccessToken(
                event.name, event.role, event.token_hash, event.occurred_at, event.actor
            )
        elif isinstance(event, AccessTokenRevoked) and event.name in tokens:
            held = tokens[event.name]
            tokens[event.name] = AccessToken(
                held.name,
                held.role,
                held.token_hash,
                held.created_at,
                held.created_by,
                event.occurred_at,
            )
    return list(tokens.values())


def find_token(tokens: list[AccessToken], secret: str) -> AccessToken | None:
    """The active token whose secret is ``secret``, or None. Every active token's hash is
    compared, in constant time, so the answer's timing says nothing about near misses."""
    digest = hash_secret(secret)
    found = None
    for token in tokens:
        if hmac.compare_digest(token.token_hash, digest) and token.active:
            found = token
    return found
