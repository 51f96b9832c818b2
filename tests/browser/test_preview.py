"""A designer's private preview in a real tab: the debug overlay follows what the challenge engine sees.

The designer opens a preview of the chemistry lab's stored version and opens its
``preview_url`` (the student token it carries, and ``preview=1``). The page joins
like a student's and, because of ``preview=1``, polls the preview's debug view
with that same token and shows it: each step's state, whether its condition
holds now, mistakes, the condition, and the station's property values.

The first step is filling the flask by tipping the beaker of water over it, which a
desktop page cannot do (its hand holds things upright), so the test plays the
headset's hand: the page picks the beaker up itself, and the test, routed into the
page's own room socket, holds back the page's upright moves and sends the beaker
tipped over the flask on that socket instead. The overlay then shows the step
done and the next one open.

Nobody else gets in: no join code works, no teacher lists or opens the preview, and
another practical's token is refused on the debug route.
"""

from __future__ import annotations

import math
import re
import sqlite3
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from realtime.protocol import BinaryKind, encode_object_move
from tests.browser.conftest import VIEWPORT
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, wait_until

pytestmark = pytest.mark.browser

SCENE = "chemistry-bench"
#: a quarter turn about x: a beaker on its side, pouring
TIPPED = [math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)]


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def stored_join_code(server, session_id: str) -> str:
    """The code the store keeps for a session (a preview's is never shown to anyone)."""
    data_dir = Path(server.proc.args[server.proc.args.index("--data-dir") + 1])
    with sqlite3.connect(f"file:{data_dir / 'amaliy.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT join_code FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]


def open_preview(server) -> dict[str, Any]:
    with server.http() as http:
        scenes = http.get("/api/scenes", headers=bearer(server.designer_key))
        scenes.raise_for_status()
        version = next(row["version"] for row in scenes.json() if row["package_id"] == SCENE)
        opened = http.post(f"/api/scenes/{SCENE}/versions/{version}/preview", headers=bearer(server.designer_key))
        assert opened.status_code == 201, opened.text
        return opened.json()


def my_station(page: Page) -> dict[str, Any]:
    """The designer's station in the page's last debug view."""
    return page.evaluate("window.amaliy.debug.stations.find(s => s.members.includes(window.amaliy.me.id))")


def step_row(page: Page, step: str):
    return page.locator(f"#debug-panel tbody[data-step='{step}']")


def test_a_preview_is_private_and_its_token_reads_only_its_own_debug_view(server) -> None:
    preview = open_preview(server)
    assert preview["preview_url"].startswith(f"{server.base_url}/#token={preview['token']}")
    assert preview["preview_url"].endswith("&preview=1")
    session = preview["id"]
    other = server.open_session("Someone else's practical")
    with server.http() as http:
        # no way in for students: no code shown, and the stored one is not a join code
        assert preview["join_code"] is None and preview["join_url"] is None
        refused = http.post("/api/join", json={"code": stored_join_code(server, session), "name": "Eve"})
        assert refused.status_code in (404, 422), refused.text
        # no teacher lists or opens it
        listed = http.get("/api/sessions", headers=bearer(server.teacher_key)).json()
        assert session not in {s["id"] for s in listed} and other["id"] in {s["id"] for s in listed}
        assert http.get(f"/api/sessions/{session}", headers=bearer(server.teacher_key)).status_code == 403

        # the preview's own token reads its description (the page needs it) and its debug view
        assert http.get(f"/api/sessions/{session}", headers=bearer(preview["token"])).json()["preview"] is True
        view = http.get(preview["debug_url"], headers=bearer(preview["token"]))
        assert view.status_code == 200, view.text
        assert view.json()["session"] == session and view.json()["challenge"] == "water-bath"
        # ...but another practical's tokens and keys are refused
        student = http.post("/api/join", json={"code": other["join_code"], "name": "Eve"}).json()["token"]
        for credential in (student, other["teacher_token"], server.teacher_key):
            assert http.get(preview["debug_url"], headers=bearer(credential)).status_code == 403
        # and the token is good for nothing else: not another practical's debug view or description
        assert http.get(f"/api/sessions/{other['id']}/debug", headers=bearer(preview["token"])).status_code == 403
        assert http.get(f"/api/sessions/{other['id']}", headers=bearer(preview["token"])).status_code == 403
        # a practical's own student token does not make its practical a preview
        assert http.get(f"/api/sessions/{other['id']}/debug", headers=bearer(student)).status_code == 403
        assert http.delete(f"/api/sessions/{session}/preview", headers=bearer(preview["token"])).status_code == 403


def test_the_preview_page_shows_the_debug_overlay_and_follows_the_first_step(server, open_page, screenshot) -> None:
    preview = open_preview(server)

    # The page's room socket runs through the test, which passes everything on (see the module doc).
    sides: list[WebSocketRoute] = []
    moved: list[int] = []  # object index of each object-move frame the page sent
    hold_back = {"moves": False}

    def route(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        sides.append(server_side)

        def from_page(message: str | bytes) -> None:
            if isinstance(message, bytes) and message[0] == BinaryKind.OBJECT_MOVE:
                moved.append(struct.unpack_from("<H", message, 2)[0])
                if hold_back["moves"]:
                    return
            server_side.send(message)

        page_side.on_message(from_page)

    page = open_page("about:blank", "designer")
    page.route_web_socket(lambda url: url.endswith("/room"), route)  # before the page can open its socket
    page.goto(preview["preview_url"])
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    me = page.evaluate("window.amaliy.me.id")
    assert me == preview["participant_id"] and page.evaluate("window.amaliy.me.role") == "student"
    page.wait_for_function(
        "window.amaliy?.me && window.amaliy.debug?.stations.some(s => s.members.includes(window.amaliy.me.id))", timeout=TIMEOUT_MS
    )
    station = my_station(page)
    number = station["number"]
    steps = station["steps"]
    assert [s["id"] for s in steps[:2]] == ["fill-flask", "burner-under-tripod"], "the water bath's steps changed: update this test"

    # The overlay: the first step open and not holding, the rest locked; the condition in short; the values.
    panel = page.locator("#debug-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".debug-station")).to_contain_text(station["title"])
    first = step_row(page, "fill-flask")
    expect(first).to_have_attribute("data-state", "open")
    expect(first).to_have_attribute("data-holds", "no")
    expect(first.locator(".badge")).to_have_text("open")
    expect(first.locator("td.holds")).to_have_text("✗")
    expect(first.locator("td.mistakes")).to_have_text("0")
    expect(first.locator("code")).to_have_text("property flask.filled = true")
    expect(step_row(page, "burner-under-tripod")).to_have_attribute("data-state", "locked")
    expect(step_row(page, "burner-under-tripod").locator("code")).to_have_text("at_snap burner → tripod.burner")
    expect(step_row(page, "read-temperature").locator("td.holds")).to_have_text("—")
    expect(panel.locator("tbody[data-step]")).to_have_count(len(steps))
    expect(panel.locator(".debug-properties li[data-object='flask@%d'][data-property='filled']" % number)).to_have_text("flask.filled = false")
    expect(panel.locator(f".debug-properties li[data-object='burner@{number + 1}']")).to_have_count(0)  # only my station's
    # the page's own HUD is there as for a student, and the overlay leaves it clear
    expect(page.locator("#challenge-step")).to_have_text(steps[0]["text"])
    expect(page.locator("#hud")).to_be_visible()
    overlaps = page.evaluate(
        """() => {
            const box = (el) => el.getBoundingClientRect();
            const panel = box(document.getElementById('debug-panel'));
            const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
            return ['hud', 'voice-bar', 'side'].filter((id) => {
                const el = document.getElementById(id);
                return el && el.offsetParent !== null && !apart(panel, box(el));
            });
        }"""
    )
    screenshot(page, "overlay-first-step")
    assert overlaps == [], f"the debug overlay covers {overlaps}"

    # The designer picks the beaker of water up through the page...
    beaker, flask = f"beaker-water@{number}", f"flask@{number}"
    page.evaluate("id => window.amaliy.grab(id)", beaker)
    page.wait_for_function("([o, me]) => window.amaliy.objects[o]?.holder === me", arg=[beaker, me], timeout=TIMEOUT_MS)
    wait_until(page, lambda: bool(moved), "the page sends its held beaker's transform")
    index = moved[-1]  # the page holds nothing else
    # ...and tips it over the flask, as a headset's hand would: the page's upright moves are held back.
    hold_back["moves"] = True
    over = [a + b for a, b in zip(page.evaluate("id => window.amaliy.objects[id].position", flask), [0.0, 0.22, 0.0])]
    sides[-1].send(encode_object_move(index, [*over, *TIPPED]))

    # The engine sees the flask filled: the overlay shows the step done and holding, the next one open.
    expect(first).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    expect(first).to_have_attribute("data-holds", "yes")
    expect(first.locator("td.holds")).to_have_text("✓")
    second = step_row(page, "burner-under-tripod")
    expect(second).to_have_attribute("data-state", "open")
    expect(second).to_have_attribute("data-holds", "no")
    expect(panel.locator(f".debug-properties li[data-object='{flask}'][data-property='filled']")).to_have_text("flask.filled = true")
    done = my_station(page)
    assert done["steps"][0]["done"] is True and done["steps"][0]["points"] > 0 and done["score"] > 0
    assert page.evaluate("window.amaliy.debug.properties")[flask] == {"filled": True}
    expect(page.locator("#challenge-step")).to_have_text(steps[1]["text"])

    # The designer puts the beaker down through the page again.
    hold_back["moves"] = False
    page.evaluate("id => window.amaliy.release(id)", beaker)
    page.wait_for_function("o => window.amaliy.objects[o]?.holder === null", arg=beaker, timeout=TIMEOUT_MS)
    screenshot(page, "overlay-step-done")

    # The panel folds to its header and opens again; `debug` is a copy, not the panel's own view.
    toggle = panel.locator("header button")
    expect(toggle).to_have_text("Hide")
    toggle.click()
    expect(panel.locator(".debug-body")).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_text("Show")
    screenshot(page, "overlay-folded")
    toggle.click()
    expect(panel.locator(".debug-body")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.evaluate("window.amaliy.debug.stations.length = 0")
    assert page.evaluate("window.amaliy.debug.stations.length") > 0


def test_the_overlay_stops_when_the_preview_ends(server, browser, screenshot) -> None:
    """Ending the preview closes the page's socket; the overlay's next poll gets 409 and it polls no more.
    Chromium reports that 409 on the console as an error, so this tab is watched here, not by ``open_page``."""
    preview = open_preview(server)
    context = browser.new_context(viewport=VIEWPORT)
    problems: list[str] = []
    polls: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
        expected = "the server responded with a status of 409"
        page.on("console", lambda msg: msg.type == "error" and expected not in msg.text and problems.append(msg.text))
        page.on("request", lambda request: urlsplit(request.url).path == preview["debug_url"] and polls.append(request.url))
        page.goto(preview["preview_url"])
        page.wait_for_function(
            "window.amaliy?.me && window.amaliy.debug?.stations.some(s => s.members.includes(window.amaliy.me.id))", timeout=START_TIMEOUT_MS
        )
        with server.http() as http:
            assert http.delete(f"/api/sessions/{preview['id']}/preview", headers=bearer(server.designer_key)).status_code == 200
        panel = page.locator("#debug-panel")
        expect(panel.locator(".debug-status")).to_have_text("This preview has ended.", timeout=TIMEOUT_MS)
        expect(panel).to_have_class(re.compile(r"\bended\b"))
        expect(panel.locator(".debug-body")).to_be_hidden()  # folded out of the way of the page's notice
        expect(page.locator("#notice")).to_contain_text("ended")
        # stopped for good: coming back to the tab does not poll again
        stopped_at = len(polls)
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        page.evaluate("new Promise((done) => setTimeout(done, 0))")
        assert len(polls) == stopped_at
        assert page.evaluate("window.amaliy.debug") is not None  # the last view stays readable
        screenshot(page, "overlay-ended")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_plain_token_link_shows_no_overlay(server, open_page) -> None:
    """Without preview=1 (a teacher's link) there is no overlay and nothing is polled."""
    session = server.open_session("No overlay")
    requests: list[str] = []
    page = open_page(session["teacher_url"], "teacher")
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    expect(page.locator("#debug-panel")).to_have_count(0)
    assert page.evaluate("window.amaliy.debug") is None
    assert not [url for url in requests if url.endswith("/debug")]
