"""The ``crowdledger`` command: a thin skin over :class:`~crowdledger.Ledger`.

Each command calls the library exactly as the README's Python examples do, prints data on
stdout (one JSON document with ``--json``) and messages on stderr. Exit status: 0 done;
1 the answer is no (``check``: not eligible); 2 bad input, a refused command or usage
(nothing was recorded); 3 the ledger database could not be opened or reached; 4 a
provider refused a sync command or could not be reached (``sync``, in
:mod:`crowdledger.adapters.cli.sync_commands`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from crowdledger.adapters.cli.support import (
    EXIT_NO,
    EXIT_STORE,
    STATE,
    Actor,
    AsJson,
    Key,
    QualArg,
    Reason,
    RulesOption,
    Scope,
    SubmissionArg,
    WorkerArg,
    emit_json,
    handles_errors,
    note,
    opened,
    parse_time,
)
from crowdledger.adapters.cli.sync_commands import sync_app
from crowdledger.adapters.ledger.reads import ReadAPI
from crowdledger.adapters.ledger.rule_files import RuleSet
from crowdledger.adapters.store.codec import event_to_document
from crowdledger.adapters.store.url import default_url, redact
from crowdledger.domain.errors import InvalidInputError, StoreError
from crowdledger.domain.identifiers import GLOBAL_SCOPE

__all__ = ["app", "main"]

app = typer.Typer(
    name="crowdledger",
    help="An audit-grade, event-sourced ledger of crowd workers' qualifications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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
) -> None:
    """An audit-grade, event-sourced ledger of crowd workers' qualifications."""
    STATE.db = db or default_url()


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command("record-submission")
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


@app.command()
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


@app.command()
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


def _show_document(view: ReadAPI, worker: str) -> dict[str, Any]:
    blocks = view.blocks(worker)
    return {
        "worker": worker,
        "qualifications": view.qualifications(worker),
        "blocked": view.is_blocked(worker),
        "blocks": [
            {
                "scope": b.scope,
                "until": None if b.until is None else b.until.isoformat(),
                "since": b.occurred_at.isoformat(),
                "actor": b.actor,
                "reason": b.reason,
                "position": b.position,
            }
            for b in blocks
        ],
        "stats": dict(view.stats(worker)),
    }


@app.command()
@handles_errors
def show(
    worker: WorkerArg,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", metavar="ISO-8601", help="Show the state at this ISO 8601 time."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Show WORKER's qualifications, blocks and statistics (now, or as of a time)."""
    when = parse_time(as_of, "as_of")
    with opened() as ledger:
        view: ReadAPI = ledger if when is None else ledger.as_of(when)
        doc = _show_document(view, worker)
    if as_json:
        emit_json(doc)
        return
    typer.echo(f"worker      {doc['worker']}" + (f"   (as of {when.isoformat()})" if when else ""))
    quals = doc["qualifications"]
    typer.echo("qualified   " + (", ".join(f"{k}={v}" for k, v in quals.items()) or "-"))
    if doc["blocks"]:
        for b in doc["blocks"]:
            end = f" until {b['until']}" if b["until"] else ""
            typer.echo(f"blocked     {b['scope']}{end} (by {b['actor']}: {b['reason'] or '-'})")
    else:
        typer.echo("blocked     no")
    s = doc["stats"]
    rate = "-" if s["approval_rate"] is None else f"{s['approval_rate']:.1f}%"
    typer.echo(
        f"work        {s['submitted']} submitted, {s['approved']} approved, "
        f"{s['rejected']} rejected, approval rate {rate}"
    )


_DETAIL_FIELDS = ("qualification", "value", "scope", "until", "task", "submission", "feedback")


@app.command()
@handles_errors
def history(worker: WorkerArg, as_json: AsJson = False) -> None:
    """Every event about WORKER, oldest first."""
    with opened() as ledger:
        events = ledger.history(worker)
    docs = [event_to_document(e) for e in events]
    if as_json:
        emit_json(docs)
        return
    for doc in docs:
        details = " ".join(
            f"{k}={doc[k]}" for k in _DETAIL_FIELDS if k in doc and doc[k] is not None
        )
        why = f" - {doc['reason']}" if doc.get("reason") else ""
        typer.echo(
            f"{doc['position']:>8}  {doc['occurred_at']}  {doc['type']:<22} {details}  [{doc['actor']}]{why}"
        )


@app.command()
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


@app.command()
@handles_errors
def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="File to write [default: stdout]."),
    ] = None,
) -> None:
    """Write every event as JSON Lines, in record order."""
    with opened() as ledger:
        if output is None:
            count = ledger.export(sys.stdout.buffer)
            sys.stdout.flush()
        else:
            count = ledger.export(output)
    typer.echo(f"exported {count} events", err=True)


@app.command("import")
@handles_errors
def import_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A file written by `crowdledger export`.")
    ],
) -> None:
    """Append the events of FILE (what export wrote); all or nothing."""
    with opened() as ledger:
        count = ledger.import_(file)
    typer.echo(f"imported {count} new events from {file}", err=True)


@app.command()
@handles_errors
def workers(as_json: AsJson = False) -> None:
    """List every worker the ledger has seen."""
    with opened() as ledger:
        found = ledger.workers()
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            typer.echo(worker)


@app.command()
@handles_errors
def check(
    worker: WorkerArg,
    rules: RulesOption,
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="ISO-8601", help="Decide as of this time.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Decide whether WORKER may work under the rules, and say why (exit 1: not eligible)."""
    ruleset = RuleSet.load(rules)
    when = parse_time(as_of, "as_of")
    with opened() as ledger:
        decision = ledger.check(worker, ruleset, as_of=when)
    if as_json:
        emit_json(decision.model_dump(mode="json"))
    else:
        typer.echo(decision.explain())
    raise typer.Exit(0 if decision.eligible else EXIT_NO)


@app.command()
@handles_errors
def eligible(
    rules: RulesOption,
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="ISO-8601", help="Decide as of this time.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List every known worker the rules admit."""
    ruleset = RuleSet.load(rules)
    when = parse_time(as_of, "as_of")
    with opened() as ledger:
        found = sorted(ledger.eligible_workers(ruleset, as_of=when))
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            typer.echo(worker)
    typer.echo(f"{len(found)} eligible under {ruleset.name}", err=True)


rules_app = typer.Typer(help="Check rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
@handles_errors
def rules_check(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A rule file (YAML or JSON).")],
) -> None:
    """Check FILE: its form, and that every qualification it names is defined."""
    ruleset = RuleSet.load(file)
    with opened() as ledger:
        ruleset.check_names(ledger.definitions())
    typer.echo(f"{file}: rule set {ruleset.name!r} is valid ({ruleset.digest})", err=True)


automations_app = typer.Typer(help="Install, list and remove automations.", no_args_is_help=True)
app.add_typer(automations_app, name="automations")
app.add_typer(sync_app, name="sync")


@automations_app.command("install")
@handles_errors
def automations_install(rules: RulesOption, actor: Actor = None, reason: Reason = None) -> None:
    """Make the automations declared in the rule file react to new events."""
    ruleset = RuleSet.load(rules)
    with opened() as ledger:
        event = ledger.install_automations(ruleset, actor=actor, reason=reason)
    if event is None:
        typer.echo(
            f"the automations of {ruleset.name!r} are already installed as they are", err=True
        )
    else:
        note(event, f"installed the automations of {ruleset.name!r}")


@automations_app.command("list")
@handles_errors
def automations_list(as_json: AsJson = False) -> None:
    """List the installed rule sets and their automations."""
    with opened() as ledger:
        installed = ledger.installed_automations()
    if as_json:
        emit_json(installed)
        return
    for ruleset, names in installed.items():
        typer.echo(f"{ruleset}: {', '.join(names)}")


@automations_app.command("remove")
@handles_errors
def automations_remove(
    ruleset: Annotated[str, typer.Argument(metavar="RULESET", help="The rule set's name.")],
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Stop a rule set's automations from reacting to new events."""
    with opened() as ledger:
        event = ledger.remove_automations(ruleset, actor=actor, reason=reason)
    note(event, f"removed the automations of {ruleset!r}")


@app.command()
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except StoreError as exc:  # raised while opening, outside a command's own handler
        typer.echo(f"Error: {redact(str(exc))}", err=True)
        raise SystemExit(EXIT_STORE) from None


if __name__ == "__main__":
    main()
