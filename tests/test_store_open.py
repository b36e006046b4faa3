"""Reads never create a ledger; ``init`` and writes do; what is not a ledger is left alone.

Every read command, pointed at a place that holds no ledger (a missing SQLite file, a
missing PostgreSQL schema, a schema without our tables, ``public``), exits 3 with one
line naming the (redacted) URL, and creates nothing: no file, no ``-wal``/``-views``
companion, no schema, no table. A database that holds something else (a directory, a
file that is no database, another application's SQLite file or ``stored_events``
table) is refused by reads and writes alike, and not changed by a byte.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdledger import Ledger, StoreError
from crowdledger.adapters.cli.app import COMMANDS, load_command, run
from crowdledger.adapters.store.url import redact

from .conftest import POSTGRES_URL, W1, drop_schema, require_postgres

RULES = "name: r\nqualifications:\n  - {qualification_name: english, comparator: Exists}\n"

MTURK = ("--endpoint-url", "http://127.0.0.1:9")
PROLIFIC = ("--workspace", "ws", "--base-url", "http://127.0.0.1:9")
# Every command that only reads, with arguments that get it as far as opening the ledger
# (and, should it ever get further, to a provider that answers nothing at once).
READS = [
    ["show", W1],
    ["show", W1, "--as-of", "2026-01-01T00:00:00Z"],
    ["history", W1],
    ["workers"],
    ["check", W1, "--rules", "rules.yaml"],
    ["eligible", "--rules", "rules.yaml"],
    ["export"],
    ["export", "--output", "out.jsonl"],
    ["sync", "status"],
    [*("sync", "plan", "--provider", "mturk", "--rules", "rules.yaml"), *MTURK],
    [*("sync", "pull", "--provider", "prolific", "--rules", "rules.yaml"), *PROLIFIC],
    ["rules", "check", "rules.yaml"],
    ["automations", "list"],
]
READ_IDS = [" ".join(args[:2]) + ("..." if len(args) > 2 else "") for args in READS]


def no_ledger(url: str) -> str:
    return (
        f"Error: no ledger at {redact(url)} "
        "(create one with `crowdledger init` or by recording something)\n"
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory but for the rule file, as the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROWDLEDGER_DB", raising=False)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "tester")
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "not-a-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    (tmp_path / "rules.yaml").write_text(RULES)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- PostgreSQL: what a schema holds, from information_schema -----------------------------
def pg(sql: str, *params: object) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description is not None else []


def schema_exists(schema: str) -> bool:
    return bool(pg("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", schema))


def tables_in(schema: str) -> list[str]:
    rows = pg(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "UNION ALL SELECT routine_name FROM information_schema.routines "
        "WHERE routine_schema = %s ORDER BY 1",
        schema,
        schema,
    )
    return [str(r[0]) for r in rows]


@pytest.fixture
def schema() -> Iterator[str]:
    """The name of a schema that does not exist (dropped afterwards if it came to)."""
    require_postgres()
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        drop_schema(name)


# -- reads on no ledger -------------------------------------------------------------------
@pytest.mark.parametrize("args", READS, ids=READ_IDS)
def test_a_read_of_a_missing_sqlite_file_exits_3_and_creates_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    url = "sqlite:///typo.db"
    code, out, err = cli(capsys, "--db", url, *args)
    assert (code, out, err) == (3, "", no_ledger(url))
    assert listing(workdir) == ["rules.yaml"]


@pytest.mark.parametrize("args", READS, ids=READ_IDS)
def test_a_read_of_a_missing_postgresql_schema_exits_3_and_creates_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], schema: str, args: list[str]
) -> None:
    url = f"{POSTGRES_URL}?schema={schema}"
    code, out, err = cli(capsys, "--db", url, *args)
    assert (code, out, err) == (3, "", no_ledger(url))
    assert not schema_exists(schema)
    assert listing(workdir) == ["rules.yaml"]


@pytest.mark.parametrize("args", READS, ids=READ_IDS)
def test_a_read_of_a_schema_without_our_tables_exits_3_and_creates_no_table(
    workdir: Path, capsys: pytest.CaptureFixture[str], schema: str, args: list[str]
) -> None:
    pg(f'CREATE SCHEMA "{schema}"')
    pg(f'CREATE TABLE "{schema}".customers (id int)')  # another application's
    url = f"{POSTGRES_URL}?schema={schema}"
    code, out, err = cli(capsys, "--db", url, *args)
    assert (code, out, err) == (3, "", no_ledger(url))
    assert tables_in(schema) == ["customers"]


def test_a_read_of_public_creates_no_table_there(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_postgres()
    before = tables_in("public")
    if "stored_events" in before:
        pytest.skip("the test database's public schema already holds a ledger")
    for args in (["show", W1], ["workers"], ["export"]):
        code, _out, err = cli(capsys, "--db", POSTGRES_URL, *args)
        assert (code, err) == (3, no_ledger(POSTGRES_URL))
    assert tables_in("public") == before


def test_the_message_redacts_the_password(
    workdir: Path, capsys: pytest.CaptureFixture[str], schema: str
) -> None:
    with_password = POSTGRES_URL.replace("://postgres@", "://postgres:hunter2@")
    if with_password == POSTGRES_URL:
        pytest.skip("the test URL has no user name to add a password to")
    url = f"{with_password}?schema={schema}"
    code, _out, err = cli(capsys, "--db", url, "show", W1)
    assert code == 3
    assert "hunter2" not in err
    assert err == no_ledger(url)
    assert "postgres:***@" in err


def test_a_read_in_another_process_exits_3_and_creates_nothing(tmp_path: Path) -> None:
    """The installed command, as an operator runs it, on both backends."""
    script = str(Path(sys.executable).with_name("crowdledger"))
    env = {k: v for k, v in os.environ.items() if k != "CROWDLEDGER_DB"}
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    done = subprocess.run(
        [script, "--db", url, "show", W1], env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "", no_ledger(url))
    assert listing(tmp_path) == []


def test_the_python_api_reads_no_ledger_into_being(tmp_path: Path, schema: str) -> None:
    path = tmp_path / "nothing.db"
    for url in (f"sqlite:///{path}", f"{POSTGRES_URL}?schema={schema}", "memory://"):
        with pytest.raises(StoreError) as raised:
            Ledger.open(url, create=False)
        assert str(raised.value) == no_ledger(url)[len("Error: ") : -1]
    assert listing(tmp_path) == []
    assert not schema_exists(schema)


# -- init and writes create; a read then works ----------------------------------------------
def test_init_creates_a_ledger_and_says_so_again(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "sqlite:///lab.db"
    assert cli(capsys, "--db", url, "init") == (0, "", f"created an empty ledger at {url}\n")
    assert "lab.db" in listing(workdir)
    assert cli(capsys, "--db", url, "init") == (0, "", f"a ledger already exists at {url}\n")
    code, out, _err = cli(capsys, "--db", url, "workers")
    assert (code, out) == (0, "")
    code, _out, err = cli(capsys, "--db", url, "export")
    assert (code, err) == (0, "exported 0 events\n")


def test_init_on_postgresql_creates_the_schema_and_its_tables(
    workdir: Path, capsys: pytest.CaptureFixture[str], schema: str
) -> None:
    url = f"{POSTGRES_URL}?schema={schema}"
    assert cli(capsys, "--db", url, "init") == (0, "", f"created an empty ledger at {url}\n")
    assert {"stored_events", "cl_meta", "cl_values", "cl_lock_and_load"} <= set(tables_in(schema))
    assert cli(capsys, "--db", url, "init") == (0, "", f"a ledger already exists at {url}\n")
    assert cli(capsys, "--db", url, "show", W1)[0] == 0


def test_a_write_creates_the_ledger_as_before(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "sqlite:///fresh.db"
    assert cli(capsys, "--db", url, "define", "english")[0] == 0
    assert cli(capsys, "--db", url, "grant", W1, "english")[0] == 0
    code, out, _err = cli(capsys, "--db", url, "workers")
    assert (code, out) == (0, f"{W1}\n")


def test_the_command_table_lists_init_with_its_own_help() -> None:
    assert load_command("init").get_short_help_str(limit=200) == COMMANDS["init"].help


# -- what is not a ledger ----------------------------------------------------------------
def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("args", [["show", W1], ["export"], ["define", "english"], ["init"]])
def test_another_applications_sqlite_file_is_refused_and_left_as_it_is(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    other = workdir / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = digest(other)
    code, out, err = cli(capsys, "--db", "sqlite:///app.db", *args)
    assert (code, out) == (3, "")
    assert err == (
        "Error: sqlite:///app.db: app.db is not a crowdledger ledger (a SQLite database "
        "with other tables: users); it was left as it is\n"
    )
    assert digest(other) == before
    assert listing(workdir) == ["app.db", "rules.yaml"]  # no -wal, -shm or -views either


@pytest.mark.parametrize("args", [["show", W1], ["define", "english"]])
def test_a_file_that_is_no_database_is_refused_and_left_as_it_is(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    notes = workdir / "notes.txt"
    notes.write_text("not a database, but the user's notes\n" * 20)
    code, _out, err = cli(capsys, "--db", "sqlite:///notes.txt", *args)
    assert code == 3
    assert err == (
        "Error: sqlite:///notes.txt: notes.txt is not a SQLite database (file is not a database)\n"
    )
    assert notes.read_text() == "not a database, but the user's notes\n" * 20
    assert listing(workdir) == ["notes.txt", "rules.yaml"]


@pytest.mark.parametrize("args", [["show", W1], ["define", "english"]])
def test_a_directory_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    (workdir / "ledgers").mkdir()
    code, _out, err = cli(capsys, "--db", "sqlite:///ledgers", *args)
    assert code == 3
    assert err == "Error: sqlite:///ledgers: ledgers is a directory, not a ledger database\n"
    assert listing(workdir / "ledgers") == []
    assert listing(workdir) == ["ledgers", "rules.yaml"]


def test_an_empty_sqlite_file_holds_no_ledger_until_one_is_made(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "empty.db").touch()
    url = "sqlite:///empty.db"
    assert cli(capsys, "--db", url, "show", W1) == (3, "", no_ledger(url))
    assert (workdir / "empty.db").stat().st_size == 0
    assert cli(capsys, "--db", url, "init") == (0, "", f"created an empty ledger at {url}\n")


@pytest.mark.parametrize("args", [["show", W1], ["define", "english"]])
def test_another_applications_stored_events_table_is_refused_and_left_as_it_is(
    workdir: Path, capsys: pytest.CaptureFixture[str], schema: str, args: list[str]
) -> None:
    pg(f'CREATE SCHEMA "{schema}"')
    pg(f'CREATE TABLE "{schema}".stored_events (originator_id uuid, state bytea)')
    url = f"{POSTGRES_URL}?schema={schema}"
    code, _out, err = cli(capsys, "--db", url, *args)
    assert code == 3
    assert err == (
        f"Error: {url}: not a crowdledger ledger (it has a stored_events table but not "
        "the others); it was left as it is\n"
    )
    assert tables_in(schema) == ["stored_events"]
