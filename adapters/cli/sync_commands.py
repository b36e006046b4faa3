"""``crowdledger sync``: plan, apply, status, pull, ingest and cancel against MTurk or
Prolific.

MTurk credentials come from the usual AWS environment (``AWS_ACCESS_KEY_ID`` ...,
profiles); the Prolific token from ``PROLIFIC_API_TOKEN``. Neither is ever printed: every
provider error is redacted before it is shown (and before it is stored).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import typer

from crowdledger.adapters.cli.progress import Quiet, progress
from crowdledger.adapters.cli.provider_options import (
    BaseUrl,
    EndpointUrl,
    ProviderName,
    ProviderOption,
    Sandbox,
    Timeout,
)
from crowdledger.adapters.cli.rules_input import opened_with_rules
from crowdledger.adapters.cli.support import (
    EXIT_PROVIDER,
    Actor,
    AsJson,
    Reason,
    RulesOption,
    command_group,
    emit_json,
    fail,
    handles_errors,
    opened,
    say,
)
from crowdledger.adapters.ledger.application import Ledger
from crowdledger.adapters.mturk.provider import (
    PRODUCTION_ENDPOINT,
    SANDBOX_ENDPOINT,
    MTurkSync,
    mturk_client,
    mturk_target,
)
from crowdledger.adapters.prolific.provider import (
    BASE_URL,
    DEFAULT_TIMEOUT,
    ProlificSync,
    prolific_client,
    prolific_target,
)
from crowdledger.adapters.sync.engine import (
    ApplyReport,
    CancelReport,
    Plan,
    ProviderError,
    Sync,
    SyncStatus,
    cancel_commands,
    command_target,
    known_targets,
    sync_status,
)
from crowdledger.adapters.sync.redaction import redact
from crowdledger.rules.gates import DEFAULT_ACTIONS_GUARDED

__all__ = ["sync_app"]

sync_app = command_group(
    "Keep MTurk and Prolific in line with the ledger: plan, apply, status, pull, ingest, cancel."
)

P = ParamSpec("P")
R = TypeVar("R")


def _redacted(command: Callable[P, R]) -> Callable[P, R]:
    """The last line before the terminal: a provider's error is printed redacted."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ProviderError as exc:
            raise ProviderError(redact(str(exc)), code=exc.code, retryable=exc.retryable) from None

    return wrapper


ActionsGuarded = Annotated[
    str,
    typer.Option(
        "--actions-guarded",
        metavar="A",
        help="MTurk: Accept, PreviewAndAccept or DiscoverPreviewAndAccept.",
    ),
]
Workspace = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        metavar="ID",
        help="Prolific: the workspace of the participant groups [default: $PROLIFIC_WORKSPACE_ID].",
    ),
]
Study = Annotated[
    str | None,
    typer.Option("--study", metavar="ID", help="Prolific: the study whose filters to keep."),
]


@dataclass
class _Target:
    """The provider options of one invocation."""

    provider: ProviderName
    sandbox: bool = False
    endpoint_url: str | None = None
    actions_guarded: str = DEFAULT_ACTIONS_GUARDED
    base_url: str = BASE_URL
    workspace: str | None = None
    study: str | None = None
    actor: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def target(self) -> str:
        """The provider account these options name, without credentials."""
        if self.provider is ProviderName.mturk:
            official = SANDBOX_ENDPOINT if self.sandbox else PRODUCTION_ENDPOINT
            return mturk_target(self.endpoint_url or official, True if self.sandbox else None)
        return prolific_target(self.base_url, self._workspace())

    def _workspace(self) -> str:
        workspace = self.workspace or os.environ.get("PROLIFIC_WORKSPACE_ID")
        if not workspace:
            raise fail("--workspace (or PROLIFIC_WORKSPACE_ID) is required for Prolific")
        return workspace

    def sync(self, ledger: Ledger) -> MTurkSync | ProlificSync:
        if self.provider is ProviderName.mturk:
            client = mturk_client(
                sandbox=self.sandbox, endpoint_url=self.endpoint_url, timeout=self.timeout
            )
            return MTurkSync(
                ledger,
                client,
                sandbox=True if self.sandbox else None,  # else: as the endpoint says
                actions_guarded=self.actions_guarded,
                actor=self.actor,
            )
        token = os.environ.get("PROLIFIC_API_TOKEN")
        if not token:
            raise fail("set PROLIFIC_API_TOKEN to a Prolific API token")
        workspace = self._workspace()
        return ProlificSync(
            ledger,
            prolific_client(token, base_url=self.base_url, timeout=self.timeout),
            workspace=workspace,
            study=self.study,
            actor=self.actor,
        )


def _print_plan(plan: Plan) -> None:
    say(f"{plan.target}: rule set {plan.ruleset!r}")
    for command in plan.pending:
        say(f"  pending  {command.describe()}")
    for command in plan.commands:
        say(f"  {command.describe()}")
    if not plan.commands and not plan.pending:
        say("  nothing to do: the provider holds what the ledger says it should")
    for note in plan.notes:
        say(f"  note: {note}")


def _print_report(report: ApplyReport) -> None:
    say(
        f"{report.target}: queued {report.queued}, sent {report.sent}, "
        f"succeeded {report.succeeded}, failed {len(report.failed)}, "
        f"left pending {report.left_pending}"
    )
    for outcome in report.failed:
        say(f"  failed   {outcome.command.describe()}: {redact(outcome.error or '')}")
    for outcome in report.unanswered:
        say(f"  no answer {outcome.command.describe()}: {redact(outcome.error or '')}")
    if report.stopped:
        say(f"  stopped: {report.stopped}")


def _print_status(status: SyncStatus) -> None:
    counts = status.counts
    cancelled = counts.get("cancelled", 0)
    say(
        f"{status.target}: pending {counts.get('pending', 0)}, failed {counts.get('failed', 0)}, "
        f"done {counts.get('succeeded', 0)}" + (f", cancelled {cancelled}" if cancelled else "")
    )
    # Errors recorded before redaction existed are redacted on the way out too.
    for row in status.pending:
        line = f"  pending  {row.command_id}  {row.kind} {row.key} {row.subject} ({row.operation})"
        say(f"{line}: last try: {redact(row.error)}" if row.error else line)
    for row in status.failed:
        say(
            f"  failed   {row.command_id}  {row.kind} {row.key} {row.subject} "
            f"({row.operation}): {redact(row.error or '')}"
        )


def _print_cancelled(report: CancelReport) -> None:
    say(f"{report.target}: cancelled {len(report.cancelled)}")
    for row in report.cancelled:
        say(f"  cancelled {row.command_id}  {row.kind} {row.key} {row.subject} ({row.operation})")
    for line in report.notes:
        say(f"  note: {line}")


@sync_app.command("plan")
@handles_errors
@_redacted
def sync_plan(
    provider: ProviderOption,
    rules: RulesOption,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    actions_guarded: ActionsGuarded = DEFAULT_ACTIONS_GUARDED,
    base_url: BaseUrl = BASE_URL,
    workspace: Workspace = None,
    study: Study = None,
) -> None:
    """Show the commands that would bring the provider in line; sends nothing."""
    target = _Target(provider, sandbox, endpoint_url, actions_guarded, base_url, workspace, study)
    with opened_with_rules(rules) as (ledger, ruleset):
        plan = target.sync(ledger).plan(ruleset)
    if as_json:
        emit_json(plan.to_json())
    else:
        _print_plan(plan)


@sync_app.command("apply")
@handles_errors
@_redacted
def sync_apply(
    provider: ProviderOption,
    rules: RulesOption,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    actions_guarded: ActionsGuarded = DEFAULT_ACTIONS_GUARDED,
    base_url: BaseUrl = BASE_URL,
    workspace: Workspace = None,
    study: Study = None,
    actor: Actor = None,
    reason: Reason = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    quiet: Quiet = False,
) -> None:
    """Check that the provider can be reached with these credentials, record the plan in
    the outbox and send everything pending. Exit 4 if a command failed or was left
    pending (or the provider cannot be reached: then nothing is queued)."""
    target = _Target(
        provider, sandbox, endpoint_url, actions_guarded, base_url, workspace, study, actor, timeout
    )
    with opened_with_rules(rules, create=True) as (ledger, ruleset):
        sync = target.sync(ledger)
        with progress(f"sending to {sync.target}", quiet=quiet) as bar:

            def advance(sent: int, total: int) -> None:
                bar.total(total)
                bar.set(sent)

            report = sync.apply(ruleset, reason=reason, progress=advance)
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report)
    if report.failed or report.left_pending:
        raise typer.Exit(EXIT_PROVIDER)


@sync_app.command("status")
@handles_errors
@_redacted
def sync_status_command(
    provider: Annotated[
        ProviderName | None,
        typer.Option("--provider", help="Only this provider's accounts [default: all]."),
    ] = None,
    as_json: AsJson = False,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="Pending and failed commands shown.")
    ] = 20,
) -> None:
    """Pending, failed (with the provider's error) and done commands, per provider account."""
    with opened(create=False) as ledger:
        targets = [
            t for t in known_targets(ledger) if provider is None or t.startswith(f"{provider}:")
        ]
        statuses = [sync_status(ledger, t, limit=limit) for t in targets]
    if as_json:
        emit_json([s.to_json() for s in statuses])
        return
    if not statuses:
        say("nothing has been synced yet")
    for status in statuses:
        _print_status(status)


@sync_app.command("pull")
@handles_errors
@_redacted
def sync_pull(
    provider: ProviderOption,
    rules: RulesOption,
    as_json: AsJson = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Record what the provider holds, so that the next apply corrects it.",
        ),
    ] = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = BASE_URL,
    workspace: Workspace = None,
    study: Study = None,
    actor: Actor = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> None:
    """Read the provider's state (every page) and report drift from what the ledger
    believes; changes nothing unless --record."""
    target = _Target(
        provider,
        sandbox,
        endpoint_url,
        base_url=base_url,
        workspace=workspace,
        study=study,
        actor=actor,
        timeout=timeout,
    )
    with opened_with_rules(rules) as (ledger, ruleset):
        drift = target.sync(ledger).pull(ruleset, record=record)
    if as_json:
        emit_json(drift.to_json())
        return
    say(f"{drift.target}: {len(drift.items)} difference(s)")
    for item in drift.items:
        say(f"  {item.describe()}")
    if drift.recorded:
        say(f"  recorded {drift.recorded} observation(s); `sync apply` will correct them")


@sync_app.command("ingest")
@handles_errors
@_redacted
def sync_ingest(
    provider: ProviderOption,
    hit: Annotated[
        list[str] | None,
        typer.Option("--hit", metavar="ID", help="MTurk: a HIT whose assignments to record."),
    ] = None,
    study: Annotated[
        list[str] | None,
        typer.Option(
            "--study", metavar="ID", help="Prolific: a study whose submissions to record."
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task", metavar="NAME", help="Task name to record [default: the HIT/study id]."
        ),
    ] = None,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = BASE_URL,
    workspace: Workspace = None,
    actor: Actor = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    quiet: Quiet = False,
) -> None:
    """Record submitted, approved and rejected work from the provider, each once."""
    target = _Target(
        provider,
        sandbox,
        endpoint_url,
        base_url=base_url,
        workspace=workspace,
        actor=actor,
        timeout=timeout,
    )
    with opened() as ledger:
        sync: Sync = target.sync(ledger)
        with progress(f"reading from {sync.target}", quiet=quiet) as bar:

            def advance(done: int, total: int) -> None:
                bar.total(total)
                bar.set(done)

            if isinstance(sync, MTurkSync):
                if not hit:
                    raise fail("give at least one --hit")
                report = sync.ingest(hit, task=task, actor=actor, progress=advance)
            else:
                assert isinstance(sync, ProlificSync)
                if not study:
                    raise fail("give at least one --study")
                report = sync.ingest(study, task=task, actor=actor, progress=advance)
    if as_json:
        emit_json(report.to_json())
        return
    say(
        f"seen {report.seen}: recorded {report.recorded} new submission(s), "
        f"{report.approved} approval(s), {report.rejected} rejection(s)"
    )
    for line in report.notes:
        say(f"  note: {line}")


@sync_app.command("cancel")
@handles_errors
@_redacted
def sync_cancel(
    provider: ProviderOption,
    command: Annotated[
        list[str] | None,
        typer.Option(
            "--command", metavar="ID", help="A pending command to take back (see `sync status`)."
        ),
    ] = None,
    all_pending: Annotated[
        bool, typer.Option("--all-pending", help="Every pending command of the account.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also commands sent without an answer, and while an apply holds the lease "
            "(either may have taken effect: `sync pull` shows what the provider holds).",
        ),
    ] = False,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = BASE_URL,
    workspace: Workspace = None,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Take back pending commands queued by mistake, so that the outbox no longer sends
    them (recorded as events; the next plan proposes again what the rules still want).
    Refused for a command already carried out, refused or cancelled."""
    if bool(command) == all_pending:
        raise fail("give --command ID (one or more) or --all-pending")
    target = _Target(
        provider, sandbox, endpoint_url, base_url=base_url, workspace=workspace, actor=actor
    )
    with opened() as ledger:
        if command:
            targets = {command_target(ledger, c) for c in command}
            if len(targets) != 1:
                raise fail("those commands are for different provider accounts: one at a time")
            (name,) = targets
            if not name.startswith(f"{provider}:"):
                raise fail(f"command {command[0]} is for {name}, not for {provider}")
        else:
            name = target.target()
        report = cancel_commands(
            ledger, name, command or None, actor=actor, reason=reason, force=force
        )
    if as_json:
        emit_json(report.to_json())
    else:
        _print_cancelled(report)
