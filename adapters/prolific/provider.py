"""Prolific: the sync's provider (participant groups, study filters) and ingesting submissions.

Give it a ready ``httpx.Client`` (base URL and ``Authorization: Token ...`` header set by
the host application) and the workspace the groups live in::

    import httpx
    from crowdledger import Ledger
    from crowdledger.adapters.prolific.provider import ProlificSync

    http = httpx.Client(base_url="https://api.prolific.com/api/v1/",
                        headers={"Authorization": f"Token {token}"})
    with Ledger.open("sqlite:///crowd.db") as ledger:
        sync = ProlificSync(ledger, http, workspace="<workspace id>", study="<study id>")
        sync.apply("rules.yaml")

The rules' ledger part becomes the *eligible participant group* and blocks the
*block-list group*; the study's filters point at both (``participant_group_allowlist``,
``participant_group_blocklist``). A published study's filters are frozen, so changes in
eligibility reach it through the groups' membership. Prolific's rate limits are not
fixed: 429 and 5xx answers are retried with exponential backoff and full jitter,
honouring ``Retry-After``; the token never appears in errors or in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from crowdledger.adapters.sync.engine import (
    Outcome,
    ProviderError,
    QueuedCommand,
    SendContext,
    Sync,
)
from crowdledger.adapters.sync.ingest import IngestReport, Work, record_work
from crowdledger.rules.gates import (
    Gate,
    ProlificGate,
    compile_prolific,
    filters_json,
    group_reference,
    resolve_filters,
)
from crowdledger.rules.ruleset import RuleSet
from crowdledger.rules.study_filters import GROUP_FILTERS, FilterConflict, merged, ours
from crowdledger.rules.sync_plan import FactKey

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["BASE_URL", "ProlificAPI", "ProlificProvider", "ProlificSync", "prolific_client"]

BASE_URL = "https://api.prolific.com/api/v1/"
T = TypeVar("T")
MEMBERS_PER_CALL = 500
# A Retry-After longer than this is waited out this long, then tried again.
MAX_RETRY_AFTER = 60.0
_REVIEWED = {"APPROVED": "approved", "PARTIALLY APPROVED": "approved", "REJECTED": "rejected"}


def prolific_client(token: str, *, base_url: str = BASE_URL, timeout: float = 30.0) -> httpx.Client:
    """An ``httpx.Client`` as the command line uses it."""
    return httpx.Client(
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        headers={"Authorization": f"Token {token}"},
        timeout=timeout,
    )


class _Transient(Exception):
    """A 429, a 5xx or a broken connection: worth another try."""

    def __init__(self, error: ProviderError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return None if raw is None else max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        detail = error.get("detail")
        return detail if isinstance(detail, str) else orjson.dumps(detail).decode()
    return orjson.dumps(body).decode()[:500]


class ProlificAPI:
    """Prolific's REST API over a host's ``httpx.Client``: retries, errors, every page."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.attempts = attempts
        self._jitter = wait_random_exponential(multiplier=backoff, max=max_backoff)
        self._sleep = sleep

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_RETRY_AFTER)
        return float(self._jitter(state))

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it is answered: again, with backoff, while it raises
        ``_Transient`` (from :meth:`once`); raises ProviderError."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for each in retrying:
                with each:
                    return attempt()
        except _Transient as transient:
            raise transient.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer (None when empty), retried; raises ProviderError."""
        return self.retrying(lambda: self.once(method, path, json, params))

    def once(self, method: str, path: str, json: Any, params: Mapping[str, Any] | None) -> Any:
        """One try: the decoded answer; ``_Transient`` when it went unanswered (429,
        5xx, a broken connection), ProviderError when refused."""
        where = f"{method} {httpx.URL(path).path or path}"
        try:
            response = self.client.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            error = ProviderError(
                f"Prolific {where} failed: {type(exc).__name__}", code="transport", retryable=True
            )
            raise _Transient(error, None) from None
        status = response.status_code
        if status == 429 or status >= 500:
            error = ProviderError(
                f"Prolific {where}: HTTP {status}: {_detail(response)}",
                code=str(status),
                retryable=True,
            )
            raise _Transient(error, _retry_after(response))
        if status >= 400:
            raise ProviderError(
                f"Prolific {where}: HTTP {status}: {_detail(response)}", code=str(status)
            )
        return response.json() if response.content else None

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``_links.next`` to the last page."""
        url: str | None = path
        query: Mapping[str, Any] | None = {"limit": 100, "offset": 0, **(params or {})}
        while url is not None:
            body = self.request("GET", url, params=query)
            yield from body.get("results", [])
            url = ((body.get("_links") or {}).get("next") or {}).get("href")
            query = None  # the next link carries its own query
            if url is not None:
                self._check_same_origin(url)

    def _check_same_origin(self, url: str) -> None:
        """The token goes wherever the next link points: only to the API itself."""
        base, link = self.client.base_url, httpx.URL(url)
        if link.is_absolute_url and (link.scheme, link.host, link.port) != (
            base.scheme,
            base.host,
            base.port,
        ):
            raise ProviderError(
                f"Prolific's next-page link points to {link.scheme}://{link.host}, "
                f"not to {base.scheme}://{base.host}; not following it",
                code="foreign_link",
            )


class ProlificProvider:
    """The sync's view of one Prolific workspace (and optionally one study)."""

    provider = "prolific"

    def __init__(self, api: ProlificAPI, *, workspace: str, study: str | None = None) -> None:
        self.api = api
        self.workspace = workspace
        self.study = study
        base = str(api.client.base_url).rstrip("/")
        official = base == BASE_URL.rstrip("/")
        host = httpx.URL(base).netloc.decode()
        self.target = f"prolific:{workspace}" if official else f"prolific:{workspace}@{host}"

    def compile(self, ruleset: RuleSet) -> ProlificGate:
        return compile_prolific(ruleset.model, study=self.study)

    def summary(self, gate: Gate, ids: Mapping[str, str]) -> dict[str, Any]:
        assert isinstance(gate, ProlificGate)
        return {
            "filters": resolve_filters(gate.filters(), ids),
            "eligible_group": gate.eligible_group,
            "blocked_group": gate.blocked_group,
            "study": gate.study,
        }

    # -- sending ---------------------------------------------------------------------------
    def send(self, batch: Sequence[QueuedCommand], context: SendContext) -> Iterator[Outcome]:
        def run_of(queued: QueuedCommand) -> tuple[str, str, str]:
            c = queued.command
            return (c.kind, c.key, c.operation)

        for (kind, key, operation), grouped in groupby(batch, key=run_of):
            run = list(grouped)
            if kind == "member":
                yield from self._members(key, operation, run, context)
                continue
            for queued in run:
                try:
                    value = self._carry_out(queued, context)
                except ProviderError as error:
                    yield Outcome.failure(queued, error)
                    continue
                yield Outcome.success(queued, value)

    def _carry_out(self, queued: QueuedCommand, context: SendContext) -> str | None:
        command = queued.command
        if command.kind == "group":
            return self._find_or_create_group(command.key, context)
        if command.kind == "study":
            assert command.value is not None
            return self._set_filters(command.key, orjson.loads(command.value), context)
        raise ProviderError(f"Prolific has no {command.kind} facts", code="unsupported")

    def _members(
        self, group: str, operation: str, run: list[QueuedCommand], context: SendContext
    ) -> Iterator[Outcome]:
        group_id = context.ids.get(group)
        for start in range(0, len(run), MEMBERS_PER_CALL):
            chunk = run[start : start + MEMBERS_PER_CALL]
            try:
                if group_id is None:
                    raise ProviderError(
                        f"the participant group {group!r} has not been created "
                        "(its creation failed or is still pending)",
                        code="group_not_created",
                    )
                ids = [q.command.subject.partition(":")[2] for q in chunk]
                self.api.request(
                    "POST" if operation == "set" else "DELETE",
                    f"participant-groups/{group_id}/participants/",
                    json={"participant_ids": ids},
                )
            except ProviderError as error:
                for queued in chunk:
                    yield Outcome.failure(queued, error)
                if error.retryable:
                    return
                continue
            for queued in chunk:
                yield Outcome.success(queued, "" if operation == "set" else None)

    def _groups(self) -> Iterator[dict[str, Any]]:
        for group in self.api.pages("participant-groups/", {"workspace_id": self.workspace}):
            if not group.get("is_deleted"):
                yield group

    def _find_or_create_group(self, name: str, context: SendContext) -> str:
        """Adopt the workspace's group of that name (a reply lost in a crash, or another
        process, created it), else create it. A creation that got no answer is never
        repeated blindly: the next try looks for the group first."""
        body = {
            "name": name,
            "workspace_id": self.workspace,
            "description": f"Kept in line with a crowdledger ledger ({context.reason})",
        }

        def attempt() -> str:
            for group in self._groups():
                if group.get("name") == name:
                    return str(group["id"])
            return str(self.api.once("POST", "participant-groups/", body, None)["id"])

        return self.api.retrying(attempt)

    def _set_filters(self, study: str, filters: list[dict[str, Any]], context: SendContext) -> str:
        """Make the sync's part of the study's filters ``filters``, keeping the rest."""
        wanted = resolve_filters(filters, context.ids)
        unresolved = [
            v
            for f in wanted
            for v in f.get("selected_values", [])
            if v.startswith(group_reference(""))
        ]
        if unresolved:
            raise ProviderError(
                f"cannot set the filters of study {study}: {', '.join(unresolved)} "
                "has not been created",
                code="group_not_created",
            )
        groups, managed = _share(wanted, context.ids, context.held.get(("study", study, "")))
        current = self.api.request("GET", f"studies/{study}/")
        existing = current.get("filters") or []
        if current.get("status") != "UNPUBLISHED":
            if filters_json(ours(existing, groups, managed)) == filters_json(wanted):
                return filters_json(wanted)
            raise ProviderError(
                f"study {study} is {current.get('status')}: its filters are frozen once it is "
                "published and do not point at the sync's participant groups; create the "
                "study with them (see `sync plan`) or sync an unpublished study",
                code="study_published",
            )
        try:
            new = merged(existing, wanted, groups, managed - {f["filter_id"] for f in wanted})
        except FilterConflict as conflict:
            raise ProviderError(f"study {study}: {conflict}", code="filter_conflict") from None
        self.api.request("PATCH", f"studies/{study}/", json={"filters": new})
        return filters_json(wanted)

    # -- observing -------------------------------------------------------------------------
    def observe(
        self, gate: Gate, ids: Mapping[str, str], held: Mapping[FactKey, str]
    ) -> dict[FactKey, str]:
        assert isinstance(gate, ProlificGate)
        actual: dict[FactKey, str] = {}
        by_name: dict[str, list[str]] = {}
        for group in self._groups():
            by_name.setdefault(str(group.get("name")), []).append(str(group["id"]))
        for name in (gate.eligible_group, gate.blocked_group):
            if not name or name not in by_name:
                continue
            candidates = by_name[name]
            group_id = ids[name] if ids.get(name) in candidates else candidates[0]
            actual["group", name, ""] = group_id
            for member in self.api.pages(f"participant-groups/{group_id}/participants/"):
                actual["member", name, f"prolific:{member['participant_id']}"] = ""
        if gate.study is not None:
            study = self.api.request("GET", f"studies/{gate.study}/")
            wanted = resolve_filters(gate.filters(), ids)
            groups, managed = _share(wanted, ids, held.get(("study", gate.study, "")))
            part = ours(study.get("filters") or [], groups, managed)
            actual["study", gate.study, ""] = filters_json(part)
        return actual


def _share(
    wanted: Sequence[Mapping[str, Any]], ids: Mapping[str, str], previous: str | None
) -> tuple[set[str], set[str]]:
    """What of a study's filters is the sync's: group ids (its own groups, and those its
    rules name now or named when it last set them) and whole filters (by id)."""
    before = orjson.loads(previous) if previous else []
    groups = set(ids.values())
    managed: set[str] = set()
    for flt in [*wanted, *before]:
        if flt["filter_id"] in GROUP_FILTERS:
            groups.update(flt.get("selected_values") or [])
        else:
            managed.add(flt["filter_id"])
    return groups, managed


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class ProlificSync(Sync):
    """:class:`~crowdledger.adapters.sync.Sync` for Prolific, plus submission ingestion."""

    def __init__(
        self,
        ledger: Ledger,
        client: httpx.Client,
        *,
        workspace: str,
        study: str | None = None,
        actor: str | None = None,
        batch: int = 1000,
        api: ProlificAPI | None = None,
    ) -> None:
        self.api = api or ProlificAPI(client)
        self.prolific = ProlificProvider(self.api, workspace=workspace, study=study)
        super().__init__(ledger, self.prolific, actor=actor, batch=batch)

    def ingest(
        self, studies: Sequence[str], *, task: str | None = None, actor: str | None = None
    ) -> IngestReport:
        """Record the submitted, approved and rejected submissions of ``studies``."""
        work: list[Work] = []
        for study in studies:
            for item in self.api.pages(f"studies/{study}/submissions/"):
                status = str(item.get("status"))
                if status != "AWAITING REVIEW" and status not in _REVIEWED:
                    continue  # not handed in (yet), returned, timed out, or still processing
                work.append(
                    Work(
                        provider="prolific",
                        key_prefix=f"prolific:submission:{item['id']}",
                        worker=f"prolific:{item['participant_id']}",
                        task=task or study,
                        submission=str(item["id"]),
                        answer={k: item[k] for k in ("study_code", "entered_code") if item.get(k)},
                        accepted_at=_when(item.get("started_at")),
                        submitted_at=_when(item.get("completed_at")),
                        status=_REVIEWED.get(status, "submitted"),
                    )
                )
        return record_work(self.ledger, work, actor=actor or self.actor, source="Prolific")
