"""Driving the web client in a tab: the steps several browser tests share."""

from __future__ import annotations

from playwright.sync_api import Page

#: Longest wait for anything the page should do on its own, ms (a loaded CI box is slow at WebGL).
TIMEOUT_MS = 10_000


def join_as(page: Page, name: str) -> str:
    """Fill in the student form, wait until the lab is up and joined; returns the participant id."""
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=TIMEOUT_MS)
    return page.evaluate("window.amaliy.me.id")
