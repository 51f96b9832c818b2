"""A student with only a keyboard: Tab to the 3D view, look with the arrow keys,
pick up with G, put down with Enter, and hear what is near.

The room's side comes from an observer (the Python SDK): the student's head
as the server has it, who holds what and where it lies. The live region's
words are read as a screen reader would get them (its text), and the ghost
hook says where a put-down would land. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import TIMEOUT_MS, wait_until
from tests.browser.test_phone_controls import head, heading
from tests.browser.test_placing import horizontal, position, practical  # noqa: F401

pytestmark = pytest.mark.browser

#: "Near you: Beaker (water) (1 m, ahead), Tall flask (0.6 m, left)."
NEAR = re.compile(r"Near you: .+ \((\d+|0\.\d) m, (ahead|left|right|behind)\)")


def held_by(observer: ThreadedClient, me: str) -> list[str]:
    return [o["id"] for o in observer.objects().values() if o["holder"] == me]


def test_tab_look_pick_up_and_put_down_with_keys(practical, server, open_page, screenshot: Callable[[Page, Any], Any]) -> None:  # noqa: F811
    code, observer = practical()
    page = open_page(f"{server.base_url}/?code={code}", "keyboard")
    page.get_by_label("Your name").fill("Sardor")
    page.keyboard.press("Enter")
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=30_000)
    me = page.evaluate("window.amaliy.me.id")

    # Joining leaves the keyboard in the 3D view, which says what the keys do; it is the first stop of Tab.
    view = page.locator("#viewport canvas")
    expect(view).to_be_focused()
    page.keyboard.press("Tab")
    expect(view).not_to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(view).to_be_focused()
    assert page.evaluate(
        "() => [...document.querySelectorAll('button, input, select, textarea, [tabindex]')].find((e) => e.tabIndex >= 0 && e.checkVisibility())"
        " === document.querySelector('#viewport canvas')"
    ), "something comes before the 3D view in the Tab order"
    expect(view).to_have_attribute("aria-label", re.compile("arrow keys to look.*G to pick up", re.I))
    region = page.locator("#nearby")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text(NEAR, timeout=TIMEOUT_MS)
    assert not region.is_visible() or region.bounding_box()["width"] <= 1, "the live region is for screen readers only"
    screenshot(page, "focused")

    # Left arrow turns left; right arrow turns back.
    wait_until(page, lambda: head(observer, me) is not None, "the room has the student's pose")
    facing = heading(head(observer, me))
    page.keyboard.down("ArrowLeft")
    wait_until(page, lambda: heading(head(observer, me)) - facing > 0.4, "the room sees the student turn left")
    page.keyboard.up("ArrowLeft")
    page.keyboard.down("ArrowRight")
    wait_until(page, lambda: heading(head(observer, me)) - facing < 0.05, "the room sees the student turn back")
    page.keyboard.up("ArrowRight")

    # G picks up what is in front; the live region says it is held.
    page.keyboard.press("g")
    wait_until(page, lambda: len(held_by(observer, me)) == 1, "the room sees the student hold something")
    held = held_by(observer, me)[0]
    title = observer.objects()[held]["title"]
    expect(region).to_contain_text(f"Holding {title}.", timeout=TIMEOUT_MS)

    # Down arrow tilts the head until the middle of the view is on the bench top, and Enter puts it there.
    page.keyboard.down("ArrowDown")
    page.wait_for_function(
        "id => { const g = window.amaliy.ghosts[id]; return g && g.position[1] > 0.85 && g.position[1] < 0.95; }", arg=held, timeout=TIMEOUT_MS
    )
    page.keyboard.up("ArrowDown")
    ghost = page.evaluate("id => window.amaliy.ghosts[id]", held)
    screenshot(page, "aiming")
    page.keyboard.press("Enter")
    observer.wait_for(
        f"{held} was put down where the view's middle showed",
        lambda room: room.objects[held]["holder"] is None and horizontal(position(room.objects[held]), ghost["position"]) < 0.03,
    )
    landed = position(observer.objects()[held])
    assert 0.85 < landed[1] < 0.95, f"{held} landed at {landed}, not on the bench top"
    expect(region).not_to_contain_text("Holding", timeout=TIMEOUT_MS)
    screenshot(page, "put-down")
