"""The web app through its ASGI interface (httpx): tokens, login, sessions, CSRF, Origin,
Host, security headers, roles, the actor recorded, hostile answers and the pages.

The browser half (what only a browser shows) is tests/test_web_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crowdledger import Ledger
from crowdledger.adapters.cli.app import app as cli
from crowdledger.adapters.ledger.access_tokens import (
    TOKEN_PREFIX,
    create_token,
    hash_secret,
    list_tokens,
    revoke_token,
)
from crowdledger.adapters.web.app import create_app
from crowdledger.adapters.web.auth import PERMISSIONS, allowed
from crowdledger.domain.access_token import ROLES, TokenExistsError, UnknownTokenError
from crowdledger.domain.errors import InvalidInputError
from tests.web_support import HOSTILE, Story, csrf_of, seed

BASE = "http://127.0.0.1:8765"
ORIGIN = {"Origin": BASE}


@pytest.fixture
def story(ledger_url: str, tmp_path: Path) -> Iterator[Story]:
    with Ledger.open(ledger_url) as ledger:
        yield seed(ledger, tmp_path)


@pytest.fixture
def app(story: Story) -> object:
    return create_app(None, [story.rules], ledger=story.ledger, login_limit=3)


def client(app: object) -> TestClient:
    return TestClient(app, base_url=BASE)  # type: ignore[arg-type]


def logged_in(app: object, secret: str) -> TestClient:
    c = client(app)
    page = c.get("/login")
    assert page.status_code == 200
    r = c.post(
        "/login",
        data={"token": secret, "csrf_token": csrf_of(page.text), "next": "/"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return c


def last_event(ledger: Ledger) -> object:
    with ledger._db.transaction(write=False) as tx:
        return ledger._log.head(tx.events)


# -- tokens ---------------------------------------------------------------------------------
def test_tokens_are_events_holding_only_a_hash(story: Story) -> None:
    ledger = story.ledger
    event, secret = create_token(ledger, "olga", "viewer", actor="ada")
    assert secret.startswith(TOKEN_PREFIX)
    assert len(secret) > 40
    assert event.token_hash == hash_secret(secret)
    assert event.actor == "ada"
    # The secret is nowhere in the log: not in the event, not in the idempotency record.
    exported = b"".join(_export(ledger))
    assert secret.encode() not in exported
    assert hash_secret(secret).encode() in exported
    with pytest.raises(TokenExistsError):
        create_token(ledger, "olga", "admin")
    revoke_token(ledger, "olga", actor="ada")
    with pytest.raises(UnknownTokenError):
        revoke_token(ledger, "olga")
    with pytest.raises(TokenExistsError):  # a revoked name is never given again
        create_token(ledger, "olga", "viewer")
    olga = next(t for t in list_tokens(ledger) if t.name == "olga")
    assert not olga.active
    assert olga.role == "viewer"
    with pytest.raises(InvalidInputError, match="role"):
        create_token(ledger, "p", "root")
    with pytest.raises(InvalidInputError, match="name"):
        create_token(ledger, "bad name", "viewer")


def _export(ledger: Ledger) -> list[bytes]:
    import io

    out = io.BytesIO()
    ledger.export(out)
    return [out.getvalue()]


def test_roles_are_cumulative_and_unknown_actions_refused() -> None:
    assert ROLES == ("viewer", "reviewer", "admin")
    for action, least in PERMISSIONS.items():
        for role in ROLES:
            assert allowed(role, action) == (ROLES.index(role) >= ROLES.index(least))
    assert not allowed("admin", "drop-database")
    assert not allowed("root", "read")
    assert allowed("viewer", "read")
    assert not allowed("viewer", "approve")
    assert allowed("reviewer", "bonus")
    assert not allowed("reviewer", "block")
    assert allowed("admin", "tokens")


def test_tokens_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--db", f"sqlite:///{tmp_path}/l.db"]
    made = runner.invoke(cli, [*db, "tokens", "create", "ann", "--role", "reviewer"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith(TOKEN_PREFIX)
    assert "shown only now" in made.stderr
    assert secret not in made.stderr
    again = runner.invoke(cli, [*db, "tokens", "create", "ann", "--role", "admin"])
    assert again.exit_code == 2
    assert again.stderr == "Error: a token named 'ann' exists already (names are never reused)\n"
    listed = runner.invoke(cli, [*db, "tokens", "list", "--json"])
    assert listed.exit_code == 0
    assert secret not in listed.stdout
    assert hash_secret(secret) not in listed.stdout
    assert '"role": "reviewer"' in listed.stdout
    bad = runner.invoke(cli, [*db, "tokens", "create", "x", "--role", "god"])
    assert bad.exit_code == 2
    assert "role" in bad.stderr
    gone = runner.invoke(cli, [*db, "tokens", "revoke", "ann"])
    assert gone.exit_code == 0
    assert "revoked" in runner.invoke(cli, [*db, "tokens", "list"]).stdout


def test_serve_refuses_a_remote_address_without_allow_remote(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli, ["--db", f"sqlite:///{tmp_path}/l.db", "serve", "--host", "0.0.0.0"]
    )
    assert r.exit_code == 2
    assert "--allow-remote" in r.stderr


# -- login and sessions ---------------------------------------------------------------------
def test_pages_need_a_login_and_the_session_cookie_is_strict(app: object, story: Story) -> None:
    c = client(app)
    r = c.get("/workers/local:w1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fworkers%2Flocal%3Aw1"
    page = c.get("/login")
    r = c.post(
        "/login",
        data={"token": story.reviewer, "csrf_token": csrf_of(page.text), "next": "/stats"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/stats"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("cl_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert story.reviewer not in cookie
    home = c.get("/")
    assert home.status_code == 200
    assert "rita" in home.text
    assert story.reviewer not in home.text


def test_login_goes_only_to_our_own_pages(app: object, story: Story) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        c = client(app)
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"token": story.viewer, "csrf_token": csrf_of(page.text), "next": target},
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert r.headers["location"] == "/"


def test_a_wrong_token_is_refused_without_echo_and_rate_limited(app: object, story: Story) -> None:
    c = client(app)
    page = c.get("/login")
    csrf = csrf_of(page.text)
    guess = "clt_" + "A" * 43
    for _ in range(3):
        r = c.post("/login", data={"token": guess, "csrf_token": csrf}, headers=ORIGIN)
        assert r.status_code == 401
        assert "That token is not valid." in r.text
        assert guess not in r.text
        assert "cl_session" not in r.headers.get("set-cookie", "")
    # The limit (3 here) is reached: even the right token waits for the window to pass.
    r = c.post("/login", data={"token": story.admin, "csrf_token": csrf}, headers=ORIGIN)
    assert r.status_code == 429
    # Bearer failures count against the same address.
    api = client(app)
    r = api.get("/stats", headers={"Authorization": f"Bearer {story.admin}"})
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"


def test_the_login_form_needs_its_csrf_token_and_our_origin(app: object, story: Story) -> None:
    c = client(app)
    page = c.get("/login")
    r = c.post("/login", data={"token": story.admin, "csrf_token": "forged"}, headers=ORIGIN)
    assert r.status_code == 403
    r = c.post(
        "/login",
        data={"token": story.admin, "csrf_token": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_a_revoked_token_ends_its_sessions(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    assert c.get("/stats").status_code == 200
    revoke_token(story.ledger, "vic", actor="ada")
    app.state.web.tokens.invalidate()  # type: ignore[attr-defined]
    r = c.get("/stats", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_a_forged_session_cookie_is_ignored(app: object) -> None:
    c = client(app)
    c.cookies.set("cl_session", "eyJuIjoiYWRhIn0.AAAA")
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303


# -- CSRF, Origin, Host, headers ------------------------------------------------------------
def _review_form(c: TestClient, page: str = "/") -> str:
    return csrf_of(c.get(page).text)


def test_a_cookie_post_needs_the_csrf_token_and_our_origin(app: object, story: Story) -> None:
    c = logged_in(app, story.reviewer)
    csrf = _review_form(c)
    head = last_event(story.ledger)
    form = {"action": "approve", "submission": "cats-1", "next": "/"}
    assert c.post("/review", data=form, headers=ORIGIN).status_code == 403  # no token
    r = c.post("/review", data={**form, "csrf_token": "x" * 43}, headers=ORIGIN)
    assert r.status_code == 403
    r = c.post("/review", data={**form, "csrf_token": csrf})  # no Origin, no Referer
    assert r.status_code == 403
    r = c.post(
        "/review", data={**form, "csrf_token": csrf}, headers={"Origin": "http://localhost:9999"}
    )
    assert r.status_code == 403
    assert last_event(story.ledger) == head  # nothing recorded by any of them
    r = c.post("/review", data={**form, "csrf_token": csrf}, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303
    assert story.ledger.history("local:w1")[-1].type == "SubmissionApproved"


def test_a_foreign_origin_is_refused_whatever_the_credentials(app: object, story: Story) -> None:
    c = client(app)
    r = c.post(
        "/review",
        data={"action": "approve", "submission": "cats-1"},
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {story.admin}"},
    )
    assert r.status_code == 403


def test_an_unknown_host_is_refused(app: object) -> None:
    r = TestClient(app, base_url="http://rebound.example:8765").get("/login")  # type: ignore[arg-type]
    assert r.status_code == 400


def test_security_headers_on_every_response(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    for path in ("/login", "/", "/static/style.css", "/nope"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert c.get("/").headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script(app: object, story: Story) -> None:
    c = logged_in(app, story.admin)
    for path in ("/", "/tasks/cats", "/workers/local:w3", "/rules", "/stats", "/login"):
        html = c.get(path).text
        for tag in re.findall(r"<script[^>]*>", html):
            assert 'src="/static/' in tag, (path, tag)
        assert "<script>" not in html.replace("&lt;script&gt;", "")
        assert " on" not in "".join(re.findall(r"<[a-z]+ [^>]*>", html)).replace(" one", "")


# -- roles and actors -----------------------------------------------------------------------
def test_a_viewer_reads_but_may_not_review_or_grant(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    page = c.get("/tasks/cats")
    assert page.status_code == 200
    assert "may look but not review" in page.text
    csrf = csrf_of(c.get("/").text)
    head = last_event(story.ledger)
    r = c.post(
        "/review",
        data={"action": "approve", "submission": "cats-1", "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert r.status_code == 403
    assert "viewer role may not approve" in r.text
    r = c.post(
        "/workers/local:w1/grant",
        data={"qualification": "english", "value": "3", "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert r.status_code == 403
    assert last_event(story.ledger) == head


def test_a_reviewer_reviews_but_may_not_block(app: object, story: Story) -> None:
    c = logged_in(app, story.reviewer)
    csrf = csrf_of(c.get("/").text)
    r = c.post(
        "/workers/local:w1/block", data={"scope": "global", "csrf_token": csrf}, headers=ORIGIN
    )
    assert r.status_code == 403
    assert not story.ledger.is_blocked("local:w1")


def test_a_batch_is_recorded_with_the_token_name_as_actor(app: object, story: Story) -> None:
    c = logged_in(app, story.reviewer)
    csrf = csrf_of(c.get("/").text)
    r = c.post(
        "/review",
        data={
            "action": "approve",
            "submission": ["cats-1", "cats-2"],
            "reason": "agree",
            "csrf_token": csrf,
            "next": "/tasks/cats",
        },
        headers=ORIGIN,
    )
    assert r.status_code == 200
    assert "approved 2 submissions" in r.text
    for worker in ("local:w1", "local:w2"):
        last = story.ledger.history(worker)[-1]
        assert (last.type, last.actor, last.reason) == ("SubmissionApproved", "rita", "agree")


def test_a_refused_batch_records_nothing_and_says_why(app: object, story: Story) -> None:
    c = logged_in(app, story.reviewer)
    csrf = csrf_of(c.get("/").text)
    head = last_event(story.ledger)
    r = c.post(
        "/review",
        data={"action": "reject", "submission": ["cats-1", "old-0-1"], "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert r.status_code == 200
    assert "nothing recorded" in r.text
    assert last_event(story.ledger) == head


def test_an_admin_grants_and_blocks_from_the_worker_page(app: object, story: Story) -> None:
    c = logged_in(app, story.admin)
    csrf = csrf_of(c.get("/workers/local:w3").text)
    r = c.post(
        "/workers/local:w3/grant",
        data={"qualification": "english", "value": "2", "reason": "retested", "csrf_token": csrf},
        headers=ORIGIN,
    )
    assert "granted english = 2" in r.text
    assert story.ledger.value("local:w3", "english") == 2
    assert story.ledger.history("local:w3")[-1].actor == "ada"
    assert "eligible" in r.text
    assert "not eligible" not in r.text
    c.post("/workers/local:w3/block", data={"scope": "global", "csrf_token": csrf}, headers=ORIGIN)
    assert story.ledger.is_blocked("local:w3")
    c.post(
        "/workers/local:w3/unblock", data={"scope": "global", "csrf_token": csrf}, headers=ORIGIN
    )
    assert not story.ledger.is_blocked("local:w3")


def test_a_bonus_goes_to_the_submissions_worker(app: object, story: Story) -> None:
    c = logged_in(app, story.reviewer)
    csrf = csrf_of(c.get("/tasks/cats").text)
    r = c.post(
        "/bonus",
        data={
            "submission": "cats-2",
            "amount": "0.50",
            "reason": "thanks",
            "csrf_token": csrf,
            "next": "/tasks/cats",
        },
        headers=ORIGIN,
    )
    assert "bonus 0.50 USD to local:w2" in r.text
    assert story.ledger.history("local:w2")[-1].type == "BonusAwarded"


def test_a_forged_notice_is_not_shown(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    r = c.get("/", params={"notice": "Your session expired: log in at evil.example"})
    assert 'class="notice"' not in r.text
    signed = c.post(
        "/review",
        data={"action": "flag", "submission": "cats-1", "csrf_token": csrf_of(r.text)},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert signed.status_code == 403  # a viewer may not flag: and the notice is real


# -- hostile data and the pages -------------------------------------------------------------
def test_hostile_answers_render_as_text(app: object, story: Story) -> None:
    c = logged_in(app, story.admin)
    for path in ("/", "/tasks/cats", "/workers/local:w3"):
        html = c.get(path).text
        assert "<script>window" not in html
        assert "<img src=x" not in html
        assert '<a href="javascript' not in html
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
        assert "{{ 7 * 7 }}" in html  # shown as typed, never evaluated
    task = c.get("/tasks/cats").text
    assert "{{ 7 * 7 }} {% if true %}x{% endif %}" in task
    assert HOSTILE["template"] in task


def test_the_task_page_groups_agreeing_answers(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    html = c.get("/tasks/cats").text
    assert "2 of 3 gave this answer" in html
    assert "1 of 3 gave this answer" in html
    assert c.get("/tasks/nothing-here").status_code == 404


def test_the_queue_filters(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    assert "5 waiting" in c.get("/").text
    assert "3 waiting" in c.get("/", params={"task": "cats"}).text
    flagged = c.get("/", params={"status": "flagged"}).text
    assert "1 waiting" in flagged
    assert "dogs-2" in flagged
    assert "cats-1" not in flagged
    assert "1 waiting" in c.get("/", params={"worker": "local:w4"}).text


def test_the_worker_page_explains_with_the_event_behind_it(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    html = c.get("/workers/local:w3", params={"ruleset": "english-speakers"}).text
    assert "not eligible" in html
    grant = next(e for e in story.ledger.history("local:w3") if e.type == "QualificationGranted")
    assert f'href="#e{grant.position}"' in html
    assert f'id="e{grant.position}"' in html
    assert 'action="/workers/local:w3/grant"' not in html  # a viewer sees no admin forms
    assert c.get("/workers/not-a-worker").status_code == 400


def test_rules_and_stats_pages(app: object, story: Story) -> None:
    c = logged_in(app, story.viewer)
    rules = c.get("/rules").text
    eligible = len(story.ledger.eligible_workers(story.rules))
    assert f'{eligible} <span class="muted">of 8 eligible' in rules
    stats = c.get("/stats").text
    assert stats.count("<svg") == 3
    assert stats.count('class="bar"') == 5 + 20 + 10  # 5 days, 20 time bins, 10 score bins


def test_serve_runs_the_app_on_loopback(tmp_path: Path) -> None:
    """`crowdledger serve` as a person starts it: a real server process, then stopped."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.web_support import RULES, free_port

    db = f"sqlite:///{tmp_path}/l.db"
    rules = tmp_path / "english.yaml"
    rules.write_text(RULES)
    exe = Path(sys.executable).parent / "crowdledger"
    subprocess.run([str(exe), "--db", db, "define", "english"], capture_output=True, check=True)
    port = free_port()
    server = subprocess.Popen(
        [str(exe), "--db", db, "serve", "--port", str(port), "--rules", str(rules)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CROWDLEDGER_SESSION_KEY": ""},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200
        assert "Access token" in r.text
        assert r.headers["x-frame-options"] == "DENY"
        assert "server" not in r.headers  # no version banner
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port} (rule sets: english-speakers)" in err
    assert "no access token yet" in err


def test_an_admin_lists_and_revokes_tokens_but_no_page_shows_a_secret(
    app: object, story: Story
) -> None:
    assert logged_in(app, story.reviewer).get("/tokens").status_code == 403
    c = logged_in(app, story.admin)
    page = c.get("/tokens")
    assert page.status_code == 200
    assert "rita" in page.text
    assert "vic" in page.text
    for secret in (story.admin, story.reviewer, story.viewer):
        assert secret not in page.text
        assert hash_secret(secret) not in page.text
    r = c.post(
        "/tokens/vic/revoke",
        data={"reason": "left the team", "csrf_token": csrf_of(page.text)},
        headers=ORIGIN,
    )
    assert "revoked token vic" in r.text
    vic = next(t for t in list_tokens(story.ledger) if t.name == "vic")
    assert not vic.active
    viewer = client(app)
    assert viewer.get("/", headers={"Authorization": f"Bearer {story.viewer}"}).status_code == 401


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "example.org"], "--allow-remote"),
        (["--host", "<script>"], "--allow-remote"),
        (["--port", "0"], "Invalid value for '--port'"),
        (["--port", "99999"], "Invalid value for '--port'"),
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--rules", "/nonexistent/rules.yaml"], "/nonexistent/rules.yaml"),
        (["--rules", "/proc/self/mem"], "/proc/self/mem"),
    ],
)
def test_serve_refuses_bad_input_before_listening(
    tmp_path: Path, args: list[str], says: str
) -> None:
    """`serve` is left out of tests/test_cli_hostile.py (a valid call never returns):
    what it refuses is checked here, each refusal exit 2 with one located message."""
    r = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path}/l.db", "serve", *args])
    assert r.exit_code == 2, r.output
    assert says in r.stderr
    assert "Traceback" not in r.stderr
