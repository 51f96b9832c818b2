"""Protocol version 2 in the web client, end to end, and the link badge a student sees.

The student's room socket is routed through Playwright, so the test reads every
frame the page sends and receives, speaks for the server where it must (a
`quality` message, an older server refusing the `protocol` field) and can hold
the server's frames back like a stalled Wi-Fi would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from realtime import protocol as p
from tests.browser.tabs import TIMEOUT_MS, join_as

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


class Wire:
    """A page's room socket, passed through to the server: what went each way, and a tap to close."""

    def __init__(self, page: Page, refuse_protocol: bool = False) -> None:
        self.sent: list[str | bytes] = []
        self.received: list[str | bytes] = []
        self.holding = False
        self.refuse_protocol = refuse_protocol
        self.page_side: WebSocketRoute | None = None
        page.route_web_socket(lambda url: url.endswith("/room"), self.route)

    def route(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        self.page_side = page_side

        def upstream(message: str | bytes) -> None:
            self.sent.append(message)
            if self.refuse_protocol and isinstance(message, str) and "protocol" in json.loads(message):
                # What a server older than version 2 answers: the field is unknown, the socket stays open.
                page_side.send(json.dumps({"type": "error", "code": "invalid_message", "message": "Bad 'join' message: protocol: Extra inputs are not permitted.", "re": None}))
                return
            server_side.send(message)

        def downstream(message: str | bytes) -> None:
            if self.holding:
                return  # a stalled link: nothing reaches the page
            self.received.append(message)
            page_side.send(message)

        page_side.on_message(upstream)
        server_side.on_message(downstream)

    def json_sent(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, filter(lambda m: isinstance(m, str), self.sent[since:])) if m["type"] == kind]

    def json_received(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, filter(lambda m: isinstance(m, str), self.received)) if m["type"] == kind]

    @staticmethod
    def binary(frames: list[str | bytes]) -> list[bytes]:
        return [m for m in frames if isinstance(m, bytes)]

    def quality(self, level: int, reason: str) -> None:
        """Speak for the server: it changed what it sends this page."""
        assert self.page_side is not None
        self.page_side.send(json.dumps({"type": "quality", "level": level, "pose_hz": 10, "far_hz": 2, "voice_kbps": 16, "reason": reason}))


def apart(a: dict[str, float], b: dict[str, float] | None) -> bool:
    """Two bounding boxes do not overlap."""
    assert b is not None
    return a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]


def badge(page: Page) -> str | None:
    return page.evaluate("window.amaliy.link.badge")


def walk(page: Page, seconds: float) -> None:
    """Walk in small steps for a while, so poses go out and ticks come back."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page.evaluate("window.amaliy.moveBy(0.02, 0, 0)")
        page.wait_for_timeout(40)


def test_a_v2_page_sends_small_poses_acks_its_ticks_and_shows_its_link(server, open_page, screenshot) -> None:
    aziz = open_page(f"{server.base_url}/?code={server.demo_code}", "aziz")
    wire = Wire(aziz)
    join_as(aziz, "Aziz")

    # It asked for version 2 and got it, with the grid its positions are quantized on.
    assert wire.json_sent("join")[0]["protocol"] == p.PROTOCOL_VERSION == 2
    welcome = wire.json_received("welcome")[0]
    assert welcome["protocol"] == 2 and set(welcome["grid"]) == {"origin", "step"}
    assert aziz.evaluate("window.amaliy.link.protocol") == 2

    # Walking: each pose is a 16-byte POSE_V2 (a desktop tracks no hands), every tick a TICK_V2,
    # and the page acks the newest tick it processed, at most 4 times a second.
    before = len(wire.sent)
    started = time.monotonic()
    walk(aziz, 2.0)
    elapsed = time.monotonic() - started
    poses = [m for m in wire.binary(wire.sent[before:]) if m[0] in (p.BinaryKind.POSE, p.BinaryKind.POSE_V2)]
    assert poses and all(m[0] == p.BinaryKind.POSE_V2 and len(m) == 16 for m in poses)
    ticks = wire.binary(wire.received)
    assert ticks and all(m[0] == p.BinaryKind.TICK_V2 for m in ticks)
    acks = wire.json_sent("ack", since=before)
    assert 2 <= len(acks) <= 4 * elapsed + 2
    seen = {int.from_bytes(t[6:10], "little") for t in ticks}
    assert all(a["tick"] in seen for a in acks) and [a["tick"] for a in acks] == sorted(a["tick"] for a in acks)

    # The badge: good (where every link starts), then what each quality message says.
    status = aziz.get_by_role("status").filter(has_text="Connection:")
    expect(status).to_contain_text("Connection: good.")
    assert badge(aziz) == "good"
    wire.quality(1, "Your connection is slow: people far from you move 1 time a second.")
    aziz.wait_for_function("window.amaliy.link.badge === 'reduced'", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("Connection: reduced. Your connection is slow")
    screenshot(aziz, "desktop-reduced")
    wire.quality(2, "Your connection is very slow: hands are not shown.")
    aziz.wait_for_function("window.amaliy.link.badge === 'weak'", timeout=TIMEOUT_MS)
    aziz.set_viewport_size(PHONE)
    screenshot(aziz, "phone-weak")
    shown = aziz.locator("#link-badge").bounding_box()
    assert shown and 0 <= shown["x"] and shown["x"] + shown["width"] <= PHONE["width"]
    for other in (aziz.get_by_role("button", name="Leave"), aziz.locator("#voice-bar")):
        assert apart(shown, other.bounding_box()), other  # never over Leave or the voice bar

    # The room stops reaching the page (the socket still open): the badge says so before the
    # page gives the socket up, and shows a level again once frames flow (the server may have
    # stepped the link down meanwhile: its acks stopped).
    wire.holding = True
    aziz.wait_for_function("window.amaliy.link.badge === 'no updates'", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("Nothing has come from the practical")
    screenshot(aziz, "phone-no-updates")
    assert aziz.evaluate("window.amaliy.state") == "connected"
    wire.holding = False
    aziz.wait_for_function("['good', 'reduced', 'weak'].includes(window.amaliy.link.badge)", timeout=TIMEOUT_MS)


def test_a_page_joins_an_older_server_and_moves_with_a_v2_page(server, open_page) -> None:
    link = f"{server.base_url}/?code={server.demo_code}"
    dilnoza, eldor = open_page(link, "dilnoza"), open_page(link, "eldor")
    old = Wire(dilnoza, refuse_protocol=True)
    dilnoza_id, eldor_id = join_as(dilnoza, "Dilnoza"), join_as(eldor, "Eldor")

    # Refused the field, the page joined again without it and speaks version 1, and acks nothing.
    # An older server sends no `quality` either, and then the badge stays hidden.
    joins = old.json_sent("join")
    assert "protocol" in joins[0] and "protocol" not in joins[1]
    assert dilnoza.evaluate("window.amaliy.link.protocol") == 1
    if not old.json_received("quality"):
        expect(dilnoza.locator("#link-badge")).to_be_hidden()

    # Each sees the other walk: version 1 poses and ticks one side, version 2 the other.
    for walker, watcher, walker_id in ((dilnoza, eldor, dilnoza_id), (eldor, dilnoza, eldor_id)):
        watcher.wait_for_function("id => id in window.amaliy.avatars", arg=walker_id, timeout=TIMEOUT_MS)
        start = watcher.evaluate("id => window.amaliy.avatars[id].position", walker_id)
        walker.evaluate("window.amaliy.moveBy(0.5, 0, -0.4)")
        watcher.wait_for_function(
            """([id, x, z]) => { const q = window.amaliy.avatars[id]?.position;
                                  return q && Math.hypot(q[0] - x, q[2] - z) < 0.01; }""",
            arg=[walker_id, start[0] + 0.5, start[2] - 0.4],
            timeout=TIMEOUT_MS,
        )
    sent = old.binary(old.sent)
    assert sent and all(m[0] in (p.BinaryKind.POSE, p.BinaryKind.OBJECT_MOVE) for m in sent)
    assert all(m[0] == p.BinaryKind.TICK for m in old.binary(old.received))
    assert not old.json_sent("ack")
