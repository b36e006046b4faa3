"""Tests of the MTurk fake, always through a real boto3 client."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import botocore.httpsession
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger.testing.mturk import (
    ADULT,
    LOCALE,
    MASTERS_PRODUCTION,
    MASTERS_SANDBOX,
    NUMBER_HITS_APPROVED,
    PERCENT_ASSIGNMENTS_APPROVED,
    FakeMTurk,
    mturk_client,
)

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

WORKER = "A1B2C3D4E5F6G7"
HIT_BASICS: dict[str, Any] = {
    "LifetimeInSeconds": 3600,
    "AssignmentDurationInSeconds": 600,
    "Reward": "0.50",
    "Title": "Label images",
    "Description": "Label ten images",
    "Question": "<ExternalQuestion/>",
}


def worker(n: int) -> str:
    return f"AW{n:06d}"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the MTurk fake let a request reach the network")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", refuse)


@pytest.fixture
def fake() -> FakeMTurk:
    return FakeMTurk()


@pytest.fixture
def client(fake: FakeMTurk) -> MTurkClient:
    return mturk_client(fake)


@pytest.fixture
def sandbox(fake: FakeMTurk) -> MTurkClient:
    return mturk_client(fake, sandbox=True)


def create_type(client: MTurkClient, name: str, description: str = "desc") -> str:
    response = client.create_qualification_type(
        Name=name, Description=description, QualificationTypeStatus="Active"
    )
    return response["QualificationType"]["QualificationTypeId"]


def error_of(info: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return dict(info.value.response)


# ------------------------------------------------------------------ qualification types


def test_create_get_and_list_qualification_type(client: MTurkClient, fake: FakeMTurk) -> None:
    created = client.create_qualification_type(
        Name="Good labeller",
        Description="Passed the gold set",
        QualificationTypeStatus="Active",
        Keywords="labels",
    )["QualificationType"]
    type_id = created["QualificationTypeId"]
    assert type_id.isalnum()
    assert type_id.isupper()
    assert isinstance(created["CreationTime"], dt.datetime)
    assert created["IsRequestable"] is True
    assert created["AutoGranted"] is False
    fetched = client.get_qualification_type(QualificationTypeId=type_id)["QualificationType"]
    assert fetched == created
    assert set(fake.qualification_types()) == {type_id}
    assert fake.qualification_types(sandbox=True) == {}
    listed = client.list_qualification_types(MustBeRequestable=True, MustBeOwnedByCaller=True)
    assert [t["QualificationTypeId"] for t in listed["QualificationTypes"]] == [type_id]
    assert listed["NumResults"] == 1
    assert "NextToken" not in listed


def test_duplicate_name_is_a_request_error_with_turk_error_code(
    client: MTurkClient, fake: FakeMTurk
) -> None:
    create_type(client, "Dup")
    with pytest.raises(client.exceptions.RequestError) as info:
        create_type(client, "Dup")
    response = error_of(info)
    assert response["Error"]["Code"] == "RequestError"
    assert response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationTypeAlreadyExists"
    assert "already created a QualificationType with this name" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(fake.qualification_types()) == 1
    assert [name for name, _ in fake.calls] == ["CreateQualificationType"] * 2


def test_deleted_name_stays_reserved(client: MTurkClient, fake: FakeMTurk) -> None:
    type_id = create_type(client, "Gone")
    client.delete_qualification_type(QualificationTypeId=type_id)
    assert fake.qualification_types() == {}
    with pytest.raises(client.exceptions.RequestError) as info:
        client.get_qualification_type(QualificationTypeId=type_id)
    assert error_of(info)["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationTypeDoesNotExist"
    with pytest.raises(client.exceptions.RequestError):
        create_type(client, "Gone")


def test_system_types_are_gettable_and_listed_only_when_not_requestable(
    client: MTurkClient, sandbox: MTurkClient
) -> None:
    create_type(client, "Mine")
    system = {MASTERS_PRODUCTION, NUMBER_HITS_APPROVED, PERCENT_ASSIGNMENTS_APPROVED, LOCALE, ADULT}
    for type_id in system:
        got = client.get_qualification_type(QualificationTypeId=type_id)["QualificationType"]
        assert got["IsRequestable"] is False
    paginator = client.get_paginator("list_qualification_types")
    everything = {
        t["QualificationTypeId"]
        for page in paginator.paginate(MustBeRequestable=False)
        for t in page["QualificationTypes"]
    }
    assert system < everything
    assert len(everything) == len(system) + 1
    requestable = client.list_qualification_types(MustBeRequestable=True)["QualificationTypes"]
    assert [t["Name"] for t in requestable] == ["Mine"]
    # Masters has another id in the sandbox; the production id does not exist there.
    sandbox.get_qualification_type(QualificationTypeId=MASTERS_SANDBOX)
    with pytest.raises(sandbox.exceptions.RequestError):
        sandbox.get_qualification_type(QualificationTypeId=MASTERS_PRODUCTION)


def test_list_types_paginates_over_100_and_filters_by_query(client: MTurkClient) -> None:
    ids = [create_type(client, f"type-{n:03d}", "alpha" if n % 2 else "beta") for n in range(130)]
    paginator = client.get_paginator("list_qualification_types")
    pages = list(
        paginator.paginate(
            MustBeRequestable=True, MustBeOwnedByCaller=True, PaginationConfig={"PageSize": 100}
        )
    )
    assert [page["NumResults"] for page in pages] == [100, 30]
    listed = [t["QualificationTypeId"] for page in pages for t in page["QualificationTypes"]]
    assert listed == ids
    default_pages = list(paginator.paginate(MustBeRequestable=True))
    assert len(default_pages) == 13  # 10 per page without MaxResults
    alpha = paginator.paginate(MustBeRequestable=True, Query="ALPHA").build_full_result()
    assert len(alpha["QualificationTypes"]) == 65
    by_name = client.list_qualification_types(MustBeRequestable=True, Query="type-007")
    assert [t["QualificationTypeId"] for t in by_name["QualificationTypes"]] == [ids[7]]


def test_max_results_out_of_range(client: MTurkClient, fake: FakeMTurk) -> None:
    with pytest.raises(ClientError) as info:
        client.list_worker_blocks(MaxResults=101)
    assert not isinstance(info.value, client.exceptions.RequestError)
    assert error_of(info)["Error"]["Code"] == "ParameterValidationError"
    assert "MaxResults" in error_of(info)["Error"]["Message"]
    with pytest.raises(ParamValidationError):  # botocore checks the minimum itself
        client.list_worker_blocks(MaxResults=0)
    assert [name for name, _ in fake.calls] == ["ListWorkerBlocks"]


def test_foreign_or_garbled_next_token_is_rejected(client: MTurkClient) -> None:
    for n in range(3):
        client.create_worker_block(WorkerId=worker(n), Reason="spam")
    token = client.list_worker_blocks(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as info:
        client.list_hits(NextToken=token)
    assert error_of(info)["Error"]["Code"] == "ParameterValidationError"
    with pytest.raises(ClientError):
        client.list_worker_blocks(NextToken="not-a-token")


# ------------------------------------------------------------------ worker qualifications


def test_associate_notifies_by_default_and_not_when_told_not_to(
    client: MTurkClient, fake: FakeMTurk
) -> None:
    type_id = create_type(client, "Q")
    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, IntegerValue=7
    )
    assert fake.notifications_sent == [
        {
            "operation": "AssociateQualificationWithWorker",
            "namespace": "production",
            "WorkerId": WORKER,
            "QualificationTypeId": type_id,
            "IntegerValue": 7,
        }
    ]
    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId="A9", IntegerValue=3, SendNotification=False
    )
    assert len(fake.notifications_sent) == 1
    assert fake.worker_values(type_id) == {WORKER: 7, "A9": 3}
    score = client.get_qualification_score(QualificationTypeId=type_id, WorkerId=WORKER)
    assert score["Qualification"]["IntegerValue"] == 7
    assert score["Qualification"]["Status"] == "Granted"
    assert isinstance(score["Qualification"]["GrantTime"], dt.datetime)


def test_system_types_cannot_be_assigned(client: MTurkClient, fake: FakeMTurk) -> None:
    with pytest.raises(client.exceptions.RequestError):
        client.associate_qualification_with_worker(
            QualificationTypeId=MASTERS_PRODUCTION, WorkerId=WORKER, SendNotification=False
        )
    assert fake.worker_values(MASTERS_PRODUCTION) == {}


def test_disassociate_revokes(client: MTurkClient, fake: FakeMTurk) -> None:
    type_id = create_type(client, "Q")
    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, IntegerValue=1, SendNotification=False
    )
    client.disassociate_qualification_from_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, Reason="left the pool"
    )
    assert fake.worker_values(type_id) == {}
    with pytest.raises(client.exceptions.RequestError) as info:
        client.get_qualification_score(QualificationTypeId=type_id, WorkerId=WORKER)
    assert "You requested a Qualification that does not exist." in str(info.value)
    granted = client.list_workers_with_qualification_type(QualificationTypeId=type_id)
    assert granted["Qualifications"] == []
    revoked = client.list_workers_with_qualification_type(
        QualificationTypeId=type_id, Status="Revoked"
    )
    assert [q["WorkerId"] for q in revoked["Qualifications"]] == [WORKER]
    with pytest.raises(client.exceptions.RequestError):  # nothing left to revoke
        client.disassociate_qualification_from_worker(QualificationTypeId=type_id, WorkerId=WORKER)


def test_get_qualification_score_errors(client: MTurkClient) -> None:
    type_id = create_type(client, "Q")
    with pytest.raises(client.exceptions.RequestError) as info:
        client.get_qualification_score(QualificationTypeId=type_id, WorkerId=WORKER)
    assert error_of(info)["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationDoesNotExist"
    with pytest.raises(client.exceptions.RequestError):
        client.get_qualification_score(QualificationTypeId="3NOSUCHTYPE", WorkerId=WORKER)
    with pytest.raises(client.exceptions.RequestError):
        client.get_qualification_score(QualificationTypeId=ADULT, WorkerId=WORKER)


def test_list_workers_with_qualification_type_paginates_over_100(
    client: MTurkClient, fake: FakeMTurk
) -> None:
    type_id = create_type(client, "Q")
    workers = [worker(n) for n in range(150)]
    for n, worker_id in enumerate(workers):
        client.associate_qualification_with_worker(
            QualificationTypeId=type_id, WorkerId=worker_id, IntegerValue=n, SendNotification=False
        )
    paginator = client.get_paginator("list_workers_with_qualification_type")
    pages = list(
        paginator.paginate(QualificationTypeId=type_id, PaginationConfig={"PageSize": 100})
    )
    assert [len(page["Qualifications"]) for page in pages] == [100, 50]
    assert [q["WorkerId"] for page in pages for q in page["Qualifications"]] == workers
    assert fake.worker_values(type_id) == {w: n for n, w in enumerate(workers)}
    assert fake.notifications_sent == []


@pytest.mark.parametrize("bad", ["bad id", "a123", "B123", "A12-3", "A" + "1" * 64])
def test_worker_id_pattern_is_enforced(client: MTurkClient, fake: FakeMTurk, bad: str) -> None:
    type_id = create_type(client, "Q")
    with pytest.raises(ClientError) as info:
        client.create_worker_block(WorkerId=bad, Reason="spam")
    assert error_of(info)["Error"]["Code"] == "ParameterValidationError"
    assert "WorkerId" in error_of(info)["Error"]["Message"]
    with pytest.raises(ClientError):
        client.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId=bad)
    assert fake.blocks() == {}
    assert fake.worker_values(type_id) == {}
    assert fake.notifications_sent == []


# ------------------------------------------------------------------ blocks and messages


def test_worker_blocks_paginate_and_update(client: MTurkClient, fake: FakeMTurk) -> None:
    for n in range(120):
        client.create_worker_block(WorkerId=worker(n), Reason=f"reason {n}")
    client.create_worker_block(WorkerId=worker(5), Reason="new reason")
    client.delete_worker_block(WorkerId=worker(6), Reason="appeal")
    client.delete_worker_block(WorkerId="ANEVERBLOCKED")  # no-op
    paginator = client.get_paginator("list_worker_blocks")
    blocks = paginator.paginate().build_full_result()["WorkerBlocks"]
    assert len(blocks) == 119
    assert len({b["WorkerId"] for b in blocks}) == 119
    assert fake.blocks()[worker(5)] == "new reason"
    assert worker(6) not in fake.blocks()


def test_page_size_cap_makes_short_pages(fake: FakeMTurk) -> None:
    capped = FakeMTurk(page_size_cap=7)
    client = mturk_client(capped)
    for n in range(20):
        client.create_worker_block(WorkerId=worker(n), Reason="r")
    pages = list(
        client.get_paginator("list_worker_blocks").paginate(PaginationConfig={"PageSize": 100})
    )
    assert [page["NumResults"] for page in pages] == [7, 7, 6]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(0, 40), page_size=st.integers(1, 100), cap=st.integers(1, 100))
def test_pagination_never_skips_or_repeats(count: int, page_size: int, cap: int) -> None:
    fake = FakeMTurk(page_size_cap=cap)
    client = mturk_client(fake)
    for n in range(count):
        client.create_worker_block(WorkerId=worker(n), Reason="r")
    pages = client.get_paginator("list_worker_blocks").paginate(
        PaginationConfig={"PageSize": page_size}
    )
    seen = [b["WorkerId"] for page in pages for b in page["WorkerBlocks"]]
    assert seen == [worker(n) for n in range(count)]


def test_notify_workers(client: MTurkClient, fake: FakeMTurk) -> None:
    with pytest.raises(ClientError) as info:
        client.notify_workers(
            Subject="s", MessageText="m", WorkerIds=[worker(n) for n in range(101)]
        )
    assert error_of(info)["Error"]["Code"] == "ParameterValidationError"
    hit_id = fake.add_hit()
    fake.add_assignment(hit_id, WORKER, status="Approved")
    response = client.notify_workers(Subject="s", MessageText="m", WorkerIds=[WORKER, "ASTRANGER"])
    assert [f["WorkerId"] for f in response["NotifyWorkersFailureStatuses"]] == ["ASTRANGER"]
    assert response["NotifyWorkersFailureStatuses"][0]["NotifyWorkersFailureCode"] == "HardFailure"
    assert [(n["operation"], n["WorkerId"]) for n in fake.notifications_sent] == [
        ("NotifyWorkers", WORKER)
    ]


# ------------------------------------------------------------------ faults and retries


def test_throttling_is_retried_transparently(fake: FakeMTurk, client: MTurkClient) -> None:
    fake.fail_next("CreateWorkerBlock", kind="throttle", times=2)
    response = client.create_worker_block(WorkerId=WORKER, Reason="spam")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [name for name, _ in fake.calls] == ["CreateWorkerBlock"] * 3
    assert fake.blocks() == {WORKER: "spam"}


def test_throttling_error_shape_when_retries_run_out(fake: FakeMTurk) -> None:
    client = mturk_client(fake, max_attempts=1)
    fake.fail_next(None, kind="throttle", times=5)
    with pytest.raises(ClientError) as info:
        client.list_hits()
    response = error_of(info)
    assert response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert "TurkErrorCode" not in response
    assert len(fake.calls) == 2


def test_service_fault_surfaces_after_retries_and_changes_nothing(fake: FakeMTurk) -> None:
    client = mturk_client(fake, max_attempts=2)
    fake.fail_next("CreateWorkerBlock", kind="service_fault", times=10)
    with pytest.raises(client.exceptions.ServiceFault) as info:
        client.create_worker_block(WorkerId=WORKER, Reason="spam")
    response = error_of(info)
    assert response["Error"]["Code"] == "ServiceFault"
    assert response["TurkErrorCode"] == "AWS.ServiceUnavailable"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert len(fake.calls) == 3  # max_attempts counts retries: 1 + 2
    assert fake.blocks() == {}
    fake.clear_faults()
    client.create_worker_block(WorkerId=WORKER, Reason="spam")
    assert fake.blocks() == {WORKER: "spam"}


@pytest.mark.parametrize(("kind", "code"), [("http500", "500"), ("http503", "503")])
def test_raw_http_faults(fake: FakeMTurk, kind: str, code: str) -> None:
    client = mturk_client(fake, max_attempts=1)
    fake.fail_next("GetAccountBalance", kind=kind, times=2)  # type: ignore[arg-type]
    with pytest.raises(ClientError) as info:
        client.get_account_balance()
    assert error_of(info)["Error"]["Code"] == code
    fake.fail_next("GetAccountBalance", kind=kind)  # type: ignore[arg-type]
    assert client.get_account_balance()["AvailableBalance"] == "10000.00"


def test_fail_every_with_retries_changes_state_exactly_once(fake: FakeMTurk) -> None:
    client = mturk_client(fake, max_attempts=3)
    fake.fail_every(3, kind="service_fault", operations={"CreateWorkerBlock"})
    for n in range(10):
        client.create_worker_block(WorkerId=worker(n), Reason="r")
    assert fake.blocks() == {worker(n): "r" for n in range(10)}
    attempts = [name for name, _ in fake.calls]
    assert len(attempts) == 14  # every third request failed and was retried once


def test_fault_arguments_are_checked(fake: FakeMTurk) -> None:
    with pytest.raises(ValueError, match="not an MTurk operation"):
        fake.fail_next("create_worker_block")
    with pytest.raises(ValueError, match="kind"):
        fake.fail_next(None, kind="boom")  # type: ignore[arg-type]


def test_unimplemented_operation_is_an_error_not_the_network(client: MTurkClient) -> None:
    with pytest.raises(ClientError) as info:
        client.delete_hit(HITId="3X")
    assert error_of(info)["Error"]["Code"] == "FakeMTurkNotImplemented"


# ------------------------------------------------------------------ assignments


def test_approve_and_reject_semantics(client: MTurkClient, fake: FakeMTurk) -> None:
    hit_id = fake.add_hit()
    first = fake.add_assignment(hit_id, WORKER, answer_xml="<answers/>")
    second = fake.add_assignment(hit_id, "A2OTHER")
    client.approve_assignment(AssignmentId=first, RequesterFeedback="thanks")
    with pytest.raises(client.exceptions.RequestError) as info:
        client.approve_assignment(AssignmentId=first)
    assert "This operation can be called with a status of: Submitted" in str(info.value)
    with pytest.raises(client.exceptions.RequestError):
        client.reject_assignment(AssignmentId=first, RequesterFeedback="no")
    client.reject_assignment(AssignmentId=second, RequesterFeedback="wrong labels")
    with pytest.raises(client.exceptions.RequestError):
        client.approve_assignment(AssignmentId=second)
    assert client.get_assignment(AssignmentId=second)["Assignment"]["AssignmentStatus"] == (
        "Rejected"
    )
    client.approve_assignment(AssignmentId=second, OverrideRejection=True)
    got = client.get_assignment(AssignmentId=first)
    assert got["Assignment"]["AssignmentStatus"] == "Approved"
    assert got["Assignment"]["RequesterFeedback"] == "thanks"
    assert got["Assignment"]["Answer"] == "<answers/>"
    assert isinstance(got["Assignment"]["ApprovalTime"], dt.datetime)
    assert got["HIT"]["HITId"] == hit_id
    statuses = client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Approved"])
    assert {a["AssignmentId"] for a in statuses["Assignments"]} == {first, second}
    with pytest.raises(client.exceptions.RequestError):
        client.get_assignment(AssignmentId="3NOSUCHASSIGNMENT")


def test_list_assignments_for_hit_paginates(client: MTurkClient, fake: FakeMTurk) -> None:
    hit_id = fake.add_hit()
    submit = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    ids = [fake.add_assignment(hit_id, worker(n), submit_time=submit) for n in range(105)]
    paginator = client.get_paginator("list_assignments_for_hit")
    result = paginator.paginate(HITId=hit_id, PaginationConfig={"PageSize": 100})
    assignments = result.build_full_result()["Assignments"]
    assert [a["AssignmentId"] for a in assignments] == ids
    assert assignments[0]["SubmitTime"] == submit
    assert client.get_hit(HITId=hit_id)["HIT"]["NumberOfAssignmentsCompleted"] == 105


# ------------------------------------------------------------------ HITs and requirements


def test_create_hit_stores_and_returns_requirements(client: MTurkClient) -> None:
    type_id = create_type(client, "Q")
    requirements: list[Any] = [
        {"QualificationTypeId": type_id, "Comparator": "GreaterThan", "IntegerValues": [80]},
        {
            "QualificationTypeId": LOCALE,
            "Comparator": "In",
            "LocaleValues": [{"Country": "US", "Subdivision": "CA"}, {"Country": "GB"}],
            "ActionsGuarded": "DiscoverPreviewAndAccept",
        },
        {"QualificationTypeId": MASTERS_PRODUCTION, "Comparator": "Exists"},
    ]
    hit = client.create_hit(**HIT_BASICS, QualificationRequirements=requirements)["HIT"]
    assert hit["HITStatus"] == "Assignable"
    assert hit["QualificationRequirements"] == requirements
    assert client.get_hit(HITId=hit["HITId"])["HIT"]["QualificationRequirements"] == requirements
    hit_type_id = client.create_hit_type(
        AssignmentDurationInSeconds=600,
        Reward="0.50",
        Title="Label images",
        Description="Label ten images",
        QualificationRequirements=requirements,
    )["HITTypeId"]
    assert hit_type_id == hit["HITTypeId"]  # identical properties, same HIT type
    again = client.create_hit_with_hit_type(
        HITTypeId=hit_type_id, LifetimeInSeconds=3600, Question="<q/>"
    )
    assert again["HIT"]["QualificationRequirements"] == requirements
    for_type = client.list_hits_for_qualification_type(QualificationTypeId=type_id)
    assert {h["HITId"] for h in for_type["HITs"]} == {hit["HITId"], again["HIT"]["HITId"]}


@pytest.mark.parametrize(
    ("requirement", "code"),
    [
        (
            {
                "QualificationTypeId": "<custom>",
                "Comparator": "In",
                "IntegerValues": list(range(16)),
            },
            "ParameterValidationError",
        ),
        (
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "GreaterThan",
                "LocaleValues": [{"Country": "US"}],
            },
            "ParameterValidationError",
        ),
        (
            {
                "QualificationTypeId": "<custom>",
                "Comparator": "LessThan",
                "LocaleValues": [{"Country": "US"}],
            },
            "ParameterValidationError",
        ),
        (
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In",
                "LocaleValues": [{"Country": "US"}] * 31,
            },
            "ParameterValidationError",
        ),
        (
            {"QualificationTypeId": LOCALE, "Comparator": "EqualTo", "IntegerValues": [1]},
            "ParameterValidationError",
        ),
        (
            {"QualificationTypeId": "<custom>", "Comparator": "Exists", "IntegerValues": [1]},
            "ParameterValidationError",
        ),
        (
            {"QualificationTypeId": "<custom>", "Comparator": "EqualTo", "IntegerValues": [1, 2]},
            "ParameterValidationError",
        ),
        (
            {"QualificationTypeId": "<custom>", "Comparator": "GreaterThan"},
            "ParameterValidationError",
        ),
        (
            {"QualificationTypeId": "<custom>", "Comparator": "Between", "IntegerValues": [1]},
            "ParameterValidationError",
        ),
        (
            {
                "QualificationTypeId": "<custom>",
                "Comparator": "Exists",
                "ActionsGuarded": "Everything",
            },
            "ParameterValidationError",
        ),
        (
            {
                "QualificationTypeId": MASTERS_PRODUCTION,
                "Comparator": "EqualTo",
                "IntegerValues": [1],
            },
            "ParameterValidationError",
        ),
        ({"QualificationTypeId": "3NOSUCHTYPE", "Comparator": "Exists"}, "RequestError"),
        ({"QualificationTypeId": MASTERS_SANDBOX, "Comparator": "Exists"}, "RequestError"),
    ],
)
def test_invalid_requirements_are_rejected(
    client: MTurkClient, fake: FakeMTurk, requirement: dict[str, Any], code: str
) -> None:
    type_id = create_type(client, "Q")
    if requirement["QualificationTypeId"] == "<custom>":
        requirement = {**requirement, "QualificationTypeId": type_id}
    requirements: list[Any] = [requirement]  # deliberately invalid, so not the stub's TypedDict
    with pytest.raises(ClientError) as info:
        client.create_hit(**HIT_BASICS, QualificationRequirements=requirements)
    assert error_of(info)["Error"]["Code"] == code
    with pytest.raises(ClientError):
        client.create_hit_type(
            AssignmentDurationInSeconds=600,
            Reward="0.50",
            Title="t",
            Description="d",
            QualificationRequirements=requirements,
        )
    assert client.list_hits()["HITs"] == []
    with pytest.raises(ValueError, match=r"not valid|does not exist"):
        fake.admits(WORKER, [requirement])


def test_in_with_fifteen_values_is_accepted(client: MTurkClient) -> None:
    type_id = create_type(client, "Q")
    requirement = {
        "QualificationTypeId": type_id,
        "Comparator": "In",
        "IntegerValues": [*range(15)],
    }
    client.create_hit(**HIT_BASICS, QualificationRequirements=[requirement])  # type: ignore[list-item]


def test_unique_request_token_is_idempotency_guard(client: MTurkClient) -> None:
    hit = client.create_hit(**HIT_BASICS, UniqueRequestToken="batch-1")["HIT"]
    with pytest.raises(client.exceptions.RequestError) as info:
        client.create_hit(**HIT_BASICS, UniqueRequestToken="batch-1")
    assert error_of(info)["TurkErrorCode"] == "AWS.MechanicalTurk.HitAlreadyExists"
    assert hit["HITId"] in str(info.value)
    assert len(client.list_hits()["HITs"]) == 1


def test_namespaces_are_separate(
    client: MTurkClient, sandbox: MTurkClient, fake: FakeMTurk
) -> None:
    prod_id = create_type(client, "Same name")
    sandbox_id = create_type(sandbox, "Same name")
    assert prod_id != sandbox_id
    assert set(fake.qualification_types()) == {prod_id}
    assert set(fake.qualification_types(sandbox=True)) == {sandbox_id}
    with pytest.raises(sandbox.exceptions.RequestError):
        sandbox.get_qualification_type(QualificationTypeId=prod_id)
    sandbox.create_worker_block(WorkerId=WORKER, Reason="sandbox only")
    assert fake.blocks() == {}
    assert fake.blocks(sandbox=True) == {WORKER: "sandbox only"}


# ------------------------------------------------------------------ admits


def test_admits(client: MTurkClient, fake: FakeMTurk) -> None:
    type_id = create_type(client, "Score")
    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, IntegerValue=85, SendNotification=False
    )
    outsider = "AOUTSIDER"

    def req(comparator: str, *values: int) -> dict[str, Any]:
        requirement: dict[str, Any] = {"QualificationTypeId": type_id, "Comparator": comparator}
        if values:
            requirement["IntegerValues"] = list(values)
        return requirement

    assert fake.admits(WORKER, [req("GreaterThanOrEqualTo", 85)])
    assert not fake.admits(WORKER, [req("GreaterThan", 85)])
    assert fake.admits(WORKER, [req("In", 1, 85)])
    assert not fake.admits(WORKER, [req("NotIn", 1, 85)])
    assert fake.admits(WORKER, [req("Exists")])
    assert fake.admits(outsider, [req("DoesNotExist")])
    # Not holding the type fails every comparator but DoesNotExist.
    for comparator, values in [("NotEqualTo", (1,)), ("NotIn", (1,)), ("LessThan", (100,))]:
        assert not fake.admits(outsider, [req(comparator, *values)])
    assert fake.admits(outsider, [])
    # Requirements are ANDed.
    assert not fake.admits(WORKER, [req("Exists"), req("LessThan", 50)])

    locale_in: dict[str, Any] = {
        "QualificationTypeId": LOCALE,
        "Comparator": "In",
        "LocaleValues": [{"Country": "US", "Subdivision": "CA"}, {"Country": "GB"}],
    }
    assert fake.admits(WORKER, [locale_in], locale={"Country": "US", "Subdivision": "CA"})
    assert not fake.admits(WORKER, [locale_in], locale={"Country": "US", "Subdivision": "NY"})
    assert fake.admits(WORKER, [locale_in], locale={"Country": "GB"})
    assert not fake.admits(WORKER, [locale_in])  # no locale known
    fake.set_system_value(WORKER, LOCALE, {"Country": "GB"})
    assert fake.admits(WORKER, [locale_in])
    not_us = {"QualificationTypeId": LOCALE, "Comparator": "NotEqualTo"}
    assert fake.admits(WORKER, [{**not_us, "LocaleValues": [{"Country": "US"}]}])

    masters = {"QualificationTypeId": MASTERS_PRODUCTION, "Comparator": "Exists"}
    approved = {
        "QualificationTypeId": PERCENT_ASSIGNMENTS_APPROVED,
        "Comparator": "GreaterThanOrEqualTo",
        "IntegerValues": [95],
    }
    assert not fake.admits(WORKER, [masters])
    assert not fake.admits(WORKER, [approved])  # system values exist only when seeded
    fake.set_system_value(WORKER, MASTERS_PRODUCTION, 1)
    fake.set_system_value(WORKER, PERCENT_ASSIGNMENTS_APPROVED, 97)
    assert fake.admits(WORKER, [masters, approved, req("Exists")])
    with pytest.raises(ValueError, match="does not exist"):
        fake.admits(WORKER, [masters], sandbox=True)  # production Masters id


def test_revoked_qualification_no_longer_admits(client: MTurkClient, fake: FakeMTurk) -> None:
    type_id = create_type(client, "Q")
    client.associate_qualification_with_worker(
        QualificationTypeId=type_id, WorkerId=WORKER, SendNotification=False
    )
    exists = [{"QualificationTypeId": type_id, "Comparator": "Exists"}]
    assert fake.admits(WORKER, exists)
    client.disassociate_qualification_from_worker(QualificationTypeId=type_id, WorkerId=WORKER)
    assert not fake.admits(WORKER, exists)


def test_seeding_helpers_validate(fake: FakeMTurk) -> None:
    with pytest.raises(ValueError, match="WorkerId"):
        fake.set_system_value("bad", ADULT, 1)
    with pytest.raises(ValueError, match="system"):
        fake.set_system_value(WORKER, "3NOTSYSTEM", 1)
    with pytest.raises(ValueError, match="Locale"):
        fake.set_system_value(WORKER, LOCALE, 1)
    hit_id = fake.add_hit()
    fake.add_assignment(hit_id, WORKER)
    with pytest.raises(ValueError, match="already"):
        fake.add_assignment(hit_id, WORKER)
    with pytest.raises(ValueError, match="not valid"):
        fake.add_hit(requirements=[{"QualificationTypeId": ADULT, "Comparator": "EqualTo"}])
    type_id = fake.seed_qualification_type("Seeded", sandbox=True)
    fake.seed_worker_value(type_id, WORKER, 4, sandbox=True)
    assert fake.worker_values(type_id, sandbox=True) == {WORKER: 4}
    assert fake.calls == []
    assert fake.notifications_sent == []


def test_one_fake_serves_several_clients(fake: FakeMTurk) -> None:
    production, sandbox = mturk_client(fake), mturk_client(fake, sandbox=True)
    fake.attach(production)  # attaching twice is harmless
    production.create_worker_block(WorkerId=WORKER, Reason="p")
    sandbox.create_worker_block(WorkerId=WORKER, Reason="s")
    assert len(fake.calls) == 2
    assert fake.blocks() == {WORKER: "p"}
    assert fake.blocks(sandbox=True) == {WORKER: "s"}


def test_fakes_do_not_share_state_or_hooks() -> None:
    first, second = FakeMTurk(), FakeMTurk()
    first_client, second_client = mturk_client(first), mturk_client(second)
    first_client.create_worker_block(WorkerId=WORKER, Reason="first")
    assert second_client.list_worker_blocks()["WorkerBlocks"] == []
    assert [name for name, _ in first.calls] == ["CreateWorkerBlock"]
    assert [name for name, _ in second.calls] == ["ListWorkerBlocks"]


def test_real_backoff_can_be_kept(fake: FakeMTurk) -> None:
    client = mturk_client(fake, max_attempts=1, instant_retries=False)
    fake.fail_next("GetAccountBalance", kind="service_fault")  # non-throttling: <= 50 ms backoff
    assert client.get_account_balance()["ResponseMetadata"]["RetryAttempts"] == 1
