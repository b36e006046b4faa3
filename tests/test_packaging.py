"""The wheel installs one namespace, ``crowdledger``, and nothing with a generic name.

The wheel is built the way pip builds from a release: an sdist first, then the wheel
from the unpacked sdist, so both honour pyproject's ``package-dir`` mapping.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("crowdledger-*.whl")
    return built


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """A folder left out of ``packages`` would silently be missing from the wheel."""
    from .installed_tree import package_dirs

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for name, folder in package_dirs().items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            found.add(".".join((name, *relative)))
    assert found == listed


def test_the_sdist_holds_the_layer_folders(wheel: Path) -> None:
    (sdist,) = wheel.parent.glob("crowdledger-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {"/".join(n.split("/")[1:]) for n in archive.getnames()}
    for path in ("domain/errors.py", "adapters/store/event_log.py", "crowdledger/__init__.py"):
        assert path in names
    assert "crowdledger/domain" not in names  # no links: the mapping does the work


def test_the_wheel_has_only_the_crowdledger_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {
        "crowdledger",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for layer in ("domain", "projections", "rules", "adapters", "testing"):
        assert f"crowdledger/{layer}/__init__.py" in names
        assert not any(n.startswith(f"{layer}/") for n in names)
    assert "crowdledger/py.typed" in names
    assert "crowdledger/adapters/store/event_log.py" in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_the_wheel_installs_and_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) in (
        ["crowdledger"],
        ["bin", "crowdledger"],
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import crowdledger, crowdledger.domain;"
        "assert crowdledger.domain.__file__.startswith(sys.argv[1]), crowdledger.domain.__file__;"
        "from crowdledger import Ledger;"
        "l = Ledger.open('memory://'); l.define('x'); print(l.head())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.stdout.strip() == "1"
