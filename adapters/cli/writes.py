"""The commands that record what happened to workers: grants, blocks, submissions, reviews."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from crowdledger.adapters.cli.support import (
    Actor,
    Key,
    QualArg,
    Reason,
    Scope,
    SubmissionArg,
    WorkerArg,
    command_group,
    handles_errors,
    note,
    opened,
    parse_time,
)
from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.identifiers import GLOBAL_SCOPE

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
            typer.echo(f"{qualification} was already defined; nothing changed", err=True)


@commands.command()
@handles_errors
def grant(
    worker: WorkerArg,
    qualification: QualArg,
    value: Annotated[int, typer.Option("--value", metavar="N", help="Integer value.")] = 1,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Grant QUALIFICATION to WORKER (replacing any earlier value)."""
    with opened() as ledger:
        event = ledger.grant(
            worker, qualification, value=value, actor=actor, reason=reason, key=key
        )
        note(event, f"granted {qualification}={event.value} to {event.worker}")


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
    worker: WorkerArg,
    scope: Scope = GLOBAL_SCOPE,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="ISO-8601",
            help="ISO 8601 end (UTC if no offset); default: for good.",
        ),
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Block WORKER in a scope, until a time or for good."""
    with opened() as ledger:
        event = ledger.block(
            worker,
            scope=scope,
            until=parse_time(until, "until"),
            actor=actor,
            reason=reason,
            key=key,
        )
        end = f" until {event.until.isoformat()}" if event.until else ""
        note(event, f"blocked {event.worker} in {scope}{end}")


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
    try:
        payload = orjson.loads(answer)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError("answer", f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("answer", "must be a JSON object")
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


@commands.command()
@handles_errors
def approve(
    submission: SubmissionArg,
    feedback: Annotated[
        str | None, typer.Option("--feedback", metavar="TEXT", help="Shown to the worker.")
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Approve SUBMISSION (also overturns a rejection)."""
    with opened() as ledger:
        event = ledger.approve(submission, feedback=feedback, actor=actor, reason=reason, key=key)
        note(event, f"approved {submission} by {event.worker}")


@commands.command()
@handles_errors
def reject(
    submission: SubmissionArg,
    feedback: Annotated[
        str | None, typer.Option("--feedback", metavar="TEXT", help="Shown to the worker.")
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Reject SUBMISSION."""
    with opened() as ledger:
        event = ledger.reject(submission, feedback=feedback, actor=actor, reason=reason, key=key)
        note(event, f"rejected {submission} by {event.worker}")
