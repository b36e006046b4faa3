"""``crowdledger erase``: destroy a worker's data key (crypto-shredding), keep the chain."""

from __future__ import annotations

from typing import Annotated

import typer

from crowdledger.adapters.cli.support import (
    Actor,
    AsJson,
    WorkerArg,
    command_group,
    emit_json,
    handles_errors,
    opened,
    say,
)

__all__ = ["commands"]

commands = command_group()


@commands.command()
@handles_errors
def erase(
    worker: WorkerArg,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="R",
            help="Why (a request reference, say); kept in the ledger, so never the worker's id.",
        ),
    ],
    actor: Actor = None,
    as_json: AsJson = False,
) -> None:
    """Erase WORKER's personal data from an encrypted ledger by destroying their key."""
    from crowdledger.adapters.ledger.erasure import erase_worker

    with opened(create=False) as ledger:
        done = erase_worker(ledger, worker, reason=reason, actor=actor)
    if as_json:
        emit_json({"pseudonym": done.pseudonym, "position": done.position, "rebuilt": done.rebuilt})
        return
    say(
        f"erased {worker}: its key is destroyed; what remains reads as {done.pseudonym} "
        f"(event {done.position})",
        err=True,
    )
