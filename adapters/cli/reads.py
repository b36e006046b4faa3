"""The commands that read the ledger: a worker's state and history, decisions, lists."""

from __future__ import annotations

from typing import Annotated, Any

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
)
from crowdledger.adapters.ledger.reads import ReadAPI
from crowdledger.adapters.store.codec import event_to_document

__all__ = ["commands"]

commands = command_group()


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


@commands.command()
@handles_errors
def history(worker: WorkerArg, as_json: AsJson = False) -> None:
    """Every event about WORKER, oldest first."""
    with opened(create=False) as ledger:
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


@commands.command()
@handles_errors
def workers(as_json: AsJson = False) -> None:
    """List every worker the ledger has seen."""
    with opened(create=False) as ledger:
        found = ledger.workers()
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            typer.echo(worker)


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
    from crowdledger.adapters.ledger.rule_files import RuleSet  # yaml, pydantic: only here

    ruleset = RuleSet.load(rules)
    when = parse_time(as_of, "as_of")
    with opened(create=False) as ledger:
        decision = ledger.check(worker, ruleset, as_of=when)
    if as_json:
        emit_json(decision.model_dump(mode="json"))
    else:
        typer.echo(decision.explain())
    raise typer.Exit(0 if decision.eligible else EXIT_NO)


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
    from crowdledger.adapters.ledger.rule_files import RuleSet  # yaml, pydantic: only here

    ruleset = RuleSet.load(rules)
    when = parse_time(as_of, "as_of")
    with opened(create=False) as ledger:
        found = sorted(ledger.eligible_workers(ruleset, as_of=when))
    if as_json:
        emit_json(found)
    else:
        for worker in found:
            typer.echo(worker)
    typer.echo(f"{len(found)} eligible under {ruleset.name}", err=True)
