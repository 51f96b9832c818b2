"""The server goes away: the page says it is reconnecting for as long as it is, freezes
interaction, and comes back by itself when the server does.

A student joins the demo lab and picks up a beaker; the test SIGKILLs the server process
(a crash, or a restart that said no goodbye). A toast that vanished after a few seconds
would leave the student handling a stale lab the room no longer hears, so:

* a banner (role="status") says "Reconnecting to the practical…" with the next try's
  countdown, and is still up long after a toast would have gone (more than 6 s);
* interaction is frozen: a grab, a put-down, an answer, a hint request and a dial change are
  ignored and nothing but ``join`` goes out on the wire; the student's column is inert and the
  head count says it is out of date; the beaker stays in the hand;
* the banner reads on a 390 px phone without covering Leave, dark on amber (at least 4.5:1).

Then the server starts again on the same data directory and ports; the page gets back in
by itself (banner gone, "Back in the practical.", connected) as the same participant in
the same practical, still holding the beaker (that last part needs the room to survive a
restart on the server's side).

Screenshots: /tmp/reconnect-banner.png (800×520) and /tmp/reconnect-banner-phone.png (390×844).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import VIEWPORT
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as, nearest, record_sent
from tests.conftest import LiveServer, serve_again, start_server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
#: What the page asks the room for when a student handles the lab: none may go out while it is away.
INTERACTION = {"grab", "release", "interact", "answer", "hint"}
#: Longest wait for the page to get back in after the server answers again: its backoff tops out at 8 s.
BACK_TIMEOUT_MS = 8_000 + START_TIMEOUT_MS
#: A resume window (30 s by default) wide enough for the outage, a slow restart on a busy machine and
#: the backoff's last wait, so the room still keeps the student's place and holds when they are back.
ENV = {"AMALIY_RESUME_WINDOW": "120"}


def contrast(page: Page) -> float:
    """WCAG contrast ratio of the banner's text colour on its background (both opaque rgb())."""
    return page.evaluate(
        """() => {
            const style = getComputedStyle(document.getElementById('reconnecting'));
            const luminance = (css) => {
                const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map((v) => {
                    const c = Number(v) / 255;
                    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        }"""
    )


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_banner_and_frozen_interaction_while_the_server_is_down(
    student: Page, servers: list[LiveServer], tmp_path: Path, screenshot: Callable[[Page, str], Path]
) -> None:
    page, data_dir = student, tmp_path / "data"
    server = start_server(data_dir, ENV)
    servers.append(server)
    phase = ["in"]
    sent: list[tuple[str, Any]] = []
    page.on("websocket", lambda ws: record_sent(ws, sent, phase))
    page.goto(f"{server.base_url}/?code={server.demo_code}")
    me = join_as(page, "Dilnoza")
    title = page.locator("#hud-title").text_content()
    beaker = nearest(page, "beaker-water@")
    page.evaluate("id => window.amaliy.grab(id)", beaker)
    page.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[beaker, me], timeout=TIMEOUT_MS)
    thermometer, burner = nearest(page, "thermometer@"), nearest(page, "burner@")
    step = page.evaluate("window.amaliy.challenge.current.id")
    banner = page.locator("#reconnecting")
    expect(banner).to_be_hidden()

    # The server dies without a word.
    server.proc.kill()
    server.proc.wait()
    page.wait_for_function("window.amaliy.reconnecting === true", timeout=TIMEOUT_MS)
    phase[0] = "down"  # from when the page knows (a frame may have been on its way as the server died)
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "status")
    expect(banner).to_have_attribute("aria-live", "polite")
    expect(banner).to_contain_text("Reconnecting to the practical…")
    expect(banner).to_contain_text(re.compile(r"(next try in \d+ s|trying now)\s+\(try \d+\)"))
    expect(page.locator("#hud-state")).to_have_text("reconnecting…")
    expect(page.locator("#hud-count")).to_contain_text("(reconnecting)")
    assert page.evaluate("document.getElementById('side').inert"), "the student's column is not frozen"
    assert contrast(page) >= 4.5

    # Whatever the student tries is ignored, and the beaker stays in the hand.
    tried = page.evaluate(
        """([held, other, burner, step]) => {
            window.amaliy.grab(other);
            window.amaliy.release(held);
            return [window.amaliy.interact(burner, 'lit', true), window.amaliy.answer(0, step), window.amaliy.askHint()];
        }""",
        [beaker, thermometer, burner, step],
    )
    assert tried == [None, None, None]
    assert page.evaluate("window.amaliy.held") == [beaker]

    # Long after a toast would have gone (4.5 s), the banner is still up, on a later try.
    page.wait_for_timeout(6_500)
    assert page.evaluate("window.amaliy.reconnecting") is True
    expect(banner).to_be_visible()
    tries = re.search(r"\(try (\d+)\)", banner.text_content() or "")
    assert tries and int(tries.group(1)) >= 3, banner.text_content()
    assert page.evaluate("window.amaliy.held") == [beaker]
    page.screenshot(path="/tmp/reconnect-banner.png")

    # On a phone it fits the screen and leaves Leave free.
    page.set_viewport_size(PHONE)
    expect(banner).to_be_visible()
    box, leave = banner.bounding_box(), page.locator("#leave").bounding_box()
    assert box and leave and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert not overlaps(box, leave), (box, leave)
    page.screenshot(path="/tmp/reconnect-banner-phone.png")
    page.set_viewport_size(VIEWPORT)

    # Nothing but tries to join went out while the server was away.
    assert {kind for when, kind in sent if when == "down"} <= {"join"}, sent

    # The server comes back on the same data and ports; the page gets back in by itself.
    servers.append(serve_again(server, data_dir, port=int(server.base_url.rsplit(":", 1)[1]), env=ENV))
    page.wait_for_function("window.amaliy.state === 'connected' && !window.amaliy.reconnecting", timeout=BACK_TIMEOUT_MS)
    phase[0] = "back"
    expect(banner).to_be_hidden()
    expect(page.locator(".toast", has_text="Back in the practical.")).to_be_visible()
    screenshot(page, "back")
    expect(page.locator("#hud-state")).to_have_text("connected")
    expect(page.locator("#hud-count")).not_to_contain_text("reconnecting")
    assert not page.evaluate("document.getElementById('side').inert")

    # Back in the same practical as the same participant, holding what the room says: the beaker
    # (needs the room to survive the restart on the server's side).
    expect(page.locator("#hud-title")).to_have_text(title or "")
    assert page.evaluate("window.amaliy.me.id") == me
    page.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[beaker, me], timeout=TIMEOUT_MS)
    assert page.evaluate("window.amaliy.held") == [beaker]

    # What was tried while away was dropped, not kept for later.
    assert not INTERACTION & {kind for when, kind in sent if when == "back"}, sent
