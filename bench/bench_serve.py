"""``check`` over HTTP: one server process, concurrent clients, beside the same checks in-process.

The ledger is the 100,000-worker workload of ``bench_rules.py`` (cached under
bench/data/), the rule set its ten clauses. The server is ``create_app`` under one
uvicorn process (what ``crowdledger serve`` runs); client processes keep ``--concurrency``
requests each in flight (keep-alive connections) for ``--seconds`` seconds, asking
``POST /api/v1/check`` for workers drawn from a fixed sample. Every answer is compared
with the in-process one before any figure is printed.

The baselines, measured in the same run: the same checks made in-process through
:class:`~crowdledger.adapters.ledger.live_facts.LiveFacts` (what the server does for
each request) and through ``Ledger.check`` (read models queried per call).

Usage::

    python bench/bench_serve.py                 # 30 s, 2 client processes x 8
    python bench/bench_serve.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import RULES, ledger_of_100k
from workload import DATA

from crowdledger import RuleSet
from crowdledger.adapters.ledger.access_tokens import create_token
from crowdledger.adapters.ledger.live_facts import LiveFacts


def serve(url: str, rules: str, port: int) -> None:
    """The server process."""
    import uvicorn

    from crowdledger.adapters.web.app import create_app

    app = create_app(url, [rules])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def client(base: str, token: str, sample: list[str], seconds: float, concurrency: int) -> Any:
    """One client process: ``concurrency`` keep-alive connections, one request in flight
    on each (no pipelining); latencies and answers.

    Raw asyncio streams and a hand-built HTTP/1.1 request rather than httpx: on 2 cores
    the load generator shares the machine with the server, and httpx spends more CPU per
    request than the server's check does, so it measured itself."""
    host, port = base.removeprefix("http://").split(":")

    async def run() -> tuple[list[float], dict[str, bool]]:
        latencies: list[float] = []
        seen: dict[str, bool] = {}
        end = time.perf_counter() + seconds
        rng = random.Random(os.getpid())
        name = RULES["name"]

        async def loop() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while time.perf_counter() < end:
                    worker = rng.choice(sample)
                    body = json.dumps({"worker": worker, "ruleset": name}).encode()
                    request = (
                        f"POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
                    started = time.perf_counter()
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    answer = await reader.readexactly(length)
                    latencies.append(time.perf_counter() - started)
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
                    seen[worker] = json.loads(answer)["eligible"]
            finally:
                writer.close()

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return latencies, seen

    return asyncio.run(run())


def _client(args: tuple[str, str, list[str], float, int]) -> Any:
    return client(*args)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(check: Any, sample: list[str]) -> float:
    samples = []
    for worker in sample:
        started = time.perf_counter()
        check(worker)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    url = f"sqlite:///{DATA / 'rules-100k.db'}"
    ledger = ledger_of_100k(url)
    _, token = create_token(ledger, f"bench-{uuid.uuid4().hex[:8]}", "viewer", actor="bench")
    ruleset = RuleSet.from_dict(RULES)
    workers = ledger.workers()
    rng = random.Random(7)
    sample = [rng.choice(workers) for _ in range(args.sample)]
    print(f"{len(workers):,} workers, {ledger.head():,} events, rule set of 10 clauses")

    # The baselines, in this process.
    live = LiveFacts(ledger)
    expected = {w: live.check(w, ruleset).eligible for w in sample}  # also warms
    for w in sample[:200]:
        assert ledger.check(w, ruleset).model_dump(exclude={"as_of"}) == live.check(
            w, ruleset
        ).model_dump(exclude={"as_of"})
    ledger_us = in_process(lambda w: ledger.check(w, ruleset), sample[:2000])
    live_us = in_process(lambda w: live.check(w, ruleset), sample)
    live.follow = "manual"
    memory_us = in_process(lambda w: live.check(w, ruleset), sample)
    print(f"in-process Ledger.check:             median {ledger_us:8.1f} us")
    print(
        f"in-process LiveFacts.check:          median {live_us:8.1f} us "
        f"({ledger_us / live_us:.1f}x faster; goal <= 50 us: {'met' if live_us <= 50 else 'NOT met'})"
    )
    print(f"  without asking the log's head:     median {memory_us:8.1f} us")

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.json"
        rules.write_text(json.dumps(RULES))
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", url, str(rules), str(args.port)],
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            # Warm the server's facts for the sample, as the in-process side was.
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
                for w in sample:
                    http.post("/api/v1/check", json={"worker": w, "ruleset": RULES["name"]})
            jobs = [(base, token, sample, args.seconds, args.concurrency)] * args.clients
            started = time.perf_counter()
            cpu_before = cpu_seconds(server.pid)
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                results = pool.map(_client, jobs)
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(10)
    latencies = sorted(x for lat, _seen in results for x in lat)
    for _lat, seen in results:
        for worker, eligible in seen.items():
            assert expected[worker] == eligible, worker
    rate = len(latencies) / elapsed
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"HTTP POST /api/v1/check, 1 server process, {args.clients}x{args.concurrency} clients, "
        f"{args.seconds:.0f} s: {len(latencies):,} checks, {rate:,.0f} checks/s, "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"(goal >= 1,000/s and p99 < 20 ms: {'met' if rate >= 1000 and p99 < 20 else 'NOT met'})"
    )
    cpu_us = server_cpu / len(latencies) * 1e6
    print(
        f"  the server spent {cpu_us:,.0f} us of CPU per check ({1e6 / cpu_us:,.0f} checks/s "
        f"per free core; {cpu_us / live_us:.0f}x the in-process LiveFacts check); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    ledger.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
