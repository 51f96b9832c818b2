"""A student on a phone (390 x 844, touch only) walks, looks, picks up and puts down.

The page is a touch-emulating phone tab: no mouse, no keys. The thumb on the
on-screen stick walks, a finger dragged on the 3D view looks around, a tap on
a beaker picks it up and a tap on the bench puts it down there. Every outcome
is read from the room through an observer (the Python SDK): the student's
head pose as the server has it, and who holds the beaker and where it lies.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import pytest
from playwright.sync_api import Browser, CDPSession, Page, expect

from scenes.quaternions import rotate
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import join_as, wait_until
from tests.browser.test_placing import AIM_TOLERANCE, free_bench_spot, horizontal, nearest, position, practical  # noqa: F401

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 1}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A phone tab; an uncaught exception or console error on it fails the test."""
    context = browser.new_context(**PHONE)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error {msg.text}"))
    yield page
    context.close()
    assert not problems, "\n".join(problems)


class Finger:
    """One finger on the touch screen, through Chromium's own touch input (CDP), as a phone sends it."""

    def __init__(self, page: Page, touch_id: int = 1) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.page = page
        self.id = touch_id

    def down(self, x: float, y: float) -> None:
        self._send("touchStart", x, y)

    def move(self, x: float, y: float) -> None:
        self._send("touchMove", x, y)

    def up(self) -> None:
        self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    def drag(self, start: Sequence[float], end: Sequence[float], steps: int = 12) -> None:
        self.down(*start)
        for i in range(1, steps + 1):
            t = i / steps
            self.move(start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
            self.page.wait_for_timeout(16)  # one frame apart, as a finger moves
        self.up()

    def _send(self, kind: str, x: float, y: float) -> None:
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y, "id": self.id}]})


def head(observer: ThreadedClient, me: str) -> list[float] | None:
    pose = observer.read(lambda room: room.poses.get(me))
    return None if pose is None else [float(v) for v in pose[:7]]


def heading(pose: Sequence[float]) -> float:
    """Which way the head faces about the vertical, radians (0 is -z, the WebXR forward)."""
    forward = rotate(pose[3:7], [0.0, 0.0, -1.0])
    return math.atan2(-forward[0], -forward[2])


def screen_point(page: Page, point: Sequence[float]) -> list[float] | None:
    """Where a lab point is on the phone's screen, or None if it is off it."""
    at = page.evaluate("p => window.amaliy.screenPoint(...p)", list(point))
    inside = at is not None and 0 <= at[0] <= PHONE["viewport"]["width"] and 0 <= at[1] <= PHONE["viewport"]["height"]
    return at if inside else None


def on_screen(page: Page, point: Sequence[float]) -> list[float]:
    at = screen_point(page, point)
    assert at is not None, f"{point} is not on the phone's screen"
    return at


def grip_point(obj: dict[str, Any]) -> list[float]:
    """Halfway up a beaker's glass, where a finger taps it."""
    x, y, z = position(obj)
    return [x, y + 0.05, z]


def test_walk_look_pick_up_and_put_down_by_touch(practical, phone: Page, server, screenshot: Callable[[Page, str], Any]) -> None:  # noqa: F811
    code, observer = practical()
    phone.goto(f"{server.base_url}/?code={code}")
    me = join_as(phone, "Dilnoza")
    assert phone.evaluate("document.body.dataset.input") == "touch"
    stick = phone.locator(".stick")
    expect(stick).to_be_visible()
    wait_until(phone, lambda: head(observer, me) is not None, "the room has the student's pose")
    start = head(observer, me)
    screenshot(phone, "arrived")
    # Held upright, the phone starts with the bench's equipment in view between the panels, not under them.
    objects = observer.objects()
    standing = phone.evaluate("window.amaliy.position")
    first = nearest(objects, standing, lambda o: "beaker" in o["title"].lower() and o["interactable"])
    seen = on_screen(phone, grip_point(first))
    top, bottom = phone.locator("#voice-bar").bounding_box(), phone.locator("#help").bounding_box()
    assert top is not None and bottom is not None
    assert top["y"] + top["height"] < seen[1] < bottom["y"], f"the nearest beaker is at {seen}, not between the voice bar {top} and the help {bottom}"

    # The thumb pulls the stick back: the student walks backwards, away from the bench.
    box = stick.bounding_box()
    assert box is not None and box["x"] < 100 and box["y"] + box["height"] > PHONE["viewport"]["height"] - 200, f"the stick is not at the bottom left: {box}"
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    thumb = Finger(phone, touch_id=1)
    thumb.down(*middle)
    thumb.move(middle[0], middle[1] + 40)
    screenshot(phone, "stick-pulled")
    wait_until(phone, lambda: (head(observer, me) or start)[2] - start[2] > 0.4, "the room sees the student walk back 0.4 m")
    thumb.up()
    walked = head(observer, me)
    assert abs(walked[0] - start[0]) < 0.05, f"pulling straight back walked sideways: {start} -> {walked}"
    assert abs(heading(walked) - heading(start)) < 1e-3, "walking turned the student"

    # A finger dragged right to left across the view turns the student to the left, and back; a
    # swipe across the whole phone turns by about a view and a half, not round past the bench.
    finger = Finger(phone, touch_id=2)
    turn = 310 * phone.evaluate("window.amaliy.view.touchLookSpeed")
    assert 0.5 < turn < 1.2, f"a swipe across the screen turns {turn:.2f} rad"
    finger.drag((350, 400), (40, 400))
    wait_until(phone, lambda: abs(heading(head(observer, me)) - heading(walked) - turn) < 0.02, f"the room sees the student turn {turn:.2f} rad left")
    screenshot(phone, "looked-left")
    finger.drag((40, 400), (350, 400))
    wait_until(phone, lambda: abs(heading(head(observer, me)) - heading(walked)) < 0.02, "the room sees the student face the bench again")

    # A tap on the nearest beaker picks it up.
    objects = observer.objects()
    standing = phone.evaluate("window.amaliy.position")
    beaker = nearest(objects, standing, lambda o: "beaker" in o["title"].lower() and o["interactable"] and screen_point(phone, grip_point(o)) is not None)
    phone.touchscreen.tap(*on_screen(phone, grip_point(beaker)))
    observer.wait_for(f"{me} holds {beaker['id']}", lambda room: room.objects[beaker["id"]]["holder"] == me)
    screenshot(phone, "holding")
    # Its ghost shows where the middle of the view aims (straight below it, here on the floor in
    # front of the bench), not where the finger lifted, where the beaker was.
    ghost = phone.evaluate("id => window.amaliy.ghosts[id]", beaker["id"])
    assert ghost is not None, "no ghost of the held beaker"
    seen = on_screen(phone, ghost["position"])
    assert abs(seen[0] - PHONE["viewport"]["width"] / 2) < 20, f"the ghost is at {seen} on the screen, not below its middle"
    assert horizontal(ghost["position"], position(beaker)) > 0.05, f"the ghost stayed where the beaker was: {ghost}"

    # A tap on free bench puts it down there.
    spot = free_bench_spot(objects, beaker["id"], position(beaker))
    phone.touchscreen.tap(*on_screen(phone, spot))
    observer.wait_for(
        f"{beaker['id']} was put down at {spot}",
        lambda room: room.objects[beaker["id"]]["holder"] is None and horizontal(position(room.objects[beaker["id"]]), spot) < AIM_TOLERANCE,
    )
    landed = position(observer.objects()[beaker["id"]])
    assert abs(landed[1] - spot[1]) < 0.005, f"landed at {landed}, not on the bench top"
    screenshot(phone, "put-down")


def look_at(page: Page, finger: "Finger", point: Sequence[float]) -> None:
    """Drag on the view until ``point`` is in its middle, as a student turns to look at something."""
    width, height = PHONE["viewport"]["width"], PHONE["viewport"]["height"]
    view = page.evaluate("window.amaliy.view")
    focal = (height / 2) / math.tan(math.radians(view["fov"]) / 2)
    for _ in range(8):
        x, y = page.evaluate("p => window.amaliy.screenPoint(...p)", list(point))
        dx, dy = x - width / 2, y - height / 2
        # a finger's drag of d pixels turns by d * touchLookSpeed: turn by the angle the point is off by
        drag_x = math.atan2(dx, focal) / view["touchLookSpeed"]
        drag_y = math.atan2(dy, focal) / view["touchLookSpeed"]
        if math.hypot(drag_x, drag_y) < 10:  # near enough; a shorter drag would be a tap (CLICK_SLOP_PX)
            return
        finger.drag((width / 2, 420), (width / 2 + drag_x, 420 + drag_y))
    raise AssertionError(f"{point} did not come to the middle of the view")


def test_a_phone_pours_by_holding_the_pour_button(practical, phone: Page, server, screenshot: Callable[[Page, str], Any]) -> None:  # noqa: F811
    code, observer = practical()
    phone.goto(f"{server.base_url}/?code={code}")
    me = join_as(phone, "Shahlo")
    wait_until(phone, lambda: head(observer, me) is not None, "the room has the student's pose")
    pour = phone.locator("#pour")
    expect(pour).to_be_hidden()  # nothing held: nothing to pour

    objects = observer.objects()
    standing = phone.evaluate("window.amaliy.position")
    beaker = nearest(objects, standing, lambda o: o["id"].startswith("beaker-water@") and screen_point(phone, grip_point(o)) is not None)
    flask = beaker["id"].replace("beaker-water", "flask")
    assert observer.read(lambda room: room.lab.value(flask, "filled")) is False
    look_at(phone, Finger(phone, touch_id=2), grip_point(beaker))  # in the middle, clear of the panels
    phone.touchscreen.tap(*on_screen(phone, grip_point(beaker)))
    observer.wait_for(f"{me} holds {beaker['id']}", lambda room: room.objects[beaker["id"]]["holder"] == me)
    expect(pour).to_be_visible()
    box = pour.bounding_box()
    stick = phone.locator(".stick").bounding_box()
    assert box is not None and stick is not None and box["x"] > stick["x"] + stick["width"], f"Pour {box} is not right of the stick {stick}"
    assert box["width"] >= 44 and box["height"] >= 44, f"Pour is too small for a thumb: {box}"

    # Look at the flask, hold Pour: the beaker tips over beside it and the room fills the flask.
    x, y, z = position(objects[flask])
    look_at(phone, Finger(phone, touch_id=2), [x, y + 0.1, z])
    screenshot(phone, "aimed")
    box = pour.bounding_box()  # where it is now: the column moves as panels come and go
    assert box is not None
    thumb = Finger(phone, touch_id=3)
    thumb.down(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(phone, lambda: phone.evaluate("window.amaliy.pouring"), "the page pours while Pour is held")
    expect(pour).to_have_attribute("aria-pressed", "true")
    observer.wait_for(f"{flask} is filled", lambda room: room.lab.value(flask, "filled") is True)
    screenshot(phone, "pouring")
    thumb.up()

    # Let go: the beaker is back in the hand, upright.
    wait_until(phone, lambda: not phone.evaluate("window.amaliy.pouring"), "the page stops pouring")
    expect(pour).to_have_attribute("aria-pressed", "false")
    observer.wait_for(
        f"{beaker['id']} is upright in the hand again",
        lambda room: room.objects[beaker["id"]]["holder"] == me and rotate(room.objects[beaker["id"]]["transform"][3:7], [0.0, 1.0, 0.0])[1] > 0.99,
    )


def test_a_phone_switches_the_burner_from_the_equipment_panel_as_its_help_says(practical, phone: Page, server, screenshot: Callable[[Page, str], Any]) -> None:  # noqa: F811
    code, observer = practical()
    phone.goto(f"{server.base_url}/?code={code}")
    me = join_as(phone, "Shahlo")
    wait_until(phone, lambda: head(observer, me) is not None, "the room has the student's pose")
    objects = observer.objects()
    standing = phone.evaluate("window.amaliy.position")
    burner = nearest(objects, standing, lambda o: o["id"].startswith("burner@"))["id"]
    phone.evaluate("id => window.amaliy.select(id)", burner)
    panel = phone.locator("#properties")
    expect(panel.locator(".property-hint")).to_have_text("Tap the switch here to turn it.", use_inner_text=True)  # no keys on a phone
    panel.get_by_role("switch").tap()
    observer.wait_for(f"{burner} is lit", lambda room: room.lab.value(burner, "lit") is True)
    expect(panel.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    screenshot(phone, "burner-lit")


def test_leave_asks_first_so_a_stray_tap_keeps_the_student_in(practical, phone: Page, server, screenshot: Callable[[Page, str], Any]) -> None:  # noqa: F811
    code, observer = practical()
    phone.goto(f"{server.base_url}/?code={code}")
    me = join_as(phone, "Shahlo")
    observer.wait_for(f"{me} is in", lambda room: me in room.participants)
    ask = phone.locator("#leave-confirm")
    mute = phone.locator("#voice-mute").bounding_box()
    phone.locator("#leave").tap()  # meant for Mute, just below
    expect(ask).to_be_visible()
    expect(ask.get_by_role("button", name="Stay")).to_be_focused()
    assert phone.locator("#voice-mute").bounding_box() == mute  # the question moves nothing under the thumb
    screenshot(phone, "leave-asks")
    ask.get_by_role("button", name="Stay").tap()
    expect(ask).to_be_hidden()
    phone.locator("#leave").tap()
    phone.keyboard.press("Escape")  # a keyboard's way to stay
    expect(ask).to_be_hidden()
    assert phone.evaluate("window.amaliy.state") == "connected" and observer.read(lambda room: me in room.participants)

    phone.locator("#leave").tap()
    ask.get_by_role("button", name="Leave").tap()
    observer.wait_for(f"{me} left", lambda room: me not in room.participants)
