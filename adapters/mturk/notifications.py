"""Real-time ingestion from MTurk: HIT-type event notifications read from an SQS queue.

MTurk sends a message per event (``UpdateNotificationSettings`` with an SQS destination,
:func:`configure_notifications`). A message body is JSON, ``{"Events": [{"EventType",
"EventTimestamp", "HITId", "HITTypeId", "AssignmentId"?}], "EventDocVersion": ...}`` (also
accepted wrapped in an SNS envelope); it carries no worker id and no answer, so each
assignment it names is fetched (``GetAssignment``) and recorded through the ordinary
ingest path (:func:`~crowdledger.adapters.sync.ingest.record_work`) with the keys a
HIT ingestion uses: however often SQS delivers a message (at least once), and whichever
of the two paths sees an assignment first, it is recorded once.

* ``AssignmentSubmitted``, ``AssignmentApproved``, ``AssignmentRejected``: the assignment,
  as MTurk holds it now (a submission, and its review if it has one).
* ``HITReviewable``: every assignment of the HIT (every page).
* ``AssignmentAccepted``, ``AssignmentReturned``, ``AssignmentAbandoned`` (and ``Ping``,
  and the HIT events): nothing the ledger records (it keeps work handed in); counted.

A message is deleted only after everything it names is committed. A message that cannot
be read (not JSON, no events, an event without its ids), or that names an assignment MTurk
says does not exist, is a *dead letter*: counted with the reason, copied to the
dead-letter queue when one is given (then deleted), else left in the queue for SQS's own
redrive policy; never dropped silently. When MTurk does not answer (throttling, 5xx after
botocore's retries), the message is left in the queue: it comes back after its
visibility timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from crowdledger.adapters.mturk.provider import MTurkSync, _answers, _utc
from crowdledger.adapters.sync.engine import ProviderError
from crowdledger.adapters.sync.ingest import Work, record_work
from crowdledger.adapters.sync.redaction import stored_error
from crowdledger.domain.errors import InvalidInputError, quoted

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

__all__ = [
    "EVENT_TYPES",
    "NotificationReport",
    "SqsIngest",
    "configure_notifications",
    "parse_message",
]

VERSION = "2014-08-15"
# What `notifications setup` subscribes to.
EVENT_TYPES = (
    "AssignmentAccepted",
    "AssignmentSubmitted",
    "AssignmentReturned",
    "AssignmentAbandoned",
    "HITReviewable",
)
_ASSIGNMENT_EVENTS = frozenset({"AssignmentSubmitted", "AssignmentApproved", "AssignmentRejected"})
_MAX_REASON = 500


class UnreadableMessage(ValueError):
    """A notification that cannot be read: a dead letter, with the reason."""


def configure_notifications(
    client: MTurkClient,
    hit_type: str,
    queue_url: str,
    event_types: Iterable[str] = EVENT_TYPES,
) -> dict[str, Any]:
    """Point the HIT type's notifications at the SQS queue (``UpdateNotificationSettings``,
    active). The queue's access policy must let MTurk send to it."""
    if not hit_type or not hit_type.isalnum() or len(hit_type) > 64:
        raise InvalidInputError("hit_type", f"{quoted(hit_type)} is not an MTurk HIT type id")
    if not queue_url.startswith(("https://", "http://")):
        raise InvalidInputError("sqs_queue", f"{quoted(queue_url)} is not an SQS queue URL")
    notification = {
        "Destination": queue_url,
        "Transport": "SQS",
        "Version": VERSION,
        "EventTypes": list(event_types),
    }
    try:
        client.update_notification_settings(
            HITTypeId=hit_type,
            Notification=cast("Any", notification),
            Active=True,
        )
    except (ClientError, BotoCoreError) as exc:
        from crowdledger.adapters.mturk.provider import _error

        raise _error(exc, f"UpdateNotificationSettings for HIT type {hit_type}") from None
    return {"hit_type": hit_type, **notification, "active": True}


def parse_message(body: str) -> list[dict[str, str]]:
    """The events of a notification message (an SNS envelope unwrapped); raises
    :class:`UnreadableMessage` with the reason."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnreadableMessage(f"not JSON: {body[:80]!r}") from None
    if isinstance(document, dict) and document.get("Type") == "Notification":
        inner = document.get("Message")
        if not isinstance(inner, str):
            raise UnreadableMessage("an SNS envelope without a Message")
        return parse_message(inner)
    if not isinstance(document, dict):
        raise UnreadableMessage(f"a JSON {type(document).__name__}, not an object")
    events = document.get("Events")
    if not isinstance(events, list) or not events:
        raise UnreadableMessage("no Events list")
    parsed = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise UnreadableMessage(f"Events[{index}] is not an object")
        kind = event.get("EventType")
        if not isinstance(kind, str) or not kind:
            raise UnreadableMessage(f"Events[{index}] has no EventType")
        needed = ["HITId"] if kind != "Ping" else []
        if kind in _ASSIGNMENT_EVENTS:
            needed.append("AssignmentId")
        for name in needed:
            value = event.get(name)
            if not isinstance(value, str) or not value.isalnum() or len(value) > 64:
                raise UnreadableMessage(f"Events[{index}] ({kind}) has no valid {name}")
        parsed.append({k: str(v) for k, v in event.items() if isinstance(v, str)})
    return parsed


@dataclass
class NotificationReport:
    messages: int = 0
    events: int = 0
    recorded: int = 0
    approved: int = 0
    rejected: int = 0
    deleted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # event type -> count
    dead_letters: list[dict[str, str]] = field(default_factory=list)  # message_id, reason
    left: list[dict[str, str]] = field(default_factory=list)  # retried later: message_id, why
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "events": self.events,
            "recorded": self.recorded,
            "approved": self.approved,
            "rejected": self.rejected,
            "deleted": self.deleted,
            "skipped": dict(sorted(self.skipped.items())),
            "dead_letters": self.dead_letters,
            "left_in_queue": self.left,
            "notes": self.notes,
        }


class _Retry(Exception):
    """MTurk did not answer: the message stays in the queue."""


class SqsIngest:
    """Long-poll one SQS queue of MTurk notifications into the ledger (see the module)."""

    def __init__(
        self,
        sync: MTurkSync,
        sqs: Any,
        queue_url: str,
        *,
        dead_letter_queue: str | None = None,
        task: str | None = None,
        actor: str | None = None,
    ) -> None:
        self.sync = sync
        self.sqs = sqs
        self.queue_url = queue_url
        self.dead_letter_queue = dead_letter_queue
        self.task = task
        self.actor = actor
        self.namespace = "sandbox" if sync.mturk.sandbox else "production"

    def run(
        self,
        *,
        wait: bool = False,
        wait_seconds: int = 20,
        max_messages: int | None = None,
        progress: Callable[[NotificationReport], None] | None = None,
    ) -> NotificationReport:
        """Receive and record until the queue is empty (``wait``: keep long-polling until
        ``max_messages`` were handled, or for ever)."""
        report = NotificationReport()
        seen_dead: set[str] = set()
        seen: set[str] = set()  # message ids handled in this run (left ones come back)
        while max_messages is None or report.messages < max_messages:
            want = 10 if max_messages is None else max(1, min(10, max_messages - report.messages))
            try:
                reply = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=want,
                    WaitTimeSeconds=wait_seconds if wait else 0,
                )
            except (ClientError, BotoCoreError) as exc:
                raise ProviderError(
                    stored_error(f"SQS did not give messages from {self.queue_url}: {exc}"),
                    code="SQS",
                    retryable=True,
                ) from None
            messages = reply.get("Messages") or []
            fresh = [m for m in messages if str(m.get("MessageId")) not in seen]
            if not fresh:
                if wait:
                    continue
                break  # empty, or only what this run left in the queue came back
            for message in fresh:
                seen.add(str(message.get("MessageId")))
                report.messages += 1
                self._handle(message, report, seen_dead)
            if progress is not None:
                progress(report)
        return report

    def _handle(
        self, message: Mapping[str, Any], report: NotificationReport, seen_dead: set[str]
    ) -> None:
        message_id = str(message.get("MessageId", ""))
        try:
            events = parse_message(str(message.get("Body", "")))
            work = self._work(events, report)
        except UnreadableMessage as bad:
            self._dead(message, str(bad), report, seen_dead)
            return
        except _Retry as retry:
            report.left.append({"message_id": message_id, "reason": str(retry)[:_MAX_REASON]})
            return
        ingested = record_work(
            self.sync.ledger, work, actor=self.actor, source=f"MTurk {self.namespace} via SQS"
        )
        report.recorded += ingested.recorded
        report.approved += ingested.approved
        report.rejected += ingested.rejected
        report.notes.extend(ingested.notes)
        # Committed: only now may the message go.
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        report.deleted += 1

    def _dead(
        self,
        message: Mapping[str, Any],
        reason: str,
        report: NotificationReport,
        seen_dead: set[str],
    ) -> None:
        message_id = str(message.get("MessageId", ""))
        reason = reason[:_MAX_REASON]
        if message_id not in seen_dead:
            seen_dead.add(message_id)
            report.dead_letters.append({"message_id": message_id, "reason": reason})
        if self.dead_letter_queue is None:
            return  # left for SQS's redrive policy: counted, never dropped
        self.sqs.send_message(
            QueueUrl=self.dead_letter_queue,
            MessageBody=str(message.get("Body", "")),
            MessageAttributes={
                "crowdledger-reason": {"DataType": "String", "StringValue": reason},
                "crowdledger-source": {"DataType": "String", "StringValue": self.queue_url},
            },
        )
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        report.deleted += 1

    def _work(self, events: list[dict[str, str]], report: NotificationReport) -> list[Work]:
        work: list[Work] = []
        for event in events:
            report.events += 1
            kind = event["EventType"]
            if kind in _ASSIGNMENT_EVENTS:
                work.append(self._assignment(event["AssignmentId"], event["HITId"]))
            elif kind == "HITReviewable":
                work.extend(self._hit(event["HITId"]))
            else:
                report.skipped[kind] = report.skipped.get(kind, 0) + 1
        return work

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError, ProviderError) as exc:
            error = exc if isinstance(exc, ProviderError) else self.sync.mturk._error(exc, what)
            if error.retryable:
                raise _Retry(str(error)) from None
            raise UnreadableMessage(str(error)) from None

    def _assignment(self, assignment_id: str, hit: str) -> Work:
        client = self.sync.mturk.client
        reply = self._call(
            f"GetAssignment {assignment_id}",
            lambda: client.get_assignment(AssignmentId=assignment_id),
        )
        assignment = reply.get("Assignment") if isinstance(reply, dict) else None
        if not isinstance(assignment, dict) or not assignment.get("WorkerId"):
            raise UnreadableMessage(f"GetAssignment {assignment_id} answered no assignment")
        return self._piece(assignment, hit)

    def _hit(self, hit: str) -> list[Work]:
        client = self.sync.mturk.client

        def listing() -> list[Any]:
            pages = client.get_paginator("list_assignments_for_hit").paginate(
                HITId=hit, AssignmentStatuses=["Submitted", "Approved", "Rejected"]
            )
            return [a for page in pages for a in page.get("Assignments", [])]

        return [self._piece(a, hit) for a in self._call(f"ListAssignmentsForHIT {hit}", listing)]

    def _piece(self, assignment: Mapping[str, Any], hit: str) -> Work:
        status = str(assignment.get("AssignmentStatus"))
        if status not in ("Submitted", "Approved", "Rejected"):
            raise UnreadableMessage(f"assignment status {status[:40]!r} is not a handed-in one")
        reviewed = assignment.get("ApprovalTime" if status == "Approved" else "RejectionTime")
        assignment_id = str(assignment["AssignmentId"])
        return Work(
            provider="mturk",
            key_prefix=f"mturk:{self.namespace}:assignment:{assignment_id}",
            worker=f"mturk:{assignment['WorkerId']}",
            task=self.task or str(assignment.get("HITId") or hit),
            submission=assignment_id,
            answer=_answers(assignment.get("Answer")),
            accepted_at=_utc(assignment.get("AcceptTime")),
            submitted_at=_utc(assignment.get("SubmitTime")),
            status={"Submitted": "submitted", "Approved": "approved"}.get(status, "rejected"),
            reviewed_at=_utc(reviewed),
            feedback=assignment.get("RequesterFeedback"),
        )
