"""Moderation in the web client: destructive teacher actions ask first (an inline confirm strip),
"Unmute all" undoes "Mute all", a removed student is listed with "Let back in", and a student
kept out (locked, removed) sees one clean notice with "Try again". Screenshots in test-artifacts/."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

REMOVED = "The teacher removed you from this practical; ask them to let you back in, then try again."


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One browser profile (one device key). Uncaught exceptions fail the test; console errors
    are not collected here, since a refused join's 403 is logged by Chromium as one."""
    context = browser.new_context(viewport={"width": 800, "height": 520})
    problems: list[str] = []
    context.on("weberror", lambda error: problems.append(str(error.error)))
    yield context
    context.close()
    assert not problems, problems


def lock(server: LiveServer, session: dict, locked: bool) -> None:
    with server.http() as http:
        response = http.post(f"/api/sessions/{session['id']}/lock", json={"locked": locked}, headers={"Authorization": f"Bearer {server.teacher_key}"})
        response.raise_for_status()


def test_destructive_actions_confirm_and_unmute_all(server: LiveServer, open_page: Callable[[str, str], Page], screenshot) -> None:
    session = server.open_session("Confirm")
    students = [ThreadedClient(server.base_url, session["join_code"], name) for name in ("Aziz", "Bobur")]
    try:
        teacher = open_page(session["teacher_url"], "teacher")
        teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
        confirm = teacher.locator("#teacher-confirm")
        expect(teacher.locator("#roster")).to_contain_text("Bobur", timeout=TIMEOUT_MS)
        expect(confirm).to_be_hidden()

        # Reset scene asks; Cancel sends nothing; the confirm button resets.
        teacher.locator("button[data-action='reset']").click()
        expect(confirm).to_be_visible()
        expect(confirm).to_contain_text("Reset the scene?")
        screenshot(teacher, "confirm-reset")
        confirm.get_by_role("button", name="Cancel").click()
        expect(confirm).to_be_hidden()
        teacher.wait_for_timeout(400)
        expect(teacher.locator("#toasts")).not_to_contain_text("reset the lab")  # Cancel sent nothing
        teacher.locator("button[data-action='reset']").click()
        confirm.get_by_role("button", name="Reset scene").click()
        expect(teacher.locator("#toasts")).to_contain_text("The teacher reset the lab.", timeout=TIMEOUT_MS)

        # Mute all asks, then holds everyone; Unmute all (no question: it takes nothing away) lifts it.
        teacher.locator("button[data-action='muteAll']").click()
        expect(confirm).to_contain_text("Mute every student?")
        confirm.get_by_role("button", name="Mute all").click()
        for student in students:
            student.wait_for("the teacher muted them", lambda c, me=student.id: c.participants[me]["forced_muted"])
        expect(teacher.locator("button[data-action='muteAll']")).to_be_disabled()
        screenshot(teacher, "muted-all")
        teacher.locator("button[data-action='unmuteAll']").click()
        for student in students:
            student.wait_for("the teacher unmuted them", lambda c, me=student.id: not c.participants[me]["forced_muted"])
        expect(teacher.locator("button[data-action='unmuteAll']")).to_be_disabled(timeout=TIMEOUT_MS)

        # Kick asks, naming the student; the removed student is listed with "Let back in".
        bobur = students[1]
        teacher.locator(f"#roster tr[data-participant='{bobur.id}']").get_by_role("button", name="Kick").click()
        expect(confirm).to_contain_text("Remove Bobur from the practical?")
        screenshot(teacher, "confirm-kick")
        confirm.get_by_role("button", name="Remove").click()
        removed = teacher.locator("#removed")
        expect(removed).to_be_visible(timeout=TIMEOUT_MS)
        expect(removed).to_contain_text("Bobur")
        screenshot(teacher, "removed-list")
        removed.get_by_role("button", name="Let back in").click()
        expect(removed).to_be_hidden(timeout=TIMEOUT_MS)

        # End practical asks too; Cancel keeps the class going.
        teacher.locator("button[data-action='end']").click()
        expect(confirm).to_contain_text("End the practical for everyone?")
        confirm.get_by_role("button", name="Cancel").click()
        teacher.wait_for_timeout(300)
        assert teacher.evaluate("window.amaliy.state") == "connected"
        teacher.locator("button[data-action='end']").click()
        confirm.get_by_role("button", name="End practical").click()
        expect(teacher.locator("#notice")).to_contain_text("ended", timeout=TIMEOUT_MS)
    finally:
        for student in students:
            if student.client.close_code is None:
                student.close()


def test_a_locked_out_student_sees_one_notice_and_can_try_again(server: LiveServer, context: BrowserContext, screenshot) -> None:
    session = server.open_session("Locked")
    lock(server, session, True)
    page = context.new_page()
    page.goto(f"{server.base_url}/?code={session['join_code']}")
    page.get_by_label("Your name").fill("Dilnoza")
    page.get_by_role("button", name="Join").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("The teacher has locked this practical", timeout=START_TIMEOUT_MS)
    expect(page.locator("#notice-retry")).to_be_visible()
    expect(page.locator("#viewport")).to_be_hidden()  # the lab is not shown behind the notice
    expect(page.locator("#hud")).to_be_hidden()
    page.wait_for_timeout(500)
    assert page.locator(".toast").count() == 0  # the sentence once, in the notice only
    assert page.get_by_text("locked this practical").count() == 1
    screenshot(page, "locked-out")

    page.get_by_role("button", name="Try again").click()  # still locked: the same notice again
    expect(notice).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#notice-retry")).to_be_visible(timeout=TIMEOUT_MS)
    lock(server, session, False)
    page.get_by_role("button", name="Try again").click()
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=TIMEOUT_MS)
    expect(notice).to_be_hidden()
    expect(page.locator("#viewport")).to_be_visible()
    assert page.evaluate("window.amaliy.me.name") == "Dilnoza"
    screenshot(page, "let-in")


def test_a_removed_student_stays_out_across_a_reload(server: LiveServer, context: BrowserContext, screenshot) -> None:
    session = server.open_session("Removed")
    page = context.new_page()
    page.goto(f"{server.base_url}/?code={session['join_code']}")
    me = join_as(page, "Bobur")
    watcher = ThreadedClient.with_token(session["ws_url"], session["teacher_token"])  # the teacher
    try:
        watcher.call(watcher.client.kick(me))
        expect(page.locator("#notice")).to_contain_text(REMOVED, timeout=TIMEOUT_MS)
        # a reload keeps the tab's token: still refused, same clean notice
        page.reload()
        expect(page.locator("#notice")).to_contain_text(REMOVED, timeout=START_TIMEOUT_MS)
        # a new tab (no token) with any name: the device is refused at the join form
        fresh = context.new_page()
        fresh.goto(f"{server.base_url}/?code={session['join_code']}")
        fresh.get_by_label("Your name").fill("Not Bobur")
        fresh.get_by_role("button", name="Join").click()
        expect(fresh.locator("#join-error")).to_have_text(REMOVED, timeout=TIMEOUT_MS)
        screenshot(fresh, "removed-join-form")
        # the teacher lets him back in; "Try again" on the first tab joins as the same participant
        watcher.call(watcher.client.unkick(me))
        page.get_by_role("button", name="Try again").click()
        page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
        assert page.evaluate("window.amaliy.me.id") == me
    finally:
        watcher.close()
