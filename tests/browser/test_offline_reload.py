"""A reload while the server is down: the page still loads, says it is reconnecting, and gets
back in by itself when the server does.

A student joins the demo lab; the page's service worker (clients/web/public/sw.js) takes it over
and keeps what it loaded. The test SIGKILLs the server and reloads the tab, as a student does
when the lab "looks stuck". Without the worker that is the browser's error page; with it:

* the page comes from the worker's copy, and shows the reconnecting banner (role="status",
  "Reconnecting to the practical…"), not a blank page nor the join form, with the practical's
  title in the HUD and the student's column frozen;
* none of the server's own answers (/api/*, /healthz...) were kept by the worker;
* once the server is back on the same data and port, the page gets in by itself (from the
  tab's credentials in sessionStorage) as the same participant.

Screenshot: /tmp/offline-reload.png (the reloaded page during the outage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as, wait_until
from tests.conftest import LiveServer, serve_again, start_server

pytestmark = pytest.mark.browser

#: Longest wait for the page to get back in after the server answers again: its backoff tops out at 8 s.
BACK_TIMEOUT_MS = 8_000 + START_TIMEOUT_MS
#: A resume window wide enough for the outage and a slow restart on a busy machine (as test_reconnect).
ENV = {"AMALIY_RESUME_WINDOW": "120"}

#: Whether a worker controls the page and its caches hold the page and every same-origin file it
#: loaded (the lab's model excepted: it is under /api/, which the browser's HTTP cache keeps).
EVERYTHING_KEPT = """async () => {
    if (!navigator.serviceWorker.controller) return false;
    const kept = new Set();
    for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) kept.add(request.url);
    }
    const loaded = performance.getEntriesByType('resource').map((entry) => entry.name)
        .filter((url) => url.startsWith(location.origin) && !url.startsWith(`${location.origin}/api/`));
    return loaded.length > 0 && kept.has(`${location.origin}/`) && loaded.every((url) => kept.has(url));
}"""

#: Every address the page's caches hold.
KEPT_URLS = """async () => {
    const kept = [];
    for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) kept.push(request.url);
    }
    return kept;
}"""


def test_a_reload_during_an_outage_shows_the_banner_and_comes_back_in(
    student: Page, servers: list[LiveServer], tmp_path: Path, screenshot: Callable[[Page, str], Path]
) -> None:
    page, data_dir = student, tmp_path / "data"
    server = start_server(data_dir, ENV)
    servers.append(server)
    page.goto(f"{server.base_url}/?code={server.demo_code}")
    me = join_as(page, "Dilnoza")
    title = page.locator("#hud-title").text_content()
    wait_until(page, lambda: page.evaluate(EVERYTHING_KEPT), "the service worker controls the page and keeps what it loaded")

    # The server dies without a word, and the student reloads.
    server.proc.kill()
    server.proc.wait()
    response = page.reload()
    assert response is not None and response.from_service_worker, "the reload did not come from the worker"

    # The page is there, from the worker's copy: the banner, the title, the column frozen; no join form.
    banner = page.get_by_role("status").filter(has_text="Reconnecting")
    expect(banner).to_be_visible(timeout=START_TIMEOUT_MS)  # the lab loads (SwiftShader) before the first try
    expect(banner).to_contain_text("Reconnecting to the practical…")
    page.wait_for_function("window.amaliy.reconnecting === true", timeout=TIMEOUT_MS)
    expect(page.locator("#hud-title")).to_have_text(title or "")
    expect(page.locator("#hud-state")).to_have_text("reconnecting…")
    expect(page.locator("#join-form")).to_be_hidden()
    expect(page.locator("#signin-form")).to_be_hidden()
    expect(page.locator("#notice")).to_be_hidden()
    assert page.evaluate("document.getElementById('side').inert"), "the student's column is not frozen"
    page.screenshot(path="/tmp/offline-reload.png")

    # The worker kept the app, never the server's answers.
    kept = [url.removeprefix(server.base_url) for url in page.evaluate(KEPT_URLS)]
    assert "/main.js" in kept and any(url.startswith("/vendor/three@") and url.endswith("/build/three.module.js") for url in kept), kept
    assert not [url for url in kept if url.startswith(("/api/", "/healthz", "/metrics", "/docs"))], kept

    # It keeps trying: a later try is counted while the server is still away.
    page.wait_for_function(
        "/\\(try ([2-9]|\\d\\d+)\\)/.test(document.getElementById('reconnecting').textContent)", timeout=TIMEOUT_MS
    )

    # The server comes back on the same data and port; the page gets in by itself, as the same participant.
    servers.append(serve_again(server, data_dir, port=int(server.base_url.rsplit(":", 1)[1]), env=ENV))
    page.wait_for_function("window.amaliy.state === 'connected' && !window.amaliy.reconnecting", timeout=BACK_TIMEOUT_MS)
    expect(banner).to_be_hidden()
    expect(page.locator(".toast", has_text="Back in the practical.")).to_be_visible()
    expect(page.locator("#hud-state")).to_have_text("connected")
    assert page.evaluate("window.amaliy.me.id") == me
    assert not page.evaluate("document.getElementById('side').inert")
    screenshot(page, "back")
