"""Erasure by crypto-shredding (README "Erasure"): an encrypted ledger, ``erase``, and
what is left afterwards, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import Ledger, StoreError
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.ledger.erasure import NothingToEraseError
from crowdledger.domain.erasure import is_pseudonym

from .conftest import POSTGRES_URL, Clock

SECRET = "mturk:A9SECRETWORKER"
SECRET_BARE = "A9SECRETWORKER"  # what a grep for the id looks for
ANSWER = "ANSWER-only-the-worker-wrote-7731"
FEEDBACK = "feedback-about-the-worker-5512"
REASON = "reason-naming-the-worker-4410"
OTHER = "mturk:A2OTHERWORKER"
RULES = {
    "name": "english-speakers",
    "qualifications": [
        {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
    ],
}
NEEDLES = (SECRET_BARE, ANSWER, FEEDBACK, REASON)


@pytest.fixture(autouse=True)
def kek(monkeypatch: pytest.MonkeyPatch) -> str:
    key = secrets.token_hex(32)
    monkeypatch.setenv("CROWDLEDGER_KEY", key)
    monkeypatch.delenv("CROWDLEDGER_KEY_FILE", raising=False)
    monkeypatch.delenv("CROWDLEDGER_ENCRYPT", raising=False)
    return key


@pytest.fixture
def encrypted(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, clock=clock, encrypt=True) as ledger:
        yield ledger


def decision(ledger: Ledger, worker: str) -> dict[str, object]:
    """``check``'s answer, without the log position it describes (an erasure appends)."""
    answer: dict[str, object] = ledger.check(worker, RULES).model_dump(mode="json")
    answer.pop("position")
    return answer


def story(ledger: Ledger, clock: Clock) -> None:
    """Two workers with grants, blocks, submissions and reviews; the secret one's
    personal data is in every kind of field."""
    ledger.define("english", description="speaks English")
    ledger.grant(SECRET, "english", value=3, reason=REASON)
    ledger.grant(OTHER, "english", value=2)
    clock.advance(minutes=1)
    ledger.record_submission(SECRET, task="t1", submission="s1", answer={"text": ANSWER})
    ledger.record_submission(OTHER, task="t1", submission="s2", answer={"text": "fine"})
    ledger.record_submission(SECRET, task="t1", submission="s3", answer={"text": ANSWER})
    clock.advance(minutes=1)
    ledger.reject("s1", feedback=FEEDBACK)
    ledger.approve("s2")
    ledger.approve("s3", feedback=FEEDBACK)
    ledger.block(SECRET, scope="project:x", reason=REASON)
    clock.advance(minutes=1)


def sqlite_files(url: str) -> list[Path]:
    base = Path(url.removeprefix("sqlite:///"))
    return [p for p in base.parent.iterdir() if p.name.startswith(base.name)]


def postgres_text(url: str) -> str:
    """Every row of every table of the ledger's schema, as text (bytea as hex)."""
    import psycopg

    schema = url.rpartition("schema=")[2]
    with psycopg.connect(POSTGRES_URL) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        ]
        assert "stored_events" in tables
        assert "cl_worker_keys" in tables
        parts: list[str] = []
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


def found(ledger_url: str, export: Path) -> dict[str, list[str]]:
    """Where each needle can be read: file names (SQLite) or "postgresql", and "export"."""
    places: dict[str, list[str]] = {n: [] for n in NEEDLES}
    texts: list[tuple[str, bytes]] = [("export", export.read_bytes())]
    if ledger_url.startswith("sqlite"):
        texts += [(p.name, p.read_bytes()) for p in sqlite_files(ledger_url)]
    else:
        texts.append(("postgresql", postgres_text(ledger_url).encode()))
    for needle in NEEDLES:
        forms = (needle.encode(), needle.encode().hex().encode())  # bytea prints as hex
        for name, data in texts:
            if any(form in data for form in forms):
                places[needle].append(name)
    return places


def test_nothing_readable_is_left_after_erase(
    encrypted: Ledger, ledger_url: str, clock: Clock, tmp_path: Path
) -> None:
    story(encrypted, clock)
    before = tmp_path / "before.jsonl"
    encrypted.export(before)
    seen = found(ledger_url, before)
    # The test can fail: before the erasure the data is there to be found (the export
    # and the read models hold it in clear)...
    assert all("export" in places for places in (seen[SECRET_BARE], seen[ANSWER]))
    # ...but the log holds only ciphertext.
    events_file = "ledger.db"
    assert all(events_file not in places for places in seen.values())
    done = encrypted.erase(SECRET, reason="request 17")
    assert is_pseudonym(done.pseudonym)
    after = tmp_path / "after.jsonl"
    encrypted.export(after)
    assert found(ledger_url, after) == {n: [] for n in NEEDLES}
    # The files the grep read include the write-ahead logs and the read models' file.
    if ledger_url.startswith("sqlite"):
        names = {p.name for p in sqlite_files(ledger_url)}
        assert {"ledger.db", "ledger.db-views"} <= names


def test_others_stay_and_the_erased_worker_becomes_a_pseudonym(
    encrypted: Ledger, clock: Clock
) -> None:
    story(encrypted, clock)
    other = (
        encrypted.qualifications(OTHER),
        encrypted.stats(OTHER),
        decision(encrypted, OTHER),
    )
    done = encrypted.erase(SECRET, reason="request 17")
    assert other == (
        encrypted.qualifications(OTHER),
        encrypted.stats(OTHER),
        decision(encrypted, OTHER),
    )
    assert encrypted.workers() == sorted([OTHER, done.pseudonym])
    assert encrypted.qualifications(SECRET) == {}
    assert encrypted.history(SECRET) == []
    assert not encrypted.check(SECRET, RULES).eligible
    # The pseudonym keeps the counts (totals unchanged), and holds no value nor block.
    pseudo = encrypted.stats(done.pseudonym)
    assert (pseudo.submitted, pseudo.approved, pseudo.rejected) == (2, 1, 1)
    assert encrypted.qualifications(done.pseudonym) == {}
    assert encrypted.blocks(done.pseudonym) == []
    assert done.pseudonym not in encrypted.eligible_workers(RULES)
    # history of the pseudonym: its submissions (answers gone) and the erasure.
    events = encrypted.history(done.pseudonym)
    assert [e.type for e in events][-1] == "WorkerErased"
    assert events[-1].reason == "request 17"
    assert {getattr(e, "answer", {}) == {} for e in events} == {True}
    # A second erasure has nothing left to erase; nothing is recorded.
    head = encrypted.head()
    with pytest.raises(NothingToEraseError):
        encrypted.erase(SECRET, reason="again")
    assert encrypted.head() == head


def test_a_new_grant_to_the_same_id_starts_a_new_worker(encrypted: Ledger, clock: Clock) -> None:
    story(encrypted, clock)
    encrypted.erase(SECRET, reason="request 17")
    clock.advance(minutes=1)
    encrypted.grant(SECRET, "english", value=1)
    encrypted.block(SECRET, scope="project:x")  # not "already blocked": a new worker
    assert encrypted.qualifications(SECRET) == {"english": 1}
    assert [e.type for e in encrypted.history(SECRET)] == ["QualificationGranted", "WorkerBlocked"]
    stats = encrypted.stats(SECRET)
    assert (stats.submitted, stats.approved, stats.rejected) == (0, 0, 0)
    with encrypted._db.transaction(write=False) as tx:
        keys = tx.events.scalar("SELECT COUNT(*) FROM cl_worker_keys")
    assert keys == 2  # the other worker's, and the new one's: a new key
    # ...which can itself be erased, leaving nothing of either.
    second = encrypted.erase(SECRET, reason="request 18")
    assert encrypted.history(SECRET) == []
    assert encrypted.qualifications(second.pseudonym) == {}


def test_the_chain_and_an_old_checkpoint_still_verify(
    ledger_url: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.delenv("CROWDLEDGER_CHECKPOINT_KEY", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--encrypt"]).exit_code == 0
    with Ledger.open(ledger_url, clock=clock) as ledger:
        story(ledger, clock)
    key = tmp_path / "audit.key"
    assert runner.invoke(app, ["keys", "create", str(key)]).exit_code == 0
    checkpoint = tmp_path / "checkpoint.json"
    signed = runner.invoke(app, ["checkpoint", "--key", str(key), "-o", str(checkpoint)])
    assert signed.exit_code == 0, signed.output
    erased = runner.invoke(app, ["erase", SECRET, "--reason", "request 17", "--json"])
    assert erased.exit_code == 0, erased.output
    pseudonym = orjson.loads(erased.stdout)["pseudonym"]
    verified = runner.invoke(
        app, ["verify", "--checkpoint", str(checkpoint), "--key", f"{key}.pub"]
    )
    assert verified.exit_code == 0, verified.output
    assert "extends the checkpoint" in verified.output
    history = runner.invoke(app, ["history", pseudonym])
    assert history.exit_code == 0
    assert "WorkerErased" in history.output
    assert "request 17" in history.output
    # A changed byte of the ciphertext is still caught by the chain.
    with Ledger.open(ledger_url) as ledger, ledger._db.transaction(write=True) as tx:
        position = "rowid" if ledger_url.startswith("sqlite") else "notification_id"
        state = bytes(tx.events.scalar(f"SELECT state FROM stored_events WHERE {position} = 2"))
        at = state.index(b'"~s":"') + 8
        flipped = state[:at] + (b"A" if state[at : at + 1] != b"A" else b"B") + state[at + 1 :]
        tx.events.execute(f"UPDATE stored_events SET state = ? WHERE {position} = 2", (flipped,))
    tampered = runner.invoke(app, ["verify"])
    assert tampered.exit_code == 5, tampered.output


@pytest.mark.parametrize("kek_value", ["", "not-a-key", "ab" * 32])
def test_a_missing_or_wrong_key_exits_3_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kek_value: str
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("CROWDLEDGER_DB", url)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--encrypt"]).exit_code == 0
    assert runner.invoke(app, ["grant", OTHER, "english"]).exit_code == 2  # not defined
    monkeypatch.setenv("CROWDLEDGER_KEY", kek_value)
    for args in (["show", OTHER], ["grant", OTHER, "english"], ["erase", OTHER, "--reason", "r"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 3, result.output
        assert "Traceback" not in result.output
        assert "CROWDLEDGER_KEY" in result.output


def test_key_from_a_file_and_init_refuses_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kek: str
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("CROWDLEDGER_DB", url)
    monkeypatch.delenv("CROWDLEDGER_KEY")
    runner = CliRunner()
    refused = runner.invoke(app, ["init", "--encrypt"])
    assert refused.exit_code == 3
    assert not (tmp_path / "ledger.db").exists()
    keyfile = tmp_path / "kek"
    keyfile.write_text(kek + "\n")
    monkeypatch.setenv("CROWDLEDGER_KEY_FILE", str(keyfile))
    assert runner.invoke(app, ["init", "--encrypt"]).exit_code == 0
    assert runner.invoke(app, ["define", "english"]).exit_code == 0
    assert runner.invoke(app, ["grant", OTHER, "english"]).exit_code == 0
    shown = runner.invoke(app, ["show", OTHER])
    assert shown.exit_code == 0
    assert "english=1" in shown.output


def test_a_plaintext_ledger_with_events_is_not_encrypted_in_place(
    ledger_url: str, clock: Clock
) -> None:
    with Ledger.open(ledger_url, clock=clock) as plain:
        plain.define("english")
        with pytest.raises(StoreError, match="not encrypted"):
            plain.erase(OTHER, reason="r")
    with pytest.raises(StoreError, match="plaintext events"):
        Ledger.open(ledger_url, encrypt=True)


def test_export_of_an_erased_ledger_imports_without_its_key(
    encrypted: Ledger, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    story(encrypted, clock)
    done = encrypted.erase(SECRET, reason="request 17")
    export = tmp_path / "export.jsonl"
    encrypted.export(export)
    monkeypatch.delenv("CROWDLEDGER_KEY")  # another organisation: no key at all
    with Ledger.open(f"sqlite:///{tmp_path / 'copy.db'}", clock=clock) as copy:
        copy.import_(export)
        assert copy.workers() == sorted([OTHER, done.pseudonym])
        assert copy.qualifications(OTHER) == encrypted.qualifications(OTHER)
        assert copy.stats(done.pseudonym) == encrypted.stats(done.pseudonym)
        assert copy.qualifications(done.pseudonym) == {}


def test_import_into_an_encrypted_ledger_seals_it(
    ledger_url: str, clock: Clock, tmp_path: Path
) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'plain.db'}", clock=clock) as plain:
        story(plain, clock)
        export = tmp_path / "export.jsonl"
        plain.export(export)
        wanted = (plain.qualifications(SECRET), plain.stats(SECRET), plain.workers())
    with Ledger.open(ledger_url, clock=clock, encrypt=True) as ledger:
        ledger.import_(export)
        assert (ledger.qualifications(SECRET), ledger.stats(SECRET), ledger.workers()) == wanted
        with ledger._db.transaction(write=False) as tx:
            states = [
                bytes(r[0]) for r in tx.events.execute("SELECT state FROM stored_events").fetchall()
            ]
        assert not any(ANSWER.encode() in s or SECRET_BARE.encode() in s for s in states)
        ledger.erase(SECRET, reason="request 17")
        assert SECRET not in ledger.workers()


def test_as_of_reads_see_the_past_through_the_cipher(encrypted: Ledger, clock: Clock) -> None:
    story(encrypted, clock)
    then = clock.now
    clock.advance(minutes=5)
    encrypted.revoke(OTHER, "english")
    past = encrypted.as_of(then)
    assert past.qualifications(OTHER) == {"english": 2}
    assert past.qualifications(SECRET) == {"english": 3}
    encrypted.erase(SECRET, reason="request 17")
    assert encrypted.as_of(then).qualifications(SECRET) == {}
    assert encrypted.as_of(then).qualifications(OTHER) == {"english": 2}


# -- a property: erasing a worker changes nobody else ---------------------------------------
WORKERS = ("mturk:A1ONE", "mturk:A2TWO", "mturk:A3THREE")
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "revoke", "block", "unblock", "submit", "approve", "reject"]),
        st.sampled_from(WORKERS),
        st.integers(0, 4),
    ),
    max_size=25,
)


def replay(ledger: Ledger, clock: Clock, actions: list[tuple[str, str, int]]) -> None:
    """Apply ``actions``, skipping what the ledger refuses (the same in both runs)."""
    from crowdledger import LedgerError

    ledger.define("english")
    submitted: dict[str, list[str]] = {}
    for number, (action, worker, value) in enumerate(actions):
        clock.advance(seconds=1)
        try:
            if action == "grant":
                ledger.grant(worker, "english", value=value)
            elif action == "revoke":
                ledger.revoke(worker, "english")
            elif action == "block":
                ledger.block(worker, until=clock.now + timedelta(hours=value + 1))
            elif action == "unblock":
                ledger.unblock(worker)
            elif action == "submit":
                sid = f"s{number}"
                ledger.record_submission(
                    worker, task=f"t{value}", submission=sid, answer={"v": value}
                )
                submitted.setdefault(worker, []).append(sid)
            elif submitted.get(worker):
                sid = submitted[worker].pop()
                if action == "approve":
                    ledger.approve(sid)
                else:
                    ledger.reject(sid, feedback="no")
        except LedgerError:
            pass


def totals(ledger: Ledger) -> tuple[int, int, int]:
    stats = [ledger.stats(w) for w in ledger.workers()]
    return (
        sum(s.submitted for s in stats),
        sum(s.approved for s in stats),
        sum(s.rejected for s in stats),
    )


def others(ledger: Ledger, erased: str) -> object:
    """Everything the ledger says about everybody but ``erased``, and the totals."""
    about = {
        w: (
            ledger.qualifications(w),
            ledger.blocks(w),
            ledger.stats(w),
            decision(ledger, w),
            [(e.type, e.position, e.event_id) for e in ledger.history(w)],
        )
        for w in WORKERS
        if w != erased
    }
    return about, totals(ledger), ledger.eligible_workers(RULES) - {erased}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, erased=st.sampled_from(WORKERS))
def test_erasing_a_worker_changes_nobody_else(
    actions: list[tuple[str, str, int]], erased: str
) -> None:
    """The same history, read without the erasure (just before it) and with it."""
    clock = Clock()
    with Ledger.open("memory://", clock=clock, encrypt=True) as ledger:
        replay(ledger, clock, actions)
        before = others(ledger, erased)
        if erased not in ledger.workers():
            return
        held = ledger.stats(erased)
        done = ledger.erase(erased, reason="request")
        assert others(ledger, erased) == before
        assert erased not in ledger.workers()
        assert ledger.qualifications(erased) == {}
        assert ledger.history(erased) == []
        if held.submitted:  # the pseudonym keeps the counts, and nothing else
            kept = ledger.stats(done.pseudonym)
            assert (kept.submitted, kept.approved, kept.rejected) == (
                held.submitted,
                held.approved,
                held.rejected,
            )
        assert ledger.qualifications(done.pseudonym) == {}
        assert ledger.blocks(done.pseudonym) == []
        # ... and a rebuild from the log says the same.
        ledger.rebuild()
        assert others(ledger, erased) == before
