"""``crowdledger keys`` and ``crowdledger verify-proof``: tamper evidence that needs no ledger.

``verify-proof`` runs offline: it reads a proof, a checkpoint and a public key, never the
database. Exit statuses: 0 the proof holds; 5 it does not (a signature, a root, a path that
fails; the reason on stderr); 2 a file is missing, unreadable or malformed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from crowdledger.adapters.audit.checkpoint import load_checkpoint
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.keys import create_key, load_public_key, public_key_path
from crowdledger.adapters.audit.proof import verify_proof
from crowdledger.adapters.cli.support import (
    EXIT_TAMPERED,
    command_group,
    fail,
    handles_errors,
    say,
)

__all__ = ["commands", "keys_app"]

P = ParamSpec("P")
R = TypeVar("R")

_MAX_PROOF = 1024 * 1024


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
        with path.open("rb") as file:
            data = file.read(_MAX_PROOF + 1)
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
            envvar="CROWDLEDGER_KEY",
            help="The public key (KEYFILE.pub, or the key file itself) the checkpoint must "
            "be signed with [default: $CROWDLEDGER_KEY].",
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
            "a public key is needed to trust the checkpoint: pass --key PUBKEY "
            "(or set CROWDLEDGER_KEY)"
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
