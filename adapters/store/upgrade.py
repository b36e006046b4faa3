"""Upgrading a ledger recorded before the hash chain (schema version 1) and naming it.

A version 1 ledger has no ``hash`` column. :func:`upgrade_log` adds it and computes every
row's hash, in position order, in the caller's transaction (which holds the write lock):
the chain then covers history as it stood at the upgrade, which is all an upgrade can
vouch for (say so when you keep the first checkpoint). It runs once, when a writer opens
the ledger (``Ledger.open``: any command that records, or ``crowdledger init``); until
then ``verify``, ``checkpoint`` and ``prove`` refuse with that advice.

:func:`ensure_ledger_id` gives the ledger a random id, kept in ``cl_meta`` under
``ledger_id``: checkpoints name it, so that one ledger's checkpoint is never taken for
another's, wherever its database is moved.
"""

from __future__ import annotations

from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import EventLog, hash_rows
from crowdledger.domain.errors import StoreError
from crowdledger.domain.ids import new_uuid4

__all__ = ["LEDGER_ID_KEY", "UPGRADABLE", "ensure_ledger_id", "has_hash_column", "upgrade_log"]

LEDGER_ID_KEY = "ledger_id"
# Schema versions a writer upgrades to the current one when it opens the ledger.
UPGRADABLE = ("1",)
_BATCH = 20_000


def has_hash_column(cur: Cursor, dialect: str) -> bool:
    if dialect == "sqlite":
        columns = cur.execute("PRAGMA main.table_info(stored_events)").fetchall()
        return any(str(row[1]) == "hash" for row in columns)
    found = cur.scalar(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'stored_events' AND column_name = 'hash'"
    )
    return found is not None


def upgrade_log(cur: Cursor, dialect: str) -> int:
    """Add the ``hash`` column if missing and hash every row that has none (a version 1
    log), in position order; returns how many rows were hashed."""
    if not has_hash_column(cur, dialect):
        kind = "BLOB" if dialect == "sqlite" else "bytea"
        cur.execute(f"ALTER TABLE stored_events ADD COLUMN hash {kind}")
    log = EventLog(dialect)
    position = "rowid" if dialect == "sqlite" else "notification_id"
    first_unhashed = cur.scalar(f"SELECT MIN({position}) FROM stored_events WHERE hash IS NULL")
    if first_unhashed is None:
        return 0
    start = int(first_unhashed)
    _last, previous = log.tip(cur, start - 1)
    done = 0
    after = start - 1
    while rows := log.read(cur, after, _BATCH):
        if rows[0][0] != after + 1:
            raise StoreError(
                f"stored_events: position {after + 1} is missing; the log cannot be upgraded "
                "to the hash chain as it is (see `crowdledger verify`)"
            )
        hashes = hash_rows([(r[1], r[2], r[3], r[4]) for r in rows], rows[0][0], previous)
        updates = [(digest, row[0]) for row, digest in zip(rows, hashes, strict=True)]
        if dialect == "sqlite":
            cur.executemany(f"UPDATE stored_events SET hash = ? WHERE {position} = ?", updates)
        else:
            cur.execute(
                "UPDATE stored_events AS e SET hash = u.hash FROM "
                "unnest(%b::bytea[], %b::bigint[]) AS u(hash, position) "
                "WHERE e.notification_id = u.position",
                ([u[0] for u in updates], [u[1] for u in updates]),
            )
        previous = hashes[-1]
        after = rows[-1][0]
        done += len(rows)
    return done


def ensure_ledger_id(cur: Cursor) -> str:
    """The ledger's id, made (a random UUID) if it has none yet."""
    found = cur.scalar("SELECT value FROM cl_meta WHERE key = ?", (LEDGER_ID_KEY,))
    if found is not None:
        return str(found)
    ledger_id = str(new_uuid4())
    cur.execute("INSERT INTO cl_meta (key, value) VALUES (?, ?)", (LEDGER_ID_KEY, ledger_id))
    return ledger_id
