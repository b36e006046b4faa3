"""Who may use the web app and the HTTP API: named access tokens with a role, as events.

A token is created with a name (the ``actor`` of everything done with it) and a role;
only the SHA-256 of the secret is recorded, never the secret. Tokens are random 256-bit
strings, so a fast hash is enough: nobody can guess one from its hash. All tokens live in
one stream, so that two tokens never share a name and a revoked name stays revoked.

Roles are cumulative: a ``viewer`` reads; a ``reviewer`` also reviews, awards bonuses and
flags; an ``admin`` also grants, revokes, blocks and manages tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import CommandRefused, InvalidInputError
from crowdledger.domain.events import LedgerEvent, topic_of

__all__ = [
    "ACCESS_TOKENS_NAME",
    "ROLES",
    "AccessTokenCreated",
    "AccessTokenRevoked",
    "AccessTokens",
    "AccessTokensState",
    "TokenExistsError",
    "UnknownTokenError",
    "check_role",
    "check_token_name",
]

ACCESS_TOKENS_NAME = "access-tokens"
"""The one stream that holds every token's events."""

ROLES = ("viewer", "reviewer", "admin")
"""The roles, each allowed what the ones before it are."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_HASH = re.compile(r"[0-9a-f]{64}")


def check_token_name(name: object) -> str:
    """A token's name is its holder's actor name: letters, digits and ``_ . @ -``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            "name",
            f"{name!r} is not a token name (1 to 64 letters, digits and _ . @ -, "
            "starting with a letter or digit)",
        )
    return name


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInputError("role", f"{role!r} is not a role (one of {', '.join(ROLES)})")
    assert isinstance(role, str)
    return role


class TokenExistsError(CommandRefused):
    def __init__(self, name: str) -> None:
        super().__init__(f"a token named {name!r} exists already (names are never reused)")
        self.name = name


class UnknownTokenError(CommandRefused):
    def __init__(self, name: str) -> None:
        super().__init__(f"there is no active token named {name!r}")
        self.name = name


class AccessTokensState(StreamState):
    """Every token ever created: name -> (role, hash, revoked)."""

    __slots__ = ("tokens",)

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, tuple[str, str, bool]] = {}


@dataclass(frozen=True)
class AccessTokenCreated(LedgerEvent):
    """A token named ``name`` with ``role`` may be used; ``token_hash`` is the SHA-256 (hex)
    of its secret, which was shown once to whoever created it and is kept nowhere."""

    TOPIC: ClassVar[str] = topic_of("AccessTokenCreated")

    name: str
    role: str
    token_hash: str

    def validate_relations(self) -> None:
        check_token_name(self.name)
        check_role(self.role)
        if not _HASH.fullmatch(self.token_hash):
            raise InvalidInputError("token_hash", "is not 64 lowercase hex digits")

    def check(self, state: StreamState) -> None:
        assert isinstance(state, AccessTokensState)
        super().check(state)
        if self.name in state.tokens:
            raise TokenExistsError(self.name)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, AccessTokensState)
        super().evolve(state)
        state.tokens[self.name] = (self.role, self.token_hash, False)

    def describe(self) -> str:
        return f"token {self.name!r}"

    def stream_name(self) -> str:
        return ACCESS_TOKENS_NAME


@dataclass(frozen=True)
class AccessTokenRevoked(LedgerEvent):
    """The token named ``name`` no longer lets anyone in; its name is not given again."""

    TOPIC: ClassVar[str] = topic_of("AccessTokenRevoked")

    name: str

    def check(self, state: StreamState) -> None:
        assert isinstance(state, AccessTokensState)
        super().check(state)
        held = state.tokens.get(self.name)
        if held is None or held[2]:
            raise UnknownTokenError(self.name)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, AccessTokensState)
        super().evolve(state)
        role, token_hash, _revoked = state.tokens[self.name]
        state.tokens[self.name] = (role, token_hash, True)

    def describe(self) -> str:
        return f"revocation of token {self.name!r}"

    def stream_name(self) -> str:
        return ACCESS_TOKENS_NAME


class AccessTokens(LedgerAggregate[AccessTokensState]):
    state_class = AccessTokensState

    def create(self, name: str, role: str, token_hash: str, context: Context) -> AccessTokenCreated:
        return self._record(
            AccessTokenCreated, context, name=name, role=role, token_hash=token_hash
        )

    def revoke(self, name: str, context: Context) -> AccessTokenRevoked:
        return self._record(AccessTokenRevoked, context, name=name)


AccessTokenCreated.aggregate_class = AccessTokens
AccessTokenRevoked.aggregate_class = AccessTokens
