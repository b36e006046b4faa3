"""Deterministic stream ids: the same worker and qualification always find the same stream.

Ids are UUIDv5 names in a namespace of our own, so a retried command, another process or
an import computes the same id without asking the store, and a replayed history lands in
the streams it came from.
"""

from __future__ import annotations

from uuid import UUID, uuid5

__all__ = [
    "NAMESPACE",
    "qualification_type_stream",
    "submission_stream",
    "worker_blocks_stream",
    "worker_qualification_stream",
]

NAMESPACE = UUID("6f1c3c0e-5d3a-4f7e-9a51-2b8d0c4e7a10")


def qualification_type_stream(qualification: str) -> UUID:
    return uuid5(NAMESPACE, f"qualification-type/{qualification}")


def worker_qualification_stream(worker: str, qualification: str) -> UUID:
    return uuid5(NAMESPACE, f"worker-qualification/{worker}/{qualification}")


def worker_blocks_stream(worker: str) -> UUID:
    return uuid5(NAMESPACE, f"worker-blocks/{worker}")


def submission_stream(submission: str) -> UUID:
    return uuid5(NAMESPACE, f"submission/{submission}")
