"""The repository as a newcomer clones it: nothing stray, and a map that is true.

A wheel of a dependency (``tenacity-*.whl``) once sat at the root, and the read models'
companion files (``<db>-views``) were not ignored. ``ARCHITECTURE.md``'s map of the
folders must name only modules and folders that exist.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    listed = _git("ls-files")
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    return listed.stdout.splitlines()


def test_no_wheel_or_archive_is_kept_in_the_repository(tracked: list[str]) -> None:
    stray = [p for p in tracked if p.endswith((".whl", ".tar.gz", ".zip", ".egg"))]
    assert stray == []


@pytest.mark.parametrize(
    "name", ["crowdledger.db", "crowdledger.db-views", "ledger.db-wal", "x.db-shm"]
)
def test_a_ledgers_files_are_ignored(tracked: list[str], name: str) -> None:
    assert _git("check-ignore", "-q", name).returncode == 0, f"{name} is not ignored"


def _map() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index("## Where things are")
    return text[start:].split("```", 2)[1]


def test_the_architecture_map_names_only_what_exists() -> None:
    block = _map()
    files = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    folders = {p.name for p in ROOT.rglob("*") if p.is_dir() and ".venv" not in p.parts}
    modules = set(re.findall(r"\b([a-z_][a-z0-9_]*\.py)\b", block))
    # A folder is a name followed by "/" and then a blank or the end of the line (not
    # "flag/unflag" in a description).
    named_folders = set(re.findall(r"(?:^|\s)([a-z_][a-z0-9_]*)/(?=\s|$)", block, flags=re.M))
    assert modules, "the map names modules"
    assert sorted(modules - files) == [], "modules the map names that do not exist"
    assert sorted(named_folders - folders) == [], "folders the map names that do not exist"


def test_every_layer_folder_and_adapter_subpackage_is_on_the_map() -> None:
    block = _map()
    for layer in ("domain", "projections", "rules", "adapters"):
        assert f"{layer}/" in block
    for package in sorted((ROOT / "adapters").iterdir()):
        if (package / "__init__.py").exists():
            assert f"{package.name}/" in block, f"adapters/{package.name}/ is not on the map"
