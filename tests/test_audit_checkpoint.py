"""Keys, signed checkpoints, a log audited against them, and proofs checked offline."""

from __future__ import annotations

import base64
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crowdledger.adapters.audit.chain import GENESIS, chain_hash
from crowdledger.adapters.audit.checkpoint import (
    Checkpoint,
    load_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    signed_message,
    verify_checkpoint,
)
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.keys import (
    create_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_path,
)
from crowdledger.adapters.audit.log_audit import audit_log
from crowdledger.adapters.audit.merkle import EMPTY_ROOT
from crowdledger.adapters.audit.proof import (
    build_consistency_proof,
    build_inclusion_proof,
    verify_consistency_proof,
    verify_inclusion_proof,
    verify_proof,
)
from crowdledger.domain.errors import LedgerError

from .audit_support import Row, at, event_id, hashed, make_rows, root_of

WHEN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def checkpoint_of(rows: list[Row], key: Ed25519PrivateKey, size: int | None = None) -> Checkpoint:
    size = len(rows) if size is None else size
    return sign_checkpoint("test-ledger", size, root_of(rows[:size]), key, time=WHEN)


# -- keys ------------------------------------------------------------------------------


def test_create_key_writes_a_private_file_and_a_public_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    kid = create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_path(path) == tmp_path / "audit.key.pub"
    assert stat.S_IMODE(public_key_path(path).stat().st_mode) == 0o644
    assert b"PRIVATE KEY" in path.read_bytes()
    assert b"PRIVATE" not in public_key_path(path).read_bytes()
    private = load_private_key(path)
    assert key_id(private.public_key()) == kid
    assert key_id(load_public_key(public_key_path(path))) == kid
    assert key_id(load_public_key(path)) == kid  # the private file serves as well
    assert kid.startswith("ed25519:")
    assert len(kid) == 8 + 32


def test_create_key_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    create_key(path)
    before = path.read_bytes(), public_key_path(path).read_bytes()
    with pytest.raises(AuditInputError, match="already exists"):
        create_key(path)
    assert (path.read_bytes(), public_key_path(path).read_bytes()) == before
    other = tmp_path / "other.key"
    public_key_path(other).write_text("mine")  # only the .pub exists: refused, nothing written
    with pytest.raises(AuditInputError, match="already exists"):
        create_key(other)
    assert not other.exists()
    os.symlink(tmp_path / "nowhere", tmp_path / "link.key")
    with pytest.raises(AuditInputError, match="already exists"):
        create_key(tmp_path / "link.key")


def test_unreadable_keys_are_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    for load in (load_private_key, load_public_key):
        with pytest.raises(AuditInputError, match="PEM"):
            load(junk)
    path = tmp_path / "k"
    create_key(path)
    with pytest.raises(AuditInputError, match="no private key"):
        load_private_key(public_key_path(path))
    broken = tmp_path / "broken"
    broken.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(AuditInputError, match="not a readable public key"):
        load_public_key(broken)
    with pytest.raises(FileNotFoundError):
        load_public_key(tmp_path / "absent")


# -- checkpoints -----------------------------------------------------------------------


def test_a_checkpoint_round_trips_and_verifies(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    rows = make_rows(10)
    checkpoint = checkpoint_of(rows, key)
    document = checkpoint.to_document()
    assert list(document) == [
        "version", "ledger", "position", "root", "time", "key_id", "signature"
    ]  # fmt: skip
    assert document["version"] == 1
    assert document["position"] == 10
    assert document["time"] == "2026-11-22T10:00:00+00:00"
    assert document["root"] == root_of(rows).hex()
    path = tmp_path / "checkpoint.json"
    path.write_bytes(checkpoint.to_json())
    loaded = load_checkpoint(path)
    assert loaded == checkpoint
    verify_checkpoint(loaded, key.public_key())
    assert checkpoint.message() == (
        b"crowdledger checkpoint v1\nledger test-ledger\nposition 10\n"
        b"root " + root_of(rows).hex().encode() + b"\n"
        b"time 2026-11-22T10:00:00+00:00\nkey_id " + key_id(key.public_key()).encode() + b"\n"
    )
    key.public_key().verify(checkpoint.signature, checkpoint.message())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", 9),
        ("position", 11),
        ("root", "00" * 32),
        ("time", "2026-11-22T10:00:01+00:00"),
        ("ledger", "another-ledger"),
    ],
)
def test_a_changed_field_breaks_the_signature(
    key: Ed25519PrivateKey, field: str, value: Any
) -> None:
    document = checkpoint_of(make_rows(10), key).to_document()
    document[field] = value
    with pytest.raises(TamperingDetected) as caught:
        verify_checkpoint(parse_checkpoint(document), key.public_key())
    assert caught.value.kind == "signature"


def test_a_forged_signature_and_another_key_are_refused(key: Ed25519PrivateKey) -> None:
    document = checkpoint_of(make_rows(10), key).to_document()
    forged = dict(document, signature=base64.b64encode(bytes(64)).decode())
    with pytest.raises(TamperingDetected) as caught:
        verify_checkpoint(parse_checkpoint(forged), key.public_key())
    assert caught.value.kind == "signature"
    other = Ed25519PrivateKey.generate()
    with pytest.raises(TamperingDetected) as caught:
        verify_checkpoint(parse_checkpoint(document), other.public_key())
    assert caught.value.kind == "key"
    # another key's checkpoint relabelled with our key id: the signature fails
    theirs = checkpoint_of(make_rows(10), other).to_document()
    theirs["key_id"] = document["key_id"]
    with pytest.raises(TamperingDetected) as caught:
        verify_checkpoint(parse_checkpoint(theirs), key.public_key())
    assert caught.value.kind == "signature"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "unknown checkpoint version 2"),
        ({"version": True}, "unknown checkpoint version"),
        ({"extra": 1}, "unknown field"),
        ({"position": -1}, "position"),
        ({"position": "10"}, "position"),
        ({"root": "AB" * 32}, "root"),
        ({"root": "ab"}, "root"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-11-22T10:00:00"}, "UTC offset"),
        ({"ledger": "two\nlines"}, "ledger"),
        ({"ledger": ""}, "ledger"),
        ({"key_id": "rsa:00"}, "key_id"),
        ({"signature": "!!"}, "base64"),
        ({"signature": base64.b64encode(bytes(10)).decode()}, "64 bytes"),
    ],
)
def test_malformed_checkpoints_are_bad_input(
    key: Ed25519PrivateKey, change: dict[str, Any], message: str
) -> None:
    document = checkpoint_of(make_rows(3), key).to_document() | change
    with pytest.raises(AuditInputError, match=message):
        parse_checkpoint(document)
    for missing in ("root", "signature"):
        incomplete = {k: v for k, v in document.items() if k != missing}
        with pytest.raises(AuditInputError):
            parse_checkpoint(incomplete)
    with pytest.raises(AuditInputError, match="not JSON"):
        parse_checkpoint(b"{")
    with pytest.raises(AuditInputError, match="JSON object"):
        parse_checkpoint(b"[]")


def test_audit_errors_are_ledger_errors() -> None:
    assert issubclass(TamperingDetected, LedgerError)
    assert issubclass(AuditInputError, LedgerError)


def test_signed_message_refuses_a_name_that_would_forge_lines(key: Ed25519PrivateKey) -> None:
    with pytest.raises(AuditInputError):
        signed_message("x\nposition 1", 1, bytes(32), "2026-11-22T10:00:00+00:00", "k")


# -- the log against its checkpoints ----------------------------------------------------


def test_audit_log_passes_an_intact_log_and_reports_what_to_sign(key: Ed25519PrivateKey) -> None:
    rows = make_rows(50)
    old = [checkpoint_of(rows, key, size) for size in (0, 1, 17, 32, 50)]
    report = audit_log(hashed(rows), old, public_key=key.public_key())
    assert report.events == 50
    assert report.root == root_of(rows)
    assert report.head == hashed(rows)[-1][5]
    assert report.checkpoints == (0, 1, 17, 32, 50)
    assert audit_log(hashed([]), []).root == EMPTY_ROOT
    # without stored hashes the chain is computed: the checkpoints still hold
    unhashed = [(*row, None) for row in rows]
    assert audit_log(unhashed, old).root == report.root


def test_history_rewritten_with_every_hash_recomputed_is_caught_by_the_checkpoint(
    key: Ed25519PrivateKey,
) -> None:
    rows = make_rows(50)
    checkpoint = checkpoint_of(rows, key, 30)
    rewritten = [*rows[:11], (*rows[11][:4], rows[11][4].replace(b"alice", b"mallo")), *rows[12:]]
    recomputed = hashed(rewritten)  # the forger recomputed every hash after the change
    assert audit_log(recomputed, []).events == 50  # the chain alone cannot tell
    with pytest.raises(TamperingDetected) as caught:
        audit_log(recomputed, [checkpoint], public_key=key.public_key())
    assert caught.value.kind == "rewritten"
    # a change after the checkpoint, rehashed, is not the checkpoint's business
    later = [*rows[:40], (*rows[40][:4], b"{}"), *rows[41:]]
    assert audit_log(hashed(later), [checkpoint]).checkpoints == (30,)


def test_a_truncated_log_is_caught(key: Ed25519PrivateKey) -> None:
    rows = make_rows(50)
    checkpoint = checkpoint_of(rows, key, 50)
    with pytest.raises(TamperingDetected) as caught:
        audit_log(hashed(rows[:45]), [checkpoint])
    assert (caught.value.kind, caught.value.position) == ("truncated", 46)
    # truncated, then new events appended with a fresh chain: rewritten
    regrown = rows[:45] + make_rows(10, start=46, streams=3)
    with pytest.raises(TamperingDetected) as caught:
        audit_log(hashed(regrown), [checkpoint])
    assert caught.value.kind == "rewritten"


def test_a_chain_break_is_reported_before_the_checkpoint(key: Ed25519PrivateKey) -> None:
    rows = hashed(make_rows(50))
    rows[20] = (*rows[20][:5], bytes(32))
    with pytest.raises(TamperingDetected) as caught:
        audit_log(rows, [checkpoint_of(make_rows(50), key)])
    assert (caught.value.kind, caught.value.position) == ("changed", 21)


def test_audit_log_checks_the_signatures_it_is_given(key: Ed25519PrivateKey) -> None:
    rows = make_rows(5)
    forged = sign_checkpoint("test-ledger", 5, root_of(rows), Ed25519PrivateKey.generate())
    with pytest.raises(TamperingDetected) as caught:
        audit_log(hashed(rows), [forged], public_key=key.public_key())
    assert caught.value.kind == "key"


def test_audit_log_reports_progress() -> None:
    seen: list[int] = []
    audit_log(hashed(make_rows(25)), progress=seen.append, every=10)
    assert seen == [10, 20]


# -- inclusion proofs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def log() -> list[Row]:
    return make_rows(37)


@pytest.mark.parametrize("position", [1, 2, 16, 17, 30, 37])
def test_an_inclusion_proof_verifies_offline(
    log: list[Row], key: Ed25519PrivateKey, position: int
) -> None:
    checkpoint = checkpoint_of(log, key)
    by_id = build_inclusion_proof(iter(log), checkpoint, event_id=event_id(position))
    by_position = build_inclusion_proof(iter(log), checkpoint, position=position)
    assert by_id == by_position
    assert by_id["event_id"] == str(event_id(position))
    assert by_id["position"] == position
    assert by_id["leaf_index"] == position - 1
    assert by_id["tree_size"] == 37
    previous = hashed(log)[position - 2][5] if position > 1 else GENESIS
    assert by_id["previous_hash"] == (previous or b"").hex()
    wire = orjson.dumps(by_id)
    verified = verify_inclusion_proof(wire, checkpoint.to_json(), key.public_key())
    assert (verified.position, verified.event_id) == (position, str(event_id(position)))
    assert "valid: event" in verified.describe()
    assert verify_proof(wire, checkpoint, key.public_key()).position == position


def test_a_proof_under_an_older_checkpoint_still_verifies(
    log: list[Row], key: Ed25519PrivateKey
) -> None:
    old = checkpoint_of(log, key, 20)
    proof = build_inclusion_proof(iter(log), old, position=5)  # the log has grown since
    verify_inclusion_proof(proof, old, key.public_key())
    with pytest.raises(AuditInputError, match="not among the 20 events"):
        build_inclusion_proof(iter(log), old, position=25)
    with pytest.raises(AuditInputError, match="not among"):
        build_inclusion_proof(iter(log), old, event_id=event_id(99))


def test_no_proof_from_a_log_that_no_longer_matches(log: list[Row], key: Ed25519PrivateKey) -> None:
    checkpoint = checkpoint_of(log, key)
    changed = [*log[:3], (*log[3][:4], b"{}"), *log[4:]]
    with pytest.raises(TamperingDetected) as caught:
        build_inclusion_proof(iter(changed), checkpoint, position=10)
    assert caught.value.kind == "rewritten"
    with pytest.raises(TamperingDetected) as caught:
        build_inclusion_proof(iter(log[:30]), checkpoint, position=10)
    assert caught.value.kind == "truncated"
    with pytest.raises(TamperingDetected) as caught:
        build_inclusion_proof(iter(log[:9] + log[10:]), checkpoint, position=5)
    assert caught.value.kind == "missing"


def _proof(log: list[Row], key: Ed25519PrivateKey, position: int = 13) -> dict[str, Any]:
    return build_inclusion_proof(iter(log), checkpoint_of(log, key), position=position)


def _refused(proof: dict[str, Any], checkpoint: Any, key: Ed25519PrivateKey) -> TamperingDetected:
    with pytest.raises(TamperingDetected) as caught:
        verify_inclusion_proof(proof, checkpoint, key.public_key())
    return caught.value


def test_tampered_inclusion_proofs_are_refused(log: list[Row], key: Ed25519PrivateKey) -> None:
    checkpoint = checkpoint_of(log, key)
    good = _proof(log, key)
    path = good["audit_path"]
    other = _proof(log, key, 14)
    state = base64.b64decode(good["event"]["state"])
    cases: list[dict[str, Any]] = [
        good | {"audit_path": path[:-1]},  # truncated
        good | {"audit_path": [*path, path[0]]},  # an extra element
        good | {"audit_path": [path[1], path[0], *path[2:]]},  # swapped siblings
        good | {"audit_path": ["00" * 32, *path[1:]]},  # a changed sibling
        good | {"position": 14, "leaf_index": 13},  # a wrong index
        good | {"leaf_index": 13},  # not that of its position
        good | {"tree_size": 36},  # for another tree size
        good | {"root": "11" * 32},
        good | {"event_id": other["event_id"]},  # relabelled as another event
        good | {"event": good["event"] | {"topic": "crowdledger:Revoked"}},
        good | {"event": good["event"] | {"originator_version": 99}},
        good
        | {
            "event": good["event"]
            | {"state": base64.b64encode(state.replace(b"alice", b"mallo")).decode()}
        },
        good | {"previous_hash": "22" * 32},
        good | {"event_hash": other["event_hash"]},
        good | {"leaf_hash": other["leaf_hash"]},
        other | {"audit_path": path},  # another leaf with this one's path
        good | {"ledger": "another-ledger"},
    ]
    for case in cases:
        assert _refused(case, checkpoint, key).kind == "proof", case
    # a proof from another tree (another log) against this checkpoint
    foreign = make_rows(37, streams=3)
    assert _refused(_proof(foreign, key), checkpoint, key).kind == "proof"
    # a proof for another tree size: made under a checkpoint of 36 events, checked with 37
    smaller = build_inclusion_proof(iter(log), checkpoint_of(log, key, 36), position=13)
    assert _refused(smaller, checkpoint, key).kind == "proof"
    assert _refused(smaller | {"tree_size": 37, "root": good["root"]}, checkpoint, key).kind == (
        "proof"
    )
    # a checkpoint changed to match a forged proof: the signature fails
    forged = checkpoint.to_document() | {"position": 36, "root": smaller["root"]}
    assert _refused(smaller, forged, key).kind == "signature"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 2}, "version"),
        ({"type": "consistency"}, "type"),
        ({"position": "13"}, "position"),
        ({"leaf_index": -1}, "leaf_index"),
        ({"audit_path": "ab"}, "audit_path"),
        ({"audit_path": ["zz"]}, "audit_path[0]"),
        ({"audit_path": ["00" * 32] * 65}, "audit_path"),
        ({"root": "AB" * 32}, "root"),
        ({"event": {"originator_id": "x"}}, "event.originator_id"),
        ({"event_id": 5}, "event_id"),
    ],
)
def test_malformed_proofs_are_bad_input(
    log: list[Row], key: Ed25519PrivateKey, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(AuditInputError) as caught:
        verify_inclusion_proof(_proof(log, key) | change, checkpoint_of(log, key), key.public_key())
    assert caught.value.field == field
    with pytest.raises(AuditInputError, match="not JSON"):
        verify_inclusion_proof(b"{", checkpoint_of(log, key), key.public_key())


def test_a_state_that_is_not_json_proves_no_event_id(key: Ed25519PrivateKey) -> None:
    rows: list[Row] = [(1, *make_rows(1)[0][1:4], b"\x00binary")]
    checkpoint = checkpoint_of(rows, key)
    proof = build_inclusion_proof(iter(rows), checkpoint, position=1)
    assert proof["event_id"] is None
    verify_inclusion_proof(proof, checkpoint, key.public_key())
    assert _refused(proof | {"event_id": str(event_id(1))}, checkpoint, key).kind == "proof"


# -- consistency proofs -----------------------------------------------------------------


@pytest.mark.parametrize(("m", "n"), [(0, 37), (1, 37), (16, 37), (20, 37), (37, 37), (5, 6)])
def test_a_consistency_proof_verifies_offline(
    log: list[Row], key: Ed25519PrivateKey, m: int, n: int
) -> None:
    old, new = checkpoint_of(log, key, m), checkpoint_of(log, key, n)
    proof = build_consistency_proof(iter(log), old, new)
    assert (proof["first_size"], proof["second_size"]) == (m, n)
    verified = verify_consistency_proof(orjson.dumps(proof), old, new, key.public_key())
    assert "prefix" in verified.describe()
    assert verify_proof(proof, new, key.public_key(), since=old).first_size == m


def test_tampered_consistency_proofs_are_refused(log: list[Row], key: Ed25519PrivateKey) -> None:
    old, new = checkpoint_of(log, key, 20), checkpoint_of(log, key, 37)
    good = build_consistency_proof(iter(log), old, new)
    forked = [*log[:10], (*log[10][:4], b"{}"), *log[11:]]
    fork = checkpoint_of(forked, key)  # a new checkpoint over a history rewritten at 11
    cases = [
        (good | {"path": good["path"][:-1]}, old, new),
        (good | {"path": [*good["path"], good["path"][0]]}, old, new),
        (good | {"path": good["path"][::-1]}, old, new),
        (good, old, fork),
        (good | {"second_root": fork.root.hex()}, old, fork),
        (good | {"first_size": 21}, old, new),
    ]
    for proof, first, second in cases:
        with pytest.raises(TamperingDetected) as caught:
            verify_consistency_proof(proof, first, second, key.public_key())
        assert caught.value.kind == "proof"
    with pytest.raises(TamperingDetected) as caught:
        build_consistency_proof(iter(forked), old, fork)
    assert caught.value.kind == "rewritten"
    with pytest.raises(AuditInputError, match="older checkpoint"):
        verify_proof(good, new, key.public_key())
    with pytest.raises(AuditInputError, match="one checkpoint"):
        verify_proof(_proof(log, key), new, key.public_key(), since=old)


def test_moved_rows_break_the_proofs_too(log: list[Row], key: Ed25519PrivateKey) -> None:
    checkpoint = checkpoint_of(log, key)
    moved = [at(row, row[0]) for row in log]
    moved[3], moved[4] = at(log[4], 4)[:5], at(log[3], 5)[:5]
    with pytest.raises(TamperingDetected) as caught:
        build_inclusion_proof(iter(r[:5] for r in moved), checkpoint, position=1)
    assert caught.value.kind == "rewritten"
    assert chain_hash(GENESIS, log[0]) == hashed(log)[0][5]
