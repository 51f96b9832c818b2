"""The teacher dashboard (/dashboard.html) in a real tab against a real server.

A teacher signs in with their key (a wrong one first: the server's sentence shows),
makes a course, imports a roster CSV with a bad row (the report names the line and
nothing is imported), fixes it and sees each student's code once, adds a student,
gives one a new code, removes one after the confirm strip, is refused deleting a course
that has students, switches the ladder to "full" in the settings, and prints the
sign-in sheet (window.print is stubbed: one card per student, each with a QR code).

Then a practical of the course is opened over REST on a small uploaded lab; a student
signs in with the code from the sheet and, through the Python SDK, does two of its
three steps while the dashboard's live grid (polling every 3 s) shows their station
and a ✓ for each done step. The course view shows their XP, their term shows the
practical, the full ladder ranks them, and both CSV downloads start. Ending the
practical stops the live view, and so does leaving it; a second practical is
opened from the dashboard itself.

Screenshots at 1280×800 and at a 390×844 phone land in test-artifacts/.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import TIMEOUT_MS
from tests.integration.test_challenges_live import ON_TRIPOD, PACKAGE, lab_manifest, upload

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: Chromium logs every refused fetch as a console error; these refusals are the scenario's own
EXPECTED_REFUSALS = re.compile(r"the server responded with a status of (401|409|422)")
CODE = re.compile(r"^[A-Z2-9]{4} [A-Z2-9]{4}$")
#: the live grid polls every 3 s: a step shows within two polls and the page's own fetch
LIVE_TIMEOUT_MS = 15_000

BAD_CSV = "name,email,student_number\nAli,ali@maktab.uz,9A-01\n,bea@maktab.uz,9A-02\nCem,not-an-address,9A-03\n"
GOOD_CSV = "name,email,student_number\nAli,ali@maktab.uz,9A-01\nBea,bea@maktab.uz,9A-02\nCem,,9A-03\n"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One browser profile. Uncaught exceptions and console errors fail the test, except
    Chromium's own line for each refusal this scenario asks for (401, 409, 422)."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    problems: list[str] = []

    def console(msg: Any) -> None:
        if msg.type == "error" and not EXPECTED_REFUSALS.search(msg.text):
            problems.append(f"console error {msg.text}")

    context.on("weberror", lambda error: problems.append(f"uncaught {error.error}"))
    context.on("console", console)
    yield context
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def students() -> Iterator[list[ThreadedClient]]:
    started: list[ThreadedClient] = []
    yield started
    for client in started:
        client.close()


def api(server, method: str, path: str, **kw: Any) -> Any:
    with server.http() as http:
        response = http.request(method, path, headers={"Authorization": f"Bearer {server.teacher_key}"}, **kw)
        assert response.status_code < 300, response.text
        return response.json()


def roster_row(page: Page, name: str):
    return page.locator("#roster tbody tr").filter(has=page.get_by_role("button", name=name, exact=True))


def no_sideways_scroll(page: Page) -> None:
    """The page itself never scrolls sideways: wide tables scroll inside their own box."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"


def test_teacher_dashboard_from_roster_to_live_grid(server, context: BrowserContext, students, screenshot: Callable[[Page, str], Any]) -> None:
    uploaded = upload(server, lab_manifest())  # ingest takes a while: start with it
    assert uploaded.status_code == 201, uploaded.text

    page = context.new_page()
    page.goto(f"{server.base_url}/dashboard.html")

    # Sign in: a wrong key shows the server's sentence; the right one opens the courses.
    key = page.get_by_label("Teacher key")
    key.fill("ak_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("Unknown key or token")
    expect(page.locator("#workspace")).to_be_hidden()
    key.fill(server.teacher_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#workspace")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('amaliy:teacher-key')") == server.teacher_key

    # A course: made, then renamed.
    page.get_by_label("New course").fill("Kimyo 9A")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#course-title")).to_have_text("Kimyo 9A")
    cid = page.locator("#course-list [aria-current='true']").get_attribute("data-course")
    assert cid and cid.startswith("c_")
    page.locator("#rename-course").click()
    page.get_by_label("Course name").fill("Kimyo 9A (kuz)")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator("#course-title")).to_have_text("Kimyo 9A (kuz)")
    expect(page.locator("#course-list")).to_contain_text("Kimyo 9A (kuz)")

    # A roster with bad rows: the report names each line, and nothing is imported.
    upload_csv = page.get_by_label("CSV file")
    upload_csv.set_input_files({"name": "9a.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()})
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("Nothing was imported")
    expect(report.locator("li")).to_have_count(2)
    expect(report).to_contain_text("Line 3:")
    expect(report).to_contain_text("Line 4:")
    expect(page.locator(".roster")).to_contain_text("Nobody on the roster yet")
    screenshot(page, "import-report")

    # Fixed: imported, each new code shown once, split 4-4.
    upload_csv.set_input_files({"name": "9a.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()})
    page.get_by_role("button", name="Import", exact=True).click()
    codes = page.locator("#new-codes")
    expect(codes).to_contain_text("Imported 3 students from 9a.csv")
    expect(codes).to_contain_text("shown only this once")
    expect(codes.locator("tbody tr")).to_have_count(3)
    for code in codes.locator("code.code").all_text_contents():
        assert CODE.match(code), code
    expect(report).to_be_hidden()
    expect(page.locator("#roster tbody tr")).to_have_count(3)

    # One more by hand, with their code; then a new code for them.
    page.get_by_label("Name", exact=True).fill("Dilnoza")
    page.get_by_label("Student number (optional)").fill("9A-04")
    page.get_by_role("button", name="Add student").click()
    expect(codes).to_contain_text("Dilnoza is on the roster.")
    first = codes.locator("code.code").first.text_content()
    expect(page.locator("#roster tbody tr")).to_have_count(4)
    roster_row(page, "Dilnoza").get_by_role("button", name="New code for Dilnoza").click()
    strip = page.locator(".roster .confirm")
    expect(strip).to_contain_text("old code stops working")
    strip.get_by_role("button", name="Make a new code").click()
    expect(codes).to_contain_text("A new code for Dilnoza.")
    assert codes.locator("code.code").first.text_content() != first

    # Removing a student asks first, saying what goes.
    roster_row(page, "Cem").get_by_role("button", name="Remove Cem").click()
    expect(strip).to_be_visible()
    expect(strip).to_contain_text("their 0 XP and badges in this course go")
    screenshot(page, "confirm-remove")
    strip.get_by_role("button", name="Remove Cem").click()
    expect(page.locator("#roster tbody tr")).to_have_count(3)
    expect(page.locator("#roster")).not_to_contain_text("Cem")

    # A course with students is not deleted: the 409's sentence shows.
    page.locator("#delete-course").click()
    page.locator("#course > .confirm").get_by_role("button", name="Delete course").click()
    expect(page.locator(".course-status")).to_contain_text("only an empty course is deleted")

    # Settings: the ladder to "full"; the thresholds the answer carries.
    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("What students see of the course ladder").select_option("full")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_contain_text("Saved.")
    expect(page.locator("#thresholds tbody tr")).to_have_count(10)
    expect(page.locator("#thresholds tbody tr").nth(1)).to_contain_text("120")
    assert api(server, "GET", f"/api/courses/{cid}/settings")["ladder"] == "full"
    page.get_by_label("Coefficient (relative curve)").fill("5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_contain_text("coefficient")  # pydantic's message, by its field
    screenshot(page, "settings")

    # The sign-in sheet: after the confirm, one card per student, each with its QR code.
    page.evaluate("() => { window.printed = 0; window.print = () => { window.printed += 1; }; }")
    page.locator("#print-sheet").click()
    expect(page.locator("#course > .confirm")).to_contain_text("Every student gets a NEW code")
    page.get_by_role("button", name="Make new codes").click()
    sheet = page.locator("#sheet")
    expect(sheet).to_be_visible()
    cards = sheet.locator(".signin-card")
    expect(cards).to_have_count(3)
    expect(sheet.locator(".signin-card svg.qr")).to_have_count(3)
    assert sheet.locator(".signin-card svg.qr path").count() == 3  # the server's drawing, kept
    sheet_codes = {card.locator(".student").text_content(): card.locator(".code.big").text_content() for card in cards.all()}
    assert sorted(sheet_codes) == ["Ali", "Bea", "Dilnoza"] and all(CODE.match(c) for c in sheet_codes.values())
    expect(cards.first.locator(".url")).to_contain_text("/?signin=")
    expect(page.locator("main")).to_be_hidden()
    screenshot(page, "sheet")
    page.emulate_media(media="print")
    screenshot(page, "sheet-print")
    page.emulate_media(media="screen")
    assert page.evaluate("window.printed") == 0, "before"
    sheet.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed") == 1
    sheet.get_by_role("button", name="Close sheet").click()
    expect(page.locator("main")).to_be_visible()

    # A practical of the course, and Ali in it with the code from the sheet.
    session = api(server, "POST", "/api/sessions", json={"course": cid, "title": "Week 1", "scene": PACKAGE, "version": uploaded.json()["version"]})
    with server.http() as http:
        signed = http.post("/api/signin", json={"code": sheet_codes["Ali"]})
        assert signed.status_code == 200, signed.text
    ali = ThreadedClient.with_token(signed.json()["ws_url"], signed.json()["token"])
    students.append(ali)
    ali.call(ali.client.choose_station(1))
    ali.call(ali.client.wait_station(1, timeout=TIMEOUT_MS / 1000))

    # The live grid: Ali at station 1, then ✓ for each step done, the question still to do.
    page.get_by_role("tab", name="Practicals").click()
    practical = page.locator(f"#practicals tr[data-session='{session['id']}']")
    expect(practical).to_contain_text("Week 1")
    practical.get_by_role("button", name="Live: Week 1").click()
    expect(page.locator("#live-note")).to_contain_text("refreshes every 3 s")
    station = page.locator("#live-stations tr[data-station='1']")
    expect(station).to_contain_text("Ali", timeout=LIVE_TIMEOUT_MS)
    ali.call(ali.client.grab("beaker@1"))
    ali.call(ali.client.expect("grabbed", object="beaker@1", timeout=TIMEOUT_MS / 1000))
    ali.call(ali.client.move("beaker@1", ON_TRIPOD))
    ali.call(ali.client.release("beaker@1"))
    ali.call(ali.client.wait_step("place", timeout=TIMEOUT_MS / 1000))
    ali.call(ali.client.interact("burner@1", "lit", True))
    ali.call(ali.client.wait_step("light", timeout=TIMEOUT_MS / 1000))
    for step in ("place", "light"):
        expect(station.locator(f"td[data-step='{step}']")).to_have_class(re.compile(r"\bdone\b"), timeout=LIVE_TIMEOUT_MS)
        expect(station.locator(f"td[data-step='{step}']")).to_contain_text("✓")
    expect(station.locator("td[data-step='flame']")).to_have_class(re.compile(r"\btodo\b"))
    expect(station).to_contain_text("2 of 3")
    expect(page.locator(f"#results-students tr[data-participant='{ali.id}']")).to_contain_text("Ali")
    no_sideways_scroll(page)
    screenshot(page, "live")
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    page.evaluate("document.querySelector('#live-stations').scrollIntoView({ block: 'center' })")  # in one go: the grid is redrawn every 3 s
    screenshot(page, "live-phone")
    page.set_viewport_size(DESKTOP)

    # Leaving the live view stops its polling.
    page.evaluate("window.liveView = window.amaliyDashboard.course.current")
    assert page.evaluate("window.liveView.polling")
    page.get_by_role("button", name="← Back to practicals").click()
    assert page.evaluate("window.liveView.polling === false && window.liveView.timer === null")

    # The course view: Ali's XP, as the server counts it.
    board = api(server, "GET", f"/api/courses/{cid}/dashboard")
    xp = next(s["xp"] for s in board["students"] if s["name"] == "Ali")
    assert xp > 0
    page.get_by_role("tab", name="Students").click()
    expect(roster_row(page, "Ali").locator("td.xp")).to_have_text(str(xp))
    no_sideways_scroll(page)
    screenshot(page, "roster")

    # Ali's term: XP, level, and the practical's row.
    page.get_by_role("button", name="Ali", exact=True).click()
    term = page.locator("#term")
    expect(term.locator("#term-title")).to_have_text("Ali: the term")
    expect(term.locator("[data-fact='xp'] dd")).to_have_text(str(xp))
    week = term.locator(f"#term-practicals tr[data-session='{session['id']}']")
    expect(week).to_contain_text("Week 1")
    expect(week.locator("td").nth(2)).to_have_text("yes")
    expect(week.locator("td").nth(3)).to_have_text("2")  # steps
    screenshot(page, "term")

    # The full ladder ranks everyone, with names.
    page.get_by_role("tab", name="Ladder").click()
    expect(page.locator("#ladder tbody tr").first).to_contain_text("Ali")
    expect(page.locator("#ladder tbody tr")).to_have_count(3)

    # Both CSV downloads start (fetched with the key, saved as a Blob).
    page.get_by_role("tab", name="Practicals").click()
    practical.get_by_role("button", name="Results: Week 1").click()
    expect(page.locator("#results-students")).to_contain_text("Ali")
    with page.expect_download() as results_csv:
        page.locator("#results-csv").click()
    assert results_csv.value.suggested_filename == f"amaliy-{PACKAGE}-{session['id']}-results.csv"
    with page.expect_download() as term_csv:
        page.locator("#term-csv").click()
    assert term_csv.value.suggested_filename == f"amaliy-{cid}-term.csv"
    with open(term_csv.value.path(), encoding="utf-8-sig") as saved:
        assert re.search(rf"^{ali.id},Ali,{xp},", saved.read(), re.M)

    # The live view ends with the practical.
    page.get_by_role("button", name="Watch live").click()
    expect(page.locator("#live-note")).to_contain_text("refreshes every 3 s")
    api(server, "POST", f"/api/sessions/{session['id']}/end")
    expect(page.locator("#live-note")).to_contain_text("has ended", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.amaliyDashboard.course.current.polling") is False

    # A practical opened from the dashboard: the teacher's room link and the guests' join code.
    page.get_by_role("button", name="← Back to practicals").click()
    page.get_by_label("Title").fill("Week 2")
    page.get_by_role("button", name="Open practical").click()
    expect(page.locator(".opened")).to_contain_text("Week 2 is open")
    expect(page.get_by_role("link", name="Enter the room as teacher")).to_have_attribute("href", re.compile(r"/#token="))
    expect(page.locator("#practicals tbody tr")).to_have_count(2)
    expect(page.locator("#practicals tbody tr").first).to_contain_text("Week 2")

    # On a phone: one column, tables scroll inside their boxes.
    page.set_viewport_size(PHONE)
    page.get_by_role("tab", name="Students").click()
    expect(page.locator("#roster")).to_be_visible()
    no_sideways_scroll(page)
    page.evaluate("document.querySelector('#roster').scrollIntoView({ block: 'center' })")  # in one go: a refresh redraws the table
    screenshot(page, "roster-phone")

    # A link with the key in its fragment signs in, and the key leaves the address bar.
    linked = context.new_page()
    linked.goto(f"{server.base_url}/dashboard.html#key={server.teacher_key}")
    expect(linked.locator("#workspace")).to_be_visible()
    assert "key=" not in linked.url
    expect(linked.locator("#course-list")).to_contain_text("Kimyo 9A (kuz)")


def test_a_server_out_of_reach_does_not_make_the_dashboard_forget_the_key(server, browser: Browser) -> None:
    """Only a refused key is forgotten: while the server cannot be reached the page says so and
    keeps the key, and the next load signs in with it without asking again."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{server.base_url}/dashboard.html#key={server.teacher_key}")
        expect(page.locator("#workspace")).to_be_visible()
        page.route("**/api/courses", lambda route: route.abort("connectionrefused"))
        page.reload()
        expect(page.locator("#signin-error")).to_contain_text("cannot be reached")
        assert page.evaluate("sessionStorage.getItem('amaliy:teacher-key')") == server.teacher_key
        page.unroute("**/api/courses")
        page.reload()
        expect(page.locator("#workspace")).to_be_visible()
    finally:
        context.close()
