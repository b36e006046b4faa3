"""The benchmark workload: a realistic, valid history of N events over W workers.

Grants (and re-grants), revokes of held qualifications, submissions, and approvals or
rejections of pending submissions, in time order, as the JSON Lines that
``crowdledger export`` writes. Deterministic for a given seed; cached under bench/data/.
"""

from __future__ import annotations

import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from crowdledger.domain.streams import (
    qualification_type_stream,
    submission_stream,
    worker_qualification_stream,
)

DATA = Path(__file__).parent / "data"
QUALIFICATIONS = ["english", "onboarding", "onboarding-failed", "quality_score", "masters-like"]


def worker_id(n: int) -> str:
    return f"mturk:A{n:013d}"


def generate(path: Path, events: int, workers: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    held: dict[tuple[int, int], int] = {}  # (worker, qual) -> stream version
    held_list: list[tuple[int, int]] = []
    versions: dict[tuple[int, int], int] = {}
    pending: list[tuple[str, int, str]] = []
    written = 0
    tick = 0
    with path.open("wb") as out:

        def emit(doc: dict[str, object]) -> None:
            nonlocal written, tick
            tick += 1
            when = (start + timedelta(seconds=tick)).isoformat()
            doc.update(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                actor="bench",
                reason=None,
                occurred_at=when,
                correlation_id=f"c{tick}",
                idempotency_key=None,
                recorded_at=when,
            )
            out.write(orjson.dumps(doc) + b"\n")
            written += 1

        for q in QUALIFICATIONS:
            emit(
                {
                    "type": "QualificationDefined",
                    "qualification": q,
                    "description": f"{q} test",
                    "stream": str(qualification_type_stream(q)),
                    "version": 1,
                }
            )
        while written < events:
            roll = rng.random()
            if roll < 0.40 or (roll < 0.50 and not held_list):
                w, q = rng.randrange(workers), rng.randrange(len(QUALIFICATIONS))
                key = (w, q)
                version = versions.get(key, 0) + 1
                versions[key] = version
                if key not in held:
                    held_list.append(key)
                held[key] = version
                emit(
                    {
                        "type": "QualificationGranted",
                        "worker": worker_id(w),
                        "qualification": QUALIFICATIONS[q],
                        "value": rng.randrange(0, 100),
                        "stream": str(worker_qualification_stream(worker_id(w), QUALIFICATIONS[q])),
                        "version": version,
                    }
                )
            elif roll < 0.50:
                i = rng.randrange(len(held_list))
                held_list[i], held_list[-1] = held_list[-1], held_list[i]
                w, q = key = held_list.pop()
                del held[key]
                version = versions[key] + 1
                versions[key] = version
                emit(
                    {
                        "type": "QualificationRevoked",
                        "worker": worker_id(w),
                        "qualification": QUALIFICATIONS[q],
                        "stream": str(worker_qualification_stream(worker_id(w), QUALIFICATIONS[q])),
                        "version": version,
                    }
                )
            elif roll < 0.78 or not pending:
                w = rng.randrange(workers)
                sub = f"S{written:09d}"
                task = f"hit{rng.randrange(500)}"
                pending.append((sub, w, task))
                emit(
                    {
                        "type": "SubmissionRecorded",
                        "worker": worker_id(w),
                        "provider": "mturk",
                        "task": task,
                        "submission": sub,
                        "answer": {"label": rng.choice(["cat", "dog", "bird"])},
                        "accepted_at": None,
                        "submitted_at": (start + timedelta(seconds=tick + 1)).isoformat(),
                        "stream": str(submission_stream(sub)),
                        "version": 1,
                    }
                )
            else:
                i = rng.randrange(len(pending))
                pending[i], pending[-1] = pending[-1], pending[i]
                sub, w, task = pending.pop()
                approve = rng.random() < 0.85
                doc: dict[str, object] = {
                    "type": "SubmissionApproved" if approve else "SubmissionRejected",
                    "worker": worker_id(w),
                    "task": task,
                    "submission": sub,
                    "feedback": None,
                    "stream": str(submission_stream(sub)),
                    "version": 2,
                }
                if approve:
                    doc["overrode_rejection"] = False
                emit(doc)
    return path


def workload(events: int = 1_000_000, workers: int = 100_000) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"history-{events}-{workers}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        generate(tmp, events, workers)
        tmp.rename(path)
    return path


if __name__ == "__main__":
    print(workload(int(sys.argv[1]), int(sys.argv[2])))
