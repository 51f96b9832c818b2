"""The student's card after a practical, in a real tab against a real server.

Ali, on a course's roster, signs in with the link of his personal code and picks a bench;
Bea, his partner there (the Python SDK, signed in with her own code), puts the beaker on
the tripod and lights the burner; Ali answers the question in the page, and the station is
done. His summary card then shows what the practical earned him: +XP, "Level up!" and his
level with a bar to the next, the badges (Steady hands among them, downloaded as a signed
credential, a JWT), the course ladder of his neighbours without names with his own row
marked "You", and the station ladder. Cem, at the other bench, did nothing.

A second test draws cards the server could send (a guest's, a full ladder with names, an
"off" one, a failed fetch) with card.js itself in a page, to check what each mode shows.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.labs import judged
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS
from tests.browser.test_join_form import watched_page
from tests.conftest import LiveServer
from tests.integration.test_challenges_live import ON_TRIPOD, PACKAGE, lab_manifest, upload

pytestmark = pytest.mark.browser

BADGES = [
    {"id": "done", "name": "Beaker heated", "criteria": {"finished": True}},
    {"id": "steady-hands", "name": "Steady hands", "description": "No mistakes.", "criteria": {"finished": True, "max_mistakes": 0}},
]
#: 5 XP a point; level 2 at 120 XP (the default curve): one finish (20 points and the time bonus) is level 2
SETTINGS = {"xp_per_point": 5, "badges": [{"id": "level-2", "name": "Level 2", "criteria": {"level": 2}}]}
PHONE = {"width": 390, "height": 844}


def teacher(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.teacher_key}"}


@pytest.fixture
def partners(server: LiveServer) -> Any:
    """SDK students signed in with their own codes; all closed after the test."""
    started: list[ThreadedClient] = []

    def sign_in(code: str) -> ThreadedClient:
        with server.http() as http:
            signed = http.post("/api/signin", json={"code": code})
            assert signed.status_code == 200, signed.text
        started.append(ThreadedClient.with_token(signed.json()["ws_url"], signed.json()["token"]))
        return started[-1]

    yield sign_in
    for client in started:
        client.close()


def card_rows(page: Page, which: str) -> list[str]:
    return [re.sub(r"\s+", " ", text).strip() for text in page.locator(f"#summary {which} li").all_inner_texts()]


def test_a_course_student_finishes_and_the_card_shows_xp_level_badges_and_ladders(
    server: LiveServer, open_page: Callable[[str, str], Page], partners, screenshot: Callable[[Page, str], Path]
) -> None:
    uploaded = upload(server, {**lab_manifest(), "challenge": {**lab_manifest()["challenge"], "badges": BADGES}})
    assert uploaded.status_code == 201, uploaded.text
    with server.http() as http:
        course = http.post("/api/courses", json={"name": "Kimyo 9A"}, headers=teacher(server)).json()["id"]
        roster = http.post(f"/api/courses/{course}/roster", content="name\nAli\nBea\nCem\n".encode(), headers=teacher(server))
        assert roster.status_code == 201, roster.text
        codes = {s["name"]: s["code"] for s in roster.json()["students"]}
        ids = {s["name"]: s["id"] for s in roster.json()["students"]}
        assert http.put(f"/api/courses/{course}/settings", json=SETTINGS, headers=teacher(server)).status_code == 200
        opened = http.post(
            "/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 1", "course": course}, headers=teacher(server)
        )
        assert opened.status_code == 201, opened.text

    ali = open_page(f"{server.base_url}/?signin={codes['Ali']}", "ali")
    ali.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    assert ali.evaluate("window.amaliy.me.id") == ids["Ali"]
    hud = ali.locator("#challenge")
    hud.locator("#station-picker button[data-station='1']").click()
    ali.wait_for_function("window.amaliy.challenge.station === 1", timeout=TIMEOUT_MS)

    bea, cem = partners(codes["Bea"]), partners(codes["Cem"])
    for client, station in ((bea, 1), (cem, 2)):
        client.call(client.client.choose_station(station))
        client.call(client.client.wait_station(station, timeout=TIMEOUT_MS / 1000))

    # Bea puts the beaker on the tripod and lights the burner; Ali answers the question in the page.
    bea.call(bea.client.grab("beaker@1"))
    bea.wait_for("Bea holds the beaker", lambda c: c.objects["beaker@1"]["holder"] == c.id)
    bea.call(bea.client.move("beaker@1", ON_TRIPOD))
    bea.call(bea.client.release("beaker@1"))
    bea.call(bea.client.wait_step("place", timeout=TIMEOUT_MS / 1000))
    bea.call(bea.client.interact("burner@1", "lit", True))
    ali.wait_for_function("window.amaliy.challenge.current?.id === 'flame'", timeout=TIMEOUT_MS)
    assert judged(ali, hud.locator("#checkpoint button.choice").filter(has_text="blue").click)["result"] == "right"

    # The summary card, and beside it what Ali earned: fetched once the station is done.
    summary = ali.locator("#summary")
    expect(summary).to_be_visible(timeout=TIMEOUT_MS)
    learner = summary.locator(".learner-card")
    expect(learner).to_have_attribute("data-state", "shown", timeout=TIMEOUT_MS)
    ali.wait_for_function("window.amaliy.challenge.summary?.score === window.amaliy.challenge.score", timeout=TIMEOUT_MS)
    done = ali.evaluate("window.amaliy.challenge")
    assert done["mistakes"] == 0 and done["finished"] is not None
    points = 10 + 6 + 4 + done["bonus"]
    xp = points * 5
    expect(learner.locator(".card-xp")).to_have_text(f"+{xp} XP")
    expect(learner.locator(".level-up")).to_have_text("Level up!")
    expect(learner.locator(".card-level-name")).to_have_text("Level 2")
    bar = learner.get_by_role("progressbar", name="XP towards the next level")
    expect(bar).to_have_attribute("aria-valuenow", str(xp))

    badges = learner.locator(".card-badges li")
    expect(badges).to_have_count(3)
    assert sorted(learner.locator(".badge-name").all_inner_texts()) == ["Beaker heated", "Level 2", "Steady hands"]
    steady = badges.filter(has_text="Steady hands")
    expect(steady).to_have_count(1)
    expect(steady.locator(".badge-criteria")).not_to_be_empty()
    expect(steady.locator(".badge-criteria")).to_contain_text(re.compile("mistake", re.I))

    # Relative ladder: Ali and Bea level at the top (either order), Cem behind; no names.
    course_rows = card_rows(ali, ".card-course")
    assert sorted(course_rows) == sorted([f"#1 · {xp} XP · You", f"#1 · {xp} XP · same as you", f"#3 · 0 XP · {xp} behind"]), course_rows
    ladder_text = summary.locator(".card-ladder").all_inner_texts()
    assert not any(name in text for text in ladder_text for name in ("Ali", "Bea", "Cem")), ladder_text
    expect(summary.locator(".card-ladder li[data-you='true']")).to_have_count(2)  # one row on each ladder
    assert card_rows(ali, ".card-stations") == [f"#1 · Station 1 · {points} points · You", f"#2 · Station 2 · 0 points · {points} behind"]

    screenshot(ali, "card")
    ali.set_viewport_size(PHONE)
    expect(learner).to_be_visible()
    screenshot(ali, "card-phone")
    summary.locator(".card-stations").scroll_into_view_if_needed()
    screenshot(ali, "card-phone-ladder")
    ali.set_viewport_size({"width": 800, "height": 520})

    # Download: the signed credential, saved under the name the server gives it.
    with ali.expect_download(timeout=TIMEOUT_MS) as download_info:
        steady.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == f"amaliy-badge-{steady.get_attribute('data-badge')}.jwt", download.suggested_filename
    token = Path(download.path()).read_text()
    parts = token.strip().split(".")
    assert len(parts) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts), token[:80]
    expect(steady.locator(".badge-error")).to_be_empty()

    # The server's card says the same (one fetch after the finish was enough).
    with server.http() as http:
        card = http.get("/api/me/card", headers={"Authorization": f"Bearer {ali.evaluate('JSON.parse(sessionStorage.getItem(`amaliy:signin`)).token')}"}).json()
    assert card["xp_gained"] == xp and sorted(b["name"] for b in card["badges"]) == ["Beaker heated", "Level 2", "Steady hands"]


#: the summary's own view of a finished station (summary.js SummaryCard.show), for the cards drawn below
STEPS = [{"id": "a", "text": "Put the beaker on the tripod."}, {"id": "b", "text": "Light the burner."}]


def progress(finished: float) -> dict[str, Any]:
    return {"done": {"a": {"points": 10}, "b": {"points": 6}}, "mistakes": {}, "started": 0, "finished": finished, "score": 16, "bonus": 0}


def test_the_card_shows_what_each_ladder_mode_allows_and_survives_a_failed_fetch(
    server: LiveServer, browser, screenshot: Callable[[Page, str], Path]
) -> None:
    """The summary card of card.js and summary.js on the landing page, with GET /api/me/card
    answered here: a guest's card, a full ladder with names, an "off" one, a failed fetch."""
    page, problems = watched_page(browser, expected=(503,))  # the failed fetch below is on purpose
    answer: dict[str, Any] = {}
    try:
        page.route("**/api/me/card", lambda route: route.fulfill(status=answer["status"], json=answer["json"]))
        page.goto(server.base_url)
        expect(page.locator("#join-form")).to_be_visible()
        page.evaluate(
            """async () => {
                document.getElementById('join-form').hidden = true;
                const { SummaryCard } = await import('/summary.js');
                window.card = new SummaryCard(document.getElementById('summary'));
            }"""
        )
        summary, learner, ladders = page.locator("#summary"), page.locator("#summary .learner-card"), page.locator("#summary .card-ladders")
        finishes = iter(range(1, 100))

        def show(card: dict[str, Any], course: bool, status: int = 200, state: str = "shown") -> dict[str, Any]:
            """The summary of a new finish, with the card the server answers for it."""
            answer.update(status=status, json=card)
            page.evaluate(
                """([course, steps, progress]) => {
                    window.card.learner.room = () => ({ token: 'token', course: course ? { id: 'c_1', name: 'Kimyo' } : null });
                    window.card.show({ title: 'Heat the beaker', steps, progress, myScore: 16 });
                }""",
                [course, STEPS, progress(next(finishes))],
            )
            expect(learner).to_have_attribute("data-state", state, timeout=TIMEOUT_MS)
            return page.evaluate(
                """() => {
                    const parts = [...document.querySelectorAll('#summary .learner-card, #summary .card-ladders')].filter((p) => !p.hidden);
                    return {parts: parts.map((p) => p.className), text: parts.map((p) => p.innerText).join('\\n'),
                            rows: parts.flatMap((p) => [...p.querySelectorAll('.card-ladder li')]).map((li) => li.innerText.replace(/\\s+/g, ' ').trim()),
                            imgs: document.querySelectorAll('#summary img').length};
                }"""
            )

        stations = {"mode": "relative", "stations": 3, "ladder": [
            {"rank": 1, "station": 2, "score": 30, "steps_done": 3, "you": False, "gap": 14},
            {"rank": 2, "station": 1, "score": 16, "steps_done": 2, "you": True, "gap": 0},
        ]}
        # A guest: no XP, levels or badges; only the station ladder, under the station's results.
        guest = show({"course": None, "session": "s_1", "practical_ladder": stations}, course=False)
        assert guest["parts"] == ["card-ladders"] and "XP" not in guest["text"] and "Badge" not in guest["text"]
        assert guest["rows"] == ["#1 · Station 2 · 30 points · 14 ahead", "#2 · Station 1 · 16 points · You"]
        screenshot(page, "guest")
        page.set_viewport_size(PHONE)
        screenshot(page, "guest-phone")
        page.set_viewport_size({"width": 800, "height": 520})

        # A full ladder names everyone, as text: a name that looks like HTML stays text.
        hostile = '<img src=x onerror="window.pwned=1">'
        full = show({
            "course": {"id": "c_1"}, "session": "s_1", "xp_gained": 40, "points": 16, "steps": 2, "mistakes": 0, "finished": True,
            "elapsed": 90, "level_before": 3, "level_up": False, "level": 3, "levels": 3, "xp": 900, "level_xp": 600,
            "next_level_xp": None, "to_next": None, "badges": [],
            "ladder": {"mode": "full", "students": 2, "ladder": [
                {"rank": 1, "name": "Oʻktam Gʻaniyev", "xp": 900, "level": 3, "you": True, "gap": 0},
                {"rank": 2, "name": hostile, "xp": 100, "level": 1, "you": False, "gap": -800},
            ]},
            "practical_ladder": {"mode": "full", "stations": 1, "ladder": [
                {"rank": 1, "station": 1, "score": 16, "steps_done": 2, "you": True, "members": ["Oʻktam Gʻaniyev", hostile]},
            ]},
        }, course=True)
        assert full["imgs"] == 0 and page.evaluate("window.pwned") is None
        assert full["rows"] == [
            "#1 · Oʻktam Gʻaniyev · 900 XP · You", f"#2 · {hostile} · 100 XP · 800 behind", f"#1 · Station 1 · Oʻktam Gʻaniyev, {hostile} · 16 points · You",
        ]
        assert "+40 XP" in full["text"] and "Level 3" in full["text"] and "Top level" in full["text"] and "Level up!" not in full["text"]
        screenshot(page, "full-ladder")

        # "off": no ladders at all; a course student still sees their XP.
        off = show({**full_card_off(), "course": {"id": "c_1"}}, course=True)
        assert off["parts"] == ["learner-card"] and "+0 XP" in off["text"] and not off["rows"]

        # A failed fetch: a quiet line and "Try again", which fetches again; the summary itself is whole.
        show({"detail": "busy"}, course=True, status=503, state="failed")
        expect(learner).to_have_text("Your XP and badges could not be loaded just now. Try again")
        show({"detail": "busy"}, course=False, status=503, state="failed")
        expect(ladders).to_have_text("The ladder could not be loaded just now. Try again")  # a guest's: where the station ladder goes
        expect(summary.locator("h2")).to_have_text("Heat the beaker: done!")
        expect(summary.get_by_role("button", name="Close")).to_be_visible()
        screenshot(page, "failed")
        answer.update(status=200, json={"course": None, "session": "s_1", "practical_ladder": stations})
        ladders.get_by_role("button", name="Try again").click()
        expect(learner).to_have_attribute("data-state", "shown", timeout=TIMEOUT_MS)
        expect(ladders.locator("li")).to_have_count(2)
        expect(learner).to_be_hidden()
        assert not problems, problems
    finally:
        page.close()


def full_card_off() -> dict[str, Any]:
    """A course student's card with the course's ladder mode "off": no ladder in it at all."""
    return {
        "session": "s_1", "xp_gained": 0, "points": 0, "steps": 0, "mistakes": 0, "finished": False, "elapsed": None,
        "level_before": 1, "level_up": False, "level": 1, "levels": 10, "xp": 0, "level_xp": 0, "next_level_xp": 120, "to_next": 120,
        "badges": [], "ladder": {"mode": "off", "students": 30}, "practical_ladder": {"mode": "off", "stations": 4},
    }
