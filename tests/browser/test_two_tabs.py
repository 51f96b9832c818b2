"""Two students and a teacher in real browser tabs against a real server process.

Everything goes through the web client as a person would use it (the join form,
the teacher link, the Kick button) and through the server's real sockets; the
page's ``window.amaliy`` hooks are only used to walk, grab and read what the page
currently draws. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, nearest, two_students

pytestmark = pytest.mark.browser


def wait_avatar_at(page: Page, participant: str, position: list[float]) -> None:
    """Wait until ``page`` draws ``participant``'s head at ``position`` (within 1 cm)."""
    page.wait_for_function(
        """([id, x, y, z]) => {
            const p = window.amaliy.avatars[id]?.position;
            return p !== undefined && Math.hypot(p[0] - x, p[1] - y, p[2] - z) < 0.01;
        }""",
        arg=[participant, *position],
        timeout=TIMEOUT_MS,
    )


def holder(page: Page, object_id: str) -> str | None:
    return page.evaluate("id => window.amaliy.objects[id].holder", object_id)


def test_two_students_and_a_teacher(server, open_page, screenshot) -> None:
    aziz, bobur, aziz_id, bobur_id = two_students(server.base_url, server.demo_code, open_page)

    # Each sees the other.
    aziz.wait_for_function("id => id in window.amaliy.avatars", arg=bobur_id, timeout=TIMEOUT_MS)
    bobur.wait_for_function("id => id in window.amaliy.avatars", arg=aziz_id, timeout=TIMEOUT_MS)
    screenshot(aziz, "aziz-joined")
    # Headless Chromium has no headset: no Enter VR / Enter AR button that could only fail.
    expect(aziz.locator("#xr-buttons button")).to_have_count(0)

    # Aziz walks towards his bench; Bobur's tab draws Aziz's avatar there.
    beaker = nearest(aziz, "beaker-water@")  # the beaker of water on Aziz's bench
    start = bobur.evaluate("id => window.amaliy.avatars[id].position", aziz_id)
    step = [0.9, 0.0, -0.7]
    aziz.evaluate("([dx, dy, dz]) => window.amaliy.moveBy(dx, dy, dz)", step)
    wait_avatar_at(bobur, aziz_id, [a + d for a, d in zip(start, step)])

    # Aziz picks up the beaker: both tabs see him holding it, and Bobur sees it leave the bench.
    bench_height = bobur.evaluate("id => window.amaliy.objects[id].position[1]", beaker)
    aziz.evaluate("id => window.amaliy.grab(id)", beaker)
    for page in (aziz, bobur):
        page.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[beaker, aziz_id], timeout=TIMEOUT_MS)
    bobur.wait_for_function(
        "([o, h]) => window.amaliy.objects[o].position[1] > h + 0.2", arg=[beaker, bench_height], timeout=TIMEOUT_MS
    )

    # Bobur cannot take it from him: the server refuses, the tab says so, the holder stays.
    bobur.evaluate("id => window.amaliy.grab(id)", beaker)
    expect(bobur.locator(".toast.error[data-code='object_held']")).to_be_visible(timeout=TIMEOUT_MS)
    assert holder(bobur, beaker) == aziz_id
    assert holder(aziz, beaker) == aziz_id
    screenshot(bobur, "bobur-sees-aziz-holding")
    screenshot(aziz, "aziz-holding")

    # The teacher link opens the teacher panel with both students on the roster.
    teacher = open_page(server.teacher_url, "teacher")
    teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    assert teacher.evaluate("window.amaliy.me.role") == "teacher"
    roster = teacher.locator("#roster")
    expect(roster).to_contain_text("Aziz")
    expect(roster).to_contain_text("Bobur")
    screenshot(teacher, "teacher-roster")

    # Kicking Bobur closes his tab's session and tells him why; everyone else sees him go.
    teacher.locator(f"#roster tr[data-participant='{bobur_id}']").get_by_role("button", name="Kick").click()
    teacher.locator("#teacher-confirm").get_by_role("button", name="Remove").click()  # the panel asks first
    expect(bobur.locator("#notice")).to_contain_text("removed", timeout=TIMEOUT_MS)
    bobur.wait_for_function("window.amaliy.state === 'closed'", timeout=TIMEOUT_MS)
    expect(roster).not_to_contain_text("Bobur", timeout=TIMEOUT_MS)
    aziz.wait_for_function("id => !(id in window.amaliy.participants)", arg=bobur_id, timeout=TIMEOUT_MS)
    aziz.wait_for_function("id => !(id in window.amaliy.avatars)", arg=bobur_id, timeout=TIMEOUT_MS)
    screenshot(bobur, "bobur-kicked")
