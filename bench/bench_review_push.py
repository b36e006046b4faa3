"""Review push benchmark: 10,000 approvals carried out on each provider's fake.

MTurk: 10,000 assignments (100 HITs of 100) on :class:`FakeMTurkServer` (real HTTP on
127.0.0.1, a real boto3 client), ingested, approved in the ledger (one batch), then
``review push``: every approval queued in the outbox, sent, its outcome recorded. MTurk
has no bulk approval: one ``ApproveAssignment`` per approval. The baseline, in the same
run against the same server: a plain loop of the same number of ``approve_assignment``
calls through the same kind of client on other assignments, nothing recorded anywhere,
run once before and once after the push (the mean is shown: the machine is shared).

Prolific: 10,000 submissions of one study on :class:`FakeProlific` (a respx router behind
a real ``httpx.Client``), ingested, approved, pushed: ``bulk-approve`` takes 1,000 ids a
call, so 10 calls. The baseline: a plain loop of one ``transition`` call per submission
(what a client without bulk does) on other submissions, and the same 10 bulk calls bare.

Prints commands per second, the calls made by operation, and the ratios.

Usage::

    python bench/bench_review_push.py [N]
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crowdledger import Ledger
from crowdledger.adapters.mturk.provider import MTurkSync, mturk_client
from crowdledger.adapters.prolific.provider import ProlificAPI, ProlificSync
from crowdledger.adapters.sync.review_outbox import push_reviews
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import FakeProlific

PER_HIT = 100


def _worker(n: int) -> str:
    return f"A{n:012d}"


def _batches(items: list[str], size: int = 1000) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def mturk(n: int, workdir: Path) -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(hours=1)
    with FakeMTurkServer(sandbox=True) as server:
        fake = server.fake
        hits, baseline_ids = [], []
        for h in range(n // PER_HIT):
            hit = fake.add_hit(hit_type_id="3BENCHTYPE", sandbox=True)
            hits.append(hit)
            for w in range(PER_HIT):
                fake.add_assignment(hit, _worker(h * PER_HIT + w), submit_time=when)
        for _h in range(2 * n // PER_HIT):  # two baseline runs, bracketing the push
            other = fake.add_hit(hit_type_id="3BENCHTYPE", sandbox=True)
            for w in range(PER_HIT):
                baseline_ids.append(fake.add_assignment(other, _worker(w), submit_time=when))
        bare = mturk_client(sandbox=True, endpoint_url=server.url)

        def baseline(assignments: list[str]) -> float:
            start = time.perf_counter()
            for assignment in assignments:
                bare.approve_assignment(AssignmentId=assignment, RequesterFeedback="Thank you!")
            return time.perf_counter() - start

        raw_before = baseline(baseline_ids[:n])
        with Ledger.open(f"sqlite:///{workdir / 'mturk.db'}") as ledger:
            client = mturk_client(sandbox=True, endpoint_url=server.url)
            sync = MTurkSync(ledger, client)
            ingested = sync.ingest(hits, task="bench")
            assert ingested.recorded == n, ingested
            ids = [item.submission for item in ledger.review_queue()]
            for chunk in _batches(ids):
                ledger.approve(chunk, feedback="Thank you!")
            before = len(fake.calls)
            start = time.perf_counter()
            report = push_reviews(sync, sync.mturk.review_source)
            pushed = time.perf_counter() - start
            assert (report.succeeded, report.failed, report.pending) == (n, 0, 0), report
            calls = collections.Counter(op for op, _ in fake.calls[before:])
        raw = (raw_before + baseline(baseline_ids[n:])) / 2
    return {"pushed": pushed, "raw": raw, "calls": dict(calls)}


def prolific(n: int, workdir: Path) -> dict[str, Any]:
    fake = FakeProlific()
    study = fake.add_study(status="ACTIVE")
    mine = [fake.add_submission(study, f"{i + 1:024x}") for i in range(n)]
    other_study = fake.add_study(status="ACTIVE")
    others = [fake.add_submission(other_study, f"{i + 1:024x}") for i in range(n)]
    bulk_study = fake.add_study(status="ACTIVE")
    bulk = [fake.add_submission(bulk_study, f"{i + 1:024x}") for i in range(n)]
    with Ledger.open(f"sqlite:///{workdir / 'prolific.db'}") as ledger:
        client = fake.client()
        sync = ProlificSync(
            ledger,
            client,
            workspace=fake.workspace_id,
            study=study,
            api=ProlificAPI(client, sleep=lambda _s: None),
        )
        assert sync.ingest([study], task="bench").recorded == n
        for chunk in _batches(mine):
            ledger.approve(chunk)
        before = len(fake.requests)
        start = time.perf_counter()
        report = push_reviews(sync, sync.prolific.review_source)
        pushed = time.perf_counter() - start
        assert (report.succeeded, report.failed, report.pending) == (n, 0, 0), report
        calls = collections.Counter(
            f"{r.method} {r.url.path.rsplit('/', 2)[-2] if r.url.path.endswith('/') else r.url.path}"
            for r in fake.requests[before:]
        )
    with fake.client() as bare:
        start = time.perf_counter()
        for submission in others:
            bare.post(f"submissions/{submission}/transition/", json={"action": "APPROVE"})
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        for chunk in _batches(bulk):
            bare.post("submissions/bulk-approve/", json={"submission_ids": chunk})
        raw_bulk = time.perf_counter() - start
    return {"pushed": pushed, "raw": one_by_one, "raw_bulk": raw_bulk, "calls": dict(calls)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        m = mturk(n, workdir)
        p = prolific(n, workdir)
    print(f"review push of {n:,} approvals")
    print(
        f"  MTurk (HTTP fake server): {n / m['pushed']:,.0f} commands/s ({m['pushed']:.2f} s); "
        f"baseline, a bare loop of approve_assignment: {n / m['raw']:,.0f} calls/s "
        f"({m['raw']:.2f} s); ratio {m['raw'] / m['pushed']:.2f}x"
    )
    print(f"    calls made by the push: {m['calls']}")
    print(
        f"  Prolific (respx fake): {n / p['pushed']:,.0f} commands/s ({p['pushed']:.2f} s); "
        f"baseline, one transition per submission: {n / p['raw']:,.0f} calls/s "
        f"({p['raw']:.2f} s), ratio {p['raw'] / p['pushed']:.2f}x; the same bulk calls bare: "
        f"{p['raw_bulk']:.2f} s, ratio {p['raw_bulk'] / p['pushed']:.2f}x"
    )
    print(f"    calls made by the push: {p['calls']}")


if __name__ == "__main__":
    main()
