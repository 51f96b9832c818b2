"""Driving the web client in a tab: the steps several browser tests share."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from playwright.sync_api import Page, WebSocket

#: Longest wait for anything a joined page should do on its own, ms.
TIMEOUT_MS = 10_000
#: Longest wait for a tab to load the lab and join, ms. Headless Chromium draws WebGL on the CPU
#: (SwiftShader), where compiling the lighting shaders takes seconds on a busy two-core machine.
START_TIMEOUT_MS = 30_000


def join_as(page: Page, name: str) -> str:
    """Fill in the student form, wait until the lab is up and joined; returns the participant id."""
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    return page.evaluate("window.amaliy.me.id")


def two_students(base_url: str, code: str, open_page: Callable[[str, str], Page]) -> tuple[Page, Page, str, str]:
    """Aziz and Bobur join the practical in two tabs; returns both pages and their ids."""
    link = f"{base_url}/?code={code}"
    aziz, bobur = open_page(link, "aziz"), open_page(link, "bobur")
    return aziz, bobur, join_as(aziz, "Aziz"), join_as(bobur, "Bobur")


def nearest(page: Page, prefix: str) -> str:
    """The id of the object whose id starts with ``prefix`` nearest to where the student stands:
    in a lab of stations (``beaker-water@1``, ``beaker-water@2``...), the one on their own bench."""
    found = page.evaluate(
        """prefix => {
            const [x, , z] = window.amaliy.position;
            const away = ([, o]) => Math.hypot(o.position[0] - x, o.position[2] - z);
            const near = Object.entries(window.amaliy.objects).filter(([id]) => id.startsWith(prefix));
            near.sort((a, b) => away(a) - away(b));
            return near.length ? near[0][0] : null;
        }""",
        prefix,
    )
    assert found is not None, f"no object {prefix}* in the lab"
    return found


def record_sent(ws: WebSocket, into: list[tuple[str, Any]], phase: list[str]) -> None:
    """Keep what the page sends on ``ws`` (a JSON message's type, or "binary"), with the phase it went out in."""

    def keep(payload: str | bytes) -> None:
        into.append((phase[0], json.loads(payload)["type"] if isinstance(payload, str) else "binary"))

    ws.on("framesent", keep)


def wait_until(page: Page, check: Callable[[], bool], what: str) -> None:
    """Poll a condition the test sees (not one wait_for_function can: a promise, or state in the
    test) while the page's events, a socket route's too, run."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        page.wait_for_timeout(50)
