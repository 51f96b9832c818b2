"""Hints in real tabs against a real server: the student's hint panel, the ghost, the
teacher's stuck flags and hint form, and the dashboard's skills heat map.

A course of two students (Ali and Bea, signed in with their codes) works on the
integration test's hinted lab (tests/integration/test_hints_live.py, hinted_lab()) with a
short idle time and cooldown, and assets a person can make out: a bench, a tripod, a
beaker and a burner. Ali signs in in a tab, chooses Bench A and does nothing:

* the room nudges him (the HUD shows "Nudge" and its words, and so does the VR panel; the
  Hint button already says what the next rung costs, "Hint (−2 points)"), and asking inside the cooldown shows
  "Next hint in N s" counting down, not a red toast;
* the teacher's grid marks him amber with the room's reason in words ("idle 2 s on step 1");
* the room climbs to the specific hint, which outlines the beaker and the tripod in 3D;
* then to the bottom-out hint, a ghost beaker moving onto the tripod; the button then says
  "No more hints"; reloading either tab brings the hint, the ghost and the flag back from
  the snapshot;
* the teacher types a hint to Ali alone in the grid's form; he sees it labelled as from the
  teacher.

Bea (the Python SDK) joins the bench and does the first two steps; the grid's flag clears,
Ali's hint and ghost go with the step, and the dashboard's Skills tab shows the heat map:
Bea mastered the setup skill, Ali (hinted first) did not.

Every wait is for a condition. Screenshots at 800×520 and 390×844 land in test-artifacts/.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.labs import box, package
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS
from tests.integration.test_challenges_live import ON_TRIPOD, PACKAGE, UPLOAD_TIMEOUT
from tests.integration.test_hints_live import HINTS, hinted_lab

pytestmark = pytest.mark.browser

DESKTOP = {"width": 800, "height": 520}
PHONE = {"width": 390, "height": 844}
#: seconds: the nudge comes after IDLE; each later rung a COOLDOWN after the one before
IDLE, COOLDOWN = 2.0, 8.0
#: the rungs come by themselves, one COOLDOWN apart: wait a little longer than that
RUNG_TIMEOUT_MS = int(COOLDOWN * 1000) + TIMEOUT_MS


def lab() -> bytes:
    """hinted_lab(), with a short idle time and cooldown, and meshes a person can make out."""
    data = hinted_lab()
    data["challenge"]["hints"].update(idle_seconds=IDLE, cooldown_seconds=COOLDOWN)
    assets = {
        "item": box((0.1, 0.1, 0.1), (0, 0, 0), (120, 120, 130, 255)),
        "floor": box((10, 0.02, 6), (0, -0.01, 0), (205, 205, 195, 255)),
        "bench": box((1.4, 0.8, 0.7), (0, 0.4, 0), (150, 105, 60, 255)),
        "tripod": box((0.2, 0.2, 0.2), (0, 0.1, 0), (70, 70, 78, 255)),
        "beaker": box((0.1, 0.14, 0.1), (0, 0.07, 0), (140, 200, 240, 255)),
        "burner": box((0.08, 0.16, 0.08), (0, 0.08, 0), (200, 60, 40, 255)),
    }
    data["assets"] = [{"id": name, "path": f"assets/{name}.glb"} for name in assets]
    data["objects"].append({"id": "floor", "asset": "floor"})
    template = data["stations"]["template"]["objects"]
    for obj in template:
        obj["asset"] = obj["id"]
        obj["transform"]["position"][1] = 0.8  # standing on the bench (the tripod already does)
    template.append({"id": "bench", "asset": "bench", "transform": {"position": [0, 0, -1]}})
    return package(data, assets)


def upload(server, scene: bytes) -> None:
    """As a course designer (ingest runs in a worker: slow on a busy machine)."""
    with httpx.Client(base_url=server.base_url, timeout=UPLOAD_TIMEOUT) as http:
        response = http.post("/api/scenes", files={"package": ("lab.zip", scene, "application/zip")}, headers={"Authorization": f"Bearer {server.designer_key}"})
        assert response.status_code == 201, response.text


def api(server, method: str, path: str, **kw: Any) -> Any:
    with server.http() as http:
        response = http.request(method, path, headers={"Authorization": f"Bearer {server.teacher_key}"}, **kw)
        assert response.status_code < 300, response.text
        return response.json()


def settle(page: Page) -> None:
    """Two animation frames: what changed is drawn."""
    page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def hints(page: Page) -> dict[str, Any]:
    return page.evaluate("window.amaliy.hints")


@pytest.fixture
def partners() -> Any:
    started: list[ThreadedClient] = []
    yield started
    for client in started:
        client.close()


def test_hint_ladder_teacher_flags_and_heat_map(server, open_page, partners, screenshot: Callable[[Page, str], Any]) -> None:
    def both(page: Page, name: str) -> None:
        """A screenshot at 800×520 and one at a 390×844 phone."""
        settle(page)
        screenshot(page, f"{name}-800x520")
        page.set_viewport_size(PHONE)
        settle(page)
        screenshot(page, f"{name}-390x844")
        page.set_viewport_size(DESKTOP)
        settle(page)

    upload(server, lab())
    cid = api(server, "POST", "/api/courses", json={"name": "Kimyo 9A"})["id"]
    codes = {s["name"]: s["code"] for s in api(server, "POST", f"/api/courses/{cid}/roster", content=b"name\nAli\nBea\n")["students"]}
    session = api(server, "POST", "/api/sessions", json={"scene": PACKAGE, "title": "Heating, week 1", "course": cid})

    # The teacher's page is up first (loading the lab takes a while on a software renderer).
    teacher = open_page(session["teacher_url"], "teacher")
    teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    expect(teacher.locator("#hint-all")).to_be_visible()

    student = open_page(f"{server.base_url}/?signin={codes['Ali']}", "ali")
    student.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    ali = student.evaluate("window.amaliy.me.id")
    hud = student.locator("#challenge")
    panel = hud.locator("#hint")
    hud.locator("#station-picker").get_by_role("button", name=re.compile(r"^Bench A")).click()
    student.wait_for_function("window.amaliy.challenge.station === 1", timeout=TIMEOUT_MS)
    student.evaluate("window.amaliy.moveBy(0.3, -0.35, 0.8)")  # a step back and aside, a little lower: the bench in view beside the HUD
    ask = panel.locator("#hint-ask")

    # Ali does nothing: the room nudges him. The button says what the next rung costs before he asks.
    student.wait_for_function("window.amaliy.hints.shown?.level === 1", timeout=TIMEOUT_MS)
    expect(panel.locator("#hint-rung")).to_have_text("Nudge")
    expect(panel.locator("#hint-text")).to_have_text(HINTS["nudge"])
    expect(ask).to_have_text("Hint (−2 points)")
    expect(ask).to_be_enabled()
    assert hints(student)["shown"]["reason"] == "idle"
    both(student, "nudge")
    # In a headset the VR panel says the same, with a Hint button a controller's ray (or B/Y) presses.
    student.evaluate("window.amaliy.vrPanel.show()")
    vr = student.evaluate("({lines: window.amaliy.vrPanel.lines, buttons: window.amaliy.vrPanel.buttons})")
    student.evaluate("window.amaliy.vrPanel.hide()")
    assert "Nudge" in vr["lines"] and HINTS["nudge"] in vr["lines"], vr
    assert {"label": "Hint", "text": "Hint (−2 points)", "kind": "hint", "state": "", "disabled": False} in vr["buttons"], vr

    # Asking inside the cooldown: a countdown in the panel, and no red toast.
    ask.click()
    wait = panel.locator("#hint-wait")
    expect(wait).to_have_text(re.compile(r"^Next hint in [1-8] s$"))
    expect(ask).to_be_disabled()
    first = int(re.search(r"\d+", wait.inner_text()).group())  # type: ignore[union-attr]
    student.wait_for_function(
        "n => { const m = document.getElementById('hint-wait').textContent.match(/\\d+/); return !m || Number(m[0]) < n; }", arg=first, timeout=TIMEOUT_MS
    )
    expect(student.locator(".toast.error")).to_have_count(0)
    assert hints(student)["shown"]["level"] == 1, "a refused ask shows nothing new"

    # The teacher's grid: Ali's row amber, and why, in words.
    row = teacher.locator(f"#grid tr[data-participant='{ali}']")
    expect(row).to_have_attribute("data-stuck", "amber")
    note = teacher.locator(f"#grid tr.stuck-note[data-note-for='{ali}']")
    expect(note).to_have_text("Stuck: idle 2 s on step 1")
    expect(teacher.locator("#stations tr[data-station='1'] td.status")).to_contain_text("idle 2 s on step 1")
    assert teacher.evaluate("id => window.amaliy.grid.rows.find(r => r.participant === id).stuck", ali) == {
        "level": "amber", "step": "place", "reasons": ["idle 2 s on step 1"],
    }
    both(teacher, "teacher-amber")

    # Still stuck: the specific hint, which outlines the beaker and the tripod (in the hints' own colour).
    student.wait_for_function("window.amaliy.hints.shown?.level === 2", timeout=RUNG_TIMEOUT_MS)
    expect(panel.locator("#hint-rung")).to_have_text("Hint")
    expect(panel.locator("#hint-text")).to_have_text(HINTS["specific"]["text"])
    view = hints(student)
    assert sorted(view["highlighted"]) == ["beaker@1", "tripod@1"], view
    assert view["ghost"] is None
    expect(ask).to_have_text("Hint (−5 points)")
    expect(wait).to_have_text("")  # the cooldown started again with the new hint: the old countdown is gone
    both(student, "specific")

    # Still stuck: "show me", a ghost beaker moving onto the tripod; nothing more to ask for.
    student.wait_for_function("window.amaliy.hints.shown?.level === 3", timeout=RUNG_TIMEOUT_MS)
    expect(panel.locator("#hint-rung")).to_have_text("Show me")
    expect(panel.locator("#hint-text")).to_have_text(HINTS["bottom_out"]["text"])
    ghost = hints(student)["ghost"]
    assert ghost is not None and ghost["object"] == "beaker@1" and ghost["inScene"], ghost
    assert ghost["to"] == pytest.approx(ON_TRIPOD[:3], abs=1e-4)
    expect(ask).to_have_text("No more hints")
    expect(ask).to_be_disabled()
    student.wait_for_function("window.amaliy.hints.ghost.position[1] > 0.85", timeout=TIMEOUT_MS)  # on its way up to the tripod
    both(student, "ghost")
    student.wait_for_function("!window.amaliy.hints.ghost.moving", timeout=TIMEOUT_MS)
    assert hints(student)["ghost"]["position"] == pytest.approx(ON_TRIPOD[:3], abs=1e-4), "it stays on the tripod, faint"

    # A reload brings it all back from the snapshot: Ali's newest hint and its ghost, the teacher's flag.
    student.reload()
    student.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    assert student.evaluate("window.amaliy.me.id") == ali, "the reload resumed Ali, not a new participant"
    student.wait_for_function("window.amaliy.hints.shown?.level === 3 && window.amaliy.hints.ghost?.inScene", timeout=TIMEOUT_MS)
    expect(panel.locator("#hint-rung")).to_have_text("Show me")
    expect(ask).to_have_text("No more hints")
    teacher.reload()
    teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    expect(row).to_have_attribute("data-stuck", "amber")
    expect(note).to_contain_text("idle 2 s on step 1")

    # The teacher writes to Ali alone, from the grid's form.
    row.get_by_role("button", name="Send Ali a hint").click()
    form = teacher.locator(f"#grid tr.hint-form-row[data-form-for='{ali}'] form")
    expect(form).to_be_visible()
    expect(form.locator("select[name='to']")).to_have_value("participant")
    form.get_by_label("Your own hint").fill("Look at the top of the tripod, Ali.")
    form.get_by_role("button", name="Send").click()
    expect(form.locator(".push-status")).to_have_text("Sent to Ali: your words.")
    student.wait_for_function("window.amaliy.hints.shown?.level === 0", timeout=TIMEOUT_MS)
    expect(panel.locator("#hint-rung")).to_have_text("From the teacher")
    expect(panel.locator("#hint-text")).to_have_text("Look at the top of the tripod, Ali.")
    expect(panel.locator("#hint-shown")).to_have_attribute("data-from", "teacher")
    assert hints(student)["ghost"] is None, "a new hint takes the demonstration away"
    both(student, "teacher-text")

    # Bea comes to the bench and does the first two steps: the flag clears, Ali's hint goes with its step.
    with server.http() as http:
        signed = http.post("/api/signin", json={"code": codes["Bea"]})
        assert signed.status_code == 200, signed.text
    bea = ThreadedClient.with_token(signed.json()["ws_url"], signed.json()["token"])
    partners.append(bea)
    bea.call(bea.client.choose_station(1))
    bea.wait_for("Bea is at station 1", lambda c: c.station == 1)
    expect(row).to_have_attribute("data-stuck", "")
    expect(note).to_have_count(0)
    bea.call(bea.client.grab("beaker@1"))
    bea.wait_for("Bea holds the beaker", lambda c: c.objects["beaker@1"]["holder"] == c.id)
    bea.call(bea.client.move("beaker@1", ON_TRIPOD))
    bea.call(bea.client.release("beaker@1"))
    student.wait_for_function("window.amaliy.challenge.done.includes('place')", timeout=TIMEOUT_MS)
    expect(panel.locator("#hint-shown")).to_be_hidden()
    view = hints(student)
    assert view["shown"] is None and view["highlighted"] == [] and view["ghost"] is None, view
    # Step 2 has no hint ladder: a rung pushed to it is refused, and the form says the room's sentence.
    form.get_by_role("button", name="Nudge").click()
    expect(form.locator(".push-status")).to_have_text("Step 2 has no hint at level 1 or above.")
    expect(form.locator(".push-status")).to_have_attribute("data-kind", "error")
    both(teacher, "teacher-form")
    bea.call(bea.client.interact("burner@1", "lit", True))
    student.wait_for_function("window.amaliy.challenge.done.includes('light')", timeout=TIMEOUT_MS)
    expect(panel.locator(".hint-ask")).to_be_hidden()  # the question step has no hints to ask for

    # What the room learnt reaches the course's records; then the dashboard's Skills tab shows it.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        heat = api(server, "GET", f"/api/courses/{cid}/skills")
        if sorted(heat["skills"]) == ["heating", "setup"] and all(len(s["skills"]) == 2 for s in heat["students"]):
            break
        assert time.monotonic() < deadline, heat
        time.sleep(0.1)
    by_name = {s["name"]: s["skills"] for s in heat["students"]}
    assert by_name["Bea"]["setup"]["mastered"] and not by_name["Ali"]["setup"]["mastered"], by_name

    dashboard = open_page(f"{server.base_url}/dashboard.html#key={server.teacher_key}", "dashboard")
    dashboard.locator("#course-list").get_by_role("button", name=re.compile("Kimyo 9A")).click()
    dashboard.get_by_role("tab", name="Skills").click()
    heat_map = dashboard.locator("#skills-map")
    expect(heat_map).to_be_visible()
    expect(heat_map.locator("thead th")).to_have_text(["Student", "heating", "setup"])
    bea_setup = heat_map.locator("tr[data-student] td[data-skill='setup']").nth(1)
    ali_setup = heat_map.locator("tr[data-student] td[data-skill='setup']").nth(0)
    expect(heat_map.locator("tbody th.name")).to_have_text(["Ali", "Bea"])
    expect(bea_setup.locator(".p")).to_have_text(f"{by_name['Bea']['setup']['p_known']:.2f} ✓ mastered")
    expect(ali_setup.locator(".p")).to_have_text(f"{by_name['Ali']['setup']['p_known']:.2f}")
    expect(bea_setup).to_have_attribute("data-mastered", "true")
    expect(heat_map.locator("tfoot td[data-skill='setup']")).to_have_text("1 of 2")
    # each cell's text contrasts with its colour at least 4.5:1
    contrast = dashboard.evaluate(
        """() => [...document.querySelectorAll('#skills-map td[data-p]')].map(td => {
            const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number).map(c => c / 255).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
            const lum = s => { const [r, g, b] = rgb(s); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
            const style = getComputedStyle(td);
            const [a, b] = [lum(style.backgroundColor), lum(style.color)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        })"""
    )
    assert contrast and min(contrast) >= 4.5, contrast
    heat_map.scroll_into_view_if_needed()
    both(dashboard, "heatmap")
