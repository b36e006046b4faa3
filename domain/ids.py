"""UUIDs made quickly: every command mints one, and bulk imports derive one per stream.

``uuid.UUID(...)`` re-parses and re-checks its argument on every call, which costs more
than the random bytes or the hash behind the id. These build the same values (checked
against :func:`uuid.uuid4` and :func:`uuid.uuid5` in the tests) straight from an integer.
"""

from __future__ import annotations

import os
from uuid import UUID, SafeUUID

__all__ = ["new_uuid4", "uuid_from_int", "uuid_from_sha1"]

_new = object.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown
_VARIANT_CLEAR, _VARIANT_SET = ~(0xC000 << 48), 0x8000 << 48
_VERSION_CLEAR = ~(0xF000 << 64)


def uuid_from_int(value: int) -> UUID:
    """``UUID(int=value)`` for a value already known to be a 128-bit UUID."""
    made = _new(UUID)
    _set(made, "int", value)
    _set(made, "is_safe", _UNKNOWN)
    return made


def new_uuid4() -> UUID:
    """A random (version 4) UUID, as :func:`uuid.uuid4` makes."""
    value = int.from_bytes(os.urandom(16), "big")
    return uuid_from_int((value & _VARIANT_CLEAR | _VARIANT_SET) & _VERSION_CLEAR | (4 << 76))


def uuid_from_sha1(digest: bytes) -> UUID:
    """A name-based (version 5) UUID from the SHA-1 of namespace and name, as uuid5 does."""
    value = int.from_bytes(digest[:16], "big")
    return uuid_from_int((value & _VARIANT_CLEAR | _VARIANT_SET) & _VERSION_CLEAR | (5 << 76))
