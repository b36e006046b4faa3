"""What the command line imports to start, checked by module, never by the clock.

Start-up time is measured in ``bench/bench_cli.py``; these tests guard its causes: each
command runs in a fresh interpreter (``python -c``, through
:func:`crowdledger.adapters.cli.app.run`) which then reports ``sys.modules``. ``--help``
must not import a single command's module, the ledger or pydantic; ``show`` and
``grant`` must not import the provider sync, the provider libraries, yaml or the rule
models. Events are found by their type name through a registry that fills itself
(:func:`~crowdledger.domain.events.event_types`): decoding every type works in a
process that imported only what ``show`` and ``history`` import.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import W1

ROOT = Path(__file__).resolve().parent.parent

# Never imported by --help, show or grant.
PROVIDERS = ["boto3", "botocore", "httpx", "crowdledger.adapters.sync"]
# Neither by show nor grant: the rule files and models, the automations, the sync's plans.
RULES = [
    "yaml",
    "crowdledger.rules.model",
    "crowdledger.rules.ruleset",
    "crowdledger.rules.evaluate",
    "crowdledger.rules.automations",
    "crowdledger.rules.sync_plan",
    "crowdledger.rules.provider_requirements",
    "crowdledger.adapters.mturk",
    "crowdledger.adapters.prolific",
    "crowdledger.adapters.transfer",
]

_CHILD = """
import contextlib, io, json, sys
from crowdledger.adapters.cli.app import run
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = run(json.loads(sys.argv[1]))
print(json.dumps({"status": status, "out": out.getvalue(), "err": err.getvalue(),
                  "modules": sorted(sys.modules)}))
"""


def in_fresh_process(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON document as its last line."""
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_cli(args: list[str], db: Path) -> dict[str, Any]:
    env = dict(os.environ, CROWDLEDGER_DB=f"sqlite:///{db}")
    env.pop("CROWDLEDGER_DEBUG", None)
    result: dict[str, Any] = in_fresh_process(_CHILD, json.dumps(args), env=env)
    return result


def loaded(modules: list[str], names: list[str]) -> list[str]:
    """Which of ``names`` (or a submodule of one) are among ``modules``."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger with a definition, a grant, a block and a submission."""
    path = tmp_path_factory.mktemp("startup") / "cli.db"
    from crowdledger import Ledger

    with Ledger.open(f"sqlite:///{path}") as ledger:
        ledger.define("english")
        ledger.grant(W1, "english", value=3, actor="t")
        ledger.block(W1, scope="project:x", actor="t")
        ledger.record_submission(W1, task="t1", submission="s1", actor="t")
    return path


def test_help_imports_no_command(db: Path) -> None:
    result = run_cli(["--help"], db)
    assert result["status"] == 0
    assert "show" in result["out"]
    assert "grant" in result["out"]
    modules = result["modules"]
    assert loaded(modules, [*PROVIDERS, "crowdledger.adapters.ledger", "pydantic"]) == []
    commands = {"reads", "writes", "store_commands", "rules_commands", "sync_commands"}
    assert loaded(modules, [f"crowdledger.adapters.cli.{m}" for m in commands]) == []


def test_show_imports_no_rules_and_no_provider(db: Path) -> None:
    result = run_cli(["show", W1], db)
    assert result["status"] == 0, result["err"]
    assert "english=3" in result["out"]
    assert loaded(result["modules"], [*PROVIDERS, *RULES]) == []


def test_grant_imports_no_rules_and_no_provider(db: Path) -> None:
    result = run_cli(["grant", W1, "english", "--value", "4"], db)
    assert result["status"] == 0, result["err"]
    assert "granted english=4" in result["err"]
    assert loaded(result["modules"], [*PROVIDERS, *RULES]) == []


def test_version_is_the_package_metadata_version(db: Path) -> None:
    result = run_cli(["--version"], db)
    assert result["status"] == 0
    expected = importlib.metadata.version("crowdledger")
    assert result["out"] == f"crowdledger {expected}\n"
    import crowdledger

    assert crowdledger.__version__ == expected


def test_pyproject_takes_the_version_from_the_package() -> None:
    """One place for the version: pyproject.toml reads it from crowdledger.__version__."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "crowdledger.__version__"
    }


def test_the_console_script_prints_the_version() -> None:
    script = Path(sys.executable).with_name("crowdledger")
    run = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"crowdledger {importlib.metadata.version('crowdledger')}\n"


_DECODE = """
import json, sys
import crowdledger.adapters.cli.reads  # what `show` and `history` import, and no more
from crowdledger.adapters.store.codec import decode_event, event_from_document, event_to_document
from crowdledger.domain.events import EVENT_TYPES
rows = json.loads(sys.argv[1])
unregistered = sorted({row["type"] for row in rows} - set(EVENT_TYPES))
decoded = []
for row in rows:
    event = decode_event(row["topic"], row["stream"], row["version"], row["state"].encode(), 7)
    doc = event_to_document(event)
    again = event_from_document(dict(doc), event.originator_id, event.originator_version)
    decoded.append([type(event).__name__, type(again).__name__, doc["event_id"]])
print(json.dumps({"unregistered": unregistered, "decoded": decoded}))
"""


def _event_classes() -> dict[str, str]:
    """Every class with a ``TOPIC`` in the domain's source, by name, with its module (read
    from the source, not imported, so that the registry itself is not what is tested)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "domain").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.target.id == "TOPIC"
                and item.value is not None
                for item in node.body
            ):
                found[node.name] = f"crowdledger.domain.{path.stem}"
    return found


def test_every_module_that_defines_events_is_listed() -> None:
    from crowdledger.domain.events import EVENT_MODULES, event_types

    classes = _event_classes()
    assert len(classes) >= 10, classes  # the parse found them
    assert set(EVENT_MODULES) == set(classes.values())
    assert set(event_types()) == set(classes)


def _stored_row(cls: type[Any]) -> dict[str, Any]:
    """A stored row of ``cls`` (made up, of the right types: decoding trusts the store)."""
    from crowdledger.adapters.store.codec import field_specs

    sample = {
        "str": "x",
        "int": 1,
        "bool": True,
        "datetime": "2026-01-02T03:04:05+00:00",
        "uuid": str(uuid.uuid4()),
        "json": {"a": 1},
    }
    state = {spec.name: sample[spec.kind] for spec in field_specs(cls)}
    return {
        "type": cls.__name__,
        "topic": cls.TOPIC,
        "stream": str(uuid.uuid4()),
        "version": 1,
        "state": json.dumps(state),
    }


def test_decoding_every_event_type_in_a_process_that_imported_only_show() -> None:
    """Decoding by type name must not depend on which event modules were imported."""
    from crowdledger.domain.events import event_types

    rows = [_stored_row(cls) for _name, cls in sorted(event_types().items())]
    assert {row["type"] for row in rows} == set(_event_classes())
    result = in_fresh_process(_DECODE, json.dumps(rows))
    # The test means something only if show leaves some event modules unimported.
    assert result["unregistered"], "show imports every event module: nothing left to test"
    assert result["decoded"] == [
        [row["type"], row["type"], json.loads(row["state"])["event_id"]] for row in rows
    ]
