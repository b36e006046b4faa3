"""Shared fixtures: a ledger on every backend, and the PostgreSQL switch.

Tests that take the ``ledger`` or ``ledger_url`` fixture run once on a SQLite file and
once on PostgreSQL. Without a reachable server the PostgreSQL half is skipped with a
reason, unless ``CROWDLEDGER_REQUIRE_POSTGRES=1`` (as in CI), which turns the skip into
a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdledger import Ledger

POSTGRES_URL = os.environ.get(
    "CROWDLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CROWDLEDGER_REQUIRE_POSTGRES") == "1"

_postgres_error: str | None = None
_postgres_checked = False


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None if it can (checked once per run)."""
    global _postgres_checked, _postgres_error
    if not _postgres_checked:
        _postgres_checked = True
        try:
            import psycopg

            with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            _postgres_error = (
                f"PostgreSQL at {POSTGRES_URL} is not reachable: {' '.join(str(exc).split())}"
            )
    return _postgres_error


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"CROWDLEDGER_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """A URL for a fresh, private schema in the test database, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        drop_schema(schema)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty ledger, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        with fresh_postgres_url() as url:
            yield url


class Clock:
    """A controllable clock, so tests can say exactly when things happen."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def open_ledger(clock: Clock) -> Iterator[Callable[[str], Ledger]]:
    opened: list[Ledger] = []

    def factory(url: str) -> Ledger:
        result = Ledger.open(url, clock=clock)
        opened.append(result)
        return result

    yield factory
    for item in opened:
        item.close()


# What any provider accepts as a rejection (MTurk needs feedback; Prolific 100 characters
# and a category): ``ledger.reject(s, **REJECTION)``.
REJECTION = {
    "feedback": "Your answer did not match the instructions for this task; please read them "
    "again before taking the next one.",
    "category": "FAILED_INSTRUCTIONS",
}
W1 = "mturk:A1B2C3D4E5F6G7"
W2 = "prolific:5f3c2a1b9d8e7f6a5b4c3d2e"
W3 = "mturk:A9Z8Y7X6W5V4U3"
