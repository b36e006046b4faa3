"""The commands that work on the whole ledger: create it, export, import, rebuild."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crowdledger.adapters.cli.progress import Quiet, progress
from crowdledger.adapters.cli.support import command_group, handles_errors, opened, say

__all__ = ["commands"]

commands = command_group()


@commands.command()
@handles_errors
def init(
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt",
            help="Encrypt each worker's personal data under a key of their own, so that "
            "`erase` can destroy it (needs CROWDLEDGER_KEY or CROWDLEDGER_KEY_FILE).",
        ),
    ] = False,
) -> None:
    """Create an empty ledger at --db (again: says it exists)."""
    if encrypt:  # before anything is created
        from crowdledger.adapters.ledger.erasure import require_kek

        require_kek("init --encrypt")
    with opened(create=True) as ledger:
        done = "created an empty ledger at" if ledger.created else "a ledger already exists at"
        tail = ""
        if encrypt:
            from crowdledger.adapters.ledger.erasure import attach_cipher

            attach_cipher(ledger, encrypt=True)
            tail = " (encrypted: keep its CROWDLEDGER_KEY apart from the database)"
    say(f"{done} {ledger.url}{tail}", err=True)


@commands.command()
@handles_errors
def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="File to write [default: stdout]."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Write every event as JSON Lines, in record order."""
    with opened(create=False) as ledger, progress("exporting", quiet=quiet) as bar:
        if output is None:
            try:
                count = ledger.export(sys.stdout.buffer, progress=bar.update)
                sys.stdout.flush()
            except BrokenPipeError:
                raise  # the reader went away: the root exits quietly
            except OSError as exc:  # stdout is a full disk, say
                raise OSError(exc.errno, exc.strerror or str(exc), "<stdout>") from None
        else:
            count = ledger.export(output, progress=bar.update)
    say(f"exported {count} events", err=True)


@commands.command("import")
@handles_errors
def import_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A file written by `crowdledger export`.")
    ],
    quiet: Quiet = False,
    no_automations: Annotated[
        bool,
        typer.Option(
            "--no-automations",
            help="Leave out the events that install or remove automations (none are installed).",
        ),
    ] = False,
) -> None:
    """Append the events of FILE (what export wrote); all or nothing.

    The file is data: every line is checked as a command would be. Imported provider
    commands are history (never sent from this ledger); imported automations act on
    events recorded from now on, unless --no-automations leaves them out."""
    with opened() as ledger, progress("importing", quiet=quiet) as bar:

        def report(done: int, total: int | None) -> None:
            if total is not None and done < total:  # the read models were behind: they catch up
                bar.describe("updating the read models")
            bar.update(done, total)

        result = ledger.import_(file, progress=report, automations=not no_automations)
    for line in result.lines():
        say(line, err=True)


@commands.command()
@handles_errors
def rebuild(quiet: Quiet = False) -> None:
    """Throw the read models away and replay the whole log into them."""
    with opened() as ledger, progress("rebuilding", quiet=quiet) as bar:
        count = ledger.rebuild(progress=bar.update)
    say(f"rebuilt the read models from {count} events", err=True)
