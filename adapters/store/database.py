"""Connections and transactions for SQLite and PostgreSQL, behind one small interface.

A :class:`Tx` has two cursors: ``events`` for the log and what must be as durable as
the log (idempotency keys), and ``views`` for the read models. On PostgreSQL and in
memory they are one cursor in one transaction. A SQLite file keeps its read models in
a companion file (``<name>-views``) written without waiting for the disk: a durable
commit then flushes only what the log needs, which is what a durable grant costs, and
the read models (which the log can always rebuild) are committed right after it. If a
crash falls between the two commits, the read models are simply behind, and the next
reader or writer catches them up from their tracking position.

Every write goes through ``transaction(write=True)``, which holds the ledger's single
write lock (SQLite ``BEGIN IMMEDIATE`` on the log; PostgreSQL an ``EXCLUSIVE`` lock on
``stored_events``) from before a command reads its streams until the commit. Commands
therefore decide on the latest state, positions are handed out in commit order, and
read models are updated in log order.

Readers never take it: a SQLite reader reads a WAL snapshot, a PostgreSQL reader one
``REPEATABLE READ`` snapshot, whatever a writer holds. A writer that finds the lock
taken waits for it at most ``lock_timeout`` seconds (saying so through ``on_lock_wait``,
if given) and then gives up with a :class:`~crowdledger.StoreError`; ``wait=False``
gives up at once, with :class:`WriteLockBusy`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from crowdledger.adapters.store.schema import LEDGER_TABLES
from crowdledger.domain.errors import StoreError

if TYPE_CHECKING:
    from crowdledger.adapters.store.url import StoreURL

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Cursor",
    "Database",
    "SQLiteDatabase",
    "Tx",
    "WriteLockBusy",
    "no_ledger",
    "open_database",
]

Row = tuple[Any, ...]
DEFAULT_LOCK_TIMEOUT = 60.0  # seconds a writer waits for the write lock
LockWait = Callable[[], None]


class WriteLockBusy(StoreError):
    """Another transaction holds the write lock, and this one was not to wait for it."""


def no_ledger(label: str) -> str:
    return f"no ledger at {label} (create one with `crowdledger init` or by recording something)"


class Cursor:
    """A cursor that takes ``?`` placeholders on both databases and returns tuples."""

    def __init__(self, raw: Any, paramstyle_pyformat: bool, *, lock_pending: bool = False) -> None:
        self._raw = raw
        self._pyformat = paramstyle_pyformat
        # A PostgreSQL command has not yet sent BEGIN and taken the write lock: its first
        # read of the log does both in the same round trip (see EventLog.take_lock).
        self.lock_pending = lock_pending

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pyformat else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if len(rows) == 1:  # a command's usual case; execute() is cheaper for one row
            self._raw.execute(self._sql(sql), rows[0])
        elif rows:
            self._raw.executemany(self._sql(sql), rows)

    def fetchall(self) -> list[Row]:
        return list(self._raw.fetchall())

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else tuple(row)

    def execute_script(self, sql: str) -> Cursor:
        """Several statements without parameters in one round trip; the cursor is left on
        the last statement's result."""
        self._raw.execute(sql)
        while self._raw.nextset():
            pass
        return self

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # -- many rows at once: executemany on SQLite, one statement over arrays on PostgreSQL --
    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        conflict: Sequence[str],
        update: Sequence[str] = (),
        add: Sequence[str] = (),
    ) -> None:
        """Insert ``rows``; on a key clash update ``update`` and add the new row's
        ``add`` columns to the old row's (or keep the old row).

        ``types`` are the PostgreSQL column types, used to pass each column as one array
        (a single ``INSERT ... SELECT FROM unnest(...)`` instead of a round trip per row).
        The rows must not repeat a key.
        """
        rows = list(rows)
        if not rows:
            return
        sets = [f"{c} = excluded.{c}" for c in update]
        sets += [f"{c} = {table}.{c} + excluded.{c}" for c in add]
        action = "DO UPDATE SET " + ", ".join(sets) if sets else "DO NOTHING"
        tail = f"ON CONFLICT ({', '.join(conflict)}) {action}"
        if self._pyformat and len(rows) >= COPY_ROWS:
            self._copy_insert(table, columns, types, rows, tail)
            return
        if self._pyformat and len(rows) > 1:
            arrays = ", ".join(f"%b::{t}[]" for t in types)
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {tail}"
            )
            self._raw.execute(sql, _columns(rows))
            return
        marks = ", ".join("?" for _ in columns)
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {tail}", rows
        )

    def _copy_insert(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        tail: str,
    ) -> None:
        """Many rows into PostgreSQL: COPY into a temporary table (formatted in C), then
        one INSERT ... SELECT with the conflict clause."""
        names = ", ".join(columns)
        staging = f"cl_staging_{table}_{len(columns)}"
        spec = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
        self._raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} ({spec}) ON COMMIT DROP")
        with self._raw.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        self._raw.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {tail}")
        self._raw.execute(f"TRUNCATE {staging}")

    def add_many(
        self, table: str, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """For rows of (key, delta, ...): add each delta to its column (bigint) in place."""
        rows = list(rows)
        if not rows:
            return
        if self._pyformat and len(rows) > 1:
            arrays = ", ".join(["%b::text[]", *("%b::bigint[]" for _ in columns)])
            sets = ", ".join(f"{c} = t.{c} + d.{c}" for c in columns)
            sql = (
                f"UPDATE {table} AS t SET {sets} FROM unnest({arrays}) AS d({key}, {', '.join(columns)}) "
                f"WHERE t.{key} = d.{key}"
            )
            self._raw.execute(sql, _columns(rows))
            return
        sets = ", ".join(f"{c} = {c} + ?" for c in columns)
        self.executemany(
            f"UPDATE {table} SET {sets} WHERE {key} = ?", [(*row[1:], row[0]) for row in rows]
        )

    def delete_many(self, table: str, keys: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Delete the rows whose ``keys`` (text columns) equal each of ``rows``."""
        rows = list(rows)
        if not rows:
            return
        if self._pyformat and len(rows) > 1:
            arrays = ", ".join("%b::text[]" for _ in keys)
            match = " AND ".join(f"t.{k} = d.{k}" for k in keys)
            sql = f"DELETE FROM {table} AS t USING unnest({arrays}) AS d({', '.join(keys)}) WHERE {match}"
            self._raw.execute(sql, _columns(rows))
            return
        match = " AND ".join(f"{k} = ?" for k in keys)
        self.executemany(f"DELETE FROM {table} WHERE {match}", rows)

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    @property
    def raw(self) -> Any:
        """The driver's own cursor, for bulk paths (PostgreSQL COPY)."""
        return self._raw


# From this many rows on, PostgreSQL writes go through COPY.
COPY_ROWS = 2000


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column, each sent as one array. Binary: psycopg's text
    array format quotes every element with a regular expression, which costs more than
    everything else in a rebuild."""
    return [list(column) for column in zip(*rows, strict=True)]


@dataclass(frozen=True)
class Tx:
    """One transaction: the log's cursor and the read models' cursor (maybe the same)."""

    events: Cursor
    views: Cursor


class Database(ABC):
    dialect: str
    label = "the ledger"  # the URL, redacted, for messages
    lock_timeout = DEFAULT_LOCK_TIMEOUT
    on_lock_wait: LockWait | None = None  # called once when a writer starts waiting
    temp_schema = "temp"  # where a connection's private tables live
    main_schema = "main"  # the shared tables, by the name that bypasses private ones

    @abstractmethod
    def transaction(
        self, *, write: bool, wait: bool = True
    ) -> contextlib.AbstractContextManager[Tx]:
        """A transaction; ``write=True`` also takes the ledger's write lock (``wait=False``:
        raise :class:`WriteLockBusy` at once if another transaction holds it)."""

    @abstractmethod
    def log_transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A write transaction on the log alone (commands: they never read the views)."""

    @abstractmethod
    def setup(self, events: Sequence[str], views: Sequence[str], *, wait: bool = True) -> None:
        """Run DDL once, safely when several processes open the same database at once."""

    @abstractmethod
    def object_names(self) -> set[str]:
        """The tables, indexes and functions of the log and the read models that exist."""

    def gave_up(self) -> str:
        return (
            f"{self.label}: gave up waiting for the ledger's write lock after "
            f"{self.lock_timeout:g} s (another process holds it; wait longer with "
            "--lock-timeout SECONDS or CROWDLEDGER_LOCK_TIMEOUT)"
        )

    def busy(self) -> WriteLockBusy:
        return WriteLockBusy(f"{self.label}: another process holds the ledger's write lock")

    @abstractmethod
    def close(self) -> None: ...

    @contextlib.contextmanager
    def bulk(self, *, cache_mib: int = 64, durable: bool = True) -> Iterator[None]:
        """For imports and rebuilds that touch much of the database.

        Within it the cyclic garbage collector waits (a bulk load creates millions of
        long-lived objects with no cycles, and each full collection would walk them all
        again), and the backend may trade ``cache_mib`` of memory for speed and, if not
        ``durable``, give up waiting for the disk on commit.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            with self._tuned(cache_mib, durable):
                yield
        finally:
            if enabled:
                gc.enable()

    def _tuned(self, cache_mib: int, durable: bool) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class SQLiteDatabase(Database):
    """One connection per thread and file (sqlite3 connections are not shareable), WAL.

    The log is written with ``synchronous=FULL``: every commit is durable on power
    loss, as a record people rely on must be (the benchmark measures against the same).
    The read models use ``synchronous=NORMAL``: a power cut may lose their last
    commits, never corrupt them, and they catch up from the log.
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: str | None,
        *,
        busy_timeout: float = DEFAULT_LOCK_TIMEOUT,
        on_lock_wait: LockWait | None = None,
        label: str | None = None,
    ) -> None:
        self.path = path  # None for an in-memory database
        self.views_path = None if path is None else f"{path}-views"
        self._timeout = self.lock_timeout = busy_timeout
        self.on_lock_wait = on_lock_wait
        self.label = label or ("memory://" if path is None else f"sqlite:///{path}")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None
        self._closed = False
        if path is None:  # memory://: one connection, shared under a lock, for both
            self._shared = self._connect(":memory:", durable=True)

    def _connect(self, target: str, *, durable: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            if target != ":memory:":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise StoreError(f"{target}: could not switch SQLite to WAL mode ({mode})")
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {target!r}: {exc}") from exc
        with self._lock:
            self._all.append(conn)
        return conn

    def _connections(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        if self._closed:
            raise StoreError("the ledger is closed")
        if self._shared is not None:
            return self._shared, self._shared
        pair: tuple[sqlite3.Connection, sqlite3.Connection] | None = getattr(
            self._local, "pair", None
        )
        if pair is None:
            assert self.path is not None
            assert self.views_path is not None
            pair = (
                self._connect(self.path, durable=True),
                self._connect(self.views_path, durable=False),
            )
            self._local.pair = pair
        return pair

    @contextlib.contextmanager
    def _tuned(self, cache_mib: int, durable: bool) -> Iterator[None]:
        # A page cache large enough for the tables' indexes turns random B-tree inserts
        # into memory writes (SQLite's default cache is 2 MB).
        connections = set(self._connections())
        for conn in connections:
            conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        try:
            yield
        finally:
            for conn in connections:
                conn.execute("PRAGMA cache_size=-2000")

    def _begin(self, conn: sqlite3.Connection, write: bool, wait: bool = True) -> sqlite3.Cursor:
        raw = conn.cursor()
        try:
            if not write:
                raw.execute("BEGIN")  # a WAL snapshot, taken at the first read: no lock
            elif wait and self.on_lock_wait is None:
                raw.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout
            else:
                self._begin_probing(conn, raw, wait)
        except sqlite3.OperationalError as exc:
            raw.close()
            if write and _busy(exc):
                raise StoreError(self.gave_up()) from exc
            raise StoreError(f"{self.label}: the ledger database is busy: {exc}") from exc
        except BaseException:
            raw.close()
            raise
        return raw

    def _begin_probing(self, conn: sqlite3.Connection, raw: sqlite3.Cursor, wait: bool) -> None:
        """BEGIN IMMEDIATE without waiting; if the lock is taken, say so, then wait."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if not wait:
                    raise self.busy() from None
            if self.on_lock_wait is not None:
                self.on_lock_wait()
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            raw.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    @contextlib.contextmanager
    def transaction(self, *, write: bool, wait: bool = True) -> Iterator[Tx]:
        guard = self._lock if self._shared is not None else contextlib.nullcontext()
        with guard:
            log, views = self._connections()
            if log is views:
                raw = self._begin(log, write, wait)
                cursor = Cursor(raw, paramstyle_pyformat=False)
                try:
                    yield Tx(cursor, cursor)
                except BaseException:
                    log.rollback()
                    raise
                else:
                    log.commit()
                finally:
                    raw.close()
                return
            log_raw = self._begin(log, write, wait)
            try:
                views_raw = self._begin(views, write, wait)
            except BaseException:
                log.rollback()
                log_raw.close()
                raise
            try:
                yield Tx(Cursor(log_raw, False), Cursor(views_raw, False))
            except BaseException:
                views.rollback()
                log.rollback()
                raise
            else:
                # The log first: read models may fall behind it, never run ahead of it.
                log.commit()
                views.commit()
            finally:
                log_raw.close()
                views_raw.close()

    @contextlib.contextmanager
    def log_transaction(self) -> Iterator[Cursor]:
        guard = self._lock if self._shared is not None else contextlib.nullcontext()
        with guard:
            log = self._connections()[0]
            raw = self._begin(log, True)
            try:
                yield Cursor(raw, paramstyle_pyformat=False)
            except BaseException:
                log.rollback()
                raise
            else:
                log.commit()
            finally:
                raw.close()

    def setup(self, events: Sequence[str], views: Sequence[str], *, wait: bool = True) -> None:
        with self.transaction(write=True, wait=wait) as tx:
            for statement in events:
                tx.events.execute(statement)
            for statement in views:
                tx.views.execute(statement)

    def object_names(self) -> set[str]:
        guard = self._lock if self._shared is not None else contextlib.nullcontext()
        with guard:
            names: set[str] = set()
            for conn in set(self._connections()):
                rows = conn.execute("SELECT name FROM sqlite_master").fetchall()
                names.update(str(row[0]) for row in rows)
            return names

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _probe_sqlite_file(path: str, label: str, *, create: bool) -> None:
    """Refuse, before anything writes to it, a path that holds no ledger (unless
    ``create``) or holds something else: a directory, a file that is not a SQLite
    database, another application's database. Nothing is created or changed here."""
    if os.path.isdir(path):
        raise StoreError(f"{label}: {path} is a directory, not a ledger database")
    if not os.path.exists(path):
        if create:
            return
        raise StoreError(no_ledger(label))
    # mode=rw never creates the file and, reading only, changes nothing in it (unlike
    # mode=ro, it also removes the -wal and -shm files a WAL database's reader makes).
    uri = f"file:{quote(os.path.abspath(path))}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{label}: {path} is not a SQLite database ({exc})") from None
    tables = sorted(str(row[0]) for row in rows)
    if set(LEDGER_TABLES) <= set(tables):
        return
    if not tables:  # an empty database (or an empty file): no ledger yet
        if create:
            return
        raise StoreError(no_ledger(label))
    shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
    raise StoreError(
        f"{label}: {path} is not a crowdledger ledger (a SQLite database with other "
        f"tables: {shown}); it was left as it is"
    )


class PostgresDatabase(Database):
    """A psycopg connection pool; the schema is chosen per connection with search_path."""

    dialect = "postgresql"

    temp_schema = "pg_temp"

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        max_size: int = 4,
        create: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        on_lock_wait: LockWait | None = None,
        label: str | None = None,
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self._psycopg = psycopg
        self.schema = schema
        self.main_schema = f'"{schema}"'
        self.label = label or f"schema {schema}"
        self.lock_timeout = lock_timeout
        self.on_lock_wait = on_lock_wait
        # Every wait for a lock (the write lock above all) ends after lock_timeout.
        wait_ms = max(1, round(lock_timeout * 1000))

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.autocommit = True
            conn.execute(f"SET search_path TO \"{schema}\"; SET lock_timeout = '{wait_ms}ms'")

        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
                ).fetchone()
                if found is None:
                    if not create:
                        raise StoreError(no_ledger(self.label))
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())
            raise StoreError(f"cannot connect to PostgreSQL: {detail}") from exc
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            configure=configure,
            kwargs={"autocommit": True},
            open=True,
            timeout=30,
        )

    @contextlib.contextmanager
    def transaction(self, *, write: bool, wait: bool = True) -> Iterator[Tx]:
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
                if write:
                    self._lock(conn, raw, wait)
                else:
                    # One snapshot for every statement; not READ ONLY, so that a reader
                    # may keep private temporary tables (see catch_up.overlay).
                    raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor = Cursor(raw, paramstyle_pyformat=True)
                yield Tx(cursor, cursor)
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreError(self.gave_up()) from exc
        except psycopg.OperationalError as exc:
            raise StoreError("PostgreSQL: " + " ".join(str(exc).split())) from exc

    _LOCK = "LOCK TABLE stored_events IN EXCLUSIVE MODE"

    def _lock(self, conn: Any, raw: Any, wait: bool) -> None:
        """Take the write lock in the open transaction (waiting at most lock_timeout)."""
        if wait and self.on_lock_wait is None:
            raw.execute(self._LOCK)
            return
        if not wait:
            try:
                raw.execute(self._LOCK + " NOWAIT")
            except self._psycopg.errors.LockNotAvailable:
                raise self.busy() from None
            return
        try:
            with conn.transaction():  # a savepoint: a refused NOWAIT leaves the rest usable
                raw.execute(self._LOCK + " NOWAIT")
            return
        except self._psycopg.errors.LockNotAvailable:
            pass
        if self.on_lock_wait is not None:
            self.on_lock_wait()
        raw.execute(self._LOCK)

    def _begin_locked(self, raw: Any) -> None:
        """BEGIN and take the write lock, saying so first if another process holds it."""
        try:
            raw.execute(f"BEGIN; {self._LOCK} NOWAIT")
            return
        except self._psycopg.errors.LockNotAvailable:
            raw.execute("ROLLBACK")
        if self.on_lock_wait is not None:
            self.on_lock_wait()
        raw.execute(f"BEGIN; {self._LOCK}")

    @contextlib.contextmanager
    def log_transaction(self) -> Iterator[Cursor]:
        # BEGIN and the write lock travel with the command's first read of the log, in one
        # round trip (EventLog.load, .find_key): a command then costs that read, the
        # INSERT and the COMMIT, the same number of round trips as a bare insert.
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.cursor() as raw:
                # Told to say when it waits: the lock first, in a round trip of its own.
                probe = self.on_lock_wait is not None
                cursor = Cursor(raw, paramstyle_pyformat=True, lock_pending=not probe)
                try:
                    if probe:
                        self._begin_locked(raw)
                    yield cursor
                    if cursor.lock_pending:  # nothing was read: still a transaction
                        raw.execute("BEGIN; LOCK TABLE stored_events IN EXCLUSIVE MODE")
                    raw.execute("COMMIT")
                except BaseException:
                    if not cursor.lock_pending and not conn.closed:
                        raw.execute("ROLLBACK")
                    raise
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreError(self.gave_up()) from exc
        except psycopg.OperationalError as exc:
            raise StoreError("PostgreSQL: " + " ".join(str(exc).split())) from exc

    def setup(self, events: Sequence[str], views: Sequence[str], *, wait: bool = True) -> None:
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
                # Serialise concurrent first opens: CREATE ... IF NOT EXISTS is not race-free.
                if wait:
                    raw.execute("SELECT pg_advisory_xact_lock(7461902)")
                else:
                    # Nor wait for the write lock (DDL on stored_events needs a share of it).
                    raw.execute("SET LOCAL lock_timeout = '1ms'")
                    got = raw.execute("SELECT pg_try_advisory_xact_lock(7461902)").fetchone()
                    if not got or not got[0]:
                        raise self.busy()
                for statement in [*events, *views]:
                    raw.execute(statement)
        except psycopg.errors.LockNotAvailable as exc:
            if not wait:
                raise self.busy() from None
            raise StoreError(self.gave_up()) from exc
        except psycopg.OperationalError as exc:
            raise StoreError("PostgreSQL: " + " ".join(str(exc).split())) from exc

    def object_names(self) -> set[str]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s UNION SELECT p.proname FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
                (self.schema, self.schema),
            ).fetchall()
        return {str(row[0]) for row in rows}

    def close(self) -> None:
        self._pool.close()


def open_database(
    url: StoreURL,
    *,
    create: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: LockWait | None = None,
) -> Database:
    """Connect to the database at ``url``; without ``create``, refuse (with a
    :class:`~crowdledger.StoreError`, creating nothing) a place that holds no database.

    Whether the database holds a ledger is for the caller to ask (:meth:`object_names`),
    except that a SQLite path is checked before it is opened for writing, so that
    another application's file is never switched to WAL mode.
    """
    label = str(url)
    if url.kind == "memory":
        if not create:
            raise StoreError(no_ledger(label))
        return SQLiteDatabase(None, label=label)
    if url.kind == "sqlite":
        _probe_sqlite_file(url.path, label, create=create)
        return SQLiteDatabase(
            url.path, busy_timeout=lock_timeout, on_lock_wait=on_lock_wait, label=label
        )
    return PostgresDatabase(
        url.conninfo,
        url.schema,
        create=create,
        lock_timeout=lock_timeout,
        on_lock_wait=on_lock_wait,
        label=label,
    )
