"""The challenge HUD as a VR headset shows it: the in-world panel (vrpanel.js).

Headless Chromium cannot start an immersive-vr session, so the page's test hook
shows the panel in the normal 3D view (``window.amaliy.vrPanel.show()``) and
presses its buttons by label through the hit test a controller's ``select``
uses: a ray cast at the button, the hit's uv mapped to the button's rectangle.

A student on a small uploaded lab, whose first step is a question open from the
start, answers a choice wrongly and then rightly, and then a number with the
keypad; the room's verdicts (a mistake, the step done, the challenge done) come
back as they do for the DOM panel, and the panel shows them. Another lab lets
students choose their station, which the panel offers as buttons too.
Screenshots of the panel land in test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.labs import box, judged, open_practical, package, upload
from tests.browser.tabs import TIMEOUT_MS, join_as
from tests.browser.test_challenge_hud import quiz_package

pytestmark = pytest.mark.browser

EXPLANATION = "Heat always flows from the hotter body to the colder one."


def thermometer_package() -> bytes:
    """One shared bench (no stations: everyone is at it from the start); a choice, then a number with a unit."""
    assets = {
        "floor": box((8, 0.02, 8), (0, -0.01, 0), (210, 210, 200, 255)),
        "bench": box((1.2, 0.9, 0.6), (0, 0.45, 0), (150, 105, 60, 255)),
    }
    manifest = {
        "schema_version": 2,
        "id": "vr-thermometer",
        "title": "Thermometer bench",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [{"id": "floor", "title": "Floor", "asset": "floor"}, {"id": "bench", "title": "Bench", "asset": "bench"}],
        "spawn_points": [{"position": [0, 0, 1.2]}],
        "challenge": {
            "id": "cooling",
            "title": "Cooling down",
            "steps": [
                {
                    "id": "heat",
                    "text": "Answer: which way does heat flow?",
                    "points": 10,
                    "checkpoint": {
                        "question": "Which way does heat flow between two bodies?",
                        "choice": {"choices": ["From the colder to the hotter", "From the hotter to the colder", "It does not flow"], "answer": 1},
                        "wrong": EXPLANATION,
                    },
                },
                {
                    "id": "reading",
                    "text": "Read the thermometer in the ice bath.",
                    "points": 10,
                    "checkpoint": {
                        "question": "What temperature did the thermometer show?",
                        "number": {"answer": -3.5, "tolerance": 0.2, "unit": "°C"},
                    },
                },
            ],
        },
    }
    return package(manifest, assets)


def panel(page: Page) -> dict[str, Any]:
    return page.evaluate("({visible: window.amaliy.vrPanel.visible, lines: window.amaliy.vrPanel.lines, buttons: window.amaliy.vrPanel.buttons})")


def labels(page: Page) -> list[str]:
    return [b["label"] for b in panel(page)["buttons"]]


def wait_says(page: Page, text: str) -> None:
    """Wait until one of the panel's lines contains ``text``."""
    try:
        page.wait_for_function("t => window.amaliy.vrPanel.lines.some(l => l.includes(t))", arg=text, timeout=TIMEOUT_MS)
    except Exception as exc:
        raise AssertionError(f"the VR panel never said {text!r}; it says {panel(page)['lines']}") from exc


def frames(page: Page, count: int) -> None:
    """Let the page draw ``count`` animation frames."""
    page.evaluate("n => new Promise(done => { let k = 0; const f = () => (++k >= n ? done() : requestAnimationFrame(f)); requestAnimationFrame(f); })", count)


def press(page: Page, label: str) -> None:
    assert page.evaluate("l => window.amaliy.vrPanel.press(l)", label) == label, f"no button {label!r} to press: {panel(page)['buttons']}"


def press_judged(page: Page, label: str) -> dict[str, Any]:
    """Press a button that sends an answer, until the room judges it (see labs.judged)."""
    ready = "window.amaliy.vrPanel.buttons.length > 0 && !window.amaliy.vrPanel.buttons.some(b => b.disabled)"
    return judged(page, lambda: press(page, label), ready)


def show_panel_only(page: Page) -> None:
    """Look as a headset does: a larger view, the DOM overlay out of the way, the panel shown in the 3D view."""
    page.set_viewport_size({"width": 900, "height": 900})
    page.evaluate("document.getElementById('overlay').style.visibility = 'hidden'")
    page.evaluate("window.amaliy.vrPanel.show()")
    page.wait_for_function("window.amaliy.vrPanel.visible", timeout=TIMEOUT_MS)


def test_a_vr_student_answers_checkpoints_on_the_panel(server, open_page, screenshot) -> None:
    upload(server, thermometer_package())
    session = open_practical(server, "vr-thermometer")
    student = open_page(f"{server.base_url}/?code={session['join_code']}", "student")
    join_as(student, "Madina")
    student.wait_for_function("window.amaliy.challenge.current?.id === 'heat'", timeout=TIMEOUT_MS)

    # Outside a VR session the panel is not shown; the DOM HUD is, as before.
    assert panel(student)["visible"] is False
    expect(student.locator("#challenge #checkpoint .checkpoint-question")).to_have_text("Which way does heat flow between two bodies?")
    show_panel_only(student)

    # The panel: title, the step, step 1 of 2 and the score, the question, a button per choice.
    view = panel(student)
    for text in ["Cooling down", "Answer: which way does heat flow?", "Step 1 of 2  ·  Score 0", "Which way does heat flow between two bodies?"]:
        assert text in view["lines"], f"{text!r} not on the panel: {view['lines']}"
    assert [(b["label"], b["kind"]) for b in view["buttons"]] == [
        ("From the colder to the hotter", "choice"),
        ("From the hotter to the colder", "choice"),
        ("It does not flow", "choice"),
    ]
    screenshot(student, "choices")

    # Drawn only when what it says changes: idle frames draw nothing new (at most a toast that goes away).
    before = student.evaluate("window.amaliy.vrPanel.redraws")
    frames(student, 30)
    assert student.evaluate("window.amaliy.vrPanel.redraws") - before <= 1

    # A wrong choice: the room says so (a mistake, with its explanation), and the panel shows it.
    assert press_judged(student, "From the colder to the hotter")["result"] == "wrong"
    student.wait_for_function("window.amaliy.challenge.mistakes === 1", timeout=TIMEOUT_MS)
    wait_says(student, EXPLANATION)
    wrong = next(b for b in panel(student)["buttons"] if b["label"] == "From the colder to the hotter")
    assert wrong["state"] == "wrong", wrong
    screenshot(student, "wrong-choice")

    # The right one: the step is done (+10 on the panel), and the next step's question comes up with a keypad.
    assert press_judged(student, "From the hotter to the colder")["result"] == "right"
    student.wait_for_function("window.amaliy.challenge.done.includes('heat')", timeout=TIMEOUT_MS)
    wait_says(student, "+10")
    wait_says(student, "What temperature did the thermometer show?")
    wait_says(student, "Step 2 of 2")
    assert labels(student) == ["7", "8", "9", "⌫", "4", "5", "6", "-", "1", "2", "3", ".", "0", "OK"]

    # OK with nothing typed sends nothing and asks for a number.
    student.wait_for_function("!window.amaliy.vrPanel.buttons.some(b => b.disabled)", timeout=TIMEOUT_MS)
    press(student, "OK")
    wait_says(student, "Type a number first.")

    # Typing −3.5 on the keypad: digits, the point, the sign; a slip taken back with ⌫. The unit is shown.
    for key in ["3", ".", "5", "9", "⌫", "-", "."]:  # a second point is not taken
        press(student, key)
    assert student.evaluate("window.amaliy.vrPanel.entry") == "-3.5"
    wait_says(student, "−3.5 °C")
    screenshot(student, "keypad")
    assert press_judged(student, "OK")["result"] == "right"
    student.wait_for_function("window.amaliy.challenge.finished !== null", timeout=TIMEOUT_MS)
    state = student.evaluate("window.amaliy.challenge")
    assert sorted(state["done"]) == ["heat", "reading"] and state["mistakes"] == 1, state
    wait_says(student, "Challenge complete.")
    wait_says(student, f"Score {state['score']}")
    assert labels(student) == []  # no question left
    screenshot(student, "complete")

    student.evaluate("window.amaliy.vrPanel.hide()")
    student.wait_for_function("!window.amaliy.vrPanel.visible", timeout=TIMEOUT_MS)


def test_a_vr_student_chooses_a_station_on_the_panel(server, open_page, screenshot) -> None:
    upload(server, quiz_package("quiz-vr-choose", assignment="choose"))
    session = open_practical(server, "quiz-vr-choose")
    student = open_page(f"{server.base_url}/?code={session['join_code']}", "student")
    join_as(student, "Sardor")
    show_panel_only(student)
    wait_says(student, "Choose your lab station:")
    stations = [b for b in panel(student)["buttons"] if b["kind"] == "station"]
    assert [b["label"] for b in stations] == ["Station 1 · 0/1", "Station 2 · 0/1"], stations
    screenshot(student, "stations")
    press(student, "Station 2 · 0/1")
    student.wait_for_function("window.amaliy.challenge.station === 2", timeout=TIMEOUT_MS)
    wait_says(student, "Why heat a flask in a water bath?")
    assert [b["label"] for b in panel(student)["buttons"]] == ["It is faster", "The heat is even and gentle", "It looks nicer"]


HEADSET = """async () => {
  const THREE = await import('three');
  const { VrPanel } = await import('/vrpanel.js');
  const { Rig } = await import('/rig.js');
  const sent = [];
  const step = { id: 'q', checkpoint: { question: 'Which one?', choices: ['Left', 'Middle', 'Right'] } };
  const words = { shown: true, title: 'Lab', station: '', step: 'Answer: which one?', count: 'Step 1 of 1', score: 'Score 0', stations: [] };
  const checkpoint = { step, busy: false, last: null, status: { text: '', kind: '' }, send: (value) => sent.push(value) };
  const rig = new Rig();
  const scene = new THREE.Scene();
  scene.add(rig.group);
  rig.group.position.set(1, 0, 2);
  rig.group.rotation.y = 0.4;
  const panel = new VrPanel({ rig, challenge: { words: () => words }, checkpoint, hud: { onToast() {} } });
  const world = (object) => object.getWorldPosition(new THREE.Vector3());
  const eyes = () => world(rig.camera);
  const facing = () => {  // the panel's front, seen from the eyes: 1 when it faces them squarely
    const normal = new THREE.Vector3(0, 0, 1).transformDirection(panel.mesh.matrixWorld);
    return normal.dot(eyes().sub(world(panel.mesh)).normalize());
  };
  const out = {};
  // A session starts: the headset pose is level, ahead along the rig's heading.
  rig.camera.rotation.set(0, 0, 0);
  panel.setImmersive(true);
  panel.update();
  const ahead = new THREE.Vector3(0, 0, -1).applyQuaternion(rig.camera.getWorldQuaternion(new THREE.Quaternion()));
  const offset = world(panel.mesh).sub(eyes());
  out.floating = { visible: panel.mesh.visible, parent: panel.mesh.parent === rig.group, along: offset.dot(ahead), below: -offset.y, facing: facing() };
  // The head turns a quarter turn: the panel eases round to stay in front.
  rig.camera.rotation.set(0, Math.PI / 2, 0);
  rig.camera.updateMatrixWorld();
  for (let i = 0; i < 120; i++) panel.update();
  const turned = new THREE.Vector3(0, 0, -1).applyQuaternion(rig.camera.getWorldQuaternion(new THREE.Quaternion()));
  out.followed = { along: world(panel.mesh).sub(eyes()).dot(turned), facing: facing() };
  // A left controller is tracked: the panel moves onto it, above the hand and tilted to the face.
  const grip = new THREE.Group();
  rig.group.add(grip);
  grip.position.set(-0.2, 1.1, -0.35);
  rig.grips[0] = grip;
  panel.update();
  out.held = { parent: panel.mesh.parent === grip, above: world(panel.mesh).y - world(grip).y, width: panel.mesh.scale.x };
  // The right controller points at the middle choice (as xr.js's ray does): hover, then select presses it.
  const controller = new THREE.Group();
  rig.group.add(controller);
  controller.position.set(0.25, 1.2, -0.2);
  const middle = panel.buttons.find((b) => b.label === 'Middle');
  panel.mesh.updateWorldMatrix(true, false);
  const aim = panel.mesh.localToWorld(new THREE.Vector3((middle.x + middle.w / 2) / 1024 - 0.5, 0.5 - (middle.y + middle.h / 2) / panel.height, 0));
  controller.lookAt(aim);
  controller.rotateY(Math.PI);  // lookAt turns +z to the target; a controller points down -z
  controller.updateMatrixWorld(true);
  const raycaster = new THREE.Raycaster();
  const ray = () => raycaster.setFromXRController(controller);
  panel.track(ray);
  panel.update();
  out.hovered = panel.buttons.find((b) => b.state === 'hover')?.label ?? null;
  out.touches = panel.touches(ray());
  out.pressed = panel.select(ray());
  // Pointing away: not on the panel (a trigger pulled there grabs, as before).
  controller.rotateY(Math.PI / 2);
  controller.updateMatrixWorld(true);
  out.away = panel.touches(ray());
  // The hand that holds the panel does not press it, wherever it points.
  out.ownHand = panel.touches(new THREE.Raycaster(world(panel.mesh).add(new THREE.Vector3(0, 0, 0.3).transformDirection(panel.mesh.matrixWorld)),
    new THREE.Vector3(0, 0, -1).transformDirection(panel.mesh.matrixWorld)), grip);
  out.sent = sent;
  // The session ends: the panel is gone.
  panel.setImmersive(false);
  panel.update();
  out.after = panel.mesh.visible;
  return out;
}"""


def test_the_panel_in_a_headset_pose(server, open_page) -> None:
    """Where the panel goes in a headset, and a controller's ray pressing it: the page's own modules with a
    made-up head and controllers (no session can start headless), since no real headset takes part in these tests."""
    page = open_page(f"{server.base_url}/", "headset")
    page.wait_for_function("document.readyState === 'complete'")
    out = page.evaluate(HEADSET)
    floating = out["floating"]
    assert floating["visible"] and floating["parent"], out
    assert 0.75 < floating["along"] < 0.85, out  # at reading distance ahead
    assert 0.05 < floating["below"] < 0.6, out  # hanging a little below the eyes
    assert floating["facing"] > 0.9, out
    assert 0.75 < out["followed"]["along"] < 0.85 and out["followed"]["facing"] > 0.9, out
    assert out["held"]["parent"] and 0 < out["held"]["above"] < 0.3 and out["held"]["width"] < 0.3, out
    assert out["hovered"] == "Middle" and out["touches"] is True and out["pressed"] == "Middle", out
    assert out["away"] is False and out["ownHand"] is False and out["sent"] == [1] and out["after"] is False, out
