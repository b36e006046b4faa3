"""Reading a Mephisto data directory, read-only, with Mephisto's own schema.

A Mephisto data directory holds ``database.db`` (the core tables) and one folder per
crowd provider beside it, each with its own datastore (``prolific/prolific.db``,
``mock/mock.db``, ``mturk/mturk.db``, ``mturk_sandbox/mturk.db``). Three layouts of the
core tables exist in the field, and all three are read:

* the initial one: a ``unit_review`` table whose time column is ``created_at``, and
  ``granted_qualifications`` without ``update_date``;
* after Mephisto's migration ``20240418_data_porter_feature``: ``unit_review.creation_date``
  and ``granted_qualifications.update_date``;
* after ``20241002_modify_qualifications``: ``qualifications.description``, and
  ``unit_review`` renamed ``worker_review`` (its unit columns nullable).

The files are untrusted: they are opened with SQLite's ``mode=ro`` (nothing here can
write to them), every table and column this module reads is checked to exist first,
and values are kept exactly as stored (SQLite does not enforce column types), for the
importer to check one by one. What this module refuses (no ``database.db``, a file
that is not an SQLite database, a missing table or column) raises
:class:`MephistoDataError`, which names the file and, where it applies, the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crowdledger.domain.errors import LedgerError

__all__ = [
    "DATABASE_FILE",
    "Datastore",
    "MephistoData",
    "MephistoDataError",
    "Row",
    "read_data_dir",
]

DATABASE_FILE = "database.db"


class MephistoDataError(LedgerError):
    """A Mephisto data directory (or one of its files) cannot be read as Mephisto's."""

    def __init__(self, path: Path | str, message: str, field: str | None = None) -> None:
        where = f"{path}" + (f": {field}" if field else "")
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Row:
    """One row as stored: its table, its id (as text) and its columns' raw values."""

    table: str
    id: str
    values: dict[str, Any]

    def __getitem__(self, column: str) -> Any:
        return self.values.get(column)


@dataclass(frozen=True)
class Datastore:
    """One provider datastore beside ``database.db``."""

    provider: str
    path: Path
    workers: dict[str, Row] = field(default_factory=dict)  # by the datastore's worker_id
    submission_ids: dict[str, str] = field(default_factory=dict)  # Mephisto unit id -> provider's


@dataclass(frozen=True)
class MephistoData:
    """Everything the importer reads, as rows."""

    data_dir: Path
    database: Path
    layout: str  # which of Mephisto's layouts the core tables have (see the module)
    review_table: str  # worker_review, or unit_review before 2024-10
    qualifications: list[Row]
    granted: list[Row]
    workers: list[Row]
    units: list[Row]
    agents: dict[str, Row]
    onboarding: list[Row]
    reviews: list[Row]
    tasks: dict[str, Row]
    task_runs: dict[str, Row]
    datastores: dict[str, Datastore]


# Table -> (columns that every layout has, columns only some layouts have).
_CORE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "qualifications": (
        ("qualification_id", "qualification_name", "creation_date"),
        ("description",),
    ),
    "granted_qualifications": (
        ("granted_qualification_id", "worker_id", "qualification_id", "value", "creation_date"),
        ("update_date",),
    ),
    "workers": (("worker_id", "worker_name", "provider_type", "creation_date"), ()),
    "units": (
        (
            "unit_id",
            "assignment_id",
            "unit_index",
            "provider_type",
            "status",
            "agent_id",
            "worker_id",
            "task_id",
            "task_run_id",
            "sandbox",
            "creation_date",
        ),
        (),
    ),
    "agents": (("agent_id", "worker_id", "unit_id", "status", "creation_date"), ()),
    "onboarding_agents": (
        ("onboarding_agent_id", "worker_id", "task_id", "task_run_id", "status", "creation_date"),
        (),
    ),
    "tasks": (("task_id", "task_name"), ()),
    "task_runs": (("task_run_id", "task_id", "init_params", "provider_type", "sandbox"), ()),
}
_REVIEW_COLUMNS = (
    "id",
    "unit_id",
    "worker_id",
    "task_id",
    "status",
    "review_note",
    "bonus",
    "blocked_worker",
    "updated_qualification_id",
    "updated_qualification_value",
    "revoked_qualification_id",
)
_ID_COLUMN = {
    "qualifications": "qualification_id",
    "granted_qualifications": "granted_qualification_id",
    "workers": "worker_id",
    "units": "unit_id",
    "agents": "agent_id",
    "onboarding_agents": "onboarding_agent_id",
    "tasks": "task_id",
    "task_runs": "task_run_id",
}

LAYOUT_INITIAL = "initial"
LAYOUT_DATA_PORTER = "20240418_data_porter_feature"
LAYOUT_CURRENT = "20241002_modify_qualifications"

# Provider datastores beside database.db: provider -> (file, tables and columns needed).
_DATASTORES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "prolific": ("prolific/prolific.db", {"workers": ("worker_id", "is_blocked")}),
    "mock": ("mock/mock.db", {"workers": ("worker_id", "is_blocked")}),
    "mturk": ("mturk/mturk.db", {"hits": ("hit_id", "unit_id", "assignment_id")}),
    "mturk_sandbox": ("mturk_sandbox/mturk.db", {"hits": ("hit_id", "unit_id", "assignment_id")}),
}


@contextmanager
def open_readonly(path: Path) -> Iterator[sqlite3.Connection]:
    """An SQLite connection that cannot write: ``mode=ro``, refusing a non-database."""
    if not path.exists():
        raise MephistoDataError(path, "no such file")
    if not path.is_file():
        raise MephistoDataError(path, "not a file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise MephistoDataError(path, f"cannot be opened: {exc}") from None
    with closing(conn):
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise MephistoDataError(path, f"not an SQLite database ({exc})") from None
        yield conn


def _columns(conn: sqlite3.Connection, path: Path, table: str) -> set[str]:
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if found is None:
            raise MephistoDataError(path, "no such table (not a Mephisto database?)", table)
        return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    except sqlite3.Error as exc:
        raise MephistoDataError(path, f"cannot be read: {exc}", table) from None


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return found is not None


def _require(conn: sqlite3.Connection, path: Path, table: str, needed: Sequence[str]) -> set[str]:
    present = _columns(conn, path, table)
    for column in needed:
        if column not in present:
            raise MephistoDataError(
                path, "no such column (not a Mephisto database?)", f"{table}.{column}"
            )
    return present


def _rows(
    conn: sqlite3.Connection,
    path: Path,
    table: str,
    columns: Sequence[str],
    id_column: str,
    renamed: dict[str, str] | None = None,
    label: str | None = None,
) -> list[Row]:
    """Every row of ``table``, in the order of its id, the columns as given; ``label``
    names the table in reports (a datastore's tables are named after its file)."""
    renamed = renamed or {}
    selected = ", ".join(f'"{c}"' for c in columns)
    try:
        cursor = conn.execute(f'SELECT {selected} FROM "{table}" ORDER BY "{id_column}"')
        return [
            Row(
                label or table,
                str(values[columns.index(id_column)]),
                {renamed.get(c, c): v for c, v in zip(columns, values, strict=True)},
            )
            for values in cursor
        ]
    except sqlite3.Error as exc:
        raise MephistoDataError(path, f"cannot be read: {exc}", table) from None


def read_data_dir(data_dir: Path) -> MephistoData:
    """Read ``data_dir`` (or the directory of a ``database.db`` given itself)."""
    if data_dir.is_file():
        data_dir = data_dir.parent
    if not data_dir.exists():
        raise MephistoDataError(data_dir, "no such directory")
    if not data_dir.is_dir():
        raise MephistoDataError(data_dir, "not a directory")
    database = data_dir / DATABASE_FILE
    if not database.is_file():
        raise MephistoDataError(
            database, "no such file (a Mephisto data directory holds database.db)"
        )
    with open_readonly(database) as conn:
        tables: dict[str, list[Row]] = {}
        for table, (needed, optional) in _CORE.items():
            present = _require(conn, database, table, needed)
            columns = [*needed, *(c for c in optional if c in present)]
            tables[table] = _rows(conn, database, table, columns, _ID_COLUMN[table])
        if _has_table(conn, "worker_review"):
            review_table, time_column = "worker_review", "creation_date"
            layout = LAYOUT_CURRENT
        else:
            review_table = "unit_review"
            present = _columns(conn, database, review_table)
            time_column = "creation_date" if "creation_date" in present else "created_at"
            layout = LAYOUT_DATA_PORTER if time_column == "creation_date" else LAYOUT_INITIAL
        _require(conn, database, review_table, (*_REVIEW_COLUMNS, time_column))
        reviews = _rows(
            conn,
            database,
            review_table,
            [*_REVIEW_COLUMNS, time_column],
            "id",
            renamed={time_column: "creation_date"},
        )
    return MephistoData(
        data_dir=data_dir,
        database=database,
        layout=layout,
        review_table=review_table,
        qualifications=tables["qualifications"],
        granted=tables["granted_qualifications"],
        workers=tables["workers"],
        units=tables["units"],
        agents={row.id: row for row in tables["agents"]},
        onboarding=tables["onboarding_agents"],
        reviews=reviews,
        tasks={row.id: row for row in tables["tasks"]},
        task_runs={row.id: row for row in tables["task_runs"]},
        datastores=_read_datastores(data_dir),
    )


def _read_datastores(data_dir: Path) -> dict[str, Datastore]:
    """The provider datastores that exist; one that exists must be readable."""
    found: dict[str, Datastore] = {}
    for provider, (relative, needed) in _DATASTORES.items():
        path = data_dir / relative
        if not path.exists():
            continue
        with open_readonly(path) as conn:
            for table, required in needed.items():
                _require(conn, path, table, required)
            store = Datastore(provider, path)
            if "workers" in needed:
                present = _columns(conn, path, "workers")
                columns = ["worker_id", "is_blocked"]
                columns += [c for c in ("id", "update_date", "creation_date") if c in present]
                label = f"{relative}:workers"
                for row in _rows(conn, path, "workers", columns, "worker_id", label=label):
                    store.workers[row.id] = row
                if provider == "prolific" and _has_table(conn, "units"):
                    present = _columns(conn, path, "units")
                    if {"unit_id", "prolific_submission_id"} <= present:
                        for row in _rows(
                            conn, path, "units", ["unit_id", "prolific_submission_id"], "unit_id"
                        ):
                            if isinstance(row["prolific_submission_id"], str):
                                store.submission_ids[row.id] = row["prolific_submission_id"]
            else:
                for row in _rows(conn, path, "hits", list(needed["hits"]), "hit_id"):
                    unit, assignment = row["unit_id"], row["assignment_id"]
                    if unit is not None and isinstance(assignment, str) and assignment:
                        store.submission_ids[str(unit)] = assignment
            found[provider] = store
    return found
