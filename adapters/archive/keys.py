"""The worker keys of an encrypted ledger, carried in its archive so that a restore reads.

An encrypted ledger's rows hold personal data as ciphertext under per-worker data keys
(adapters/store/worker_keys.py); the segments archive the rows as they are. Without the
keys a restored ledger would read every worker as erased, so ``archive`` also writes
``keys.json``: the key table exactly as the ledger holds it -- each row's lookup
``HMAC(KEK, worker id)``, random key id and data key *wrapped with the KEK* -- and the
ledger's KEK check. Nothing in it is readable without the KEK, as in the database.

Unlike a segment, the object is rewritten whenever the table changed: after ``erase``
deletes a worker's key, the next ``archive`` writes ``keys.json`` without it, which is what
makes the erasure reach the archive. (A bucket with versioning keeps the old versions of
every object: expire ``keys.json``'s noncurrent versions with a lifecycle rule.)

It is not evidence and is not signed: a wrapped key only opens under the KEK (AES-GCM
authenticates it), so a changed object can make data unreadable but never make other data
readable; ``restore`` checks that it names the archive's ledger and that the KEK it is
given is the one the keys were wrapped with, before it writes anything.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

import orjson

from crowdledger.adapters.archive.errors import ArchiveTampered
from crowdledger.adapters.archive.layout import open_document
from crowdledger.adapters.archive.s3 import ArchiveBucket
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.worker_keys import keys_ddl

__all__ = [
    "KEYS",
    "ArchivedKeys",
    "decode_keys",
    "encode_keys",
    "install_keys",
    "read_keys",
    "save_keys",
]

KEYS = "keys.json"
FORMAT = "crowdledger-archive-keys"
VERSION = 1
_META = ("encryption", "kek_check")


@dataclasses.dataclass(frozen=True)
class ArchivedKeys:
    """The key table of an encrypted ledger: its scheme, KEK check and wrapped keys."""

    ledger: str
    encryption: str
    kek_check: str
    keys: tuple[tuple[str, str, bytes], ...]  # (lookup, key id, wrapped data key)


def read_keys(cur: Cursor, ledger: str) -> ArchivedKeys | None:
    """The ledger's key table as it is in this snapshot; None for a plaintext ledger."""
    marks = ", ".join("?" for _ in _META)
    rows = cur.execute(f"SELECT key, value FROM cl_meta WHERE key IN ({marks})", _META).fetchall()
    meta = {str(key): str(value) for key, value in rows}
    if "encryption" not in meta:
        return None
    held = cur.execute("SELECT lookup, key_id, wrapped FROM cl_worker_keys ORDER BY lookup")
    return ArchivedKeys(
        ledger,
        meta["encryption"],
        meta.get("kek_check", ""),
        tuple((str(lookup), str(kid), bytes(wrapped)) for lookup, kid, wrapped in held.fetchall()),
    )


def encode_keys(keys: ArchivedKeys) -> bytes:
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "ledger": keys.ledger,
        "encryption": keys.encryption,
        "kek_check": keys.kek_check,
        "keys": [
            [lookup, kid, base64.b64encode(wrapped).decode()] for lookup, kid, wrapped in keys.keys
        ],
    }
    return orjson.dumps(doc) + b"\n"


def decode_keys(data: bytes) -> ArchivedKeys:
    """Parse ``keys.json``; :class:`ArchiveTampered` (``changed``) if malformed."""

    def bad(message: str) -> ArchiveTampered:
        return ArchiveTampered("changed", message, segment=KEYS)

    doc = open_document(data, KEYS, FORMAT, VERSION, "key document")
    for name in ("ledger", "encryption", "kek_check"):
        if not isinstance(doc.get(name), str):
            raise bad(f"{name}: must be a string")
    entries = doc.get("keys")
    if not isinstance(entries, list):
        raise bad("keys: must be a list")
    parsed: list[tuple[str, str, bytes]] = []
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) for x in entry)
        ):
            raise bad(f"keys[{i}]: must be [lookup, key id, wrapped key in base64]")
        try:
            wrapped = base64.b64decode(entry[2], validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"keys[{i}]: the wrapped key is not base64") from None
        parsed.append((entry[0], entry[1], wrapped))
    return ArchivedKeys(doc["ledger"], doc["encryption"], doc["kek_check"], tuple(parsed))


def save_keys(bucket: ArchiveBucket, keys: ArchivedKeys) -> bool:
    """Write ``keys.json`` unless the bucket holds the same document; True if written."""
    data = encode_keys(keys)
    if bucket.get(KEYS) == data:
        return False
    bucket.put(KEYS, data, "application/json")
    return True


def install_keys(cur: Cursor, dialect: str, keys: ArchivedKeys) -> None:
    """Make the (empty) target an encrypted ledger holding exactly the archived keys."""
    for statement in keys_ddl(dialect):
        cur.execute(statement)
    cur.execute("DELETE FROM cl_worker_keys")
    for name, value in (("encryption", keys.encryption), ("kek_check", keys.kek_check)):
        cur.execute("DELETE FROM cl_meta WHERE key = ?", (name,))
        cur.execute("INSERT INTO cl_meta (key, value) VALUES (?, ?)", (name, value))
    if keys.keys:
        cur.executemany(
            "INSERT INTO cl_worker_keys (lookup, key_id, wrapped) VALUES (?, ?, ?)", keys.keys
        )
