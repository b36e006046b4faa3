"""Mephisto data directories built with Mephisto's own schema, without installing Mephisto
(which pulls in torch), and a reference of whom Mephisto admits.

The DDL below is ours, written to match the tables of facebookresearch/Mephisto
(``mephisto/abstractions/databases/local_database_tables.py`` and its two migrations,
``20240418_data_porter_feature`` and ``20241002_modify_qualifications``; the provider
datastores' ``*_datastore_tables.py`` and the Prolific migration): the same tables,
column names, types, defaults and constraints, in each of the three layouts a Mephisto
database can have. Ids are Mephisto's randomised integers after the first migration;
times are SQLite text in UTC, as Mephisto writes them.

:func:`mephisto_admits` is the reference of Mephisto's admission semantics that the
import tests check the ledger against: ``worker_is_qualified``
(``mephisto/utils/qualifications.py``: a rule whose qualification Mephisto does not
know is skipped; ``Exists``/``DoesNotExist`` look at the row; any other comparator
fails without a row, else compares the row's value) plus the block lists (the Prolific
and mock datastores' ``is_blocked``; for MTurk, whose block list lives on MTurk, the
review rows that blocked the worker, the only trace a Mephisto directory keeps).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CURRENT",
    "DATA_PORTER",
    "INITIAL",
    "LAYOUTS",
    "MephistoDir",
    "mephisto_admits",
]

INITIAL = "initial"
DATA_PORTER = "20240418_data_porter_feature"
CURRENT = "20241002_modify_qualifications"
LAYOUTS = (INITIAL, DATA_PORTER, CURRENT)

_OLD_NOW = "DEFAULT CURRENT_TIMESTAMP"
_NEW_NOW = "DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW'))"


def core_ddl(layout: str) -> str:
    """``database.db``'s tables in ``layout``."""
    initial = layout == INITIAL
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if initial else "INTEGER PRIMARY KEY"
    now = _OLD_NOW if initial else _NEW_NOW
    update_date = "" if initial else f"update_date DATETIME {now},"
    description = "" if layout != CURRENT else ",\n        description CHAR(500)"
    agents_fks = (
        ""
        if initial
        else """,
        FOREIGN KEY (task_id) REFERENCES tasks (task_id) ON DELETE NO ACTION,
        FOREIGN KEY (task_run_id) REFERENCES task_runs (task_run_id) ON DELETE NO ACTION,
        FOREIGN KEY (assignment_id) REFERENCES assignments (assignment_id) ON DELETE NO ACTION"""
    )
    if layout == CURRENT:
        review = f"""
    CREATE TABLE worker_review (
        id INTEGER PRIMARY KEY,
        unit_id INTEGER,
        worker_id INTEGER NOT NULL,
        task_id INTEGER,
        status TEXT,
        review_note TEXT,
        bonus INTEGER,
        blocked_worker BOOLEAN DEFAULT false,
        updated_qualification_id INTEGER,
        updated_qualification_value INTEGER,
        revoked_qualification_id INTEGER,
        creation_date DATETIME {now},
        FOREIGN KEY (unit_id) REFERENCES units (unit_id),
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        FOREIGN KEY (task_id) REFERENCES tasks (task_id)
    );"""
    else:
        review = f"""
    CREATE TABLE unit_review (
        id {pk},
        unit_id INTEGER NOT NULL,
        worker_id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        review_note TEXT,
        bonus INTEGER,
        blocked_worker BOOLEAN DEFAULT false,
        updated_qualification_id INTEGER,
        updated_qualification_value INTEGER,
        revoked_qualification_id INTEGER,
        {"created_at" if initial else "creation_date"} DATETIME {now},
        FOREIGN KEY (unit_id) REFERENCES units (unit_id),
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        FOREIGN KEY (task_id) REFERENCES tasks (task_id)
    );"""
    return f"""
    CREATE TABLE projects (
        project_id {pk},
        project_name TEXT NOT NULL UNIQUE,
        creation_date DATETIME {now}
    );
    CREATE TABLE tasks (
        task_id {pk},
        task_name TEXT NOT NULL UNIQUE,
        task_type TEXT NOT NULL,
        project_id INTEGER,
        parent_task_id INTEGER,
        creation_date DATETIME {now},
        FOREIGN KEY (parent_task_id) REFERENCES tasks (task_id),
        FOREIGN KEY (project_id) REFERENCES projects (project_id)
    );
    CREATE TABLE requesters (
        requester_id {pk},
        requester_name TEXT NOT NULL UNIQUE,
        provider_type TEXT NOT NULL,
        creation_date DATETIME {now}
    );
    CREATE TABLE task_runs (
        task_run_id {pk},
        task_id INTEGER NOT NULL,
        requester_id INTEGER NOT NULL,
        init_params TEXT NOT NULL,
        is_completed BOOLEAN NOT NULL,
        provider_type TEXT NOT NULL,
        task_type TEXT NOT NULL,
        sandbox BOOLEAN NOT NULL,
        creation_date DATETIME {now},
        FOREIGN KEY (task_id) REFERENCES tasks (task_id),
        FOREIGN KEY (requester_id) REFERENCES requesters (requester_id)
    );
    CREATE TABLE assignments (
        assignment_id {pk},
        task_id INTEGER NOT NULL,
        task_run_id INTEGER NOT NULL,
        requester_id INTEGER NOT NULL,
        task_type TEXT NOT NULL,
        provider_type TEXT NOT NULL,
        sandbox BOOLEAN NOT NULL,
        creation_date DATETIME {now},
        FOREIGN KEY (task_id) REFERENCES tasks (task_id),
        FOREIGN KEY (task_run_id) REFERENCES task_runs (task_run_id),
        FOREIGN KEY (requester_id) REFERENCES requesters (requester_id)
    );
    CREATE TABLE units (
        unit_id {pk},
        assignment_id INTEGER NOT NULL,
        unit_index INTEGER NOT NULL,
        pay_amount FLOAT NOT NULL,
        provider_type TEXT NOT NULL,
        status TEXT NOT NULL,
        agent_id INTEGER,
        worker_id INTEGER,
        task_type TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        task_run_id INTEGER NOT NULL,
        sandbox BOOLEAN NOT NULL,
        requester_id INTEGER NOT NULL,
        creation_date DATETIME {now},
        FOREIGN KEY (assignment_id) REFERENCES assignments (assignment_id),
        FOREIGN KEY (agent_id) REFERENCES agents (agent_id),
        FOREIGN KEY (task_run_id) REFERENCES task_runs (task_run_id),
        FOREIGN KEY (task_id) REFERENCES tasks (task_id),
        FOREIGN KEY (requester_id) REFERENCES requesters (requester_id),
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        UNIQUE (assignment_id, unit_index)
    );
    CREATE TABLE workers (
        worker_id {pk},
        worker_name TEXT NOT NULL UNIQUE,
        provider_type TEXT NOT NULL,
        creation_date DATETIME {now}
    );
    CREATE TABLE agents (
        agent_id {pk},
        worker_id INTEGER NOT NULL,
        unit_id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        task_run_id INTEGER NOT NULL,
        assignment_id INTEGER NOT NULL,
        task_type TEXT NOT NULL,
        provider_type TEXT NOT NULL,
        status TEXT NOT NULL,
        creation_date DATETIME {now},
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        FOREIGN KEY (unit_id) REFERENCES units (unit_id){agents_fks}
    );
    CREATE TABLE onboarding_agents (
        onboarding_agent_id {pk},
        worker_id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        task_run_id INTEGER NOT NULL,
        task_type TEXT NOT NULL,
        status TEXT NOT NULL,
        creation_date DATETIME {now},
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        FOREIGN KEY (task_run_id) REFERENCES task_runs (task_run_id)
    );
    CREATE TABLE qualifications (
        qualification_id {pk},
        qualification_name TEXT NOT NULL UNIQUE,
        creation_date DATETIME {now}{description}
    );
    CREATE TABLE granted_qualifications (
        granted_qualification_id {pk},
        worker_id INTEGER NOT NULL,
        qualification_id INTEGER NOT NULL,
        value INTEGER NOT NULL,
        {update_date}
        creation_date DATETIME {now},
        FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
        FOREIGN KEY (qualification_id) REFERENCES qualifications (qualification_id),
        UNIQUE (worker_id, qualification_id)
    );
    {review}
    CREATE TABLE imported_data (
        id INTEGER PRIMARY KEY,
        source_file_name TEXT NOT NULL,
        data_labels TEXT NOT NULL,
        table_name TEXT NOT NULL,
        unique_field_names TEXT NOT NULL,
        unique_field_values TEXT NOT NULL,
        creation_date DATETIME {now}
    );
    CREATE TABLE migrations (
        id INTEGER PRIMARY KEY AUTOINCREMENT ,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        error_message TEXT NULL,
        creation_date DATETIME DEFAULT CURRENT_TIMESTAMP
    );
    """


def prolific_ddl(migrated: bool) -> str:
    """The Prolific datastore's tables (``prolific/prolific.db``)."""
    if not migrated:
        return """
        CREATE TABLE workers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            worker_id TEXT UNIQUE,
            is_blocked BOOLEAN default false
        );
        CREATE TABLE units (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            unit_id TEXT UNIQUE,
            run_id TEXT,
            prolific_study_id TEXT,
            prolific_submission_id TEXT,
            is_expired BOOLEAN DEFAULT false
        );
        """
    return f"""
    CREATE TABLE workers (
        id INTEGER PRIMARY KEY,
        worker_id TEXT UNIQUE,
        is_blocked BOOLEAN default false,
        update_date DATETIME {_NEW_NOW},
        creation_date DATETIME {_NEW_NOW}
    );
    CREATE TABLE units (
        id INTEGER PRIMARY KEY,
        unit_id TEXT UNIQUE,
        task_run_id TEXT,
        prolific_study_id TEXT,
        prolific_submission_id TEXT,
        is_expired BOOLEAN DEFAULT false,
        creation_date DATETIME {_NEW_NOW}
    );
    """


MOCK_DDL = """
    CREATE TABLE requesters (requester_id TEXT PRIMARY KEY UNIQUE, is_registered BOOLEAN);
    CREATE TABLE units (unit_id TEXT PRIMARY KEY UNIQUE, is_expired BOOLEAN);
    CREATE TABLE workers (worker_id TEXT PRIMARY KEY UNIQUE, is_blocked BOOLEAN);
"""

MTURK_DDL = f"""
    CREATE TABLE hits (
        hit_id TEXT PRIMARY KEY UNIQUE,
        unit_id TEXT,
        assignment_id TEXT,
        link TEXT,
        assignment_time_in_seconds INTEGER NOT NULL,
        creation_date DATETIME {_NEW_NOW}
    );
    CREATE TABLE run_mappings (hit_id TEXT, run_id TEXT);
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY UNIQUE,
        arn_id TEXT,
        hit_type_id TEXT NOT NULL,
        hit_config_path TEXT NOT NULL,
        creation_date DATETIME {_NEW_NOW},
        frame_height INTEGER NOT NULL DEFAULT 650
    );
    CREATE TABLE qualifications (
        qualification_name TEXT PRIMARY KEY UNIQUE,
        requester_id TEXT,
        mturk_qualification_name TEXT,
        mturk_qualification_id TEXT,
        creation_date DATETIME {_NEW_NOW}
    );
"""

T0 = "2024-05-01 09:00:00.000"


class MephistoDir:
    """A Mephisto data directory being filled in, row by row, as Mephisto would."""

    def __init__(
        self, root: Path, layout: str = CURRENT, *, seed: int = 0, create: bool = True
    ) -> None:
        self.root = root
        self.layout = layout
        root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(root / "database.db")
        self._random = random.Random(seed)
        self._stores: dict[str, sqlite3.Connection] = {}
        if not create:
            return
        self.db.executescript(core_ddl(layout))
        self.requester = self._insert(
            "requesters",
            "requester_id",
            {"requester_name": "lab", "provider_type": "mock", "creation_date": T0},
        )
        if layout != INITIAL:
            for name in (DATA_PORTER, CURRENT)[: LAYOUTS.index(layout)]:
                self.db.execute(
                    "INSERT INTO migrations (name, status) VALUES (?, 'completed')", (name,)
                )
        self.db.commit()

    @classmethod
    def reopen(cls, root: Path, *, seed: int = 1) -> MephistoDir:
        """The directory ``root`` holds already, to change as Mephisto would."""
        with sqlite3.connect(root / "database.db") as db:
            table, time_column = _review_table(db)
        layout = CURRENT if table == "worker_review" else INITIAL
        if table == "unit_review" and time_column == "creation_date":
            layout = DATA_PORTER
        return cls(root, layout, seed=seed, create=False)

    # -- rows ------------------------------------------------------------------------------
    def _id(self) -> int:
        # Mephisto's make_randomized_int_id after the first migration; autoincrement before.
        return self._random.randrange(10**9, 10**15)

    def _insert(self, table: str, id_column: str, values: Mapping[str, Any]) -> int:
        row = {id_column: self._id(), **values}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
        self.db.commit()
        return int(row[id_column])

    def qualification(self, name: str, created: str = T0, description: str | None = None) -> int:
        values: dict[str, Any] = {"qualification_name": name, "creation_date": created}
        if self.layout == CURRENT:
            values["description"] = description
        return self._insert("qualifications", "qualification_id", values)

    def worker(self, name: str, provider: str = "mturk", created: str = T0) -> int:
        return self._insert(
            "workers",
            "worker_id",
            {"worker_name": name, "provider_type": provider, "creation_date": created},
        )

    def grant(
        self,
        worker: int,
        qualification: int,
        value: Any = 1,
        created: str = T0,
        updated: str | None = None,
    ) -> int:
        values: dict[str, Any] = {
            "worker_id": worker,
            "qualification_id": qualification,
            "value": value,
            "creation_date": created,
        }
        if self.layout != INITIAL:
            values["update_date"] = updated or created
        return self._insert("granted_qualifications", "granted_qualification_id", values)

    def revoke(self, worker: int, qualification: int) -> None:
        """Mephisto's revoke: the row is deleted."""
        self.db.execute(
            "DELETE FROM granted_qualifications WHERE qualification_id = ? AND worker_id = ?",
            (qualification, worker),
        )
        self.db.commit()

    def set_value(self, worker: int, qualification: int, value: int) -> None:
        """Mephisto's grant of a held qualification: the value changes in place (and, as
        in Mephisto's code, ``update_date`` does not)."""
        self.db.execute(
            "UPDATE granted_qualifications SET value = ? WHERE qualification_id = ? "
            "AND worker_id = ?",
            (value, qualification, worker),
        )
        self.db.commit()

    def task_run(
        self,
        task: str,
        *,
        provider: str = "mock",
        onboarding_qualification: str | None = None,
        block_qualification: str | None = None,
        created: str = T0,
    ) -> tuple[int, int]:
        """A task and one run of it; returns (task_id, task_run_id)."""
        task_id = self._insert(
            "tasks",
            "task_id",
            {"task_name": task, "task_type": "mock", "creation_date": created},
        )
        blueprint: dict[str, Any] = {"_blueprint_type": "mock"}
        if onboarding_qualification is not None:
            blueprint["onboarding_qualification"] = onboarding_qualification
        if block_qualification is not None:
            blueprint["block_qualification"] = block_qualification
        params = {"blueprint": blueprint, "provider": {"_provider_type": provider}, "task": {}}
        run_id = self._insert(
            "task_runs",
            "task_run_id",
            {
                "task_id": task_id,
                "requester_id": self.requester,
                "init_params": json.dumps(params),
                "is_completed": False,
                "provider_type": provider,
                "task_type": "mock",
                "sandbox": provider.endswith("sandbox"),
                "creation_date": created,
            },
        )
        return task_id, run_id

    def onboarding(self, worker: int, run: tuple[int, int], status: str, created: str = T0) -> int:
        return self._insert(
            "onboarding_agents",
            "onboarding_agent_id",
            {
                "worker_id": worker,
                "task_id": run[0],
                "task_run_id": run[1],
                "task_type": "mock",
                "status": status,
                "creation_date": created,
            },
        )

    def unit(
        self,
        worker: int | None,
        run: tuple[int, int],
        status: str,
        *,
        provider: str = "mock",
        created: str = T0,
        accepted: str | None = None,
        agent_status: str | None = None,
    ) -> int:
        """A unit of ``run`` (with its assignment, and its agent if it has a worker)."""
        task_id, run_id = run
        sandbox = provider.endswith("sandbox")
        assignment = self._insert(
            "assignments",
            "assignment_id",
            {
                "task_id": task_id,
                "task_run_id": run_id,
                "requester_id": self.requester,
                "task_type": "mock",
                "provider_type": provider,
                "sandbox": sandbox,
                "creation_date": created,
            },
        )
        unit = self._insert(
            "units",
            "unit_id",
            {
                "assignment_id": assignment,
                "unit_index": 0,
                "pay_amount": 0.5,
                "provider_type": provider,
                "status": status,
                "worker_id": worker,
                "task_type": "mock",
                "task_id": task_id,
                "task_run_id": run_id,
                "sandbox": sandbox,
                "requester_id": self.requester,
                "creation_date": created,
            },
        )
        if worker is not None:
            agent = self._insert(
                "agents",
                "agent_id",
                {
                    "worker_id": worker,
                    "unit_id": unit,
                    "task_id": task_id,
                    "task_run_id": run_id,
                    "assignment_id": assignment,
                    "task_type": "mock",
                    "provider_type": provider,
                    "status": agent_status or _AGENT_STATUS.get(status, "completed"),
                    "creation_date": accepted or created,
                },
            )
            self.db.execute("UPDATE units SET agent_id = ? WHERE unit_id = ?", (agent, unit))
            self.db.commit()
        return unit

    def review(
        self,
        worker: int,
        *,
        created: str = T0,
        unit: int | None = None,
        task: int | None = None,
        status: str | None = None,
        note: str | None = None,
        bonus: int | None = None,
        blocked: bool = False,
        updated: tuple[int, int] | None = None,
        revoked: int | None = None,
    ) -> int:
        """A row of ``worker_review`` (``unit_review`` in the older layouts)."""
        table = "worker_review" if self.layout == CURRENT else "unit_review"
        time_column = "created_at" if self.layout == INITIAL else "creation_date"
        return self._insert(
            table,
            "id",
            {
                "unit_id": unit if unit is not None or self.layout == CURRENT else 0,
                "worker_id": worker,
                "task_id": task if task is not None or self.layout == CURRENT else 0,
                "status": status if status is not None or self.layout == CURRENT else "",
                "review_note": note,
                "bonus": bonus,
                "blocked_worker": blocked,
                "updated_qualification_id": None if updated is None else updated[0],
                "updated_qualification_value": None if updated is None else updated[1],
                "revoked_qualification_id": revoked,
                time_column: created,
            },
        )

    # -- provider datastores ---------------------------------------------------------------
    def _store(self, provider: str) -> sqlite3.Connection:
        if provider not in self._stores:
            folder, ddl = {
                "prolific": ("prolific", prolific_ddl(self.layout != INITIAL)),
                "mock": ("mock", MOCK_DDL),
                "mturk": ("mturk", MTURK_DDL),
                "mturk_sandbox": ("mturk_sandbox", MTURK_DDL),
            }[provider]
            (self.root / folder).mkdir(exist_ok=True)
            path = self.root / folder / f"{provider.split('_')[0]}.db"
            exists = path.exists()
            conn = sqlite3.connect(path)
            if not exists:
                conn.executescript(ddl)
            self._stores[provider] = conn
        return self._stores[provider]

    def prolific_worker(self, participant: str, blocked: bool) -> None:
        """``ensure_worker_exists`` then ``set_worker_blocked`` of the Prolific datastore."""
        store = self._store("prolific")
        store.execute(
            "INSERT INTO workers (id, worker_id, is_blocked) VALUES (?, ?, ?) "
            "ON CONFLICT (worker_id) DO UPDATE SET is_blocked = excluded.is_blocked",
            (self._id(), participant, blocked),
        )
        store.commit()

    def prolific_unit(self, unit: int, submission: str) -> None:
        store = self._store("prolific")
        store.execute(
            "INSERT INTO units (id, unit_id, prolific_submission_id) VALUES (?, ?, ?)",
            (self._id(), str(unit), submission),
        )
        store.commit()

    def mock_worker(self, worker: int, blocked: bool) -> None:
        """The mock datastore keys its workers by Mephisto's worker id."""
        store = self._store("mock")
        store.execute(
            "INSERT INTO workers (worker_id, is_blocked) VALUES (?, ?) "
            "ON CONFLICT (worker_id) DO UPDATE SET is_blocked = excluded.is_blocked",
            (str(worker), blocked),
        )
        store.commit()

    def mturk_hit(self, unit: int, assignment: str, *, sandbox: bool = False) -> None:
        store = self._store("mturk_sandbox" if sandbox else "mturk")
        store.execute(
            "INSERT INTO hits (hit_id, unit_id, assignment_id, assignment_time_in_seconds) "
            "VALUES (?, ?, ?, 600)",
            (f"HIT{self._id()}", str(unit), assignment),
        )
        store.commit()

    def close(self) -> None:
        self.db.close()
        for conn in self._stores.values():
            conn.close()


_AGENT_STATUS = {"accepted": "approved", "rejected": "rejected", "soft_rejected": "soft_rejected"}

# -- the reference ---------------------------------------------------------------------------
_COMPARE = {
    "GreaterThan": lambda x, y: x > y,
    "GreaterThanOrEqualTo": lambda x, y: x >= y,
    "LessThan": lambda x, y: x < y,
    "LessThanOrEqualTo": lambda x, y: x <= y,
    "EqualTo": lambda x, y: x == y,
    "NotEqualTo": lambda x, y: x != y,
    "In": lambda x, y: x in y,
    "NotIn": lambda x, y: x not in y,
}


def _review_table(db: sqlite3.Connection) -> tuple[str, str]:
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "worker_review" in names:
        return "worker_review", "creation_date"
    columns = {r[1] for r in db.execute("PRAGMA table_info(unit_review)")}
    return "unit_review", "creation_date" if "creation_date" in columns else "created_at"


def worker_is_qualified(
    db: sqlite3.Connection, worker_id: int, qualifications: Sequence[Mapping[str, Any]]
) -> bool:
    """Mephisto's ``worker_is_qualified``, over its tables."""
    for qualification in qualifications:
        found = db.execute(
            "SELECT qualification_id FROM qualifications WHERE qualification_name = ?",
            (qualification["qualification_name"],),
        ).fetchall()
        if not found:
            continue  # Mephisto logs a warning and skips the rule
        granted = db.execute(
            "SELECT value FROM granted_qualifications WHERE qualification_id = ? AND worker_id = ?",
            (found[0][0], worker_id),
        ).fetchall()
        comparator = qualification["comparator"]
        if comparator == "Exists" and not granted:
            return False
        if comparator == "DoesNotExist" and granted:
            return False
        if comparator in ("Exists", "DoesNotExist"):
            continue
        if not granted:
            return False
        if not _COMPARE[comparator](granted[0][0], qualification["value"]):
            return False
    return True


def mephisto_blocked(root: Path, db: sqlite3.Connection, worker_id: int) -> bool:
    """Whether Mephisto's block lists hold the worker."""
    name, provider = db.execute(
        "SELECT worker_name, provider_type FROM workers WHERE worker_id = ?", (worker_id,)
    ).fetchone()
    store = {"prolific": root / "prolific" / "prolific.db", "mock": root / "mock" / "mock.db"}
    path = store.get(provider)
    if path is not None and path.exists():
        key = name if provider == "prolific" else str(worker_id)
        with sqlite3.connect(path) as conn:
            row = conn.execute("SELECT is_blocked FROM workers WHERE worker_id = ?", (key,))
            found = row.fetchone()
        if found is not None:
            return bool(found[0])
    table, _ = _review_table(db)
    blocked = db.execute(
        f"SELECT count(*) FROM {table} WHERE worker_id = ? AND blocked_worker", (worker_id,)
    ).fetchone()
    return bool(blocked[0])


def mephisto_admits(
    root: Path, worker_id: int, qualifications: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether Mephisto lets the worker work under ``qualifications`` (a rule list without
    ``applicable_providers``)."""
    with sqlite3.connect(root / "database.db") as db:
        return worker_is_qualified(db, worker_id, qualifications) and not mephisto_blocked(
            root, db, worker_id
        )
