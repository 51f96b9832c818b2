"""Browser fixtures: Debian's headless Chromium driven by Playwright.

The server side comes from tests/conftest.py (``server``: a real ``amaliy serve``
process on free ports). Chromium is the system one at /usr/bin/chromium; these
tests never download a browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ARTIFACTS, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",  # WebGL still works, on SwiftShader
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
VIEWPORT = {"width": 800, "height": 520}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: while sync Playwright runs, its event loop counts as
    # running on this thread, and the asyncio tests of other modules could not start.
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str, str], Page]]:
    """Open tabs in one browser window, like a person with several tabs.

    Any uncaught exception or console error on any tab fails the test at the
    end, with the tab's label, so a broken module cannot hide behind a passing
    assertion about something else.
    """
    context = browser.new_context(viewport=VIEWPORT)
    problems: list[str] = []

    def open_tab(url: str, label: str) -> Page:
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"{label}: uncaught {exc}"))
        page.on("console", lambda msg: msg.type == "error" and problems.append(f"{label}: console error {msg.text}"))
        page.goto(url)
        return page

    yield open_tab
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a tab's screenshot as test-artifacts/<test>-<name>.png (look at them: they show what a student sees)."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=path)
        return path

    return take


@pytest.fixture
def student(browser: Browser) -> Iterator[Page]:
    """One tab, failing the test on any uncaught exception or console error, as open_page does,
    except Chromium's own line for each refused socket while the server is down: that is the
    very situation under test."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))

    def console(msg: Any) -> None:
        if msg.type == "error" and not msg.text.startswith("WebSocket connection to"):
            problems.append(f"console error {msg.text}")

    page.on("console", console)
    yield page
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    """The server processes the test starts (the first, then its restart); stopped after it."""
    started: list[LiveServer] = []
    yield started
    for live in started:
        live.stop()
