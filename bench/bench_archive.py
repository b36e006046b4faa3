"""Archives, measured: ``archive``, ``verify --archive`` and ``restore`` of a workload's
ledger, each beside a raw read of the same rows (a ``SELECT`` of ``stored_events`` with
their hashes) measured in the same run, as a ratio.

S3 is moto's, in this process (``mock_aws``), so the figures are crowdledger's own cost
(encoding, gzip, hashing, Merkle tree, signatures, appending) plus moto's in-memory
objects, not a network's. The ledger is built once by ``import`` of the workload file.

Usage::

    python bench/bench_archive.py                        # 100,000 events, 10,000 workers
    python bench/bench_archive.py --events 1000000 --workers 100000
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--segment-events", type=int, default=100_000)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "bench"
    import boto3
    from moto import mock_aws

    from crowdledger import Ledger
    from crowdledger.adapters.archive.reader import ArchiveReader
    from crowdledger.adapters.archive.restore import restore_ledger
    from crowdledger.adapters.archive.s3 import ArchiveBucket, parse_location
    from crowdledger.adapters.archive.writer import archive_ledger
    from crowdledger.adapters.audit.keys import create_key, load_private_key, load_public_key

    source = workload(args.events, args.workers)
    with tempfile.TemporaryDirectory() as folder, mock_aws():
        root = Path(folder)
        create_key(root / "k")
        key, public = load_private_key(root / "k"), load_public_key(root / "k")
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bench-archive")

        def bucket() -> ArchiveBucket:
            return ArchiveBucket(client, parse_location("s3://bench-archive/ledger"))

        with Ledger.open(f"sqlite:///{root / 'ledger.db'}") as ledger:
            ledger.import_(source)
            events = ledger.head()
        start = time.perf_counter()
        rows = (
            sqlite3.connect(root / "ledger.db")
            .execute(
                "SELECT rowid, originator_id, originator_version, topic, state, hash "
                "FROM stored_events ORDER BY rowid"
            )
            .fetchall()
        )
        raw = time.perf_counter() - start
        assert len(rows) == events
        del rows

        timings: dict[str, float] = {}
        with Ledger.open(f"sqlite:///{root / 'ledger.db'}") as ledger:
            start = time.perf_counter()
            written = archive_ledger(ledger, bucket(), key, segment_events=args.segment_events)
            timings["archive (first run, all events)"] = time.perf_counter() - start
            start = time.perf_counter()
            archive_ledger(ledger, bucket(), key, segment_events=args.segment_events)
            timings["archive again (nothing new)"] = time.perf_counter() - start
        start = time.perf_counter()
        report = ArchiveReader(bucket(), public).verify()
        timings["verify --archive"] = time.perf_counter() - start
        assert report.events == events == written.events, (report.events, events, written)
        with Ledger.open(f"sqlite:///{root / 'restored.db'}") as target:
            start = time.perf_counter()
            restore_ledger(target, bucket(), public, target="restored")
            timings["restore (read models included)"] = time.perf_counter() - start
        size = sum(
            item["Size"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench-archive")
            for item in page.get("Contents", ())
        )
    print(
        f"{events} events, {written.events and len(written.written)} segments, {size / 1e6:.1f} MB in S3"
    )
    print(f"raw SELECT of the rows with their hashes: {events / raw:,.0f} events/s (baseline)")
    for what, seconds in timings.items():
        rate = events / seconds
        print(f"{what}: {seconds:.2f} s, {rate:,.0f} events/s, {raw / seconds:.3f}x the raw read")


if __name__ == "__main__":
    main()
