"""The HTML pages: review queue, task, worker, rule sets, stats; and the forms they post.

Every page is rendered on the server and works without JavaScript (``static/app.js``
only adds keyboard shortcuts and "select all"). Every form posts back here with the
session's CSRF token, does one Ledger command with the signed-in token's name as
``actor``, and redirects (303) to the page it came from with a signed notice. A refused
command records nothing and comes back as the notice's error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from crowdledger.adapters.web import charts, queries
from crowdledger.adapters.web.auth import AuthError, Principal, require
from crowdledger.adapters.web.login import safe_next
from crowdledger.adapters.web.render import redirect, render
from crowdledger.domain.errors import BatchError, InvalidInputError, LedgerError
from crowdledger.domain.identifiers import parse_worker

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(require("read"))]
REVIEW_ACTIONS = ("approve", "soft-reject", "reject", "flag", "unflag")
BASE_FIELDS = frozenset(
    {"event_id", "actor", "reason", "occurred_at", "correlation_id", "idempotency_key"}
)


def _web(request: Request) -> Any:
    return request.app.state.web


def _problem(exc: LedgerError) -> str:
    if isinstance(exc, BatchError):
        return "; ".join(f"item {i + 1}: {e}" for i, e in exc.errors)
    return str(exc)


def _here(request: Request) -> str:
    """This page's path and filters (without a notice), to come back to after a form."""
    from urllib.parse import urlencode

    kept = [
        (k, v) for k, v in request.query_params.multi_items() if k in ("task", "status", "worker")
    ]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


# -- the review queue -----------------------------------------------------------------------
@router.get("/")
def review_queue(
    request: Request,
    who: Reader,
    task: str | None = None,
    status: str = "all",
    worker: str | None = None,
) -> Response:
    """Submissions waiting for review (pending and flagged), filtered by task, status and
    worker, with batch actions."""
    ledger = _web(request).ledger
    items = ledger.review_queue(task or None)
    if status in ("pending", "flagged"):
        items = [i for i in items if i.status == status]
    if worker:
        items = [i for i in items if i.worker == worker.strip()]
    answers = {}
    if items:
        shown = {i.task for i in items[:200]}
        for t in shown:
            for row in queries.task_submissions(ledger, t):
                answers[row.submission] = row
    return render(
        request,
        "queue.html",
        {
            "title": "Review queue",
            "items": items[:200],
            "total": len(items),
            "answers": answers,
            "tasks": queries.tasks(ledger),
            "filters": {"task": task or "", "status": status, "worker": worker or ""},
            "next": _here(request),
        },
    )


@router.post("/review")
def review(
    request: Request,
    who: Reader,
    action: Annotated[str, Form()],
    submission: Annotated[list[str] | None, Form()] = None,
    feedback: Annotated[str, Form(max_length=10_000)] = "",
    reason: Annotated[str, Form(max_length=10_000)] = "",
    category: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Approve, soft-reject, reject, flag or unflag the checked submissions, all or none."""
    back = safe_next(next)
    if action not in REVIEW_ACTIONS:
        return redirect(request, back, error=f"unknown action {action[:40]!r}")
    if not who.may(action):
        raise AuthError(403, "forbidden", f"the {who.role} role may not {action.replace('-', ' ')}")
    chosen = [s for s in (submission or []) if s]
    if not chosen:
        return redirect(request, back, error="select at least one submission")
    ledger = _web(request).ledger
    text = feedback.strip() or None
    why = reason.strip() or None
    try:
        if action == "approve":
            ledger.approve(chosen, feedback=text, reason=why, actor=who.actor)
        elif action == "soft-reject":
            ledger.soft_reject(chosen, feedback=text, reason=why, actor=who.actor)
        elif action == "reject":
            ledger.reject(
                chosen, feedback=text, category=category or None, reason=why, actor=who.actor
            )
        elif action == "flag":
            ledger.flag(chosen, reason=why or "flagged for a second look", actor=who.actor)
        else:
            ledger.unflag(chosen, reason=why, actor=who.actor)
    except LedgerError as exc:
        return redirect(request, back, error=f"nothing recorded: {_problem(exc)}")
    done = {"approve": "approved", "soft-reject": "soft-rejected", "reject": "rejected"}
    verb = done.get(action, action + "ged")
    count = len(chosen)
    return redirect(request, back, notice=f"{verb} {count} submission{'s' if count != 1 else ''}")


@router.post("/bonus")
def bonus(
    request: Request,
    who: Annotated[Principal, Depends(require("bonus"))],
    submission: Annotated[str, Form(max_length=500)],
    amount: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=10_000)],
    worker: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Award a bonus for one submission (to its worker unless ``worker`` says)."""
    back = safe_next(next)
    ledger = _web(request).ledger
    if not worker:
        found = queries.submission_worker(ledger, submission)
        if found is None:
            return redirect(request, back, error=f"no submission {submission[:100]!r}")
        worker = found
    try:
        event = ledger.bonus(
            worker, amount=amount.strip(), submission=submission, reason=reason, actor=who.actor
        )
    except LedgerError as exc:
        return redirect(request, back, error=f"nothing recorded: {_problem(exc)}")
    return redirect(request, back, notice=f"bonus {event.amount} {event.currency} to {worker}")


# -- a task ------------------------------------------------------------------------------------
@router.get("/tasks/{task}")
def task_page(request: Request, who: Reader, task: str) -> Response:
    """One task's submissions side by side, grouped by answer."""
    ledger = _web(request).ledger
    rows = queries.task_submissions(ledger, task)
    if not rows:
        return render(
            request,
            "error.html",
            {
                "title": "Unknown task",
                "status": 404,
                "message": f"no submissions for task {task!r}",
            },
            status=404,
        )
    groups = queries.agreement_groups(rows)
    label = {s: g.label for g in groups for s in g.submissions}
    return render(
        request,
        "task.html",
        {
            "title": f"Task {task}",
            "task": task,
            "rows": rows,
            "groups": groups,
            "label": label,
            "pending": sum(1 for r in rows if r.pending),
            "next": f"/tasks/{task}",
        },
    )


# -- a worker ----------------------------------------------------------------------------------
@router.get("/workers")
def find_worker(request: Request, who: Reader, worker: str = "") -> Response:
    """The search box: go to a worker's page."""
    worker = worker.strip()
    if not worker:
        return redirect(request, "/", error="type a worker, e.g. mturk:A1B2C3D4E5F6G7")
    try:
        ref = str(parse_worker(worker))
    except InvalidInputError as exc:
        return redirect(request, "/", error=str(exc))
    from urllib.parse import quote

    return redirect(request, f"/workers/{quote(ref, safe=':')}")


def _event_fields(event: Any) -> list[tuple[str, Any]]:
    return [
        (k, v)
        for k, v in event.payload().items()
        if k not in BASE_FIELDS and k != "worker" and v is not None
    ]


@router.get("/workers/{worker}")
def worker_page(request: Request, who: Reader, worker: str, ruleset: str | None = None) -> Response:
    """A worker: qualifications, blocks, statistics, why (against a chosen rule set),
    the whole history, and the forms that change them."""
    web = _web(request)
    ledger = web.ledger
    try:
        ref = str(parse_worker(worker))
    except InvalidInputError as exc:
        return render(
            request,
            "error.html",
            {"title": "Bad worker", "status": 400, "message": str(exc)},
            status=400,
        )
    history = ledger.history(ref)
    chosen = ruleset if ruleset in web.rulesets else next(iter(web.rulesets), None)
    decision = None
    decision_error = None
    if chosen is not None and history:
        try:
            decision = ledger.check(ref, web.rulesets[chosen])
        except LedgerError as exc:
            decision_error = str(exc)
    return render(
        request,
        "worker.html",
        {
            "title": ref,
            "worker": ref,
            "known": bool(history),
            "qualifications": sorted(ledger.qualifications(ref).items()),
            "blocks": ledger.blocks(ref),
            "stats": ledger.stats(ref),
            "history": list(reversed(history)),
            "fields": _event_fields,
            "submissions": queries.worker_submissions(ledger, ref),
            "rulesets": list(web.rulesets),
            "ruleset": chosen,
            "decision": decision,
            "decision_error": decision_error,
            "definitions": sorted(ledger.definitions()),
            "next": f"/workers/{ref}",
        },
    )


def _worker_command(request: Request, worker: str, run: Any, notice: str) -> Response:
    back = f"/workers/{worker}"
    try:
        run()
    except LedgerError as exc:
        return redirect(request, back, error=f"nothing recorded: {_problem(exc)}")
    return redirect(request, back, notice=notice)


@router.post("/workers/{worker}/grant")
def grant(
    request: Request,
    worker: str,
    who: Annotated[Principal, Depends(require("grant"))],
    qualification: Annotated[str, Form(max_length=300)],
    value: Annotated[str, Form(max_length=20)] = "1",
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    ledger = _web(request).ledger
    try:
        number = int(value)
    except ValueError:
        return redirect(request, f"/workers/{worker}", error="value: not a whole number")
    return _worker_command(
        request,
        worker,
        lambda: ledger.grant(
            worker, qualification, value=number, reason=reason or None, actor=who.actor
        ),
        f"granted {qualification} = {number}",
    )


@router.post("/workers/{worker}/revoke")
def revoke(
    request: Request,
    worker: str,
    who: Annotated[Principal, Depends(require("revoke"))],
    qualification: Annotated[str, Form(max_length=300)],
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    ledger = _web(request).ledger
    return _worker_command(
        request,
        worker,
        lambda: ledger.revoke(worker, qualification, reason=reason or None, actor=who.actor),
        f"revoked {qualification}",
    )


@router.post("/workers/{worker}/block")
def block(
    request: Request,
    worker: str,
    who: Annotated[Principal, Depends(require("block"))],
    scope: Annotated[str, Form(max_length=300)] = "global",
    until: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    ledger = _web(request).ledger
    end = None
    if until.strip():
        try:
            end = datetime.fromisoformat(until.strip())
        except ValueError:
            return redirect(request, f"/workers/{worker}", error="until: not a date and time")
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    return _worker_command(
        request,
        worker,
        lambda: ledger.block(
            worker, scope=scope or "global", until=end, reason=reason or None, actor=who.actor
        ),
        f"blocked in {scope or 'global'}",
    )


@router.post("/workers/{worker}/unblock")
def unblock(
    request: Request,
    worker: str,
    who: Annotated[Principal, Depends(require("unblock"))],
    scope: Annotated[str, Form(max_length=300)] = "global",
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    ledger = _web(request).ledger
    return _worker_command(
        request,
        worker,
        lambda: ledger.unblock(worker, scope=scope, reason=reason or None, actor=who.actor),
        f"unblocked in {scope}",
    )


# -- rule sets and stats -----------------------------------------------------------------------
@router.get("/rules")
def rules_page(request: Request, who: Reader) -> Response:
    """Each loaded rule set: how many known workers it admits, its automations, the sync."""
    web = _web(request)
    ledger = web.ledger
    installed = ledger._reading
    with installed() as (_tx, model):
        automations = model.automations()
    sets = []
    for name, ruleset in web.rulesets.items():
        try:
            eligible: int | str = len(ledger.eligible_workers(ruleset))
        except LedgerError as exc:
            eligible = f"cannot decide: {exc}"
        held = automations.get(name)
        sets.append(
            {
                "name": name,
                "source": ruleset.source,
                "digest": ruleset.digest,
                "eligible": eligible,
                "automations": None
                if held is None
                else ("current" if held[0] == ruleset.digest else "another version"),
            }
        )
    return render(
        request,
        "rules.html",
        {
            "title": "Rule sets",
            "sets": sets,
            "workers": len(ledger.workers()),
            "providers": sorted(queries.provider_status(ledger).items()),
        },
    )


@router.get("/stats")
def stats_page(request: Request, who: Reader) -> Response:
    """Approval rate over time, response times and quality scores, as SVG charts."""
    ledger = _web(request).ledger
    days = queries.approval_by_day(ledger)
    approval = charts.bar_chart(
        [a / n for _d, a, n in days],
        [d[5:] for d, _a, _n in days],
        [f"{d}: {a} of {n} approved" for d, a, n in days],
        top=1.0,
        as_percent=True,
        label_every=max(1, len(days) // 12),
        width=1200,
        height=240,
    )
    seconds = queries.response_seconds(ledger)
    high = charts._nice(sorted(seconds)[int(len(seconds) * 0.95)] if seconds else 60.0)
    counts, labels = charts.histogram(seconds, 20, 0.0, high, "s")
    response = charts.bar_chart(
        [float(c) for c in counts],
        labels,
        [f"{lab}–: {c} submissions" for lab, c in zip(labels, counts, strict=True)],
        label_every=4,
    )
    scores = queries.quality_scores(ledger)
    qcounts, _qlabels = charts.histogram(scores, 10, 0.0, 1.0001)
    qlabels = [f"{i * 10}%" for i in range(10)]
    quality = charts.bar_chart(
        [float(c) for c in qcounts],
        qlabels,
        [
            f"{lab}–{(i + 1) * 10}%: {c} workers"
            for i, (lab, c) in enumerate(zip(qlabels, qcounts, strict=True))
        ],
        label_every=1,
    )
    totals = ledger.review_stats()
    return render(
        request,
        "stats.html",
        {
            "title": "Stats",
            "approval": approval if days else charts.bar_chart([], [], []),
            "response": response if seconds else charts.bar_chart([], [], []),
            "quality": quality if scores else charts.bar_chart([], [], []),
            "totals": totals,
            "workers_scored": len(scores),
        },
    )


# -- tokens (admins) ---------------------------------------------------------------------------
Admin = Annotated[Principal, Depends(require("tokens"))]


@router.get("/tokens")
def tokens_page(request: Request, who: Admin) -> Response:
    """Every access token (names and roles, never secrets), with a revoke button each.
    New tokens are made with ``crowdledger tokens create``: a secret is never in a page."""
    from crowdledger.adapters.ledger.access_tokens import list_tokens

    return render(
        request,
        "tokens.html",
        {"title": "Access tokens", "tokens": list_tokens(_web(request).ledger)},
    )


@router.post("/tokens/{name}/revoke")
def revoke_token_form(
    request: Request,
    name: str,
    who: Admin,
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Revoke a token: it, and every session made with it, stop working."""
    from crowdledger.adapters.ledger.access_tokens import revoke_token

    web = _web(request)
    try:
        revoke_token(web.ledger, name, actor=who.actor, reason=reason or None)
    except LedgerError as exc:
        return redirect(request, "/tokens", error=f"nothing recorded: {_problem(exc)}")
    web.tokens.invalidate()
    return redirect(request, "/tokens", notice=f"revoked token {name}")
