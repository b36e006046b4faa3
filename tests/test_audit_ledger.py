"""The hash chain in a real ledger: written with every event, verified, checkpointed, proved.

Every kind of tampering with ``stored_events`` (a value changed, a row deleted, two rows
swapped, a row inserted, the tail cut off with the hashes recomputed, history rewritten
with the hashes recomputed) and with a read model is caught with its kind and position,
on SQLite and on PostgreSQL (``ledger_url``).
"""

from __future__ import annotations

import contextlib
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import Ledger, LedgerError, RuleSet
from crowdledger.adapters.audit import ledger_audit
from crowdledger.adapters.audit.chain import GENESIS, chain_hash
from crowdledger.adapters.audit.checkpoint import sign_checkpoint
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.keys import create_key, load_private_key, load_public_key
from crowdledger.adapters.audit.ledger_audit import ledger_id, stored_rows, verify_ledger
from crowdledger.adapters.audit.proof import build_inclusion_proof, verify_inclusion_proof
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.store.database import open_database
from crowdledger.adapters.store.url import parse_url
from crowdledger.testing.mturk import FakeMTurk, mturk_client

from .conftest import W1, W2, W3, Clock
from .test_replay_property import Command, commands, run

Row = tuple[int, Any, int, str, bytes, bytes | None]

RULES = """\
name: quality
automations:
  - name: quality-up
    on: approved
    adjust: {qualification: quality_score, by: 1, initial: 50}
"""


def history(ledger: Ledger, clock: Clock) -> None:
    """Commands, a batch, automations and what they set off: 16 events or more."""
    ledger.define("english")
    ledger.define("quality_score")
    ledger.install_automations(RuleSet.parse(RULES))
    ledger.grant(W1, "english", value=3)
    ledger.grant(W2, "english", value=5)
    ledger.block(W3, reason="spam")
    for n in range(3):
        clock.advance(minutes=1)
        ledger.record_submission(W1, task="t", submission=f"s{n}", answer={"a": n})
        ledger.approve(f"s{n}")  # the automation adjusts quality_score
    ledger.revoke(W2, "english")


def rows_of(ledger: Ledger) -> list[Row]:
    with stored_rows(ledger) as rows:
        return list(rows)


def rewrite(ledger: Ledger, change: Callable[[list[Row]], list[Row]]) -> None:
    """What an administrator with write access can do: replace the whole table."""
    rows = change(rows_of(ledger))
    sqlite = ledger._db.dialect == "sqlite"
    position = "rowid" if sqlite else "notification_id"
    with ledger._db.transaction(write=True) as tx:
        tx.events.execute("DELETE FROM stored_events")
        for pos, stream, version, topic, state, digest in rows:
            tx.events.execute(
                f"INSERT INTO stored_events ({position}, originator_id, originator_version, "
                "topic, state, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (pos, stream.hex if sqlite else stream, version, topic, state, digest),
            )


def renumbered(rows: list[Row], start: int = 1) -> list[Row]:
    return [(start + i, *row[1:]) for i, row in enumerate(rows)]  # type: ignore[misc]


def rehashed(rows: list[Row]) -> list[Row]:
    """Every hash recomputed: what someone covering their tracks does."""
    out: list[Row] = []
    previous = GENESIS
    for row in rows:
        previous = chain_hash(previous, row[:5])  # type: ignore[arg-type]
        out.append((*row[:5], previous))  # type: ignore[arg-type]
    return out


def with_value(row: Row, value: int) -> Row:
    state = orjson.loads(row[4])
    state["value"] = value
    return (*row[:4], orjson.dumps(state), row[5])  # type: ignore[return-value]


def caught(ledger: Ledger, **options: Any) -> TamperingDetected:
    with pytest.raises(TamperingDetected) as error:
        verify_ledger(ledger, **options)
    return error.value


@pytest.fixture
def recorded(ledger: Ledger, clock: Clock) -> Ledger:
    history(ledger, clock)
    assert verify_ledger(ledger).log.events == ledger.head() >= 16
    return ledger


def grant_position(ledger: Ledger) -> int:
    return next(r[0] for r in rows_of(ledger) if r[3].endswith(":QualificationGranted"))


def test_every_kind_of_path_writes_the_chain(ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    """Commands, a batch large enough for the bulk path (COPY on PostgreSQL), automations,
    a sync (the outbox's events and their outcomes) and an import: every row stored with
    the hash the chain gives it."""
    history(ledger, clock)
    sync = MTurkSync(ledger, mturk_client(FakeMTurk(), sandbox=True))
    rules = {
        "name": "transcription",
        "qualifications": [
            {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
        ],
    }
    before = ledger.head()
    assert sync.apply(rules).succeeded > 0
    assert ledger.head() > before
    ledger.grant_many("english", [(f"mturk:A{n:06d}BCDEF", n) for n in range(150)])
    source_path = tmp_path / "other.jsonl"
    with Ledger.open("memory://", clock=clock) as other:
        other.define("german")
        other.grant(W3, "german", value=2)
        other.export(source_path)
    assert ledger.import_(source_path).added == 2
    rows = rows_of(ledger)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r[5] is not None for r in rows)
    assert rows == rehashed(rows), "the stored hashes are the chain's"
    report = verify_ledger(ledger)
    assert report.log.events == len(rows)
    assert report.read_models == len(rows)


def test_a_changed_value_is_caught_at_its_row(recorded: Ledger) -> None:
    at = grant_position(recorded)
    rewrite(recorded, lambda rows: [with_value(r, 99) if r[0] == at else r for r in rows])
    error = caught(recorded)
    assert (error.kind, error.position) == ("changed", at)


def test_a_deleted_row_is_caught(recorded: Ledger) -> None:
    rewrite(recorded, lambda rows: [r for r in rows if r[0] != 5])
    error = caught(recorded)
    assert (error.kind, error.position) == ("missing", 5)
    # ... also when the later rows were renumbered to close the gap
    rewrite(recorded, lambda rows: renumbered(rows))
    error = caught(recorded)
    assert (error.kind, error.position) == ("missing", 5)


def test_swapped_rows_are_caught(recorded: Ledger) -> None:
    def swap(rows: list[Row]) -> list[Row]:
        rows[4], rows[5] = rows[5], rows[4]
        return renumbered(rows)

    rewrite(recorded, swap)
    error = caught(recorded)
    assert (error.kind, error.position) == ("reordered", 5)


def test_an_inserted_row_is_caught(recorded: Ledger) -> None:
    def insert(rows: list[Row]) -> list[Row]:
        forged = with_value(rows[3], 42)
        # another worker's stream, with a hash of its own
        forged = (forged[0], uuid.uuid4(), 1, forged[3], forged[4], bytes(range(32)))
        return renumbered([*rows[:5], forged, *rows[5:]])

    rewrite(recorded, insert)
    error = caught(recorded)
    assert (error.kind, error.position) == ("inserted", 6)


def test_a_truncated_tail_with_recomputed_hashes_is_caught_by_a_checkpoint(
    recorded: Ledger, tmp_path: Path
) -> None:
    key = load_private_key(_key(tmp_path))
    report = verify_ledger(recorded)
    checkpoint = sign_checkpoint(ledger_id(recorded), report.log.events, report.log.root, key)
    head = report.log.events
    rewrite(recorded, lambda rows: rehashed(rows[:-3]))
    # the chain alone holds: only the checkpoint (and the read models, which saw more) tell
    assert verify_ledger(recorded, read_models=False).log.events == head - 3
    error = caught(recorded, checkpoints=[checkpoint], public_key=key.public_key())
    assert (error.kind, error.position) == ("truncated", head - 2)
    error = caught(recorded)
    assert (error.kind, error.position) == ("truncated", head - 2)


def test_history_rewritten_with_recomputed_hashes_is_caught_by_a_checkpoint(
    recorded: Ledger, tmp_path: Path
) -> None:
    key = load_private_key(_key(tmp_path))
    report = verify_ledger(recorded)
    checkpoint = sign_checkpoint(ledger_id(recorded), report.log.events, report.log.root, key)
    at = grant_position(recorded)
    rewrite(recorded, lambda rows: rehashed([with_value(r, 1) if r[0] == at else r for r in rows]))
    assert verify_ledger(recorded, read_models=False).log.events == report.log.events
    error = caught(recorded, checkpoints=[checkpoint], public_key=key.public_key())
    assert error.kind == "rewritten"
    assert f"at or before position {report.log.events}" in error.message
    # the read models, built from the true history, differ from a replay of the forged one
    error = caught(recorded)
    assert error.kind == "read_model"
    assert "cl_values" in error.message


def test_an_edited_read_model_is_caught(recorded: Ledger) -> None:
    recorded.catch_up()
    with recorded._db.transaction(write=True) as tx:
        tx.views.execute("UPDATE cl_values SET value = 9 WHERE worker = ?", (W1,))
    error = caught(recorded)
    assert error.kind == "read_model"
    assert "read model cl_values differs from a replay" in error.message
    assert verify_ledger(recorded, read_models=False).read_models is None
    recorded.rebuild()
    assert verify_ledger(recorded).read_models == recorded.head()


def test_a_removed_hash_is_caught(recorded: Ledger) -> None:
    position = "rowid" if recorded._db.dialect == "sqlite" else "notification_id"
    with recorded._db.transaction(write=True) as tx:
        tx.events.execute(f"UPDATE stored_events SET hash = NULL WHERE {position} = 4")
    error = caught(recorded)
    assert (error.kind, error.position) == ("changed", 4)
    assert "no stored hash" in error.message


def _key(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    if not path.exists():
        create_key(path)
    return path


def test_prove_and_verify_proof_with_real_data(recorded: Ledger, tmp_path: Path) -> None:
    keyfile = _key(tmp_path)
    report = verify_ledger(recorded)
    checkpoint = sign_checkpoint(
        ledger_id(recorded), report.log.events, report.log.root, load_private_key(keyfile)
    )
    granted = next(r for r in rows_of(recorded) if r[3].endswith(":QualificationGranted"))
    event_id = orjson.loads(granted[4])["event_id"]
    with stored_rows(recorded) as rows:
        proof = build_inclusion_proof((r[:5] for r in rows), checkpoint, event_id=event_id)  # type: ignore[misc]
    verified = verify_inclusion_proof(proof, checkpoint, load_public_key(keyfile))
    assert (verified.position, verified.event_id) == (granted[0], event_id)
    # a checkpoint of another ledger is refused as such, not as tampering
    other = sign_checkpoint(
        "another", report.log.events, report.log.root, load_private_key(keyfile)
    )
    with pytest.raises(AuditInputError, match="checkpoint of ledger 'another'"):
        verify_ledger(recorded, checkpoints=[other], public_key=load_public_key(keyfile))


def test_verify_reads_in_batches_in_bounded_memory(ledger: Ledger, clock: Clock) -> None:
    """Memory does not grow with the log: the peak for 4,000 events is close to the peak
    for 1,000 (what grows is the log, read a batch at a time)."""
    reads: list[int] = []
    real = ledger._log.read_hashed

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        reads.append(len(rows))
        return rows

    ledger._log.read_hashed = counting  # type: ignore[method-assign]
    ledger.define("english")
    peaks = []
    for count in (1000, 4000):
        ledger.grant_many(
            "english", [(f"mturk:A{n:07d}X{count}", n) for n in range(count - ledger.head())]
        )
        reads.clear()
        tracemalloc.start()
        verify_ledger(ledger, read_models=False, batch=250)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert max(reads) <= 250
        assert sum(reads) == ledger.head()
    assert peaks[1] < peaks[0] * 1.5, peaks


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.delenv("CROWDLEDGER_CHECKPOINT_KEY", raising=False)
    return CliRunner()


def test_the_commands_end_to_end(
    cli: CliRunner, ledger_url: str, clock: Clock, tmp_path: Path
) -> None:
    with Ledger.open(ledger_url, clock=clock) as ledger:
        history(ledger, clock)
        head = ledger.head()
    keyfile = _key(tmp_path)
    result = cli.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"intact: {head} events, the hash chain holds")
    checkpoint = tmp_path / "checkpoint.json"
    result = cli.invoke(app, ["checkpoint", "--key", str(keyfile), "--output", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(checkpoint.read_bytes())["position"] == head
    again = cli.invoke(app, ["checkpoint", "--key", str(keyfile), "--output", str(checkpoint)])
    assert again.exit_code == 2
    assert "never replaced" in again.stderr
    with Ledger.open(ledger_url, clock=clock) as ledger:
        ledger.grant(W3, "english", value=2)
        rows = rows_of(ledger)
    event_id = orjson.loads(rows[3][4])["event_id"]
    args = ["--checkpoint", str(checkpoint), "--key", f"{keyfile}.pub"]
    result = cli.invoke(app, ["verify", "--json", *args])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert (document["intact"], document["events"], document["checkpoints"]) == (
        True,
        head + 1,
        [head],
    )
    proof = tmp_path / "proof.json"
    result = cli.invoke(app, ["prove", event_id, "--output", str(proof), *args])
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["verify-proof", str(proof), *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"valid: event {event_id} (crowdledger:")
    assert "is entry 4 of ledger" in result.stdout
    # an event after the checkpoint has no proof under it
    late = orjson.loads(rows[-1][4])["event_id"]
    result = cli.invoke(app, ["prove", late, "--checkpoint", str(checkpoint)])
    assert result.exit_code == 2
    assert "is not among the" in result.stderr
    # tampering: exit 5, the first position that fails, and --json says so too
    with Ledger.open(ledger_url, clock=clock) as ledger:
        rewrite(ledger, lambda rows: [with_value(r, 77) if r[0] == 4 else r for r in rows])
    result = cli.invoke(app, ["verify", "--json"])
    assert result.exit_code == 5
    assert orjson.loads(result.stdout) == {
        "intact": False,
        "kind": "changed",
        "position": 4,
        "message": orjson.loads(result.stdout)["message"],
    }
    assert result.stderr.startswith("Error: tampering detected (changed): position 4: ")
    result = cli.invoke(app, ["checkpoint", "--key", str(keyfile)])
    assert result.exit_code == 5, "a broken chain is never signed"
    result = cli.invoke(app, ["prove", event_id, *args])
    assert result.exit_code == 5
    assert "(rewritten)" in result.stderr


# -- export and import ---------------------------------------------------------------------


def test_import_refuses_an_edited_export_at_the_first_bad_line(
    cli: CliRunner, ledger_url: str, clock: Clock, tmp_path: Path
) -> None:
    source = tmp_path / "export.jsonl"
    with Ledger.open("memory://", clock=clock) as other:
        history(other, clock)
        other.export(source)
    lines = source.read_bytes().splitlines(keepends=True)
    assert all(b',"hash":"' in line for line in lines)
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(
        b"".join([*lines[:4], lines[4].replace(b'"value":5', b'"value":6'), *lines[5:]])
    )
    removed = tmp_path / "removed.jsonl"
    removed.write_bytes(b"".join([*lines[:6], *lines[7:]]))
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_bytes(b"".join([*lines[:6], lines[7], lines[6], *lines[8:]]))
    for path, line in ((edited, 5), (removed, 7), (swapped, 7)):
        result = cli.invoke(app, ["import", str(path)])
        assert result.exit_code == 5, (path, result.output)
        assert result.stderr.startswith(f"Error: {path}:{line}: tampering detected (file): "), (
            path,
            result.stderr,
        )
    with Ledger.open(ledger_url, clock=clock) as ledger:
        assert ledger.head() == 0, "nothing was imported"
        # an unedited export imports, and the ledger's own chain covers what it added
        assert ledger.import_(source).added == len(lines)
        assert verify_ledger(ledger).log.events == len(lines)


def test_import_checks_the_hashes_in_the_second_process_too(clock: Clock, tmp_path: Path) -> None:
    from crowdledger.adapters.transfer.import_file import append_file

    source = tmp_path / "export.jsonl"
    with Ledger.open("memory://", clock=clock) as other:
        history(other, clock)
        other.export(source)
    lines = source.read_bytes().splitlines(keepends=True)
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(b"".join([*lines[:2], lines[3], lines[2], *lines[4:]]))
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", clock=clock) as ledger:
        with pytest.raises(TamperingDetected, match=r"edited.jsonl:3: tampering detected"):
            append_file(ledger, edited, parallel=True)
        assert ledger.head() == 0


# -- an old ledger is upgraded ---------------------------------------------------------------


def test_a_ledger_recorded_before_the_chain_is_upgraded_when_a_writer_opens_it(
    ledger_url: str, clock: Clock, tmp_path: Path
) -> None:
    with Ledger.open(ledger_url, clock=clock) as ledger:
        history(ledger, clock)
        expected = rows_of(ledger)
        # make it a version 1 ledger: no hash column, no ledger id
        with ledger._db.transaction(write=True) as tx:
            tx.events.execute("ALTER TABLE stored_events DROP COLUMN hash")
            tx.events.execute("DELETE FROM cl_meta WHERE key = 'ledger_id'")
            tx.events.execute("UPDATE cl_meta SET value = '1' WHERE key = 'schema_version'")
    db = open_database(parse_url(ledger_url), create=False)
    try:  # verify, checkpoint and prove refuse a ledger not yet upgraded, saying how
        with pytest.raises(AuditInputError, match="recorded before the hash chain"):
            ledger_audit._require_hashes(db)
    finally:
        db.close()
    with Ledger.open(ledger_url, clock=clock) as writer:
        assert rows_of(writer) == expected, "the same hashes as if recorded with them"
        assert verify_ledger(writer).log.events == len(expected)
        assert len(ledger_id(writer)) == 36
        writer.grant(W2, "english")
        assert verify_ledger(writer).log.events == len(expected) + 1


# -- a property --------------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sequence=st.lists(
        st.one_of(commands, st.just(Command("install", ())), st.just(Command("import", ()))),
        max_size=30,
    )
)
def test_the_chain_verifies_after_any_history(
    sequence: list[Command], tmp_path_factory: pytest.TempPathFactory
) -> None:
    clock = Clock()
    tmp = tmp_path_factory.mktemp("chain")
    with Ledger.open(f"sqlite:///{tmp / 'l.db'}", clock=clock) as ledger:
        for number, command in enumerate(sequence):
            if command.kind == "install":
                with contextlib.suppress(LedgerError):  # quality_score not defined yet
                    ledger.install_automations(RuleSet.parse(RULES))
            elif command.kind == "import":
                path = tmp / f"import-{number}.jsonl"
                with Ledger.open("memory://", clock=clock) as other:
                    other.define(f"imported{number}")
                    other.grant(W1, f"imported{number}", value=number + 1)
                    other.export(path)
                clock.advance(seconds=1)
                ledger.import_(path)
            else:
                run(ledger, clock, command)
            clock.advance(seconds=1)
        rows = rows_of(ledger)
        assert rows == rehashed(rows)
        report = verify_ledger(ledger)
        assert report.log.events == ledger.head() == len(rows)
