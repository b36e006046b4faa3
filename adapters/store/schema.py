"""The tables of a ledger database.

``stored_events`` has exactly the layout of eventsourcing's application recorders
(SQLite: the rowid is the notification id; PostgreSQL: ``notification_id bigserial``), so
eventsourcing's own tools can read a crowdledger log. Everything prefixed ``cl_`` is ours:
the idempotency index (part of the write model, kept with the log) and the read models
with their tracking position (rebuildable; in a companion file on SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "LEDGER_TABLES",
    "OVERLAY_TABLES",
    "READ_MODEL_INDEXES",
    "READ_MODEL_TABLES",
    "SCHEMA_VERSION",
    "VIEWS_VERSION",
    "ddl_names",
    "events_ddl",
    "overlay_ddl",
    "views_ddl",
]

# 2: stored_events has a ``hash`` column (the hash chain, adapters/audit/chain.py) and
# cl_meta a ``ledger_id``; a version 1 ledger is upgraded when a writer opens it.
SCHEMA_VERSION = "2"
# Bump when the projector or the view tables change: an older database rebuilds its views.
VIEWS_VERSION = "5"

READ_MODEL_TABLES = (
    "cl_definitions",
    "cl_workers",
    "cl_values",
    "cl_blocks",
    "cl_submissions",
    "cl_automations",
    "cl_provider_facts",
    "cl_provider_commands",
    "cl_submission_details",
    "cl_review_queue",
    "cl_bonuses",
)

# Secondary indexes of the read models, by name. A rebuild drops them and builds them
# again at the end: one sorted build is far cheaper than a million random inserts.
READ_MODEL_INDEXES = {
    # Covers "who holds q with a value in this range" without touching the table.
    "cl_values_by_qualification": "CREATE INDEX IF NOT EXISTS cl_values_by_qualification "
    "ON cl_values (qualification, value, worker)",
    "cl_submissions_by_worker": "CREATE INDEX IF NOT EXISTS cl_submissions_by_worker "
    "ON cl_submissions (worker)",
    "cl_submissions_by_task": "CREATE INDEX IF NOT EXISTS cl_submissions_by_task "
    "ON cl_submissions (task)",
    "cl_provider_commands_by_status": "CREATE INDEX IF NOT EXISTS cl_provider_commands_by_status "
    "ON cl_provider_commands (target, status, queued_position)",
    "cl_provider_commands_by_subject": "CREATE INDEX IF NOT EXISTS "
    "cl_provider_commands_by_subject ON cl_provider_commands (subject)",
    # The review queue in its order (all of it, or a task's), and the review run.
    "cl_review_queue_by_time": "CREATE INDEX IF NOT EXISTS cl_review_queue_by_time "
    "ON cl_review_queue (submitted_at, submission)",
    "cl_review_queue_by_task": "CREATE INDEX IF NOT EXISTS cl_review_queue_by_task "
    "ON cl_review_queue (task, submitted_at, submission)",
    "cl_submission_details_by_task": "CREATE INDEX IF NOT EXISTS cl_submission_details_by_task "
    "ON cl_submission_details (task)",
    "cl_submission_details_by_worker": "CREATE INDEX IF NOT EXISTS "
    "cl_submission_details_by_worker ON cl_submission_details (worker)",
    "cl_bonuses_by_worker": "CREATE INDEX IF NOT EXISTS cl_bonuses_by_worker "
    "ON cl_bonuses (worker)",
}

# A row inserted without a hash (a command's few events, written with one INSERT ...
# RETURNING) is given, before it is stored, the next position after the last row and its
# hash chained over that row's (adapters/audit/chain.py's encoding, byte for byte): one
# round trip, as before, and no gap in the positions even where a rolled-back command
# spent a value of the sequence. Bulk appends compute the hashes themselves.
_CHAIN_TRIGGER = [
    "CREATE OR REPLACE FUNCTION cl_chain_hash() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE last_position bigint; last_hash bytea; topic_bytes bytea; BEGIN "
    "IF NEW.hash IS NOT NULL THEN RETURN NEW; END IF; "
    "SELECT e.notification_id, e.hash INTO last_position, last_hash FROM stored_events e "
    "ORDER BY e.notification_id DESC LIMIT 1; "
    "IF last_position IS NULL THEN last_position := 0; "
    "last_hash := decode(repeat('00', 32), 'hex'); END IF; "
    "IF last_hash IS NULL THEN RAISE EXCEPTION "
    "'stored_events: position % has no hash (open the ledger with crowdledger to upgrade it)', "
    "last_position; END IF; "
    "NEW.notification_id := last_position + 1; "
    "topic_bytes := convert_to(NEW.topic, 'UTF8'); "
    "NEW.hash := sha256(decode('63726f77646c65646765722f6576656e742f763100', 'hex') || last_hash "
    "|| int8send(NEW.notification_id) || uuid_send(NEW.originator_id) "
    "|| int8send(NEW.originator_version) || int4send(length(topic_bytes)) "
    "|| int4send(length(NEW.state)) || topic_bytes || NEW.state); "
    "RETURN NEW; END $$",
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cl_chain' "
    "AND tgrelid = 'stored_events'::regclass) THEN "
    "CREATE TRIGGER cl_chain BEFORE INSERT ON stored_events "
    "FOR EACH ROW EXECUTE FUNCTION cl_chain_hash(); END IF; END $$",
]

# Every statement that appends to the log NOTIFYs ``crowdledger_log`` with the schema's
# name (adapters/ledger/live_facts.py's CHANNEL): PostgreSQL delivers it at commit (never
# for a rolled-back command, once per transaction however many statements), so every
# writer (CLI, Python API, web, import) wakes the LiveFacts(follow="notify") of every
# process without calling anything. A ledger made before this trigger lacks the function
# (ddl_names), so the next writer to open it runs these statements: that is its upgrade.
_NOTIFY_TRIGGER = [
    "CREATE OR REPLACE FUNCTION cl_notify_log() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('crowdledger_log', TG_TABLE_SCHEMA); RETURN NULL; END $$",
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cl_notify' "
    "AND tgrelid = 'stored_events'::regclass) THEN "
    "CREATE TRIGGER cl_notify AFTER INSERT ON stored_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION cl_notify_log(); END IF; END $$",
]

_EVENTS = {
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS stored_events ("
        "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, hash BLOB, "
        "PRIMARY KEY (originator_id, originator_version))",
    ],
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS stored_events ("
        "originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
        "state bytea, notification_id bigserial, hash bytea, "
        "PRIMARY KEY (originator_id, originator_version))",
        "CREATE UNIQUE INDEX IF NOT EXISTS stored_events_notification_id_idx "
        "ON stored_events (notification_id ASC)",
        # Take the write lock and read a stream in one round trip. Inside the function the
        # SELECT runs after the LOCK with a fresh snapshot, so it sees every event
        # committed while this transaction waited for the lock.
        "CREATE OR REPLACE FUNCTION cl_lock_and_load(stream uuid) "
        "RETURNS TABLE (notification_id bigint, originator_version bigint, topic text, state bytea) "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "LOCK TABLE stored_events IN EXCLUSIVE MODE; "
        "RETURN QUERY SELECT e.notification_id, e.originator_version, e.topic, e.state "
        "FROM stored_events e WHERE e.originator_id = stream ORDER BY e.originator_version; "
        "END $$",
        *_CHAIN_TRIGGER,
        *_NOTIFY_TRIGGER,
    ],
}

_WRITE_MODEL = """
CREATE TABLE IF NOT EXISTS cl_meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_sync_leases (
    target TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
    first_position BIGINT NOT NULL, last_position BIGINT NOT NULL)
"""

_READ_MODELS = """
CREATE TABLE IF NOT EXISTS cl_views_meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_tracking (
    name TEXT PRIMARY KEY, position BIGINT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_definitions (
    name TEXT PRIMARY KEY, description TEXT NOT NULL, position BIGINT NOT NULL,
    occurred_at TEXT NOT NULL, actor TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_workers (
    worker TEXT PRIMARY KEY, first_position BIGINT NOT NULL, first_seen TEXT NOT NULL,
    submitted BIGINT NOT NULL DEFAULT 0, approved BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0, soft_rejected BIGINT NOT NULL DEFAULT 0,
    gold_judged BIGINT NOT NULL DEFAULT 0, gold_agreed BIGINT NOT NULL DEFAULT 0)
CREATE TABLE IF NOT EXISTS cl_values (
    worker TEXT NOT NULL, qualification TEXT NOT NULL, value BIGINT,
    position BIGINT NOT NULL, occurred_at TEXT NOT NULL, actor TEXT NOT NULL,
    event_id TEXT NOT NULL, PRIMARY KEY (worker, qualification)) {without_rowid}
CREATE TABLE IF NOT EXISTS cl_blocks (
    worker TEXT NOT NULL, scope TEXT NOT NULL, until TEXT, position BIGINT NOT NULL,
    occurred_at TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT, event_id TEXT NOT NULL,
    PRIMARY KEY (worker, scope)) {without_rowid}
CREATE TABLE IF NOT EXISTS cl_automations (
    ruleset TEXT PRIMARY KEY, digest TEXT NOT NULL, spec TEXT NOT NULL, position BIGINT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_provider_facts (
    target TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, subject TEXT NOT NULL,
    value TEXT NOT NULL, position BIGINT NOT NULL,
    PRIMARY KEY (target, kind, key, subject)) {without_rowid}
CREATE TABLE IF NOT EXISTS cl_provider_commands (
    command_id TEXT PRIMARY KEY, target TEXT NOT NULL, operation TEXT NOT NULL,
    kind TEXT NOT NULL, key TEXT NOT NULL, subject TEXT NOT NULL, fact_value TEXT,
    status TEXT NOT NULL, error TEXT, queued_position BIGINT NOT NULL,
    position BIGINT NOT NULL, occurred_at TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_submissions (
    submission TEXT PRIMARY KEY, worker TEXT NOT NULL, task TEXT NOT NULL,
    status TEXT NOT NULL, position BIGINT NOT NULL, occurred_at TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_submission_details (
    submission TEXT PRIMARY KEY, worker TEXT NOT NULL, task TEXT NOT NULL, answer TEXT NOT NULL,
    accepted_at TEXT, submitted_at TEXT NOT NULL, response_seconds DOUBLE PRECISION)
CREATE TABLE IF NOT EXISTS cl_review_queue (
    submission TEXT PRIMARY KEY, task TEXT NOT NULL, worker TEXT NOT NULL, reason TEXT,
    submitted_at TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_bonuses (
    bonus TEXT PRIMARY KEY, worker TEXT NOT NULL, task TEXT NOT NULL, submission TEXT NOT NULL,
    amount TEXT NOT NULL, currency TEXT NOT NULL, position BIGINT NOT NULL,
    occurred_at TEXT NOT NULL, event_id TEXT NOT NULL)
"""


def _statements(block: str, dialect: str) -> list[str]:
    without_rowid = "WITHOUT ROWID" if dialect == "sqlite" else ""
    parts = [
        s.strip().format(without_rowid=without_rowid) for s in block.strip().split("\nCREATE ")
    ]
    return [s if s.startswith("CREATE ") else "CREATE " + s for s in parts]


def events_ddl(dialect: str) -> list[str]:
    """The log and what must be as durable as it, for "sqlite" or "postgresql"."""
    return [*_EVENTS[dialect], *_statements(_WRITE_MODEL, dialect)]


def views_ddl(dialect: str) -> list[str]:
    """The read models and their tracking position."""
    return [*_statements(_READ_MODELS, dialect), *READ_MODEL_INDEXES.values()]


# A database holding both is a crowdledger ledger; one holding neither has no ledger.
LEDGER_TABLES = ("stored_events", "cl_meta")
# What a reader copies to overlay the events the read models have not seen yet.
OVERLAY_TABLES = ("cl_tracking", *READ_MODEL_TABLES)

_NAMED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX)(?: IF NOT EXISTS)? (\w+)|FUNCTION (\w+)")


def ddl_names(statements: Iterable[str]) -> set[str]:
    """The tables, indexes and functions that ``statements`` create."""
    names = set()
    for statement in statements:
        match = _NAMED.search(statement)
        if match is not None:
            names.add(match.group(1) or match.group(2))
    return names


def overlay_ddl(dialect: str) -> tuple[list[str], list[str]]:
    """Private temporary copies of the read-model tables, and their indexes (built after
    the copy), which shadow the shared ones in one connection: a reader that must not
    wait for the write lock applies there the events the shared read models have not
    seen yet."""
    tables = [
        s.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1)
        for s in _statements(_READ_MODELS, dialect)
        if ddl_names([s]) & set(OVERLAY_TABLES)
    ]
    # SQLite names the schema on the index; PostgreSQL puts it beside its (temporary) table.
    prefix = "temp." if dialect == "sqlite" else ""
    indexes = [
        s.replace(f"IF NOT EXISTS {name} ", f"IF NOT EXISTS {prefix}{name} ", 1)
        for name, s in READ_MODEL_INDEXES.items()
    ]
    return tables, indexes
