"""``crowdledger import-mephisto``: a Mephisto data directory recorded as history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crowdledger.adapters.cli.support import (
    Actor,
    AsJson,
    command_group,
    emit_json,
    handles_errors,
    opened,
    say,
)

__all__ = ["commands"]

commands = command_group()


@commands.command("import-mephisto")
@handles_errors
def import_mephisto(
    data_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR",
            help="Mephisto's data directory (database.db and the provider datastores beside it).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report everything, record nothing.")
    ] = False,
    as_json: AsJson = False,
    actor: Actor = None,
) -> None:
    """Record a Mephisto data directory's qualifications, onboarding, blocks and units.

    Reads Mephisto's own tables read-only and records them as history, in time order
    and with idempotency keys from Mephisto's row ids (importing again records nothing
    new), all in one transaction. What the ledger cannot take as it is is listed with
    the row it came from. Exit status 2 for a directory that is not Mephisto's.
    """
    from crowdledger.adapters.transfer.mephisto import import_mephisto as run_import
    from crowdledger.adapters.transfer.mephisto import summary_lines

    with opened() as ledger:
        report = run_import(ledger, data_dir, dry_run=dry_run, actor=actor)
    if as_json:
        emit_json(report.to_json())
        return
    for line in summary_lines(report):
        say(line)
