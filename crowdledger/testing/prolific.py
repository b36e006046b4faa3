"""A stateful fake of the Prolific REST API, served through a ``respx`` router.

Tests drive a real :class:`httpx.Client` against it::

    fake = FakeProlific()
    with fake.client() as http:                      # no global respx.mock needed
        r = http.post("participant-groups/", json={"name": "g", "workspace_id": fake.workspace_id})
    # or: fake.mount(respx_mock) inside a test that already uses respx

Sources (read Nov 2026) and what was taken from each
----------------------------------------------------
[D] docs.prolific.com/api-reference (participant-groups/*, studies/the-study-object,
    studies/get-studies, submissions/transition-submission, submissions/bulk-approve-submissions,
    submissions/get-submission, filters/get-filters, documentation/get-started/api-fundamentals,
    documentation/core-concepts/managing-high-loads) and the OpenAPI copies at
    beta-docs.prolific.com/api-reference/.../*.md.
[C] Prolific's own CLI, github.com/prolific-oss/cli (client/client.go, client/responses.go,
    client/payloads.go, model/participant_group.go) -- how the vendor itself calls the API.
[M] mephisto.ai/docs/guides/how_to_use/providers/prolific/prolific_api_oddities (observed quirks).

Taken from the sources
- Auth header ``Authorization: Token <token>``; 401 when no valid token [D].
- Error envelope ``{"error": {"status", "title", "error_code", "detail",
  "additional_information"}}`` [C].  The ``error_code`` numbers and titles here are invented.
- List envelope ``{"results": [...], "_links": {"self"|"next"|"previous"|"last":
  {"href", "title"}}, "meta": {"count": N}}``; ``next.href``/``previous.href`` are null at the
  ends [C].  Lists page with ``limit``/``offset`` query parameters [C: participant-groups,
  study submissions, workspaces...].  (``GET /submissions/`` pages by ``page``/``page_size``
  [D]; that endpoint is not implemented here.)
- Participant group object: ``id, name, description, workspace_id, organisation_id,
  project_id (deprecated), participant_count, is_deleted, feeder_studies`` [D].  Create needs
  ``name`` and a ``workspace_id`` or ``organisation_id``; ``participant_ids`` optional; 201 [D].
  PATCH ``participant_ids`` *overwrites* the membership [D].
- ``GET /participant-groups/{id}/participants/`` -> ``{"results": [{"participant_id",
  "datetime_created"}]}`` [D]; POST/DELETE on the same path take ``{"participant_ids": [...]}``,
  ignore members already present / non-members, answer 200 with all members now in the
  group [D, C].
- Group list query ``workspace_id`` (+ ``limit``/``offset``) [C]; the docs also show
  ``filter[workspace_id]`` and an ``active`` filter, both accepted [D].
- Study statuses ``UNPUBLISHED, ACTIVE, PAUSED, AWAITING REVIEW, COMPLETED`` (+ PUBLISHING,
  SCHEDULED, not modelled) [D]; ``POST /studies/{id}/transition/ {"action"}`` returns the study
  [C]; STOP is final [D help centre]; after publishing only ``internal_name`` and
  ``total_available_places`` (increase only) may change [M]; ``GET /studies/?state=(a|b)`` [D].
- ``filters: [{filter_id, selected_values: [...]} | {filter_id, selected_range:
  {lower, upper}}]``; filter ids ``participant_group_allowlist/blocklist``,
  ``previous_studies_allowlist/blocklist``, ``custom_allowlist/blocklist``, ``approval_rate``,
  ``approval_numbers`` [D filters page + public client code]; ``GET /filters/`` lists
  ``{filter_id, title, description, type: select|range, data_type, choices}`` [D].
  ``eligibility_requirements`` is deprecated [D]: accepted and stored, never evaluated.
- Submission statuses ``RESERVED, ACTIVE, TIMED-OUT, AWAITING REVIEW, APPROVED, RETURNED,
  REJECTED, SCREENED OUT, PARTIALLY APPROVED`` [D].  List items: ``id, participant_id, status,
  started_at, completed_at, has_siblings, study_code, return_requested``; the single
  submission has ``participant`` (not ``participant_id``), ``study_id``, ``entered_code`` [D].
- Transition ``{"action": "APPROVE"|"REJECT", "message", "rejection_category"}``; REJECT needs
  a message of >= 100 characters and one of the 12 categories [D, C]; "once the status is
  changed, it can not be restored" [D].  Undocumented transient ``PROCESSING`` status [M].
- ``POST /submissions/bulk-approve/`` with ``{"submission_ids"}`` or ``{"study_id",
  "participant_ids"}``; answers 200 with a JSON string; max 1000 ids recommended [D].
- 429 under load, retry with back-off [D]; ``DELETE`` is a soft or hard delete [D].

Choices made where the sources are silent or disagree (change them here, not in callers)
- CONFLICT: the docs say repeating the *same* submission transition is idempotent ("the second
  request will be ignored"); our provider-facts say approving an approved/rejected submission
  is a 400.  Default ``repeat_transition="error"`` (400, the stricter behaviour a client must
  survive anyway); ``repeat_transition="ignore"`` answers 200 with the unchanged submission
  for a same-action repeat.  A *different* action on a final submission is always 400.
- CONFLICT: the docs show an ``is_deleted`` flag; our provider-facts say deletion is a soft
  delete the API does not flag.  Default ``flag_soft_deletes=False``: ``DELETE`` answers 204,
  the group still GETs normally with ``is_deleted: false``, still lists, and ``active`` is
  ignored.  Only :meth:`FakeProlific.is_deleted` / :meth:`FakeProlific.groups` reveal it.
  ``flag_soft_deletes=True`` reports ``is_deleted: true`` and honours ``active=true``.
- Writes to a soft-deleted group (PATCH, add/remove members) succeed and change its
  membership, but a deleted group no longer gates studies: it contributes NO members to a
  ``participant_group_allowlist`` (so an allowlist of only deleted/empty groups admits nobody)
  and blocks nobody in a ``participant_group_blocklist``.  Deleting twice is 204 again.
- ``participant_count`` is a cache taken at creation; no later write (add, remove, PATCH)
  updates it.
- ``GET .../participants/`` is paginated like the other lists (limit/offset, ``_links``,
  ``meta``) although the docs show only ``results``.  Default page size is 20 (the documented
  default of ``GET /submissions/``) for every list, silently capped at ``page_size_max``;
  ``limit`` < 1, ``offset`` < 0 or non-integers are 400.  Order is creation/insertion order,
  so pages never skip or repeat while state is unchanged.
- The group list requires ``workspace_id`` (or ``filter[workspace_id]``): 400 without it.
  Creating a group in a workspace other than the fake's ``workspace_id`` is 400.
- Participant ids must be 24 lowercase hex characters anywhere they are sent (group members,
  custom allow/blocklists, bulk-approve); one bad id rejects the whole request (400).
- Study create needs ``name`` and a positive integer ``total_available_places``; other fields
  are optional and stored as sent; read-only fields in a body are ignored.  Filters are
  validated: known ``filter_id`` (see ``GET /filters/``), no duplicates, exactly one of
  ``selected_values`` (non-empty list of strings) / ``selected_range`` (numbers, lower <=
  upper) matching the filter's type, referenced groups/studies must exist.
- After publishing, a PATCH that *contains* any field outside ``POST_PUBLISH_PATCHABLE`` is a
  400 even if the value is unchanged; nothing in it is applied.
- Study state machine: PUBLISH UNPUBLISHED->ACTIVE (no PUBLISHING step); PAUSE ACTIVE->PAUSED;
  START PAUSED->ACTIVE; STOP ACTIVE|PAUSED-> AWAITING REVIEW if a submission awaits review,
  else COMPLETED.  Anything else is 400.  An AWAITING REVIEW study becomes COMPLETED when its
  last submission awaiting review is approved or rejected.
- Only submissions in ``AWAITING REVIEW`` can be approved/rejected; other actions (COMPLETE,
  RETURN, ...) are 400 here.  Bulk approve: unknown ids (or a participant with no submission
  in the study) reject the whole call (400, nothing changed); submissions not awaiting review
  are skipped silently; > 1000 ids or none is 400.
- PROCESSING: after a transition, the next ``processing_reads`` ``GET /submissions/{id}/``
  show ``status: PROCESSING`` (each consumes one); lists show PROCESSING while reads remain
  but consume none.  The transition response itself shows the final status.
- ``admits`` evaluates only ``filters`` (AND across filters, OR across values) against live
  fake state; it ignores study status and places.  A participant without seeded stats fails
  ``approval_rate``/``approval_numbers``.  ``previous_studies_*`` count any submission.
  A catalogue filter it cannot evaluate raises ``NotImplementedError``.
- Injected faults are checked before auth and never reach a handler, so they change no state
  (and consume no PROCESSING read).  Every request, failed or not, is kept in ``requests``.
- Paths are accepted with or without the trailing slash.  Unknown path: 404; known path,
  wrong method: 405.  The fake answers its whole host: a path outside the API's base path
  (``/participant-groups/`` instead of ``/api/v1/participant-groups/``, what a client whose
  base URL is the bare host sends) is a 404 "Not found.", as on the real host.
- Bonuses: ``POST /submissions/bonus-payments/`` ``{study_id, csv_bonuses}`` (lines
  ``participant_id,amount``; each participant must have a submission in the study) answers
  201 with the payment's ``id``, ``amount``, ``fees``, ``total_amount`` (minor units: a
  choice); nothing is paid yet.  ``POST /bulk-bonus-payments/{id}/pay/`` answers 202 and
  pays, every time it is called (not idempotent, as provider-facts says): see
  :meth:`FakeProlific.paid_bonuses` / :meth:`FakeProlific.bonus_payments`.
- Hooks: ``GET /hooks/event-types/``; ``POST /hooks/secrets/`` ``{workspace_id}`` creates
  (replaces) the workspace's one secret and answers its ``value`` once; ``GET`` lists ids
  only.  ``POST /hooks/subscriptions/`` ``{event_type, target_url (https), workspace_id}``
  answers 201 with ``X-Hook-Secret``, disabled until ``POST /hooks/subscriptions/{id}/``
  echoes that header.
- ``GET /users/me/`` answers the account (``id``, ``name``, ``email``), as the vendor's CLI
  reads it [C]; it is what a client calls to check its token.
- Broken replies, for the clients' sake (not Prolific's documented behaviour):
  :meth:`FakeProlific.bad_reply_next` makes the next matching requests be *carried out*
  and then answered 200 with a body that is not the API's (``garbage``, ``html``, ``empty``,
  ``list``), or not answered at all (``timeout``: the transport raises
  ``httpx.ReadTimeout``), so a caller cannot know whether they took effect.
  ``echo_headers=True`` makes every error reply quote the request's headers in its
  ``detail`` (``Authorization`` included), as some servers and proxies do.  Timestamps come from a fake clock (one second per event, from
  2026-01-01T00:00:00Z); ids are deterministic 24-hex strings.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import httpx
import respx

JSONDict = dict[str, Any]

_HEX24: Final = re.compile(r"[0-9a-f]{24}")

REJECTION_CATEGORIES: Final = frozenset(
    {
        "TOO_QUICKLY",
        "TOO_SLOWLY",
        "FAILED_INSTRUCTIONS",
        "INCOMP_LONGITUDINAL",
        "FAILED_CHECK",
        "LOW_EFFORT",
        "MALINGERING",
        "NO_CODE",
        "BAD_CODE",
        "NO_DATA",
        "UNSUPP_DEVICE",
        "OTHER",
    }
)
SUBMISSION_STATUSES: Final = frozenset(
    {
        "RESERVED",
        "ACTIVE",
        "TIMED-OUT",
        "AWAITING REVIEW",
        "APPROVED",
        "RETURNED",
        "REJECTED",
        "SCREENED OUT",
        "PARTIALLY APPROVED",
    }
)
STUDY_STATUSES: Final = frozenset(
    {"UNPUBLISHED", "ACTIVE", "PAUSED", "AWAITING REVIEW", "COMPLETED"}
)
POST_PUBLISH_PATCHABLE: Final = frozenset({"internal_name", "total_available_places"})
MIN_REJECTION_MESSAGE: Final = 100
BULK_APPROVE_MAX: Final = 1000
PROCESSING: Final = "PROCESSING"

_STUDY_READ_ONLY: Final = frozenset(
    {"id", "status", "date_created", "published_at", "places_taken", "total_cost"}
)
_ERROR_TITLES: Final = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class _ApiError(Exception):
    def __init__(self, status: int, detail: object) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def _error_response(
    status: int, detail: object, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    body = {
        "error": {
            "status": status,
            "error_code": 100000 + status,
            "title": _ERROR_TITLES.get(status, "Error"),
            "detail": detail,
            "additional_information": "",
        }
    }
    return httpx.Response(status, json=body, headers=dict(headers or {}))


def _is_participant_id(value: object) -> bool:
    return isinstance(value, str) and _HEX24.fullmatch(value) is not None


@dataclass
class _Group:
    id: str
    name: str
    workspace_id: str | None
    organisation_id: str | None
    description: str | None
    members: dict[str, str]  # participant id -> datetime_created, in insertion order
    participant_count: int  # cached at creation, never refreshed
    deleted: bool = False


@dataclass
class _Submission:
    id: str
    study_id: str
    participant_id: str
    status: str
    started_at: str
    completed_at: str | None
    entered_code: str | None = None
    rejection: JSONDict | None = None
    processing_left: int = 0


@dataclass
class _BonusPayment:
    id: str
    study_id: str
    lines: list[tuple[str, str]]  # participant id, amount (text, two decimals)
    created_at: str
    pays: int = 0  # how often it was paid: the API does not refuse a second pay


@dataclass
class _Subscription:
    id: str
    event_type: str
    target_url: str
    workspace_id: str
    secret: str  # the X-Hook-Secret to confirm with
    is_enabled: bool = False


@dataclass
class _Fault:
    status: int
    path_contains: str | None
    remaining: int | None = None  # fail_next
    every: int | None = None  # fail_every
    retry_after: float | None = None
    seen: int = 0

    def matches(self, request: httpx.Request) -> bool:
        target = request.url.raw_path.decode("ascii", "replace")
        return self.path_contains is None or self.path_contains in target


BadReplyKind = Literal["garbage", "html", "empty", "list", "timeout"]
_BAD_REPLY_BODIES: Final[dict[str, bytes]] = {
    "garbage": b"\x00\x9c garbage, not JSON {",
    "html": b"<html><body><h1>Welcome to nginx!</h1></body></html>",
    "empty": b"",
    "list": b"[]",
}


@dataclass
class _BadReply:
    kind: BadReplyKind
    path_contains: str | None
    method: str | None
    remaining: int

    def matches(self, request: httpx.Request) -> bool:
        target = request.url.raw_path.decode("ascii", "replace")
        return (self.path_contains is None or self.path_contains in target) and (
            self.method is None or self.method == request.method
        )


@dataclass(frozen=True)
class _FilterSpec:
    filter_id: str
    title: str
    kind: Literal["select", "range"]
    data_type: str
    description: str


_FILTER_SPECS: Final = (
    _FilterSpec(
        "participant_group_allowlist",
        "Participant group allowlist",
        "select",
        "ParticipantGroupID",
        "Only members of at least one selected participant group may take part.",
    ),
    _FilterSpec(
        "participant_group_blocklist",
        "Participant group blocklist",
        "select",
        "ParticipantGroupID",
        "Members of any selected participant group may not take part.",
    ),
    _FilterSpec(
        "previous_studies_allowlist",
        "Previous studies allowlist",
        "select",
        "StudyID",
        "Only participants with a submission in a selected study may take part.",
    ),
    _FilterSpec(
        "previous_studies_blocklist",
        "Previous studies blocklist",
        "select",
        "StudyID",
        "Participants with a submission in a selected study may not take part.",
    ),
    _FilterSpec(
        "custom_allowlist",
        "Custom allowlist",
        "select",
        "ParticipantID",
        "Only the listed participant ids may take part.",
    ),
    _FilterSpec(
        "custom_blocklist",
        "Custom blocklist",
        "select",
        "ParticipantID",
        "The listed participant ids may not take part.",
    ),
    _FilterSpec(
        "approval_rate",
        "Approval rate",
        "range",
        "float",
        "Percentage of the participant's submissions that were approved.",
    ),
    _FilterSpec(
        "approval_numbers",
        "Approval numbers",
        "range",
        "integer",
        "Number of the participant's approved submissions.",
    ),
)

Handler = Callable[[httpx.Request, dict[str, str]], httpx.Response]


class FakeProlific:
    """In-memory Prolific: participant groups, studies, filters and submissions."""

    BASE_URL = "https://api.prolific.com/api/v1/"

    def __init__(
        self,
        *,
        token: str = "test-token",
        workspace_id: str = "5e9b9c9b0f9c9a0001b1ca2f",
        page_size_max: int = 100,
        default_page_size: int = 20,
        processing_reads: int = 0,
        repeat_transition: Literal["error", "ignore"] = "error",
        flag_soft_deletes: bool = False,
        echo_headers: bool = False,
    ) -> None:
        if page_size_max < 1 or default_page_size < 1:
            raise ValueError("page sizes must be positive")
        if not _HEX24.fullmatch(workspace_id):
            raise ValueError("workspace_id must be 24 lowercase hex characters")
        self._token = token
        self.workspace_id = workspace_id
        self.page_size_max = page_size_max
        self.default_page_size = default_page_size
        self.processing_reads = processing_reads
        self.repeat_transition: Literal["error", "ignore"] = repeat_transition
        self.flag_soft_deletes = flag_soft_deletes
        self.echo_headers = echo_headers
        self.requests: list[httpx.Request] = []
        self._bad_replies: list[_BadReply] = []
        self.filter_specs: dict[str, _FilterSpec] = {s.filter_id: s for s in _FILTER_SPECS}
        self._groups: dict[str, _Group] = {}
        self._studies: dict[str, JSONDict] = {}
        self._submissions: dict[str, _Submission] = {}
        self._stats: dict[str, tuple[float, int]] = {}
        self._faults: list[_Fault] = []
        self._counters: dict[str, int] = {}
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)
        self._bonus_payments: dict[str, _BonusPayment] = {}
        self._hook_secrets: dict[str, JSONDict] = {}  # workspace id -> secret
        self._subscriptions: dict[str, _Subscription] = {}
        table: tuple[tuple[str, dict[str, Handler]], ...] = (
            (r"participant-groups", {"GET": self._list_groups, "POST": self._create_group}),
            (
                r"participant-groups/(?P<gid>[^/]+)",
                {
                    "GET": self._get_group,
                    "PATCH": self._patch_group,
                    "DELETE": self._delete_group,
                },
            ),
            (
                r"participant-groups/(?P<gid>[^/]+)/participants",
                {
                    "GET": self._list_members,
                    "POST": self._add_members,
                    "DELETE": self._remove_members,
                },
            ),
            (r"studies", {"GET": self._list_studies, "POST": self._create_study}),
            (r"studies/(?P<sid>[^/]+)", {"GET": self._get_study, "PATCH": self._patch_study}),
            (r"studies/(?P<sid>[^/]+)/transition", {"POST": self._transition_study}),
            (r"studies/(?P<sid>[^/]+)/submissions", {"GET": self._list_submissions}),
            (r"submissions/bulk-approve", {"POST": self._bulk_approve}),
            (r"submissions/bonus-payments", {"POST": self._create_bonus_payment}),
            (r"submissions/(?P<sub>[^/]+)", {"GET": self._get_submission}),
            (r"submissions/(?P<sub>[^/]+)/transition", {"POST": self._transition_submission}),
            (r"bulk-bonus-payments/(?P<bid>[^/]+)/pay", {"POST": self._pay_bonus_payment}),
            (r"hooks/event-types", {"GET": self._hook_event_types}),
            (r"hooks/secrets", {"GET": self._list_hook_secrets, "POST": self._create_hook_secret}),
            (
                r"hooks/subscriptions",
                {"GET": self._list_subscriptions, "POST": self._create_subscription},
            ),
            (r"hooks/subscriptions/(?P<hid>[^/]+)", {"POST": self._confirm_subscription}),
            (r"filters", {"GET": self._list_filters}),
            (r"users/me", {"GET": self._me}),
        )
        self._routes = [(re.compile(pattern), methods) for pattern, methods in table]

    # ------------------------------------------------------------------ wiring

    def mount(self, router: respx.Router | respx.MockRouter, base_url: str = BASE_URL) -> None:
        """Route every request to ``base_url``'s host on ``router`` to this fake, which
        serves the API under ``base_url``'s path (anything else there is a 404)."""
        base = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        base_path = base.path

        def side_effect(request: httpx.Request) -> httpx.Response:
            return self._handle(request, base_path)

        origin = str(base.copy_with(path="/", query=None, fragment=None))
        router.route(url__startswith=origin).mock(side_effect=side_effect)

    def client(self, base_url: str = BASE_URL, *, serve_at: str | None = None) -> httpx.Client:
        """An authenticated ``httpx.Client`` with ``base_url``, whose transport is routed
        to this fake; the fake serves the API at ``serve_at`` (default: ``base_url``)."""
        router = respx.Router(assert_all_called=False)
        self.mount(router, serve_at or base_url)
        return httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Token {self._token}"},
            transport=httpx.MockTransport(router.handler),
        )

    # ------------------------------------------------------- state for asserts

    def group_members(self, group_id: str) -> set[str]:
        return set(self._groups[group_id].members)

    def groups(self, *, include_deleted: bool = True) -> dict[str, dict[str, Any]]:
        return {
            g.id: {
                "id": g.id,
                "name": g.name,
                "workspace_id": g.workspace_id,
                "organisation_id": g.organisation_id,
                "description": g.description,
                "participant_count": g.participant_count,
                "is_deleted": g.deleted,
                "participant_ids": list(g.members),
            }
            for g in self._groups.values()
            if include_deleted or not g.deleted
        }

    def is_deleted(self, group_id: str) -> bool:
        return self._groups[group_id].deleted

    def studies(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._studies)

    def study_filters(self, study_id: str) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = copy.deepcopy(self._studies[study_id]["filters"])
        return filters

    def submissions(self) -> dict[str, dict[str, Any]]:
        """Submissions as stored (true status, never PROCESSING)."""
        return {s.id: self._submission_detail(s, peek=True) for s in self._submissions.values()}

    def bonus_payments(self) -> dict[str, dict[str, Any]]:
        """Created bonus payments by id: ``study_id``, ``lines`` [(participant, amount)],
        and ``pays``: how many times it was paid (more than once is money paid twice)."""
        return {
            b.id: {"study_id": b.study_id, "lines": list(b.lines), "pays": b.pays}
            for b in self._bonus_payments.values()
        }

    def paid_bonuses(self) -> list[tuple[str, str]]:
        """(participant, amount) for every line of every pay, in the order paid."""
        paid: list[tuple[str, str]] = []
        for payment in self._bonus_payments.values():
            paid.extend(payment.lines * payment.pays)
        return paid

    def hook_secret(self, workspace_id: str | None = None) -> str | None:
        """The workspace's webhook secret (what deliveries are signed with), if created."""
        stored = self._hook_secrets.get(workspace_id or self.workspace_id)
        return None if stored is None else str(stored["value"])

    def subscriptions(self) -> dict[str, dict[str, Any]]:
        return {
            h.id: {
                "event_type": h.event_type,
                "target_url": h.target_url,
                "workspace_id": h.workspace_id,
                "is_enabled": h.is_enabled,
            }
            for h in self._subscriptions.values()
        }

    def admits(self, study_id: str, participant_id: str) -> bool:
        """Whether the study's ``filters`` let ``participant_id`` in, given current fake state."""
        filters = self._studies[study_id]["filters"]
        return all(self._passes(flt, participant_id) for flt in filters)

    # ------------------------------------------------------------------ seeding

    def set_participant_stats(
        self, participant_id: str, *, approval_rate: float, approvals: int
    ) -> None:
        if not _is_participant_id(participant_id):
            raise ValueError(f"invalid participant id {participant_id!r}")
        self._stats[participant_id] = (float(approval_rate), int(approvals))

    def add_study(self, **fields: Any) -> str:
        """Seed a study directly (any status); ``filters`` are validated as the API would."""
        status = fields.pop("status", "UNPUBLISHED")
        if status not in STUDY_STATUSES:
            raise ValueError(f"unknown study status {status!r}")
        fields.setdefault("name", "Seeded study")
        fields.setdefault("total_available_places", 10)
        try:
            study = self._new_study(fields)
        except _ApiError as exc:
            raise ValueError(exc.detail) from exc
        study["status"] = status
        if status != "UNPUBLISHED":
            study["published_at"] = study["date_created"]
        return str(study["id"])

    def add_submission(
        self,
        study_id: str,
        participant_id: str,
        *,
        status: str = "AWAITING REVIEW",
        started_at: datetime | str | None = None,
        completed_at: datetime | str | None = None,
    ) -> str:
        if study_id not in self._studies:
            raise KeyError(study_id)
        if not _is_participant_id(participant_id):
            raise ValueError(f"invalid participant id {participant_id!r}")
        if status not in SUBMISSION_STATUSES:
            raise ValueError(f"unknown submission status {status!r}")
        started = _iso(started_at) if started_at is not None else self._now()
        completed = _iso(completed_at) if completed_at is not None else None
        if completed is None and status not in {"RESERVED", "ACTIVE", "TIMED-OUT", "RETURNED"}:
            completed = self._now()
        sub = _Submission(
            id=self._new_id("submission"),
            study_id=study_id,
            participant_id=participant_id,
            status=status,
            started_at=started,
            completed_at=completed,
        )
        self._submissions[sub.id] = sub
        return sub.id

    # ---------------------------------------------------------- fault injection

    def fail_next(
        self,
        *,
        status: int = 429,
        times: int = 1,
        path_contains: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(_Fault(status, path_contains, remaining=times, retry_after=retry_after))

    def fail_every(self, n: int, *, status: int = 503, path_contains: str | None = None) -> None:
        """Fail every ``n``-th matching request (the n-th, 2n-th, ...), counted from now."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._faults.append(_Fault(status, path_contains, every=n))

    def bad_reply_next(
        self,
        kind: BadReplyKind = "garbage",
        *,
        times: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Carry out the next ``times`` matching requests, then answer them 200 with a
        body that is not the API's (``garbage``, ``html``, ``empty``, ``list``) or not at
        all (``timeout``: ``httpx.ReadTimeout``)."""
        if kind not in _BAD_REPLY_BODIES and kind != "timeout":
            raise ValueError(f"kind must be one of {sorted([*_BAD_REPLY_BODIES, 'timeout'])}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._bad_replies.append(_BadReply(kind, path_contains, method, times))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._bad_replies.clear()

    # ----------------------------------------------------------------- plumbing

    def _now(self) -> str:
        self._clock += timedelta(seconds=1)
        return _iso(self._clock)

    def _new_id(self, kind: str) -> str:
        prefix = {
            "group": "6a",
            "study": "6b",
            "submission": "6c",
            "bonus": "6d",
            "secret": "6e",
            "hook": "6f",
        }[kind]
        n = self._counters.get(kind, 0) + 1
        self._counters[kind] = n
        return f"{prefix}{n:022x}"

    def _injected_fault(self, request: httpx.Request) -> httpx.Response | None:
        fired: _Fault | None = None
        for fault in self._faults:
            if not fault.matches(request):
                continue
            if fault.remaining is not None:
                if fault.remaining > 0 and fired is None:
                    fault.remaining -= 1
                    fired = fault
            elif fault.every is not None:
                fault.seen += 1
                if fault.seen % fault.every == 0 and fired is None:
                    fired = fault
        self._faults = [f for f in self._faults if f.remaining is None or f.remaining > 0]
        if fired is None:
            return None
        headers = {}
        if fired.retry_after is not None:
            headers["Retry-After"] = f"{fired.retry_after:g}"
        return _error_response(fired.status, "Injected fault.", headers)

    def _handle(self, request: httpx.Request, base_path: str) -> httpx.Response:
        request.read()
        self.requests.append(request)
        bad = self._take_bad_reply(request)
        response = self._answer(request, base_path)
        if self.echo_headers and response.status_code >= 400:
            response = self._echoing(request, response)
        if bad is None:
            return response
        if bad == "timeout":
            raise httpx.ReadTimeout("The read operation timed out (FakeProlific)", request=request)
        return httpx.Response(
            200,
            content=_BAD_REPLY_BODIES[bad],
            headers={"Content-Type": "text/html" if bad == "html" else "application/json"},
        )

    def _take_bad_reply(self, request: httpx.Request) -> BadReplyKind | None:
        for bad in self._bad_replies:
            if bad.matches(request):
                bad.remaining -= 1
                self._bad_replies = [b for b in self._bad_replies if b.remaining > 0]
                return bad.kind
        return None

    @staticmethod
    def _echoing(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """The error reply, its detail quoting the request's headers."""
        body = json.loads(response.content)
        headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
        body["error"]["detail"] = f"{body['error']['detail']} (request headers: {headers})"
        return httpx.Response(response.status_code, json=body, headers=response.headers)

    def _answer(self, request: httpx.Request, base_path: str) -> httpx.Response:
        injected = self._injected_fault(request)
        if injected is not None:
            return injected
        if request.headers.get("Authorization") != f"Token {self._token}":
            return _error_response(
                401,
                "Authentication credentials were not provided or are invalid.",
                {"WWW-Authenticate": "Token"},
            )
        path = request.url.path
        if not path.startswith(base_path):
            return _error_response(404, "Not found.")
        rel = path[len(base_path) :].strip("/")
        try:
            for pattern, methods in self._routes:
                match = pattern.fullmatch(rel)
                if match is None:
                    continue
                handler = methods.get(request.method)
                if handler is None:
                    raise _ApiError(405, f"Method {request.method!r} not allowed.")
                return handler(request, match.groupdict())
            raise _ApiError(404, "Not found.")
        except _ApiError as exc:
            return _error_response(exc.status, exc.detail)

    @staticmethod
    def _body(request: httpx.Request) -> JSONDict:
        if not request.content:
            return {}
        try:
            data = json.loads(request.content)
        except ValueError as exc:
            raise _ApiError(400, "JSON parse error.") from exc
        if not isinstance(data, dict):
            raise _ApiError(400, "Expected a JSON object.")
        return data

    def _paginate(self, request: httpx.Request, items: list[JSONDict]) -> JSONDict:
        params = request.url.params
        limit = _int_param(params.get("limit"), "limit", self.default_page_size, minimum=1)
        limit = min(limit, self.page_size_max)
        offset = _int_param(params.get("offset"), "offset", 0, minimum=0)
        count = len(items)

        def href(off: int) -> str:
            url = request.url.copy_set_param("limit", str(limit))
            return str(url.copy_set_param("offset", str(off)))

        last = ((count - 1) // limit) * limit if count else 0
        return {
            "results": items[offset : offset + limit],
            "_links": {
                "self": {"href": href(offset), "title": "Current page"},
                "next": {
                    "href": href(offset + limit) if offset + limit < count else None,
                    "title": "Next page",
                },
                "previous": {
                    "href": href(max(0, offset - limit)) if offset > 0 else None,
                    "title": "Previous page",
                },
                "last": {"href": href(last), "title": "Last page"},
            },
            "meta": {"count": count},
        }

    # ------------------------------------------------------- participant groups

    def _group(self, gid: str) -> _Group:
        group = self._groups.get(gid)
        if group is None:
            raise _ApiError(404, "Participant group not found.")
        return group

    def _group_json(self, g: _Group) -> JSONDict:
        return {
            "id": g.id,
            "name": g.name,
            "description": g.description,
            "workspace_id": g.workspace_id,
            "organisation_id": g.organisation_id,
            "project_id": None,
            "participant_count": g.participant_count,
            "is_deleted": g.deleted and self.flag_soft_deletes,
            "feeder_studies": [],
        }

    @staticmethod
    def _participant_ids(body: JSONDict, *, required: bool) -> list[str]:
        if "participant_ids" not in body:
            if required:
                raise _ApiError(400, {"participant_ids": ["This field is required."]})
            return []
        ids = body["participant_ids"]
        if not isinstance(ids, list):
            raise _ApiError(400, {"participant_ids": ["Expected a list of participant ids."]})
        bad = [i for i in ids if not _is_participant_id(i)]
        if bad:
            raise _ApiError(
                400, {"participant_ids": [f"Invalid participant id: {b!r}." for b in bad[:10]]}
            )
        return list(dict.fromkeys(ids))

    def _list_groups(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        params = request.url.params
        workspace = params.get("workspace_id") or params.get("filter[workspace_id]")
        if not workspace:
            raise _ApiError(400, {"workspace_id": ["This query parameter is required."]})
        active = (params.get("active") or "").lower()
        groups = [g for g in self._groups.values() if g.workspace_id == workspace]
        if self.flag_soft_deletes and active in {"true", "1"}:
            groups = [g for g in groups if not g.deleted]
        elif self.flag_soft_deletes and active in {"false", "0"}:
            groups = [g for g in groups if g.deleted]
        page = self._paginate(request, [self._group_json(g) for g in groups])
        return httpx.Response(200, json=page)

    def _create_group(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        body = self._body(request)
        errors: dict[str, list[str]] = {}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["This field is required."]
        workspace_id = body.get("workspace_id")
        organisation_id = body.get("organisation_id")
        if workspace_id is None and organisation_id is None:
            errors["workspace_id"] = ["Either a workspace or organisation ID must be specified."]
        elif workspace_id is not None and organisation_id is not None:
            errors["workspace_id"] = ["Give a workspace or an organisation ID, not both."]
        elif workspace_id is not None and workspace_id != self.workspace_id:
            errors["workspace_id"] = ["Workspace not found."]
        elif organisation_id is not None and not _is_participant_id(organisation_id):
            errors["organisation_id"] = ["Invalid organisation id."]
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            errors["description"] = ["Must be a string."]
        if errors:
            raise _ApiError(400, errors)
        ids = self._participant_ids(body, required=False)
        now = self._now()
        group = _Group(
            id=self._new_id("group"),
            name=str(name),
            workspace_id=workspace_id,
            organisation_id=organisation_id,
            description=description,
            members=dict.fromkeys(ids, now),
            participant_count=len(ids),
        )
        self._groups[group.id] = group
        return httpx.Response(201, json=self._group_json(group))

    def _get_group(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        return httpx.Response(200, json=self._group_json(self._group(p["gid"])))

    def _patch_group(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        group = self._group(p["gid"])
        body = self._body(request)
        errors: dict[str, list[str]] = {}
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            errors["name"] = ["Must be a non-empty string."]
        if "description" in body and not (
            body["description"] is None or isinstance(body["description"], str)
        ):
            errors["description"] = ["Must be a string."]
        if errors:
            raise _ApiError(400, errors)
        ids = self._participant_ids(body, required=False) if "participant_ids" in body else None
        if "name" in body:
            group.name = body["name"]
        if "description" in body:
            group.description = body["description"]
        if ids is not None:
            now = self._now()
            group.members = {pid: group.members.get(pid, now) for pid in ids}
        return httpx.Response(200, json=self._group_json(group))

    def _delete_group(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        self._group(p["gid"]).deleted = True
        return httpx.Response(204)

    @staticmethod
    def _members_json(group: _Group) -> list[JSONDict]:
        return [
            {"participant_id": pid, "datetime_created": created}
            for pid, created in group.members.items()
        ]

    def _list_members(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        group = self._group(p["gid"])
        return httpx.Response(200, json=self._paginate(request, self._members_json(group)))

    def _add_members(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        group = self._group(p["gid"])
        ids = self._participant_ids(self._body(request), required=True)
        now = self._now()
        for pid in ids:
            group.members.setdefault(pid, now)
        return httpx.Response(200, json={"results": self._members_json(group)})

    def _remove_members(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        group = self._group(p["gid"])
        ids = self._participant_ids(self._body(request), required=True)
        for pid in ids:
            group.members.pop(pid, None)
        return httpx.Response(200, json={"results": self._members_json(group)})

    # ------------------------------------------------------------------ account

    def _me(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "id": "60a7c0ffee0000000000ac01",
                "name": "Fake Researcher",
                "email": "researcher@example.invalid",
                "current_workspace_id": self.workspace_id,
            },
        )

    # ------------------------------------------------------------------ filters

    def _list_filters(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        group_choices = {
            g.id: g.name for g in self._groups.values() if g.workspace_id == self.workspace_id
        }
        study_choices = {
            sid: str(s.get("internal_name") or s["name"]) for sid, s in self._studies.items()
        }
        items: list[JSONDict] = []
        for spec in self.filter_specs.values():
            item: JSONDict = {
                "filter_id": spec.filter_id,
                "title": spec.title,
                "description": spec.description,
                "type": spec.kind,
                "data_type": spec.data_type,
            }
            if spec.data_type == "ParticipantGroupID":
                item["choices"] = group_choices
            elif spec.data_type == "StudyID":
                item["choices"] = study_choices
            elif spec.kind == "select":
                item["choices"] = {}
            else:
                item["min"] = 0
                item["max"] = 100 if spec.filter_id == "approval_rate" else None
            items.append(item)
        return httpx.Response(200, json=self._paginate(request, items))

    def _validate_filters(self, filters: object) -> list[JSONDict]:
        if not isinstance(filters, list):
            raise _ApiError(400, {"filters": ["Expected a list of filters."]})
        seen: set[str] = set()
        clean: list[JSONDict] = []
        for i, flt in enumerate(filters):
            where = f"filters[{i}]"
            if not isinstance(flt, dict) or not isinstance(flt.get("filter_id"), str):
                raise _ApiError(400, {where: ["Each filter needs a filter_id."]})
            fid = flt["filter_id"]
            spec = self.filter_specs.get(fid)
            if spec is None:
                raise _ApiError(400, {where: [f"Unknown filter_id {fid!r}."]})
            if fid in seen:
                raise _ApiError(400, {where: [f"Duplicate filter_id {fid!r}."]})
            seen.add(fid)
            if ("selected_values" in flt) == ("selected_range" in flt):
                raise _ApiError(
                    400, {where: ["Give exactly one of selected_values or selected_range."]}
                )
            if spec.kind == "select":
                values = flt.get("selected_values")
                if (
                    not isinstance(values, list)
                    or not values
                    or not all(isinstance(v, str) for v in values)
                ):
                    raise _ApiError(
                        400, {where: [f"{fid} needs a non-empty selected_values list."]}
                    )
                self._check_filter_values(where, spec, values)
                clean.append({"filter_id": fid, "selected_values": list(values)})
            else:
                rng = flt.get("selected_range")
                if not isinstance(rng, dict) or not set(rng) <= {"lower", "upper"} or not rng:
                    raise _ApiError(400, {where: [f"{fid} needs selected_range {{lower, upper}}."]})
                bounds = {k: v for k, v in rng.items() if v is not None}
                if not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in bounds.values()
                ):
                    raise _ApiError(400, {where: ["Range bounds must be numbers."]})
                if "lower" in bounds and "upper" in bounds and bounds["lower"] > bounds["upper"]:
                    raise _ApiError(400, {where: ["lower must not exceed upper."]})
                clean.append({"filter_id": fid, "selected_range": dict(rng)})
        return clean

    def _check_filter_values(self, where: str, spec: _FilterSpec, values: list[str]) -> None:
        if spec.data_type == "ParticipantGroupID":
            unknown = [v for v in values if v not in self._groups]
            if unknown:
                raise _ApiError(400, {where: [f"Unknown participant group(s): {unknown}."]})
        elif spec.data_type == "StudyID":
            unknown = [v for v in values if v not in self._studies]
            if unknown:
                raise _ApiError(400, {where: [f"Unknown study(ies): {unknown}."]})
        elif spec.data_type == "ParticipantID":
            bad = [v for v in values if not _is_participant_id(v)]
            if bad:
                raise _ApiError(400, {where: [f"Invalid participant id(s): {bad[:10]}."]})

    def _passes(self, flt: Mapping[str, Any], pid: str) -> bool:
        fid = flt["filter_id"]
        values: list[str] = list(flt.get("selected_values") or [])
        if fid in {"participant_group_allowlist", "participant_group_blocklist"}:
            live = [self._groups[v] for v in values if v in self._groups]
            member = any(pid in g.members for g in live if not g.deleted)
            return member if fid.endswith("allowlist") else not member
        if fid in {"previous_studies_allowlist", "previous_studies_blocklist"}:
            took = any(
                s.participant_id == pid and s.study_id in values for s in self._submissions.values()
            )
            return took if fid.endswith("allowlist") else not took
        if fid == "custom_allowlist":
            return pid in values
        if fid == "custom_blocklist":
            return pid not in values
        if fid in {"approval_rate", "approval_numbers"}:
            stats = self._stats.get(pid)
            if stats is None:
                return False
            value = stats[0] if fid == "approval_rate" else stats[1]
            rng = flt.get("selected_range") or {}
            lower, upper = rng.get("lower"), rng.get("upper")
            return (lower is None or value >= lower) and (upper is None or value <= upper)
        raise NotImplementedError(f"FakeProlific cannot evaluate filter {fid!r}")

    # ------------------------------------------------------------------ studies

    def _study(self, sid: str) -> JSONDict:
        study = self._studies.get(sid)
        if study is None:
            raise _ApiError(404, "Study not found.")
        return study

    def _study_fields(self, body: JSONDict, *, partial: bool) -> JSONDict:
        fields = {k: v for k, v in body.items() if k not in _STUDY_READ_ONLY}
        errors: dict[str, list[str]] = {}
        if "name" in fields or not partial:
            name = fields.get("name")
            if not isinstance(name, str) or not name.strip():
                errors["name"] = ["This field is required."]
        if "total_available_places" in fields or not partial:
            places = fields.get("total_available_places")
            if not isinstance(places, int) or isinstance(places, bool) or places < 1:
                errors["total_available_places"] = ["A positive integer is required."]
        if "eligibility_requirements" in fields and not isinstance(
            fields["eligibility_requirements"], list
        ):
            errors["eligibility_requirements"] = ["Expected a list."]
        if errors:
            raise _ApiError(400, errors)
        if "filters" in fields:
            fields["filters"] = self._validate_filters(fields["filters"])
        return copy.deepcopy(fields)

    def _new_study(self, body: JSONDict) -> JSONDict:
        fields = self._study_fields(body, partial=False)
        now = self._now()
        study: JSONDict = {
            "id": self._new_id("study"),
            "name": fields["name"],
            "internal_name": None,
            "description": "",
            "external_study_url": None,
            "status": "UNPUBLISHED",
            "total_available_places": fields["total_available_places"],
            "places_taken": 0,
            "reward": 0,
            "estimated_completion_time": None,
            "maximum_allowed_time": None,
            "filters": [],
            "eligibility_requirements": [],
            "date_created": now,
            "published_at": None,
        }
        study.update(fields)
        self._studies[study["id"]] = study
        return study

    def _list_studies(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        studies = list(self._studies.values())
        state = request.url.params.get("state")
        if state:
            wanted = {s.strip().upper().replace("_", " ") for s in state.strip("()").split("|")}
            studies = [s for s in studies if s["status"] in wanted]
        return httpx.Response(200, json=self._paginate(request, copy.deepcopy(studies)))

    def _create_study(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        study = self._new_study(self._body(request))
        return httpx.Response(201, json=copy.deepcopy(study))

    def _get_study(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        return httpx.Response(200, json=copy.deepcopy(self._study(p["sid"])))

    def _patch_study(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        study = self._study(p["sid"])
        body = {k: v for k, v in self._body(request).items() if k not in _STUDY_READ_ONLY}
        if study["status"] != "UNPUBLISHED":
            frozen = sorted(set(body) - POST_PUBLISH_PATCHABLE)
            if frozen:
                raise _ApiError(
                    400,
                    {
                        f: [f"Cannot be changed once the study is published ({study['status']})."]
                        for f in frozen
                    },
                )
            places = body.get("total_available_places")
            if "total_available_places" in body and (
                not isinstance(places, int)
                or isinstance(places, bool)
                or places < study["total_available_places"]
            ):
                raise _ApiError(
                    400,
                    {
                        "total_available_places": [
                            "Can only be increased after the study is published."
                        ]
                    },
                )
        fields = self._study_fields(body, partial=True)
        study.update(fields)
        return httpx.Response(200, json=copy.deepcopy(study))

    def _transition_study(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        study = self._study(p["sid"])
        action = self._body(request).get("action")
        status = study["status"]
        allowed: dict[str, set[str]] = {
            "PUBLISH": {"UNPUBLISHED"},
            "PAUSE": {"ACTIVE"},
            "START": {"PAUSED"},
            "STOP": {"ACTIVE", "PAUSED"},
        }
        if action not in allowed:
            raise _ApiError(400, {"action": [f"Expected one of {sorted(allowed)}."]})
        if status not in allowed[action]:
            raise _ApiError(400, f"Cannot {action} a study whose status is {status}.")
        if action == "PUBLISH":
            study["status"] = "ACTIVE"
            study["published_at"] = self._now()
        elif action == "PAUSE":
            study["status"] = "PAUSED"
        elif action == "START":
            study["status"] = "ACTIVE"
        else:
            waiting = any(
                s.study_id == study["id"] and s.status == "AWAITING REVIEW"
                for s in self._submissions.values()
            )
            study["status"] = "AWAITING REVIEW" if waiting else "COMPLETED"
        return httpx.Response(200, json=copy.deepcopy(study))

    # -------------------------------------------------------------- submissions

    def _submission(self, sub_id: str) -> _Submission:
        sub = self._submissions.get(sub_id)
        if sub is None:
            raise _ApiError(404, "Submission not found.")
        return sub

    def _shown_status(self, sub: _Submission, *, consume: bool) -> str:
        if sub.processing_left > 0:
            if consume:
                sub.processing_left -= 1
            return PROCESSING
        return sub.status

    def _submission_detail(self, sub: _Submission, *, peek: bool = False) -> JSONDict:
        return {
            "id": sub.id,
            "study_id": sub.study_id,
            "participant": sub.participant_id,
            "status": sub.status if peek else self._shown_status(sub, consume=True),
            "started_at": sub.started_at,
            "completed_at": sub.completed_at,
            "entered_code": sub.entered_code,
            "bonus_payments": [],
            "return_requested": None,
        }

    def _list_submissions(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        study = self._study(p["sid"])
        subs = [s for s in self._submissions.values() if s.study_id == study["id"]]
        per_participant: dict[str, int] = {}
        for s in subs:
            per_participant[s.participant_id] = per_participant.get(s.participant_id, 0) + 1
        items = [
            {
                "id": s.id,
                "participant_id": s.participant_id,
                "status": self._shown_status(s, consume=False),
                "started_at": s.started_at,
                "completed_at": s.completed_at,
                "has_siblings": per_participant[s.participant_id] > 1,
                "study_code": s.entered_code,
                "return_requested": None,
            }
            for s in subs
        ]
        return httpx.Response(200, json=self._paginate(request, items))

    def _get_submission(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        return httpx.Response(200, json=self._submission_detail(self._submission(p["sub"])))

    def _finish_review(self, sub: _Submission, status: str, rejection: JSONDict | None) -> None:
        sub.status = status
        sub.rejection = rejection
        sub.processing_left = self.processing_reads
        study = self._studies[sub.study_id]
        if study["status"] == "AWAITING REVIEW" and not any(
            s.study_id == sub.study_id and s.status == "AWAITING REVIEW"
            for s in self._submissions.values()
        ):
            study["status"] = "COMPLETED"

    def _transition_submission(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        sub = self._submission(p["sub"])
        body = self._body(request)
        action = body.get("action")
        if action not in {"APPROVE", "REJECT"}:
            raise _ApiError(
                400, {"action": ["Expected APPROVE or REJECT (other actions are not faked)."]}
            )
        rejection: JSONDict | None = None
        if action == "REJECT":
            errors: dict[str, list[str]] = {}
            message = body.get("message")
            if not isinstance(message, str) or len(message) < MIN_REJECTION_MESSAGE:
                errors["message"] = [
                    f"Required for REJECT; must be at least {MIN_REJECTION_MESSAGE} characters."
                ]
            category = body.get("rejection_category")
            if category not in REJECTION_CATEGORIES:
                errors["rejection_category"] = [
                    f"Required for REJECT; one of {sorted(REJECTION_CATEGORIES)}."
                ]
            if errors:
                raise _ApiError(400, errors)
            rejection = {"message": message, "rejection_category": category}
        target = "APPROVED" if action == "APPROVE" else "REJECTED"
        if sub.status in {"APPROVED", "REJECTED"}:
            if sub.status == target and self.repeat_transition == "ignore":
                return httpx.Response(200, json=self._submission_detail(sub, peek=True))
            raise _ApiError(
                400, f"Submission is already {sub.status}; transitions cannot be reverted."
            )
        if sub.status != "AWAITING REVIEW":
            raise _ApiError(400, f"Cannot {action} a submission whose status is {sub.status}.")
        self._finish_review(sub, target, rejection)
        return httpx.Response(200, json=self._submission_detail(sub, peek=True))

    def _bulk_approve(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        body = self._body(request)
        study_id = body.get("study_id")
        if study_id is not None and (
            not isinstance(study_id, str) or study_id not in self._studies
        ):
            raise _ApiError(400, {"study_id": ["Unknown study."]})
        targets: list[_Submission]
        if "submission_ids" in body:
            ids = body["submission_ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise _ApiError(400, {"submission_ids": ["Expected a list of ids."]})
            _check_bulk_size("submission_ids", ids)
            unknown = [i for i in ids if i not in self._submissions]
            if unknown:
                raise _ApiError(400, {"submission_ids": [f"Unknown submission(s): {unknown}."]})
            targets = [self._submissions[i] for i in dict.fromkeys(ids)]
            if study_id is not None and any(s.study_id != study_id for s in targets):
                raise _ApiError(400, {"submission_ids": ["Not all belong to study_id."]})
        elif "participant_ids" in body:
            if study_id is None:
                raise _ApiError(400, {"study_id": ["Required with participant_ids."]})
            pids = self._participant_ids(body, required=True)
            _check_bulk_size("participant_ids", pids)
            targets = []
            missing = []
            for pid in pids:
                found = [
                    s
                    for s in self._submissions.values()
                    if s.study_id == study_id and s.participant_id == pid
                ]
                if not found:
                    missing.append(pid)
                targets.extend(found)
            if missing:
                raise _ApiError(
                    400, {"participant_ids": [f"No submission in the study for: {missing}."]}
                )
        else:
            raise _ApiError(400, "Give submission_ids, or study_id with participant_ids.")
        for sub in targets:
            if sub.status == "AWAITING REVIEW":
                self._finish_review(sub, "APPROVED", None)
        return httpx.Response(200, json="The request to bulk approve has been made successfully.")

    # ------------------------------------------------------------------- bonuses

    def _create_bonus_payment(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        body = self._body(request)
        study_id = body.get("study_id")
        if not isinstance(study_id, str) or study_id not in self._studies:
            raise _ApiError(400, {"study_id": ["Unknown study."]})
        lines = _bonus_lines(body.get("csv_bonuses"))
        for participant, _amount in lines:
            if not any(
                s.study_id == study_id and s.participant_id == participant
                for s in self._submissions.values()
            ):
                raise _ApiError(
                    400, {"csv_bonuses": [f"{participant} has no submission in the study."]}
                )
        payment = _BonusPayment(self._new_id("bonus"), study_id, lines, self._now())
        self._bonus_payments[payment.id] = payment
        amount = sum(float(a) for _p, a in lines)
        fees = round(amount * 0.333, 2)
        return httpx.Response(
            201,
            json={
                "id": payment.id,
                "study": study_id,
                "amount": round(amount * 100),  # in the study currency's minor unit
                "fees": round(fees * 100),
                "vat": 0,
                "total_amount": round((amount + fees) * 100),
            },
        )

    def _pay_bonus_payment(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        payment = self._bonus_payments.get(p["bid"])
        if payment is None:
            raise _ApiError(404, "Bonus payment not found.")
        payment.pays += 1  # not idempotent: paying again pays again
        return httpx.Response(202, json={"id": payment.id, "status": "PAID"})

    # -------------------------------------------------------------------- hooks

    def _hook_event_types(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        return httpx.Response(200, json={"results": [{"event_type": t} for t in HOOK_EVENT_TYPES]})

    def _workspace_of(self, value: object) -> str:
        if value != self.workspace_id:
            raise _ApiError(400, {"workspace_id": ["Unknown workspace."]})
        return self.workspace_id

    def _create_hook_secret(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        workspace = self._workspace_of(self._body(request).get("workspace_id"))
        # One secret per workspace: creating it again replaces it.
        secret = {
            "id": self._new_id("secret"),
            "value": f"whsec_{self._new_id('secret')}",
            "workspace_id": workspace,
        }
        self._hook_secrets[workspace] = secret
        return httpx.Response(201, json=copy.deepcopy(secret))

    def _list_hook_secrets(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        workspace = self._workspace_of(request.url.params.get("workspace_id"))
        found = self._hook_secrets.get(workspace)
        shown = [] if found is None else [{"id": found["id"], "workspace_id": workspace}]
        return httpx.Response(200, json={"results": shown})

    def _create_subscription(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        body = self._body(request)
        workspace = self._workspace_of(body.get("workspace_id"))
        event_type, url = body.get("event_type"), body.get("target_url")
        if event_type not in HOOK_EVENT_TYPES:
            raise _ApiError(400, {"event_type": [f"One of {list(HOOK_EVENT_TYPES)}."]})
        if not isinstance(url, str) or not url.startswith("https://"):
            raise _ApiError(400, {"target_url": ["A public https URL is required."]})
        hook = _Subscription(
            self._new_id("hook"), event_type, url, workspace, f"confirm-{self._new_id('hook')}"
        )
        self._subscriptions[hook.id] = hook
        return httpx.Response(
            201, json=self._subscription_json(hook), headers={"X-Hook-Secret": hook.secret}
        )

    @staticmethod
    def _subscription_json(hook: _Subscription) -> JSONDict:
        return {
            "id": hook.id,
            "event_type": hook.event_type,
            "target_url": hook.target_url,
            "workspace_id": hook.workspace_id,
            "is_enabled": hook.is_enabled,
        }

    def _confirm_subscription(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        hook = self._subscriptions.get(p["hid"])
        if hook is None:
            raise _ApiError(404, "Subscription not found.")
        if request.headers.get("X-Hook-Secret") != hook.secret:
            raise _ApiError(400, "The X-Hook-Secret header does not match the subscription's.")
        hook.is_enabled = True
        return httpx.Response(200, json=self._subscription_json(hook))

    def _list_subscriptions(self, request: httpx.Request, _: dict[str, str]) -> httpx.Response:
        workspace = self._workspace_of(request.url.params.get("workspace_id"))
        items = [
            self._subscription_json(h)
            for h in self._subscriptions.values()
            if h.workspace_id == workspace
        ]
        return httpx.Response(200, json=self._paginate(request, items))


HOOK_EVENT_TYPES: Final = (
    "study.status.change",
    "submission.status.change",
    "participant.submission.created",
)
_AMOUNT: Final = re.compile(r"\d{1,6}(\.\d{1,2})?")


def _bonus_lines(csv_bonuses: object) -> list[tuple[str, str]]:
    """``"participant_id,amount"`` lines, checked; amounts as two-decimal text."""
    if not isinstance(csv_bonuses, str) or not csv_bonuses.strip():
        raise _ApiError(400, {"csv_bonuses": ["Required: participant_id,amount lines."]})
    lines: list[tuple[str, str]] = []
    for number, line in enumerate(csv_bonuses.strip().splitlines(), start=1):
        participant, _, amount = line.strip().partition(",")
        participant, amount = participant.strip(), amount.strip()
        if not _is_participant_id(participant):
            raise _ApiError(400, {"csv_bonuses": [f"Line {number}: invalid participant id."]})
        if not _AMOUNT.fullmatch(amount) or float(amount) <= 0:
            raise _ApiError(400, {"csv_bonuses": [f"Line {number}: invalid amount {amount!r}."]})
        lines.append((participant, f"{float(amount):.2f}"))
    return lines


def _check_bulk_size(name: str, ids: list[Any]) -> None:
    if not ids:
        raise _ApiError(400, {name: ["Must not be empty."]})
    if len(ids) > BULK_APPROVE_MAX:
        raise _ApiError(400, {name: [f"At most {BULK_APPROVE_MAX} ids per request."]})


def _int_param(raw: str | None, name: str, default: int, *, minimum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _ApiError(400, {name: ["A valid integer is required."]}) from exc
    if value < minimum:
        raise _ApiError(400, {name: [f"Must be >= {minimum}."]})
    return value


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


__all__ = [
    "BULK_APPROVE_MAX",
    "HOOK_EVENT_TYPES",
    "MIN_REJECTION_MESSAGE",
    "POST_PUBLISH_PATCHABLE",
    "PROCESSING",
    "REJECTION_CATEGORIES",
    "SUBMISSION_STATUSES",
    "FakeProlific",
]
