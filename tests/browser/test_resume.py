"""A dropped tab comes back as the same participant and catches up on what it missed.

The student's room socket is routed through Playwright so the test can cut it
like a flaky school Wi-Fi would; the page must reconnect by itself with its
token and ``last_seq``, keep its identity and the beaker it holds, and learn of
the grab that happened while it was away from the server's replay.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import WebSocket, WebSocketRoute, expect

from tests.browser.tabs import TIMEOUT_MS, join_as, nearest

pytestmark = pytest.mark.browser


def record(ws: WebSocket, kind: str, event: str, into: list[dict[str, Any]]) -> None:
    """Keep every JSON message of type ``kind`` the page sends or receives on ``ws``."""

    def keep(payload: str | bytes) -> None:
        if isinstance(payload, str) and (message := json.loads(payload))["type"] == kind:
            into.append(message)

    ws.on(event, keep)


def test_dropped_tab_resumes_with_identity_holds_and_missed_events(server, open_page, screenshot) -> None:
    student_link = f"{server.base_url}/?code={server.demo_code}"
    dilnoza = open_page(student_link, "dilnoza")
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def route(page_side: WebSocketRoute) -> None:
        sockets.append((page_side, page_side.connect_to_server()))  # passes everything through, both ways

    dilnoza.route_web_socket(lambda url: url.endswith("/room"), route)
    joins: list[dict[str, Any]] = []
    welcomes: list[dict[str, Any]] = []
    dilnoza.on("websocket", lambda ws: (record(ws, "join", "framesent", joins), record(ws, "welcome", "framereceived", welcomes)))
    eldor = open_page(student_link, "eldor")
    dilnoza_id = join_as(dilnoza, "Dilnoza")
    eldor_id = join_as(eldor, "Eldor")
    hers, his = nearest(dilnoza, "beaker-water@"), nearest(eldor, "beaker-water@")  # each on their own bench
    dilnoza.evaluate("id => window.amaliy.grab(id)", hers)
    dilnoza.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[hers, dilnoza_id], timeout=TIMEOUT_MS)

    # The network drops, and Eldor grabs a beaker while Dilnoza is away (her tab waits 0.5 s before retrying).
    page_side, server_side = sockets[0]
    page_side.close(code=1001, reason="network went away")
    server_side.close()
    eldor.evaluate("id => window.amaliy.grab(id)", his)
    eldor.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[his, eldor_id], timeout=TIMEOUT_MS)

    # Dilnoza's tab reconnects by itself with the same token, asking to resume after the
    # last event it had seen, and gets a replay of what it missed rather than a fresh snapshot.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(welcomes) < 2 and time.monotonic() < deadline:
        dilnoza.wait_for_timeout(50)
    dilnoza.wait_for_function("window.amaliy.state === 'connected'", timeout=TIMEOUT_MS)
    assert len(sockets) == 2 and joins[1]["token"] == joins[0]["token"]
    assert "last_seq" not in joins[0] and joins[1]["last_seq"] >= welcomes[0]["seq"]
    assert welcomes[1]["resumed"] and "snapshot" not in welcomes[1] and welcomes[1]["replayed"] >= 1

    # Same participant, still holding her beaker, and she knows about Eldor's grab.
    assert dilnoza.evaluate("window.amaliy.me.id") == dilnoza_id
    dilnoza.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[his, eldor_id], timeout=TIMEOUT_MS)
    assert dilnoza.evaluate("id => window.amaliy.objects[id].holder", hers) == dilnoza_id
    eldor.wait_for_function("id => window.amaliy.participants[id]?.connected === true", arg=dilnoza_id, timeout=TIMEOUT_MS)
    expect(dilnoza.locator("#hud-state")).to_have_text("connected")
    screenshot(dilnoza, "dilnoza-back")
