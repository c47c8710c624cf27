"""Browser fixtures: the app served on a real socket, a headless Chromium driven by Playwright,
a console guard that fails a test on any browser error (CSP violations included), and an
axe-core accessibility check.

Every browser test is marked ``@pytest.mark.browser``, so ``pytest -m "not browser"`` skips them.
Which Chromium: the ``CHROMIUM`` environment variable (a path; ``make test`` sets it to Debian's
``/usr/bin/chromium`` where that exists), else Debian's if present, else the browser Playwright
downloads itself (``make browsers``, i.e. ``playwright install chromium``). Without any of them a
browser test is skipped locally and fails in CI (``need_service``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

from tests.conftest import need_service

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


def chromium_path() -> Path | None:
    """The Chromium to drive: ``CHROMIUM`` if set, Debian's where present, else None (Playwright's own)."""
    chosen = os.environ.get("CHROMIUM", "").strip()
    if chosen:
        return Path(chosen)
    return DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.exists() else None


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Gitignored; screenshots never go into the repository.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Generous waits: the machine is shared and has two cores. These are upper bounds for
# Playwright's auto-waiting, never fixed sleeps, so a fast run stays fast.
EXPECT_TIMEOUT_MS = 10_000
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 30_000

_LOG_KEY = pytest.StashKey["BrowserLog"]()
_REPORTS_KEY = pytest.StashKey[dict]()


@dataclass
class BrowserLog:
    """Everything the browser reported during one test."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        location = message.location or {}
        url = location.get("url") or ""
        line = f"[{message.type}] {message.text}" + (f" ({url}:{location.get('lineNumber', 0)})" if url else "")
        self.messages.append(line)
        if message.type == "error":
            self.errors.append(line)

    def on_page_error(self, error: PlaywrightError) -> None:
        line = f"[pageerror] {error.name}: {error.message}"
        self.messages.append(line)
        self.errors.append(line)

    def take_errors(self) -> list[str]:
        """Return the errors so far and forget them (for a test that provokes one on purpose)."""
        errors, self.errors = self.errors, []
        return errors


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 (a thread per connection); yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` for one test; yield its base URL."""
    with serving(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session (each test gets its own context)."""
    executable = chromium_path()
    if executable is not None and not executable.exists():
        need_service("Chromium", f"CHROMIUM={executable} does not exist")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(executable) if executable else None,
                                                  headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            hint = ("" if executable else " (no Debian chromium: set CHROMIUM=/path/to/chromium, "
                    "or run `make browsers` for Playwright's own)")
            need_service("Chromium", f"it did not start: {exc.message.splitlines()[0] if exc.message else exc}{hint}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def browser_log(request: pytest.FixtureRequest) -> BrowserLog:
    """The console messages and page errors of the current test (checked after the test body)."""
    log = BrowserLog()
    request.node.stash[_LOG_KEY] = log
    return log


@pytest.fixture()
def page(request: pytest.FixtureRequest, browser: Browser, live_server: str, browser_log: BrowserLog) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies shared between tests), based at the live server.

    Relative URLs work: ``page.goto("/records")``. The page is closed before the server stops.
    """
    if request.node.get_closest_marker("browser") is None:
        pytest.fail("browser tests must be marked @pytest.mark.browser")
    context = browser.new_context(base_url=live_server, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.on("console", browser_log.on_console)
    page = context.new_page()
    page.on("pageerror", browser_log.on_page_error)
    try:
        yield page
    finally:
        report = request.node.stash.get(_REPORTS_KEY, {}).get("call")
        if report is not None and report.failed:
            save_screenshot(page, "FAILED-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid))
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """After the test body: fail on any browser console error or uncaught page error.

    This runs inside the call phase, so it is a test failure (not a teardown error), and the
    test's own failure, if any, is reported first with the browser's messages attached.
    """
    try:
        result = yield
    finally:
        log = item.stash.get(_LOG_KEY, None)
        if log is not None and log.messages:
            item.add_report_section("call", "browser console", "\n".join(log.messages))
    if log is not None and log.errors:
        pytest.fail("the browser reported errors (a CSP violation, a failed load or a script error):\n  "
                    + "\n  ".join(log.errors), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so the page fixture knows whether to take a screenshot."""
    report = yield
    item.stash.setdefault(_REPORTS_KEY, {})[report.when] = report
    return report


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to ``test-artifacts/<name>.png`` (gitignored) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_accessibility(page: Page) -> None:
    """Run axe-core on the current page and fail on any violation, listing each with its nodes.

    axe is injected with ``page.evaluate``, which goes through the DevTools protocol and is not
    subject to the page's Content-Security-Policy; axe-core itself needs no eval. So the page
    keeps its real CSP (no ``bypass_csp``) and the console guard still sees every violation.
    """
    violations = axe_violations(page)
    if violations:
        pytest.fail(describe_violations(page, violations), pytrace=False)


def axe_violations(page: Page, impacts: tuple[str, ...] | None = None) -> list[dict]:
    """axe-core's violations on the current page; only those of the given impacts (``("serious",
    "critical")``) when ``impacts`` is set."""
    page.wait_for_load_state("load")  # every stylesheet applied: no colour caught on its way
    violations = Axe().run(page).response["violations"]
    if impacts is not None:
        violations = [v for v in violations if v.get("impact") in impacts]
    return violations


def describe_violations(page: Page, violations: list[dict]) -> str:
    """One readable block: each violation, its rule's help page, and where it is on the page."""
    lines = [f"{len(violations)} accessibility violation(s) on {page.url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}  {violation['helpUrl']}")
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            lines.append(f"    at {target}: {node.get('failureSummary', '').replace(chr(10), ' ')}")
    return "\n".join(lines)
