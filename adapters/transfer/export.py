"""Export: every event, in record order, as JSON Lines (one event document per line).

The document is the event's stored JSON plus ``position``, ``type``, ``stream`` and
``version``, with ``timestamp`` named ``recorded_at``: what ``history --json`` shows and
what ``import`` reads back. The mark an import puts on outbox events (they are history in
this ledger) is this ledger's, not the event's: it is left out. A provider's error recorded before
redaction existed is redacted on the way out (:mod:`crowdledger.adapters.sync.redaction`).

Every line ends with its hash, chained over the line before (:mod:`.export_chain`), which
``import`` checks as it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from crowdledger.adapters.store.catch_up import type_name
from crowdledger.adapters.store.worker_keys import ERASED_TOPIC
from crowdledger.adapters.sync.redaction import redacted_document
from crowdledger.adapters.transfer.export_chain import seal
from crowdledger.projections.projector import IMPORTED_AS_HISTORY

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["export_events"]


def export_events(
    ledger: Ledger, out: BinaryIO, *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Write the whole log to ``out`` from one consistent snapshot; returns how many.
    ``progress(done, total)`` is called per batch written."""
    count = 0
    previous = bytes(32)
    total = ledger.head() if progress is not None else 0
    for rows in ledger._scan():
        lines = []
        for position, stream, version, topic, state in rows:
            if topic == ERASED_TOPIC:
                continue  # an erased worker's grant, block...: nothing left to carry
            data: dict[str, Any] = orjson.loads(state)
            doc: dict[str, Any] = {"position": position, "type": type_name(topic)}
            doc.update(data)
            doc["recorded_at"] = doc.pop("timestamp")
            doc.pop(IMPORTED_AS_HISTORY, None)  # this ledger's mark, not part of the event
            doc["stream"] = str(stream)
            doc["version"] = version
            line, previous = seal(previous, orjson.dumps(redacted_document(doc)))
            lines.append(line)
        if lines:
            out.write(b"\n".join(lines) + b"\n")
        count += len(lines)
        if progress is not None:
            progress(count, max(total, count))
    return count
