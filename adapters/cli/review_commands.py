"""The review commands: ``soft-reject``, ``bonus`` and the ``review`` group (queue, run,
flag, unflag, stats, skills). ``approve`` and ``reject`` are in :mod:`.writes`.

Each is a thin skin over the ledger's review API (:mod:`crowdledger.adapters.ledger.
review_commands`); ``--json`` prints the documents that API's ``as_dict()`` gives.
The provider half of the group (``review push``, ``review settle``) is added here too.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from crowdledger.adapters.cli.support import (
    Actor,
    AsJson,
    Key,
    Reason,
    RulesOption,
    WorkerArg,
    command_group,
    emit_json,
    handles_errors,
    note,
    opened,
    say,
)

__all__ = ["commands", "review_app"]

commands = command_group()
review_app = command_group(
    "Review submissions: the queue, a run of the rule file's policies, flags, statistics, skills."
)

Submissions = Annotated[
    list[str],
    typer.Argument(metavar="SUBMISSION...", help="Assignment or submission ids (all or none)."),
]
TaskOption = Annotated[str | None, typer.Option("--task", metavar="T", help="Only this task.")]
Feedback = Annotated[
    str | None, typer.Option("--feedback", metavar="F", help="Shown to the worker.")
]


def _one_or_many(submissions: list[str]) -> str | list[str]:
    return submissions[0] if len(submissions) == 1 else submissions


def _done(events: Any, done: str) -> None:
    if isinstance(events, list):
        first, last = events[0].position, events[-1].position
        say(f"{done} {len(events)} submissions (events {first} to {last})", err=True)
    else:
        note(events, f"{done} {events.submission} by {events.worker}")


@commands.command("soft-reject")
@handles_errors
def soft_reject(
    submissions: Submissions,
    feedback: Feedback = None,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
) -> None:
    """Soft-reject SUBMISSIONs: paid, but below the quality bar."""
    with opened() as ledger:
        events = ledger.soft_reject(
            _one_or_many(submissions), feedback=feedback, actor=actor, reason=reason, key=key
        )
        _done(events, "soft-rejected")


@commands.command()
@handles_errors
def bonus(
    worker: WorkerArg,
    amount: Annotated[
        str, typer.Option("--amount", metavar="AMOUNT", help="Exact, whole cents, e.g. 0.50.")
    ],
    submission: Annotated[
        str, typer.Option("--submission", metavar="S", help="The worker's submission it is for.")
    ],
    reason: Annotated[
        str, typer.Option("--reason", metavar="R", help="Why; the worker is shown it.")
    ],
    currency: Annotated[
        str, typer.Option("--currency", metavar="CUR", help="ISO 4217 code.")
    ] = "USD",
    key: Key = None,
    actor: Actor = None,
) -> None:
    """Award WORKER a bonus for a submission; prints the bonus's event id."""
    with opened() as ledger:
        event = ledger.bonus(
            worker,
            amount=amount,
            currency=currency,
            submission=submission,
            reason=reason,
            key=key,
            actor=actor,
        )
        note(event, f"bonus {event.amount} {event.currency} to {event.worker} for {submission}")
        say(event.event_id)


@review_app.command("queue")
@handles_errors
def review_queue(task: TaskOption = None, as_json: AsJson = False) -> None:
    """List the submissions waiting for review: pending and flagged (with the reason)."""
    with opened(create=False) as ledger:
        items = ledger.review_queue(task)
    if as_json:
        emit_json([item.as_dict() for item in items])
        return
    for item in items:
        why = "" if item.reason is None else f"  {item.reason}"
        say(
            f"{item.submission}  {item.task}  {item.worker}  {item.status}  "
            f"{item.submitted_at.isoformat()}{why}"
        )
    say(f"{len(items)} waiting for review", err=True)


@review_app.command("run")
@handles_errors
def review_run(rules: RulesOption, task: TaskOption = None, as_json: AsJson = False) -> None:
    """Apply the rule file's review policies to everything due; say what was decided."""
    with opened() as ledger:
        run = ledger.review(rules, task=task)
    document = run.as_dict()
    if as_json:
        emit_json(document)
        return
    for outcome, ids in document.items():
        say(f"{outcome.replace('_', '-')}: {len(ids)}{'  ' + ' '.join(ids) if ids else ''}")


@review_app.command("flag")
@handles_errors
def review_flag(
    submissions: Submissions,
    reason: Annotated[str, typer.Option("--reason", metavar="R", help="What to look at.")],
    actor: Actor = None,
    key: Key = None,
) -> None:
    """Flag SUBMISSIONs for a person to review, saying why."""
    with opened() as ledger:
        events = ledger.flag(_one_or_many(submissions), reason=reason, actor=actor, key=key)
        _done(events, "flagged")


@review_app.command("unflag")
@handles_errors
def review_unflag(
    submissions: Submissions, actor: Actor = None, reason: Reason = None, key: Key = None
) -> None:
    """Take the flag off SUBMISSIONs: they wait for review as any other."""
    with opened() as ledger:
        events = ledger.unflag(_one_or_many(submissions), actor=actor, reason=reason, key=key)
        _done(events, "unflagged")


@review_app.command("stats")
@handles_errors
def review_stats(
    task: TaskOption = None,
    worker: Annotated[
        str | None, typer.Option("--worker", metavar="W", help="Only this worker.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Review counts and response times (accepted to submitted), by task and worker."""
    with opened(create=False) as ledger:
        stats = ledger.review_stats(task=task, worker=worker)
    document = stats.as_dict()
    if as_json:
        emit_json(document)
        return
    for name in ("submitted", "approved", "rejected", "soft_rejected", "pending"):
        say(f"{name.replace('_', '-')}: {document[name]}")
    times = stats.response_seconds
    if times.count:
        say(
            f"response seconds: {times.count} timed, median {times.median:g}, "
            f"p90 {times.p90:g}, min {times.min:g}, max {times.max:g}"
        )
    else:
        say("response seconds: none timed (no accepted_at recorded)")


@review_app.command("skills")
@handles_errors
def review_skills(
    field: Annotated[
        str, typer.Option("--field", metavar="F", help="The answer field holding the label.")
    ],
    qualification: Annotated[
        str,
        typer.Option("--qualification", metavar="Q", help="Where the skill (percent) goes."),
    ],
    method: Annotated[
        str,
        typer.Option("--method", metavar="M", help="dawid-skene or glad (needs crowd-kit)."),
    ] = "dawid-skene",
    task: Annotated[
        str | None, typer.Option("--task", metavar="T", help="Only these tasks (id or glob).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate and show; record nothing.")
    ] = False,
    actor: Actor = None,
    reason: Reason = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Estimate each worker's skill from all answers and grant it as a qualification."""
    with opened(create=not dry_run) as ledger:
        estimate = ledger.estimate_skills(
            field=field,
            qualification=qualification,
            method=method,
            tasks=task,
            dry_run=dry_run,
            actor=actor,
            reason=reason,
            key=key,
        )
    if as_json:
        emit_json(estimate.as_dict())
        return
    for change in estimate.changes:
        was = "-" if change.previous is None else str(change.previous)
        mark = "" if change.changed else "  (unchanged)"
        say(f"{change.worker}  {change.value}%  was {was}  {change.answers} answers{mark}")
    verb = "would grant" if dry_run else "granted"
    changed = sum(change.changed for change in estimate.changes)
    say(
        f"{estimate.method.replace('_', '-')}: {estimate.answers} answers on {estimate.tasks} "
        f"tasks; {verb} {qualification} to {changed} of {len(estimate.changes)} workers",
        err=True,
    )


# The provider half of the group (helper review-provider): review push, review settle.
from crowdledger.adapters.cli.review_provider_commands import (  # noqa: E402
    review_push,
    review_settle,
)

review_app.command("push")(review_push)
review_app.command("settle")(review_settle)
