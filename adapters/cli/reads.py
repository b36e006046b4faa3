"""The commands that read the ledger: a worker's state and history, decisions, lists."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from crowdledger.adapters.cli.support import (
    EXIT_NO,
    AsJson,
    RulesOption,
    WorkerArg,
    command_group,
    emit_json,
    handles_errors,
    opened,
    parse_time,
    say,
)
from crowdledger.adapters.cli.text import printable
from crowdledger.adapters.ledger.reads import ReadAPI, show_document
from crowdledger.adapters.store.codec import event_to_document
from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.identifiers import GLOBAL_SCOPE

if TYPE_CHECKING:
    from crowdledger.rules.decision import Decision, Reason

__all__ = ["commands"]

commands = command_group()


# What `show --json` prints; the HTTP API's GET /api/v1/workers/{worker} serves the same.
_show_document = show_document


@commands.command()
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
    with opened(create=False) as ledger:
        view: ReadAPI = ledger if when is None else ledger.as_of(when)
        doc = _show_document(view, worker)
    if as_json:
        emit_json(doc)
        return
    say(f"worker      {doc['worker']}" + (f"   (as of {when.isoformat()})" if when else ""))
    quals = doc["qualifications"]
    say("qualified   " + (", ".join(f"{k}={v}" for k, v in quals.items()) or "-"))
    if doc["blocks"]:
        for b in doc["blocks"]:
            end = f" until {b['until']}" if b["until"] else ""
            say(f"blocked     {b['scope']}{end} (by {b['actor']}: {b['reason'] or '-'})")
    else:
        say("blocked     no")
    s = doc["stats"]
    rate = "-" if s["approval_rate"] is None else f"{s['approval_rate']:.1f}%"
    say(
        f"work        {s['submitted']} submitted, {s['approved']} approved, "
        f"{s['rejected']} rejected, approval rate {rate}"
    )


_DETAIL_FIELDS = ("qualification", "value", "scope", "until", "task", "submission", "feedback")


@commands.command()
@handles_errors
def history(worker: WorkerArg, as_json: AsJson = False) -> None:
    """Every event about WORKER, oldest first."""
    with opened(create=False) as ledger:
        events = ledger.history(worker)
    from crowdledger.adapters.sync.redaction import redacted_document

    docs = [redacted_document(event_to_document(e)) for e in events]
    if as_json:
        emit_json(docs)
        return
    for doc in docs:
        details = " ".join(
            f"{k}={doc[k]}" for k in _DETAIL_FIELDS if k in doc and doc[k] is not None
        )
        why = f" - {doc['reason']}" if doc.get("reason") else ""
        say(
            f"{doc['position']:>8}  {doc['occurred_at']}  {doc['type']:<22} {details}  [{doc['actor']}]{why}"
        )


_STATS_COLUMNS = ("submitted", "approved", "rejected", "pending", "approval_rate")


def _write_workers_csv(ledger: ReadAPI) -> None:
    """worker, one column per defined qualification (its value, empty if not held),
    blocked (a global block in force), then the statistics; quoted as CSV needs."""
    import csv

    names = sorted(ledger.definitions())
    fixed = {"worker", "blocked", *_STATS_COLUMNS}
    header = [
        "worker",
        *(f"qualification:{n}" if n in fixed else n for n in names),
        "blocked",
        *_STATS_COLUMNS,
    ]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(header)
    for worker, values, blocks, stats in ledger.overview():
        rate = stats.approval_rate
        out.writerow(
            [
                worker,
                *(values.get(n, "") for n in names),
                "true" if any(b.scope == GLOBAL_SCOPE for b in blocks) else "false",
                stats.submitted,
                stats.approved,
                stats.rejected,
                stats.pending,
                "" if rate is None else f"{rate:.1f}",
            ]
        )
    sys.stdout.flush()


@commands.command()
@handles_errors
def workers(
    as_json: AsJson = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv",
            help="A CSV table: worker, each qualification's value, blocked, statistics.",
        ),
    ] = False,
) -> None:
    """List every worker the ledger has seen."""
    if as_json and as_csv:
        raise InvalidInputError("csv", "give --json or --csv, not both")
    with opened(create=False) as ledger:
        if as_csv:
            _write_workers_csv(ledger)
            return
        found = ledger.workers()
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            say(worker)


@commands.command()
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
    from crowdledger.adapters.cli.rules_input import opened_with_rules  # yaml, pydantic: only here

    when = parse_time(as_of, "as_of")
    with opened_with_rules(rules) as (ledger, ruleset):
        decision = ledger.check(worker, ruleset, as_of=when)
    if as_json:
        emit_json(decision.model_dump(mode="json"))
    else:
        typer.echo(_printable_decision(decision).explain())
    raise typer.Exit(0 if decision.eligible else EXIT_NO)


def _printable_decision(decision: Decision) -> Decision:
    """The decision with every text it explains made :func:`printable` (a reason or an
    actor holding a newline would otherwise print a line of its own)."""

    def clean(reason: Reason) -> Reason:
        return reason.model_copy(
            update={
                "clause": printable(reason.clause),
                "subject": printable(reason.subject),
                "message": printable(reason.message),
                "children": tuple(clean(child) for child in reason.children),
            }
        )

    return decision.model_copy(
        update={
            "worker": printable(decision.worker),
            "ruleset": printable(decision.ruleset),
            "reasons": tuple(clean(reason) for reason in decision.reasons),
        }
    )


@commands.command()
@handles_errors
def eligible(
    rules: RulesOption,
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="ISO-8601", help="Decide as of this time.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List every known worker the rules admit."""
    from crowdledger.adapters.cli.rules_input import opened_with_rules  # yaml, pydantic: only here

    when = parse_time(as_of, "as_of")
    with opened_with_rules(rules) as (ledger, ruleset):
        found = sorted(ledger.eligible_workers(ruleset, as_of=when))
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            say(worker)
    say(f"{len(found)} eligible under {ruleset.name}", err=True)
