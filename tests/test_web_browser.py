"""The web app as a person uses it: Debian's chromium, driven through chromedriver.

Logs in with a token, reviews a task's submissions and approves one in a batch, sees the
worker's timeline update, is refused a viewer's approval and a cross-site form post, and
finds a hostile answer inert. Screenshots of every page go to ``test-artifacts/``
(git-ignored). In CI (``CI`` set) a missing browser fails these tests; elsewhere they
skip, saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crowdledger import Ledger
from crowdledger.adapters.web.app import create_app
from tests.web_support import Story, free_port, running, seed

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _need_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    reason = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}; .ci/run installs them")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Story, Any]]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    directory = tmp_path_factory.mktemp("web")
    ledger = Ledger.open(f"sqlite:///{directory}/ledger.db")
    story = seed(ledger, directory)
    app = create_app(None, [story.rules], ledger=ledger)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with running(app) as base:
            yield base, story, driver
    finally:
        driver.quit()
        ledger.close()


def shot(driver: Any, name: str) -> None:
    # The whole page, not just the window: as tall as its content.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(1000, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def log_in(base: str, driver: Any, secret: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")  # on the site, so that its cookies are the ones deleted
    driver.delete_all_cookies()
    driver.get(base + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(secret)
    button = driver.find_element(By.CSS_SELECTOR, "form button[type=submit]")
    navigates(driver, button.click)


def navigates(driver: Any, act: Any) -> None:
    """Do ``act`` (a click, a key, a submit) and wait until the next page has loaded."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")

    def gone(_driver: Any) -> bool:
        """The old page's root is gone: Chrome says so either as a stale element or,
        when asked mid-navigation, as a node that no longer belongs to the document."""
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    act()
    WebDriverWait(driver, 15).until(gone)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def head(story: Story) -> int:
    return story.ledger.head()


def test_log_in_with_a_token(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    driver.delete_all_cookies()
    driver.get(base + "/")
    assert driver.title == "Log in · crowdledger"
    shot(driver, "login")
    driver.find_element(By.ID, "token").send_keys("clt_not-a-token")
    navigates(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click)
    assert "That token is not valid." in driver.page_source
    assert "clt_not-a-token" not in driver.page_source
    log_in(base, driver, story.reviewer)
    assert driver.title == "Review queue · crowdledger"
    assert driver.find_element(By.CSS_SELECTOR, ".who .name").text == "rita"
    cookie = driver.get_cookie("cl_session")
    assert cookie is not None
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: no script sees it
    shot(driver, "queue")


def test_approve_one_in_a_batch_and_see_the_timeline(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    log_in(base, driver, story.reviewer)
    driver.get(base + "/tasks/cats")
    shot(driver, "task")
    cards = driver.find_elements(By.CSS_SELECTOR, "article.answer-card")
    assert len(cards) == 3
    groups = [c.find_element(By.CSS_SELECTOR, ".group").text for c in cards]
    assert groups == ["A", "A", "B"]  # the two agreeing answers share a group
    driver.find_element(By.CSS_SELECTOR, "input[name=submission][value='cats-2']").click()
    driver.find_element(By.NAME, "reason").send_keys("agrees with cats-1")
    navigates(driver, driver.find_element(By.CSS_SELECTOR, "button[value=approve]").click)
    assert driver.find_element(By.CSS_SELECTOR, ".notice").text == "approved 1 submission"
    assert story.ledger.history("local:w2")[-1].type == "SubmissionApproved"
    assert not driver.find_elements(By.CSS_SELECTOR, "input[name=submission][value='cats-2']")
    navigates(driver, driver.find_element(By.LINK_TEXT, "local:w2").click)
    first = driver.find_element(By.CSS_SELECTOR, ".timeline li")
    assert "SubmissionApproved" in first.text
    assert "rita" in first.text
    assert "agrees with cats-1" in first.text
    shot(driver, "worker")


def test_keyboard_shortcuts_select_and_flag(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, story, driver = site
    log_in(base, driver, story.reviewer)
    driver.get(base + "/?task=dogs")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")  # the first waiting submission: dogs-1
    current = driver.find_element(By.CSS_SELECTOR, "tr.item.current")
    assert "dogs-1" in current.text
    navigates(driver, lambda: body.send_keys("f"))  # flag it
    assert driver.find_element(By.CSS_SELECTOR, ".notice").text == "flagged 1 submission"
    event = story.ledger.history("local:w4")[-1]
    assert (event.type, event.actor) == ("SubmissionFlagged", "rita")
    driver.find_element(By.TAG_NAME, "body").send_keys("/")
    assert driver.switch_to.active_element.get_attribute("name") == "worker"
    field = driver.switch_to.active_element
    navigates(driver, lambda: field.send_keys("local:w4", Keys.ENTER))
    assert driver.title == "local:w4 · crowdledger"


def test_a_viewer_may_not_approve(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    log_in(base, driver, story.viewer)
    driver.get(base + "/tasks/cats")
    assert not driver.find_elements(By.CSS_SELECTOR, "button[value=approve]")
    assert "may look but not review" in driver.page_source
    # Send the approval anyway, as a hand-made form would, with the page's CSRF token.
    before = head(story)
    navigates(
        driver,
        lambda: driver.execute_script(
            "var f = document.getElementById('batch');"
            "var a = document.createElement('input'); a.type = 'hidden'; a.name = 'action';"
            "a.value = 'approve'; f.appendChild(a);"
            "f.querySelector('input[name=submission]').checked = true; f.submit();"
        ),
    )
    assert "the viewer role may not approve" in driver.page_source
    assert head(story) == before
    shot(driver, "refused-viewer")


def test_a_hostile_answer_is_inert(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    log_in(base, driver, story.admin)
    for path in ("/", "/tasks/cats", "/workers/local:w3"):
        driver.get(base + path)
        assert driver.execute_script("return window.__pwned === undefined")
        assert not driver.find_elements(By.CSS_SELECTOR, "img")
        assert not driver.find_elements(By.CSS_SELECTOR, "a[href^='javascript']")
        assert (
            "<script>window.__pwned = 1</script>" in driver.find_element(By.TAG_NAME, "main").text
        )
    assert "{{ 7 * 7 }}" in driver.find_element(By.TAG_NAME, "main").text
    shot(driver, "hostile-worker")
    driver.get(base + "/tasks/cats")
    shot(driver, "hostile-task")
    driver.get(base + "/tokens")
    assert story.admin not in driver.page_source
    shot(driver, "tokens")


class _Evil(BaseHTTPRequestHandler):
    """Another site: a page whose form posts an approval to the ledger's server."""

    target = ""

    def do_GET(self) -> None:
        page = (
            "<!doctype html><title>win a prize</title>"
            f'<form method="post" action="{self.target}/review">'
            '<input type="hidden" name="action" value="approve">'
            '<input type="hidden" name="submission" value="cats-1">'
            '<button id="go">Claim your prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_cross_site_form_post_is_refused(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    log_in(base, driver, story.admin)
    assert driver.get_cookie("cl_session") is not None
    _Evil.target = base
    evil = ThreadingHTTPServer(("127.0.0.1", free_port()), _Evil)
    thread = threading.Thread(target=evil.serve_forever, daemon=True)
    thread.start()
    before = head(story)
    try:
        # localhost is another site than 127.0.0.1 to the browser.
        driver.get(f"http://localhost:{evil.server_address[1]}/")
        navigates(driver, driver.find_element(By.ID, "go").click)
        text = driver.find_element(By.TAG_NAME, "body").text
    finally:
        evil.shutdown()
        thread.join(5)
    assert "the request does not come from this site" in text
    assert head(story) == before
    assert story.ledger.history("local:w1")[-1].type == "SubmissionRecorded"
    shot(driver, "refused-cross-site")


def test_rules_and_stats_pages(site: tuple[str, Story, Any]) -> None:
    from selenium.webdriver.common.by import By

    base, story, driver = site
    log_in(base, driver, story.viewer)
    driver.get(base + "/rules")
    assert "english-speakers" in driver.find_element(By.TAG_NAME, "h2").text
    shot(driver, "rules")
    driver.get(base + "/stats")
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3
    bars = driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert bars
    assert all(b.size["width"] > 0 for b in bars)
    shot(driver, "stats")
