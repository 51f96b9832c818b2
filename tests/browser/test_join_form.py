"""A student whose name the server refuses is told why on the join form, and can fix it."""

from __future__ import annotations

from typing import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_a_refused_name_is_explained_then_a_fixed_one_joins(
    server: LiveServer, browser, screenshot: Callable[[Page, str], object]
) -> None:
    session = server.open_session("Names")
    page = browser.new_page(viewport={"width": 800, "height": 520})
    try:
        page.goto(f"{server.base_url}/?code={session['join_code']}")
        page.get_by_label("Your name").fill("Aziz\u202eolleh")  # a right-to-left override disguises a name
        page.get_by_role("button", name="Join").click()
        expect(page.locator("#join-error")).to_contain_text("U+202E (RIGHT-TO-LEFT OVERRIDE)", timeout=TIMEOUT_MS)
        screenshot(page, "refused")
        page.get_by_label("Your name").fill("Aziz")
        page.get_by_role("button", name="Join").click()
        page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
        assert page.evaluate("window.amaliy.me.name") == "Aziz"
    finally:
        page.close()
