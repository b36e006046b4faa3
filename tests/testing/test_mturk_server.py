"""Tests of FakeMTurkServer: a real boto3 client talks to the fake over HTTP."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from crowdledger.testing.mturk import FakeMTurk, _instant_retries
from crowdledger.testing.mturk_server import FakeMTurkServer

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

WORKER = "A1B2C3D4E5F6G7"


@cache
def session() -> boto3.session.Session:
    """One shared session: its loader caches the service model, so clients build fast."""
    return boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )


def http_client(server: FakeMTurkServer, *, instant_retries: bool = True) -> MTurkClient:
    """A plain boto3 client pointed at the server (nothing attached to it)."""
    client = session().client(
        "mturk",
        endpoint_url=server.url,
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    if instant_retries:  # botocore still decides what to retry; only the sleep is skipped
        _instant_retries(client)
    return client


def create_type(client: MTurkClient, name: str = "crowdledger-test") -> str:
    created = client.create_qualification_type(
        Name=name, Description="a test qualification", QualificationTypeStatus="Active"
    )
    return created["QualificationType"]["QualificationTypeId"]


@pytest.fixture
def fake() -> FakeMTurk:
    return FakeMTurk(page_size_cap=2)


@pytest.fixture
def server(fake: FakeMTurk) -> Iterator[FakeMTurkServer]:
    with FakeMTurkServer(fake) as running:
        yield running


@pytest.fixture
def client(server: FakeMTurkServer) -> MTurkClient:
    return http_client(server)


def test_create_and_list_qualification_types(client: MTurkClient, fake: FakeMTurk) -> None:
    ids = {create_type(client, f"type-{n}") for n in range(3)}

    listed = client.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert listed["ResponseMetadata"]["RequestId"]
    paginator = client.get_paginator("list_qualification_types")
    pages = list(paginator.paginate(MustBeRequestable=False, MustBeOwnedByCaller=True))

    assert len(pages) == 2  # page_size_cap=2: NextToken round-trips over HTTP
    assert {t["QualificationTypeId"] for p in pages for t in p["QualificationTypes"]} == ids
    assert set(fake.qualification_types()) == ids
    assert fake.qualification_types(sandbox=True) == {}


def test_associate_without_notification_reaches_the_fake(
    client: MTurkClient, fake: FakeMTurk
) -> None:
    type_id = create_type(client)

    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, IntegerValue=7, SendNotification=False
    )

    assert fake.worker_values(type_id) == {WORKER: 7}
    assert fake.calls[-1] == (
        "AssociateQualificationWithWorker",
        {
            "QualificationTypeId": type_id,
            "WorkerId": WORKER,
            "IntegerValue": 7,
            "SendNotification": False,
        },
    )
    score = client.get_qualification_score(QualificationTypeId=type_id, WorkerId=WORKER)
    assert score["Qualification"]["IntegerValue"] == 7


def test_duplicate_name_raises_request_error_with_turk_error_code(client: MTurkClient) -> None:
    create_type(client, "only-once")

    with pytest.raises(client.exceptions.RequestError) as caught:
        create_type(client, "only-once")

    response = cast("dict[str, Any]", caught.value.response)
    assert response["Error"]["Code"] == "RequestError"
    assert response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationTypeAlreadyExists"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_throttling_is_retried_transparently(client: MTurkClient, fake: FakeMTurk) -> None:
    fake.fail_next("CreateQualificationType", kind="throttle", times=2)

    created = client.create_qualification_type(
        Name="throttled", Description="d", QualificationTypeStatus="Active"
    )

    assert created["ResponseMetadata"]["RetryAttempts"] == 2
    assert [op for op, _ in fake.calls] == ["CreateQualificationType"] * 3
    assert list(fake.qualification_types()) == [created["QualificationType"]["QualificationTypeId"]]


def test_throttling_beyond_the_retry_budget_surfaces(client: MTurkClient, fake: FakeMTurk) -> None:
    fake.fail_next(None, kind="throttle", times=10)

    with pytest.raises(ClientError) as caught:
        client.get_account_balance()

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    assert len(fake.calls) == 4


def test_service_fault_is_retried_then_raised(client: MTurkClient, fake: FakeMTurk) -> None:
    fake.fail_next("GetAccountBalance", kind="service_fault", times=10)

    with pytest.raises(client.exceptions.ServiceFault) as caught:
        client.get_account_balance()

    response = cast("dict[str, Any]", caught.value.response)
    assert response["TurkErrorCode"] == "AWS.ServiceUnavailable"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["ResponseMetadata"]["MaxAttemptsReached"] is True


def test_raw_http_faults_pass_through(client: MTurkClient, fake: FakeMTurk) -> None:
    fake.fail_next("GetAccountBalance", kind="http503")
    fake.fail_next("GetAccountBalance", kind="http500")

    balance = client.get_account_balance()

    assert balance["ResponseMetadata"]["RetryAttempts"] == 2


def test_sandbox_server_uses_the_sandbox_namespace(fake: FakeMTurk) -> None:
    with FakeMTurkServer(fake, sandbox=True) as sandbox_server:
        type_id = create_type(http_client(sandbox_server), "sandboxed")

    assert set(fake.qualification_types(sandbox=True)) == {type_id}
    assert fake.qualification_types() == {}


def test_default_fake_and_lifecycle() -> None:
    server = FakeMTurkServer()
    with pytest.raises(RuntimeError):
        _ = server.url

    with server:
        assert server.url.startswith("http://127.0.0.1:")
        client = http_client(server)
        assert client.get_account_balance()["AvailableBalance"]
    server.stop()  # idempotent

    assert not server.running
    with pytest.raises(RuntimeError):
        _ = server.url
    assert [op for op, _ in server.fake.calls] == ["GetAccountBalance"]


def test_a_client_in_another_process_changes_the_parents_fake(
    client: MTurkClient, server: FakeMTurkServer, fake: FakeMTurk
) -> None:
    type_id = create_type(client)
    child = textwrap.dedent(
        """
        import sys

        import boto3
        import botocore.config

        url, type_id, worker = sys.argv[1:]
        client = boto3.session.Session(
            aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
        ).client(
            "mturk",
            endpoint_url=url,
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}),
        )
        client.associate_qualification_with_worker(
            QualificationTypeId=type_id, WorkerId=worker, IntegerValue=42,
            SendNotification=False,
        )
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", child, server.url, type_id, WORKER],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert fake.worker_values(type_id) == {WORKER: 42}
