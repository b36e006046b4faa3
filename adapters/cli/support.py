"""What the command modules share: error handling, opening the ledger, options.

Every command turns the library's errors into one ``Error:`` line on stderr and a fixed
exit status (listed in :mod:`crowdledger.adapters.cli.app`): 2 bad input, a refused
command or usage (nothing was recorded); 3 the ledger database could not be opened or
reached; 4 a provider refused or could not be reached. Anything else is a bug, which
the root group reports as exit 70. Tampering found (a broken hash chain, a checkpoint
the log no longer extends, an export file edited) is exit 5.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import orjson
import typer

from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.cli.state import STATE
from crowdledger.adapters.cli.text import capped, printable
from crowdledger.adapters.ledger.application import Ledger
from crowdledger.adapters.store.url import default_url, redact
from crowdledger.domain.errors import (
    InvalidInputError,
    LedgerError,
    ProviderError,
    StoreError,
    quoted,
)
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.identifiers import check_when
from crowdledger.rules.errors import RuleSetError

EXIT_NO, EXIT_BAD_INPUT, EXIT_STORE, EXIT_PROVIDER, EXIT_TAMPERED = 1, 2, 3, 4, 5


P = ParamSpec("P")
R = TypeVar("R")


def command_group(help: str | None = None) -> typer.Typer:
    """A Typer app for a module's commands, with plain help like the root's."""
    group = typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None
    )

    @group.callback(help=help)
    def _always_a_group() -> None:
        """Without a callback, Typer turns an app of one command into that command."""

    return group


def say(text: object, *, err: bool = False) -> None:
    """Print one line for people: :func:`printable`, then a newline."""
    typer.echo(printable(text), err=err)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"Error: {capped(printable(message))}", err=True)
    return typer.Exit(code)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's errors into one line on stderr and a fixed exit status."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except StoreError as exc:
            raise fail(redact(str(exc)), EXIT_STORE) from None
        except ProviderError as exc:
            raise fail(str(exc), EXIT_PROVIDER) from None
        except TamperingDetected as exc:  # verify, checkpoints, proofs, an export's hashes
            raise fail(str(exc), EXIT_TAMPERED) from None
        except RuleSetError as exc:  # one line per problem, each one located
            for problem in exc.problems[:-1]:
                fail(str(problem))
            raise fail(str(exc.problems[-1])) from None
        except LedgerError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:  # a file the user named: missing, a directory, unreadable
            if exc.filename is None:
                raise
            raise fail(f"{exc.filename}: {exc.strerror or exc}") from None
        except ValueError as exc:  # the OS cannot even be asked about such a name
            if "null byte" not in str(exc):
                raise
            raise fail("a file name holds a NUL byte (\\x00); no such file can exist") from None

    return wrapper


LOCK_WAIT_NOTICE = "waiting for the ledger's write lock (held by another process)..."


def _say_waiting() -> None:
    typer.echo(LOCK_WAIT_NOTICE, err=True)


@contextmanager
def opened(*, create: bool = True) -> Iterator[Ledger]:
    """The ledger of ``--db``. Reads pass ``create=False``: where there is no ledger they
    fail (exit 3) and create nothing. A command that has to wait for the write lock says
    so on a terminal, and gives up after ``--lock-timeout`` seconds (exit 3)."""
    with Ledger.open(
        STATE.db or default_url(),
        create=create,
        lock_timeout=STATE.lock_timeout,
        on_lock_wait=_say_waiting if sys.stderr.isatty() else None,
    ) as ledger:
        yield ledger


def parse_time(text: str | None, field: str) -> datetime | None:
    """ISO 8601; a time without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            field, f"{quoted(text)} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00Z)"
        ) from None
    # In UTC, where the ledger keeps it; 0001-01-01T00:00:00+01:00 has no UTC time.
    return check_when(when.replace(tzinfo=UTC) if when.tzinfo is None else when, field)


def emit_json(document: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def note(event: LedgerEvent, text: str) -> None:
    say(f"{text} (event {event.position})", err=True)


# -- shared arguments and options -----------------------------------------------------------
WorkerArg = Annotated[
    str, typer.Argument(metavar="WORKER", help="provider:id, e.g. mturk:A1B2C3D4E5F6G7")
]
QualArg = Annotated[str, typer.Argument(metavar="QUAL", help="A defined qualification.")]
SubmissionArg = Annotated[
    str, typer.Argument(metavar="SUBMISSION", help="Assignment or submission id.")
]
Actor = Annotated[
    str | None,
    typer.Option(
        "--actor",
        metavar="A",
        help="Who does this [default: $CROWDLEDGER_ACTOR, else the OS user].",
    ),
]
Reason = Annotated[
    str | None, typer.Option("--reason", metavar="R", help="Why; kept in the ledger.")
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key", metavar="K", help="Idempotency key: repeating the command with it records nothing."
    ),
]
RulesOption = Annotated[
    Path, typer.Option("--rules", metavar="FILE", help="A rule file (YAML or JSON).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Scope = Annotated[
    str,
    typer.Option("--scope", metavar="S", help="'global' or 'kind:id', e.g. project:transcription."),
]
