"""A student handles the lab as a new user expects, in a real tab against a real server.

Pointing at a beaker shows its title; a beaker picked up and pointed at a spot
on the bench shows its ghost there and lands there when put down (on the bench
top, not on the floor under the hand); walking at the bench stops short of it;
near another object's snap point the ghost and the put-down take the snap pose.

The student uses only the mouse and the keyboard. What the room says comes
from the server through an observer (the Python SDK): which objects there are,
their titles, where they are, and where the student stands. The page's
``window.amaliy`` hooks only say where a lab point is on screen, what is
highlighted and where the ghost is. The tests find the beaker and the bench
from the room's snapshot (titles and positions), never by fixed ids.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Sequence

import pytest
from playwright.sync_api import Page, expect

from scenes.quaternions import multiply, rotate
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import TIMEOUT_MS, join_as

pytestmark = pytest.mark.browser

Objects = dict[str, dict[str, Any]]

#: How close the put-down must come to the point aimed at, metres (a pixel is about 3 mm at the bench).
AIM_TOLERANCE = 0.02
#: Free bench around the spot the beaker is put on, metres, so nothing else is hit or snapped to.
CLEARANCE = 0.15


@pytest.fixture
def practical(server) -> Callable[[str], tuple[str, ThreadedClient]]:
    """Open a fresh practical of a sample lab; returns its join code and an observer in it."""
    observers: list[ThreadedClient] = []

    def open_practical(scene: str = "chemistry-bench") -> tuple[str, ThreadedClient]:
        with server.http() as http:
            response = http.post("/api/sessions", json={"scene": scene}, headers={"Authorization": f"Bearer {server.teacher_key}"})
            response.raise_for_status()
            code = response.json()["join_code"]
        observers.append(ThreadedClient(server.base_url, code, "Watcher", role="observer"))
        return code, observers[-1]

    yield open_practical
    for observer in observers:
        observer.close()


@pytest.fixture
def student(server, open_page) -> Callable[[str], tuple[Page, str]]:
    def join(code: str) -> tuple[Page, str]:
        page = open_page(f"{server.base_url}/?code={code}", "student")
        return page, join_as(page, "Gulnora")

    return join


def position(obj: dict[str, Any]) -> list[float]:
    return [float(v) for v in obj["transform"][:3]]


def horizontal(a: Sequence[float], b: Sequence[float]) -> float:
    return math.hypot(a[0] - b[0], a[2] - b[2])


def nearest(objects: Objects, where: Sequence[float], keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The free object nearest to ``where`` for which ``keep`` holds."""
    found = [o for o in objects.values() if keep(o) and o["holder"] is None]
    assert found, f"no such object in the room: {list(objects)}"
    return min(found, key=lambda o: horizontal(position(o), where))


def point_at(page: Page, point: Sequence[float]) -> None:
    """Move the mouse over a lab-space point, as the student sees it now."""
    at = page.evaluate("p => window.amaliy.screenPoint(...p)", list(point))
    assert at is not None, f"{point} is behind the student"
    page.mouse.move(*at)


def click_at(page: Page, point: Sequence[float]) -> None:
    point_at(page, point)
    page.mouse.down()
    page.mouse.up()


def wait_ghost(page: Page, object_id: str, near: Sequence[float], tolerance: float, snap: str | None = None) -> dict[str, Any]:
    page.wait_for_function(
        """([id, x, y, z, tolerance, snap]) => {
            const ghost = window.amaliy.ghosts[id];
            return ghost !== undefined && ghost.snap === snap
                && Math.hypot(ghost.position[0] - x, ghost.position[1] - y, ghost.position[2] - z) < tolerance;
        }""",
        arg=[object_id, *near, tolerance, snap],
        timeout=TIMEOUT_MS,
    )
    return page.evaluate("id => window.amaliy.ghosts[id]", object_id)


def test_point_put_down_on_the_bench_and_walk_up_to_it(practical, student, screenshot) -> None:
    code, observer = practical()
    page, me = student(code)
    objects = observer.objects()
    assert any("bench" in o["title"].lower() and not o["interactable"] for o in objects.values()), "the lab has a bench"
    standing = page.evaluate("window.amaliy.position")
    beaker = nearest(objects, standing, lambda o: o["interactable"] and "beaker" in o["title"].lower())
    start = position(beaker)
    bench_top = start[1]  # a beaker at rest stands on the bench top
    assert 0.8 < bench_top < 1.0, f"{beaker['id']} does not stand on the sample bench (top at 0.9 m): {start}"
    side = [start[0], start[1] + 0.05, start[2]]  # halfway up its glass

    # Pointing at the beaker lights it up and shows its title; pointing at the bench shows nothing.
    point_at(page, side)
    page.wait_for_function("id => window.amaliy.hovered === id", arg=beaker["id"], timeout=TIMEOUT_MS)
    label = page.locator(".hover-label")
    expect(label).to_be_visible()
    expect(label).to_have_text(beaker["title"])
    screenshot(page, "hover-label")
    spot = free_bench_spot(objects, beaker["id"], start)
    point_at(page, spot)
    page.wait_for_function("window.amaliy.hovered === null", timeout=TIMEOUT_MS)
    expect(label).to_be_hidden()

    # A click picks it up; pointing at the bench shows its ghost standing there.
    click_at(page, side)
    observer.wait_for(f"{me} holds {beaker['id']}", lambda room: room.objects[beaker["id"]]["holder"] == me)
    point_at(page, spot)
    ghost = wait_ghost(page, beaker["id"], spot, AIM_TOLERANCE)
    assert abs(ghost["position"][1] - bench_top) < 0.005, ghost
    screenshot(page, "ghost")

    # The next click puts it down there: on the bench top, where the student pointed.
    click_at(page, spot)
    observer.wait_for(
        f"{beaker['id']} was put down at {spot}",
        lambda room: room.objects[beaker["id"]]["holder"] is None and horizontal(position(room.objects[beaker["id"]]), spot) < AIM_TOLERANCE,
    )
    landed = position(observer.objects()[beaker["id"]])
    assert abs(landed[1] - bench_top) < 0.005, f"landed at {landed}, not on the bench top"

    # Walking straight at the bench stops in front of it, and the room sees the student there.
    before = page.evaluate("window.amaliy.position")
    with keys_held(page, "KeyW"):
        wait_standing_still(page)
    stopped = page.evaluate("window.amaliy.position")
    assert before[2] - stopped[2] > 0.3, f"the student hardly walked: {before} -> {stopped}"
    assert stopped[2] - spot[2] > 0.2, f"the student walked into the bench: stood at {stopped}, the bench top is at {spot}"
    observer.wait_for(
        f"{me} stands at {stopped}",
        lambda room: me in room.poses and horizontal(room.poses[me][:3], stopped) < 0.01,
    )


def test_snap_point_takes_the_put_down(practical, student, screenshot) -> None:
    code, observer = practical("circuits-table")
    objects = observer.objects()
    targets = [o for o in objects.values() if o.get("snap_points")]
    assert targets, "the circuits table's battery has snap points, and the room snapshot carries them"
    page, me = student(code)
    target = targets[0]
    snap = target["snap_points"][0]
    snap_at = to_world(target["transform"], snap["position"])
    held = nearest(objects, position(target), lambda o: o["interactable"] and o["id"] != target["id"])
    x, y, z = position(held)
    click_at(page, [x, y + 0.02, z])
    observer.wait_for(f"{me} holds {held['id']}", lambda room: room.objects[held["id"]]["holder"] == me)

    point_at(page, snap_at)
    wait_ghost(page, held["id"], snap_at, 0.001, snap=f"{target['id']}/{snap['id']}")
    screenshot(page, "ghost-snapped")
    click_at(page, snap_at)
    observer.wait_for(
        f"{held['id']} was put down on {target['id']}'s snap point {snap['id']}",
        lambda room: room.objects[held["id"]]["holder"] is None and math.dist(position(room.objects[held["id"]]), snap_at) < 0.001,
    )
    rotation = observer.objects()[held["id"]]["transform"][3:]
    expected = multiply(target["transform"][3:], snap.get("rotation", [0, 0, 0, 1]))
    assert abs(abs(sum(a * b for a, b in zip(rotation, expected))) - 1) < 1e-3, (rotation, expected)


def free_bench_spot(objects: Objects, held: str, start: Sequence[float]) -> list[float]:
    """A spot on the bench top in front of where the beaker stood, clear of every other object."""
    others = [position(o) for o in objects.values() if o["id"] != held]
    for dx, dz in ((0.0, 0.22), (0.12, 0.2), (-0.12, 0.2), (0.2, 0.12), (-0.2, 0.12)):
        spot = [start[0] + dx, start[1], start[2] + dz]
        if all(horizontal(spot, other) > CLEARANCE for other in others):
            return spot
    raise AssertionError(f"no free bench in front of {start}")


@contextlib.contextmanager
def keys_held(page: Page, *keys: str) -> Iterator[None]:
    """Hold keys down (walking) for the duration of the block."""
    for key in keys:
        page.keyboard.down(key)
    try:
        yield
    finally:
        for key in keys:
            page.keyboard.up(key)


def wait_standing_still(page: Page) -> None:
    """Wait until the student has not moved for half a second (the keys are still held)."""
    page.wait_for_function(
        """() => {
            const now = performance.now();
            const [x, , z] = window.amaliy.position;
            const last = window.__still;
            if (!last || Math.hypot(x - last.x, z - last.z) > 1e-4) {
                window.__still = { x, z, since: now };
                return false;
            }
            return now - last.since > 500;
        }""",
        timeout=TIMEOUT_MS,
    )


def to_world(transform: Sequence[float], local: Sequence[float]) -> list[float]:
    """A point in an object's frame (its transform: position xyz, quaternion xyzw) in lab space."""
    return [a + b for a, b in zip(transform[:3], rotate(transform[3:7], local))]
