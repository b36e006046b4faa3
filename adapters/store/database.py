"""Connections and transactions for SQLite and PostgreSQL, behind one small interface.

Every write goes through :meth:`Database.transaction` with ``write=True``, which holds
the ledger's single write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL an ``EXCLUSIVE``
lock on ``stored_events``) from before the command reads its stream until the commit.
Commands therefore see the latest state, positions are handed out in commit order, and
the read models are updated in the same transaction as the events they reflect.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crowdledger.domain.errors import StoreError

if TYPE_CHECKING:
    from crowdledger.adapters.store.url import StoreURL

__all__ = ["Cursor", "Database", "open_database"]

Row = tuple[Any, ...]


class Cursor:
    """A cursor that takes ``?`` placeholders on both databases and returns tuples."""

    def __init__(self, raw: Any, paramstyle_pyformat: bool) -> None:
        self._raw = raw
        self._pyformat = paramstyle_pyformat

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pyformat else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._raw.executemany(self._sql(sql), rows)

    def fetchall(self) -> list[Row]:
        return list(self._raw.fetchall())

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else tuple(row)

    def fetchmany(self, size: int) -> list[Row]:
        return list(self._raw.fetchmany(size))

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    @property
    def raw(self) -> Any:
        """The driver's own cursor, for bulk paths (PostgreSQL COPY)."""
        return self._raw


class Database(ABC):
    dialect: str

    @abstractmethod
    def transaction(self, *, write: bool) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction; ``write=True`` also takes the ledger's write lock."""

    @abstractmethod
    def setup(self, statements: Sequence[str]) -> None:
        """Run DDL once, safely when several processes open the same database at once."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteDatabase(Database):
    """One connection per thread (sqlite3 connections are not shareable), WAL mode.

    ``synchronous=FULL`` makes every commit durable on power loss; the ledger is a record
    people rely on, so that is the default, and the benchmark measures against the same.
    """

    dialect = "sqlite"

    def __init__(self, path: str | None, *, busy_timeout: float = 60.0) -> None:
        self._path = path
        self._timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None
        self._closed = False
        if path is None:  # memory://: one connection, shared under a lock
            self._shared = self._connect(":memory:")

    def _connect(self, target: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            if target != ":memory:":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise StoreError(f"{target}: could not switch SQLite to WAL mode ({mode})")
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {target!r}: {exc}") from exc
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the ledger is closed")
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._path is not None
            conn = self._local.conn = self._connect(self._path)
        return conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Cursor]:
        guard = self._lock if self._shared is not None else contextlib.nullcontext()
        with guard:
            conn = self._connection()
            raw = conn.cursor()
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                raw.close()
                raise StoreError(f"the ledger database is busy: {exc}") from exc
            try:
                yield Cursor(raw, paramstyle_pyformat=False)
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                raw.close()

    def setup(self, statements: Sequence[str]) -> None:
        with self.transaction(write=True) as cur:
            for statement in statements:
                cur.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()


class PostgresDatabase(Database):
    """A psycopg connection pool; the schema is chosen per connection with search_path."""

    dialect = "postgresql"

    def __init__(self, conninfo: str, schema: str, *, max_size: int = 4) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self._psycopg = psycopg
        self.schema = schema

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.autocommit = True
            conn.execute(f'SET search_path TO "{schema}"')

        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
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
    def transaction(self, *, write: bool) -> Iterator[Cursor]:
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
                if write:
                    raw.execute("LOCK TABLE stored_events IN EXCLUSIVE MODE")
                else:
                    raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Cursor(raw, paramstyle_pyformat=True)
        except psycopg.OperationalError as exc:
            raise StoreError("PostgreSQL: " + " ".join(str(exc).split())) from exc

    def setup(self, statements: Sequence[str]) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
            # Serialise concurrent first opens: CREATE ... IF NOT EXISTS is not race-free.
            raw.execute("SELECT pg_advisory_xact_lock(7461902)")
            for statement in statements:
                raw.execute(statement)

    def close(self) -> None:
        self._pool.close()


def open_database(url: StoreURL) -> Database:
    if url.kind == "memory":
        return SQLiteDatabase(None)
    if url.kind == "sqlite":
        return SQLiteDatabase(url.path)
    return PostgresDatabase(url.conninfo, url.schema)
