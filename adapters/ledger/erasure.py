"""Encryption at rest for a ledger, and erasing a worker by destroying their data key.

``attach_cipher`` gives an encrypted ledger's event log its cipher when the ledger is
opened (``encrypt=True``: make a new, empty ledger an encrypted one). ``erase_worker``
is ``crowdledger erase``: in one write transaction it deletes the worker's key and
records :class:`~crowdledger.domain.erasure.WorkerErased` under the worker's pseudonym;
then it rebuilds the read models (which now hold only the pseudonym's submissions and
bonuses) and, on SQLite, scrubs what the files could still hold: the deleted key's
bytes (``secure_delete``), the read models' free pages (``VACUUM`` of ``<db>-views``)
and both write-ahead logs (``wal_checkpoint(TRUNCATE)``).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crowdledger.adapters.store.codec import encode_state
from crowdledger.adapters.store.database import SQLiteDatabase
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.worker_keys import cipher_for, enable_encryption, load_kek
from crowdledger.domain.aggregate import Context
from crowdledger.domain.erasure import is_pseudonym, pseudonym_of, record_erasure
from crowdledger.domain.errors import CommandRefused, InvalidInputError, StoreError
from crowdledger.domain.identifiers import check_text, parse_worker, require_text
from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.streams import worker_blocks_stream
from crowdledger.domain.worker_blocks import WorkerBlocks

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

# "1": every ledger created from now on is encrypted, as if made with ``init --encrypt``.
ENCRYPT_ENV = "CROWDLEDGER_ENCRYPT"

__all__ = [
    "ENCRYPT_ENV",
    "Erasure",
    "NothingToEraseError",
    "attach_cipher",
    "erase_worker",
    "is_encrypted",
    "require_kek",
]


class NothingToEraseError(CommandRefused):
    """The worker has no data key: never seen by this ledger, or erased already."""

    def __init__(self, worker: str) -> None:
        super().__init__(
            f"{worker} has no personal data in this ledger (never recorded, or erased "
            "already); nothing was recorded"
        )


@dataclass(frozen=True)
class Erasure:
    """What ``erase`` did: the pseudonym left in the history, and where."""

    pseudonym: str
    position: int
    rebuilt: int  # events replayed into the read models


def attach_cipher(ledger: Ledger, *, encrypt: bool = False) -> None:
    """Give the ledger's log its cipher (refusing a missing or wrong KEK, exit 3);
    with ``encrypt``, first make an empty plaintext ledger an encrypted one."""
    db, log = ledger._db, ledger._log
    if ledger.created and os.environ.get(ENCRYPT_ENV) == "1":
        encrypt = True  # every new ledger encrypted (how the suite runs encrypted, too)
    with db.transaction(write=False) as tx:
        cipher = cipher_for(tx.events, str(ledger.url))
        head = log.head(tx.events) if cipher is None and encrypt else 0
    if cipher is None and encrypt:
        kek = require_kek(str(ledger.url))
        if head:
            raise StoreError(
                f"{ledger.url}: holds {head} plaintext events; encryption starts with a new "
                "ledger (export this one, then import it into a ledger made with --encrypt)"
            )
        with db.transaction(write=True) as tx:
            enable_encryption(tx.events, db.dialect, kek)
            cipher = cipher_for(tx.events, str(ledger.url))
    log.cipher = cipher


def require_kek(where: str) -> bytes:
    """The KEK from the environment, or a StoreError (exit 3) saying how to give it."""
    kek = load_kek()
    if kek is None:
        raise StoreError(
            f"{where}: encryption needs the key-encryption key in CROWDLEDGER_KEY "
            "(or a file named by CROWDLEDGER_KEY_FILE)"
        )
    return kek


def is_encrypted(ledger: Ledger) -> bool:
    return ledger._log.cipher is not None


def erase_worker(ledger: Ledger, worker: str, *, reason: str, actor: str | None = None) -> Erasure:
    """Destroy ``worker``'s data key and record the erasure; see the module docstring."""
    from crowdledger.adapters.ledger.application import default_actor
    from crowdledger.adapters.ledger.eligibility import EligibilityCache

    worker = str(parse_worker(worker))
    if is_pseudonym(worker):
        raise InvalidInputError("worker", f"{worker} is the pseudonym of a worker erased already")
    why = require_text(check_text(reason, "reason"), "reason")
    cipher = ledger._log.cipher
    if cipher is None:
        raise StoreError(
            f"{ledger.url}: is not encrypted, so a worker cannot be erased from it "
            "(make the ledger with `crowdledger init --encrypt`)"
        )
    db = ledger._db
    if isinstance(db, SQLiteDatabase) and db.path is not None:
        for conn in db._connections():  # the deleted key is overwritten, not just freed
            conn.execute("PRAGMA secure_delete = ON")
    with db.transaction(write=True) as tx:
        cur = tx.events
        EventLog.take_lock(cur)
        key_id = cipher.destroy(cur, worker)
        if key_id is None:
            raise NothingToEraseError(worker)
        pseudonym = pseudonym_of(key_id)
        now = ledger._clock()
        context = Context(
            actor=require_text(default_actor() if actor is None else actor, "actor", limit=200),
            reason=why,
            occurred_at=now,
            correlation_id=str(new_uuid4()),
        )
        stream = worker_blocks_stream(pseudonym)
        event = record_erasure(WorkerBlocks.blank(stream, now), pseudonym, context)
        position = ledger._log.append(
            cur, [(event.originator_id, event.originator_version, event.TOPIC, encode_state(event))]
        )
    cipher.destroyed(key_id)
    rebuilt = ledger.rebuild()
    ledger._eligibility = EligibilityCache(ledger._log)
    _scrub(ledger)
    return Erasure(pseudonym, position, rebuilt)


def _scrub(ledger: Ledger) -> None:
    """SQLite keeps deleted bytes in free pages and in the WAL: rewrite and truncate."""
    db = ledger._db
    if not isinstance(db, SQLiteDatabase) or db.path is None:
        return  # PostgreSQL: the rows are gone from every table; see the README
    events, views = db._connections()
    try:
        views.execute("VACUUM")
        for conn in (events, views):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise StoreError(f"{db.label}: erased, but the files could not be scrubbed: {exc}") from exc
