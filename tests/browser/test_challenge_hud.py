"""The lab challenge in real tabs against a real server: the student's HUD and the teacher's grid.

A student works through the chemistry lab's water bath at their station while
the teacher watches the class grid. A partner at the same bench (the Python
SDK, moved there by the teacher with the grid's station control) does the
first steps; the student then carries the beaker of water onto the tripod with
the mouse, through the page's own pick-up and put-down code, and the HUD ticks
the step off (+points, a chime, the next step) while the teacher's grid shows
it done. The student also switches the Bunsen burner with the equipment panel.

A second lab, built here and uploaded as a designer would, lets students
choose their station and asks checkpoint questions: a wrong answer, a refused
one (too fast; a question not open), right answers, and the summary card.

Objects are found from the room's snapshot by id pattern and title (the
station's copy of each template object, ``<id>@<station>``), never by index.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Callable, Sequence

import pytest
from playwright.sync_api import Page, expect

from amaliy_client import AmaliyClient
from tests.browser.labs import box, judged, open_practical, package, upload, wait_judged
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as

pytestmark = pytest.mark.browser

#: a quarter turn about x: a beaker on its side, pouring
TIPPED = [math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)]


@pytest.fixture
def sdk(server) -> Any:
    started: list[ThreadedClient] = []

    def join(code: str, name: str) -> ThreadedClient:
        started.append(ThreadedClient(server.base_url, code, name))
        return started[-1]

    yield join
    for client in started:
        client.close()


def teacher_page(open_page, session: dict[str, Any]) -> Page:
    page = open_page(session["teacher_url"], "teacher")
    page.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    return page


def challenge(page: Page) -> dict[str, Any]:
    return page.evaluate("window.amaliy.challenge")


def grid_row(page: Page, participant: str) -> dict[str, Any]:
    return page.evaluate("id => window.amaliy.grid.rows.find(r => r.participant === id) ?? null", participant)


def position(obj: dict[str, Any]) -> list[float]:
    return [float(v) for v in obj["transform"][:3]]


def to_world(transform: Sequence[float], local: Sequence[float]) -> list[float]:
    """A point in an object's frame (position xyz, quaternion xyzw) in lab space."""
    x, y, z, w = transform[3:7]
    vx, vy, vz = local
    cx, cy, cz = y * vz - z * vy, z * vx - x * vz, x * vy - y * vx
    ccx, ccy, ccz = y * cz - z * cy, z * cx - x * cz, x * cy - y * cx
    return [transform[0] + vx + 2 * (w * cx + ccx), transform[1] + vy + 2 * (w * cy + ccy), transform[2] + vz + 2 * (w * cz + ccz)]


def station_object(objects: dict[str, dict[str, Any]], station: int, pattern: str) -> dict[str, Any]:
    """The station's own copy of a template object whose id matches ``pattern``."""
    found = [o for o in objects.values() if o.get("station") == station and re.fullmatch(pattern, o["id"].split("@")[0])]
    assert len(found) == 1, f"station {station} should have one object like {pattern!r}: {[o['id'] for o in found]}"
    return found[0]


def snap_point(obj: dict[str, Any], snap: str) -> list[float]:
    local = next(s["position"] for s in obj["snap_points"] if s["id"] == snap)
    return to_world(obj["transform"], local)


def click_at(page: Page, point: Sequence[float]) -> None:
    at = page.evaluate("p => window.amaliy.screenPoint(...p)", list(point))
    assert at is not None, f"{point} is behind the student"
    page.mouse.move(*at)
    page.mouse.down()
    page.mouse.up()


def carry(sdk: ThreadedClient, object_id: str, transform: list[float], hold: Callable[[AmaliyClient], bool] | None = None) -> None:
    """The SDK participant picks an object up, moves it to ``transform`` (until ``hold`` is true), and puts it down there."""
    sdk.call(sdk.client.grab(object_id))
    sdk.wait_for(f"{sdk.id} holds {object_id}", lambda c: c.objects[object_id]["holder"] == c.id)
    sdk.call(sdk.client.move(object_id, transform))
    if hold is not None:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not sdk.read(hold):  # keep moving it: a held object's lease runs from its last move
            assert time.monotonic() < deadline, f"{object_id} held at {transform} never did it"
            sdk.call(sdk.client.move(object_id, transform))
            time.sleep(0.1)
    sdk.call(sdk.client.release(object_id))
    sdk.wait_for(f"{object_id} is put down", lambda c: c.objects[object_id]["holder"] is None)


def test_water_bath_hud_ticks_off_the_beaker_and_the_teacher_grid_follows(server, open_page, sdk, screenshot) -> None:
    session = open_practical(server, "chemistry-bench")
    code = session["join_code"]
    student = open_page(f"{server.base_url}/?code={code}", "student")
    me = join_as(student, "Gulnora")
    student.wait_for_function("window.amaliy.challenge.station !== null", timeout=TIMEOUT_MS)
    station = challenge(student)["station"]

    partner = sdk(code, "Bobur")
    partner.wait_for("Bobur is placed at a station", lambda c: c.station is not None)
    lab = partner.read(lambda c: c.lab)
    steps = lab.challenge["steps"]
    highlight = lab.stations[station]["highlight"]

    # The HUD: the challenge's title, its first step, step 1 of N, a running timer and the score.
    hud = student.locator("#challenge")
    expect(hud).to_be_visible()
    expect(hud.locator("#challenge-title")).to_have_text(lab.challenge["title"])
    expect(hud.locator("#challenge-step")).to_have_text(steps[0]["text"])
    expect(hud.locator("#challenge-count")).to_have_text(f"Step 1 of {len(steps)}")
    expect(hud.locator("#challenge-score")).to_have_text("Score 0")
    expect(hud.locator("#challenge-timer")).to_have_text(re.compile(r"Time \d+:\d\d"))
    assert sorted(challenge(student)["highlighted"]) == sorted(highlight.get(steps[0]["id"], []))

    # The teacher's grid lists both students; the teacher moves Bobur to Gulnora's bench.
    teacher = teacher_page(open_page, session)
    row = teacher.locator(f"#grid tr[data-participant='{me}']")
    expect(row).to_be_visible()
    expect(row.locator(f"td[data-step='{steps[0]['id']}']")).to_have_attribute("data-status", "current")
    if partner.read(lambda c: c.station) != station:
        teacher.locator(f"#grid select[data-assign='{partner.id}']").select_option(str(station))
        partner.wait_for(f"Bobur is at station {station}", lambda c: c.station == station)
    expect(hud.locator("#challenge-station")).to_contain_text("with Bobur")
    expect(teacher.locator(f"#stations tr[data-station='{station}'] td.members")).to_contain_text("Bobur")

    objects = partner.read(lambda c: c.objects)
    beaker = station_object(objects, station, r"beaker-water")
    tripod = station_object(objects, station, r"tripod")
    flask = station_object(objects, station, r"flask")
    burner = station_object(objects, station, r"burner")
    assert "water" in beaker["title"].lower()
    # The step the beaker and the tripod are about: the HUD must tick this one off.
    beaker_step = next(s for s in steps if set(highlight.get(s["id"], [])) == {beaker["id"], tripod["id"]})
    before = steps[: steps.index(beaker_step)]

    # Bobur does the steps before it: pours water into the flask, stands the burner under the tripod.
    assert [s["id"] for s in before] == ["fill-flask", "burner-under-tripod"], "the water bath's steps changed: update this test"
    over_flask = [*to_world(flask["transform"], [0.0, 0.22, 0.0]), *TIPPED]
    carry(partner, beaker["id"], over_flask, hold=lambda c: c.lab.value(flask["id"], "filled") is True)
    carry(partner, beaker["id"], list(beaker["transform"]))
    carry(partner, burner["id"], [*snap_point(tripod, "burner"), *tripod["transform"][3:]])
    student.wait_for_function("id => window.amaliy.challenge.current?.id === id", arg=beaker_step["id"], timeout=TIMEOUT_MS)
    expect(hud.locator("#challenge-step")).to_have_text(beaker_step["text"])
    expect(student.locator(".toast.points").filter(has_text="Bobur")).not_to_have_count(0)
    assert sorted(challenge(student)["highlighted"]) == sorted([beaker["id"], tripod["id"]])
    score_before = challenge(student)["score"]
    chimes_before = challenge(student)["chimes"]["step"]
    screenshot(student, "student-beaker-step")

    # Gulnora carries the beaker onto the tripod with the mouse: click it, point at the gauze, click.
    click_at(student, to_world(beaker["transform"], [0.0, 0.08, 0.0]))
    partner.wait_for("Gulnora holds the beaker", lambda c: c.objects[beaker["id"]]["holder"] == me)
    top = snap_point(tripod, "top")
    at = student.evaluate("p => window.amaliy.screenPoint(...p)", top)
    student.mouse.move(*at)
    try:
        student.wait_for_function(
            "([id, snap]) => window.amaliy.ghosts[id]?.snap === snap", arg=[beaker["id"], f"{tripod['id']}/top"], timeout=TIMEOUT_MS
        )
    except Exception as exc:  # say what the page would do instead
        ghost = student.evaluate("id => window.amaliy.ghosts[id]", beaker["id"])
        screenshot(student, "student-ghost-elsewhere")
        raise AssertionError(f"pointing at the tripod's gauze, the beaker's ghost should take {tripod['id']}/top; it shows {ghost}") from exc
    screenshot(student, "student-carrying-beaker")
    student.mouse.down()
    student.mouse.up()

    # The HUD ticks the step off: +points in a toast, a chime, the next step, the bar and the score move on.
    student.wait_for_function("id => window.amaliy.challenge.done.includes(id)", arg=beaker_step["id"], timeout=TIMEOUT_MS)
    after = steps[steps.index(beaker_step) + 1]
    points = partner.read(lambda c: c.lab.progress(station)["done"][beaker_step["id"]]["points"])
    assert points > 0
    expect(student.locator(".toast.points").filter(has_text=beaker_step["text"])).to_contain_text(f"+{points}")
    expect(hud.locator("#challenge-step")).to_have_text(after["text"])
    done = len(before) + 1
    expect(hud.locator("#challenge-count")).to_have_text(f"Step {done + 1} of {len(steps)}")
    state = challenge(student)
    assert state["score"] == score_before + points
    assert state["chimes"]["step"] == chimes_before + 1
    assert state["current"]["id"] == after["id"]
    expect(hud.locator("#challenge-score")).to_contain_text(f"Score {state['score']}")
    width = student.evaluate("parseFloat(document.getElementById('challenge-bar').style.width)")
    assert abs(width - 100 * done / len(steps)) < 0.01
    screenshot(student, "student-step-done")

    # The teacher's grid: the step is done for Gulnora, the next one is current, her score is the room's.
    cell = row.locator(f"td[data-step='{beaker_step['id']}']")
    expect(cell).to_have_attribute("data-status", "done")
    expect(cell).to_have_text("✓")
    expect(row.locator(f"td[data-step='{after['id']}']")).to_have_attribute("data-status", "current")
    my_score = partner.read(lambda c: c.lab.score(me, station))
    expect(row.locator("td.score")).to_have_text(str(my_score))
    view = grid_row(teacher, me)
    assert view["current"] == after["id"] and view["steps"][beaker_step["id"]] == "done" and view["station"] == station
    assert all(view["steps"][s["id"]] == "done" for s in before)
    expect(teacher.locator(f"#stations tr[data-station='{station}'] td.score")).to_have_text(str(state["score"]))
    screenshot(teacher, "teacher-grid")

    # The equipment panel (the burner stands under the tripod's gauze, out of the pointer's reach, so it is
    # selected through the page's hook): its switch lights it for everyone, and its label says so.
    student.evaluate("id => window.amaliy.select(id)", burner["id"])
    panel = student.locator("#properties")
    expect(panel.locator("h3")).to_have_text(burner["title"])
    expect(panel.locator(".property-hint")).to_have_text("Point at it and press E, or use the switch here.", use_inner_text=True)
    switch = panel.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    partner.wait_for("the burner is lit", lambda c: c.lab.value(burner["id"], "lit") is True)
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(student.locator(f".property-label[data-object='{burner['id']}']")).to_contain_text("on")
    screenshot(student, "student-burner-lit")


# ------------------------------------------------------------------ a lab with questions


def quiz_package(package_id: str = "quiz-bench", assignment: str = "choose") -> bytes:
    """Two benches (students choose theirs, or the teacher places them); two questions, then a lamp to switch on."""
    assets = {
        "floor": box((8, 0.02, 8), (0, -0.01, 0), (210, 210, 200, 255)),
        "bench": box((1.0, 0.9, 0.6), (0, 0.45, 0), (150, 105, 60, 255)),
        "lamp": box((0.08, 0.2, 0.08), (0, 0.1, 0), (250, 220, 60, 255)),
    }
    manifest = {
        "schema_version": 2,
        "id": package_id,
        "title": "Quiz bench",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [{"id": "floor", "title": "Floor", "asset": "floor"}],
        "spawn_points": [{"position": [0, 0, 2.5]}],
        "stations": {
            "template": {
                "objects": [
                    {"id": "bench", "title": "Bench", "asset": "bench"},
                    {
                        "id": "lamp",
                        "title": "Spirit lamp",
                        "asset": "lamp",
                        "interactable": True,
                        "transform": {"position": [0.2, 0.9, 0.0]},
                        "properties": [{"id": "on", "title": "Flame", "kind": "switch", "initial": False}],
                    },
                ],
                "spawn_points": [{"position": [0, 0, 0.9]}],
            },
            "grid": {"count": 2, "columns": 2, "origin": [-1.5, 0, -1], "spacing": [3, 3]},
            "group_size": 1,
            "assignment": assignment,
        },
        "challenge": {
            "id": "quiz",
            "title": "Heating safely",
            "time_bonus": {"target_seconds": 900, "points": 20},
            "steps": [
                {
                    "id": "why",
                    "text": "Answer: why a water bath?",
                    "points": 10,
                    "checkpoint": {
                        "question": "Why heat a flask in a water bath?",
                        "choice": {"choices": ["It is faster", "The heat is even and gentle", "It looks nicer"], "answer": 1},
                        "wrong": "Think about how evenly water spreads heat.",
                    },
                },
                {
                    "id": "volume",
                    "text": "Answer: how much water?",
                    "points": 10,
                    "checkpoint": {"question": "How much water goes in the bath?", "number": {"answer": 250, "tolerance": 5, "unit": "mL"}},
                },
                {"id": "light", "text": "Light the spirit lamp.", "points": 10, "condition": {"property": {"object": "lamp", "property": "on", "equals": True}}},
            ],
        },
    }
    return package(manifest, assets)


def test_choose_a_station_answer_checkpoints_and_see_the_summary(server, open_page, screenshot) -> None:
    upload(server, quiz_package())
    session = open_practical(server, "quiz-bench")
    student = open_page(f"{server.base_url}/?code={session['join_code']}", "student")
    me = join_as(student, "Dilnoza")

    # Under "choose" the student is at no station yet: the HUD offers the stations.
    hud = student.locator("#challenge")
    expect(hud.locator("#challenge-step")).to_have_text("Choose your lab station:")
    picker = hud.locator("#station-picker")
    expect(picker.get_by_role("button")).to_have_count(2)
    screenshot(student, "station-picker")
    picker.get_by_role("button", name=re.compile(r"^Station 2")).click()
    student.wait_for_function("window.amaliy.challenge.station === 2", timeout=TIMEOUT_MS)
    expect(hud.locator("#challenge-step")).to_have_text("Answer: why a water bath?")
    expect(hud.locator("#challenge-station")).to_have_text("Station 2")

    # A question with choices: a wrong one is marked and explained (and costs the penalty).
    checkpoint = hud.locator("#checkpoint")
    expect(checkpoint.locator(".checkpoint-question")).to_have_text("Why heat a flask in a water bath?")
    choices = checkpoint.locator("button.choice")
    expect(choices).to_have_count(3)
    assert judged(student, choices.nth(0).click)["result"] == "wrong"
    expect(choices.nth(0)).to_have_class(re.compile(r"\bwrong\b"))
    expect(checkpoint.locator(".checkpoint-feedback")).to_contain_text("Think about how evenly water spreads heat.")
    expect(student.locator(".toast.mistake").first).to_contain_text("Think about how evenly water spreads heat.")
    assert challenge(student)["mistakes"] == 1
    screenshot(student, "checkpoint-wrong")

    # Trying every choice at once is what the room's answer rate stops: a quick second try is refused, and the panel says so.
    for _ in range(5):
        choices.nth(2).click()
        result = wait_judged(student)
        if result["result"] == "refused":
            break
    assert result["result"] == "refused" and result["code"] == "rate_limited", result
    expect(checkpoint.locator(".checkpoint-feedback")).to_have_attribute("data-result", "refused")
    expect(checkpoint.locator(".checkpoint-feedback")).to_contain_text("Too many answers")
    expect(student.locator(".toast.error[data-code='rate_limited']").first).to_be_visible()
    screenshot(student, "checkpoint-rate-limited")

    # The right choice (once the room takes answers again) scores.
    assert judged(student, choices.nth(1).click)["result"] == "right"
    student.wait_for_function("window.amaliy.challenge.done.includes('why')", timeout=TIMEOUT_MS)
    expect(student.locator(".toast.points").filter(has_text="why a water bath")).to_contain_text("+10")

    # A question no longer open (answered already, say by a partner a moment before) is refused, and the panel says so.
    student.evaluate("window.amaliy.answer(1, 'why')")
    student.wait_for_function("window.amaliy.challenge.checkpoint?.code === 'step_not_open'", timeout=TIMEOUT_MS)
    expect(checkpoint.locator(".checkpoint-feedback")).to_have_text("That question is already answered.")
    expect(student.locator(".toast.error[data-code='step_not_open']")).to_be_visible()

    # A number with its unit: a wrong number, then the right one.
    expect(checkpoint.locator(".checkpoint-question")).to_have_text("How much water goes in the bath?")
    expect(checkpoint.locator(".unit")).to_have_text("mL")
    number = checkpoint.locator("input[type='number']")
    submit = checkpoint.get_by_role("button", name="Answer")
    number.fill("100")
    assert judged(student, submit.click)["result"] == "wrong"
    expect(checkpoint.locator(".checkpoint-feedback")).to_have_attribute("data-result", "wrong")
    number.fill("250")
    assert judged(student, submit.click)["result"] == "right"
    student.wait_for_function("window.amaliy.challenge.done.includes('volume')", timeout=TIMEOUT_MS)

    # The last step: the lamp's switch in the equipment panel (the step's object is offered there), then the summary.
    expect(hud.locator("#challenge-step")).to_have_text("Light the spirit lamp.")
    student.wait_for_function("window.amaliy.selected === 'lamp@2'", timeout=TIMEOUT_MS)
    assert challenge(student)["highlighted"] == ["lamp@2"]
    student.locator("#properties").get_by_role("switch").click()
    student.wait_for_function("window.amaliy.challenge.summary !== null && window.amaliy.challenge.finished !== null", timeout=TIMEOUT_MS)
    state = challenge(student)
    card = student.locator("#summary")
    expect(card).to_be_visible()
    expect(card.locator("dd[data-fact='steps']")).to_have_text("3 of 3")
    expect(card.locator("dd[data-fact='mistakes']")).to_have_text(str(state["mistakes"]))
    expect(card.locator("dd[data-fact='bonus']")).to_have_text(f"+{state['bonus']}")
    expect(card.locator("dd[data-fact='score']")).to_have_text(str(state["score"]))
    expect(card.locator("dd[data-fact='time']")).to_have_text(re.compile(r"\d+:\d\d"))
    assert state["mistakes"] >= 2 and state["bonus"] > 0, state
    assert state["score"] == 30 - 2 * state["mistakes"] + state["bonus"], state  # 3 steps of 10, 2 off a mistake
    assert state["chimes"]["finish"] == 1
    expect(hud.locator("#challenge-step")).to_have_text("Challenge complete.")
    screenshot(student, "summary")
    card.get_by_role("button", name="Close").click()
    expect(card).to_be_hidden()
    assert me in student.evaluate("Object.keys(window.amaliy.participants)")


def test_a_student_waits_for_the_teacher_to_place_them(server, open_page, screenshot) -> None:
    upload(server, quiz_package("quiz-by-teacher", assignment="teacher"))
    session = open_practical(server, "quiz-by-teacher")
    student = open_page(f"{server.base_url}/?code={session['join_code']}", "student")
    me = join_as(student, "Jasur")
    hud = student.locator("#challenge")
    expect(hud.locator("#challenge-step")).to_have_text("Waiting for the teacher to place you at a station…")
    expect(hud.locator("#station-picker")).to_be_hidden()
    expect(hud.locator("#checkpoint")).to_be_hidden()

    teacher = teacher_page(open_page, session)
    row = teacher.locator(f"#grid tr[data-participant='{me}']")
    expect(row.locator("td.name")).to_have_text("Jasur")
    expect(row.locator("select")).to_have_value("")
    screenshot(teacher, "grid-unplaced")
    row.locator("select").select_option("1")
    student.wait_for_function("window.amaliy.challenge.station === 1", timeout=TIMEOUT_MS)
    expect(hud.locator("#challenge-step")).to_have_text("Answer: why a water bath?")
    expect(hud.locator("#checkpoint .checkpoint-question")).to_have_text("Why heat a flask in a water bath?")
    expect(row.locator("td[data-step='why']")).to_have_attribute("data-status", "current")
    expect(teacher.locator("#stations tr[data-station='1'] td.members")).to_have_text("Jasur")
    # The room walks the student to the station: the page stands at its spawn point.
    spawn = student.evaluate("window.amaliy.position")
    assert math.hypot(spawn[0] - -1.5, spawn[2] - (-1 + 0.9)) < 0.01, spawn
    screenshot(student, "placed-by-teacher")
