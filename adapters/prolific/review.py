"""Reviews and bonuses on Prolific: submission transitions, bulk approval, bonus payments.

* Approvals (and soft rejections: Prolific has none, so they are approvals, paid) of a run
  of commands go out through ``POST /submissions/bulk-approve/``, up to
  :data:`BULK_APPROVE_MAX` ids per call; a bulk call Prolific refuses (an unknown id makes
  it refuse them all) falls back to one transition per submission, so each gets its own
  answer.
* ``POST /submissions/{id}/transition/`` with APPROVE, or REJECT with the message (at least
  100 characters) and the ``rejection_category``. A transition Prolific refuses is checked
  with ``GET /submissions/{id}/``: a submission already in the wanted state is success (a
  retry after a lost reply), one still ``PROCESSING`` is tried again later, anything else
  is Prolific's refusal, recorded with its words. Prolific cannot reverse a rejection:
  approving what it holds as rejected is refused here, before anything is sent.
* A bonus: the submission's study (``GET /submissions/{id}/``), then ``POST
  /submissions/bonus-payments/`` creates the payment (nothing is paid: creating twice after
  a lost reply leaves an unpaid payment behind, no money), then the payment's id is
  recorded (``ProviderCommandSent``: the command's outcome is *unknown* from here on), then
  ``POST /bulk-bonus-payments/{id}/pay/``. Paying is not idempotent, so the pay is tried
  again only after a 429 (refused before it was carried out); a reply that is lost, a 5xx,
  or one that cannot be read leaves the bonus *unknown*: never paid again without an
  operator (``crowdledger review settle``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.sync.engine import Outcome, ProviderError, QueuedCommand, SendContext
from crowdledger.adapters.sync.review_outbox import PROVIDER_STATE

if TYPE_CHECKING:
    from crowdledger.adapters.prolific.provider import ProlificAPI

__all__ = ["BULK_APPROVE_MAX", "send_reviews"]

BULK_APPROVE_MAX = 1000
_WANTED = {"approved": "APPROVED", "rejected": "REJECTED"}


def _payload(queued: QueuedCommand) -> dict[str, Any]:
    loaded = orjson.loads(queued.command.value or "{}")
    return loaded if isinstance(loaded, dict) else {}


def send_reviews(
    api: ProlificAPI, run: Sequence[QueuedCommand], context: SendContext
) -> Iterator[Outcome]:
    """Carry out a run of ``review`` and ``bonus`` commands, one outcome each, in order
    (approvals batched)."""
    approvals: list[QueuedCommand] = []
    for queued in run:
        payload = _payload(queued)
        if (
            queued.command.kind == "review"
            and PROVIDER_STATE.get(str(payload.get("state"))) == "approved"
            and not payload.get("override")
        ):
            approvals.append(queued)
            if len(approvals) == BULK_APPROVE_MAX:
                yield from _bulk_approve(api, approvals)
                approvals = []
            continue
        yield from _bulk_approve(api, approvals)
        approvals = []
        if queued.command.kind == "review":
            yield _one(queued, lambda q=queued, p=payload: _transition(api, q, p))
        else:
            yield _bonus(api, queued, payload, context)
    yield from _bulk_approve(api, approvals)


def _one(queued: QueuedCommand, attempt: Any) -> Outcome:
    try:
        return Outcome.success(queued, attempt())
    except ProviderError as error:
        return Outcome.failure(queued, error)


def _bulk_approve(api: ProlificAPI, approvals: list[QueuedCommand]) -> Iterator[Outcome]:
    if not approvals:
        return
    if len(approvals) == 1:
        only = approvals[0]
        yield _one(only, lambda: _transition(api, only, _payload(only)))
        return
    ids = [q.command.key for q in approvals]
    try:
        api.request("POST", "submissions/bulk-approve/", json={"submission_ids": ids})
    except ProviderError as error:
        if error.retryable:
            for queued in approvals:
                yield Outcome.failure(queued, error)
            return
        # Refused as a whole (an unknown id, say): one by one, each with its own answer.
        for queued in approvals:
            yield _one(queued, lambda q=queued: _transition(api, q, _payload(q)))
        return
    for queued in approvals:
        yield Outcome.success(queued, str(_payload(queued).get("state")))


def _transition(api: ProlificAPI, queued: QueuedCommand, payload: dict[str, Any]) -> str:
    submission = queued.command.key
    state = str(payload.get("state"))
    wanted = _WANTED[PROVIDER_STATE[state]]
    if payload.get("override"):
        raise ProviderError(
            f"Prolific cannot reverse a rejection: submission {submission} stays REJECTED "
            "there (its transitions cannot be reverted)",
            code="irreversible",
        )
    body: dict[str, Any] = {"action": "APPROVE" if wanted == "APPROVED" else "REJECT"}
    if wanted == "REJECTED":
        body["message"] = payload.get("feedback")
        body["rejection_category"] = payload.get("category")
    try:
        api.request("POST", f"submissions/{submission}/transition/", json=body)
    except ProviderError as error:
        if error.retryable:
            raise
        held = _status(api, submission)
        if held == wanted:
            return state  # already so: a retry after a lost reply
        if held == "PROCESSING":
            raise ProviderError(
                f"Prolific is still processing submission {submission}; tried again later",
                code="processing",
                retryable=True,
            ) from None
        raise ProviderError(f"{error} (Prolific holds it {held})", code=error.code) from None
    return state


def _status(api: ProlificAPI, submission: str) -> str:
    reply = api.request("GET", f"submissions/{submission}/")
    return str(reply.get("status")) if isinstance(reply, dict) else "unknown"


def _bonus(
    api: ProlificAPI, queued: QueuedCommand, payload: dict[str, Any], context: SendContext
) -> Outcome:
    if context.mark_sent is None:
        return Outcome.failure(
            queued,
            ProviderError(
                "a Prolific bonus is paid only through the outbox, which records the pay "
                "before it is sent",
                code="unsafe",
            ),
        )
    submission = str(payload.get("submission"))
    participant = queued.command.subject.partition(":")[2]
    try:
        found = api.request("GET", f"submissions/{submission}/")
        study = found.get("study_id") if isinstance(found, dict) else None
        if not isinstance(study, str) or not study:
            raise ProviderError(
                f"Prolific's reply to GET submissions/{submission}/ names no study",
                code="unreadable_reply",
                retryable=True,
            )
        created = api.request(
            "POST",
            "submissions/bonus-payments/",
            json={"study_id": study, "csv_bonuses": f"{participant},{payload.get('amount')}"},
        )
        payment = created.get("id") if isinstance(created, dict) else None
        if not isinstance(payment, str) or not payment:
            raise ProviderError(
                "Prolific's reply to creating the bonus payment has no id (an unpaid payment "
                "may have been created: it costs nothing)",
                code="unreadable_reply",
                retryable=True,
            )
    except ProviderError as error:
        return Outcome.failure(queued, error)
    # From here on the outcome is unknown until the answer is recorded.
    context.mark_sent(queued, f"bonus payment {payment}")
    return _pay(api, queued, payment)


def _pay(api: ProlificAPI, queued: QueuedCommand, payment: str) -> Outcome:
    from crowdledger.adapters.prolific.provider import _Transient

    path = f"bulk-bonus-payments/{payment}/pay/"
    for attempt in range(max(1, api.attempts)):
        try:
            api.once("POST", path, None, None)
        except _Transient as transient:
            if transient.error.code == "429" and attempt + 1 < api.attempts:
                api._sleep(min(transient.retry_after or 2.0**attempt, 60.0))
                continue  # refused before it was carried out: safe to ask again
            return Outcome.unanswered_unsafe(
                queued,
                ProviderError(
                    f"paying bonus payment {payment} got no answer ({transient.error}); it "
                    "may have been paid: never paid again without `crowdledger review settle`",
                    code=transient.error.code,
                ),
            )
        except ProviderError as error:
            if error.retryable:  # a reply that cannot be read: it may have been paid
                return Outcome.unanswered_unsafe(queued, error)
            return Outcome.failure(queued, error)  # refused: nothing was paid
        return Outcome.success(queued, "paid")
    raise AssertionError("unreachable")  # pragma: no cover
