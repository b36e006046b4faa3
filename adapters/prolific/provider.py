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
honouring ``Retry-After``; a call is given up once :data:`SILENT_TRIES` of its tries got
no reply at all (timeouts, refused or broken connections), and a reply that cannot be
read (not JSON, HTML, empty, a list where an object belongs) is an unanswered call: it
may have taken effect. The token never appears in errors or in the ledger: every error
text is redacted (:mod:`crowdledger.adapters.sync.redaction`). The API's base URL is
taken as people write it, ``https://api.prolific.com`` as well as
``https://api.prolific.com/api/v1/`` (:func:`api_base_url`).
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
    wait_random_exponential,
)

from crowdledger.adapters.sync.engine import (
    Outcome,
    ProgressCallback,
    ProviderError,
    QueuedCommand,
    SendContext,
    Sync,
)
from crowdledger.adapters.sync.ingest import IngestReport, Work, record_work
from crowdledger.adapters.sync.redaction import redact, stored_error
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

__all__ = [
    "BASE_URL",
    "DEFAULT_TIMEOUT",
    "SILENT_TRIES",
    "ProlificAPI",
    "ProlificProvider",
    "ProlificSync",
    "api_base_url",
    "prolific_client",
    "prolific_target",
]

BASE_URL = "https://api.prolific.com/api/v1/"
API_PATH = "/api/v1/"
# Seconds to wait for a connection and for each reply; tries of one call that may get no
# reply at all before it is given up (a silent API costs about SILENT_TRIES * timeout).
DEFAULT_TIMEOUT = 10.0
SILENT_TRIES = 3
T = TypeVar("T")
MEMBERS_PER_CALL = 500
# A Retry-After longer than this is waited out this long, then tried again.
MAX_RETRY_AFTER = 60.0
_REVIEWED = {"APPROVED": "approved", "PARTIALLY APPROVED": "approved", "REJECTED": "rejected"}


def api_base_url(url: str | httpx.URL) -> str:
    """The API's base URL as requests are joined to it: ``https://api.prolific.com``
    (the root, as people write it) becomes ``https://api.prolific.com/api/v1/``; any
    other path is kept, with one trailing slash. The one place this is decided."""
    parsed = httpx.URL(str(url).strip())
    path = parsed.path.rstrip("/")
    return str(parsed.copy_with(path=API_PATH if not path else path + "/", query=None))


def prolific_target(base_url: str | httpx.URL, workspace: str) -> str:
    """The target of a workspace: ``prolific:<workspace>`` on the official API,
    ``prolific:<workspace>@host[:port]`` elsewhere (no credentials from the URL)."""
    base = httpx.URL(api_base_url(base_url))
    if str(base) == BASE_URL:
        return f"prolific:{workspace}"
    where = f"{base.host}:{base.port}" if base.port else base.host
    return f"prolific:{workspace}@{where}"


def prolific_client(
    token: str, *, base_url: str = BASE_URL, timeout: float = DEFAULT_TIMEOUT
) -> httpx.Client:
    """An ``httpx.Client`` as the command line uses it: ``timeout`` seconds at most for
    the connection and for each reply."""
    return httpx.Client(
        base_url=api_base_url(base_url),
        headers={"Authorization": f"Token {token}"},
        timeout=httpx.Timeout(timeout),
    )


class _Transient(Exception):
    """A 429, a 5xx or a broken connection: worth another try."""

    def __init__(
        self, error: ProviderError, retry_after: float | None, *, silent: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.silent = silent  # no reply at all (a timeout, a broken connection)


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
    return orjson.dumps(body).decode()  # cut only once redacted (stored_error)


def _unreadable(where: str, detail: str) -> ProviderError:
    return ProviderError(
        f"Prolific's reply to {where} cannot be read ({detail}); it may have taken effect",
        code="unreadable_reply",
        retryable=True,
    )


def _decoded(response: httpx.Response, where: str) -> Any:
    """A successful reply's JSON (None for 204 No Content), or an unreadable-reply error."""
    if response.status_code == 204:
        return None
    raw = response.content
    if not raw.strip():
        raise _unreadable(where, f"HTTP {response.status_code} with an empty body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        kind = "HTML" if raw.lstrip()[:1] == b"<" else "not JSON"
        snippet = raw[:200].decode("utf-8", "replace")
        raise _unreadable(where, f"HTTP {response.status_code}, {kind}: {snippet!r}") from None


def _object(reply: Any, where: str) -> dict[str, Any]:
    """A reply that must be a JSON object."""
    if not isinstance(reply, dict):
        shown = "nothing" if reply is None else f"a JSON {type(reply).__name__}"
        raise _unreadable(where, f"{shown}, not an object")
    return reply


def _text(item: Any, key: str, where: str) -> str:
    """``item[key]``, a non-empty string or number, from a reply."""
    value = _object(item, where).get(key)
    if not isinstance(value, str | int) or value == "":
        raise _unreadable(where, f"no {key}")
    return str(value)


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
        silent_tries: int = SILENT_TRIES,
    ) -> None:
        self.client = client
        self.base = httpx.URL(api_base_url(client.base_url))
        self.attempts = attempts
        self.silent_tries = silent_tries
        self._jitter = wait_random_exponential(multiplier=backoff, max=max_backoff)
        self._sleep = sleep

    def secrets(self) -> list[str]:
        """The token (from the client's ``Authorization`` header), to be redacted."""
        header = self.client.headers.get("Authorization") or ""
        return [header, header.partition(" ")[2]]

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_RETRY_AFTER)
        return float(self._jitter(state))

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it is answered: again, with backoff, while it raises
        ``_Transient`` (from :meth:`once`); raises ProviderError."""
        silent = 0

        def stop(state: RetryCallState) -> bool:
            # A try that got no reply at all counts against silent_tries as well.
            nonlocal silent
            failure = state.outcome.exception() if state.outcome is not None else None
            if isinstance(failure, _Transient) and failure.silent:
                silent += 1
            return state.attempt_number >= self.attempts or silent >= self.silent_tries

        retrying = Retrying(
            stop=stop,
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
        url = self.base.join(path)
        where = f"{method} {url.path}"
        try:
            response = self.client.request(method, url, json=json, params=params)
        except httpx.TransportError as exc:
            error = ProviderError(
                f"Prolific did not answer {where}: {type(exc).__name__}",
                code="transport",
                retryable=True,
            )
            raise _Transient(error, None, silent=True) from None
        status = response.status_code
        if status == 429 or status >= 500:
            error = ProviderError(
                stored_error(
                    f"Prolific {where}: HTTP {status}: {_detail(response)}", self.secrets()
                ),
                code=str(status),
                retryable=True,
            )
            raise _Transient(error, _retry_after(response))
        if status >= 400:
            raise ProviderError(
                stored_error(
                    f"Prolific {where}: HTTP {status}: {_detail(response)}", self.secrets()
                ),
                code=str(status),
            )
        try:
            return _decoded(response, where)
        except ProviderError as error:
            raise ProviderError(
                redact(str(error), self.secrets()), code=error.code, retryable=True
            ) from None

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``_links.next`` to the last page."""
        url: str | None = path
        query: Mapping[str, Any] | None = {"limit": 100, "offset": 0, **(params or {})}
        while url is not None:
            where = f"GET {self.base.join(url).path}"
            body = _object(self.request("GET", url, params=query), where)
            results = body.get("results", [])
            if not isinstance(results, list):
                raise _unreadable(where, "its results are not a list")
            for item in results:
                yield _object(item, where)
            links = body.get("_links") or {}
            following = links.get("next") if isinstance(links, dict) else None
            href = following.get("href") if isinstance(following, dict) else None
            if href is not None and not isinstance(href, str):
                raise _unreadable(where, "its next link is not a URL")
            url = href
            query = None  # the next link carries its own query
            if url is not None:
                self._check_same_origin(url)

    def _check_same_origin(self, url: str) -> None:
        """The token goes wherever the next link points: only to the API itself."""
        base, link = self.base, httpx.URL(url)
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
        self.target = prolific_target(api.base, workspace)

    # The prefix of the idempotency keys ingestion records Prolific submissions under: the
    # reviews and bonuses of those submissions are carried out here.
    review_source = "prolific:submission:"

    def check(self) -> None:
        """One cheap read (``GET users/me/``): the token is accepted and the API is
        where the base URL says."""
        try:
            _object(self.api.request("GET", "users/me/"), "GET users/me/")
        except ProviderError as error:
            hint = {
                "401": "; check PROLIFIC_API_TOKEN",
                "403": "; check PROLIFIC_API_TOKEN",
                "404": f"; is {self.api.base} Prolific's API?",
            }.get(error.code or "", "")
            raise ProviderError(
                f"{error}{hint}; nothing was queued", code=error.code, retryable=error.retryable
            ) from None

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
            if c.kind in ("review", "bonus"):
                return ("review", "", "")  # consecutive reviews go together (bulk approve)
            return (c.kind, c.key, c.operation)

        for (kind, key, operation), grouped in groupby(batch, key=run_of):
            run = list(grouped)
            if kind == "review":
                from crowdledger.adapters.prolific.review import send_reviews

                yield from send_reviews(self.api, run, context)
                continue
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
                method, path = (
                    "POST" if operation == "set" else "DELETE",
                    f"participant-groups/{group_id}/participants/",
                )
                # Prolific answers with the group's members: an object, never a list.
                reply = self.api.request(method, path, json={"participant_ids": ids})
                _object(reply, f"{method} {path}")
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
                    return _text(group, "id", "GET participant-groups/")
            created = self.api.once("POST", "participant-groups/", body, None)
            return _text(created, "id", "POST participant-groups/")

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
        current = _object(self.api.request("GET", f"studies/{study}/"), f"GET studies/{study}/")
        existing = current.get("filters") or []
        if not isinstance(existing, list) or not all(isinstance(f, dict) for f in existing):
            raise _unreadable(f"GET studies/{study}/", "its filters are not a list of objects")
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
            group_id = _text(group, "id", "GET participant-groups/")
            by_name.setdefault(str(group.get("name")), []).append(group_id)
        for name in (gate.eligible_group, gate.blocked_group):
            if not name or name not in by_name:
                continue
            candidates = by_name[name]
            group_id = ids[name] if ids.get(name) in candidates else candidates[0]
            actual["group", name, ""] = group_id
            listing = f"participant-groups/{group_id}/participants/"
            for member in self.api.pages(listing):
                participant = _text(member, "participant_id", f"GET {listing}")
                actual["member", name, f"prolific:{participant}"] = ""
        if gate.study is not None:
            where = f"GET studies/{gate.study}/"
            study = _object(self.api.request("GET", f"studies/{gate.study}/"), where)
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
        self,
        studies: Sequence[str],
        *,
        task: str | None = None,
        actor: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Record the submitted, approved and rejected submissions of ``studies``;
        ``progress(done, total)`` is called as each study has been read."""
        work: list[Work] = []
        for done, study in enumerate(studies):
            if progress is not None:
                progress(done, len(studies))
            listing = f"studies/{study}/submissions/"
            for item in self.api.pages(listing):
                for needed in ("id", "participant_id"):
                    _text(item, needed, f"GET {listing}")
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
        if progress is not None:
            progress(len(studies), len(studies))
        return record_work(self.ledger, work, actor=actor or self.actor, source="Prolific")
