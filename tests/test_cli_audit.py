"""``crowdledger keys create`` and ``crowdledger verify-proof``: exit statuses and messages."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from crowdledger.adapters.audit.checkpoint import Checkpoint, sign_checkpoint
from crowdledger.adapters.audit.keys import load_private_key
from crowdledger.adapters.audit.proof import build_consistency_proof, build_inclusion_proof
from crowdledger.adapters.cli.app import app

from .audit_support import event_id, make_rows, root_of

ROWS = make_rows(40)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("CROWDLEDGER_CHECKPOINT_KEY", raising=False)
    # verify-proof never opens a ledger: point the default at a place where none can be
    monkeypatch.setenv("CROWDLEDGER_DB", f"sqlite:///{tmp_path}/no/such/dir/ledger.db")
    return CliRunner()


def checkpoint_file(tmp_path: Path, keyfile: Path, size: int, name: str) -> tuple[Path, Checkpoint]:
    root = root_of(ROWS[:size])
    checkpoint = sign_checkpoint(
        "cli-ledger", size, root, load_private_key(keyfile), time=datetime(2026, 11, 22, tzinfo=UTC)
    )
    path = tmp_path / name
    path.write_bytes(checkpoint.to_json())
    return path, checkpoint


@pytest.fixture
def signed(runner: CliRunner, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A key, a checkpoint of 40 events, and the proof of event 7: (keyfile, checkpoint, proof)."""
    keyfile = tmp_path / "audit.key"
    assert runner.invoke(app, ["keys", "create", str(keyfile)]).exit_code == 0
    path, checkpoint = checkpoint_file(tmp_path, keyfile, 40, "checkpoint.json")
    proof = tmp_path / "proof.json"
    proof.write_bytes(orjson.dumps(build_inclusion_proof(iter(ROWS), checkpoint, position=7)))
    return keyfile, path, proof


def test_keys_create(runner: CliRunner, tmp_path: Path) -> None:
    keyfile = tmp_path / "audit.key"
    result = runner.invoke(app, ["keys", "create", str(keyfile)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ed25519:")
    assert "audit.key.pub" in result.stderr
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    again = runner.invoke(app, ["keys", "create", str(keyfile)])
    assert again.exit_code == 2
    assert again.stderr.startswith("Error: ")
    assert "already exists" in again.stderr
    assert runner.invoke(app, ["keys", "create"]).exit_code == 2  # usage


def test_a_valid_proof_exits_0(runner: CliRunner, signed: tuple[Path, Path, Path]) -> None:
    keyfile, checkpoint, proof = signed
    pub = f"{keyfile}.pub"
    result = runner.invoke(
        app, ["verify-proof", str(proof), "--checkpoint", str(checkpoint), "--key", pub]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"valid: event {event_id(7)} (crowdledger:Granted) is entry 7")
    # the key from the environment, the private key file itself, the proof on stdin
    result = runner.invoke(
        app,
        ["verify-proof", "-", "--checkpoint", str(checkpoint)],
        input=proof.read_bytes(),
        env={"CROWDLEDGER_CHECKPOINT_KEY": str(keyfile)},
    )
    assert result.exit_code == 0, result.output


def test_a_tampered_proof_exits_5_with_the_reason(
    runner: CliRunner, signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, checkpoint, proof = signed
    document = orjson.loads(proof.read_bytes())
    cases = {
        "path": (document | {"audit_path": document["audit_path"][:-1]}, "path is shorter"),
        "size": (document | {"tree_size": 39}, "tree of 39 events"),
        "sibling": (
            document | {"audit_path": document["audit_path"][::-1]},
            "does not lead from leaf 6",
        ),
    }
    for name, (tampered, reason) in cases.items():
        bad = tmp_path / f"{name}.json"
        bad.write_bytes(orjson.dumps(tampered))
        result = runner.invoke(
            app, ["verify-proof", str(bad), "--checkpoint", str(checkpoint), "--key", str(keyfile)]
        )
        assert result.exit_code == 5, (name, result.output)
        assert result.stdout == ""
        assert result.stderr.startswith("Error: tampering detected (proof)"), result.stderr
        assert reason in result.stderr, (name, result.stderr)


def test_a_checkpoint_changed_or_signed_by_another_key_exits_5(
    runner: CliRunner, signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, checkpoint, proof = signed
    changed = tmp_path / "changed.json"
    changed.write_bytes(orjson.dumps(orjson.loads(checkpoint.read_bytes()) | {"position": 41}))
    result = runner.invoke(
        app, ["verify-proof", str(proof), "--checkpoint", str(changed), "--key", str(keyfile)]
    )
    assert result.exit_code == 5
    assert "(signature)" in result.stderr
    other = tmp_path / "other.key"
    assert runner.invoke(app, ["keys", "create", str(other)]).exit_code == 0
    result = runner.invoke(
        app, ["verify-proof", str(proof), "--checkpoint", str(checkpoint), "--key", f"{other}.pub"]
    )
    assert result.exit_code == 5
    assert "(key)" in result.stderr


def test_unreadable_input_exits_2(
    runner: CliRunner, signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, checkpoint, proof = signed
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    wrong_version = tmp_path / "v2.json"
    wrong_version.write_bytes(orjson.dumps(orjson.loads(checkpoint.read_bytes()) | {"version": 2}))
    cases = [
        (["verify-proof", str(tmp_path / "absent"), "--checkpoint", str(checkpoint), "--key", str(keyfile)], "No such file"),
        (["verify-proof", str(junk), "--checkpoint", str(checkpoint), "--key", str(keyfile)], "junk.json: the proof is not JSON"),
        (["verify-proof", str(proof), "--checkpoint", str(junk), "--key", str(keyfile)], "junk.json: is not JSON"),
        (["verify-proof", str(proof), "--checkpoint", str(wrong_version), "--key", str(keyfile)], "unknown checkpoint version 2"),
        (["verify-proof", str(proof), "--checkpoint", str(checkpoint), "--key", str(junk)], "not a PEM key file"),
        (["verify-proof", str(proof), "--checkpoint", str(checkpoint)], "a public key is needed"),
        (["verify-proof", str(proof), "--key", str(keyfile)], "--checkpoint"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_a_malformed_field_names_the_file_and_field(
    runner: CliRunner, signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, checkpoint, proof = signed
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(orjson.loads(proof.read_bytes()) | {"tree_size": "40"}))
    result = runner.invoke(
        app, ["verify-proof", str(bad), "--checkpoint", str(checkpoint), "--key", str(keyfile)]
    )
    assert result.exit_code == 2
    assert f"Error: {bad}: tree_size: has the wrong type (str)" in result.stderr


def test_a_consistency_proof_with_since(
    runner: CliRunner, signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, new_path, _proof = signed
    old_path, old = checkpoint_file(tmp_path, keyfile, 25, "old.json")
    _, new = checkpoint_file(tmp_path, keyfile, 40, "new-again.json")
    proof = tmp_path / "consistency.json"
    proof.write_bytes(orjson.dumps(build_consistency_proof(iter(ROWS), old, new)))
    args = ["verify-proof", str(proof), "--checkpoint", str(new_path), "--key", str(keyfile)]
    result = runner.invoke(app, [*args, "--since", str(old_path)])
    assert result.exit_code == 0, result.output
    assert "checkpoint of 25 events is a prefix of the checkpoint of 40" in result.stdout
    assert runner.invoke(app, args).exit_code == 2  # which older checkpoint?
    # the old checkpoint of a history that has been forked since: refused
    forked = [*ROWS[:3], (*ROWS[3][:4], b"{}"), *ROWS[4:]]
    fork_root = root_of(forked[:25])
    fork = sign_checkpoint("cli-ledger", 25, fork_root, load_private_key(keyfile))
    fork_path = tmp_path / "fork.json"
    fork_path.write_bytes(fork.to_json())
    result = runner.invoke(app, [*args, "--since", str(fork_path)])
    assert result.exit_code == 5
    assert "tampering detected (proof)" in result.stderr


def test_verify_proof_runs_offline_in_the_installed_script(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    keyfile, checkpoint, proof = signed
    script = Path(sys.executable).parent / "crowdledger"
    env = {**os.environ, "CROWDLEDGER_DB": "postgresql://nobody@127.0.0.1:1/none"}
    env.pop("CROWDLEDGER_CHECKPOINT_KEY", None)
    run = subprocess.run(
        [str(script), "verify-proof", str(proof), "--checkpoint", str(checkpoint), "--key", f"{keyfile}.pub"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("valid: event")
