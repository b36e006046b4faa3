"""Auditing a ledger's database: its rows through :func:`audit_log`, its read models against a replay.

:func:`verify_ledger` reads ``stored_events`` with the stored hashes, in batches, from one
snapshot, and feeds them to :func:`~crowdledger.adapters.audit.log_audit.audit_log` (the
chain, and the log against each checkpoint); then, in the same snapshot, it replays the
log up to the read models' tracking position into private temporary copies of the
read-model tables and compares them with the shared ones, row for row, in SQL (a read
model edited by hand is caught even where the log is intact). Memory stays bounded: one
batch of rows, the chain verifier's window, O(log n) Merkle hashes, and one batch of
projected changes; the database holds the copies.

The rows are :data:`~crowdledger.adapters.audit.log_audit.AuditRow` tuples, the same
that an archive turns its segments back into, so an archive is verified by the same code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crowdledger.adapters.audit.checkpoint import Checkpoint
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.log_audit import AuditReport, AuditRow, audit_log
from crowdledger.adapters.store.catch_up import BATCH, apply_rows
from crowdledger.adapters.store.database import Cursor, Database, Tx
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.schema import OVERLAY_TABLES, READ_MODEL_TABLES, overlay_ddl
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.adapters.store.upgrade import LEDGER_ID_KEY, has_hash_column

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "Progress",
    "VerifyReport",
    "check_ledger_of",
    "ledger_id",
    "log_rows",
    "stored_rows",
    "verify_ledger",
]

# (phase, done, total): phase "chain" then "read models".
Progress = Callable[[str, int, int], None]

UPGRADE_ADVICE = (
    "this ledger was recorded before the hash chain: open it with a command that records "
    "(`crowdledger init` does, and changes nothing else) to compute its hashes, then try again"
)


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """A ledger that verified: the log's :class:`AuditReport`, the ledger's id, the
    position up to which the read models were found equal to a replay (None: not checked),
    and how long it took."""

    ledger: str
    log: AuditReport
    read_models: int | None
    seconds: float

    def document(self) -> dict[str, Any]:
        """What ``verify --json`` prints for an intact ledger."""
        return {
            "intact": True,
            "ledger": self.ledger,
            "events": self.log.events,
            "head": self.log.head.hex(),
            "root": self.log.root.hex(),
            "checkpoints": list(self.log.checkpoints),
            "read_models": self.read_models,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        said = [
            f"intact: {self.log.events} events, the hash chain holds (head {self.log.head.hex()})"
        ]
        said.extend(
            f"extends the checkpoint of {position} events" for position in self.log.checkpoints
        )
        if self.read_models is not None:
            said.append(
                f"the read models equal a replay of the log (up to position {self.read_models})"
            )
        return said


def ledger_id(ledger: Ledger) -> str:
    """The ledger's id (``cl_meta``), which its checkpoints name."""
    with ledger._db.transaction(write=False) as tx:
        found = tx.events.scalar("SELECT value FROM cl_meta WHERE key = ?", (LEDGER_ID_KEY,))
    if found is None:
        raise AuditInputError(UPGRADE_ADVICE)
    return str(found)


def check_ledger_of(checkpoint: Checkpoint, ledger: str, path: str | None = None) -> None:
    """Refuse a checkpoint of another ledger (a mistake, not tampering: exit 2)."""
    if checkpoint.ledger != ledger:
        raise AuditInputError(
            f"is a checkpoint of ledger {checkpoint.ledger!r}, not of this one ({ledger!r})",
            path=path,
        )


def log_rows(
    log: EventLog, cur: Cursor, *, batch: int = BATCH, upto: int | None = None
) -> Iterator[AuditRow]:
    """Every stored row with its stored hash, in position order, read ``batch`` at a time
    (up to position ``upto``, if given)."""
    after = 0
    while rows := log.read_hashed(cur, after, batch, upto):
        yield from rows
        after = rows[-1][0]


@contextlib.contextmanager
def stored_rows(ledger: Ledger, *, batch: int = BATCH) -> Iterator[Iterator[AuditRow]]:
    """The ledger's rows (:func:`log_rows`) from one read snapshot, for the block."""
    _require_hashes(ledger._db)
    with ledger._db.transaction(write=False) as tx:
        yield log_rows(ledger._log, tx.events, batch=batch)


def _require_hashes(db: Database) -> None:
    with db.transaction(write=False) as tx:
        if not has_hash_column(tx.events, db.dialect):
            raise AuditInputError(UPGRADE_ADVICE)


def verify_ledger(
    ledger: Ledger,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    public_key: Ed25519PublicKey | None = None,
    read_models: bool = True,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> VerifyReport:
    """Verify the ledger's log (the chain and ``checkpoints``) and its read models.

    Raises :class:`TamperingDetected` at the first problem (``kind`` ``read_model`` for a
    read model that differs from a replay), :class:`AuditInputError` for a checkpoint of
    another ledger or a ledger not yet upgraded to the hash chain.
    """
    started = time.perf_counter()
    identity = ledger_id(ledger)
    for checkpoint in checkpoints:
        check_ledger_of(checkpoint, identity)
    db, log = ledger._db, ledger._log
    _require_hashes(db)
    with db.transaction(write=False) as tx:
        # The read models' position first: on SQLite they live in another file, committed
        # after the log, so the log read after it holds every event they have seen.
        SqlViews.position(tx.views)
        total = log.head(tx.events)
        every = max(1, min(batch, 100_000))

        def said(done: int) -> None:
            if progress is not None:
                progress("chain", done, total)

        if progress is not None:
            progress("chain", 0, total)
        report = audit_log(
            log_rows(log, tx.events, batch=batch),
            checkpoints,
            public_key=public_key,
            progress=said,
            every=every,
            require_hashes=True,
        )
        said(report.events)
        checked = None
        if read_models:
            checked = _check_read_models(db, tx, log, report.events, progress, batch)
    return VerifyReport(identity, report, checked, time.perf_counter() - started)


def _check_read_models(
    db: Database, tx: Tx, log: EventLog, head: int, progress: Progress | None, batch: int
) -> int:
    """Compare the read models as a reader sees them at ``head`` (the shared tables plus
    the events they have not seen yet, :func:`~crowdledger.adapters.store.catch_up.overlay`'s
    way) with a replay of the whole log, both in temporary tables; returns ``head``."""
    cur, temp, main = tx.views, db.temp_schema, db.main_schema
    tables, indexes = overlay_ddl(db.dialect)
    replayed = {table: f"cl_replay_{table}" for table in OVERLAY_TABLES}

    def drop_all() -> None:
        for table in OVERLAY_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {temp}.{table}")
            cur.execute(f"DROP TABLE IF EXISTS {temp}.{replayed[table]}")
        if db.dialect == "postgresql":
            cur.execute("DISCARD PLANS")  # see catch_up.overlay: plans of shadowed tables

    drop_all()
    try:
        tracked = SqlViews.position(cur)
        if tracked > head:
            raise TamperingDetected(
                "truncated",
                f"the read models have seen events up to position {tracked}, but the log "
                f"ends at position {head}: events were removed from its end",
                head + 1,
            )
        # 1. The whole log replayed into copies of the tables (no secondary indexes: the
        # replay needs only the keys), then put aside under other names.
        for statement in tables:
            cur.execute(statement)
        if db.dialect == "postgresql":
            cur.execute("DISCARD PLANS")
        _apply(cur, log, tx, 0, head, progress, batch)
        for table in OVERLAY_TABLES:
            cur.execute(f"ALTER TABLE {temp}.{table} RENAME TO {replayed[table]}")
        # 2. What a reader sees: the shared tables, and the events after their position.
        for statement in tables:
            cur.execute(statement)
        if db.dialect == "postgresql":
            cur.execute("DISCARD PLANS")
        for table in OVERLAY_TABLES:
            cur.execute(f"INSERT INTO {temp}.{table} SELECT * FROM {main}.{table}")
        for statement in indexes:
            cur.execute(statement)
        _apply(cur, log, tx, tracked, head, None, batch)
        for table in READ_MODEL_TABLES:
            _compare(cur, f"{temp}.{table}", f"{temp}.{replayed[table]}", table, head)
    finally:
        drop_all()
    return head


def _apply(
    cur: Cursor,
    log: EventLog,
    tx: Tx,
    after: int,
    upto: int,
    progress: Progress | None,
    batch: int,
) -> None:
    reached = after
    if progress is not None:
        progress("read models", 0, upto)
    while reached < upto:
        rows = log.read_for_views(tx.events, reached, min(batch, upto - reached))
        if not rows:
            break
        reached = apply_rows(cur, rows, reached)
        if progress is not None:
            progress("read models", reached, upto)


def _compare(cur: Cursor, stored: str, replayed: str, table: str, upto: int) -> None:
    extra = cur.execute(
        f"SELECT * FROM {stored} EXCEPT SELECT * FROM {replayed} LIMIT 1"
    ).fetchone()
    lacking = cur.execute(
        f"SELECT * FROM {replayed} EXCEPT SELECT * FROM {stored} LIMIT 1"
    ).fetchone()
    if extra is None and lacking is None:
        return
    parts = []
    if extra is not None:
        parts.append(f"it holds {_row_text(extra)}, which the replay does not")
    if lacking is not None:
        parts.append(f"the replay holds {_row_text(lacking)}, which it does not")
    raise TamperingDetected(
        "read_model",
        f"read model {table} differs from a replay of the log up to position {upto}: "
        + "; ".join(parts)
        + " (the log verified: rebuild the read models with `crowdledger rebuild`)",
    )


def _row_text(row: Sequence[Any]) -> str:
    text = repr(tuple(row))
    return text if len(text) <= 300 else text[:297] + "..."
