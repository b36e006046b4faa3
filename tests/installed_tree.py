"""The package as it installs, laid out in a temporary folder, for tools that read source.

``pyproject.toml`` maps ``crowdledger.domain`` onto ``domain/`` and so on with
``package-dir``; an editable install reproduces that mapping with an import hook, which
pip and pytest follow but mypy and import-linter (which read folders, not hooks) do not.
They get a folder laid out as the wheel is (``crowdledger/domain/errors.py`` links to
``domain/errors.py``). The links live only in the temporary folder, never in the repository.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """pyproject's ``package-dir``: import name -> folder in the repository."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


@contextmanager
def installed_tree() -> Iterator[Path]:
    """Yield a folder holding ``crowdledger/`` as installed, its files linked to the sources."""
    with TemporaryDirectory(prefix="crowdledger-tree-") as tmp:
        top = Path(tmp)
        for name, source in package_dirs().items():
            _link_files(source, top.joinpath(*name.split(".")))
        yield top


def _link_files(source: Path, target: Path) -> None:
    """Real folders (some tools do not descend into linked ones), each file a link."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            _link_files(entry, target / entry.name)
        else:
            (target / entry.name).symlink_to(entry)
