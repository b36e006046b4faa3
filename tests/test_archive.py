"""Archives in S3 (adapters/archive): written incrementally, verified without the database,
restored; against moto's S3 through the real boto3 client (serializers, paginators, errors).

Tampering of every kind is caught with its position and segment: a changed line, a line
changed with its hash recomputed, lines swapped, a segment deleted (in the middle, at the
end), segments swapped, an overlapping segment, an object that is not a segment, a
checkpoint whose signature no longer holds, another key. A run that stops between a
segment's upload and the manifest's is finished by the next; listing pages through
``list_objects_v2``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from crowdledger import Ledger
from crowdledger.adapters.archive.errors import ArchiveRefused, ArchiveTampered, ArchiveUnavailable
from crowdledger.adapters.archive.layout import (
    MANIFEST,
    decode_manifest,
    segment_name,
    segment_range,
)
from crowdledger.adapters.archive.reader import ArchiveReader
from crowdledger.adapters.archive.restore import restore_ledger
from crowdledger.adapters.archive.s3 import ArchiveBucket, parse_location
from crowdledger.adapters.archive.writer import archive_ledger
from crowdledger.adapters.audit.chain import chain_hash
from crowdledger.adapters.audit.checkpoint import sign_checkpoint
from crowdledger.adapters.audit.keys import create_key, load_private_key, load_public_key
from crowdledger.adapters.audit.ledger_audit import ledger_id, verify_ledger
from crowdledger.adapters.audit.merkle import MerkleTree
from crowdledger.domain.errors import StoreError

from .conftest import Clock, fresh_postgres_url

BUCKET = "crowd-archive"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client on moto's S3, with one empty bucket."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "archive.key"
    create_key(path)
    return path


def bucket_of(client: Any, prefix: str = "crowd/ledger", *, page_size: int = 1000) -> ArchiveBucket:
    return ArchiveBucket(client, parse_location(f"s3://{BUCKET}/{prefix}"), page_size=page_size)


def record(ledger: Ledger, start: int, count: int) -> None:
    """``count`` commands of several kinds (grants, adjustments, blocks, submissions)."""
    if start == 0:
        ledger.define("english")
        ledger.define("speed")
    for i in range(start, start + count):
        worker = f"mturk:A{i % 5}WORKER"
        kind = i % 4
        if kind == 0:
            ledger.grant(worker, "english", value=i)
        elif kind == 1:
            ledger.adjust(worker, "speed", by=1, initial=0)
        elif kind == 2:
            ledger.record_submission(
                worker, task="t1", submission=f"s{i}", answer={"label": f"cat {i}"}
            )
        else:
            ledger.block(worker, scope="project:p1", reason=f"spam {i}")
            ledger.unblock(worker, scope="project:p1")


def export_bytes(ledger: Ledger) -> bytes:
    out = io.BytesIO()
    ledger.export(out)
    return out.getvalue()


def names(client: Any, prefix: str = "crowd/ledger/segments/") -> list[str]:
    reply = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in reply.get("Contents", ())]


def read_lines(client: Any, key: str) -> list[bytes]:
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return gzip.decompress(body).splitlines()


def write_lines(client: Any, key: str, lines: list[bytes]) -> None:
    body = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    client.put_object(Bucket=BUCKET, Key=key, Body=body)


def verify(client: Any, keyfile: Path, **kwargs: Any) -> Any:
    return ArchiveReader(bucket_of(client, **kwargs), load_public_key(keyfile)).verify()


@pytest.fixture
def archived(s3: Any, keyfile: Path, tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    """A SQLite ledger of 42 events archived in segments of 10 (the last one of 2)."""
    with Ledger.open(f"sqlite:///{tmp_path / 'original.db'}", clock=clock) as ledger:
        record(ledger, 0, 32)
        assert ledger.head() == 42
        archive_ledger(ledger, bucket_of(s3), load_private_key(keyfile), segment_events=10)
        yield ledger


# -- the round trip ------------------------------------------------------------------------


def test_archive_verify_restore_round_trip(
    ledger: Ledger, ledger_url: str, s3: Any, keyfile: Path, tmp_path: Path, clock: Clock
) -> None:
    """On SQLite and PostgreSQL: archived twice (the second run writes only what is new),
    verified, restored; the restored ledger's export is the original's, byte for byte."""
    key = load_private_key(keyfile)
    record(ledger, 0, 20)
    first = archive_ledger(ledger, bucket_of(s3), key, segment_events=8)
    assert first.events == ledger.head() == 27
    assert first.written == (
        segment_name(1, 8),
        segment_name(9, 16),
        segment_name(17, 24),
        segment_name(25, 27),
    )
    before = {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in names(s3)}
    record(ledger, 20, 7)
    second = archive_ledger(ledger, bucket_of(s3), key, segment_events=8)
    assert second.events_written == ledger.head() - 27 == 8
    assert second.written == (segment_name(28, 35),)
    after = {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in names(s3)}
    assert {k: after[k] for k in before} == before  # the older segments were left as they were
    again = archive_ledger(ledger, bucket_of(s3), key, segment_events=8)
    assert (again.written, again.events_written, again.events) == ((), 0, ledger.head())

    report = verify(s3, keyfile)
    assert (report.events, report.segments) == (ledger.head(), len(after))
    log = verify_ledger(ledger, read_models=False).log
    assert (report.head, report.root) == (log.head, log.root)

    with contextlib.ExitStack() as stack:
        if ledger_url.startswith("postgresql"):  # restored on the original's backend
            target = stack.enter_context(fresh_postgres_url())
        else:
            target = f"sqlite:///{tmp_path / 'restored.db'}"
        restored = stack.enter_context(Ledger.open(target, clock=clock))
        result = restore_ledger(restored, bucket_of(s3), load_public_key(keyfile), target="t")
        assert result.archive.events == ledger.head()
        assert export_bytes(restored) == export_bytes(ledger)
        assert ledger_id(restored) == ledger_id(ledger)
        assert restored.overview() == ledger.overview()  # the read models, rebuilt
        assert verify_ledger(restored).log.root == log.root
        # the restored ledger goes on, and the same archive continues from it
        record(restored, 27, 4)
        more = archive_ledger(restored, bucket_of(s3), key, segment_events=8)
        assert (more.events, more.events_written) == (restored.head(), 5)
    assert verify(s3, keyfile).events == more.events


def test_a_checkpoint_of_the_ledger_verifies_against_its_archive(
    archived: Ledger, s3: Any, keyfile: Path
) -> None:
    """An outside checkpoint (what `crowdledger checkpoint` signs) is extended by the archive;
    one beyond the archive's end means segments were cut from it (truncated)."""
    report = verify_ledger(archived, read_models=False)
    checkpoint = sign_checkpoint(
        report.ledger, report.log.events, report.log.root, load_private_key(keyfile)
    )
    reader = ArchiveReader(bucket_of(s3), load_public_key(keyfile), checkpoints=[checkpoint])
    assert reader.verify().checkpoints == (42,)
    s3.delete_object(Bucket=BUCKET, Key=f"crowd/ledger/{segment_name(41, 42)}")
    manifest = decode_manifest(
        s3.get_object(Bucket=BUCKET, Key=f"crowd/ledger/{MANIFEST}")["Body"].read()
    )
    # the manifest rewritten to hide the cut: only the outside checkpoint tells
    from crowdledger.adapters.archive.layout import Manifest, encode_manifest

    entries = manifest.segments[:-1]
    head = bytes.fromhex(
        _row(read_lines(s3, f"crowd/ledger/{entries[-1].name}")[-1])["segment"]["head"]
    )
    hidden = Manifest(manifest.ledger, manifest.key_id, 40, head, entries)
    s3.put_object(Bucket=BUCKET, Key=f"crowd/ledger/{MANIFEST}", Body=encode_manifest(hidden))
    with pytest.raises(ArchiveTampered) as caught:
        ArchiveReader(bucket_of(s3), load_public_key(keyfile), checkpoints=[checkpoint]).verify()
    assert (caught.value.kind, caught.value.position) == ("truncated", 41)


# -- tampering, each kind with its position ------------------------------------------------

SEGMENT_2 = f"crowd/ledger/{segment_name(11, 20)}"
SEGMENT_3 = f"crowd/ledger/{segment_name(21, 30)}"


def _row(line: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(line)
    return doc


def change_a_line(s3: Any) -> None:
    lines = read_lines(s3, SEGMENT_2)
    doc = _row(lines[3])  # position 14
    doc["state"] = doc["state"].replace('"actor":', '"actor": ', 1)
    lines[3] = orjson.dumps(doc)
    write_lines(s3, SEGMENT_2, lines)


def change_and_rehash(s3: Any) -> None:
    """Position 14 changed, and every hash after it recomputed (trailer included): only the
    signed checkpoint tells."""
    from uuid import UUID

    lines = read_lines(s3, SEGMENT_2)
    previous = bytes.fromhex(_row(lines[2])["hash"])
    for index in range(3, 10):
        doc = _row(lines[index])
        if index == 3:
            doc["state"] = doc["state"].replace('"actor":', '"actor": ', 1)
        row = (
            doc["position"],
            UUID(doc["stream"]),
            doc["version"],
            doc["topic"],
            doc["state"].encode(),
        )
        previous = chain_hash(previous, row)
        doc["hash"] = previous.hex()
        lines[index] = orjson.dumps(doc)
    trailer = _row(lines[10])
    trailer["segment"]["head"] = previous.hex()
    lines[10] = orjson.dumps(trailer)
    write_lines(s3, SEGMENT_2, lines)


def swap_two_lines(s3: Any) -> None:
    lines = read_lines(s3, SEGMENT_2)
    lines[4], lines[5] = lines[5], lines[4]  # positions 15 and 16
    write_lines(s3, SEGMENT_2, lines)


def delete_a_line(s3: Any) -> None:
    lines = read_lines(s3, SEGMENT_2)
    del lines[6]  # position 17
    write_lines(s3, SEGMENT_2, lines)


def delete_a_segment(s3: Any) -> None:
    s3.delete_object(Bucket=BUCKET, Key=SEGMENT_2)


def delete_the_last_segment(s3: Any) -> None:
    s3.delete_object(Bucket=BUCKET, Key=f"crowd/ledger/{segment_name(41, 42)}")


def swap_two_segments(s3: Any) -> None:
    two = s3.get_object(Bucket=BUCKET, Key=SEGMENT_2)["Body"].read()
    three = s3.get_object(Bucket=BUCKET, Key=SEGMENT_3)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=SEGMENT_2, Body=three)
    s3.put_object(Bucket=BUCKET, Key=SEGMENT_3, Body=two)


def add_an_overlapping_segment(s3: Any) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=SEGMENT_2)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=f"crowd/ledger/{segment_name(15, 20)}", Body=body)


def add_a_stranger(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="crowd/ledger/segments/notes.txt", Body=b"hello")


def break_a_signature(s3: Any) -> None:
    lines = read_lines(s3, SEGMENT_2)
    trailer = _row(lines[-1])
    trailer["segment"]["checkpoint"]["time"] = "2030-01-01T00:00:00+00:00"
    lines[-1] = orjson.dumps(trailer)
    write_lines(s3, SEGMENT_2, lines)


def truncate_a_segment(s3: Any) -> None:
    lines = read_lines(s3, SEGMENT_2)
    write_lines(s3, SEGMENT_2, lines[:-1])  # the trailer (its checkpoint) cut off


def corrupt_the_gzip(s3: Any) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=SEGMENT_2)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=SEGMENT_2, Body=body[:-9])


# (how, kind, position, the segment named, the line named)
TAMPERING: list[tuple[Callable[[Any], None], str, int | None, str | None, int | None]] = [
    (change_a_line, "changed", 14, SEGMENT_2, 4),
    (change_and_rehash, "rewritten", 11, SEGMENT_2, None),
    (swap_two_lines, "reordered", 15, SEGMENT_2, 6),  # line 6 holds position 15
    (delete_a_line, "missing", 17, SEGMENT_2, None),
    (delete_a_segment, "missing", 11, SEGMENT_3, None),
    (delete_the_last_segment, "missing", 41, MANIFEST, None),
    (swap_two_segments, "reordered", 11, SEGMENT_2, None),
    (add_an_overlapping_segment, "inserted", 15, f"crowd/ledger/{segment_name(15, 20)}", None),
    (add_a_stranger, "inserted", None, "segments/notes.txt", None),
    (break_a_signature, "signature", 20, SEGMENT_2, None),
    (truncate_a_segment, "changed", 11, SEGMENT_2, 10),
    (corrupt_the_gzip, "changed", 11, SEGMENT_2, None),
]


def _short(name: str | None) -> str | None:
    return None if name is None else name.removeprefix("crowd/ledger/")


@pytest.mark.parametrize(
    ("tamper", "kind", "position", "segment", "line"),
    TAMPERING,
    ids=[t[0].__name__ for t in TAMPERING],
)
def test_tampering_is_caught_with_its_place(
    archived: Ledger,
    s3: Any,
    keyfile: Path,
    tmp_path: Path,
    tamper: Callable[[Any], None],
    kind: str,
    position: int | None,
    segment: str | None,
    line: int | None,
) -> None:
    assert verify(s3, keyfile).events == 42
    tamper(s3)
    with pytest.raises(ArchiveTampered) as caught:
        verify(s3, keyfile)
    found = caught.value
    assert (found.kind, found.position, found.segment, found.line) == (
        kind,
        position,
        _short(segment),
        line,
    ), str(found)
    # a restore from it records nothing, and the next archive run refuses to extend it
    with Ledger.open(f"sqlite:///{tmp_path / 'target.db'}") as target:
        with pytest.raises(ArchiveTampered):
            restore_ledger(target, bucket_of(s3), load_public_key(keyfile), target="t")
        assert target.head() == 0
    if kind not in ("signature",):  # the archiver reads only the last segment in full
        return


def test_another_key_is_told_apart(archived: Ledger, s3: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    create_key(other)
    with pytest.raises(ArchiveTampered) as caught:
        verify(s3, other)
    assert caught.value.kind == "key"
    with pytest.raises(ArchiveRefused, match="signed with key"):
        archive_ledger(archived, bucket_of(s3), load_private_key(other))


def test_the_archiver_checks_the_last_segment_before_extending_it(
    archived: Ledger, s3: Any, keyfile: Path
) -> None:
    last = f"crowd/ledger/{segment_name(41, 42)}"
    lines = read_lines(s3, last)
    doc = _row(lines[0])
    doc["state"] = doc["state"].replace('"actor":', '"actor": ', 1)
    write_lines(s3, last, [orjson.dumps(doc), *lines[1:]])
    record(archived, 28, 2)
    with pytest.raises(ArchiveTampered) as caught:
        archive_ledger(archived, bucket_of(s3), load_private_key(keyfile))
    assert (caught.value.kind, caught.value.position, caught.value.segment) == (
        "changed",
        41,
        segment_name(41, 42),
    )


def test_a_ledger_that_no_longer_extends_its_archive_is_refused(
    s3: Any, keyfile: Path, tmp_path: Path
) -> None:
    """Another ledger archived to the same place: refused; the same ledger with a rewritten
    history (hashes recomputed): its hash at the archive's end differs (exit 5)."""
    key = load_private_key(keyfile)
    with Ledger.open(f"sqlite:///{tmp_path / 'a.db'}") as first:
        record(first, 0, 6)
        archive_ledger(first, bucket_of(s3), key)
        a_id, a_head = ledger_id(first), first.head()
    with Ledger.open(f"sqlite:///{tmp_path / 'b.db'}") as second:
        record(second, 0, 6)
        with pytest.raises(ArchiveRefused, match="archive of ledger"):
            archive_ledger(second, bucket_of(s3), key)
        second.grant("mturk:A1WORKER", "english", value=77)
    # b under a's id: a history as long, with other events
    import sqlite3

    with sqlite3.connect(tmp_path / "b.db") as db:
        db.execute("UPDATE cl_meta SET value = ? WHERE key = 'ledger_id'", (a_id,))
    with Ledger.open(f"sqlite:///{tmp_path / 'b.db'}") as second:
        with pytest.raises(ArchiveTampered) as caught:
            archive_ledger(second, bucket_of(s3), key)
        assert (caught.value.kind, caught.value.position) == ("rewritten", a_head)


# -- crashes and listing -------------------------------------------------------------------


def test_a_run_stopped_before_the_manifest_is_finished_by_the_next(
    s3: Any, keyfile: Path, tmp_path: Path
) -> None:
    key = load_private_key(keyfile)
    failing = {"manifest": True}

    def lose_the_manifest(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith(MANIFEST) and failing["manifest"]:
            raise EndpointConnectionError(endpoint_url="https://s3.example")

    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        record(ledger, 0, 10)
        archive_ledger(ledger, bucket_of(s3), key, segment_events=5)
        record(ledger, 10, 3)
        s3.meta.events.register("before-parameter-build.s3.PutObject", lose_the_manifest)
        with pytest.raises(ArchiveUnavailable, match=r"manifest\.json"):
            archive_ledger(ledger, bucket_of(s3), key, segment_events=5)
        # the segment is there, signed; the manifest does not name it yet
        manifest = decode_manifest(
            s3.get_object(Bucket=BUCKET, Key=f"crowd/ledger/{MANIFEST}")["Body"].read()
        )
        assert manifest.events == 14
        assert len(names(s3)) == 4
        report = verify(s3, keyfile)
        assert report.unlisted == (segment_name(15, 18),)
        assert report.events == 18
        failing["manifest"] = False
        record(ledger, 13, 2)
        done = archive_ledger(ledger, bucket_of(s3), key, segment_events=5)
        assert done.adopted == (segment_name(15, 18),)
        assert done.written == (segment_name(19, 20),)
        assert done.events == ledger.head() == 20
        assert [name.removeprefix("crowd/ledger/") for name in names(s3)] == [
            segment_name(1, 5),
            segment_name(6, 10),
            segment_name(11, 14),
            segment_name(15, 18),
            segment_name(19, 20),
        ]
    final = verify(s3, keyfile)
    assert final.unlisted == ()
    assert final.events == done.events


def test_listing_pages_through_many_segments(s3: Any, keyfile: Path, tmp_path: Path) -> None:
    """Segments listed 3 to a page (the paginator's continuation tokens), archived,
    verified and restored; and a page of S3's own maximum (1,000 keys) followed by more."""
    calls: list[dict[str, Any]] = []
    s3.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    key = load_private_key(keyfile)
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        record(ledger, 0, 20)
        for _ in range(2):
            archive_ledger(ledger, bucket_of(s3, page_size=3), key, segment_events=2)
            record(ledger, 20, 1)
        calls.clear()
        report = verify(s3, keyfile, page_size=3)
        assert report.segments == 15
        assert report.events == ledger.head() - 1
        assert sum("ContinuationToken" in c for c in calls) == 4  # 5 pages of 3
        with Ledger.open(f"sqlite:///{tmp_path / 'r.db'}") as target:
            restore_ledger(target, bucket_of(s3, page_size=3), load_public_key(keyfile), target="r")
            assert target.head() == report.events

    for i in range(1005):
        s3.put_object(Bucket=BUCKET, Key=f"many/segments/{i:05d}", Body=b"")
    listed = list(bucket_of(s3, "many").names("segments"))
    assert len(listed) == 1005
    assert listed[-1] == "segments/01004"


def test_an_unreachable_bucket_is_a_store_error(s3: Any, keyfile: Path, tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        record(ledger, 0, 2)
        bucket = ArchiveBucket(s3, parse_location("s3://no-such-bucket/x"))
        with pytest.raises(ArchiveUnavailable, match="NoSuchBucket"):
            archive_ledger(ledger, bucket, load_private_key(keyfile))


def test_restore_refuses_a_ledger_that_holds_events(
    archived: Ledger, s3: Any, keyfile: Path
) -> None:
    with pytest.raises(ArchiveRefused, match="holds 42 events"):
        restore_ledger(archived, bucket_of(s3), load_public_key(keyfile), target="t")
    assert archived.head() == 42


@pytest.mark.parametrize(
    "url", ["http://x/y", "s3://", "s3://ab/x", "s3://Upper/x", "s3://b..x/y", "s3://bucket/a//b"]
)
def test_archive_addresses_are_checked(url: str) -> None:
    with pytest.raises(ArchiveRefused):
        parse_location(url)


# -- a property: any history, any segment sizes, archived in any number of runs -------------


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    runs=st.lists(
        st.tuples(st.integers(0, 9), st.integers(1, 6), st.integers(1, 4)), min_size=1, max_size=4
    )
)
def test_any_archive_verifies_and_restores_to_the_same_ledger(
    s3: Any,
    keyfile: Path,
    tmp_path_factory: pytest.TempPathFactory,
    runs: list[tuple[int, int, int]],
) -> None:
    """(commands recorded, segment size, rows read at a time) per run: each run archives
    up to the ledger's head in full segments (only each run's last may be shorter); the
    archive always verifies, its Merkle tree is the ledger's, and a restore exports the
    same bytes."""
    base = tmp_path_factory.mktemp("prop")
    prefix = base.name
    key = load_private_key(keyfile)
    with Ledger.open(f"sqlite:///{base / 'l.db'}") as ledger:
        done = 0
        for commands, size, batch in runs:
            record(ledger, done, commands)
            done += commands
            run = archive_ledger(
                ledger, bucket_of(s3, prefix), key, segment_events=size, read_batch=batch
            )
            assert run.events == ledger.head()
            spans = [segment_range(name) for name in run.written]
            assert all(last - first + 1 == size for first, last in spans[:-1]), spans
        report = ArchiveReader(bucket_of(s3, prefix), load_public_key(keyfile)).verify()
        assert report.events == ledger.head()
        tree = MerkleTree()
        for digest in hashes_of(ledger):
            tree.append(digest)
        assert report.root == tree.root()
        with Ledger.open(f"sqlite:///{base / 'r.db'}") as target:
            restore_ledger(target, bucket_of(s3, prefix), load_public_key(keyfile), target="r")
            assert export_bytes(target) == export_bytes(ledger)


def hashes_of(ledger: Ledger) -> list[bytes]:
    with ledger._db.transaction(write=False) as tx:
        return [row[5] for row in ledger._log.read_hashed(tx.events, 0, 10**6) if row[5]]


# -- the command line ----------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from crowdledger.adapters.cli.app import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_commands_and_their_exit_statuses(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """archive, verify --archive, restore: 0 done; 5 tampered; 2 refused; 3 out of reach."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROWDLEDGER_CHECKPOINT_KEY", raising=False)
    url = f"s3://{BUCKET}/cli"
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert cli(capsys, "keys", "create", "k.key")[0] == 0
    assert cli(capsys, "--db", db, "define", "english")[0] == 0
    assert cli(capsys, "--db", db, "grant", "mturk:A1B2C3", "english", "--value", "3")[0] == 0

    code, out, err = cli(capsys, "--db", db, "archive", "--to", url, "--key", "k.key")
    assert (code, out) == (
        0,
        f"archived 2 new events in 1 segment(s) to {url}; it now holds events 1 to 2\n",
    ), err
    code, out, _ = cli(capsys, "--db", db, "archive", "--to", url, "--key", "k.key", "--json")
    assert code == 0
    assert orjson.loads(out)["events_written"] == 0
    code, out, _ = cli(capsys, "verify", "--archive", url, "--key", "k.key.pub")
    assert code == 0
    assert out.startswith(f"archive {url} intact: 2 events in 1 segments")
    code, out, _ = cli(capsys, "verify", "--archive", url, "--key", "k.key.pub", "--json")
    assert (code, orjson.loads(out)["intact"], orjson.loads(out)["events"]) == (0, True, 2)

    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    code, out, err = cli(capsys, "restore", "--from", url, "--db", restored, "--key", "k.key.pub")
    assert code == 0, err
    assert out.startswith(f"restored 2 events from {url}")
    assert cli(capsys, "--db", restored, "export")[1] == cli(capsys, "--db", db, "export")[1]
    # into a ledger that holds events: refused, nothing written (2)
    code, _, err = cli(capsys, "restore", "--from", url, "--db", restored, "--key", "k.key.pub")
    assert code == 2
    assert "holds 2 events" in err
    # no key: 2; an address that is not S3's: 2; a bucket that does not exist: 3
    assert cli(capsys, "verify", "--archive", url)[0] == 2
    assert cli(capsys, "verify", "--archive", "/tmp/x", "--key", "k.key.pub")[0] == 2
    code, _, err = cli(capsys, "verify", "--archive", "s3://no-such-bucket/x", "--key", "k.key.pub")
    assert code == 3
    assert "NoSuchBucket" in err

    # tampered: 5, the place named; --json says it too
    key = f"cli/{segment_name(1, 2)}"
    lines = read_lines(s3, key)
    doc = _row(lines[1])
    doc["state"] = doc["state"].replace('"value":3', '"value":9')
    write_lines(s3, key, [lines[0], orjson.dumps(doc), *lines[2:]])
    code, _, err = cli(capsys, "verify", "--archive", url, "--key", "k.key.pub")
    assert code == 5
    assert err.startswith(
        f"Error: tampering detected (changed): position 2: {segment_name(1, 2)} line 2: "
    )
    code, out, _ = cli(capsys, "verify", "--archive", url, "--key", "k.key.pub", "--json")
    found = orjson.loads(out)
    assert (code, found["intact"], found["kind"], found["position"], found["line"]) == (
        5,
        False,
        "changed",
        2,
        2,
    )
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert cli(capsys, "restore", "--from", url, "--db", other, "--key", "k.key.pub")[0] == 5
    assert cli(capsys, "--db", other, "export")[1] == ""  # nothing was restored
    code, _, err = cli(capsys, "--db", db, "archive", "--to", url, "--key", "k.key")
    assert code == 5


def test_the_readme_session_runs_as_shown(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Archives section: each `$ crowdledger ...` line exits 0 and prints the
    lines shown under it (the key id `keys create` prints is random: not shown)."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Archives\n", 1)[1].split("\n## ", 1)[0]
    (session,) = re.findall(r"```text\n(\$ crowdledger .*?)```", section, flags=re.DOTALL)
    steps: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert len(steps) >= 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROWDLEDGER_CHECKPOINT_KEY", raising=False)
    s3.create_bucket(Bucket="my-bucket")
    for command, shown in steps:
        code, out, err = cli(capsys, *shlex.split(command)[1:])
        assert code == 0, (command, err)
        if "keys create" not in command:
            assert out.splitlines() == shown, command
    with (
        Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}") as original,
        Ledger.open(f"sqlite:///{tmp_path / 'restored.db'}") as restored,
    ):
        assert export_bytes(restored) == export_bytes(original)


def test_no_archive_at_an_address_is_said(s3: Any, keyfile: Path, tmp_path: Path) -> None:
    """A mistyped prefix is not an intact empty archive: refused (exit 2), nothing restored."""
    with pytest.raises(ArchiveRefused, match="there is no archive at s3://crowd-archive/typo"):
        verify(s3, keyfile, prefix="typo")
    with Ledger.open(f"sqlite:///{tmp_path / 't.db'}") as target:
        with pytest.raises(ArchiveRefused):
            restore_ledger(target, bucket_of(s3, "typo"), load_public_key(keyfile), target="t")
        assert target.head() == 0


# -- an encrypted ledger's archive -----------------------------------------------------------


def _restore_target(stack: contextlib.ExitStack, ledger_url: str, tmp_path: Path, name: str) -> str:
    if ledger_url.startswith("postgresql"):
        return stack.enter_context(fresh_postgres_url())
    return f"sqlite:///{tmp_path / name}"


def test_an_encrypted_ledger_restores_readable_and_its_erasures_reach_the_archive(
    ledger_url: str,
    s3: Any,
    keyfile: Path,
    tmp_path: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keys.json carries the wrapped worker keys: a restore with the KEK reads every live
    worker's data back; an erased worker's key leaves the archive with the next run; no
    KEK, another KEK or a changed keys.json restores nothing."""
    kek = secrets.token_hex(32)
    monkeypatch.setenv("CROWDLEDGER_KEY", kek)
    monkeypatch.delenv("CROWDLEDGER_KEY_FILE", raising=False)
    monkeypatch.delenv("CROWDLEDGER_ENCRYPT", raising=False)
    key = load_private_key(keyfile)
    keys_object = "crowd/ledger/keys.json"
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(Ledger.open(ledger_url, clock=clock, encrypt=True))
        ledger.define("english")
        ledger.grant("mturk:A1STAYS", "english", value=2, reason="passed the test")
        ledger.grant("mturk:A2GOES", "english", value=3, reason="passed the test")
        ledger.record_submission(
            "mturk:A1STAYS", task="t1", submission="s1", answer={"text": "a kept answer"}
        )
        first = archive_ledger(ledger, bucket_of(s3), key)
        assert (first.keys, first.keys_written) == (2, True)
        assert "wrote the ledger's 2 worker key(s)" in first.lines()[0]
        again = archive_ledger(ledger, bucket_of(s3), key)
        assert (again.keys, again.keys_written, again.events_written) == (2, False, 0)
        ledger.erase("mturk:A2GOES", reason="erasure request 1")
        after = archive_ledger(ledger, bucket_of(s3), key)
        assert (after.keys, after.keys_written, after.events_written) == (1, True, 1)
        held = s3.get_object(Bucket=BUCKET, Key=keys_object)["Body"].read()
        for secret in (b"A1STAYS", b"A2GOES", kek.encode()):
            assert secret not in held

        restored_url = _restore_target(stack, ledger_url, tmp_path, "restored.db")
        restored = stack.enter_context(Ledger.open(restored_url, clock=clock))
        restore_ledger(restored, bucket_of(s3), load_public_key(keyfile), target="t")
        assert export_bytes(restored) == export_bytes(ledger)
        assert restored.overview() == ledger.overview()
        assert restored.qualifications("mturk:A1STAYS") == {"english": 2}
        assert restored.history("mturk:A1STAYS")[-1].answer == {"text": "a kept answer"}
        assert "mturk:A2GOES" not in restored.workers()
        root = verify_ledger(ledger, read_models=False).log.root
        assert verify_ledger(restored).log.root == root
        restored.grant("mturk:A3NEW", "english", reason="sealed like the rest")
        assert restored.qualifications("mturk:A3NEW") == {"english": 1}

        def refused(name: str, error: type[Exception], match: str) -> None:
            url = _restore_target(stack, ledger_url, tmp_path, name)
            target = stack.enter_context(Ledger.open(url, clock=clock))
            with pytest.raises(error, match=match):
                restore_ledger(target, bucket_of(s3), load_public_key(keyfile), target="t")
            assert target.head() == 0

        monkeypatch.setenv("CROWDLEDGER_KEY", secrets.token_hex(32))
        refused("other-kek.db", StoreError, "not this ledger's key-encryption key")
        monkeypatch.delenv("CROWDLEDGER_KEY")
        refused("no-kek.db", StoreError, "set CROWDLEDGER_KEY")
        monkeypatch.setenv("CROWDLEDGER_KEY", kek)
        doc = orjson.loads(held)
        doc["ledger"] = "another-ledger"
        s3.put_object(Bucket=BUCKET, Key=keys_object, Body=orjson.dumps(doc))
        refused("other-ledger.db", ArchiveTampered, "keys of ledger 'another-ledger'")
        s3.put_object(Bucket=BUCKET, Key=keys_object, Body=b"{not json")
        refused("garbage.db", ArchiveTampered, "keys.json: is not JSON")
        s3.delete_object(Bucket=BUCKET, Key=keys_object)  # an archive written before keys.json
        refused("no-keys.db", ArchiveRefused, "holds encrypted rows .* but no keys.json")


def test_a_plaintext_archive_is_not_restored_into_an_encrypted_ledger(
    archived: Ledger, s3: Any, keyfile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_KEY", secrets.token_hex(32))
    monkeypatch.delenv("CROWDLEDGER_KEY_FILE", raising=False)
    with Ledger.open(f"sqlite:///{tmp_path / 'enc.db'}", encrypt=True) as target:
        with pytest.raises(ArchiveRefused, match="archive of a plaintext ledger"):
            restore_ledger(target, bucket_of(s3), load_public_key(keyfile), target="t")
        assert target.head() == 0
