"""``crowdledger rules`` and ``crowdledger automations``: rule files and what reacts to events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crowdledger.adapters.cli.rules_input import opened_with_rules
from crowdledger.adapters.cli.support import (
    Actor,
    AsJson,
    Reason,
    RulesOption,
    command_group,
    emit_json,
    handles_errors,
    note,
    opened,
    say,
)

__all__ = ["automations_app", "rules_app"]


rules_app = command_group("Check rule files.")


@rules_app.command("check")
@handles_errors
def rules_check(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A rule file (YAML or JSON).")],
) -> None:
    """Check FILE: its form, and that every qualification it names is defined."""
    # One pass: structure, names and automations, every problem sorted by place.
    with opened_with_rules(file) as (_ledger, ruleset):
        pass
    say(f"{file}: rule set {ruleset.name!r} is valid ({ruleset.digest})", err=True)


automations_app = command_group("Install, list and remove automations.")


@automations_app.command("install")
@handles_errors
def automations_install(rules: RulesOption, actor: Actor = None, reason: Reason = None) -> None:
    """Make the automations declared in the rule file react to new events."""
    with opened_with_rules(rules, create=True) as (ledger, ruleset):
        event = ledger.install_automations(ruleset, actor=actor, reason=reason)
    if event is None:
        say(f"the automations of {ruleset.name!r} are already installed as they are", err=True)
    else:
        note(event, f"installed the automations of {ruleset.name!r}")


@automations_app.command("list")
@handles_errors
def automations_list(as_json: AsJson = False) -> None:
    """List the installed rule sets and their automations."""
    with opened(create=False) as ledger:
        installed = ledger.installed_automations()
    if as_json:
        emit_json(installed)
        return
    for ruleset, names in installed.items():
        say(f"{ruleset}: {', '.join(names)}")


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
