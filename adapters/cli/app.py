"""The ``crowdledger`` command's root: global options, the command table, exit statuses.

Start-up is kept to what ``--help`` needs (click, and this table): a command's module,
with the libraries it uses (the ledger, pydantic, boto3, httpx ...), is imported only
when that command runs. The table keeps each command's one-line help, so listing the
commands imports none of them; ``tests/test_cli.py`` checks that the table says what
the commands themselves say, ``tests/test_cli_startup.py`` what each command imports
(and ``bench/bench_cli.py`` measures how long it takes).

Exit statuses: 0 done; 1 the answer is no (``check``: not eligible); 2 bad input, a
refused command or usage (nothing was recorded); 3 the ledger database could not be
opened or reached, or holds no ledger, or another process kept its write lock past
``--lock-timeout``; 4 a provider refused or could not be reached;
5 tampering found; 70 a bug in crowdledger (the traceback only with ``--debug``);
130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
import typer.main
from typer.core import TyperGroup
from typer.exceptions import TyperException

from crowdledger import __version__
from crowdledger.adapters.cli.state import STATE

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter

__all__ = ["COMMANDS", "app", "main", "run"]

EXIT_BUG, EXIT_INTERRUPTED = 70, 130
BUG_REPORT = (
    "this is a bug in crowdledger: please report it (README, 'Reporting a bug') with the "
    "command and what it prints with --debug"
)


class Entry(NamedTuple):
    """Where a command lives: ``module``'s Typer app ``attr``; ``group``: the app itself."""

    module: str
    attr: str
    help: str
    group: bool = False


_WRITES = "crowdledger.adapters.cli.writes"
_READS = "crowdledger.adapters.cli.reads"
_STORE = "crowdledger.adapters.cli.store_commands"
_RULES = "crowdledger.adapters.cli.rules_commands"
_AUDIT = "crowdledger.adapters.cli.audit_commands"
_REVIEW = "crowdledger.adapters.cli.review_commands"

COMMANDS: dict[str, Entry] = {
    "define": Entry(
        _WRITES,
        "commands",
        "Define QUALIFICATION so it can be granted and used in rules (again: no change).",
    ),
    "grant": Entry(
        _WRITES, "commands", "Grant QUALIFICATION to WORKER (replacing any earlier value)."
    ),
    "adjust": Entry(_WRITES, "commands", "Add to WORKER's value of QUALIFICATION, atomically."),
    "revoke": Entry(_WRITES, "commands", "Take QUALIFICATION away from WORKER."),
    "block": Entry(_WRITES, "commands", "Block WORKER in a scope, until a time or for good."),
    "unblock": Entry(_WRITES, "commands", "Lift WORKER's block in a scope."),
    "onboard": Entry(
        _WRITES,
        "commands",
        "Record an onboarding outcome (pass: QUAL=1; fail: QUAL=0 and QUAL-failed).",
    ),
    "record-submission": Entry(
        _WRITES, "commands", "Record that WORKER submitted work for a task."
    ),
    "approve": Entry(
        _WRITES, "commands", "Approve SUBMISSIONs, or --all of a task (also overturns a rejection)."
    ),
    "reject": Entry(
        _WRITES,
        "commands",
        "Reject SUBMISSIONs, or --all of a task (MTurk needs --feedback; Prolific --category too).",
    ),
    "soft-reject": Entry(
        _REVIEW, "commands", "Soft-reject SUBMISSIONs: paid, but below the quality bar."
    ),
    "bonus": Entry(
        _REVIEW, "commands", "Award WORKER a bonus for a submission; prints the bonus's event id."
    ),
    "review": Entry(
        _REVIEW,
        "review_app",
        "Review submissions: the queue, a run of the rule file's policies, flags, statistics, skills.",
        group=True,
    ),
    "show": Entry(
        _READS,
        "commands",
        "Show WORKER's qualifications, blocks and statistics (now, or as of a time).",
    ),
    "history": Entry(_READS, "commands", "Every event about WORKER, oldest first."),
    "workers": Entry(_READS, "commands", "List every worker the ledger has seen."),
    "check": Entry(
        _READS,
        "commands",
        "Decide whether WORKER may work under the rules, and say why (exit 1: not eligible).",
    ),
    "eligible": Entry(_READS, "commands", "List every known worker the rules admit."),
    "init": Entry(_STORE, "commands", "Create an empty ledger at --db (again: says it exists)."),
    "export": Entry(_STORE, "commands", "Write every event as JSON Lines, in record order."),
    "erase": Entry(
        "crowdledger.adapters.cli.erase_commands",
        "commands",
        "Erase WORKER's personal data from an encrypted ledger by destroying their key.",
    ),
    "import": Entry(
        _STORE, "commands", "Append the events of FILE (what export wrote); all or nothing."
    ),
    "rebuild": Entry(
        _STORE, "commands", "Throw the read models away and replay the whole log into them."
    ),
    "import-mephisto": Entry(
        "crowdledger.adapters.cli.mephisto_commands",
        "commands",
        "Record a Mephisto data directory's qualifications, onboarding, blocks and units.",
    ),
    "rules": Entry(
        _RULES,
        "rules_app",
        "Check rule files.",
        group=True,
    ),
    "automations": Entry(
        _RULES, "automations_app", "Install, list and remove automations.", group=True
    ),
    # Tamper evidence that needs no ledger (adapters/audit): key files, offline proofs.
    "keys": Entry(
        _AUDIT,
        "keys_app",
        "Create the Ed25519 key files that sign and check checkpoints.",
        group=True,
    ),
    "verify-proof": Entry(
        _AUDIT,
        "commands",
        "Check a proof against a signed checkpoint, offline (exit 5: it does not hold).",
    ),
    "verify": Entry(
        _AUDIT,
        "commands",
        "Recompute the hash chain and check the read models (exit 5: tampering found).",
    ),
    "checkpoint": Entry(
        _AUDIT,
        "commands",
        "Sign the Merkle root of the log as it stands, to keep outside the database.",
    ),
    "prove": Entry(
        _AUDIT,
        "commands",
        "Print the inclusion proof of EVENT_ID under a checkpoint, for verify-proof.",
    ),
    # Archives in S3 (adapters/archive); `verify --archive` checks one.
    "archive": Entry(
        "crowdledger.adapters.cli.archive_commands",
        "commands",
        "Append the events recorded since the archive's end to it, in signed segments.",
    ),
    "restore": Entry(
        "crowdledger.adapters.cli.archive_commands",
        "commands",
        "Rebuild an empty ledger from an archive, checking it as it is read (exit 5: tampered).",
    ),
    "sync": Entry(
        "crowdledger.adapters.cli.sync_commands",
        "sync_app",
        "Keep MTurk and Prolific in line with the ledger: "
        "plan, apply, status, pull, ingest, cancel.",
        group=True,
    ),
    "ingest": Entry(
        "crowdledger.adapters.cli.review_provider_commands",
        "ingest_commands",
        "Record work from the provider once each: MTurk notifications from SQS, or HITs "
        "and studies.",
    ),
    "serve": Entry(
        "crowdledger.adapters.cli.web_commands",
        "commands",
        "Serve the review web app and the HTTP API (on 127.0.0.1:8765 unless told).",
    ),
    "tokens": Entry(
        "crowdledger.adapters.cli.web_commands",
        "tokens_app",
        "Manage the access tokens of the web app and the HTTP API.",
        group=True,
    ),
    "notifications": Entry(
        "crowdledger.adapters.cli.review_provider_commands",
        "notifications_app",
        "Configure the providers to tell crowdledger about new work: MTurk to SQS, Prolific "
        "webhooks.",
        group=True,
    ),
}


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its (click) command from its Typer app."""
    entry = COMMANDS[name]
    command = typer.main.get_command(getattr(importlib.import_module(entry.module), entry.attr))
    if entry.group:
        command.name = name
        return command
    assert isinstance(command, TyperGroup), entry
    return command.commands[name]


class LazyGroup(TyperGroup):
    """A group whose commands are imported when they run, listed from :data:`COMMANDS`."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def invoke(self, ctx: Context) -> Any:
        """Run the command; an error nobody expected is a bug: exit 70, no traceback."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except BrokenPipeError:  # `crowdledger export | head`: the reader went away
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as exc:
            raise typer.Exit(_report_failure(exc)) from None

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = [(name, entry.help) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=LazyGroup,
    name="crowdledger",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["--help", "-h"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"crowdledger {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Ledger URL: sqlite:///path.db, postgresql://user@host:port/db or memory:// "
            "[default: $CROWDLEDGER_DB, else sqlite:///crowdledger.db].",
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout",
            metavar="SECONDS",
            min=0,
            help="How long a command waits for another's write lock before giving up "
            "(exit 3) [default: $CROWDLEDGER_LOCK_TIMEOUT, else 60].",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="On an internal error, print the traceback [default: $CROWDLEDGER_DEBUG].",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """An audit-grade, event-sourced ledger of crowd workers' qualifications.

    Exit status: 0 done, 1 the answer is no, 2 bad input, 3 store, 4 provider,
    5 tampering found, 70 a bug.
    """
    STATE.db = db
    STATE.lock_timeout = lock_timeout
    STATE.debug = debug or STATE.debug


def _report_bug(exc: BaseException) -> int:
    if STATE.debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    from crowdledger.adapters.cli.text import printable

    message = printable(str(exc).splitlines()[0][:200]) if str(exc) else ""
    typer.echo(f"Error: internal error: {type(exc).__name__}: {message}", err=True)
    typer.echo(f"  {BUG_REPORT}", err=True)
    return EXIT_BUG


def _report_failure(exc: Exception) -> int:
    """Exit 2 for the one bad input click lets through as a crash, 70 for anything else.

    click's path parameters stat a file name while the command line is parsed, before
    any command's own checks run; a NUL in the name (no shell can pass one, a caller of
    :func:`run` can) makes ``os.stat`` raise ValueError."""
    if isinstance(exc, ValueError) and "embedded null byte" in str(exc):
        typer.echo("Error: a file name holds a NUL character", err=True)
        return 2
    return _report_bug(exc)


def run(args: list[str] | None = None) -> int:
    """Run the command line with ``args`` and return its exit status (never raises)."""
    STATE.reset(debug=os.environ.get("CROWDLEDGER_DEBUG", "") not in ("", "0"))
    try:
        result: Any = typer.main.get_command(app).main(
            args=args, prog_name="crowdledger", standalone_mode=False
        )
    except typer.Abort:
        typer.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except TyperException as exc:  # usage: an unknown option, a missing argument ...
        _show_usage_error(exc)
        return 2
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # raised outside any command (parsing, loading a command)
        return _report_failure(exc)
    return result if isinstance(result, int) else 0


USAGE_LINE_LIMIT = 400  # a usage line names one parameter and quotes the value refused


def _show_usage_error(exc: TyperException) -> None:
    """click's usage message, each line escaped and capped (it quotes the argument it
    refused, which may be a megabyte of control characters)."""
    import io

    from crowdledger.adapters.cli.text import capped, printable

    shown = io.StringIO()
    exc.show(file=shown)  # type: ignore[attr-defined]
    for line in shown.getvalue().splitlines():
        typer.echo(capped(printable(line), USAGE_LINE_LIMIT), err=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
