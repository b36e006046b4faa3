"""``crowdledger archive`` and ``crowdledger restore`` (and ``verify --archive``): the log
in signed segments in an S3 bucket (:mod:`crowdledger.adapters.archive`).

boto3 is imported here, inside the commands, and nowhere else on the way to them. The S3
client is boto3's default (credentials and region from the environment or
``~/.aws/config``; us-east-1 if none is set), pointed elsewhere with ``--endpoint-url``
(MinIO, Ceph, a moto server). Exit statuses: 0 done (intact); 5 tampering found in the
archive, or the ledger no longer extends it; 3 the ledger or the bucket cannot be reached
or refused; 2 bad input (an address, a key, another ledger's archive, a non-empty restore
target).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.cli.audit_commands import KEY_ENV
from crowdledger.adapters.cli.progress import Quiet, progress
from crowdledger.adapters.cli.state import STATE
from crowdledger.adapters.cli.support import (
    EXIT_TAMPERED,
    AsJson,
    command_group,
    emit_json,
    fail,
    handles_errors,
    opened,
    say,
)

if TYPE_CHECKING:
    from crowdledger.adapters.archive.s3 import ArchiveBucket

__all__ = ["commands", "verify_archive"]

P = ParamSpec("P")
R = TypeVar("R")

commands = command_group()

EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="The S3 endpoint, for an S3-compatible store (MinIO, Ceph, moto) "
        "[default: AWS's, or $AWS_ENDPOINT_URL].",
    ),
]


def _tampering_exits(as_json: bool) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except TamperingDetected as exc:
                if as_json:
                    emit_json(
                        {
                            "intact": False,
                            "kind": exc.kind,
                            "position": exc.position,
                            "segment": getattr(exc, "segment", None),
                            "line": getattr(exc, "line", None),
                            "message": exc.message,
                        }
                    )
                raise fail(str(exc), EXIT_TAMPERED) from None

        return wrapper

    return decorate


def open_bucket(url: str, endpoint_url: str | None, *, page_size: int = 1000) -> ArchiveBucket:
    """The archive at ``url`` through a boto3 S3 client (boto3 imported here)."""
    import boto3
    from botocore.config import Config

    from crowdledger.adapters.archive.s3 import ArchiveBucket, parse_location

    location = parse_location(url)
    session = boto3.session.Session()
    client: Any = session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=session.region_name or "us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )
    return ArchiveBucket(client, location, page_size=page_size)


def _read_file(loader: Callable[[Path], R], path: Path) -> R:
    """A key or checkpoint file through ``loader``; a file that cannot be read is bad input (exit 2),
    named, whatever the OS says (``/proc/self/mem``: EIO, a FIFO, a directory)."""
    try:
        return loader(path)
    except OSError as exc:
        raise AuditInputError(f"cannot be read ({exc.strerror or exc})", path=str(path)) from None


def _key_needed(what: str, metavar: str) -> AuditInputError:
    return AuditInputError(f"a key is needed to {what}: pass --key {metavar} (or set {KEY_ENV})")


@commands.command("archive")
@handles_errors
def archive(
    to: Annotated[str, typer.Option("--to", metavar="S3URL", help="Where: s3://bucket/prefix.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="KEYFILE",
            envvar=KEY_ENV,
            help="The private key that signs each segment's checkpoint "
            f"(`crowdledger keys create`) [default: ${KEY_ENV}].",
        ),
    ] = None,
    endpoint_url: EndpointUrl = None,
    segment_events: Annotated[
        int,
        typer.Option("--segment-events", metavar="N", min=1, help="At most N events per segment."),
    ] = 100_000,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Append the events recorded since the archive's end to it, in signed segments.

    Each segment (compressed JSON Lines of the stored rows and their hashes) carries a
    checkpoint signed with --key over every event up to its end. Where the archive ends
    is read from the archive itself; the ledger must still hold what it holds (exit 5 if
    not). Run it again: it writes only what is new."""
    from crowdledger.adapters.archive.writer import archive_ledger
    from crowdledger.adapters.audit.keys import load_private_key

    if key is None:
        raise _key_needed("sign the segments", "KEYFILE")
    private_key = _read_file(load_private_key, key)
    bucket = open_bucket(to, endpoint_url)
    with (
        opened(create=False) as ledger,
        progress("archiving", quiet=quiet) as bar,
    ):
        written = _tampering_exits(as_json)(archive_ledger)(
            ledger, bucket, private_key, segment_events=segment_events, progress=bar.update
        )
    if as_json:
        emit_json(written.to_json())
        return
    for line in written.lines():
        say(line)


def verify_archive(
    url: str,
    endpoint_url: str | None,
    key: Path | None,
    checkpoints: list[Path],
    *,
    as_json: bool,
) -> None:
    """``verify --archive URL``: check the archive without the database, and say so
    (``--checkpoint`` files: checkpoints kept elsewhere that the archive must extend)."""
    from crowdledger.adapters.archive.reader import ArchiveReader
    from crowdledger.adapters.audit.checkpoint import load_checkpoint
    from crowdledger.adapters.audit.keys import load_public_key

    if key is None:
        raise _key_needed("check the archive's signatures", "PUBKEY")
    public_key = _read_file(load_public_key, key)
    outside = [_read_file(load_checkpoint, path) for path in checkpoints]
    bucket = open_bucket(url, endpoint_url)
    report = _tampering_exits(as_json)(
        lambda: ArchiveReader(bucket, public_key, checkpoints=outside).verify()
    )()
    if as_json:
        emit_json(report.to_json())
        return
    for line in report.lines():
        say(line)


@commands.command("restore")
@handles_errors
def restore(
    source: Annotated[
        str, typer.Option("--from", metavar="S3URL", help="The archive: s3://bucket/prefix.")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="The ledger to rebuild (created if need be; it must hold no event) "
            "[default: the global --db].",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBKEY",
            envvar=KEY_ENV,
            help=f"The public key the archive's checkpoints are signed with [default: ${KEY_ENV}].",
        ),
    ] = None,
    endpoint_url: EndpointUrl = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Rebuild an empty ledger from an archive, checking it as it is read (exit 5: tampered).

    The log comes back byte for byte, with its ledger id (the original's checkpoints
    verify against it); the read models are rebuilt from it. All or nothing: the first
    problem in the archive records nothing."""
    from crowdledger.adapters.archive.restore import restore_ledger
    from crowdledger.adapters.audit.keys import load_public_key
    from crowdledger.adapters.store.url import redact

    if key is None:
        raise _key_needed("check the archive's signatures", "PUBKEY")
    public_key = _read_file(load_public_key, key)
    target = db or STATE.db
    if target is None:
        raise AuditInputError("name the ledger to rebuild: --db URL")
    STATE.db = target
    bucket = open_bucket(source, endpoint_url)
    with opened() as ledger, progress("restoring", quiet=quiet) as bar:
        restored = _tampering_exits(as_json)(restore_ledger)(
            ledger, bucket, public_key, target=redact(target), progress=bar.update
        )
    if as_json:
        emit_json(restored.to_json())
        return
    for line in restored.lines():
        say(line)
