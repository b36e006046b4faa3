"""The commands that record what happened to workers: grants, blocks, submissions, reviews."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import UsageError

from crowdledger.adapters.cli.support import (
    Actor,
    Key,
    QualArg,
    Reason,
    Scope,
    WorkerArg,
    command_group,
    fail,
    handles_errors,
    note,
    opened,
    parse_time,
    say,
)
from crowdledger.domain.errors import BatchError, InvalidInputError, quoted
from crowdledger.domain.identifiers import GLOBAL_SCOPE

if TYPE_CHECKING:  # the CSV reader is imported by the --from-csv paths that use it
    from crowdledger.adapters.cli.bulk import BulkRow, Problem

__all__ = ["commands"]

commands = command_group()


@commands.command()
@handles_errors
def define(
    qualification: Annotated[
        str, typer.Argument(metavar="QUAL", help="Name: letters, digits, _ - . :")
    ],
    description: Annotated[
        str, typer.Option("--description", metavar="TEXT", help="What holding it means.")
    ] = "",
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Define QUALIFICATION so it can be granted and used in rules (again: no change)."""
    with opened() as ledger:
        before = ledger.head()
        event = ledger.define(
            qualification, description=description, actor=actor, reason=reason, key=key
        )
        if event.position is not None and event.position > before:
            note(event, f"defined {qualification}")
        else:
            say(f"{qualification} was already defined; nothing changed", err=True)


FromCsv = Annotated[
    Path | None,
    typer.Option(
        "--from-csv",
        metavar="FILE",
        help="Every worker of a CSV file instead of WORKER, all or none (see the README).",
    ),
]
MAX_PROBLEMS_SHOWN = 100


def _missing(name: str) -> UsageError:
    """The usage error click gives for a missing argument (exit 2, with the usage)."""
    return UsageError(f"Missing argument {name!r}.")


def _bulk_workers(
    worker: str | None, second: str | None, from_csv: Path | None, usage: str
) -> tuple[str | None, str | None]:
    """The positional arguments, with --from-csv taking WORKER's place."""
    if from_csv is None:
        if worker is None:
            raise _missing("WORKER")
        if usage == "grant" and second is None:
            raise _missing("QUAL")
        return worker, second
    if usage == "grant":
        if second is not None:
            raise InvalidInputError("worker", "give WORKER or --from-csv FILE, not both")
        if worker is None:
            raise _missing("QUAL")
        return None, worker
    if worker is not None:
        raise InvalidInputError("worker", "give WORKER or --from-csv FILE, not both")
    return None, None


def _report(path: Path, problems: list[Problem]) -> typer.Exit:
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        fail(problem.located(path))
    if len(problems) > MAX_PROBLEMS_SHOWN:
        fail(f"{path}: {len(problems) - MAX_PROBLEMS_SHOWN} more problem(s) not shown")
    return fail(f"{path}: {len(problems)} bad row(s); nothing was recorded")


def _rows(path: Path, kind: str) -> list[BulkRow]:
    from crowdledger.adapters.cli.bulk import Problem, read_rows

    rows, problems = read_rows(path, kind)
    if not problems and not rows:
        problems = [Problem(1, None, "no rows: the file names no worker")]
    if problems:
        raise _report(path, problems)
    return rows


def _refused(path: Path, rows: list[BulkRow], exc: BatchError) -> typer.Exit:
    from crowdledger.adapters.cli.bulk import Problem

    problems = []
    for index, error in exc.errors:
        field = error.field if isinstance(error, InvalidInputError) else None
        message = error.message if isinstance(error, InvalidInputError) else str(error)
        problems.append(Problem(rows[index].line, field, message))
    return _report(path, problems)


def _span(events: list[Any]) -> str:
    first, last = events[0].position, events[-1].position
    return f"event {first}" if first == last else f"events {first}-{last}"


@commands.command()
@handles_errors
def grant(
    worker: Annotated[
        str | None,
        typer.Argument(
            metavar="WORKER",
            help="provider:id, e.g. mturk:A1B2C3D4E5F6G7 (not with --from-csv).",
            show_default=False,
        ),
    ] = None,
    qualification: Annotated[
        str | None,
        typer.Argument(metavar="QUAL", help="A defined qualification.", show_default=False),
    ] = None,
    value: Annotated[
        int,
        typer.Option(
            "--value", metavar="N", help="Integer value (with --from-csv: for rows with none)."
        ),
    ] = 1,
    from_csv: FromCsv = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Grant QUALIFICATION to WORKER (replacing any earlier value).

    With --from-csv FILE, grant it to every worker of the file (columns: worker, value),
    in one transaction: a bad row is reported with its line and nothing is recorded.
    """
    worker, qual = _bulk_workers(worker, qualification, from_csv, "grant")
    assert qual is not None
    if from_csv is None:
        assert worker is not None
        with opened() as ledger:
            event = ledger.grant(worker, qual, value=value, actor=actor, reason=reason, key=key)
            note(event, f"granted {qual}={event.value} to {event.worker}")
        return
    rows = _rows(from_csv, "value")
    grants = [(row.worker, value if row.extra is None else int(row.extra)) for row in rows]
    with opened() as ledger:
        try:
            events = ledger.grant_many(qual, grants, actor=actor, reason=reason, key=key)
        except BatchError as exc:
            raise _refused(from_csv, rows, exc) from None
    say(f"granted {qual} to {len(events)} worker(s) from {from_csv} ({_span(events)})", err=True)


@commands.command()
@handles_errors
def adjust(
    worker: WorkerArg,
    qualification: QualArg,
    by: Annotated[
        int, typer.Option("--by", metavar="N", help="Amount to add (negative to subtract).")
    ],
    initial: Annotated[
        int | None,
        typer.Option("--initial", metavar="N", help="Start from this if the worker holds none."),
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Add to WORKER's value of QUALIFICATION, atomically."""
    with opened() as ledger:
        event = ledger.adjust(
            worker, qualification, by=by, initial=initial, actor=actor, reason=reason, key=key
        )
        note(event, f"{qualification} of {event.worker} is now {event.value}")


@commands.command()
@handles_errors
def revoke(
    worker: WorkerArg,
    qualification: QualArg,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Take QUALIFICATION away from WORKER."""
    with opened() as ledger:
        event = ledger.revoke(worker, qualification, actor=actor, reason=reason, key=key)
        note(event, f"revoked {qualification} from {event.worker}")


@commands.command()
@handles_errors
def block(
    worker: Annotated[
        str | None,
        typer.Argument(
            metavar="WORKER",
            help="provider:id, e.g. mturk:A1B2C3D4E5F6G7 (not with --from-csv).",
            show_default=False,
        ),
    ] = None,
    scope: Scope = GLOBAL_SCOPE,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="ISO-8601",
            help="ISO 8601 end (UTC if no offset); default: for good.",
        ),
    ] = None,
    from_csv: FromCsv = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Block WORKER in a scope, until a time or for good.

    With --from-csv FILE, block every worker of the file (columns: worker, reason; a row
    without a reason takes --reason), in one transaction: a bad row is reported with its
    line and nothing is recorded.
    """
    _bulk_workers(worker, None, from_csv, "block")
    end_at = parse_time(until, "until")
    if from_csv is None:
        assert worker is not None
        with opened() as ledger:
            event = ledger.block(
                worker, scope=scope, until=end_at, actor=actor, reason=reason, key=key
            )
            end = f" until {event.until.isoformat()}" if event.until else ""
            note(event, f"blocked {event.worker} in {scope}{end}")
        return
    rows = _rows(from_csv, "reason")
    blocks = [(row.worker, None if row.extra is None else str(row.extra)) for row in rows]
    with opened() as ledger:
        try:
            events = ledger.block_many(
                blocks, scope=scope, until=end_at, actor=actor, reason=reason, key=key
            )
        except BatchError as exc:
            raise _refused(from_csv, rows, exc) from None
    end = f" until {end_at.isoformat()}" if end_at else ""
    say(
        f"blocked {len(events)} worker(s) from {from_csv} in {scope}{end} ({_span(events)})",
        err=True,
    )


@commands.command()
@handles_errors
def unblock(
    worker: WorkerArg,
    scope: Scope = GLOBAL_SCOPE,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Lift WORKER's block in a scope."""
    with opened() as ledger:
        event = ledger.unblock(worker, scope=scope, actor=actor, reason=reason, key=key)
        note(event, f"unblocked {event.worker} in {scope}")


@commands.command()
@handles_errors
def onboard(
    worker: WorkerArg,
    qualification: QualArg,
    passed: Annotated[bool, typer.Option("--passed/--failed", help="The onboarding outcome.")],
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Record an onboarding outcome (pass: QUAL=1; fail: QUAL=0 and QUAL-failed)."""
    with opened() as ledger:
        event = ledger.record_onboarding(
            worker, qualification, passed=passed, actor=actor, reason=reason, key=key
        )
    note(event, f"recorded that {event.worker} {'passed' if passed else 'failed'} {qualification}")


@commands.command("record-submission")
@handles_errors
def record_submission(
    worker: WorkerArg,
    task: Annotated[str, typer.Option("--task", metavar="ID", help="Task id (HIT id, study id).")],
    submission: Annotated[
        str, typer.Option("--submission", metavar="ID", help="Assignment or submission id.")
    ],
    answer: Annotated[
        str, typer.Option("--answer", metavar="JSON", help="The answer, as a JSON object.")
    ] = "{}",
    submitted_at: Annotated[
        str | None, typer.Option("--submitted-at", metavar="ISO-8601", help="ISO 8601.")
    ] = None,
    accepted_at: Annotated[
        str | None, typer.Option("--accepted-at", metavar="ISO-8601", help="ISO 8601.")
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Record that WORKER submitted work for a task."""
    payload = parse_answer(answer)
    with opened() as ledger:
        event = ledger.record_submission(
            worker,
            task=task,
            submission=submission,
            answer=payload,
            accepted_at=parse_time(accepted_at, "accepted_at"),
            submitted_at=parse_time(submitted_at, "submitted_at"),
            actor=actor,
            reason=reason,
            key=key,
        )
        note(event, f"recorded submission {submission} by {event.worker}")


def _refuse_constant(name: str) -> Any:
    raise InvalidInputError("answer", f"not JSON: {name} is not a JSON number")


def _exact_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidInputError("answer", f"not JSON: {quoted(text)} is too large for a number")
    return number


def parse_answer(text: str) -> dict[str, Any]:
    """The --answer JSON object, with its integers exact (orjson would turn one beyond 64
    bits into a float); the ledger then refuses what it cannot keep exactly."""
    try:
        payload = json.loads(text, parse_constant=_refuse_constant, parse_float=_exact_float)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            "answer", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except InvalidInputError:
        raise
    except RecursionError:
        raise InvalidInputError("answer", "not JSON this ledger keeps: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InvalidInputError("answer", f"not JSON this ledger keeps: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("answer", "must be a JSON object")
    return payload


Submissions = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="SUBMISSION...",
        help="Assignment or submission ids (all or none).",
        show_default=False,
    ),
]
AllOfTask = Annotated[
    bool, typer.Option("--all", help="Every submission of --task not reviewed yet.")
]
TaskOption = Annotated[str | None, typer.Option("--task", metavar="T", help="A task id.")]
Feedback = Annotated[
    str | None, typer.Option("--feedback", metavar="F", help="Shown to the worker.")
]


def _chosen(ledger: Any, submissions: list[str] | None, every: bool, task: str | None) -> list[str]:
    """The submissions named, or with ``--all`` every one of ``--task`` not reviewed yet."""
    if every:
        if submissions:
            raise UsageError("give SUBMISSION... or --all --task T, not both")
        if task is None:
            raise UsageError("--all needs --task T (the task whose submissions to review)")
        return [item.submission for item in ledger.review_queue(task)]
    if task is not None:
        raise UsageError("--task goes with --all")
    if not submissions:
        raise _missing("SUBMISSION...")
    return submissions


def _reviewed(events: Any, done: str, task: str | None) -> None:
    if isinstance(events, list):
        if not events:
            say(f"nothing waits for review in task {task}; nothing recorded", err=True)
            return
        first, last = events[0].position, events[-1].position
        say(f"{done} {len(events)} submissions (events {first} to {last})", err=True)
    else:
        note(events, f"{done} {events.submission} by {events.worker}")


@commands.command()
@handles_errors
def approve(
    submissions: Submissions = None,
    every: AllOfTask = False,
    task: TaskOption = None,
    feedback: Feedback = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Approve SUBMISSIONs, or --all of a task (also overturns a rejection)."""
    with opened() as ledger:
        chosen = _chosen(ledger, submissions, every, task)
        target = chosen[0] if len(chosen) == 1 and not every else chosen
        events = ledger.approve(target, feedback=feedback, actor=actor, reason=reason, key=key)
        _reviewed(events, "approved", task)


@commands.command()
@handles_errors
def reject(
    submissions: Submissions = None,
    every: AllOfTask = False,
    task: TaskOption = None,
    feedback: Feedback = None,
    category: Annotated[
        str | None,
        typer.Option(
            "--category", metavar="C", help="Prolific's rejection_category, e.g. LOW_EFFORT."
        ),
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Reject SUBMISSIONs, or --all of a task (MTurk needs --feedback; Prolific --category too)."""
    with opened() as ledger:
        chosen = _chosen(ledger, submissions, every, task)
        target = chosen[0] if len(chosen) == 1 and not every else chosen
        events = ledger.reject(
            target, feedback=feedback, category=category, actor=actor, reason=reason, key=key
        )
        _reviewed(events, "rejected", task)
