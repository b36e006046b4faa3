"""The code is ruff clean, mypy --strict clean, and its layers point inward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .installed_tree import ROOT, installed_tree

BIN = Path(sys.executable).parent


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)} if cwd != ROOT else None
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return located


def test_ruff() -> None:
    result = run(tool("ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run(tool("ruff"), "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    with installed_tree() as tree:
        result = run(
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "-p",
            "crowdledger",
            cwd=tree,
        )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    with installed_tree() as tree:
        result = run(tool("lint-imports"), "--no-cache", str(ROOT / "pyproject.toml"), cwd=tree)
    assert result.returncode == 0, result.stdout + result.stderr
