"""Reviews and bonuses on MTurk: ApproveAssignment, RejectAssignment, SendBonus.

Every one of them is safe to send again, which is what the outbox needs (a reply lost in
a crash is sent again by the next push):

* Approving or rejecting what MTurk already holds that way is refused by MTurk (a
  ``RequestError``); the refusal is then checked with ``GetAssignment``: the assignment in
  the wanted state is success (a retry after a lost reply, or done by hand), anything
  else is MTurk's refusal, recorded with its words and the state MTurk holds (e.g. an
  assignment auto-approved before the rejection was sent).
* A soft rejection is an approval on MTurk: the worker is paid (MTurk has no soft
  rejection); approving a rejected assignment passes ``OverrideRejection``.
* ``SendBonus`` carries a ``UniqueRequestToken`` derived from the bonus id
  (:func:`~crowdledger.adapters.sync.review_outbox.bonus_token`): MTurk answers a reused
  token with an error meaning "already granted", which is success once
  ``ListBonusPayments`` shows the payment. MTurk pays bonuses in US dollars only.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from crowdledger.adapters.sync.engine import ProviderError
from crowdledger.adapters.sync.redaction import stored_error
from crowdledger.adapters.sync.review_outbox import PROVIDER_STATE, bonus_token
from crowdledger.rules.sync_plan import SyncCommand

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

__all__ = ["MAX_FEEDBACK", "carry_out_review"]

MAX_FEEDBACK = 1024  # characters of RequesterFeedback MTurk takes
_STATUS = {"approved": "Approved", "rejected": "Rejected"}


def _refused(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) == "RequestError"


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).strip()


def _feedback(text: object) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    return text if len(text) <= MAX_FEEDBACK else text[: MAX_FEEDBACK - 1] + "…"


def carry_out_review(client: MTurkClient, command: SyncCommand) -> str:
    """Carry out one ``review`` or ``bonus`` command; the fact's value afterwards."""
    payload: dict[str, Any] = orjson.loads(command.value or "{}")
    if command.kind == "review":
        return _review(client, command.key, payload)
    return _bonus(client, command, payload)


def _review(client: MTurkClient, assignment: str, payload: dict[str, Any]) -> str:
    state = str(payload.get("state"))
    wanted = _STATUS[PROVIDER_STATE[state]]
    feedback = _feedback(payload.get("feedback"))
    try:
        if wanted == "Rejected":
            if feedback is None:
                raise ProviderError(
                    "MTurk requires feedback to reject an assignment", code="FeedbackRequired"
                )
            client.reject_assignment(AssignmentId=assignment, RequesterFeedback=feedback)
        elif feedback is None:
            client.approve_assignment(
                AssignmentId=assignment, OverrideRejection=bool(payload.get("override"))
            )
        else:
            client.approve_assignment(
                AssignmentId=assignment,
                RequesterFeedback=feedback,
                OverrideRejection=bool(payload.get("override")),
            )
    except ClientError as exc:
        if not _refused(exc):
            raise
        held = client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
        if held == wanted:
            return state  # already so: a retry after a lost reply, or done by hand
        raise ProviderError(
            stored_error(
                f"MTurk refused to {'reject' if wanted == 'Rejected' else 'approve'} "
                f"assignment {assignment}: {_message(exc)} (MTurk holds it {held})"
            ),
            code=str(exc.response.get("TurkErrorCode") or "RequestError"),
        ) from None
    return state


def _amount(text: object) -> Decimal | None:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None


def _already_paid(
    client: MTurkClient, assignment: str, worker: str, payload: dict[str, Any]
) -> bool:
    amount = _amount(payload.get("amount"))
    pages = client.get_paginator("list_bonus_payments").paginate(AssignmentId=assignment)
    for page in pages:
        for paid in page.get("BonusPayments", []):
            if (
                paid.get("WorkerId") == worker
                and _amount(paid.get("BonusAmount")) == amount
                and paid.get("Reason") == payload.get("reason")
            ):
                return True
    return False


def _bonus(client: MTurkClient, command: SyncCommand, payload: dict[str, Any]) -> str:
    if payload.get("currency") != "USD":
        raise ProviderError(
            f"MTurk pays bonuses in USD only, not {payload.get('currency')}", code="Currency"
        )
    worker = command.subject.partition(":")[2]
    assignment = str(payload.get("submission"))
    token = bonus_token(command.key)
    try:
        client.send_bonus(
            WorkerId=worker,
            BonusAmount=str(payload.get("amount")),
            AssignmentId=assignment,
            Reason=str(payload.get("reason") or ""),
            UniqueRequestToken=token,
        )
    except ClientError as exc:
        if not _refused(exc):
            raise
        # A reused token means "already granted" (a retry after a lost reply): success
        # once the payment shows; any other refusal (funds, worker) is MTurk's answer.
        if _already_paid(client, assignment, worker, payload):
            return "paid"
        raise
    return "paid"
