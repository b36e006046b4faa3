"""The tables of a ledger database.

``stored_events`` has exactly the layout of eventsourcing's application recorders
(SQLite: the rowid is the notification id; PostgreSQL: ``notification_id bigserial``), so
eventsourcing's own tools can read a crowdledger log. Everything prefixed ``cl_`` is ours:
the idempotency index (part of the write model) and the read models (rebuildable).
"""

from __future__ import annotations

__all__ = ["READ_MODEL_TABLES", "SCHEMA_VERSION", "VIEWS_VERSION", "ddl"]

SCHEMA_VERSION = "1"
# Bump when the projector or the view tables change: an older database rebuilds its views.
VIEWS_VERSION = "1"

READ_MODEL_TABLES = ("cl_definitions", "cl_workers", "cl_values", "cl_blocks", "cl_submissions")

_EVENTS = {
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS stored_events ("
        "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))",
    ],
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS stored_events ("
        "originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
        "state bytea, notification_id bigserial, "
        "PRIMARY KEY (originator_id, originator_version))",
        "CREATE UNIQUE INDEX IF NOT EXISTS stored_events_notification_id_idx "
        "ON stored_events (notification_id ASC)",
    ],
}

_OURS = """
CREATE TABLE IF NOT EXISTS cl_meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_tracking (
    name TEXT PRIMARY KEY, position BIGINT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
    first_position BIGINT NOT NULL, last_position BIGINT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_definitions (
    name TEXT PRIMARY KEY, description TEXT NOT NULL, position BIGINT NOT NULL,
    occurred_at TEXT NOT NULL, actor TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS cl_workers (
    worker TEXT PRIMARY KEY, first_position BIGINT NOT NULL, first_seen TEXT NOT NULL,
    submitted BIGINT NOT NULL DEFAULT 0, approved BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0)
CREATE TABLE IF NOT EXISTS cl_values (
    worker TEXT NOT NULL, qualification TEXT NOT NULL, value BIGINT,
    position BIGINT NOT NULL, occurred_at TEXT NOT NULL, actor TEXT NOT NULL,
    PRIMARY KEY (worker, qualification)) {without_rowid}
CREATE INDEX IF NOT EXISTS cl_values_by_qualification ON cl_values (qualification, worker)
CREATE TABLE IF NOT EXISTS cl_blocks (
    worker TEXT NOT NULL, scope TEXT NOT NULL, until TEXT, position BIGINT NOT NULL,
    occurred_at TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (worker, scope)) {without_rowid}
CREATE TABLE IF NOT EXISTS cl_submissions (
    submission TEXT PRIMARY KEY, worker TEXT NOT NULL, task TEXT NOT NULL,
    status TEXT NOT NULL, position BIGINT NOT NULL, occurred_at TEXT NOT NULL)
CREATE INDEX IF NOT EXISTS cl_submissions_by_worker ON cl_submissions (worker)
CREATE INDEX IF NOT EXISTS cl_submissions_by_task ON cl_submissions (task)
"""


def ddl(dialect: str) -> list[str]:
    """Every statement that creates the schema, for ``dialect`` "sqlite" or "postgresql"."""
    without_rowid = "WITHOUT ROWID" if dialect == "sqlite" else ""
    ours = [
        statement.strip().format(without_rowid=without_rowid)
        for statement in _OURS.strip().split("\nCREATE ")
    ]
    ours = [s if s.startswith("CREATE ") else "CREATE " + s for s in ours]
    return [*_EVENTS[dialect], *ours]
