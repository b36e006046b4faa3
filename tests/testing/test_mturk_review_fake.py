"""The MTurk fake's review, bonus and notification operations, through a real boto3 client
(and moto's SQS for the notifications)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import botocore.httpsession
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from crowdledger.testing.mturk import FakeMTurk, mturk_client

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

WORKER = "A1B2C3D4E5F6G7"
OTHER = "A9Z8Y7X6W5V4U3"


@pytest.fixture
def fake() -> FakeMTurk:
    return FakeMTurk()


@pytest.fixture
def client(fake: FakeMTurk) -> MTurkClient:
    return mturk_client(fake)


@pytest.fixture
def assignment(fake: FakeMTurk) -> str:
    return fake.add_assignment(fake.add_hit(hit_type_id="3HITTYPE"), WORKER)


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    response: Any = exc.value.response
    return str(response["Error"]["Code"]), str(response["Error"]["Message"])


def test_approve_with_feedback_then_again_is_refused(
    fake: FakeMTurk, client: MTurkClient, assignment: str
) -> None:
    client.approve_assignment(AssignmentId=assignment, RequesterFeedback="Thanks!")
    got = client.get_assignment(AssignmentId=assignment)["Assignment"]
    assert (got["AssignmentStatus"], got.get("RequesterFeedback")) == ("Approved", "Thanks!")
    with pytest.raises(ClientError) as refused:
        client.approve_assignment(AssignmentId=assignment)
    assert _error(refused)[0] == "RequestError"
    assert fake.assignment_status(assignment) == "Approved"


def test_reject_needs_feedback_and_override_reverses_it(
    fake: FakeMTurk, client: MTurkClient, assignment: str
) -> None:
    with pytest.raises(Exception, match="RequesterFeedback"):
        client.reject_assignment(AssignmentId=assignment)  # type: ignore[call-arg]
    client.reject_assignment(AssignmentId=assignment, RequesterFeedback="Wrong answer")
    with pytest.raises(ClientError):
        client.approve_assignment(AssignmentId=assignment)
    assert fake.assignment_status(assignment) == "Rejected"
    client.approve_assignment(AssignmentId=assignment, OverrideRejection=True)
    assert fake.assignment_status(assignment) == "Approved"


def test_get_assignment_carries_the_worker_and_its_hit(
    client: MTurkClient, assignment: str
) -> None:
    reply = client.get_assignment(AssignmentId=assignment)
    assert reply["Assignment"]["WorkerId"] == WORKER
    assert reply["HIT"]["HITId"] == reply["Assignment"]["HITId"]


def test_send_bonus_pays_once_per_token(
    fake: FakeMTurk, client: MTurkClient, assignment: str
) -> None:
    call = {
        "WorkerId": WORKER,
        "BonusAmount": "0.50",
        "AssignmentId": assignment,
        "Reason": "Great work",
        "UniqueRequestToken": "bonus-1",
    }
    client.send_bonus(**call)
    with pytest.raises(ClientError) as again:
        client.send_bonus(**call)
    code, message = _error(again)
    assert code == "RequestError"
    assert "bonus-1" in message
    assert "request" in message
    assert [b["BonusAmount"] for b in fake.bonuses()] == ["0.50"]
    # Another token is another bonus.
    client.send_bonus(**{**call, "UniqueRequestToken": "bonus-2"})
    listed = client.list_bonus_payments(AssignmentId=assignment)["BonusPayments"]
    assert [(b["WorkerId"], b["BonusAmount"]) for b in listed] == [(WORKER, "0.50")] * 2
    assert str(fake.balance) == "9998.80"


def test_send_bonus_refuses_another_worker_and_an_empty_balance(
    fake: FakeMTurk, client: MTurkClient, assignment: str
) -> None:
    with pytest.raises(ClientError) as wrong:
        client.send_bonus(WorkerId=OTHER, BonusAmount="1", AssignmentId=assignment, Reason="x")
    assert "did not work on" in _error(wrong)[1]
    fake.balance = Decimal("1.00")
    with pytest.raises(ClientError) as poor:
        client.send_bonus(WorkerId=WORKER, BonusAmount="1", AssignmentId=assignment, Reason="x")
    assert "insufficient funds" in _error(poor)[1]
    assert fake.bonuses() == []


def test_a_lost_reply_takes_effect_and_the_retry_meets_it(
    fake: FakeMTurk, client: MTurkClient, assignment: str
) -> None:
    """``lost``: carried out, the connection drops; botocore retries the same token."""
    fake.fail_next("SendBonus", kind="lost")
    with pytest.raises(ClientError) as retried:
        client.send_bonus(
            WorkerId=WORKER,
            BonusAmount="2.00",
            AssignmentId=assignment,
            Reason="r",
            UniqueRequestToken="t-lost",
        )
    assert "t-lost" in _error(retried)[1]
    assert len(fake.bonuses()) == 1
    assert [c[0] for c in fake.calls].count("SendBonus") == 2


def test_lost_reply_without_retries_is_a_timeout(fake: FakeMTurk, assignment: str) -> None:
    client = mturk_client(fake, max_attempts=0)
    fake.fail_next("ApproveAssignment", kind="lost")
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.approve_assignment(AssignmentId=assignment)
    assert fake.assignment_status(assignment) == "Approved"


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_notifications_go_to_the_queue(fake: FakeMTurk, client: MTurkClient, sqs: Any) -> None:
    queue = sqs.create_queue(QueueName="mturk-events")["QueueUrl"]
    fake.sqs_client = sqs
    hit = fake.add_hit(hit_type_id="3HITTYPE")
    client.update_notification_settings(
        HITTypeId="3HITTYPE",
        Notification={
            "Destination": queue,
            "Transport": "SQS",
            "Version": "2014-08-15",
            "EventTypes": ["AssignmentSubmitted", "HITReviewable"],
        },
        Active=True,
    )
    assert fake.notification_settings("3HITTYPE") is not None
    done = fake.add_assignment(hit, WORKER)
    assert fake.notify("HITReviewable", hit_id=hit)
    assert not fake.notify("AssignmentReturned", assignment_id=done)  # not subscribed
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    events = [json.loads(m["Body"])["Events"][0] for m in messages]
    assert [e["EventType"] for e in events] == ["AssignmentSubmitted", "HITReviewable"]
    assert events[0]["AssignmentId"] == done
    assert "WorkerId" not in events[0]
    assert "AssignmentId" not in events[1]
    # Deactivated: nothing more is sent.
    client.update_notification_settings(HITTypeId="3HITTYPE", Active=False)
    fake.add_assignment(hit, OTHER)
    assert len(fake.events_sent) == 2


def test_notification_settings_are_checked(fake: FakeMTurk, client: MTurkClient) -> None:
    spec = {
        "Destination": "not a queue",
        "Transport": "SQS",
        "Version": "2014-08-15",
        "EventTypes": ["AssignmentSubmitted"],
    }
    with pytest.raises(ClientError) as unknown:
        client.update_notification_settings(HITTypeId="3NOSUCHTYPE", Notification=spec)  # type: ignore[arg-type]
    assert _error(unknown)[0] == "RequestError"
    fake.add_hit(hit_type_id="3HITTYPE")
    with pytest.raises(ClientError) as bad:
        client.update_notification_settings(HITTypeId="3HITTYPE", Notification=spec)  # type: ignore[arg-type]
    assert _error(bad)[0] == "ParameterValidationError"
    with pytest.raises(ClientError) as nothing:
        client.update_notification_settings(HITTypeId="3HITTYPE", Active=True)
    assert _error(nothing)[0] == "RequestError"
    assert fake.notification_settings("3HITTYPE") is None
