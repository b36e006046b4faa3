"""Amazon Mechanical Turk: the sync's provider, HIT requirements, and ingesting assignments.

Give it a ready boto3 ``mturk`` client, so the host application decides credentials,
endpoint and retries::

    import boto3
    from crowdledger import Ledger
    from crowdledger.adapters.mturk.provider import MTurkSync

    client = boto3.client("mturk", region_name="us-east-1",
                          endpoint_url="https://mturk-requester-sandbox.us-east-1.amazonaws.com")
    with Ledger.open("sqlite:///crowd.db") as ledger:
        sync = MTurkSync(ledger, client)
        print(sync.plan("rules.yaml").to_json())
        sync.apply("rules.yaml")
        requirements = sync.requirements("rules.yaml")   # for create_hit / create_hit_type

What MTurk holds is tracked per *target*: ``mturk:sandbox`` and ``mturk:production`` are
separate namespaces with separate type ids, and an endpoint other than the two official
ones (a local fake, a proxy) is a target of its own. Retrying throttling and 5xx answers
is botocore's job (``retries={"mode": "standard"}``: exponential backoff with jitter); a
call that still fails is recorded as failed with MTurk's error. Workers are never
emailed: every grant passes ``SendNotification=False``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from crowdledger.adapters.ledger.rule_files import RuleSetLike, as_ruleset
from crowdledger.adapters.sync.engine import (
    Outcome,
    ProviderError,
    QueuedCommand,
    SendContext,
    Sync,
)
from crowdledger.adapters.sync.ingest import IngestReport, Work, record_work
from crowdledger.adapters.sync.provider_state import ProviderFacts
from crowdledger.domain.errors import InvalidInputError
from crowdledger.rules.gates import DEFAULT_ACTIONS_GUARDED, Gate, MTurkGate, compile_mturk
from crowdledger.rules.ruleset import RuleSet
from crowdledger.rules.sync_plan import FactKey, SyncCommand

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "PRODUCTION_ENDPOINT",
    "SANDBOX_ENDPOINT",
    "MTurkProvider",
    "MTurkSync",
    "mturk_client",
]

SANDBOX_ENDPOINT = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
PRODUCTION_ENDPOINT = "https://mturk-requester.us-east-1.amazonaws.com"
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ServiceFault",
        "ServiceUnavailable",
        "RequestLimitExceeded",
    }
)
# Workers see the reason a qualification was taken away: say nothing about the rules.
REMOVAL_NOTICE = "This qualification no longer applies to your account."
_ACTIONS = ("Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept")
_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException"}
)


def mturk_client(
    *, sandbox: bool = False, endpoint_url: str | None = None, max_attempts: int | None = None
) -> MTurkClient:
    """A boto3 client as the command line uses it: credentials from the usual AWS
    environment, us-east-1, botocore's standard retry mode (exponential backoff with
    jitter), ``max_attempts`` tries per call (default ``AWS_MAX_ATTEMPTS``, else 8)."""
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or 8)
    return boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=endpoint_url or (SANDBOX_ENDPOINT if sandbox else PRODUCTION_ENDPOINT),
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def _error(exc: Exception, what: str) -> ProviderError:
    """A ProviderError for a failed call: MTurk's code, whether to try again later."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        turk_code = exc.response.get("TurkErrorCode")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = str(error.get("Message", "")).strip()
        return ProviderError(
            f"MTurk refused {what}: {code}: {message}",
            code=str(turk_code) if turk_code else code,
            retryable=code in _RETRYABLE_CODES or status >= 500,
        )
    retryable = isinstance(exc, ConnectionError)
    return ProviderError(
        f"MTurk {what} failed: {exc}", code=type(exc).__name__, retryable=retryable
    )


def _fatal(exc: Exception) -> bool:
    """Errors no command can get past: nothing should be recorded against each command."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in _CREDENTIAL_CODES
    return False


def _not_held(exc: ClientError) -> bool:
    """MTurk's answer to removing a qualification the worker does not hold (and not, say,
    to naming a type that does not exist)."""
    code = str(exc.response.get("TurkErrorCode", ""))
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return code.endswith(".QualificationDoesNotExist") or (
        not code and "requested a Qualification that does not exist" in message
    )


def _worker_id(subject: str) -> str:
    return subject.partition(":")[2]


class MTurkProvider:
    """The sync's view of one MTurk requester account (see :class:`MTurkSync`)."""

    provider = "mturk"

    def __init__(
        self,
        client: MTurkClient,
        *,
        sandbox: bool | None = None,
        actions_guarded: str = DEFAULT_ACTIONS_GUARDED,
    ) -> None:
        if actions_guarded not in _ACTIONS:
            raise InvalidInputError(
                "actions_guarded", f"{actions_guarded!r} is not one of {', '.join(_ACTIONS)}"
            )
        self.client = client
        endpoint = str(client.meta.endpoint_url).rstrip("/")
        self.sandbox = ("sandbox" in endpoint) if sandbox is None else sandbox
        namespace = "sandbox" if self.sandbox else "production"
        official = endpoint in (SANDBOX_ENDPOINT, PRODUCTION_ENDPOINT)
        # Host and port only: credentials in the URL must never reach the ledger.
        parts = urlsplit(endpoint)
        where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self.target = f"mturk:{namespace}" if official else f"mturk:{namespace}@{where}"
        self.actions_guarded = actions_guarded

    def compile(self, ruleset: RuleSet) -> MTurkGate:
        return compile_mturk(ruleset.model, actions_guarded=self.actions_guarded)

    def summary(self, gate: Gate, ids: Mapping[str, str]) -> dict[str, Any]:
        assert isinstance(gate, MTurkGate)
        return {"QualificationRequirements": [r.resolve(ids) for r in gate.requirements]}

    # -- sending ---------------------------------------------------------------------------
    def send(self, batch: Sequence[QueuedCommand], context: SendContext) -> Iterator[Outcome]:
        for queued in batch:
            try:
                value = self._carry_out(queued.command, context)
            except ProviderError as error:
                yield Outcome.failure(queued, error)
                continue
            except (ClientError, BotoCoreError) as exc:
                if _fatal(exc):
                    raise _error(exc, queued.command.describe()) from None
                yield Outcome.failure(queued, _error(exc, queued.command.describe()))
                continue
            yield Outcome.success(queued, value)

    def _type_id(self, name: str, context: SendContext) -> str:
        type_id = context.ids.get(name)
        if type_id is None:
            raise ProviderError(
                f"the MTurk qualification type {name!r} has not been created "
                "(its creation failed or is still pending)",
                code="TypeNotCreated",
            )
        return type_id

    def _carry_out(self, command: SyncCommand, context: SendContext) -> str | None:
        kind, name = command.kind, command.key
        if kind == "type":
            description = context.descriptions.get(name) or f"{name} (kept by crowdledger)"
            return self._find_or_create_type(name, description)
        if kind == "value":
            type_id = self._type_id(name, context)
            worker = _worker_id(command.subject)
            if command.operation == "set":
                assert command.value is not None
                self.client.associate_qualification_with_worker(
                    QualificationTypeId=type_id,
                    WorkerId=worker,
                    IntegerValue=int(command.value),
                    SendNotification=False,
                )
                return command.value
            try:
                self.client.disassociate_qualification_from_worker(
                    QualificationTypeId=type_id, WorkerId=worker, Reason=REMOVAL_NOTICE
                )
            except ClientError as exc:
                if not _not_held(exc):
                    raise
                # Already gone (a resend after a crash, or removed by hand): the goal holds.
            return None
        if kind == "block":
            worker = _worker_id(command.subject)
            if command.operation == "set":
                self.client.create_worker_block(WorkerId=worker, Reason=context.reason)
                return ""
            self.client.delete_worker_block(WorkerId=worker, Reason=context.reason)
            return None
        raise ProviderError(f"MTurk has no {kind} facts", code="Unsupported")

    def _owned_types(self, query: str | None = None) -> dict[str, str]:
        """The account's own qualification types (every page; those whose name or
        description contains ``query``), id by name."""
        pages = self.client.get_paginator("list_qualification_types")
        listing = (
            pages.paginate(MustBeRequestable=False, MustBeOwnedByCaller=True)
            if query is None
            else pages.paginate(Query=query, MustBeRequestable=False, MustBeOwnedByCaller=True)
        )
        types: dict[str, str] = {}
        for page in listing:
            for found in page.get("QualificationTypes", []):
                types.setdefault(str(found["Name"]), str(found["QualificationTypeId"]))
        return types

    def _find_or_create_type(self, name: str, description: str) -> str:
        """Create the type, or adopt the one of that name (another process, or a reply
        lost in a crash, created it first)."""
        try:
            created = self.client.create_qualification_type(
                Name=name, Description=description[:2000], QualificationTypeStatus="Active"
            )
        except ClientError as exc:
            if not str(exc.response.get("TurkErrorCode", "")).endswith("AlreadyExists"):
                raise
            found = self._owned_types(name).get(name)
            if found is None:
                raise ProviderError(
                    f"MTurk says a qualification type named {name!r} exists but does not "
                    "list it: a deleted type keeps its name for up to 48 hours",
                    code="QualificationTypeAlreadyExists",
                ) from None
            return found
        return str(created["QualificationType"]["QualificationTypeId"])

    # -- observing -------------------------------------------------------------------------
    def observe(
        self, gate: Gate, ids: Mapping[str, str], held: Mapping[FactKey, str]
    ) -> dict[FactKey, str]:
        try:
            return self._observe(gate)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "a listing") from None

    def _observe(self, gate: Gate) -> dict[FactKey, str]:
        actual: dict[FactKey, str] = {}
        types = self._owned_types()
        for kind, key in gate.scopes():
            if kind == "type" and key in types:
                actual["type", key, ""] = types[key]
            elif kind == "value" and key in types:
                holders = self.client.get_paginator("list_workers_with_qualification_type")
                for listed in holders.paginate(QualificationTypeId=types[key], Status="Granted"):
                    for held in listed.get("Qualifications", []):
                        worker = f"mturk:{held['WorkerId']}"
                        actual["value", key, worker] = str(held.get("IntegerValue", ""))
            elif kind == "block":
                for blocks in self.client.get_paginator("list_worker_blocks").paginate():
                    for block in blocks.get("WorkerBlocks", []):
                        actual["block", "", f"mturk:{block['WorkerId']}"] = ""
        return actual


def _answers(xml: str | None) -> dict[str, Any]:
    """An assignment's QuestionFormAnswers as {question: answer}; unparsable XML is kept."""
    if not xml:
        return {}
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return {"raw": xml}
    answers: dict[str, Any] = {}
    for answer in root.iter():
        if not answer.tag.endswith("Answer") or answer.tag.endswith("QuestionFormAnswers"):
            continue
        question, values = None, []
        for part in answer:
            tag = part.tag.rsplit("}", 1)[-1]
            if tag == "QuestionIdentifier":
                question = part.text or ""
            elif part.text is not None:
                values.append(part.text)
        if question is not None:
            answers[question] = values[0] if len(values) == 1 else values
    return answers


def _utc(value: object) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


class MTurkSync(Sync):
    """:class:`~crowdledger.adapters.sync.Sync` for MTurk, plus HIT requirements and
    assignment ingestion."""

    def __init__(
        self,
        ledger: Ledger,
        client: MTurkClient,
        *,
        sandbox: bool | None = None,
        actions_guarded: str = DEFAULT_ACTIONS_GUARDED,
        actor: str | None = None,
        batch: int = 100,
    ) -> None:
        self.mturk = MTurkProvider(client, sandbox=sandbox, actions_guarded=actions_guarded)
        super().__init__(ledger, self.mturk, actor=actor, batch=batch)

    def requirements(
        self, rules: RuleSetLike, *, allow_undelivered: bool = False
    ) -> list[dict[str, Any]]:
        """QualificationRequirements for ``create_hit``/``create_hit_type``.

        Every type they name must have been created by an apply, and MTurk must hold what
        the ledger says it should: nothing of this gate pending, nothing left to plan
        (``allow_undelivered`` skips that second check)."""
        ruleset = as_ruleset(rules)
        gate = self.mturk.compile(ruleset)
        with self.ledger._reading() as (tx, _model):
            ids = ProviderFacts(tx.views).ids(self.target, "type")
        missing = [r.type_name for r in gate.requirements if r.type_name and r.type_name not in ids]
        if missing:
            raise ProviderError(
                f"run `sync apply` first: no MTurk type yet for {', '.join(sorted(set(missing)))}",
                code="TypeNotCreated",
            )
        if not allow_undelivered:
            plan, scopes = self.plan(ruleset), set(gate.scopes())
            waiting = [c for c in plan.pending if (c.kind, c.key) in scopes]
            if plan.commands or waiting:
                raise ProviderError(
                    f"MTurk is not yet in line with the ledger for this gate ({len(waiting)} "
                    f"command(s) pending, {len(plan.commands)} to plan; see `sync status`): a "
                    "HIT published now could admit workers the ledger excludes; run `sync "
                    "apply` until nothing is left",
                    code="Undelivered",
                )
        return [r.resolve(ids) for r in gate.requirements]

    def ingest(
        self, hits: Sequence[str], *, task: str | None = None, actor: str | None = None
    ) -> IngestReport:
        """Record the submitted, approved and rejected assignments of ``hits`` (every
        page); each is recorded once, however often this runs."""
        namespace = "sandbox" if self.mturk.sandbox else "production"
        work: list[Work] = []
        paginator = self.mturk.client.get_paginator("list_assignments_for_hit")
        try:
            for hit in hits:
                for page in paginator.paginate(
                    HITId=hit, AssignmentStatuses=["Submitted", "Approved", "Rejected"]
                ):
                    for assignment in page.get("Assignments", []):
                        status = str(assignment.get("AssignmentStatus"))
                        reviewed = assignment.get(
                            "ApprovalTime" if status == "Approved" else "RejectionTime"
                        )
                        work.append(
                            Work(
                                provider="mturk",
                                key_prefix=f"mturk:{namespace}:assignment:{assignment['AssignmentId']}",
                                worker=f"mturk:{assignment['WorkerId']}",
                                task=task or hit,
                                submission=str(assignment["AssignmentId"]),
                                answer=_answers(assignment.get("Answer")),
                                accepted_at=_utc(assignment.get("AcceptTime")),
                                submitted_at=_utc(assignment.get("SubmitTime")),
                                status={"Submitted": "submitted", "Approved": "approved"}.get(
                                    status, "rejected"
                                ),
                                reviewed_at=_utc(reviewed),
                                feedback=assignment.get("RequesterFeedback"),
                            )
                        )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "listing assignments") from None
        return record_work(
            self.ledger, work, actor=actor or self.actor, source=f"MTurk {namespace}"
        )
