"""What the web app's tests share: a ledger with a review story in it, tokens of each role,
the app, and a real server on a free loopback port.

The story: task ``cats`` has three submissions waiting (two answers agree, the third is
hostile: script, an ``onerror`` image, a ``javascript:`` link and template syntax), task
``dogs`` two; older reviews spread over past days feed the stats page.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crowdledger import Ledger
from crowdledger.adapters.ledger.access_tokens import create_token

HOSTILE = {
    "label": "<script>window.__pwned = 1</script>",
    "note": '<img src=x onerror="window.__pwned = 2">',
    "link": '<a href="javascript:window.__pwned=3">click me</a>',
    "template": "{{ 7 * 7 }} {% if true %}x{% endif %}",
}

RULES = """\
name: english-speakers
qualifications:
  - {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 2}
"""


@dataclass
class Story:
    ledger: Ledger
    rules: Path
    admin: str
    reviewer: str
    viewer: str


def seed(ledger: Ledger, directory: Path) -> Story:
    """Fill ``ledger`` with the story above; returns it with a token of each role."""
    start = datetime.now(UTC) - timedelta(days=6)
    ledger.define("english", description="Passed the English test", occurred_at=start)
    workers = [f"local:w{i}" for i in range(8)]
    for i, worker in enumerate(workers):
        ledger.grant(
            worker, "english", value=1 + i % 3, actor="ops", occurred_at=start, reason="test"
        )
    # Past work, reviewed over the last days.
    for day in range(5):
        when = start + timedelta(days=day, hours=1)
        for i, worker in enumerate(workers):
            sid = f"old-{day}-{i}"
            ledger.record_submission(
                worker,
                task=f"past-{day}",
                submission=sid,
                answer={"label": "cat"},
                accepted_at=when - timedelta(seconds=20 + 13 * i + 7 * day),
                submitted_at=when,
                occurred_at=when,
            )
            review = when + timedelta(minutes=5)
            if (i + day) % 4 == 0:
                ledger.reject(sid, feedback="wrong label", actor="ops", occurred_at=review)
            elif (i + day) % 5 == 0:
                ledger.soft_reject(sid, feedback="sloppy", actor="ops", occurred_at=review)
            else:
                ledger.approve(sid, actor="ops", occurred_at=review)
    now = datetime.now(UTC) - timedelta(minutes=30)
    answers = [
        ("local:w1", "cats-1", {"label": "cat", "confidence": 3}),
        ("local:w2", "cats-2", {"confidence": 3, "label": "cat"}),
        ("local:w3", "cats-3", HOSTILE),
    ]
    for k, (worker, sid, answer) in enumerate(answers):
        ledger.record_submission(
            worker,
            task="cats",
            submission=sid,
            answer=answer,
            accepted_at=now - timedelta(seconds=40 + 10 * k),
            submitted_at=now + timedelta(seconds=k),
        )
    for k, worker in enumerate(["local:w4", "local:w5"]):
        ledger.record_submission(
            worker,
            task="dogs",
            submission=f"dogs-{k + 1}",
            answer={"label": "dog" if k == 0 else "wolf"},
            submitted_at=now + timedelta(seconds=10 + k),
        )
    ledger.flag("dogs-2", reason="a wolf? look again", actor="ops")
    rules = directory / "english.yaml"
    rules.write_text(RULES)
    _, admin = create_token(ledger, "ada", "admin", actor="test")
    _, reviewer = create_token(ledger, "rita", "reviewer", actor="test")
    _, viewer = create_token(ledger, "vic", "viewer", actor="test")
    return Story(ledger, rules, admin, reviewer, viewer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def csrf_of(html: str, field: str = "csrf_token") -> str:
    """The CSRF token in a page's first form."""
    found = re.search(rf'name="{field}" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)
