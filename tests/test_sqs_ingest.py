"""Real-time ingestion: MTurk notifications through moto's SQS (a real boto3 client), the
assignments fetched from the MTurk fake (a real boto3 client too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from crowdledger import Ledger
from crowdledger.adapters.mturk.notifications import (
    SqsIngest,
    UnreadableMessage,
    configure_notifications,
    parse_message,
)
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.testing.mturk import FakeMTurk, mturk_client

W1, W2 = "A1AAAAAA", "A2BBBBBB"
WHEN = datetime(2026, 1, 4, tzinfo=UTC)


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def world(ledger: Ledger, sqs: Any) -> tuple[FakeMTurk, MTurkSync, str, str]:
    fake = FakeMTurk()
    fake.sqs_client = sqs
    queue = sqs.create_queue(QueueName="mturk", Attributes={"VisibilityTimeout": "30"})
    hit = fake.add_hit(hit_type_id="3HITTYPE", sandbox=True)
    client = mturk_client(fake, sandbox=True)
    configure_notifications(client, "3HITTYPE", queue["QueueUrl"])
    return fake, MTurkSync(ledger, client), queue["QueueUrl"], hit


def left(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_submitted_assignments_are_recorded_once_and_messages_deleted(
    ledger: Ledger, sqs: Any, world: tuple[FakeMTurk, MTurkSync, str, str]
) -> None:
    fake, sync, queue, hit = world
    a1 = fake.add_assignment(hit, W1, submit_time=WHEN)
    a2 = fake.add_assignment(hit, W2, submit_time=WHEN)
    # SQS delivers at least once: the same notification twice.
    fake.notify("AssignmentSubmitted", assignment_id=a1, sandbox=True)
    report = SqsIngest(sync, sqs, queue, task="t").run()
    assert report.recorded == 2
    assert report.skipped == {"AssignmentAccepted": 2}
    assert report.deleted == report.messages == 5
    assert left(sqs, queue) == 0
    assert {s.submission for s in ledger.review_queue()} == {a1, a2}
    # GetAssignment gave the worker the message does not carry.
    assert {s.worker for s in ledger.review_queue()} == {f"mturk:{W1}", f"mturk:{W2}"}
    fake.notify("HITReviewable", hit_id=hit, sandbox=True)
    again = SqsIngest(sync, sqs, queue, task="t").run()
    assert (again.messages, again.recorded, again.deleted) == (1, 0, 1)


def test_an_unreadable_message_is_a_dead_letter_never_dropped(
    ledger: Ledger, sqs: Any, world: tuple[FakeMTurk, MTurkSync, str, str]
) -> None:
    _fake, sync, _queue, _hit = world
    # Visible again at once: a run must still stop (each message counted once).
    queue = sqs.create_queue(QueueName="bad", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    dead = sqs.create_queue(QueueName="mturk-dead")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="not json at all")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Events": []}))
    body = {
        "Events": [{"EventType": "AssignmentSubmitted", "HITId": "3X", "AssignmentId": "3NOPE"}]
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    kept = SqsIngest(sync, sqs, queue).run()
    reasons = sorted(d["reason"] for d in kept.dead_letters)
    assert len(reasons) == 3, reasons
    assert any("not JSON" in r for r in reasons)
    assert any("no Events" in r for r in reasons)
    assert any("does not exist" in r for r in reasons)
    assert kept.deleted == 0
    assert left(sqs, queue) == 3
    # With a dead-letter queue they move there, with the reason.
    moved = SqsIngest(sync, sqs, queue, dead_letter_queue=dead).run()
    assert len(moved.dead_letters) == 3
    assert moved.deleted == 3
    assert left(sqs, queue) == 0
    copies = sqs.receive_message(
        QueueUrl=dead, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert len(copies) == 3
    assert all("crowdledger-reason" in m["MessageAttributes"] for m in copies)
    assert ledger.review_queue() == []


def test_mturk_not_answering_leaves_the_message(
    ledger: Ledger, sqs: Any, world: tuple[FakeMTurk, MTurkSync, str, str]
) -> None:
    fake, sync, queue, hit = world
    fake.add_assignment(hit, W1, submit_time=WHEN)
    fake.fail_next("GetAssignment", kind="service_fault", times=50)
    report = SqsIngest(sync, sqs, queue).run()
    assert report.recorded == 0
    assert len(report.left) == 1
    assert left(sqs, queue) == 1  # invisible for now, back after its visibility timeout
    assert ledger.review_queue() == []


def test_reviews_reported_by_mturk_are_recorded(
    ledger: Ledger, sqs: Any, world: tuple[FakeMTurk, MTurkSync, str, str]
) -> None:
    fake, sync, queue, hit = world
    client = sync.mturk.client
    client.update_notification_settings(
        HITTypeId="3HITTYPE",
        Notification={
            "Destination": queue,
            "Transport": "SQS",
            "Version": "2014-08-15",
            "EventTypes": ["AssignmentSubmitted", "AssignmentApproved"],
        },
        Active=True,
    )
    a1 = fake.add_assignment(hit, W1, submit_time=WHEN, status="Approved")
    fake.notify("AssignmentApproved", assignment_id=a1, sandbox=True)
    report = SqsIngest(sync, sqs, queue).run()
    assert (report.recorded, report.approved) == (1, 1)
    assert ledger.stats(f"mturk:{W1}")["approved"] == 1


def test_parse_message_reads_sns_envelopes_and_names_what_is_wrong() -> None:
    inner = {"Events": [{"EventType": "HITReviewable", "HITId": "3ABC"}], "EventDocVersion": "x"}
    envelope = {"Type": "Notification", "Message": json.dumps(inner)}
    assert parse_message(json.dumps(envelope))[0]["HITId"] == "3ABC"
    with pytest.raises(UnreadableMessage, match="AssignmentId"):
        parse_message(json.dumps({"Events": [{"EventType": "AssignmentSubmitted", "HITId": "3A"}]}))
    with pytest.raises(UnreadableMessage, match="not an object"):
        parse_message("[]")
