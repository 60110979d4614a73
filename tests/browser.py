"""A real browser for the tests of the web UI: Debian's Chromium driven by Playwright.

One Chromium runs for the session; each test gets a fresh context (no cookies or storage
shared with other tests) with a 1280x800 viewport, and a record of what went wrong in the
page: console errors (failed loads, Content-Security-Policy violations) and uncaught
exceptions. Nothing is skipped: without Chromium the fixture fails and says how to install it
(``scripts/test`` installs it on a fresh Debian machine). ``playwright install`` is never
needed; Playwright launches ``/usr/bin/chromium``.

    def test_page(live_server, page, page_errors):
        page.goto(live_server.mount(app) + "/")
        assert page.get_by_role("heading").inner_text() == "Models"
        screenshot(page, "models")       # test-output/screenshots/models.png
        assert page_errors == []         # no console error, page error or CSP violation

A page that links no icon makes Chromium ask for ``/favicon.ico``; a 404 there is a console
error like any other. Registered from ``tests/conftest.py`` with ``pytest_plugins``.

The sync API runs Playwright's event loop in a greenlet of the main thread, and while it is
alive asyncio considers a loop to be running in that thread, so ``asyncio.run()`` and
``anyio.run()`` would refuse to start. Tests that do not use the browser get the thread
without that mark (``_hide_playwright_loop``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",  # otherwise it keeps trying hosts it cannot reach
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",  # /dev/shm is small in containers
]
VIEWPORT = {"width": 1280, "height": 800}
# For each action and navigation, as Playwright's default: a page that loads in under a second
# on a quiet machine took over 10 s on one busy with the rest of the suite.
TIMEOUT_MS = 30_000
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"


class PageErrors(list[str]):
    """What went wrong in a page, one line each: ``console.error: <text> (<url>:<line>)``
    for console errors (Chromium reports failed loads and CSP violations there) and
    ``pageerror: <name>: <message>`` for uncaught exceptions. A list:
    ``assert page_errors == []``. Only ``page`` is watched, not pages it opens."""

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location or {}
            place = f" ({where.get('url')}:{where.get('lineNumber')})" if where.get("url") else ""
            self.append(f"console.error: {message.text}{place}")

    def on_page_error(self, error: Error) -> None:
        self.append(f"pageerror: {error.name}: {error.message}")


class _Playwright:
    """The session's Playwright, once started (its event loop, for ``_hide_playwright_loop``)."""

    loop: asyncio.AbstractEventLoop | None = None


def chromium_path() -> str:
    found = shutil.which("chromium") or CHROMIUM
    if not Path(found).is_file():
        raise RuntimeError(
            "Chromium is not installed: no chromium on PATH and no /usr/bin/chromium"
            " (apt-get install -y chromium, or run scripts/test which installs it;"
            " `playwright install` is not used)"
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Chromium for the session (a Playwright ``Browser``)."""
    from playwright.sync_api import Error as LaunchError
    from playwright.sync_api import sync_playwright

    try:
        executable = chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    playwright = sync_playwright().start()
    _Playwright.loop = asyncio.get_running_loop()  # Playwright's, marked running between calls
    try:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except LaunchError as exc:
            pytest.fail(f"Chromium ({executable}) did not start: {exc}", pytrace=False)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()
        _Playwright.loop = None


@pytest.fixture
def _browser_page(browser: Browser) -> Iterator[tuple[Page, PageErrors]]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    errors = PageErrors()
    page = context.new_page()
    page.on("console", errors.on_console)
    page.on("pageerror", errors.on_page_error)
    try:
        yield page, errors
    finally:
        context.close()


@pytest.fixture
def page(_browser_page: tuple[Page, PageErrors]) -> Page:
    """A new page (a Playwright ``Page``) in a context of its own, 1280x800."""
    return _browser_page[0]


@pytest.fixture
def page_errors(_browser_page: tuple[Page, PageErrors]) -> PageErrors:
    """The console errors and uncaught exceptions of ``page`` so far (a list of lines)."""
    return _browser_page[1]


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``test-output/screenshots/<name>.png``; return it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"screenshot name {name!r}: letters, digits, '.', '_' and '-' only")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(autouse=True)
def _hide_playwright_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Around a test that does not use the browser, clear the mark that a loop is running in
    this thread (Playwright's, idle between sync calls); put it back afterwards, before the
    browser is used or closed again."""
    loop = _Playwright.loop
    if loop is None or "browser" in request.fixturenames:
        yield
        return
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)
