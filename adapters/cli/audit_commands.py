"""Tamper evidence on the command line: ``keys``, ``verify-proof`` (no ledger needed), and
``verify``, ``checkpoint``, ``prove`` (which read the ledger).

``verify-proof`` runs offline: it reads a proof, a checkpoint and a public key, never the
database. ``verify`` recomputes the hash chain, checks the log against checkpoints and the
read models against a replay (:mod:`crowdledger.adapters.audit.ledger_audit`);
``checkpoint`` signs the Merkle root of the log as it stands; ``prove`` writes the
inclusion proof of one event under a checkpoint. Exit statuses: 0 intact (the proof
holds); 5 tampering found (a signature, a root, a path, a row that fails; the first
problem on stderr, with its position); 2 a file is missing, unreadable or malformed, or
belongs to another ledger.

The key files default to ``$CROWDLEDGER_CHECKPOINT_KEY`` (not ``CROWDLEDGER_KEY``, which is
the key that encrypts personal data).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from crowdledger.adapters.audit.checkpoint import (
    Checkpoint,
    load_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.keys import (
    create_key,
    load_private_key,
    load_public_key,
    public_key_path,
    read_file,
)
from crowdledger.adapters.audit.ledger_audit import (
    VerifyReport,
    check_ledger_of,
    ledger_id,
    stored_rows,
    verify_ledger,
)
from crowdledger.adapters.audit.proof import build_inclusion_proof, verify_proof
from crowdledger.adapters.cli.progress import Quiet, progress
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

__all__ = ["commands", "keys_app"]

P = ParamSpec("P")
R = TypeVar("R")

_MAX_PROOF = 1024 * 1024
KEY_ENV = "CROWDLEDGER_CHECKPOINT_KEY"


def tamper_exits(command: Callable[P, R]) -> Callable[P, R]:
    """Tampering found: one ``Error:`` line and exit 5 (other errors: ``handles_errors``)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TamperingDetected as exc:
            raise fail(str(exc), EXIT_TAMPERED) from None

    return wrapper


keys_app = command_group("Create the Ed25519 key files that sign and check checkpoints.")


@keys_app.command("create")
@handles_errors
def keys_create(
    keyfile: Annotated[
        Path,
        typer.Argument(
            metavar="KEYFILE", help="The private key file to create; KEYFILE.pub is its public key."
        ),
    ],
) -> None:
    """Make a new signing key: KEYFILE (private, mode 0600) and KEYFILE.pub; never overwrites."""
    kid = create_key(keyfile)
    say(kid)
    say(
        f"created {keyfile} (private: keep it away from the database and its backups) "
        f"and {public_key_path(keyfile)} (public: give it to whoever checks checkpoints)",
        err=True,
    )


commands = command_group()


def _read_document(path: Path) -> bytes:
    if str(path) == "-":
        data = sys.stdin.buffer.read(_MAX_PROOF + 1)
    else:
        data = read_file(path, _MAX_PROOF)
    if len(data) > _MAX_PROOF:
        raise AuditInputError("is too large to be a proof", path=str(path))
    return data


@commands.command("verify-proof")
@handles_errors
@tamper_exits
def verify_proof_command(
    proof: Annotated[
        Path,
        typer.Argument(
            metavar="PROOF", help="A proof written by `crowdledger prove` (- for stdin)."
        ),
    ],
    checkpoint: Annotated[
        Path,
        typer.Option(
            "--checkpoint", metavar="FILE", help="The signed checkpoint the proof is under."
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBKEY",
            envvar=KEY_ENV,
            help="The public key (KEYFILE.pub, or the key file itself) the checkpoint must "
            f"be signed with [default: ${KEY_ENV}].",
        ),
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            metavar="OLD",
            help="For a consistency proof: the older checkpoint, which the one of "
            "--checkpoint must extend.",
        ),
    ] = None,
) -> None:
    """Check a proof against a signed checkpoint, offline (exit 5: it does not hold)."""
    if key is None:
        raise AuditInputError(
            f"a public key is needed to trust the checkpoint: pass --key PUBKEY (or set {KEY_ENV})"
        )
    public_key = load_public_key(key)
    signed = load_checkpoint(checkpoint)
    older = None if since is None else load_checkpoint(since)
    data = _read_document(proof)
    try:
        verified = verify_proof(data, signed, public_key, since=older)
    except AuditInputError as exc:
        if exc.path is None:  # a field of the proof: say which file
            raise AuditInputError(exc.message, path=str(proof), field=exc.field) from None
        raise
    say(verified.describe())


# -- the commands that read the ledger ---------------------------------------------------


def _checkpoints(paths: list[Path], key: Path | None) -> tuple[list[Checkpoint], object]:
    """The checkpoint files, parsed, and the public key that must have signed them."""
    if not paths:
        return [], None
    if key is None:
        raise AuditInputError(
            f"a public key is needed to trust a checkpoint: pass --key PUBKEY (or set {KEY_ENV})"
        )
    public_key = load_public_key(key)
    return [load_checkpoint(path) for path in paths], public_key


def _report(report: VerifyReport, as_json: bool) -> None:
    """Print what a verification found (``verify``; ``verify --archive`` too)."""
    if as_json:
        emit_json(report.document())
        return
    for line in report.lines():
        say(line)


def _refused(exc: TamperingDetected, as_json: bool) -> typer.Exit:
    if as_json:
        emit_json(
            {
                "intact": False,
                "kind": exc.kind,
                "position": exc.position,
                "message": exc.message,
            }
        )
    return fail(str(exc), EXIT_TAMPERED)


@commands.command("verify")
@handles_errors
def verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            metavar="FILE",
            help="A signed checkpoint the log must still extend (repeat for several).",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBKEY",
            envvar=KEY_ENV,
            help=f"The public key the checkpoints are signed with [default: ${KEY_ENV}].",
        ),
    ] = None,
    no_read_models: Annotated[
        bool,
        typer.Option(
            "--no-read-models", help="Check the log alone, not the read models against a replay."
        ),
    ] = False,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            metavar="S3URL",
            help="Check this archive (s3://bucket/prefix) instead, without the database; "
            "--key is then the archive's public key.",
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", metavar="URL", help="With --archive: the S3 endpoint."),
    ] = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Recompute the hash chain and check the read models (exit 5: tampering found).

    Reads the whole log once, in batches, in bounded memory. The first problem is named
    with its position and kind: changed, missing, inserted, reordered (the chain);
    rewritten, truncated (against a --checkpoint); read_model (a read model that differs
    from a replay of the log). With --archive, an archive is checked instead
    (adapters/cli/archive_commands.py)."""
    if archive is not None:
        from crowdledger.adapters.cli.archive_commands import verify_archive

        verify_archive(archive, endpoint_url, key, checkpoint or [], as_json=as_json)
        return
    checkpoints, public_key = _checkpoints(checkpoint or [], key)
    with opened(create=False) as ledger, progress("verifying the chain", quiet=quiet) as bar:

        def report(phase: str, done: int, total: int) -> None:
            if phase != "chain":
                bar.describe("checking the read models")
            bar.update(done, total)

        try:
            result = verify_ledger(
                ledger,
                checkpoints,
                public_key=public_key,  # type: ignore[arg-type]
                read_models=not no_read_models,
                progress=report,
            )
        except TamperingDetected as exc:
            raise _refused(exc, as_json) from None
    _report(result, as_json)


def _write_new_file(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise AuditInputError(
            "already exists; a checkpoint is kept, never replaced (choose another name)",
            path=str(path),
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@commands.command("checkpoint")
@handles_errors
@tamper_exits
def checkpoint_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="File to create [default: stdout]; never replaced.",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="KEYFILE",
            envvar=KEY_ENV,
            help=f"The private key that signs (`crowdledger keys create`) [default: ${KEY_ENV}].",
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Sign the Merkle root of the log as it stands, to keep outside the database.

    The log is verified first (a broken chain is not signed: exit 5). Keep the checkpoint
    where the database's administrators cannot change it (a git repository, an e-mail,
    a bucket); `verify --checkpoint FILE` later proves the log still extends it."""
    if key is None:
        raise AuditInputError(
            f"a private key is needed to sign: pass --key KEYFILE (or set {KEY_ENV}); "
            "make one with `crowdledger keys create KEYFILE`"
        )
    private_key = load_private_key(key)
    with opened(create=False) as ledger, progress("verifying the chain", quiet=quiet) as bar:
        result = verify_ledger(
            ledger,
            read_models=False,
            progress=lambda _phase, done, total: bar.update(done, total),
        )
    signed = sign_checkpoint(result.ledger, result.log.events, result.log.root, private_key)
    document = signed.to_json()
    if output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    else:
        _write_new_file(output, document)
    where = "" if output is None else f" in {output}"
    say(
        f"signed the checkpoint of {signed.position} events (root {signed.root.hex()}){where}",
        err=True,
    )


@commands.command("prove")
@handles_errors
@tamper_exits
def prove(
    event_id: Annotated[
        str, typer.Argument(metavar="EVENT_ID", help="The event's id (its event_id).")
    ],
    checkpoint: Annotated[
        Path,
        typer.Option("--checkpoint", metavar="FILE", help="The signed checkpoint to prove under."),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBKEY",
            envvar=KEY_ENV,
            help=f"If given, the checkpoint's signature is checked first [default: ${KEY_ENV}].",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="File to write [default: stdout]."),
    ] = None,
) -> None:
    """Print the inclusion proof of EVENT_ID under a checkpoint, for verify-proof.

    The proof holds the event's stored row: whoever receives it sees the event."""
    import uuid

    import orjson

    try:
        wanted = uuid.UUID(event_id)
    except ValueError:
        raise AuditInputError(f"{event_id[:80]!r} is not an event id (a UUID)") from None
    signed = load_checkpoint(checkpoint)
    if key is not None:
        verify_checkpoint(signed, load_public_key(key))
    with opened(create=False) as ledger:
        check_ledger_of(signed, ledger_id(ledger), str(checkpoint))
        with stored_rows(ledger) as rows:
            document = build_inclusion_proof(
                (row[:5] for row in rows),
                signed,
                event_id=wanted,
            )
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
    say(
        f"event {document['event_id']} is entry {document['position']} of the checkpoint "
        f"of {document['tree_size']} events",
        err=True,
    )
