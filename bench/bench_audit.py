"""Audit benchmarks: the hash chain and the Merkle root over a million stored rows.

Each measure runs in a fresh process over the same synthetic rows (what ``stored_events``
holds: a position, a stream id, a version, a topic and a JSON state of about 300 bytes,
generated on the fly, never all in memory), and reports events per second and the
process's peak memory (max RSS). The baseline, measured in the same run on the same rows,
is one plain ``hashlib.sha256`` of each row's stored state (369 of the 494 bytes the chain
hashes per row, without the framing); the floor is the loop over the rows with no hashing
at all. Measures:

* ``chain``: :func:`chain_hashes`, the chained SHA-256 of every row;
* ``audit``: :func:`audit_log` without stored hashes (the chain, the Merkle tree of the
  event hashes and a checkpoint compared at the end): what ``checkpoint`` and
  ``verify --checkpoint`` cost;
* ``verify``: :func:`audit_log` with a stored hash beside every row (the rows' generator
  computes them, so this includes a second chain's cost: see ``chain``);
* ``prove``: :func:`build_inclusion_proof` of the middle event, one pass (the root for
  its checkpoint computed first, untimed).

Memory is bounded if the peak RSS does not grow with the number of events: compare
``--events 100000`` with ``--events 1000000``.

Usage::

    python bench/bench_audit.py                     # 1,000,000 events
    python bench/bench_audit.py --events 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import orjson

from crowdledger.adapters.audit.chain import canonical_bytes, chain_hash, chain_hashes

MEASURES = ("floor", "baseline", "chain", "audit", "verify", "prove")
POOL = 997  # distinct states and streams, cycled (a prime: no alignment with anything)


def _pool() -> tuple[list[bytes], list[uuid.UUID]]:
    states = [
        orjson.dumps(
            {
                "event_id": str(uuid.UUID(int=i * 7919 + 1)),
                "actor": "operator@example.org",
                "reason": f"passed the English test, batch {i}",
                "occurred_at": "2026-11-22T10:00:00.123456+00:00",
                "timestamp": "2026-11-22T10:00:00.234567+00:00",
                "correlation_id": str(uuid.UUID(int=i * 104729 + 3)),
                "idempotency_key": None,
                "qualification": "english",
                "value": i % 100,
                "worker": f"mturk:A{i:013d}",
            }
        )
        for i in range(POOL)
    ]
    streams = [uuid.UUID(int=i * 15485863 + 5) for i in range(POOL)]
    return states, streams


def rows(n: int) -> Iterator[tuple[int, uuid.UUID, int, str, bytes]]:
    states, streams = _pool()
    topic = "crowdledger:QualificationGranted"
    for position in range(1, n + 1):
        i = position % POOL
        yield position, streams[i], position // POOL + 1, topic, states[i]


def rows_with_hashes(n: int) -> Iterator[tuple[int, uuid.UUID, int, str, bytes, bytes | None]]:
    previous = bytes(32)
    for row in rows(n):
        previous = chain_hash(previous, row)
        yield (*row, previous)


def measure(name: str, n: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from crowdledger.adapters.audit.checkpoint import sign_checkpoint
    from crowdledger.adapters.audit.log_audit import audit_log
    from crowdledger.adapters.audit.proof import build_inclusion_proof

    key = Ed25519PrivateKey.generate()
    extra: dict[str, float] = {}
    if name == "prove":
        root = audit_log((*row, None) for row in rows(n)).root
        checkpoint = sign_checkpoint("bench", n, root, key)
    started = time.perf_counter()
    if name == "floor":
        for _row in rows(n):
            pass
    elif name == "baseline":
        sha256 = hashlib.sha256
        for row in rows(n):
            sha256(row[4]).digest()
    elif name == "chain":
        for _digest in chain_hashes(rows(n)):
            pass
    elif name == "audit":
        report = audit_log((*row, None) for row in rows(n))
        sign_checkpoint("bench", report.events, report.root, key)
    elif name == "verify":
        audit_log(rows_with_hashes(n))
    elif name == "prove":
        proof = build_inclusion_proof(rows(n), checkpoint, position=n // 2)
        extra["path"] = len(proof["audit_path"])
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "events_per_s": n / seconds, "peak_mib": peak_kib / 1024, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--only", choices=MEASURES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.events)))
        return
    results = {}
    for name in MEASURES:
        run = subprocess.run(
            [sys.executable, __file__, "--events", str(args.events), "--only", name],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(run.stdout)
    base = results["baseline"]["events_per_s"]
    sample = next(rows(1))
    print(
        f"{args.events:,} events, states of {len(sample[4])} bytes, "
        f"{len(canonical_bytes(sample)) + 21 + 32} bytes hashed per event by the chain"
    )
    print(f"{'measure':<10} {'events/s':>12} {'seconds':>9} {'vs baseline':>12} {'peak RSS':>10}")
    for name, result in results.items():
        ratio = result["events_per_s"] / base
        print(
            f"{name:<10} {result['events_per_s']:>12,.0f} {result['seconds']:>9.2f} "
            f"{ratio:>11.2f}x {result['peak_mib']:>7.1f} MB"
        )


if __name__ == "__main__":
    main()
