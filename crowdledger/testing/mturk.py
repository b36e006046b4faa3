"""A stateful fake of the Amazon Mechanical Turk *requester* API behind a real boto3 client.

How it plugs in
===============
:meth:`FakeMTurk.attach` registers a handler on the client's ``before-send.mturk`` event.
botocore emits that event after it has validated, serialised and signed a request and just
before it would open a connection; when a handler returns a
:class:`botocore.awsrequest.AWSResponse`, botocore uses it *instead of* the network.  So every
test still runs botocore's real parameter validation, JSON 1.1 serializer, response parser,
error-code mapping (``client.exceptions.RequestError`` / ``ServiceFault``), standard-mode retry
handler and paginators.  The fake answers *every* MTurk operation: operations it does not
implement get an error response (``__type`` ``FakeMTurkNotImplemented``, HTTP 400, never
retried), so nothing ever falls through to the network.  :func:`mturk_client` builds a
client with dummy credentials and attaches it.

Namespaces
==========
Sandbox and production are separate worlds in one :class:`FakeMTurk`.  The request URL host
decides: a host containing ``sandbox`` (``mturk-requester-sandbox.us-east-1.amazonaws.com``) is
the sandbox, anything else production.  Generated ids (types, HITs, assignments) differ per
namespace, and an id of one namespace does not exist in the other.  The system qualification
types exist in both (Masters has a different id in each: production
``2F1QJWKUDD8XADTFD2Q0G6UTO95ALH``, sandbox ``2ARFPLSP75KLA8M8DH1HTEQVJT3SY6``).

What a boto3 caller sees on errors (verified against botocore 1.44 by experiment)
=================================================================================
The wire body is JSON with ``__type``; botocore puts ``__type`` in ``Error.Code``.  For the two
*modelled* exceptions botocore also copies the modelled members to the top level of
``e.response``, so ``TurkErrorCode`` is at ``e.response["TurkErrorCode"]``:

* ``RequestError`` (HTTP 400), raised as ``client.exceptions.RequestError``::

      {"Error": {"Code": "RequestError", "Message": "... (1700000000000 s)"},
       "Message": "... (1700000000000 s)",
       "TurkErrorCode": "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
       "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "...", "RetryAttempts": 0, ...}}

* ``ServiceFault`` (HTTP 500), ``client.exceptions.ServiceFault``; same shape, with
  ``TurkErrorCode`` ``AWS.ServiceUnavailable``.  It is a 5xx, so botocore retries it; after the
  last attempt ``ResponseMetadata`` has ``"MaxAttemptsReached": True`` and ``RetryAttempts``.
* Throttling, wire body ``{"__type": "ThrottlingException", "message": "Rate exceeded"}`` with
  HTTP 400: not modelled, so a plain ``botocore.exceptions.ClientError`` with
  ``{"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, ...}`` and no
  ``TurkErrorCode``.  botocore's standard retry mode retries it (1 s jittered backoff base).
* ``ParameterValidationError`` (HTTP 400): a plain ``ClientError``, *not* a ``RequestError`` (so
  ``except client.exceptions.RequestError`` does not catch it), with
  ``{"Error": {"Code": "ParameterValidationError",
  "Message": 'The value "bad id" is not valid for the parameter WorkerId. (... s)'}}``.
  This is what the real service sends for values botocore lets through (public reports:
  boto/boto3#2355 and aws/aws-sdk-java#2055 for a bad ``WorkerId``, boto/boto3#2402 and
  aws/aws-sdk-js#3116 for a bad ``QualificationRequirement``).
* Injected raw faults ``http500`` / ``http503`` (non-JSON body): ``ClientError`` with
  ``Error.Code`` ``"500"`` / ``"503"``; both are retried.
* Injected ``request_error``: a refusal, ``RequestError`` (HTTP 400) with ``TurkErrorCode``
  ``AWS.MechanicalTurk.InjectedRefusal``; never retried, no state changed.
* Injected broken replies ``garbage``, ``html``, ``empty``, ``list``: unlike the faults above,
  the call IS carried out (the state changes), then answered HTTP 200 with a body that is not
  MTurk's (bytes that are not JSON, an HTML page, nothing, a JSON list).  botocore itself
  reads the first three as an empty success and fails inside its parser on the last; a
  caller must not believe either.
* ``access_key_ids``: when given, a request signed with another access key id is answered
  HTTP 400 ``UnrecognizedClientException`` "The security token included in the request is
  invalid.", as AWS answers an unknown key.  ``echo_headers = True`` makes every error
  reply quote the request's headers (``Authorization`` included) in its message, as some
  servers and proxies do.

Messages carry the real service's ``" (<epoch milliseconds> s)"`` suffix: match on codes or
use ``in``, never ``==`` on messages.

Validation: who checks what
===========================
botocore checks types, required members and minimums only.  The fake checks the rest of the
model (enums, patterns such as WorkerId ``^A[A-Z0-9]+$``, maximums such as MaxResults <= 100,
maximum lengths) and the documented per-parameter limits (NotifyWorkers: <= 100 WorkerIds,
Subject <= 200 and MessageText <= 4096 characters; RequesterFeedback <= 1024; HIT durations;
QualificationRequirement value counts and comparator/value consistency) and answers
``ParameterValidationError``, as the real service does.  References to things that do not exist,
duplicates, permission and state conflicts are ``RequestError`` with a ``TurkErrorCode``.  Only
``AWS.MechanicalTurk.QualificationTypeAlreadyExists`` and the messages "You requested a
Qualification that does not exist." and "This operation can be called with a status of:
Submitted" are attested for the current API; the other TurkErrorCodes are the legacy API's
names, a best guess: do not branch on them in production code.

Behaviour choices worth knowing
===============================
* Requests without ``MaxResults`` get pages of 10 (an assumption; the real default is not
  documented).  ``page_size_cap`` makes the fake return shorter pages than asked for, as a real
  server may.  Tokens are opaque; a token from another operation, namespace or filter is a
  ``ParameterValidationError``.  Listing is keyset-ordered by creation, so pages never skip or
  repeat items while the state is unchanged.
* ``AssociateQualificationWithWorker``: ``IntegerValue`` defaults to 1, ``SendNotification`` to
  true; a true value appends to :attr:`FakeMTurk.notifications_sent`.  Only types you created
  can be assigned (system types: RequestError).  Associating again updates the value.
* ``DisassociateQualificationFromWorker`` marks the qualification ``Revoked``: it leaves
  :meth:`FakeMTurk.worker_values`, ``GetQualificationScore`` then fails, and
  ``ListWorkersWithQualificationType(Status="Revoked")`` lists it (default ``Granted``).
* ``DeleteQualificationType`` removes the type but keeps its name reserved (the real service
  keeps it for up to 48 hours), so re-creating the name fails with ``...AlreadyExists``.
* ``ListQualificationTypes``: custom types have ``IsRequestable`` true, system types false, so
  system types are listed only with ``MustBeRequestable=False`` and without
  ``MustBeOwnedByCaller``.  ``Query`` is a case-insensitive substring match on name/description.
* ``DeleteWorkerBlock`` of a worker who is not blocked succeeds (no-op); blocking again only
  updates the reason.
* ``NotifyWorkers`` emails (records) only workers with an Approved or Rejected assignment in
  that namespace; others come back as ``HardFailure`` statuses, as the real service reports.
* ``CreateHITType`` (and the implicit type of ``CreateHIT``) returns the same HITTypeId for
  identical properties.  A repeated ``UniqueRequestToken`` is a RequestError
  ``AWS.MechanicalTurk.HitAlreadyExists`` naming the existing HIT.
* ``ApproveAssignment`` needs status Submitted, or Rejected with ``OverrideRejection=True``;
  ``RejectAssignment`` needs Submitted.  Otherwise RequestError.
* ``SendBonus``: the worker must be the assignment's (else RequestError); the amount plus a
  20% commission must fit in :attr:`FakeMTurk.balance` (else RequestError
  ``InsufficientFunds``).  A ``UniqueRequestToken`` used before answers RequestError
  (``DuplicateRequest``, a guessed code) whose message names the token and the first
  request's id, as botocore's model documents, and pays nothing.  Tokens are kept for the
  fake's life (MTurk keeps them at least 24 hours).  Paid bonuses: :meth:`FakeMTurk.bonuses`,
  ``ListBonusPayments`` (by HITId or AssignmentId, paginated).
* ``UpdateNotificationSettings``: the HIT type must exist; Version ``2014-08-15``; an SQS
  destination must look like a queue URL, an SNS one like a topic ARN.  With active
  settings, :meth:`FakeMTurk.add_assignment` sends AssignmentAccepted and
  AssignmentSubmitted, approving and rejecting send AssignmentApproved/Rejected, and
  :meth:`FakeMTurk.notify` sends any event (Returned, Abandoned, HITReviewable ...), each to
  :attr:`FakeMTurk.sqs_client` (a boto3 SQS client, e.g. moto's) when set.
* Injected ``lost``: the call IS carried out, then the connection drops before the reply
  (``botocore.exceptions.ReadTimeoutError`` from the send), which botocore retries: the
  retry meets the state the first try left (an approved assignment, a used token).
* Requirement evaluation (:meth:`FakeMTurk.admits`): every comparator except ``DoesNotExist``
  fails for a worker who does not hold the type (including ``NotEqualTo``/``NotIn``); locale
  values match on Country and, when the requirement names one, Subdivision.  Every
  ``ActionsGuarded`` value guards Accept, so "admitted" means all requirements hold.  Worker
  blocks are not part of it.  System types have no value unless seeded with
  :meth:`FakeMTurk.set_system_value`; Masters accepts only Exists/DoesNotExist.
* A call that fails (injected fault or validation error) changes no state; retries are
  separate requests and are each recorded in :attr:`FakeMTurk.calls`.
* :func:`mturk_client` passes ``retries={"mode": "standard", "max_attempts": n}``, which botocore
  reads as *n retries*, i.e. up to n + 1 requests per call.  By default it keeps botocore's retry
  decisions but drops the backoff sleep (``instant_retries=False`` restores real backoff).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

import boto3
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.model import ListShape, ServiceModel, Shape, StructureShape
from botocore.retries import standard

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

__all__ = [
    "ADULT",
    "LOCALE",
    "MASTERS_PRODUCTION",
    "MASTERS_SANDBOX",
    "NUMBER_HITS_APPROVED",
    "PERCENT_ASSIGNMENTS_APPROVED",
    "PRODUCTION_ENDPOINT",
    "SANDBOX_ENDPOINT",
    "FakeMTurk",
    "FaultKind",
    "mturk_client",
]

SANDBOX_ENDPOINT: Final = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
PRODUCTION_ENDPOINT: Final = "https://mturk-requester.us-east-1.amazonaws.com"
TARGET_PREFIX: Final = "MTurkRequesterServiceV20170117."

MASTERS_PRODUCTION: Final = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS_SANDBOX: Final = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
NUMBER_HITS_APPROVED: Final = "00000000000000000040"
PERCENT_ASSIGNMENTS_APPROVED: Final = "000000000000000000L0"
LOCALE: Final = "00000000000000000071"
ADULT: Final = "00000000000000000060"

FaultKind = Literal[
    "throttle",
    "service_fault",
    "http500",
    "http503",
    "request_error",
    "garbage",
    "html",
    "empty",
    "list",
    "lost",
]
# Faults whose call is carried out before the reply is broken.
_BROKEN_REPLIES: Final[dict[str, tuple[bytes, str]]] = {
    "garbage": (b"\x00\x9c garbage, not JSON {", "application/x-amz-json-1.1"),
    "html": (b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html"),
    "empty": (b"", "application/x-amz-json-1.1"),
    "list": (b"[]", "application/x-amz-json-1.1"),
}
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")

DEFAULT_MAX_RESULTS: Final = 10
_SYSTEM_CREATION_TIME: Final = 1230768000.0  # 2009-01-01T00:00:00Z
_WORKER_ID = re.compile(r"^A[A-Z0-9]+$")
# https://sqs.<region>.amazonaws.com/<account>/<name> (any host: a local SQS such as moto's)
_SQS_QUEUE_URL = re.compile(r"^https?://[^/\s]+/\d{12}/[\w-]{1,80}(\.fifo)?$")
_ENTITY_ID = re.compile(r"^[A-Z0-9]+$")
_ID_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_NUMERIC: Final = frozenset(
    {"LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo"}
)
_EQUALITY: Final = frozenset({"EqualTo", "NotEqualTo"})
_SETS: Final = frozenset({"In", "NotIn"})
_EXISTENCE: Final = frozenset({"Exists", "DoesNotExist"})
_COMPARATORS: Final = _NUMERIC | _EQUALITY | _SETS | _EXISTENCE
_ACTIONS: Final = frozenset({"Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept"})
_ASSIGNMENT_STATUSES: Final = frozenset({"Submitted", "Approved", "Rejected"})
_MAX_IN_INTEGERS: Final = 15
_MAX_IN_LOCALES: Final = 30

_DEFAULT_ANSWER: Final = (
    '<?xml version="1.0" encoding="ASCII"?><QuestionFormAnswers xmlns="http://mechanicalturk.'
    'amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd">'
    "<Answer><QuestionIdentifier>answer</QuestionIdentifier><FreeText>ok</FreeText></Answer>"
    "</QuestionFormAnswers>"
)
_DEFAULT_QUESTION: Final = (
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
    '2006-07-14/ExternalQuestion.xsd"><ExternalURL>https://example.invalid/task</ExternalURL>'
    "<FrameHeight>0</FrameHeight></ExternalQuestion>"
)

JSON = dict[str, Any]


@cache
def _service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("mturk")


# --------------------------------------------------------------------------------------------
# Errors inside the fake


class _ServiceError(Exception):
    def __init__(
        self, status: int, error_type: str, message: str, turk_error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.turk_error_code = turk_error_code


def _request_error(message: str, turk_error_code: str) -> _ServiceError:
    return _ServiceError(400, "RequestError", message, f"AWS.MechanicalTurk.{turk_error_code}")


def _param_error(name: str, value: object, detail: str = "") -> _ServiceError:
    shown = json.dumps(value) if not isinstance(value, str) else value
    message = f'The value "{shown}" is not valid for the parameter {name}.'
    if detail:
        message = f"{message} {detail}"
    return _ServiceError(400, "ParameterValidationError", message)


def _type_not_found(type_id: str) -> _ServiceError:
    return _request_error(
        f"QualificationType {type_id} does not exist.", "QualificationTypeDoesNotExist"
    )


def _qualification_not_found() -> _ServiceError:
    return _request_error(
        "You requested a Qualification that does not exist.", "QualificationDoesNotExist"
    )


def _check_shape(shape: Shape, value: object, name: str) -> None:
    """Check what botocore leaves to the server: enums, patterns, maximums, maximum lengths."""
    meta = shape.metadata
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, sub in value.items():
            member = shape.members.get(key)
            if member is not None:
                _check_shape(member, sub, key)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            raise _param_error(name, value)
        for item in value:
            _check_shape(shape.member, item, name)
    elif shape.type_name == "string" and isinstance(value, str):
        enum = meta.get("enum")
        if enum and value not in enum:
            raise _param_error(name, value, f"Valid values: {', '.join(enum)}.")
        pattern = meta.get("pattern")
        if pattern and not re.search(pattern, value):
            raise _param_error(name, value)
        if ("max" in meta and len(value) > meta["max"]) or (
            "min" in meta and len(value) < meta["min"]
        ):
            raise _param_error(name, value)
    elif (
        shape.type_name in ("integer", "long")
        and isinstance(value, int)
        and (("max" in meta and value > meta["max"]) or ("min" in meta and value < meta["min"]))
    ):
        raise _param_error(name, value)


# --------------------------------------------------------------------------------------------
# Stored state


@dataclass
class _Qualification:
    worker_id: str
    type_id: str
    integer_value: int | None
    locale: dict[str, str] | None
    grant_time: float
    status: str
    seq: int
    reason: str | None = None


@dataclass
class _HitType:
    hit_type_id: str
    group_id: str
    properties: JSON


@dataclass
class _Hit:
    hit_id: str
    hit_type_id: str
    creation_time: float
    expiration: float
    max_assignments: int
    question: str | None
    layout_id: str | None
    requester_annotation: str | None
    seq: int
    review_status: str = "NotReviewed"


@dataclass
class _Assignment:
    assignment_id: str
    hit_id: str
    worker_id: str
    status: str
    accept_time: float
    submit_time: float
    auto_approval_time: float
    deadline: float
    answer: str
    seq: int
    approval_time: float | None = None
    rejection_time: float | None = None
    requester_feedback: str | None = None


@dataclass
class _Bonus:
    worker_id: str
    assignment_id: str
    amount: str
    reason: str
    grant_time: float
    seq: int


@dataclass
class _Namespace:
    name: str
    types: dict[str, JSON] = field(default_factory=dict)
    type_seq: dict[str, int] = field(default_factory=dict)
    owned: set[str] = field(default_factory=set)
    reserved_names: dict[str, str] = field(default_factory=dict)
    quals: dict[str, dict[str, _Qualification]] = field(default_factory=dict)
    blocks: dict[str, tuple[str, int]] = field(default_factory=dict)
    hit_types: dict[str, _HitType] = field(default_factory=dict)
    hit_type_keys: dict[str, str] = field(default_factory=dict)
    hits: dict[str, _Hit] = field(default_factory=dict)
    assignments: dict[str, _Assignment] = field(default_factory=dict)
    request_tokens: dict[str, str] = field(default_factory=dict)
    bonuses: list[_Bonus] = field(default_factory=list)
    bonus_tokens: dict[str, tuple[_Bonus, str]] = field(default_factory=dict)
    notification_settings: dict[str, JSON] = field(default_factory=dict)

    @property
    def sandbox(self) -> bool:
        return self.name == "sandbox"

    @property
    def masters_id(self) -> str:
        return MASTERS_SANDBOX if self.sandbox else MASTERS_PRODUCTION


@dataclass
class _FailNext:
    operation: str | None
    kind: FaultKind
    remaining: int


@dataclass
class _FailEvery:
    n: int
    kind: FaultKind
    operations: frozenset[str] | None
    seen: int = 0


class _Body:
    """The ``raw`` object botocore reads an AWSResponse's body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_args: object, **_kwargs: object) -> Iterator[bytes]:
        yield self._data


def _to_epoch(value: datetime | float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _locale_matches(held: Mapping[str, str], wanted: Mapping[str, Any]) -> bool:
    if held.get("Country") != wanted.get("Country"):
        return False
    subdivision = wanted.get("Subdivision")
    return subdivision is None or held.get("Subdivision") == subdivision


def _compare(comparator: str, value: int, target: int) -> bool:
    match comparator:
        case "LessThan":
            return value < target
        case "LessThanOrEqualTo":
            return value <= target
        case "GreaterThan":
            return value > target
        case "GreaterThanOrEqualTo":
            return value >= target
        case "EqualTo":
            return value == target
        case "NotEqualTo":
            return value != target
    raise AssertionError(comparator)  # pragma: no cover


# --------------------------------------------------------------------------------------------
# The fake


class FakeMTurk:
    """In-memory MTurk requester service; see the module docstring for its behaviour."""

    def __init__(
        self,
        *,
        page_size_cap: int = 100,
        access_key_ids: set[str] | None = None,
        echo_headers: bool = False,
    ) -> None:
        if not 1 <= page_size_cap <= 100:
            raise ValueError("page_size_cap must be between 1 and 100")
        self.page_size_cap = page_size_cap
        self.access_key_ids = access_key_ids
        self.echo_headers = echo_headers
        self.notifications_sent: list[dict[str, Any]] = []
        # What SendBonus takes from: the bonus plus MTurk's 20% commission must fit.
        self.balance = Decimal("10000.00")
        # A boto3 "sqs" client (moto's, say): event notifications go to it (see notify()).
        self.sqs_client: Any = None
        self.events_sent: list[tuple[str, JSON]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._fail_next: list[_FailNext] = []
        self._fail_every: list[_FailEvery] = []
        self._namespaces = {
            "production": self._new_namespace("production"),
            "sandbox": self._new_namespace("sandbox"),
        }
        self._handlers: dict[str, Callable[[_Namespace, JSON], JSON]] = {
            "CreateQualificationType": self._create_qualification_type,
            "GetQualificationType": self._get_qualification_type,
            "UpdateQualificationType": self._update_qualification_type,
            "DeleteQualificationType": self._delete_qualification_type,
            "ListQualificationTypes": self._list_qualification_types,
            "AssociateQualificationWithWorker": self._associate_qualification_with_worker,
            "DisassociateQualificationFromWorker": self._disassociate_qualification_from_worker,
            "ListWorkersWithQualificationType": self._list_workers_with_qualification_type,
            "GetQualificationScore": self._get_qualification_score,
            "CreateWorkerBlock": self._create_worker_block,
            "DeleteWorkerBlock": self._delete_worker_block,
            "ListWorkerBlocks": self._list_worker_blocks,
            "NotifyWorkers": self._notify_workers,
            "CreateHITType": self._create_hit_type,
            "CreateHIT": self._create_hit,
            "CreateHITWithHITType": self._create_hit_with_hit_type,
            "GetHIT": self._get_hit,
            "ListHITs": self._list_hits,
            "ListHITsForQualificationType": self._list_hits_for_qualification_type,
            "GetAssignment": self._get_assignment,
            "ListAssignmentsForHIT": self._list_assignments_for_hit,
            "ApproveAssignment": self._approve_assignment,
            "RejectAssignment": self._reject_assignment,
            "GetAccountBalance": self._get_account_balance,
            "SendBonus": self._send_bonus,
            "ListBonusPayments": self._list_bonus_payments,
            "UpdateNotificationSettings": self._update_notification_settings,
        }

    # ---------------------------------------------------------------- wiring

    def attach(self, client: MTurkClient) -> None:
        """Answer every request of this boto3 ``mturk`` client (idempotent per client)."""
        if client.meta.service_model.service_name != "mturk":
            raise TypeError("FakeMTurk can only be attached to an 'mturk' client")
        # The stubs type handlers as returning None; before-send handlers may return a response.
        handler = cast("Callable[..., None]", self._on_before_send)
        client.meta.events.register(
            "before-send.mturk", handler, unique_id=f"fake-mturk-{id(self)}"
        )

    @property
    def implemented_operations(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def _on_before_send(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: AWSPreparedRequest) -> AWSResponse:
        response = self._answer(request)
        if self.echo_headers and response.status_code >= 400:
            response = _echoing(request, response)
        return response

    def _answer(self, request: AWSPreparedRequest) -> AWSResponse:
        url = request.url
        target = request.headers.get("X-Amz-Target", b"")
        if isinstance(target, bytes):
            target = target.decode()
        operation = target.removeprefix(TARGET_PREFIX)
        body = request.body
        if isinstance(body, bytes | bytearray):
            body = body.decode()
        params: JSON = json.loads(body) if isinstance(body, str) and body else {}
        self.calls.append((operation, copy.deepcopy(params)))

        if self.access_key_ids is not None:
            signature = request.headers.get("Authorization", b"")
            if isinstance(signature, bytes):
                signature = signature.decode()
            key = _ACCESS_KEY.search(signature or "")
            if key is None or key.group(1) not in self.access_key_ids:
                return self._error_response(
                    url,
                    _ServiceError(
                        400,
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                    ),
                )
        fault = self._take_fault(operation)
        broken = fault if fault in _BROKEN_REPLIES else None
        if fault is not None and broken is None and fault != "lost":
            return self._fault_response(url, fault)
        answered = self._carry_out(url, operation, params)
        if fault == "lost":
            # Carried out (if it could be), then the connection dropped before the reply:
            # botocore sees a read timeout, which its retry handler retries.
            raise ReadTimeoutError(endpoint_url=url)
        if broken is not None:
            body, content_type = _BROKEN_REPLIES[broken]
            return _response(url, 200, body, content_type=content_type)
        return answered

    def _carry_out(self, url: str, operation: str, params: JSON) -> AWSResponse:
        handler = self._handlers.get(operation)
        namespace = self._namespaces["sandbox" if "sandbox" in _host(url) else "production"]
        try:
            if handler is None:
                raise _ServiceError(
                    400,
                    "FakeMTurkNotImplemented",
                    f"FakeMTurk does not implement {operation or 'this request'}.",
                )
            input_shape = _service_model().operation_model(operation).input_shape
            if input_shape is not None:
                _check_shape(input_shape, params, "")
            result = handler(namespace, params)
        except _ServiceError as error:
            return self._error_response(url, error)
        return _response(url, 200, json.dumps(result).encode())

    def _error_response(self, url: str, error: _ServiceError) -> AWSResponse:
        stamped = f"{error.message} ({int(time.time() * 1000)} s)"
        payload: JSON = {"__type": error.error_type, "Message": stamped}
        if error.turk_error_code is not None:
            payload["TurkErrorCode"] = error.turk_error_code
        return _response(url, error.status, json.dumps(payload).encode())

    def _fault_response(self, url: str, kind: FaultKind) -> AWSResponse:
        if kind == "throttle":
            body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return _response(url, 400, json.dumps(body).encode())
        if kind == "service_fault":
            return self._error_response(
                url,
                _ServiceError(
                    500,
                    "ServiceFault",
                    "Amazon Mechanical Turk is temporarily unable to process your request.",
                    "AWS.ServiceUnavailable",
                ),
            )
        if kind == "request_error":
            return self._error_response(
                url,
                _request_error(
                    "The request was refused (an injected fault).",
                    "AWS.MechanicalTurk.InjectedRefusal",
                ),
            )
        if kind == "http500":
            html = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
            return _response(url, 500, html, content_type="text/html")
        return _response(url, 503, b"", content_type="text/plain")

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self, operation: str | None, *, kind: FaultKind = "throttle", times: int = 1
    ) -> None:
        """Make the next ``times`` requests for ``operation`` (None: any) fail with ``kind``."""
        _check_fault(kind)
        if operation is not None:
            _check_operation(operation)
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._fail_next.append(_FailNext(operation, kind, times))

    def fail_every(
        self, n: int, *, kind: FaultKind = "service_fault", operations: set[str] | None = None
    ) -> None:
        """Make every ``n``-th matching request (retries count) fail with ``kind``."""
        _check_fault(kind)
        if n < 1:
            raise ValueError("n must be >= 1")
        for operation in operations or ():
            _check_operation(operation)
        ops = frozenset(operations) if operations is not None else None
        with self._lock:
            self._fail_every.append(_FailEvery(n, kind, ops))

    def clear_faults(self) -> None:
        with self._lock:
            self._fail_next.clear()
            self._fail_every.clear()

    def _take_fault(self, operation: str) -> FaultKind | None:
        fault: FaultKind | None = None
        for rule in self._fail_next:
            if rule.remaining > 0 and rule.operation in (None, operation):
                rule.remaining -= 1
                fault = rule.kind
                break
        self._fail_next = [rule for rule in self._fail_next if rule.remaining > 0]
        for every in self._fail_every:
            if every.operations is None or operation in every.operations:
                every.seen += 1
                if fault is None and every.seen % every.n == 0:
                    fault = every.kind
        return fault

    # ---------------------------------------------------------------- state for assertions

    def qualification_types(
        self, sandbox: bool = False, *, include_system: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Type id -> stored type (API shape, CreationTime as epoch seconds); yours only."""
        ns = self._ns(sandbox)
        with self._lock:
            return {
                type_id: copy.deepcopy(stored)
                for type_id, stored in ns.types.items()
                if include_system or type_id in ns.owned
            }

    def worker_values(self, type_id: str, sandbox: bool = False) -> dict[str, int]:
        """Worker id -> IntegerValue of the *granted* qualifications of a type."""
        ns = self._ns(sandbox)
        with self._lock:
            return {
                worker_id: qual.integer_value
                for worker_id, qual in ns.quals.get(type_id, {}).items()
                if qual.status == "Granted" and qual.integer_value is not None
            }

    def blocks(self, sandbox: bool = False) -> dict[str, str]:
        """Worker id -> block reason."""
        ns = self._ns(sandbox)
        with self._lock:
            return {worker_id: reason for worker_id, (reason, _) in ns.blocks.items()}

    # ---------------------------------------------------------------- seeding helpers

    def set_system_value(
        self,
        worker_id: str,
        type_id: str,
        value: int | Mapping[str, str],
        sandbox: bool = False,
    ) -> None:
        """Give a worker a system qualification (Locale takes {"Country", "Subdivision"?})."""
        ns = self._ns(sandbox)
        _require_worker_id(worker_id)
        if type_id not in ns.types or type_id in ns.owned:
            raise ValueError(f"{type_id} is not a system qualification type in {ns.name}")
        if type_id == LOCALE:
            if not isinstance(value, Mapping) or not isinstance(value.get("Country"), str):
                raise ValueError("the Locale value must be a mapping with a 'Country'")
            integer, locale = None, dict(value)
        else:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{type_id} takes an integer value")
            integer, locale = value, None
        with self._lock:
            ns.quals.setdefault(type_id, {})[worker_id] = _Qualification(
                worker_id, type_id, integer, locale, time.time(), "Granted", next(self._seq)
            )

    def seed_qualification_type(
        self, name: str, *, description: str = "seeded", sandbox: bool = False
    ) -> str:
        """Create an Active custom type without a recorded call; returns its id."""
        ns = self._ns(sandbox)
        with self._lock:
            created = self._create_qualification_type(
                ns, {"Name": name, "Description": description, "QualificationTypeStatus": "Active"}
            )
            return str(created["QualificationType"]["QualificationTypeId"])

    def seed_worker_value(
        self, type_id: str, worker_id: str, value: int, *, sandbox: bool = False
    ) -> None:
        """Grant a custom qualification without a call and without a notification."""
        ns = self._ns(sandbox)
        _require_worker_id(worker_id)
        with self._lock:
            if type_id not in ns.owned:
                raise ValueError(f"{type_id} is not one of your types in {ns.name}")
            self._grant(ns, type_id, worker_id, value)

    def add_hit(
        self,
        *,
        hit_type_id: str | None = None,
        requirements: list[dict[str, Any]] | None = None,
        sandbox: bool = False,
    ) -> str:
        """Create a HIT as if created earlier by someone; returns its id.

        With ``hit_type_id`` unknown, a HIT type with that id is created; with it known,
        ``requirements`` must be None or equal to the type's.  Invalid requirements raise
        ValueError with the message the service would send.
        """
        ns = self._ns(sandbox)
        with self._lock:
            reqs = copy.deepcopy(requirements) if requirements is not None else None
            try:
                if reqs is not None:
                    self._check_requirements(ns, reqs)
            except _ServiceError as error:
                raise ValueError(error.message) from error
            if hit_type_id is not None and hit_type_id in ns.hit_types:
                existing = ns.hit_types[hit_type_id].properties["QualificationRequirements"]
                if reqs is not None and reqs != existing:
                    raise ValueError(f"HIT type {hit_type_id} has other requirements")
                hit_type = ns.hit_types[hit_type_id]
            else:
                if hit_type_id is not None and not _ENTITY_ID.match(hit_type_id):
                    raise ValueError(f"invalid HIT type id {hit_type_id!r}")
                properties = _hit_type_properties(
                    {
                        "Title": "Seeded HIT",
                        "Description": "Seeded by FakeMTurk.add_hit",
                        "Reward": "0.10",
                        "AssignmentDurationInSeconds": 3600,
                        "QualificationRequirements": reqs or [],
                    }
                )
                hit_type = self._hit_type_for(ns, properties, forced_id=hit_type_id)
            now = time.time()
            hit = _Hit(
                hit_id=self._new_id(ns, "hit"),
                hit_type_id=hit_type.hit_type_id,
                creation_time=now,
                expiration=now + 7 * 86400,
                max_assignments=1,
                question=_DEFAULT_QUESTION,
                layout_id=None,
                requester_annotation=None,
                seq=next(self._seq),
            )
            ns.hits[hit.hit_id] = hit
            return hit.hit_id

    def add_assignment(
        self,
        hit_id: str,
        worker_id: str,
        *,
        status: str = "Submitted",
        answer_xml: str | None = None,
        accept_time: datetime | float | None = None,
        submit_time: datetime | float | None = None,
    ) -> str:
        """Record a worker's submitted assignment on a HIT (of either namespace)."""
        _require_worker_id(worker_id)
        if status not in _ASSIGNMENT_STATUSES:
            raise ValueError(f"status must be one of {sorted(_ASSIGNMENT_STATUSES)}")
        with self._lock:
            ns = next((n for n in self._namespaces.values() if hit_id in n.hits), None)
            if ns is None:
                raise ValueError(f"no HIT {hit_id}")
            hit = ns.hits[hit_id]
            mine = [a for a in ns.assignments.values() if a.hit_id == hit_id]
            if any(a.worker_id == worker_id for a in mine):
                raise ValueError(f"{worker_id} already has an assignment for HIT {hit_id}")
            properties = ns.hit_types[hit.hit_type_id].properties
            now = time.time()
            submitted = _to_epoch(submit_time, now)
            accepted = _to_epoch(accept_time, submitted - 60)
            assignment = _Assignment(
                assignment_id=self._new_id(ns, "assignment"),
                hit_id=hit_id,
                worker_id=worker_id,
                status=status,
                accept_time=accepted,
                submit_time=submitted,
                auto_approval_time=submitted + properties["AutoApprovalDelayInSeconds"],
                deadline=accepted + properties["AssignmentDurationInSeconds"],
                answer=answer_xml if answer_xml is not None else _DEFAULT_ANSWER,
                seq=next(self._seq),
                approval_time=submitted if status == "Approved" else None,
                rejection_time=submitted if status == "Rejected" else None,
            )
            hit.max_assignments = max(hit.max_assignments, len(mine) + 1)
            ns.assignments[assignment.assignment_id] = assignment
            if status == "Submitted":
                self._emit(ns, "AssignmentAccepted", hit, assignment.assignment_id)
                self._emit(ns, "AssignmentSubmitted", hit, assignment.assignment_id)
            return assignment.assignment_id

    def admits(
        self,
        worker_id: str,
        requirements: list[dict[str, Any]],
        *,
        sandbox: bool = False,
        locale: dict[str, str] | None = None,
    ) -> bool:
        """Whether the worker meets all requirements (ANDed), as MTurk evaluates them.

        ``locale`` is the worker's locale ({"Country": "US", "Subdivision": "CA"}); without it
        the value seeded with :meth:`set_system_value` (if any) is used.
        """
        ns = self._ns(sandbox)
        with self._lock:
            try:
                self._check_requirements(ns, requirements)
            except _ServiceError as error:
                raise ValueError(error.message) from error
            return all(self._satisfies(ns, worker_id, req, locale) for req in requirements)

    def _satisfies(
        self, ns: _Namespace, worker_id: str, req: Mapping[str, Any], locale: dict[str, str] | None
    ) -> bool:
        type_id = req["QualificationTypeId"]
        comparator = req["Comparator"]
        qual = ns.quals.get(type_id, {}).get(worker_id)
        granted = qual if qual is not None and qual.status == "Granted" else None
        held_locale: dict[str, str] | None = None
        if type_id == LOCALE:
            held_locale = locale if locale is not None else (granted.locale if granted else None)
            held = held_locale is not None
        else:
            held = granted is not None
        if comparator == "Exists":
            return held
        if comparator == "DoesNotExist":
            return not held
        if not held:
            return False
        if held_locale is not None:
            matches = [_locale_matches(held_locale, wanted) for wanted in req["LocaleValues"]]
            return {
                "EqualTo": matches[0],
                "NotEqualTo": not matches[0],
                "In": any(matches),
                "NotIn": not any(matches),
            }[comparator]
        assert granted is not None
        value = granted.integer_value
        if value is None:
            return False
        integers: list[int] = req["IntegerValues"]
        if comparator == "In":
            return value in integers
        if comparator == "NotIn":
            return value not in integers
        return _compare(comparator, value, integers[0])

    # ---------------------------------------------------------------- bonuses, events

    def bonuses(self, sandbox: bool = False) -> list[dict[str, Any]]:
        """Every bonus paid, oldest first (``WorkerId``, ``AssignmentId``, ``BonusAmount``,
        ``Reason``): what a test counts to prove that nothing was paid twice."""
        ns = self._ns(sandbox)
        with self._lock:
            return [_render_bonus(b) for b in ns.bonuses]

    def assignment_status(self, assignment_id: str, sandbox: bool = False) -> str:
        """``Submitted``, ``Approved`` or ``Rejected``."""
        ns = self._ns(sandbox)
        with self._lock:
            return self._assignment(ns, assignment_id).status

    def notification_settings(self, hit_type_id: str, sandbox: bool = False) -> JSON | None:
        """What ``UpdateNotificationSettings`` stored for a HIT type (``Notification``,
        ``Active``), or None."""
        ns = self._ns(sandbox)
        with self._lock:
            stored = ns.notification_settings.get(hit_type_id)
            return copy.deepcopy(stored) if stored is not None else None

    def hit_type_of(self, hit_id: str, sandbox: bool = False) -> str:
        ns = self._ns(sandbox)
        with self._lock:
            return self._hit(ns, hit_id).hit_type_id

    def notify(
        self,
        event_type: str,
        *,
        assignment_id: str | None = None,
        hit_id: str | None = None,
        sandbox: bool = False,
    ) -> bool:
        """Send the event notification MTurk would send for ``event_type`` (for an
        assignment, or a HIT event such as ``HITReviewable``), if the HIT's type has active
        settings that name it; True if a message went out. Messages follow the
        ``2014-08-15`` document version: ``{"Events": [{"EventType", "EventTimestamp",
        "HITId", "HITTypeId", "AssignmentId"?}], "EventDocVersion", "EventDocId",
        "SourceAccount", "CustomerId"}`` (no worker id, no answer). SQS destinations go to
        :attr:`sqs_client` (``send_message``); every message sent is kept in
        :attr:`events_sent` as (destination, body)."""
        ns = self._ns(sandbox)
        with self._lock:
            if assignment_id is not None:
                hit_id = self._assignment(ns, assignment_id).hit_id
            if hit_id is None:
                raise ValueError("give an assignment_id or a hit_id")
            return self._emit(ns, event_type, self._hit(ns, hit_id), assignment_id)

    def _emit(self, ns: _Namespace, event_type: str, hit: _Hit, assignment_id: str | None) -> bool:
        settings = ns.notification_settings.get(hit.hit_type_id)
        if settings is None or not settings.get("Active", True):
            return False
        spec = settings["Notification"]
        if event_type not in spec["EventTypes"]:
            return False
        event: JSON = {
            "EventType": event_type,
            "EventTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "HITId": hit.hit_id,
            "HITTypeId": hit.hit_type_id,
        }
        if assignment_id is not None:
            event["AssignmentId"] = assignment_id
        body: JSON = {
            "Events": [event],
            "EventDocId": str(uuid.uuid4()),
            "SourceAccount": "111122223333",
            "CustomerId": "A1FAKEREQUESTER",
            "EventDocVersion": spec["Version"],
        }
        self.events_sent.append((spec["Destination"], body))
        if spec["Transport"] == "SQS" and self.sqs_client is not None:
            self.sqs_client.send_message(QueueUrl=spec["Destination"], MessageBody=json.dumps(body))
        return True

    # ---------------------------------------------------------------- internals

    def _ns(self, sandbox: bool) -> _Namespace:
        return self._namespaces["sandbox" if sandbox else "production"]

    def _new_namespace(self, name: str) -> _Namespace:
        ns = _Namespace(name)
        system = [
            (ns.masters_id, "Masters", "Workers who have demonstrated high performance."),
            (NUMBER_HITS_APPROVED, "Worker_NumberHITsApproved", "Number of HITs approved."),
            (
                PERCENT_ASSIGNMENTS_APPROVED,
                "Worker_PercentAssignmentsApproved",
                "Percentage of assignments approved.",
            ),
            (LOCALE, "Worker_Locale", "The Worker's location."),
            (ADULT, "Worker_Adult", "Worker is at least 18 years old."),
        ]
        for type_id, type_name, description in system:
            ns.types[type_id] = {
                "QualificationTypeId": type_id,
                "CreationTime": _SYSTEM_CREATION_TIME,
                "Name": type_name,
                "Description": description,
                "QualificationTypeStatus": "Active",
                "IsRequestable": False,
                "AutoGranted": False,
            }
            ns.type_seq[type_id] = next(self._seq)
        return ns

    def _new_id(self, ns: _Namespace, kind: str) -> str:
        digest = hashlib.sha256(f"{ns.name}/{kind}/{next(self._seq)}".encode()).digest()
        number = int.from_bytes(digest, "big")
        chars = []
        for _ in range(29):
            number, index = divmod(number, len(_ID_ALPHABET))
            chars.append(_ID_ALPHABET[index])
        return "3" + "".join(chars)

    def _page(
        self,
        operation: str,
        ns: _Namespace,
        params: JSON,
        items: list[tuple[int, JSON]],
        filters: object = None,
    ) -> tuple[list[JSON], str | None]:
        size = min(int(params.get("MaxResults", DEFAULT_MAX_RESULTS)), self.page_size_cap)
        scope = json.dumps([operation, ns.name, filters], sort_keys=True, default=str)
        digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
        after = -1
        token = params.get("NextToken")
        if token is not None:
            after = _decode_token(token, digest)
        items.sort(key=lambda item: item[0])
        remaining = [item for item in items if item[0] > after]
        page = remaining[:size]
        next_token = None
        if len(remaining) > size:
            raw = json.dumps({"d": digest, "a": page[-1][0]}).encode()
            next_token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return [item[1] for item in page], next_token

    def _custom_type(self, ns: _Namespace, type_id: str) -> JSON:
        if type_id not in ns.types:
            raise _type_not_found(type_id)
        if type_id not in ns.owned:
            raise _request_error(
                f"You do not own QualificationType {type_id}; only its owner can do this.",
                "PermissionDenied",
            )
        return ns.types[type_id]

    def _grant(self, ns: _Namespace, type_id: str, worker_id: str, value: int) -> None:
        quals = ns.quals.setdefault(type_id, {})
        existing = quals.get(worker_id)
        if existing is not None and existing.status == "Granted":
            existing.integer_value = value
        else:
            quals[worker_id] = _Qualification(
                worker_id, type_id, value, None, time.time(), "Granted", next(self._seq)
            )

    # ---------------------------------------------------------------- qualification types

    def _create_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        name: str = p["Name"]
        if not name.strip():
            raise _param_error("Name", name)
        if name in ns.reserved_names:
            raise _request_error(
                "You have already created a QualificationType with this name. A "
                "QualificationType's name must be unique among all of the QualificationTypes "
                "created by the same user.",
                "QualificationTypeAlreadyExists",
            )
        if p.get("Test") is not None and p.get("AutoGranted"):
            raise _param_error("AutoGranted", True, "AutoGranted cannot be true with a Test.")
        if p.get("Test") is not None and p.get("TestDurationInSeconds") is None:
            raise _param_error("TestDurationInSeconds", None, "It is required with a Test.")
        if p.get("AnswerKey") is not None and p.get("Test") is None:
            raise _param_error("AnswerKey", p["AnswerKey"], "An AnswerKey needs a Test.")
        type_id = self._new_id(ns, "qualification-type")
        stored: JSON = {
            "QualificationTypeId": type_id,
            "CreationTime": time.time(),
            "Name": name,
            "Description": p["Description"],
            "QualificationTypeStatus": p["QualificationTypeStatus"],
            "IsRequestable": True,
            "AutoGranted": bool(p.get("AutoGranted", False)),
        }
        for key in ("Keywords", "Test", "TestDurationInSeconds", "AnswerKey"):
            if p.get(key) is not None:
                stored[key] = p[key]
        if p.get("RetryDelayInSeconds") is not None:
            stored["RetryDelayInSeconds"] = p["RetryDelayInSeconds"]
        if stored["AutoGranted"]:
            stored["AutoGrantedValue"] = p.get("AutoGrantedValue", 1)
        ns.types[type_id] = stored
        ns.type_seq[type_id] = next(self._seq)
        ns.owned.add(type_id)
        ns.reserved_names[name] = type_id
        return {"QualificationType": copy.deepcopy(stored)}

    def _get_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        if type_id not in ns.types:
            raise _type_not_found(type_id)
        return {"QualificationType": copy.deepcopy(ns.types[type_id])}

    def _update_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        stored = self._custom_type(ns, p["QualificationTypeId"])
        updated = dict(stored)
        for key in (
            "Description",
            "QualificationTypeStatus",
            "Test",
            "AnswerKey",
            "TestDurationInSeconds",
            "RetryDelayInSeconds",
            "AutoGranted",
            "AutoGrantedValue",
        ):
            if key in p:
                updated[key] = p[key]
        if updated.get("Test") is not None and updated.get("AutoGranted"):
            raise _param_error("AutoGranted", True, "AutoGranted cannot be true with a Test.")
        if updated.get("AutoGranted"):
            updated.setdefault("AutoGrantedValue", 1)
        stored.clear()
        stored.update(updated)
        return {"QualificationType": copy.deepcopy(stored)}

    def _delete_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        self._custom_type(ns, type_id)
        del ns.types[type_id]
        ns.owned.discard(type_id)
        ns.quals.pop(type_id, None)
        return {}

    def _list_qualification_types(self, ns: _Namespace, p: JSON) -> JSON:
        requestable = bool(p["MustBeRequestable"])
        owned_only = bool(p.get("MustBeOwnedByCaller", False))
        query = p.get("Query")
        needle = query.lower() if isinstance(query, str) else None
        items: list[tuple[int, JSON]] = []
        for type_id, stored in ns.types.items():
            if owned_only and type_id not in ns.owned:
                continue
            if requestable and not stored["IsRequestable"]:
                continue
            haystack = f"{stored['Name']}\n{stored['Description']}".lower()
            if needle and needle not in haystack:
                continue
            items.append((ns.type_seq[type_id], copy.deepcopy(stored)))
        page, token = self._page(
            "ListQualificationTypes", ns, p, items, [requestable, owned_only, query]
        )
        return _listing("QualificationTypes", page, token)

    # ---------------------------------------------------------------- worker qualifications

    def _associate_qualification_with_worker(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        worker_id = p["WorkerId"]
        self._custom_type(ns, type_id)
        value = int(p.get("IntegerValue", 1))
        self._grant(ns, type_id, worker_id, value)
        if p.get("SendNotification", True):
            self.notifications_sent.append(
                {
                    "operation": "AssociateQualificationWithWorker",
                    "namespace": ns.name,
                    "WorkerId": worker_id,
                    "QualificationTypeId": type_id,
                    "IntegerValue": value,
                }
            )
        return {}

    def _disassociate_qualification_from_worker(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        self._custom_type(ns, type_id)
        qual = ns.quals.get(type_id, {}).get(p["WorkerId"])
        if qual is None or qual.status != "Granted":
            raise _qualification_not_found()
        qual.status = "Revoked"
        qual.reason = p.get("Reason")
        return {}

    def _list_workers_with_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        self._custom_type(ns, type_id)
        status = p.get("Status", "Granted")
        items = [
            (qual.seq, _render_qualification(qual))
            for qual in ns.quals.get(type_id, {}).values()
            if qual.status == status
        ]
        page, token = self._page(
            "ListWorkersWithQualificationType", ns, p, items, [type_id, status]
        )
        return _listing("Qualifications", page, token)

    def _get_qualification_score(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        if type_id not in ns.types:
            raise _qualification_not_found()
        self._custom_type(ns, type_id)
        qual = ns.quals.get(type_id, {}).get(p["WorkerId"])
        if qual is None or qual.status != "Granted":
            raise _qualification_not_found()
        return {"Qualification": _render_qualification(qual)}

    # ---------------------------------------------------------------- blocks and messages

    def _create_worker_block(self, ns: _Namespace, p: JSON) -> JSON:
        reason: str = p["Reason"]
        if not reason.strip():
            raise _param_error("Reason", reason)
        worker_id = p["WorkerId"]
        seq = ns.blocks[worker_id][1] if worker_id in ns.blocks else next(self._seq)
        ns.blocks[worker_id] = (reason, seq)
        return {}

    def _delete_worker_block(self, ns: _Namespace, p: JSON) -> JSON:
        ns.blocks.pop(p["WorkerId"], None)
        return {}

    def _list_worker_blocks(self, ns: _Namespace, p: JSON) -> JSON:
        items = [
            (seq, {"WorkerId": worker_id, "Reason": reason})
            for worker_id, (reason, seq) in ns.blocks.items()
        ]
        page, token = self._page("ListWorkerBlocks", ns, p, items)
        return _listing("WorkerBlocks", page, token)

    def _notify_workers(self, ns: _Namespace, p: JSON) -> JSON:
        subject: str = p["Subject"]
        text: str = p["MessageText"]
        worker_ids: list[str] = p["WorkerIds"]
        if len(subject) > 200:
            raise _param_error("Subject", subject, "It can be at most 200 characters.")
        if len(text) > 4096:
            raise _param_error("MessageText", text, "It can be at most 4096 characters.")
        if len(worker_ids) > 100:
            raise _param_error(
                "WorkerIds", ",".join(worker_ids), "You can notify at most 100 Workers at a time."
            )
        worked_for_you = {
            a.worker_id for a in ns.assignments.values() if a.status in ("Approved", "Rejected")
        }
        failures: list[JSON] = []
        for worker_id in dict.fromkeys(worker_ids):
            if worker_id in worked_for_you:
                self.notifications_sent.append(
                    {
                        "operation": "NotifyWorkers",
                        "namespace": ns.name,
                        "WorkerId": worker_id,
                        "Subject": subject,
                        "MessageText": text,
                    }
                )
            else:
                failures.append(
                    {
                        "NotifyWorkersFailureCode": "HardFailure",
                        "NotifyWorkersFailureMessage": "Cannot send a notification to a worker "
                        "who has not done any work for you",
                        "WorkerId": worker_id,
                    }
                )
        return {"NotifyWorkersFailureStatuses": failures}

    # ---------------------------------------------------------------- HITs

    def _check_requirements(self, ns: _Namespace, reqs: Sequence[Mapping[str, Any]]) -> None:
        for req in reqs:
            self._check_requirement(ns, req)

    def _check_requirement(self, ns: _Namespace, req: Mapping[str, Any]) -> None:
        type_id = req.get("QualificationTypeId")
        comparator = req.get("Comparator")
        if not isinstance(type_id, str) or not type_id:
            raise _param_error("QualificationTypeId", type_id)
        if comparator not in _COMPARATORS:
            raise _param_error("Comparator", comparator, f"Valid values: {sorted(_COMPARATORS)}.")
        actions = req.get("ActionsGuarded")
        if actions is not None and actions not in _ACTIONS:
            raise _param_error("ActionsGuarded", actions)
        integers: list[Any] = list(req.get("IntegerValues") or [])
        locales: list[Any] = list(req.get("LocaleValues") or [])
        for value in integers:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _param_error("IntegerValue", value)
        for locale in locales:
            country = locale.get("Country") if isinstance(locale, Mapping) else None
            subdivision = locale.get("Subdivision") if isinstance(locale, Mapping) else None
            if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
                raise _param_error("Country", country)
            if subdivision is not None and not re.fullmatch(r"[A-Z0-9]{2}", str(subdivision)):
                raise _param_error("Subdivision", subdivision)
        shown_locales = ",".join(
            str(loc.get("Country")) if isinstance(loc, Mapping) else str(loc) for loc in locales
        )
        if comparator in _EXISTENCE:
            if integers:
                raise _param_error(
                    "IntegerValue",
                    integers[0],
                    f"IntegerValue must be null when used with the {comparator} comparator.",
                )
            if locales:
                raise _param_error(
                    "LocaleValue",
                    shown_locales,
                    f"LocaleValue must be null when used with the {comparator} comparator.",
                )
        elif type_id == LOCALE:
            if integers:
                raise _param_error(
                    "IntegerValue",
                    integers[0],
                    "IntegerValue cannot be used with the Worker_Locale Qualification type.",
                )
            if comparator in _NUMERIC:
                raise _param_error(
                    "Comparator",
                    comparator,
                    "Locale values can only be compared with EqualTo, NotEqualTo, In or NotIn.",
                )
            if not locales:
                raise _param_error(
                    "LocaleValue", "", f"LocaleValue is required with the {comparator} comparator."
                )
            if comparator in _EQUALITY and len(locales) != 1:
                raise _param_error(
                    "LocaleValue",
                    shown_locales,
                    f"Exactly one LocaleValue is allowed with the {comparator} comparator.",
                )
            if len(locales) > _MAX_IN_LOCALES:
                raise _param_error(
                    "LocaleValue",
                    shown_locales,
                    f"At most {_MAX_IN_LOCALES} LocaleValues are allowed with {comparator}.",
                )
        else:
            if locales:
                raise _param_error(
                    "LocaleValue",
                    shown_locales,
                    f"LocaleValue must be null when used with the {comparator} comparator; "
                    "only the Worker_Locale Qualification type takes LocaleValues.",
                )
            if not integers:
                raise _param_error(
                    "IntegerValue",
                    "",
                    f"IntegerValue is required with the {comparator} comparator.",
                )
            if comparator not in _SETS and len(integers) != 1:
                raise _param_error(
                    "IntegerValue",
                    ",".join(map(str, integers)),
                    f"Exactly one IntegerValue is allowed with the {comparator} comparator.",
                )
            if len(integers) > _MAX_IN_INTEGERS:
                raise _param_error(
                    "IntegerValue",
                    ",".join(map(str, integers)),
                    f"At most {_MAX_IN_INTEGERS} IntegerValues are allowed with {comparator}.",
                )
        if type_id in (MASTERS_PRODUCTION, MASTERS_SANDBOX) and comparator not in _EXISTENCE:
            raise _param_error(
                "Comparator",
                comparator,
                "Masters can only be required with Exists or DoesNotExist.",
            )
        if type_id not in ns.types:
            raise _type_not_found(type_id)

    def _check_hit_type_properties(self, ns: _Namespace, p: JSON) -> None:
        title: str = p["Title"]
        if not title.strip() or len(title) > 128:
            raise _param_error("Title", title, "It must have 1 to 128 characters.")
        if len(p["Description"]) > 2000:
            raise _param_error("Description", p["Description"], "At most 2000 characters.")
        if len(p.get("Keywords") or "") > 1000:
            raise _param_error("Keywords", p["Keywords"], "At most 1000 characters.")
        duration = p["AssignmentDurationInSeconds"]
        if not 30 <= duration <= 31536000:
            raise _param_error("AssignmentDurationInSeconds", duration)
        delay = p.get("AutoApprovalDelayInSeconds", 2592000)
        if not 0 <= delay <= 2592000:
            raise _param_error("AutoApprovalDelayInSeconds", delay)
        self._check_requirements(ns, p.get("QualificationRequirements") or [])

    def _hit_type_for(
        self, ns: _Namespace, properties: JSON, forced_id: str | None = None
    ) -> _HitType:
        key = json.dumps(properties, sort_keys=True)
        if forced_id is None and key in ns.hit_type_keys:
            return ns.hit_types[ns.hit_type_keys[key]]
        hit_type = _HitType(
            hit_type_id=forced_id or self._new_id(ns, "hit-type"),
            group_id=self._new_id(ns, "hit-group"),
            properties=properties,
        )
        ns.hit_types[hit_type.hit_type_id] = hit_type
        ns.hit_type_keys.setdefault(key, hit_type.hit_type_id)
        return hit_type

    def _create_hit_type(self, ns: _Namespace, p: JSON) -> JSON:
        self._check_hit_type_properties(ns, p)
        return {"HITTypeId": self._hit_type_for(ns, _hit_type_properties(p)).hit_type_id}

    def _create_hit(self, ns: _Namespace, p: JSON) -> JSON:
        self._check_hit_type_properties(ns, p)
        self._check_hit_properties(ns, p)
        hit_type = self._hit_type_for(ns, _hit_type_properties(p))
        return self._new_hit(ns, hit_type, p)

    def _create_hit_with_hit_type(self, ns: _Namespace, p: JSON) -> JSON:
        hit_type = ns.hit_types.get(p["HITTypeId"])
        if hit_type is None:
            raise _request_error(f"HITType {p['HITTypeId']} does not exist.", "HITTypeDoesNotExist")
        self._check_hit_properties(ns, p)
        return self._new_hit(ns, hit_type, p)

    def _check_hit_properties(self, ns: _Namespace, p: JSON) -> None:
        lifetime = p["LifetimeInSeconds"]
        if not 30 <= lifetime <= 31536000:
            raise _param_error("LifetimeInSeconds", lifetime)
        max_assignments = p.get("MaxAssignments", 1)
        if not 1 <= max_assignments <= 1000000:
            raise _param_error("MaxAssignments", max_assignments)
        if (p.get("Question") is None) == (p.get("HITLayoutId") is None):
            raise _param_error(
                "Question",
                p.get("Question", ""),
                "Provide exactly one of Question and HITLayoutId.",
            )
        token = p.get("UniqueRequestToken")
        if token is not None and token in ns.request_tokens:
            raise _request_error(
                "There is already a HIT which exists with the same UniqueRequestToken. The HIT "
                f"ID is {ns.request_tokens[token]}.",
                "HitAlreadyExists",
            )

    def _new_hit(self, ns: _Namespace, hit_type: _HitType, p: JSON) -> JSON:
        now = time.time()
        hit = _Hit(
            hit_id=self._new_id(ns, "hit"),
            hit_type_id=hit_type.hit_type_id,
            creation_time=now,
            expiration=now + p["LifetimeInSeconds"],
            max_assignments=p.get("MaxAssignments", 1),
            question=p.get("Question"),
            layout_id=p.get("HITLayoutId"),
            requester_annotation=p.get("RequesterAnnotation"),
            seq=next(self._seq),
        )
        ns.hits[hit.hit_id] = hit
        if p.get("UniqueRequestToken") is not None:
            ns.request_tokens[p["UniqueRequestToken"]] = hit.hit_id
        return {"HIT": self._render_hit(ns, hit)}

    def _hit(self, ns: _Namespace, hit_id: str) -> _Hit:
        hit = ns.hits.get(hit_id)
        if hit is None:
            raise _request_error(f"Hit {hit_id} does not exist.", "HITDoesNotExist")
        return hit

    def _render_hit(self, ns: _Namespace, hit: _Hit) -> JSON:
        properties = ns.hit_types[hit.hit_type_id].properties
        completed = sum(1 for a in ns.assignments.values() if a.hit_id == hit.hit_id)
        available = max(0, hit.max_assignments - completed)
        assignable = available > 0 and time.time() < hit.expiration
        rendered: JSON = {
            "HITId": hit.hit_id,
            "HITTypeId": hit.hit_type_id,
            "HITGroupId": ns.hit_types[hit.hit_type_id].group_id,
            "CreationTime": hit.creation_time,
            "Title": properties["Title"],
            "Description": properties["Description"],
            "HITStatus": "Assignable" if assignable else "Reviewable",
            "MaxAssignments": hit.max_assignments,
            "Reward": properties["Reward"],
            "AutoApprovalDelayInSeconds": properties["AutoApprovalDelayInSeconds"],
            "Expiration": hit.expiration,
            "AssignmentDurationInSeconds": properties["AssignmentDurationInSeconds"],
            "QualificationRequirements": copy.deepcopy(properties["QualificationRequirements"]),
            "HITReviewStatus": hit.review_status,
            "NumberOfAssignmentsPending": 0,
            "NumberOfAssignmentsAvailable": available,
            "NumberOfAssignmentsCompleted": completed,
        }
        optional = {
            "Question": hit.question,
            "HITLayoutId": hit.layout_id,
            "Keywords": properties.get("Keywords"),
            "RequesterAnnotation": hit.requester_annotation,
        }
        rendered.update({key: value for key, value in optional.items() if value is not None})
        return rendered

    def _get_hit(self, ns: _Namespace, p: JSON) -> JSON:
        return {"HIT": self._render_hit(ns, self._hit(ns, p["HITId"]))}

    def _list_hits(self, ns: _Namespace, p: JSON) -> JSON:
        items = [(hit.seq, self._render_hit(ns, hit)) for hit in ns.hits.values()]
        page, token = self._page("ListHITs", ns, p, items)
        return _listing("HITs", page, token)

    def _list_hits_for_qualification_type(self, ns: _Namespace, p: JSON) -> JSON:
        type_id = p["QualificationTypeId"]
        if type_id not in ns.types:
            raise _type_not_found(type_id)
        items = [
            (hit.seq, self._render_hit(ns, hit))
            for hit in ns.hits.values()
            if any(
                req["QualificationTypeId"] == type_id
                for req in ns.hit_types[hit.hit_type_id].properties["QualificationRequirements"]
            )
        ]
        page, token = self._page("ListHITsForQualificationType", ns, p, items, type_id)
        return _listing("HITs", page, token)

    # ---------------------------------------------------------------- assignments

    def _assignment(self, ns: _Namespace, assignment_id: str) -> _Assignment:
        assignment = ns.assignments.get(assignment_id)
        if assignment is None:
            raise _request_error(
                f"Assignment {assignment_id} does not exist.", "AssignmentDoesNotExist"
            )
        return assignment

    def _get_assignment(self, ns: _Namespace, p: JSON) -> JSON:
        assignment = self._assignment(ns, p["AssignmentId"])
        return {
            "Assignment": _render_assignment(assignment),
            "HIT": self._render_hit(ns, ns.hits[assignment.hit_id]),
        }

    def _list_assignments_for_hit(self, ns: _Namespace, p: JSON) -> JSON:
        hit = self._hit(ns, p["HITId"])
        statuses = p.get("AssignmentStatuses") or sorted(_ASSIGNMENT_STATUSES)
        items = [
            (a.seq, _render_assignment(a))
            for a in ns.assignments.values()
            if a.hit_id == hit.hit_id and a.status in statuses
        ]
        page, token = self._page(
            "ListAssignmentsForHIT", ns, p, items, [hit.hit_id, sorted(statuses)]
        )
        return _listing("Assignments", page, token)

    def _approve_assignment(self, ns: _Namespace, p: JSON) -> JSON:
        assignment = self._assignment(ns, p["AssignmentId"])
        feedback = p.get("RequesterFeedback")
        _check_feedback(feedback)
        allowed = {"Submitted", "Rejected"} if p.get("OverrideRejection") else {"Submitted"}
        if assignment.status not in allowed:
            raise _request_error(
                "This operation can be called with a status of: Submitted",
                "InvalidAssignmentState",
            )
        assignment.status = "Approved"
        assignment.approval_time = time.time()
        if feedback is not None:
            assignment.requester_feedback = feedback
        self._emit(ns, "AssignmentApproved", ns.hits[assignment.hit_id], assignment.assignment_id)
        return {}

    def _reject_assignment(self, ns: _Namespace, p: JSON) -> JSON:
        assignment = self._assignment(ns, p["AssignmentId"])
        feedback: str = p["RequesterFeedback"]
        _check_feedback(feedback)
        if assignment.status != "Submitted":
            raise _request_error(
                "This operation can be called with a status of: Submitted",
                "InvalidAssignmentState",
            )
        assignment.status = "Rejected"
        assignment.rejection_time = time.time()
        assignment.requester_feedback = feedback
        self._emit(ns, "AssignmentRejected", ns.hits[assignment.hit_id], assignment.assignment_id)
        return {}

    def _get_account_balance(self, ns: _Namespace, p: JSON) -> JSON:
        return {"AvailableBalance": f"{self.balance:.2f}", "OnHoldBalance": "0.00"}

    def _send_bonus(self, ns: _Namespace, p: JSON) -> JSON:
        token = p.get("UniqueRequestToken")
        if token is not None and token in ns.bonus_tokens:
            _paid, request_id = ns.bonus_tokens[token]
            # botocore's model: "If the bonus already exists in the system from a previous
            # call using the same UniqueRequestToken, subsequent calls will return an error
            # with a message containing the request ID."
            raise _request_error(
                f"The bonus with the UniqueRequestToken {token} has already been granted "
                f"(request {request_id}); it was not granted again.",
                "DuplicateRequest",
            )
        assignment = self._assignment(ns, p["AssignmentId"])
        if assignment.worker_id != p["WorkerId"]:
            raise _request_error(
                f"Worker {p['WorkerId']} did not work on assignment {assignment.assignment_id}.",
                "InvalidParameterValue",
            )
        amount = Decimal(p["BonusAmount"])
        if amount <= 0:
            raise _param_error("BonusAmount", p["BonusAmount"])
        reason = p.get("Reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _param_error("Reason", reason, "A reason is required.")
        cost = (amount * Decimal("1.2")).quantize(Decimal("0.01"))
        if cost > self.balance:
            raise _request_error(
                "This Requester has insufficient funds in their account to complete this "
                "transaction.",
                "InsufficientFunds",
            )
        self.balance -= cost
        paid = _Bonus(
            assignment.worker_id,
            assignment.assignment_id,
            f"{amount:.2f}",
            reason,
            time.time(),
            next(self._seq),
        )
        ns.bonuses.append(paid)
        if token is not None:
            ns.bonus_tokens[token] = (paid, str(uuid.uuid4()))
        return {}

    def _list_bonus_payments(self, ns: _Namespace, p: JSON) -> JSON:
        hit_id, assignment_id = p.get("HITId"), p.get("AssignmentId")
        if (hit_id is None) == (assignment_id is None):
            raise _param_error("HITId", hit_id, "Give either HITId or AssignmentId.")
        if assignment_id is not None:
            self._assignment(ns, assignment_id)
            chosen = [b for b in ns.bonuses if b.assignment_id == assignment_id]
        else:
            self._hit(ns, str(hit_id))
            chosen = [b for b in ns.bonuses if ns.assignments[b.assignment_id].hit_id == hit_id]
        items = [(b.seq, _render_bonus(b)) for b in chosen]
        page, token = self._page("ListBonusPayments", ns, p, items, [hit_id, assignment_id])
        return _listing("BonusPayments", page, token)

    def _update_notification_settings(self, ns: _Namespace, p: JSON) -> JSON:
        hit_type_id = p["HITTypeId"]
        if hit_type_id not in ns.hit_types:
            raise _request_error(f"HIT type {hit_type_id} does not exist.", "HITTypeDoesNotExist")
        spec = p.get("Notification")
        stored = ns.notification_settings.get(hit_type_id)
        if spec is None:
            if "Active" not in p:
                raise _param_error("Notification", None, "Give a Notification, or Active, or both.")
            if stored is None:
                raise _request_error(
                    f"HIT type {hit_type_id} has no notification specification to "
                    "activate or deactivate.",
                    "NotificationDoesNotExist",
                )
            stored["Active"] = bool(p["Active"])
            return {}
        if spec["Version"] != "2014-08-15":
            raise _param_error("Version", spec["Version"], "The supported version is 2014-08-15.")
        destination = spec["Destination"]
        if spec["Transport"] == "SQS" and not _SQS_QUEUE_URL.match(destination):
            raise _param_error("Destination", destination, "Give an SQS queue URL.")
        if spec["Transport"] == "SNS" and not destination.startswith("arn:aws:sns:"):
            raise _param_error("Destination", destination, "Give an SNS topic ARN.")
        if not spec["EventTypes"]:
            raise _param_error("EventTypes", spec["EventTypes"], "Name at least one event type.")
        ns.notification_settings[hit_type_id] = {
            "Notification": copy.deepcopy(spec),
            "Active": bool(p.get("Active", True)),
        }
        return {}


# --------------------------------------------------------------------------------------------
# Module helpers


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


def _response(
    url: str, status: int, body: bytes, *, content_type: str = "application/x-amz-json-1.1"
) -> AWSResponse:
    headers = {
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
    }
    return AWSResponse(url, status, headers, _Body(body))  # type: ignore[arg-type]


def _echoing(request: AWSPreparedRequest, response: AWSResponse) -> AWSResponse:
    """The error reply, quoting the request's headers in its message (or after its body)."""
    headers = "; ".join(f"{name}: {_text(value)}" for name, value in request.headers.items())
    quoted = f" (request headers: {headers})"
    body = response.content
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        key = "Message" if "Message" in payload else "message"
        payload[key] = f"{payload.get(key, '')}{quoted}"
        body = json.dumps(payload).encode()
    else:
        body += quoted.encode()
    return _response(
        request.url,
        response.status_code,
        body,
        content_type=str(response.headers.get("Content-Type", "application/x-amz-json-1.1")),
    )


def _text(value: object) -> str:
    """A header value as text (botocore keeps some as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _listing(key: str, page: list[JSON], token: str | None) -> JSON:
    result: JSON = {"NumResults": len(page), key: page}
    if token is not None:
        result["NextToken"] = token
    return result


def _decode_token(token: str, digest: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        after = decoded["a"]
        if decoded["d"] != digest or not isinstance(after, int):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise _param_error("NextToken", token) from error
    return after


def _render_qualification(qual: _Qualification) -> JSON:
    rendered: JSON = {
        "QualificationTypeId": qual.type_id,
        "WorkerId": qual.worker_id,
        "GrantTime": qual.grant_time,
        "Status": qual.status,
    }
    if qual.integer_value is not None:
        rendered["IntegerValue"] = qual.integer_value
    if qual.locale is not None:
        rendered["LocaleValue"] = dict(qual.locale)
    return rendered


def _render_bonus(bonus: _Bonus) -> JSON:
    return {
        "WorkerId": bonus.worker_id,
        "BonusAmount": bonus.amount,
        "AssignmentId": bonus.assignment_id,
        "Reason": bonus.reason,
        "GrantTime": bonus.grant_time,
    }


def _render_assignment(assignment: _Assignment) -> JSON:
    rendered: JSON = {
        "AssignmentId": assignment.assignment_id,
        "WorkerId": assignment.worker_id,
        "HITId": assignment.hit_id,
        "AssignmentStatus": assignment.status,
        "AutoApprovalTime": assignment.auto_approval_time,
        "AcceptTime": assignment.accept_time,
        "SubmitTime": assignment.submit_time,
        "Deadline": assignment.deadline,
        "Answer": assignment.answer,
    }
    optional = {
        "ApprovalTime": assignment.approval_time,
        "RejectionTime": assignment.rejection_time,
        "RequesterFeedback": assignment.requester_feedback,
    }
    rendered.update({key: value for key, value in optional.items() if value is not None})
    return rendered


def _hit_type_properties(p: JSON) -> JSON:
    properties: JSON = {
        "Title": p["Title"],
        "Description": p["Description"],
        "Reward": p["Reward"],
        "AssignmentDurationInSeconds": p["AssignmentDurationInSeconds"],
        "AutoApprovalDelayInSeconds": p.get("AutoApprovalDelayInSeconds", 2592000),
        "QualificationRequirements": copy.deepcopy(p.get("QualificationRequirements") or []),
    }
    if p.get("Keywords") is not None:
        properties["Keywords"] = p["Keywords"]
    return properties


def _check_feedback(feedback: str | None) -> None:
    if feedback is not None and len(feedback) > 1024:
        raise _param_error("RequesterFeedback", feedback, "It can be at most 1024 characters.")


def _require_worker_id(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not _WORKER_ID.match(worker_id) or len(worker_id) > 64:
        raise ValueError(f"invalid WorkerId {worker_id!r} (must match ^A[A-Z0-9]+$)")


def _check_fault(kind: str) -> None:
    if kind not in get_args(FaultKind):
        raise ValueError(f"kind must be one of {get_args(FaultKind)}")


def _check_operation(operation: str) -> None:
    if operation not in _service_model().operation_names:
        raise ValueError(f"{operation!r} is not an MTurk operation name (use e.g. 'CreateHIT')")


_DUMMY_ACCESS_KEY: Final = "AKIAFAKEMTURK0000000"
_DUMMY_SECRET_KEY: Final = "fake-mturk-secret-key-not-a-real-credential"
_SESSION_LOCK = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    """One shared session: its loader caches the service model, so clients build fast."""
    return boto3.session.Session(
        aws_access_key_id=_DUMMY_ACCESS_KEY,
        aws_secret_access_key=_DUMMY_SECRET_KEY,
        region_name="us-east-1",
    )


def _instant_retries(client: MTurkClient) -> None:
    """Keep botocore's standard retry decisions but skip the backoff sleep."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    unique_id = f"retry-config-{service}"
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    retries: dict[str, Any] = getattr(client.meta.config, "retries", None) or {}
    total = retries.get("total_max_attempts")
    handler = standard.register_retry_handler(client, max_attempts=total)
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)

    def needs_retry(**kwargs: Any) -> object:
        delay = handler.needs_retry(**kwargs)
        if delay is None or delay is False:
            return delay
        return 0.0

    events.register(
        f"needs-retry.{service}", cast("Callable[..., None]", needs_retry), unique_id=unique_id
    )


def mturk_client(
    fake: FakeMTurk,
    *,
    sandbox: bool = False,
    max_attempts: int = 5,
    instant_retries: bool = True,
) -> MTurkClient:
    """A real boto3 ``mturk`` client (us-east-1, dummy credentials) answered by ``fake``.

    ``retries={"mode": "standard", "max_attempts": max_attempts}``; botocore reads
    ``max_attempts`` there as the number of *retries*, so a call makes up to
    ``max_attempts + 1`` requests.  With ``instant_retries`` (default) botocore's retry
    decisions are kept but its backoff sleep is skipped, so tests stay fast.
    """
    with _SESSION_LOCK:
        client = _session().client(
            "mturk",
            region_name="us-east-1",
            endpoint_url=SANDBOX_ENDPOINT if sandbox else PRODUCTION_ENDPOINT,
            aws_access_key_id=_DUMMY_ACCESS_KEY,
            aws_secret_access_key=_DUMMY_SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
        )
    if instant_retries:
        _instant_retries(client)
    fake.attach(client)
    return client
