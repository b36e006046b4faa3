"""Restoring: an empty ledger rebuilt from an archive, checked as it is read.

The archive's rows are appended as they are, byte for byte and at the same positions, in
one write transaction, while :class:`~crowdledger.adapters.archive.reader.ArchiveReader`
checks them (the chain, each segment's signed checkpoint, no gap or overlap): the first
problem rolls everything back, so a restore either rebuilds the whole archived log or
records nothing. The store hashes the rows again as it appends them; the restored chain's
head must be the archive's. The ledger takes the archive's ledger id, so the original's
checkpoints verify against it and ``crowdledger archive`` continues the same archive: a
restore is the same ledger recovered, not a copy (for a copy, ``export`` and ``import``).

What is restored with the log: the idempotency keys its events carry (a command repeated
after the restore is still recognised), the automations' position (they never react to
restored events: the log holds what they did) and, for an encrypted ledger, its worker
keys (``keys.json``, adapters/archive/keys.py: the target becomes an encrypted ledger
that opens with the same ``CROWDLEDGER_KEY``, checked before anything is written); the
read models are then rebuilt from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crowdledger.adapters.archive.errors import ArchiveRefused, ArchiveTampered
from crowdledger.adapters.archive.keys import KEYS, decode_keys, install_keys
from crowdledger.adapters.archive.layout import ArchivedRow
from crowdledger.adapters.archive.reader import ArchiveReader, ArchiveReport
from crowdledger.adapters.archive.s3 import ArchiveBucket
from crowdledger.adapters.ledger.follow import mark_imported
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import IMPORTED_KEY, EventLog, StoredRow
from crowdledger.adapters.store.upgrade import LEDGER_ID_KEY
from crowdledger.adapters.store.worker_keys import cipher_for

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["Restored", "restore_ledger"]

_BATCH = 10_000
_SEALED = b',"~k":"'  # how a sealed state marks its key id (adapters/store/worker_keys.py)


@dataclasses.dataclass(frozen=True)
class Restored:
    """A restore that completed: the archive as verified, and where it went."""

    archive: ArchiveReport
    target: str

    def lines(self) -> list[str]:
        return [
            f"restored {self.archive.events} events from {self.archive.location} "
            f"({self.archive.segments} segments, each checkpoint verified) into {self.target}",
            "the read models were rebuilt from them",
        ]

    def to_json(self) -> dict[str, object]:
        return {"restored": self.archive.events, "target": self.target, **self.archive.to_json()}


def _append(log: EventLog, cur: Cursor, rows: list[ArchivedRow]) -> None:
    stored: list[StoredRow] = [(r.stream, r.version, r.topic, r.state) for r in rows]
    first = log.append(cur, stored, head=rows[0].position - 1)
    if first != rows[0].position:
        raise ArchiveRefused(
            f"the ledger appended at position {first}, not {rows[0].position}: another "
            "process writes to the target"
        )
    for row in rows:
        key = _idempotency_key(row.state)
        if key is not None:
            log.remember_key(cur, key, IMPORTED_KEY, row.position, row.position, replace=False)


def _idempotency_key(state: bytes) -> str | None:
    if b'"idempotency_key"' not in state:
        return None
    try:
        document = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    key = document.get("idempotency_key") if isinstance(document, dict) else None
    return key if isinstance(key, str) else None


def restore_ledger(
    ledger: Ledger,
    bucket: ArchiveBucket,
    public_key: Ed25519PublicKey,
    *,
    target: str,
    progress: Callable[[int, int | None], None] | None = None,
) -> Restored:
    """Rebuild the empty ``ledger`` from the archive in ``bucket`` (see the module).

    Raises :class:`ArchiveRefused` if the ledger holds any event (nothing is written),
    :class:`ArchiveTampered` at the first problem in the archive (nothing is kept).
    """
    db, log = ledger._db, ledger._log
    with db.transaction(write=False) as tx:
        held = log.head(tx.events)
    if held:
        raise ArchiveRefused(
            f"{target} holds {held} events: a restore rebuilds a ledger only into an empty "
            "one (create a new database, or use `crowdledger import` to add history)"
        )
    reader = ArchiveReader(bucket, public_key)
    held_keys = bucket.get(KEYS)
    keys = None if held_keys is None else decode_keys(held_keys)
    if keys is None and log.cipher is not None:
        raise ArchiveRefused(
            f"{bucket.location} is the archive of a plaintext ledger and {target} is an "
            "encrypted one: restore into a plaintext ledger (then export it and import the "
            "export into an encrypted one)"
        )
    # The rows are appended exactly as archived (never sealed again), then read through
    # the archive's keys if it has them.
    opened_with = cipher = log.cipher
    log.cipher = None
    try:
        with db.bulk(cache_mib=256), db.transaction(write=True) as tx:
            cur = tx.events
            log.take_lock(cur)
            if log.head(cur):  # written to between the look and the lock
                raise ArchiveRefused(f"{target} is no longer empty: another process wrote to it")
            if keys is not None:  # an encrypted ledger's: the KEK must open its keys (exit 3)
                install_keys(cur, db.dialect, keys)
                cipher = cipher_for(cur, f"restore of {bucket.location}")
            pending: list[ArchivedRow] = []
            done = 0
            for row in reader.rows():
                if keys is None and _SEALED in row.state:
                    raise ArchiveRefused(
                        f"{bucket.location} holds encrypted rows (position {row.position}) "
                        f"but no {KEYS}: run `crowdledger archive` from the ledger once more "
                        "to write it, then restore"
                    )
                pending.append(row)
                if len(pending) >= _BATCH:
                    _append(log, cur, pending)
                    done += len(pending)
                    pending = []
                    if progress is not None:
                        progress(done, None)
            if pending:
                _append(log, cur, pending)
            report = reader.report
            assert report is not None
            last, head = log.tip(cur)
            if (last, head) != (report.events, report.head):
                raise ArchiveTampered(
                    "changed",
                    f"the restored log's head ({last}, {head.hex()}) is not the archive's "
                    f"({report.events}, {report.head.hex()})",
                    last,
                )
            if keys is not None and keys.ledger != report.ledger:
                raise ArchiveTampered(
                    "changed",
                    f"holds the keys of ledger {keys.ledger!r}, not of this archive's "
                    f"({report.ledger!r})",
                    segment=KEYS,
                )
            if report.ledger is not None:
                cur.execute("DELETE FROM cl_meta WHERE key = ?", (LEDGER_ID_KEY,))
                cur.execute(
                    "INSERT INTO cl_meta (key, value) VALUES (?, ?)", (LEDGER_ID_KEY, report.ledger)
                )
            if report.events:
                mark_imported(tx, log)
    finally:
        log.cipher = opened_with
    log.cipher = cipher
    ledger.catch_up(progress)
    return Restored(report, target)
