"""A student on a phone over a 1 Mbit/s link: the join form is there before three.js has come,
the page loads the lab's phone variant (never the ~10 MB desktop GLB), shows how far the download
is, and the lab is on screen within 30 s of pressing Join. The link is throttled by Chromium's DevTools, from the first byte of the page."""

from __future__ import annotations

import re
import time
from typing import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.labs import open_practical
from tests.conftest import LiveServer
from tests.phone_labs import HEAVY_ID, heavy_package

pytestmark = pytest.mark.browser

#: 1 Mbit/s down and up, in bytes per second, with a mobile network's latency
ONE_MBIT = {"offline": False, "latency": 150, "downloadThroughput": 125_000, "uploadThroughput": 125_000}
#: the goal: a lab on screen this soon after Join, on that link
GOAL_S = 30


def test_a_phone_on_a_weak_link_loads_the_phone_lab_with_progress(
    server: LiveServer, browser: Browser, screenshot: Callable[[Page, str], object]
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:  # ingest of 330,000 triangles takes a few seconds
        uploaded = http.post(
            "/api/scenes", files={"package": ("lab.zip", heavy_package(), "application/zip")}, headers={"Authorization": f"Bearer {server.designer_key}"}
        )
        assert uploaded.status_code == 201, uploaded.text
    lab = uploaded.json()
    session = open_practical(server, HEAVY_ID)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error {msg.text}"))
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", ONE_MBIT)
    try:
        opened = time.monotonic()
        page.goto(f"{server.base_url}/?code={session['join_code']}", timeout=60_000)
        expect(page.get_by_label("Your name")).to_be_visible(timeout=60_000)
        page_s = time.monotonic() - opened
        # the form came without waiting for three.js, which is still on its way
        three = "performance.getEntriesByType('resource').filter((e) => /three\\.(core|module)/.test(e.name)).length"
        assert page.evaluate(three) == 0, "the join form waited for three.js"
        screenshot(page, "form")
        page.get_by_label("Your name").fill("Dilnoza")
        page.get_by_role("button", name="Join").click()
        joined = time.monotonic()
        expect(page.locator("#lab-loading")).to_have_text(re.compile(r"Loading lab… \d+ %"), timeout=GOAL_S * 1000)
        screenshot(page, "progress")
        page.wait_for_function("window.amaliy?.state === 'connected'", timeout=GOAL_S * 1000)
        lab_s = time.monotonic() - joined
        screenshot(page, "lab")
        assert lab_s < GOAL_S, f"the lab took {lab_s:.1f} s after Join"
        assert page.locator("#lab-loading").count() == 0
        assert any(url.endswith(lab["glb_phone_url"]) for url in fetched)
        assert not any(url.endswith(lab["glb_url"]) for url in fetched), "the phone fetched the desktop GLB"
        print(f"phone lab: page {page_s:.1f} s, lab {lab_s:.1f} s after Join, on 1 Mbit/s")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
