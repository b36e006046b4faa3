"""Reading what the sync knows: the provider facts, the outbox, and the ledger's side.

All of it comes from read models the projector keeps (``cl_provider_facts``,
``cl_provider_commands``) and from the ledger's own tables, inside the caller's
transaction, so a plan sees one consistent moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from crowdledger.adapters.store.database import Cursor
from crowdledger.domain.identifiers import require_text
from crowdledger.projections.projector import ProviderCommandRow
from crowdledger.rules.sync_plan import FactKey, SyncCommand

__all__ = ["ProviderFacts", "SqlLedgerFacts"]

_COMMAND_COLUMNS = ", ".join(ProviderCommandRow._fields)


class ProviderFacts:
    """The provider side: facts held (as far as the ledger knows) and the outbox."""

    def __init__(self, cur: Cursor) -> None:
        self._cur = cur

    def held(self, target: str, scopes: Iterable[tuple[str, str]]) -> dict[FactKey, str]:
        """The facts of ``target`` within ``scopes`` (kind, key) that the provider holds."""
        held: dict[FactKey, str] = {}
        for kind, key in dict.fromkeys(scopes):
            rows = self._cur.execute(
                "SELECT subject, value FROM cl_provider_facts "
                "WHERE target = ? AND kind = ? AND key = ?",
                (target, kind, key),
            ).fetchall()
            held.update(((kind, key, subject), value) for subject, value in rows)
        return held

    def ids(self, target: str, kind: str) -> dict[str, str]:
        """Provider ids of the types (or groups) the sync created or adopted, by name."""
        rows = self._cur.execute(
            "SELECT key, value FROM cl_provider_facts WHERE target = ? AND kind = ?",
            (target, kind),
        ).fetchall()
        return {key: value for key, value in rows if value}

    def commands(
        self, target: str, statuses: Sequence[str], *, limit: int | None = None
    ) -> list[ProviderCommandRow]:
        """The commands of ``target`` in those states, oldest queued first; with
        ``limit``, the ``limit`` queued last, in the order they last changed."""
        marks = ", ".join("?" for _ in statuses)
        params: list[object] = [target, *statuses]
        tail = ""
        if limit is not None:
            tail = " DESC LIMIT ?"
            params.append(limit)
        rows = self._cur.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM cl_provider_commands "
            f"WHERE target = ? AND status IN ({marks}) ORDER BY queued_position{tail}",
            params,
        ).fetchall()
        found = [ProviderCommandRow(*row) for row in rows]
        return found if limit is None else sorted(found, key=lambda r: r.position)

    def command(self, command_id: str) -> ProviderCommandRow | None:
        """One command of the outbox, whatever its state."""
        require_text(command_id, "command", limit=200)  # an id the user typed, say
        row = self._cur.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM cl_provider_commands WHERE command_id = ?",
            (command_id,),
        ).fetchone()
        return None if row is None else ProviderCommandRow(*row)

    def counts(self, target: str) -> dict[str, int]:
        rows = self._cur.execute(
            "SELECT status, COUNT(*) FROM cl_provider_commands WHERE target = ? GROUP BY status",
            (target,),
        ).fetchall()
        return {status: int(count) for status, count in rows}

    def targets(self) -> list[str]:
        rows = self._cur.execute(
            "SELECT DISTINCT target FROM cl_provider_commands "
            "UNION SELECT DISTINCT target FROM cl_provider_facts ORDER BY 1"
        ).fetchall()
        return [row[0] for row in rows]


def command_of(row: ProviderCommandRow) -> SyncCommand:
    """The command a row of the outbox holds."""
    return SyncCommand(row.operation, row.kind, row.key, row.subject, row.fact_value)


class SqlLedgerFacts:
    """The ledger side the gates read, over the SQL read models
    (:class:`~crowdledger.rules.gates.LedgerFacts`)."""

    def __init__(self, cur: Cursor) -> None:
        self._cur = cur

    def holder_values(self, qualification: str, provider: str) -> dict[str, int]:
        rows = self._cur.execute(
            "SELECT worker, value FROM cl_values WHERE qualification = ? "
            "AND value IS NOT NULL AND worker >= ? AND worker < ?",
            (qualification, f"{provider}:", f"{provider};"),
        ).fetchall()
        return {worker: int(value) for worker, value in rows}

    def blocked_in_scope(self, scope: str, provider: str, at: datetime) -> set[str]:
        rows = self._cur.execute(
            "SELECT worker, until FROM cl_blocks WHERE scope = ? AND worker >= ? AND worker < ?",
            (scope, f"{provider}:", f"{provider};"),
        ).fetchall()
        return {
            worker for worker, until in rows if until is None or at < datetime.fromisoformat(until)
        }
