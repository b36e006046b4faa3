"""`crowdledger serve --workers 2` on PostgreSQL, end to end: the real command in a
subprocess, two server processes on one ledger, and a write through one request seen by
reads in either process within 100 ms (the log's NOTIFY trigger wakes both)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from crowdledger import Ledger
from crowdledger.adapters.ledger.access_tokens import create_token
from tests.conftest import fresh_postgres_url
from tests.web_support import RULES, free_port


def _fresh(
    base: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request (POST with a JSON body, else GET) on a new connection, so that either
    process may accept it."""
    with httpx.Client(base_url=base, timeout=10) as http:
        if json is not None:
            return http.post(path, json=json, headers=headers)
        return http.get(path, headers=headers)


def test_two_server_processes_see_a_write_within_100_ms(tmp_path: Path) -> None:
    with fresh_postgres_url() as url:
        with Ledger.open(url) as ledger:
            ledger.define("english")
            _, admin = create_token(ledger, "ada", "admin", actor="test")
        rules = tmp_path / "english.yaml"
        rules.write_text(RULES)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cli = os.path.join(os.path.dirname(sys.executable), "crowdledger")
        server = subprocess.Popen(
            [cli, "serve", "--workers", "2", "--port", str(port), "--rules", str(rules)],
            env={**os.environ, "CROWDLEDGER_DB": url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        auth = {"Authorization": f"Bearer {admin}"}
        check = {"worker": "local:a", "ruleset": "english-speakers"}
        try:
            # Both processes up, each with its facts in memory (made at its first check).
            deadline = time.monotonic() + 60
            warm: set[int] = set()
            while len(warm) < 2:
                assert time.monotonic() < deadline, f"only {warm} answered"
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                try:
                    answer = _fresh(base, "/api/v1/check", json=check, headers=auth)
                    assert answer.status_code == 200
                    assert not answer.json()["eligible"]
                    health = _fresh(base, "/api/v1/healthz").json()
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if health["facts_position"] is not None:
                    warm.add(health["pid"])
            granted = _fresh(
                base,
                "/api/v1/commands/grant",
                json={"worker": "local:a", "qualification": "english", "value": 3},
                headers=auth,
            )
            written = time.monotonic()
            assert granted.status_code == 200, granted.text
            position = granted.json()["events"][0]["position"]
            # Reads on new connections for a second: every process reports the write, and
            # no answer is stale later than 100 ms after it.
            fresh_in: set[int] = set()
            last_stale = {"check": 0.0, "show": 0.0, "health": 0.0}
            while time.monotonic() - written < 1.0 or len(fresh_in) < 2:
                assert time.monotonic() - written < 10, f"only {fresh_in} caught up"
                asked = time.monotonic()
                health = _fresh(base, "/api/v1/healthz").json()
                if health["facts_position"] >= position:
                    fresh_in.add(health["pid"])
                else:
                    last_stale["health"] = asked - written
                asked = time.monotonic()
                if not _fresh(base, "/api/v1/check", json=check, headers=auth).json()["eligible"]:
                    last_stale["check"] = asked - written
                asked = time.monotonic()
                shown = _fresh(base, "/api/v1/workers/local:a", headers=auth).json()
                if "english" not in str(shown):
                    last_stale["show"] = asked - written
            assert fresh_in == warm
            assert max(last_stale.values()) < 0.1, last_stale
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
