"""One sender per provider account: a lease on a target's outbox.

Planning and queueing hold the ledger's write lock, but sending cannot (it waits on the
network). Two appliers sending the same outbox at once could each send a stale copy of
a command after the other sent a newer one about the same fact; so sending needs the
lease. It is a row in the write model with an expiry far longer than one command can
take, renewed as sending goes on (a holder that lost it stops). A process that dies
holding it is taken over at once by one beside it (same host, same pid namespace);
otherwise once the lease runs out (``SendLease.ttl``).
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta

from crowdledger.adapters.store.database import Database
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.domain.errors import LedgerError
from crowdledger.domain.ids import new_uuid4

__all__ = ["SendLease", "SyncBusyError"]


class SyncBusyError(LedgerError):
    """Another process holds the lease on this target's outbox."""


def _pid_namespace() -> str:
    """Which process-id namespace we are in (containers sharing a host name may not
    share it): a pid means something only within one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def _died(holder: str) -> bool:
    """Whether the holder was a process beside us (same host, same pid namespace) that
    no longer runs (killed mid-apply): its lease need not be waited out."""
    host, pid, namespace, *_rest = [*holder.split(":"), "", "", ""]
    if host != socket.gethostname() or namespace != _pid_namespace() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


class SendLease:
    # Far longer than one command can take, retries and backoff included.
    ttl = timedelta(minutes=10)

    def __init__(self, db: Database, target: str) -> None:
        self._db = db
        self.target = target
        self.holder = (
            f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}:{new_uuid4().hex[:8]}"
        )
        self._renewed = 0.0

    def keep(self) -> None:
        """Renew the lease if a quarter of it has gone by (cheap to call often)."""
        if time.monotonic() - self._renewed > self.ttl.total_seconds() / 4:
            self.acquire()

    def acquire(self) -> None:
        """Take the lease, or renew it; raise SyncBusyError if another process has it."""
        now = datetime.now(UTC)
        with self._db.log_transaction() as cur:
            EventLog.take_lock(cur)
            row = cur.execute(
                "SELECT holder, expires FROM cl_sync_leases WHERE target = ?", (self.target,)
            ).fetchone()
            if row is not None and row[0] != self.holder:
                expires = datetime.fromisoformat(row[1])
                if expires > now and not _died(row[0]):
                    raise SyncBusyError(
                        f"another apply ({row[0]}) is sending to {self.target} until "
                        f"{expires.isoformat(timespec='seconds')} at the latest; "
                        "the commands wait in the outbox"
                    )
            cur.execute("DELETE FROM cl_sync_leases WHERE target = ?", (self.target,))
            cur.execute(
                "INSERT INTO cl_sync_leases (target, holder, expires) VALUES (?, ?, ?)",
                (self.target, self.holder, (now + self.ttl).isoformat()),
            )
        self._renewed = time.monotonic()

    def release(self) -> None:
        with self._db.log_transaction() as cur:
            EventLog.take_lock(cur)
            cur.execute(
                "DELETE FROM cl_sync_leases WHERE target = ? AND holder = ?",
                (self.target, self.holder),
            )
