"""Properties of the web app's safety parts: redirects stay on the site, a session cookie
changed anywhere is never accepted as another, worker-written text always renders as
text, and the login limiter counts per address and forgets after its window."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from crowdledger.adapters.ledger.access_tokens import AccessToken
from crowdledger.adapters.web.app import templates
from crowdledger.adapters.web.auth import AuthError, LoginLimiter, Sessions
from crowdledger.adapters.web.login import safe_next
from crowdledger.adapters.web.queries import SubmissionRow, agreement_groups

TOKEN = AccessToken("ada", "admin", "ab" * 32, datetime(2026, 1, 1, tzinfo=UTC), "test")


@given(st.text(max_size=60))
def test_after_login_the_browser_stays_on_this_site(target: str) -> None:
    where = safe_next(target)
    assert where.startswith("/")
    assert not where.startswith(("//", "/\\"))
    assert urlsplit(where).netloc == ""
    assert urlsplit(where).scheme == ""


@settings(max_examples=200)
@given(st.data())
def test_a_changed_session_cookie_is_never_another_session(data: st.DataObject) -> None:
    sessions = Sessions(b"k" * 32)
    cookie = sessions.issue(TOKEN)
    original = sessions.read(cookie)
    assert original is not None
    assert original["n"] == "ada"
    index = data.draw(st.integers(0, len(cookie) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != cookie[index]))
    changed = cookie[:index] + replacement + cookie[index + 1 :]
    # Either refused, or (a base64 padding bit nobody reads) exactly the same session.
    assert sessions.read(changed) in (None, original)
    assert Sessions(b"x" * 32).read(cookie) is None  # another server's key


def test_an_expired_session_is_refused() -> None:
    sessions = Sessions(b"k" * 32, seconds=-1)
    assert sessions.read(sessions.issue(TOKEN)) is None


hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '<img src=x onerror="alert(1)">',
            '<a href="javascript:alert(1)">x</a>',
            "{{ 7 * 7 }}{% for x in y %}",
            "</pre><script>",
            '" onmouseover="alert(1)',
        ]
    ),
)


def _render(row: SubmissionRow, groups: Any) -> str:
    return (
        templates()
        .get_template("task.html")
        .render(
            request_path="/tasks/cats",
            principal=SimpleNamespace(name="ada", role="admin", may=lambda action: True),
            csrf="c",
            csrf_field="csrf_token",
            notice=None,
            error=None,
            title="Task cats",
            task="cats",
            rows=[row],
            groups=groups,
            label={"s-1": groups[0].label},
            pending=1,
            next="/tasks/cats",
        )
    )


@settings(max_examples=100, deadline=None)
@given(
    answer=st.dictionaries(st.sampled_from(["label", "note", "x"]), hostile_text, min_size=1),
    worker_reason=hostile_text,
)
def test_worker_written_text_renders_as_text(answer: dict[str, str], worker_reason: str) -> None:
    row = SubmissionRow(
        "s-1",
        "local:w1",
        "cats",
        "submitted",
        worker_reason or None,
        answer,
        datetime(2026, 1, 1, tzinfo=UTC),
        12.0,
    )
    groups = agreement_groups([row])
    html = _render(row, groups)
    assert str(escape(row.answer_text)) in html
    body = html.split("<main>", 1)[1]
    benign = replace(row, answer={"x": "x"}, flagged=None)
    plain = _render(benign, agreement_groups([benign]))
    # The only tags in the page are the template's: none comes from the answer. A text
    # the template itself holds ("<", "<div") proves nothing, so it is left out.
    for text in answer.values():
        if "<" in text and text not in plain:
            assert text not in body
    assert "<script" not in body


def test_the_login_limiter_counts_per_address_and_forgets() -> None:
    limiter = LoginLimiter(limit=2, window=0.3)
    limiter.failed("10.0.0.1")
    limiter.check("10.0.0.1")
    limiter.failed("10.0.0.1")
    with pytest.raises(AuthError) as refused:
        limiter.check("10.0.0.1")
    assert refused.value.status == 429
    limiter.check("10.0.0.2")  # another address is not held back
    time.sleep(0.35)
    limiter.check("10.0.0.1")  # the window has passed
