"""Deterministic stream ids: the same worker and qualification always find the same stream.

Ids are UUIDv5 names in a namespace of our own, so a retried command, another process or
an import computes the same id without asking the store, and a replayed history lands in
the streams it came from.
"""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID

from crowdledger.domain.ids import uuid_from_sha1

__all__ = [
    "NAMESPACE",
    "automation_failures_name",
    "automation_failures_stream",
    "automation_set_name",
    "automation_set_stream",
    "provider_command_name",
    "provider_command_stream",
    "provider_observation_name",
    "provider_observation_stream",
    "qualification_type_name",
    "qualification_type_stream",
    "stream_hex",
    "stream_uuid",
    "submission_name",
    "submission_stream",
    "worker_blocks_name",
    "worker_blocks_stream",
    "worker_qualification_name",
    "worker_qualification_stream",
]

NAMESPACE = UUID("6f1c3c0e-5d3a-4f7e-9a51-2b8d0c4e7a10")


_NAMESPACE_BYTES = NAMESPACE.bytes


def stream_uuid(name: str) -> UUID:
    """The stream id for a stream name such as ``worker-blocks/mturk:A1B2``.

    Exactly ``uuid.uuid5(NAMESPACE, name)``, computed without its argument juggling:
    bulk imports call this once per stream.
    """
    return uuid_from_sha1(sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest())


def stream_hex(name: str) -> str:
    """:func:`stream_uuid` as 32 hex digits, without building a UUID object.

    The form SQLite stores; bulk imports compute it once per stream, and building the
    UUID object costs several times the hash on a slow machine.
    """
    digest = bytearray(sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def qualification_type_name(qualification: str) -> str:
    return f"qualification-type/{qualification}"


def worker_qualification_name(worker: str, qualification: str) -> str:
    return f"worker-qualification/{worker}/{qualification}"


def worker_blocks_name(worker: str) -> str:
    return f"worker-blocks/{worker}"


def submission_name(submission: str) -> str:
    return f"submission/{submission}"


def automation_set_name(ruleset: str) -> str:
    return f"automation-set/{ruleset}"


def automation_set_stream(ruleset: str) -> UUID:
    return stream_uuid(automation_set_name(ruleset))


def automation_failures_name(worker: str) -> str:
    """What automations could not do for a worker (their ``AutomationFailed`` events)."""
    return f"automation-failures/{worker}"


def automation_failures_stream(worker: str) -> UUID:
    return stream_uuid(automation_failures_name(worker))


def qualification_type_stream(qualification: str) -> UUID:
    return stream_uuid(qualification_type_name(qualification))


def worker_qualification_stream(worker: str, qualification: str) -> UUID:
    return stream_uuid(worker_qualification_name(worker, qualification))


def worker_blocks_stream(worker: str) -> UUID:
    return stream_uuid(worker_blocks_name(worker))


def submission_stream(submission: str) -> UUID:
    return stream_uuid(submission_name(submission))


def provider_command_name(command_id: str) -> str:
    return f"provider-command/{command_id}"


def provider_command_stream(command_id: str) -> UUID:
    return stream_uuid(provider_command_name(command_id))


def provider_observation_name(pull_id: str) -> str:
    return f"provider-observation/{pull_id}"


def provider_observation_stream(pull_id: str) -> UUID:
    return stream_uuid(provider_observation_name(pull_id))
