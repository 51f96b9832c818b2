"""The XR paths with a scripted device: there is no headset or AR phone in CI.

Headless Chromium has no WebXR device, so fake_xr.js (injected before the
page's scripts) stands in for one: navigator.xr offers the modes a test asks
for, and the test moves the viewer, says where the hit test finds a surface
and moves tracked hands. three.js, xr.js, ar.js and hands.js run as they
would on a device; what the device's runtime would do (tracking, hit
testing, drawing to the headset) is the script's.

- AR: "Enter AR" shows only where immersive-ar is offered; the first surface
  found puts the lab on it at table-top scale (a metre across), and the head
  pose the room gets stays in lab coordinates: brought back through the
  table-top transform it is where the device is. A finger on the screen
  picks up a beaker of the small lab and puts it down on its bench. Leaving
  AR gives the student their own place back.
- Hands: in a VR session with a tracked hand, a pinch at a beaker picks it
  up, the beaker follows the hand, and opening the fingers over the bench
  puts it down there.

What the room says comes from an observer (the Python SDK).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import VIEWPORT
from tests.browser.tabs import TIMEOUT_MS, join_as, wait_until
from tests.browser.test_phone_controls import head
from tests.browser.test_placing import free_bench_spot, horizontal, nearest, position, practical  # noqa: F401

pytestmark = pytest.mark.browser

FAKE_XR = (Path(__file__).parent / "fake_xr.js").read_text()
#: Where the fake hit test finds the table: 60 cm ahead of the device, 75 cm above the floor.
TABLE = [0.0, 0.75, -0.6]
#: The phone held 45 cm above the table, 60 cm back from the spot, looking down at it.
PHONE_AT = [0.0, 1.2, 0.0]
PHONE_PITCH = -math.atan2(PHONE_AT[1] - TABLE[1], PHONE_AT[2] - TABLE[2])
#: Where the wrist is from the pinch point, metres (right, up, back).
WRIST = (0.03, -0.02, 0.09)


@pytest.fixture
def xr_page(browser: Browser, server) -> Callable[[str, list[str]], Page]:
    """A tab whose navigator.xr is the scripted device offering `modes`; errors on it fail the test."""
    contexts = []
    problems: list[str] = []

    def open_tab(code: str, modes: list[str]) -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        context.add_init_script(f"window.FAKE_XR_MODES = {modes!r};\n{FAKE_XR}")
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
        page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error {msg.text}"))
        page.goto(f"{server.base_url}/?code={code}")
        return page

    yield open_tab
    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)


def to_rig(page: Page, point: Sequence[float]) -> list[float]:
    """A lab point in the device's real space (the session's reference space)."""
    return page.evaluate("p => window.amaliy.toRig(...p)", list(point))


def test_ar_puts_the_lab_on_the_table_and_poses_stay_in_lab_space(practical, xr_page, screenshot) -> None:  # noqa: F811
    code, observer = practical()
    page = xr_page(code, ["immersive-ar"])
    me = join_as(page, "Malika")
    expect(page.get_by_role("button", name="Enter AR")).to_be_visible()
    expect(page.get_by_role("button", name="Enter VR")).to_have_count(0)
    wait_until(page, lambda: head(observer, me) is not None, "the room has the student's pose")
    standing = head(observer, me)

    page.evaluate("([at, pitch, table]) => { fakeXR.setViewer(at, pitch); fakeXR.setHit(table); }", [PHONE_AT, PHONE_PITCH, TABLE])
    page.get_by_role("button", name="Enter AR").click()
    page.wait_for_function("window.amaliy.tableTop !== null", timeout=TIMEOUT_MS)
    session = page.evaluate("fakeXR.session")
    assert session["mode"] == "immersive-ar" and "hit-test" in session["features"], session
    assert page.evaluate("document.body.dataset.input") == "xr"
    placed = page.evaluate("window.amaliy.tableTop")
    assert placed["surface"] == pytest.approx(TABLE, abs=1e-6)
    assert 0.02 < placed["scale"] < 0.5, f"the lab is not shrunk to a table top: {placed}"
    assert page.evaluate("fakeXR.hitSources.every((s) => s.cancelled)"), "the hit test source was kept after placing"
    # The lab's floor is on the table: the lab's lowest point is at the table's height.
    assert to_rig(page, [0, 0, 0])[1] == pytest.approx(TABLE[1], abs=0.02)
    screenshot(page, "table-top")

    # The room gets the head in lab coordinates: where the device is, through the table-top transform.
    def device_in_room() -> bool:
        pose = head(observer, me)
        return pose is not None and math.dist(to_rig(page, pose[:3]), PHONE_AT) < 0.005

    wait_until(page, device_in_room, "the room has the AR head pose in lab coordinates")
    lab_head = head(observer, me)
    assert lab_head[1] == pytest.approx((PHONE_AT[1] - TABLE[1]) / placed["scale"], rel=0.05), f"the head pose is not in lab space: {lab_head}"

    # The phone moves 10 cm to the right over the table: in the lab, that is 10 cm over the scale.
    page.evaluate("([at, pitch]) => fakeXR.setViewer(at, pitch)", [[PHONE_AT[0] + 0.1, PHONE_AT[1], PHONE_AT[2]], PHONE_PITCH])
    wait_until(page, lambda: math.dist(head(observer, me)[:3], lab_head[:3]) > 0.09 / placed["scale"], "the room sees the AR head move")
    moved = head(observer, me)
    assert math.dist(moved[:3], lab_head[:3]) == pytest.approx(0.1 / placed["scale"], rel=0.05)

    # A finger on the screen at a beaker picks it up; sliding to free bench and lifting puts it there.
    objects = observer.objects()
    beaker = nearest(objects, standing[:3], lambda o: o["interactable"] and "beaker" in o["title"].lower())  # on the student's own bench
    start = position(beaker)
    spot = free_bench_spot(objects, beaker["id"], start)
    phone = [PHONE_AT[0] + 0.1, PHONE_AT[1], PHONE_AT[2]]
    page.evaluate("([from, to]) => fakeXR.touchDown(from, to)", [phone, to_rig(page, [start[0], start[1] + 0.05, start[2]])])
    observer.wait_for(f"{me} holds {beaker['id']} after a tap in AR", lambda room: room.objects[beaker["id"]]["holder"] == me)
    page.evaluate("([from, to]) => fakeXR.touchMove(from, to)", [phone, to_rig(page, spot)])
    page.wait_for_function(
        "([id, x, z]) => { const g = window.amaliy.ghosts[id]; return g && Math.hypot(g.position[0] - x, g.position[2] - z) < 0.02; }",
        arg=[beaker["id"], spot[0], spot[2]],
        timeout=TIMEOUT_MS,
    )
    page.evaluate("fakeXR.touchUp()")
    observer.wait_for(
        f"{beaker['id']} was put down at {spot} in AR",
        lambda room: room.objects[beaker["id"]]["holder"] is None and horizontal(position(room.objects[beaker["id"]]), spot) < 0.02,
    )
    assert abs(position(observer.objects()[beaker["id"]])[1] - start[1]) < 0.005, "the beaker did not land on the bench top"

    # Leaving AR puts the student back where they stood, at their own size.
    page.get_by_role("button", name="Exit AR").click()
    page.wait_for_function("window.amaliy.tableTop === null && document.body.dataset.input !== 'xr'", timeout=TIMEOUT_MS)
    wait_until(page, lambda: math.dist(head(observer, me)[:3], standing[:3]) < 0.01, "the room sees the student back where they stood")


def test_pinch_picks_up_and_opening_puts_down(practical, xr_page, screenshot) -> None:  # noqa: F811
    code, observer = practical()
    page = xr_page(code, ["immersive-vr"])
    me = join_as(page, "Jasur")
    objects = observer.objects()
    standing = page.evaluate("window.amaliy.position")
    beaker = nearest(objects, standing, lambda o: o["interactable"] and "beaker" in o["title"].lower())
    start = position(beaker)
    spot = free_bench_spot(objects, beaker["id"], start)

    page.evaluate("fakeXR.setViewer([0, 1.6, 0], -0.6)")  # the headset looks down at the bench
    page.get_by_role("button", name="Enter VR").click()
    page.wait_for_function("document.body.dataset.input === 'xr'", timeout=TIMEOUT_MS)

    def hand(at_lab: Sequence[float], gap: float) -> None:
        """The right hand with its pinch point at a lab point, thumb and index tips `gap` metres apart."""
        x, y, z = to_rig(page, at_lab)
        joints = {"wrist": [x + WRIST[0], y + WRIST[1], z + WRIST[2]], "thumb-tip": [x - gap / 2, y, z], "index-finger-tip": [x + gap / 2, y, z]}
        page.evaluate("joints => fakeXR.setHand('right', joints)", joints)

    rim = [start[0], start[1] + 0.08, start[2]]  # at the beaker's rim
    hand(rim, 0.06)
    page.wait_for_function("fakeXR.session.inputs === 1", timeout=TIMEOUT_MS)
    page.wait_for_timeout(200)  # a few frames of an open hand: nothing is picked up
    assert observer.objects()[beaker["id"]]["holder"] is None

    hand(rim, 0.01)  # pinch
    observer.wait_for(f"{me} holds {beaker['id']} after a pinch", lambda room: room.objects[beaker["id"]]["holder"] == me)

    # The beaker follows the hand; the room sees the hand tracked where the wrist is.
    lifted = [spot[0], spot[1] + 0.08 + 0.15, spot[2]]
    hand(lifted, 0.01)
    observer.wait_for(
        f"{beaker['id']} follows the hand over {spot}",
        lambda room: horizontal(position(room.objects[beaker["id"]]), spot) < 0.01 and position(room.objects[beaker["id"]])[1] > start[1] + 0.1,
    )
    right = observer.read(lambda room: [float(v) for v in room.poses[me][14:17]])
    wrist = [a + b for a, b in zip(to_rig(page, lifted), WRIST)]
    assert math.dist(to_rig(page, right), wrist) < 0.005, f"the room does not see the right hand at the wrist: {right}"
    screenshot(page, "pinched")

    hand([spot[0], spot[1] + 0.08, spot[2]], 0.06)  # open the fingers just over the bench
    observer.wait_for(
        f"{beaker['id']} was put down at {spot}",
        lambda room: room.objects[beaker["id"]]["holder"] is None and horizontal(position(room.objects[beaker["id"]]), spot) < 0.01,
    )
    landed = position(observer.objects()[beaker["id"]])
    assert abs(landed[1] - start[1]) < 0.005, f"landed at {landed}, not on the bench top"
