"""The landing page's ways in: a student whose name the server refuses is told why on the join
form, and can fix it; a course student signs in with their personal code (typed in any case,
grouped 4-4, or from the sheet's link, which is taken out of the address bar), is told in the
server's words why a code is refused, and a reload takes them back in."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import VIEWPORT
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_a_refused_name_is_explained_then_a_fixed_one_joins(
    server: LiveServer, browser, screenshot: Callable[[Page, str], object]
) -> None:
    session = server.open_session("Names")
    page = browser.new_page(viewport={"width": 800, "height": 520})
    try:
        page.goto(f"{server.base_url}/?code={session['join_code']}")
        page.get_by_label("Your name").fill("Aziz\u202eolleh")  # a right-to-left override disguises a name
        page.get_by_role("button", name="Join").click()
        expect(page.locator("#join-error")).to_contain_text("U+202E (RIGHT-TO-LEFT OVERRIDE)", timeout=TIMEOUT_MS)
        screenshot(page, "refused")
        page.get_by_label("Your name").fill("Aziz")
        page.get_by_role("button", name="Join").click()
        page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
        assert page.evaluate("window.amaliy.me.name") == "Aziz"
    finally:
        page.close()


# ------------------------------------------------------------------ signing in with a personal code

#: what POST /api/signin answers for a wrong, rotated or malformed code (server/course_routes.py)
WRONG_CODE = "That sign-in code is not valid: check it with your teacher, who can give you a new one."
PHONE = {"width": 390, "height": 844}


def teacher_headers(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.teacher_key}"}


def course_with_student(server: LiveServer, course: str, student: str) -> tuple[str, dict[str, Any]]:
    """A new course of the teacher's with one student on its roster: the course id and the
    student (with their sign-in code, shown this once)."""
    with server.http() as http:
        made = http.post("/api/courses", json={"name": course}, headers=teacher_headers(server))
        assert made.status_code == 201, made.text
        added = http.post(f"/api/courses/{made.json()['id']}/students", json={"name": student}, headers=teacher_headers(server))
        assert added.status_code == 201, added.text
        return made.json()["id"], added.json()


def open_course_practical(server: LiveServer, course_id: str, title: str) -> dict[str, Any]:
    """A practical of the course on the default (demo) scene: its students sign in to it."""
    with server.http() as http:
        opened = http.post("/api/sessions", json={"course": course_id, "title": title}, headers=teacher_headers(server))
        assert opened.status_code == 201, opened.text
        return opened.json()


def watched_page(browser, viewport: dict[str, int] = VIEWPORT, expected: tuple[int, ...] = ()) -> tuple[Page, list[str]]:
    """A page whose uncaught exceptions and console errors are collected, except Chromium's own
    line for a response with one of the ``expected`` statuses (a refusal the test asks for)."""
    page = browser.new_page(viewport=viewport)
    problems: list[str] = []
    allowed = [f"status of {status}" for status in expected]
    page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
    page.on(
        "console",
        lambda msg: msg.type == "error" and not any(a in msg.text for a in allowed) and problems.append(f"console error {msg.text}"),
    )
    return page, problems


def connected(page: Page) -> str:
    """Wait until the page loaded the lab and joined; its participant id."""
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    return page.evaluate("window.amaliy.me.id")


def test_a_student_signs_in_with_their_code_and_a_reload_stays_in(
    server: LiveServer, browser, screenshot: Callable[[Page, str], object]
) -> None:
    course, student = course_with_student(server, "Fizika 8B", "Dilnoza Karimova")
    session = open_course_practical(server, course, "Optics")
    page, problems = watched_page(browser)
    try:
        page.goto(server.base_url)
        expect(page.locator("#join-form")).to_be_visible()
        screenshot(page, "join-form")
        page.get_by_role("button", name="I have a sign-in code").click()
        form = page.locator("#signin-form")
        expect(form).to_be_visible()
        expect(page.locator("#join-form")).to_be_hidden()
        expect(page.get_by_label("Sign-in code")).to_be_focused()

        # Typed as a student might: small letters and a dash; the form shows it grouped 4-4.
        code = student["code"]
        page.get_by_label("Sign-in code").press_sequentially(f"{code[:4].lower()}-{code[4:].lower()}")
        expect(page.get_by_label("Sign-in code")).to_have_value(f"{code[:4]} {code[4:]}")
        screenshot(page, "signin-form")
        page.set_viewport_size(PHONE)
        screenshot(page, "signin-form-phone")
        page.set_viewport_size(VIEWPORT)

        # Back to the guest form and again: the way back is there too.
        page.get_by_role("button", name="Join with the class join code").click()
        expect(page.get_by_label("Your name")).to_be_visible()
        page.get_by_role("button", name="I have a sign-in code").click()

        page.get_by_role("button", name="Sign in").click()
        assert connected(page) == student["id"]  # their roster id: the same in every practical of the course
        assert page.evaluate("window.amaliy.me.name") == "Dilnoza Karimova"
        expect(page.locator("#hud-title")).to_have_text(session["title"])
        stored = page.evaluate("JSON.parse(sessionStorage.getItem('amaliy:signin'))")
        assert stored["course"] == {"id": course, "name": "Fizika 8B"} and "code" not in stored
        assert code not in page.url

        page.reload()
        assert connected(page) == student["id"]
        expect(page.locator("#signin-form")).to_be_hidden()
        expect(page.locator("#join-form")).to_be_hidden()
        assert not problems, problems
    finally:
        page.close()


def test_a_wrong_code_a_closed_course_and_a_rate_limit_are_explained(
    server: LiveServer, browser, screenshot: Callable[[Page, str], object]
) -> None:
    course, student = course_with_student(server, "Kimyo 9A", "Bobur")
    page, problems = watched_page(browser, expected=(401, 409, 429))
    try:
        page.goto(server.base_url)
        page.get_by_role("button", name="I have a sign-in code").click()
        field, error = page.get_by_label("Sign-in code"), page.locator("#signin-error")

        # Too short: said on the page, no request spent on it.
        field.fill("ABC")
        page.get_by_role("button", name="Sign in").click()
        expect(error).to_contain_text("8 letters and digits")

        # A well-formed code nobody has: the server's 401 sentence.
        wrong = "".join("Z" if ch != "Z" else "Y" for ch in student["code"])
        field.fill(wrong)
        page.get_by_role("button", name="Sign in").click()
        expect(error).to_have_text(WRONG_CODE, timeout=TIMEOUT_MS)
        screenshot(page, "wrong-code")

        # The right code while the course has no practical open: the 409 sentence names the course.
        field.fill(student["code"].lower())
        page.get_by_role("button", name="Sign in").click()
        expect(error).to_have_text("No practical is open in Kimyo 9A now; wait for your teacher to open one.", timeout=TIMEOUT_MS)
        page.set_viewport_size(PHONE)
        screenshot(page, "no-practical-phone")
        page.set_viewport_size(VIEWPORT)

        # Past the rate limit (this server's is set high for tests, so the answer is made here): its sentence.
        page.route(
            "**/api/signin",
            lambda route: route.fulfill(status=429, json={"detail": "Too many sign-in attempts from this address; wait a minute."}),
        )
        page.get_by_role("button", name="Sign in").click()
        expect(error).to_have_text("Too many sign-in attempts from this address; wait a minute.", timeout=TIMEOUT_MS)
        page.unroute("**/api/signin")

        # The teacher opens one: the same form, the same code, and the student is in.
        open_course_practical(server, course, "Week 2")
        page.get_by_role("button", name="Sign in").click()
        assert connected(page) == student["id"]
        assert not problems, problems
    finally:
        page.close()


def test_the_sheet_link_signs_in_at_once_and_leaves_no_code_in_the_address_bar(
    server: LiveServer, browser, screenshot: Callable[[Page, str], object]
) -> None:
    course, student = course_with_student(server, "Biologiya 7A", "Gulnora")
    open_course_practical(server, course, "Cells")
    page, problems = watched_page(browser, viewport=PHONE)  # the QR code is scanned with a phone
    try:
        page.goto(f"{server.base_url}/?signin={student['code']}")
        assert connected(page) == student["id"]
        assert page.evaluate("location.search") == "" and student["code"] not in page.url
        expect(page.locator("#signin-form")).to_be_hidden()
        screenshot(page, "signed-in-phone")
        page.reload()
        assert connected(page) == student["id"]
        assert student["code"] not in page.url
        assert not problems, problems
    finally:
        page.close()


def test_a_sheet_link_before_the_practical_opens_keeps_the_code_in_the_form_not_the_url(server: LiveServer, browser) -> None:
    course, student = course_with_student(server, "Tarix 10A", "Sardor")
    page, problems = watched_page(browser, expected=(409,))
    try:
        page.goto(f"{server.base_url}/?signin={student['code'].lower()}")
        expect(page.locator("#signin-error")).to_have_text(
            "No practical is open in Tarix 10A now; wait for your teacher to open one.", timeout=TIMEOUT_MS
        )
        assert page.evaluate("location.search") == ""
        code = student["code"]
        expect(page.get_by_label("Sign-in code")).to_have_value(f"{code[:4]} {code[4:]}")
        open_course_practical(server, course, "Week 1")
        page.get_by_role("button", name="Sign in").click()
        assert connected(page) == student["id"]
        assert not problems, problems
    finally:
        page.close()
