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
call that MTurk still refuses is recorded as failed with MTurk's error, one that got no
answer (or an answer that cannot be read) stays pending. Workers are never emailed:
every grant passes ``SendNotification=False``.

:class:`MTurkProvider` registers a check on the client's replies (``before-parse``): a
successful reply must be a JSON object botocore can parse, else the call raises a
retryable :class:`ProviderError` (it may have taken effect). :func:`mturk_client` also
sets connect and read timeouts and gives a call up after :data:`SILENT_TRIES` tries
without any reply, so a silent endpoint costs a bounded time. Every error text is
redacted (:mod:`crowdledger.adapters.sync.redaction`) before it leaves this module.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.parsers import create_parser

from crowdledger.adapters.ledger.rule_files import RuleSetLike, as_ruleset
from crowdledger.adapters.sync.engine import (
    Outcome,
    ProgressCallback,
    ProviderError,
    ProviderNotConfiguredError,
    QueuedCommand,
    SendContext,
    Sync,
)
from crowdledger.adapters.sync.ingest import IngestReport, Work, record_work
from crowdledger.adapters.sync.provider_state import ProviderFacts
from crowdledger.adapters.sync.redaction import redact, stored_error
from crowdledger.domain.errors import InvalidInputError, quoted
from crowdledger.rules.gates import DEFAULT_ACTIONS_GUARDED, Gate, MTurkGate, compile_mturk
from crowdledger.rules.ruleset import RuleSet
from crowdledger.rules.sync_plan import FactKey, SyncCommand

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "DEFAULT_TIMEOUT",
    "PRODUCTION_ENDPOINT",
    "SANDBOX_ENDPOINT",
    "SILENT_TRIES",
    "MTurkProvider",
    "MTurkSync",
    "mturk_client",
    "mturk_target",
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


# Seconds to wait for a connection and for each reply, and how many tries of one call
# may get no reply at all (a timeout, a refused or broken connection) before it is given
# up as unanswered: a silent endpoint costs about SILENT_TRIES * timeout per apply.
DEFAULT_TIMEOUT = 10.0
SILENT_TRIES = 3
_NO_REPLY = (ConnectionError, HTTPClientError)  # timeouts, refused and broken connections


def mturk_target(endpoint_url: str, sandbox: bool | None = None) -> str:
    """The target (outbox and facts namespace) of an endpoint: ``mturk:sandbox``,
    ``mturk:production``, or ``mturk:<namespace>@host:port`` for any other endpoint.
    Host and port only: credentials in the URL never reach the ledger."""
    endpoint = endpoint_url.rstrip("/")
    in_sandbox = ("sandbox" in endpoint) if sandbox is None else sandbox
    namespace = "sandbox" if in_sandbox else "production"
    if endpoint in (SANDBOX_ENDPOINT, PRODUCTION_ENDPOINT):
        return f"mturk:{namespace}"
    parts = urlsplit(endpoint)
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return f"mturk:{namespace}@{where}"


def mturk_client(
    *,
    sandbox: bool = False,
    endpoint_url: str | None = None,
    max_attempts: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    silent_tries: int = SILENT_TRIES,
) -> MTurkClient:
    """A boto3 client as the command line uses it: credentials from the usual AWS
    environment, us-east-1, botocore's standard retry mode (exponential backoff with
    jitter), ``max_attempts`` tries per call (default ``AWS_MAX_ATTEMPTS``, else 8), of
    which at most ``silent_tries`` may go without a reply, each waiting ``timeout``
    seconds at most for the connection and for the reply."""
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or 8)
    try:
        client = boto3.client(
            "mturk",
            region_name="us-east-1",
            endpoint_url=endpoint_url or (SANDBOX_ENDPOINT if sandbox else PRODUCTION_ENDPOINT),
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"mode": "standard", "total_max_attempts": attempts},
            ),
        )
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise InvalidInputError("endpoint_url", f"{quoted(endpoint_url)}: {exc}") from None
    give_up_when_silent(client, silent_tries)
    return client


def give_up_when_silent(client: MTurkClient, tries: int = SILENT_TRIES) -> None:
    """Stop retrying a call once ``tries`` of its tries got no reply at all; botocore's
    retry handler still decides everything else (throttling, 5xx)."""

    def veto(caught_exception: object = None, request_dict: Any = None, **_: Any) -> bool | None:
        if not isinstance(caught_exception, _NO_REPLY) or not isinstance(request_dict, dict):
            return None
        context = request_dict.setdefault("context", {})
        context["crowdledger_silent"] = silent = int(context.get("crowdledger_silent", 0)) + 1
        return False if silent >= tries else None  # False: no retry, whatever comes after

    client.meta.events.register_first(
        "needs-retry.mturk", cast("Callable[..., None]", veto), unique_id="crowdledger-silent"
    )


_JSON_PARSER = create_parser("json")


def _check_reply(operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
    """``before-parse``: refuse a reply that cannot be read as MTurk's (a successful one
    must be a JSON object botocore can parse; an error one, if JSON, an object), rather
    than let botocore read garbage as an empty success or fail inside its parser."""
    if not isinstance(response_dict, dict):
        return
    status = int(response_dict.get("status_code") or 0)
    body = response_dict.get("body")
    raw = body if isinstance(body, bytes) else b""
    try:
        decoded: Any = json.loads(raw) if raw.strip() else None
        readable = True
    except ValueError:
        decoded, readable = None, False
    name = getattr(operation_model, "name", "the call")
    if status < 300:
        trouble = None if isinstance(decoded, dict) else _shape_of(raw, decoded, readable)
        if trouble is None:
            try:
                _JSON_PARSER.parse(response_dict, operation_model.output_shape)
            except Exception as exc:  # any failure of botocore's parser on this reply
                trouble = f"a JSON object botocore cannot parse ({type(exc).__name__})"
    else:
        trouble = (
            None if not readable or decoded is None or isinstance(decoded, dict) else
            _shape_of(raw, decoded, readable)
        )  # fmt: skip
    if trouble is not None:
        snippet = raw[:200].decode("utf-8", "replace")
        raise ProviderError(
            redact(
                f"MTurk's reply to {name} cannot be read (HTTP {status}: {trouble}: "
                f"{snippet!r}); it may have taken effect"
            ),
            code="UnreadableReply",
            retryable=True,
        )


def _shape_of(raw: bytes, decoded: Any, readable: bool) -> str:
    if not raw.strip():
        return "an empty body"
    if not readable:
        return "HTML" if raw.lstrip()[:1] == b"<" else "not JSON"
    return f"a JSON {type(decoded).__name__}, not an object"


def _unreadable(what: str, detail: str) -> ProviderError:
    return ProviderError(
        f"MTurk's reply to {what} cannot be read ({detail}); it may have taken effect",
        code="UnreadableReply",
        retryable=True,
    )


def _field(reply: Mapping[str, Any], what: str, *path: str) -> str:
    """``reply[path[0]][path[1]]...`` as text, or an unreadable-reply error."""
    value: Any = reply
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) in (None, ""):
            raise _unreadable(what, f"no {'.'.join(path)}")
        value = value[key]
    return str(value)


def _error(exc: Exception, what: str, secrets: Iterable[str | None] = ()) -> ProviderError:
    """A ProviderError for a failed call: MTurk's code, whether to try again later; its
    text redacted (``secrets`` and anything that looks like a credential)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        turk_code = exc.response.get("TurkErrorCode")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = str(error.get("Message", "")).strip()
        return ProviderError(
            stored_error(f"MTurk refused {what}: {code}: {message}", secrets),
            code=str(turk_code) if turk_code else code,
            retryable=code in _RETRYABLE_CODES or status >= 500,
        )
    if isinstance(exc, _NO_REPLY):
        return ProviderError(
            stored_error(f"MTurk did not answer {what}: {exc}", secrets),
            code=type(exc).__name__,
            retryable=True,
        )
    return ProviderError(
        stored_error(f"MTurk {what} failed: {exc}", secrets),
        code=type(exc).__name__,
        retryable=False,
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
        self.target = mturk_target(endpoint, self.sandbox)
        self.actions_guarded = actions_guarded
        client.meta.events.register(
            "before-parse.mturk",
            cast("Callable[..., None]", _check_reply),
            unique_id="crowdledger-check-reply",
        )

    @property
    def review_source(self) -> str:
        """The prefix of the idempotency keys ingestion from this account records under:
        the reviews and bonuses of those submissions are carried out here."""
        return f"mturk:{'sandbox' if self.sandbox else 'production'}:assignment:"

    def secrets(self) -> list[str]:
        """The client's credentials, to be redacted from anything MTurk says."""
        signer = getattr(self.client, "_request_signer", None)
        credentials = getattr(signer, "_credentials", None)
        if credentials is None:
            return []
        try:
            frozen = credentials.get_frozen_credentials()
        except Exception:  # refreshing failed: nothing to redact that we could know
            return []
        return [str(v) for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]

    def _error(self, exc: Exception, what: str) -> ProviderError:
        return _error(exc, what, self.secrets())

    def check(self) -> None:
        """One cheap read the sync needs permission for anyway (ListQualificationTypes,
        one result): credentials present and accepted, endpoint reachable."""
        try:
            self.client.list_qualification_types(
                MustBeRequestable=False, MustBeOwnedByCaller=True, MaxResults=1
            )
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ProviderNotConfiguredError(
                f"MTurk: {exc}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                "AWS_PROFILE) to the requester account's credentials; nothing was queued"
            ) from None
        except (ClientError, BotoCoreError) as exc:
            error = self._error(exc, f"the credentials check at {self.target}")
            if _fatal(exc):
                raise ProviderError(
                    f"{error}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the "
                    "profile); nothing was queued",
                    code=error.code,
                ) from None
            raise ProviderError(
                f"{error}; nothing was queued", code=error.code, retryable=error.retryable
            ) from None

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
                    raise self._error(exc, queued.command.describe()) from None
                yield Outcome.failure(queued, self._error(exc, queued.command.describe()))
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
        if kind in ("review", "bonus"):
            from crowdledger.adapters.mturk.review import carry_out_review

            return carry_out_review(self.client, command)
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
                name = _field(found, "ListQualificationTypes", "Name")
                types.setdefault(
                    name, _field(found, "ListQualificationTypes", "QualificationTypeId")
                )
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
        return _field(
            created, "CreateQualificationType", "QualificationType", "QualificationTypeId"
        )

    # -- observing -------------------------------------------------------------------------
    def observe(
        self, gate: Gate, ids: Mapping[str, str], held: Mapping[FactKey, str]
    ) -> dict[FactKey, str]:
        try:
            return self._observe(gate)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "a listing") from None

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
                        worker = (
                            f"mturk:{_field(held, 'ListWorkersWithQualificationType', 'WorkerId')}"
                        )
                        actual["value", key, worker] = str(held.get("IntegerValue", ""))
            elif kind == "block":
                for blocks in self.client.get_paginator("list_worker_blocks").paginate():
                    for block in blocks.get("WorkerBlocks", []):
                        worker = _field(block, "ListWorkerBlocks", "WorkerId")
                        actual["block", "", f"mturk:{worker}"] = ""
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
        ruleset = as_ruleset(rules, defined=self.ledger._current_definitions)
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
        self,
        hits: Sequence[str],
        *,
        task: str | None = None,
        actor: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Record the submitted, approved and rejected assignments of ``hits`` (every
        page); each is recorded once, however often this runs. ``progress(done, total)``
        is called as each HIT has been read."""
        namespace = "sandbox" if self.mturk.sandbox else "production"
        work: list[Work] = []
        paginator = self.mturk.client.get_paginator("list_assignments_for_hit")
        try:
            for done, hit in enumerate(hits):
                if progress is not None:
                    progress(done, len(hits))
                for page in paginator.paginate(
                    HITId=hit, AssignmentStatuses=["Submitted", "Approved", "Rejected"]
                ):
                    for assignment in page.get("Assignments", []):
                        for needed in ("AssignmentId", "WorkerId", "AssignmentStatus"):
                            _field(assignment, "ListAssignmentsForHIT", needed)
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
            raise self.mturk._error(exc, "listing assignments") from None
        if progress is not None:
            progress(len(hits), len(hits))
        return record_work(
            self.ledger, work, actor=actor or self.actor, source=f"MTurk {namespace}"
        )
