"""The commands that work on the whole ledger: create it, export, import, rebuild."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crowdledger.adapters.cli.support import command_group, handles_errors, opened

__all__ = ["commands"]

commands = command_group()


@commands.command()
@handles_errors
def init() -> None:
    """Create an empty ledger at --db (again: says it exists)."""
    with opened(create=True) as ledger:
        done = "created an empty ledger at" if ledger.created else "a ledger already exists at"
    typer.echo(f"{done} {ledger.url}", err=True)


@commands.command()
@handles_errors
def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="File to write [default: stdout]."),
    ] = None,
) -> None:
    """Write every event as JSON Lines, in record order."""
    with opened(create=False) as ledger:
        if output is None:
            count = ledger.export(sys.stdout.buffer)
            sys.stdout.flush()
        else:
            count = ledger.export(output)
    typer.echo(f"exported {count} events", err=True)


@commands.command("import")
@handles_errors
def import_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A file written by `crowdledger export`.")
    ],
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
    with opened() as ledger:
        result = ledger.import_(file, automations=not no_automations)
    for line in result.lines():
        typer.echo(line, err=True)


@commands.command()
@handles_errors
def rebuild() -> None:
    """Throw the read models away and replay the whole log into them."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with (
        opened() as ledger,
        Progress(
            TextColumn("rebuilding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=None,
            transient=False,
            redirect_stdout=False,
        ) as progress,
    ):
        task = progress.add_task("rebuild", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        count = ledger.rebuild(progress=report)
    typer.echo(f"rebuilt the read models from {count} events", err=True)
