"""Replay equals incremental state, for random command sequences.

Hypothesis drives a ledger with random commands (many of them refused), then checks that
the read models built one command at a time are exactly the ones a full rebuild produces,
the ones an in-memory replay produces, and the ones an export/import round trip produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import CommandRefused, InvalidInputError, Ledger
from crowdledger.adapters.store.schema import READ_MODEL_TABLES
from crowdledger.domain.errors import BatchError

from .conftest import REJECTION, W1, W2, W3, Clock, fresh_postgres_url

WORKERS = [W1, W2, W3]
QUALS = ["english", "quality_score", "onboarding-failed"]
SCOPES = ["global", "project:transcription"]
SUBMISSIONS = [f"s{i}" for i in range(5)]


@dataclass(frozen=True)
class Command:
    kind: str
    args: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"{self.kind}{self.args}"


commands = st.one_of(
    st.builds(lambda q: Command("define", (q,)), st.sampled_from(QUALS)),
    st.builds(
        lambda w, q, v: Command("grant", (w, q, v)),
        st.sampled_from(WORKERS),
        st.sampled_from(QUALS),
        st.integers(-5, 100),
    ),
    st.builds(
        lambda w, q: Command("revoke", (w, q)), st.sampled_from(WORKERS), st.sampled_from(QUALS)
    ),
    st.builds(
        lambda w, q, by: Command("adjust", (w, q, by)),
        st.sampled_from(WORKERS),
        st.sampled_from(QUALS),
        st.sampled_from([1, -9]),
    ),
    st.builds(
        lambda w, s, h: Command("block", (w, s, h)),
        st.sampled_from(WORKERS),
        st.sampled_from(SCOPES),
        st.one_of(st.none(), st.integers(1, 48)),
    ),
    st.builds(
        lambda w, s: Command("unblock", (w, s)), st.sampled_from(WORKERS), st.sampled_from(SCOPES)
    ),
    st.builds(
        lambda w, s, t: Command("submit", (w, s, t)),
        st.sampled_from(WORKERS),
        st.sampled_from(SUBMISSIONS),
        st.sampled_from(["t1", "t2"]),
    ),
    st.builds(lambda s: Command("approve", (s,)), st.sampled_from(SUBMISSIONS)),
    st.builds(lambda s: Command("reject", (s,)), st.sampled_from(SUBMISSIONS)),
    # The review loop: soft rejections, flags, many ids at once, bonuses.
    st.builds(lambda s: Command("soft_reject", (s,)), st.sampled_from(SUBMISSIONS)),
    st.builds(lambda s: Command("flag", (s,)), st.sampled_from(SUBMISSIONS)),
    st.builds(lambda s: Command("unflag", (s,)), st.sampled_from(SUBMISSIONS)),
    st.builds(
        lambda ss: Command("approve_many", (tuple(ss),)),
        st.lists(st.sampled_from(SUBMISSIONS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda w, s, cents, k: Command("bonus", (w, s, cents, k)),
        st.sampled_from(WORKERS),
        st.sampled_from(SUBMISSIONS),
        st.integers(1, 500),
        st.sampled_from([None, "b1", "b2"]),
    ),
    st.builds(lambda h: Command("wait", (h,)), st.integers(1, 30)),
)


def run(ledger: Ledger, clock: Clock, command: Command) -> None:
    """Execute one command; a refusal must leave the log untouched."""
    head = ledger.head()
    kind, args = command.kind, command.args
    try:
        if kind == "define":
            ledger.define(args[0])
        elif kind == "grant":
            ledger.grant(args[0], args[1], value=args[2])
        elif kind == "revoke":
            ledger.revoke(args[0], args[1])
        elif kind == "adjust":
            ledger.adjust(args[0], args[1], by=args[2], initial=50)
        elif kind == "block":
            until = None if args[2] is None else clock.now + timedelta(hours=args[2])
            ledger.block(args[0], scope=args[1], until=until)
        elif kind == "unblock":
            ledger.unblock(args[0], scope=args[1])
        elif kind == "submit":
            ledger.record_submission(
                args[0],
                task=args[2],
                submission=args[1],
                answer={"n": len(args[1])},
                accepted_at=clock.now - timedelta(seconds=len(args[2]) + clock.now.minute),
            )
        elif kind == "approve":
            ledger.approve(args[0])
        elif kind == "reject":
            ledger.reject(args[0], **REJECTION)
        elif kind == "soft_reject":
            ledger.soft_reject(args[0], feedback="below the bar")
        elif kind == "flag":
            ledger.flag(args[0], reason="look at it")
        elif kind == "unflag":
            ledger.unflag(args[0])
        elif kind == "approve_many":
            ledger.approve(list(args[0]))
        elif kind == "bonus":
            ledger.bonus(
                args[0], amount=f"{args[2] / 100:.2f}", submission=args[1], reason="well done",
                key=args[3],
            )  # fmt: skip
        elif kind == "wait":
            clock.advance(hours=args[0])
    except (CommandRefused, BatchError, InvalidInputError):
        assert ledger.head() == head, f"refused {command} but the log grew"
    clock.advance(seconds=1)


def tables(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model (brought up to date first), in a stable order."""
    ledger.catch_up()
    dump = {}
    with ledger._db.transaction(write=False) as tx:
        for table in READ_MODEL_TABLES:
            rows = tx.views.execute(f"SELECT * FROM {table}").fetchall()
            dump[table] = sorted(tuple(r) for r in rows)
        dump["tracking"] = sorted(
            tx.views.execute("SELECT name, position FROM cl_tracking").fetchall()
        )
    return dump


def api_view(ledger: Any, workers: list[str]) -> dict[str, Any]:
    return {
        w: (
            ledger.qualifications(w),
            [(b.scope, b.until, b.position) for b in ledger.blocks(w, include_expired=True)],
            ledger.is_blocked(w, "project:transcription"),
            dict(ledger.stats(w)),
            [(e.position, e.type) for e in ledger.history(w)],
        )
        for w in workers
    }


def review_view(ledger: Ledger) -> dict[str, Any]:
    """The review's read models through the API: the queue and the statistics."""
    return {
        "queue": ledger.review_queue(),
        "stats": {w: dict(ledger.review_stats(worker=w)) for w in WORKERS},
        "tasks": {t: dict(ledger.review_stats(task=t)) for t in ("t1", "t2")},
        "all": dict(ledger.review_stats()),
    }


def check_replays(ledger: Ledger, clock: Clock, tmp: Path, sequence: list[Command]) -> None:
    for command in sequence:
        run(ledger, clock, command)
    incremental = tables(ledger)
    api = api_view(ledger, WORKERS)
    review = review_view(ledger)

    # The in-memory replay used for point-in-time queries agrees with the SQL views.
    assert api_view(ledger.as_of(clock.now), WORKERS) == api

    # A full rebuild reproduces the incremental read models row for row.
    ledger.rebuild()
    assert tables(ledger) == incremental
    assert review_view(ledger) == review

    # An export/import round trip reproduces the same state in another ledger.
    exported = tmp / "export.jsonl"
    ledger.export(exported)
    with Ledger.open("memory://", clock=clock) as copy:
        assert copy.import_(exported).added == ledger.head()
        assert tables(copy) == incremental
        assert api_view(copy, WORKERS) == api
        assert review_view(copy) == review
        assert copy.import_(exported).added == 0, "importing twice records nothing new"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(commands, max_size=40))
def test_replay_equals_incremental_state_sqlite(sequence: list[Command], tmp_path: Path) -> None:
    clock = Clock()
    with Ledger.open("memory://", clock=clock) as ledger:
        check_replays(ledger, clock, tmp_path, sequence)


@pytest.mark.postgres
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(commands, min_size=10, max_size=30))
def test_replay_equals_incremental_state_postgres(sequence: list[Command], tmp_path: Path) -> None:
    clock = Clock()
    with fresh_postgres_url() as url, Ledger.open(url, clock=clock) as ledger:
        check_replays(ledger, clock, tmp_path, sequence)


def test_large_batches_take_the_bulk_path_and_agree(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    """Batches of thousands of rows are written another way (COPY on PostgreSQL): a
    catch-up in one batch, a rebuild and a catch-up in small batches all agree."""
    from crowdledger.adapters.store.database import COPY_ROWS

    workers = [f"mturk:A{n:09d}" for n in range(COPY_ROWS + 500)]
    lines = []
    # The source's clock is the ledger's: an import refuses times ahead of its clock.
    with Ledger.open("memory://", clock=clock) as source:
        source.define("english")
        for n, worker in enumerate(workers):
            source.grant(worker, "english", value=n % 7)
            source.record_submission(worker, task=f"t{n % 3}", submission=f"s{n}")
            if n % 2:
                source.approve(f"s{n}")
        source.block(workers[0], reason="spam")
        path = tmp_path / "history.jsonl"
        source.export(path)
        lines = path.read_text().splitlines()
    assert len(lines) > 3 * COPY_ROWS
    ledger.import_(path)
    ledger.catch_up()  # one batch of BULK_BATCH rows: thousands of rows per table
    after_import = tables(ledger)
    assert len(after_import["cl_values"]) == len(workers)
    ledger.rebuild()
    assert tables(ledger) == after_import
    ledger.rebuild(batch=700)  # small batches: the row-by-array path
    assert tables(ledger) == after_import
    assert ledger.stats(workers[1])["approved"] == 1
