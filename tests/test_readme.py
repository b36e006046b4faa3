"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_python_examples_run_twice_and_assert_what_they_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example asserts what it shows (no print to go stale) and can be run again."""
    monkeypatch.chdir(tmp_path)
    examples = blocks("python")
    assert len(examples) >= 3
    for number, code in enumerate(examples, 1):
        assert "print(" not in code, f"README python block {number} prints: assert instead"
        assert "assert " in code, f"README python block {number} asserts nothing"
        for _ in range(2):  # a reader runs the quick start again in the same folder
            namespace: dict[str, object] = {"__name__": f"readme_example_{number}"}
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)


def test_the_examples_need_no_checkout() -> None:
    """They import what a `pip install` gives, never the tests' own modules."""
    for code in blocks("python"):
        assert "from tests" not in code
        assert "import tests" not in code


def test_cli_examples_run(tmp_path: Path) -> None:
    """Every `crowdledger ...` line of the sh blocks (the set-up lines aside) exits 0."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CROWDLEDGER_DB", None)
    commands = [
        line
        for block in blocks("sh")
        for line in block.splitlines()
        if line.startswith("crowdledger ")
    ]
    assert len(commands) >= 5
    for line in commands:
        run = subprocess.run(
            shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, (line, run.stderr)
