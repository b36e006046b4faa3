"""The provider half of the review commands: ``review push`` (carry the ledger's reviews and
bonuses out on MTurk or Prolific, through the outbox) and ``review settle`` (an operator's
word on a bonus whose pay went unanswered); also ``ingest`` (from an SQS queue of MTurk
notifications, or HITs and studies as ``sync ingest``) and ``notifications setup``.

boto3 and httpx are imported inside the commands only: ``review queue`` stays fast. The
provider options are the sync's (:mod:`.sync_commands`), spelled again here for that
reason.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

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
from crowdledger.adapters.cli.support import (
    EXIT_PROVIDER,
    Actor,
    AsJson,
    Reason,
    command_group,
    emit_json,
    fail,
    handles_errors,
    opened,
    say,
)

if TYPE_CHECKING:
    from crowdledger.adapters.cli.sync_commands import _Target

__all__ = ["ingest_commands", "notifications_app", "review_push", "review_settle"]

_BASE_URL = "https://api.prolific.com/api/v1/"  # = adapters.prolific.provider.BASE_URL
_TIMEOUT = 10.0  # = adapters.prolific.provider.DEFAULT_TIMEOUT


Workspace = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        metavar="ID",
        help="Prolific: the workspace [default: $PROLIFIC_WORKSPACE_ID].",
    ),
]


def _target(
    provider: ProviderName,
    sandbox: bool,
    endpoint_url: str | None,
    base_url: str,
    workspace: str | None,
    actor: str | None,
    timeout: float,
) -> _Target:
    from crowdledger.adapters.cli.sync_commands import _Target

    return _Target(
        provider,
        sandbox,
        endpoint_url,
        base_url=base_url,
        workspace=workspace,
        actor=actor,
        timeout=timeout,
    )


@handles_errors
def review_push(
    provider: ProviderOption,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = _BASE_URL,
    workspace: Workspace = None,
    actor: Actor = None,
    reason: Reason = None,
    timeout: Timeout = _TIMEOUT,
    quiet: Quiet = False,
) -> None:
    """Carry out on the provider the approvals, rejections and bonuses recorded in the
    ledger, through the sync's outbox. Exit 4 if one was refused, is left pending, or is a
    bonus whose pay went unanswered (`review settle`)."""
    from crowdledger.adapters.cli.sync_commands import _redacted
    from crowdledger.adapters.sync.review_outbox import push_reviews

    @_redacted
    def run() -> Any:
        target = _target(provider, sandbox, endpoint_url, base_url, workspace, actor, timeout)
        with opened() as ledger:
            sync = target.sync(ledger)
            with progress(f"sending reviews to {sync.target}", quiet=quiet) as bar:

                def advance(sent: int, total: int) -> None:
                    bar.total(total)
                    bar.set(sent)

                return push_reviews(sync, reason=reason, progress=advance)

    report = run()
    if as_json:
        emit_json(report.to_json())
    else:
        say(
            f"{report.target}: sent {report.sent}, succeeded {report.succeeded}, failed "
            f"{report.failed}, pending {report.pending}, unknown {report.unknown}"
        )
        for line in report.errors:
            say(f"  {line}")
        if report.stopped:
            say(f"  stopped: {report.stopped}")
        if report.unknown:
            say("  a bonus whose pay got no answer is never paid again: check it on the")
            say("  provider, then `crowdledger review settle BONUS --paid` or `--unpaid`")
    if report.failed or report.pending or report.unknown:
        raise typer.Exit(EXIT_PROVIDER)


@handles_errors
def review_settle(
    bonus: Annotated[
        str,
        typer.Argument(metavar="BONUS", help="The bonus's --key, or the event id `bonus` printed."),
    ],
    paid: Annotated[
        bool | None,
        typer.Option("--paid/--unpaid", help="What the provider shows: paid, or not paid."),
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
    as_json: AsJson = False,
) -> None:
    """Record what became of a bonus whose pay got no answer: --paid, or --unpaid (then
    the next `review push` pays it)."""
    if paid is None:
        raise fail("say --paid or --unpaid (check the bonus on the provider first)")
    from crowdledger.adapters.sync.review_outbox import settle_bonus

    with opened() as ledger:
        report = settle_bonus(ledger, bonus, paid=paid, actor=actor, reason=reason)
    if as_json:
        emit_json(report.to_json())
        return
    if report.paid:
        say(f"bonus {report.bonus} settled as paid ({report.target})")
    else:
        say(f"bonus {report.bonus} settled as unpaid: the next `review push` pays it")


# ---------------------------------------------------------------------------- ingest

ingest_commands = command_group()


@ingest_commands.command("ingest")
@handles_errors
def ingest(
    sqs_queue: Annotated[
        str | None,
        typer.Option("--sqs-queue", metavar="URL", help="MTurk: the SQS queue of notifications."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Keep long-polling the queue (stop with Ctrl-C).")
    ] = False,
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", metavar="N", min=1, help="Stop after N messages."),
    ] = None,
    dead_letter_queue: Annotated[
        str | None,
        typer.Option(
            "--dead-letter-queue",
            metavar="URL",
            help="Move unreadable messages there, with the reason [default: leave them].",
        ),
    ] = None,
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
    provider: Annotated[
        ProviderName, typer.Option("--provider", help="Which provider [default: mturk].")
    ] = ProviderName.mturk,
    task: Annotated[
        str | None,
        typer.Option("--task", metavar="NAME", help="Task name to record [default: the HIT id]."),
    ] = None,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = _BASE_URL,
    workspace: Workspace = None,
    actor: Actor = None,
    timeout: Timeout = _TIMEOUT,
    quiet: Quiet = False,
) -> None:
    """Record work from the provider once each: MTurk notifications from SQS, or HITs and studies.

    With --sqs-queue: each notification's assignment is fetched (GetAssignment) and
    recorded once; a message is deleted only after that is committed; one that cannot be
    read is a dead letter (counted with the reason, moved to --dead-letter-queue if given).
    Exit 4 if a message was a dead letter or left in the queue (MTurk did not answer)."""
    if sqs_queue is None:
        from crowdledger.adapters.cli.sync_commands import sync_ingest

        sync_ingest(
            provider,
            hit=hit,
            study=study,
            task=task,
            as_json=as_json,
            sandbox=sandbox,
            endpoint_url=endpoint_url,
            base_url=base_url,
            workspace=workspace,
            actor=actor,
            timeout=timeout,
            quiet=quiet,
        )
        return
    if provider is not ProviderName.mturk or hit or study:
        raise fail("--sqs-queue reads MTurk notifications: give no --hit, --study or Prolific")
    import boto3

    from crowdledger.adapters.mturk.notifications import SqsIngest
    from crowdledger.adapters.mturk.provider import MTurkSync

    target = _target(provider, sandbox, endpoint_url, base_url, workspace, actor, timeout)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    sqs = boto3.client(
        "sqs", region_name=region, endpoint_url=os.environ.get("CROWDLEDGER_SQS_ENDPOINT")
    )
    with opened() as ledger:
        sync = target.sync(ledger)
        assert isinstance(sync, MTurkSync)
        reader = SqsIngest(
            sync, sqs, sqs_queue, dead_letter_queue=dead_letter_queue, task=task, actor=actor
        )
        try:
            report = reader.run(wait=wait, max_messages=max_messages)
        except KeyboardInterrupt:  # --wait ends with Ctrl-C; what was committed stays
            raise typer.Exit(0) from None
    if as_json:
        emit_json(report.to_json())
    else:
        say(
            f"{report.messages} message(s), {report.events} event(s): recorded "
            f"{report.recorded} submission(s), {report.approved} approval(s), "
            f"{report.rejected} rejection(s); deleted {report.deleted}"
        )
        for kind, count in sorted(report.skipped.items()):
            say(f"  {kind}: {count} (nothing to record)")
        for dead in report.dead_letters:
            say(f"  dead letter {dead['message_id']}: {dead['reason']}")
        for kept in report.left:
            say(f"  left in the queue {kept['message_id']}: {kept['reason']}")
    if report.dead_letters or report.left:
        raise typer.Exit(EXIT_PROVIDER)


# --------------------------------------------------------------------- notifications

notifications_app = command_group(
    "Configure the providers to tell crowdledger about new work: MTurk to SQS, Prolific webhooks."
)


@notifications_app.command("setup")
@handles_errors
def notifications_setup(
    provider: Annotated[
        ProviderName, typer.Option("--provider", help="Which provider [default: mturk].")
    ] = ProviderName.mturk,
    hit_type: Annotated[
        str | None, typer.Option("--hit-type", metavar="ID", help="MTurk: the HIT type.")
    ] = None,
    sqs_queue: Annotated[
        str | None,
        typer.Option("--sqs-queue", metavar="URL", help="MTurk: the SQS queue to send to."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="Prolific: the https URL of the webhook."),
    ] = None,
    secret_file: Annotated[
        str | None,
        typer.Option(
            "--secret-file",
            metavar="PATH",
            help="Prolific: where to keep the webhook secret "
            "[default: $CROWDLEDGER_PROLIFIC_HOOK_SECRET_FILE, else prolific-hook-secret.json].",
        ),
    ] = None,
    as_json: AsJson = False,
    sandbox: Sandbox = False,
    endpoint_url: EndpointUrl = None,
    base_url: BaseUrl = _BASE_URL,
    workspace: Workspace = None,
    timeout: Timeout = _TIMEOUT,
) -> None:
    """Point MTurk's notifications of a HIT type at an SQS queue, or subscribe a Prolific webhook.

    Prolific: creates the workspace's webhook secret and writes it to --secret-file (mode
    0600; the web app's receiving end reads it), then subscribes --url to submission and
    study events and confirms each subscription."""
    from crowdledger.adapters.cli.sync_commands import _redacted

    @_redacted
    def run() -> dict[str, Any]:
        if provider is ProviderName.mturk:
            if not hit_type or not sqs_queue or url:
                raise fail("MTurk: give --hit-type ID and --sqs-queue URL")
            from crowdledger.adapters.mturk.notifications import configure_notifications
            from crowdledger.adapters.mturk.provider import mturk_client

            client = mturk_client(sandbox=sandbox, endpoint_url=endpoint_url, timeout=timeout)
            return configure_notifications(client, hit_type, sqs_queue)
        if not url or hit_type or sqs_queue:
            raise fail("Prolific: give --url URL (the webhook's https address)")
        from crowdledger.adapters.prolific.hooks import subscribe
        from crowdledger.adapters.prolific.provider import ProlificAPI, prolific_client

        token = os.environ.get("PROLIFIC_API_TOKEN")
        if not token:
            raise fail("set PROLIFIC_API_TOKEN to a Prolific API token")
        space = workspace or os.environ.get("PROLIFIC_WORKSPACE_ID")
        if not space:
            raise fail("--workspace (or PROLIFIC_WORKSPACE_ID) is required for Prolific")
        path = (
            secret_file
            or os.environ.get("CROWDLEDGER_PROLIFIC_HOOK_SECRET_FILE")
            or "prolific-hook-secret.json"
        )
        api = ProlificAPI(prolific_client(token, base_url=base_url, timeout=timeout))
        return subscribe(api, space, url, path).to_json()

    document = run()
    if as_json:
        emit_json(document)
        return
    for name, value in document.items():
        say(f"{name}: {value}")
