"""Nobody left out: a phone's screen, the device in hand, low vision, a long name.

* Layout: on a 390x844 phone (touch), the same phone on its side and a 1280x800 desktop, a student's page and the
  teacher's page (a student with a 40-character name in the room) show the status line with
  Leave, the voice bar, the help line, the walking stick, the challenge column, the teacher
  panel and the progress grid with no two of them overlapping and each inside the screen
  (bounding boxes); the teacher's Mute and Kick for the long name stay inside the panel, the
  name cut with an ellipsis and whole in its title; on the phone a toast covers neither the
  teacher's panel nor the grid. The help line folds to a "?" and stays folded on that device.
  Screenshots in test-artifacts/.
* Help: a touch screen is told stick, drag and tap; a desktop WASD, the mouse, the arrow keys
  to look and G to pick up, hold V; a headset its controls. The Talk button does on a touch
  screen what holding V does.
* Contrast: every visible text on the student page, the teacher's page and the dashboard is at
  least 4.5:1 (3:1 when large: 24 px, or 18.66 px bold) against its effective background: the
  element's and its ancestors' backgrounds and opacities composited, over white and over black
  where they let the 3D view through (the lab behind a panel can be any colour).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 1}
PHONE_ON_ITS_SIDE = {**PHONE, "viewport": {"width": 844, "height": 390}}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
#: 40 characters, the longest display name the join form takes.
LONG_NAME = "Abdurahmonbek Nurmuhammadova Samarqandiy"

#: What is drawn over the 3D view and must never cover another (toasts and notices float by design).
PANELS = ["#hud", "#reconnecting", "#voice-bar", "#teacher-panel", "#grid-panel", "#side", "#help", "#overlay > .stick", "#xr-buttons"]

BOXES = """(selectors) => {
    const out = {};
    for (const selector of selectors) {
        const el = document.querySelector(selector);
        if (!el || el.getClientRects().length === 0 || getComputedStyle(el).visibility === 'hidden') continue;
        const r = el.getBoundingClientRect();
        if (r.width && r.height) out[selector] = { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    }
    return out;
}"""


def assert_laid_out(page: Page, extra: list[str] = ()) -> dict[str, dict[str, float]]:
    """No two panels overlap and each is inside the window; returns the boxes."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    boxes = page.evaluate(BOXES, PANELS + list(extra))
    for name, box in boxes.items():
        assert box["left"] >= -0.5 and box["top"] >= -0.5, (name, box)
        assert box["right"] <= width + 0.5 and box["bottom"] <= height + 0.5, (name, box, width, height)
    panels = [name for name in boxes if name in PANELS]
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            p, q = boxes[a], boxes[b]
            apart = p["right"] <= q["left"] + 0.5 or q["right"] <= p["left"] + 0.5 or p["bottom"] <= q["top"] + 0.5 or q["bottom"] <= p["top"] + 0.5
            assert apart, f"{a} {p} overlaps {b} {q}"
    return boxes


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return inner["left"] >= outer["left"] - 0.5 and inner["right"] <= outer["right"] + 0.5


@pytest.fixture
def context_for(browser: Browser) -> Iterator[Callable[[dict[str, Any]], BrowserContext]]:
    """Browser profiles of a given device; an uncaught exception or console error on any tab fails the test."""
    made: list[BrowserContext] = []
    problems: list[str] = []

    def make(device: dict[str, Any]) -> BrowserContext:
        context = browser.new_context(**device)
        context.on("weberror", lambda error: problems.append(f"uncaught {error.error}"))
        context.on("console", lambda msg: msg.type == "error" and problems.append(f"console error {msg.text}"))
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
    assert not problems, "\n".join(problems)


def teacher_and_student(server: LiveServer, context: BrowserContext) -> tuple[Page, Page, str]:
    """A fresh practical: the teacher's tab, then a student with a 40-character name, voice bars up."""
    session = server.open_session("Practical on a phone")
    teacher = context.new_page()
    teacher.goto(session["teacher_url"])
    teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    student = context.new_page()
    student.goto(f"{server.base_url}/?code={session['join_code']}")
    student_id = join_as(student, LONG_NAME)
    for page in (teacher, student):
        expect(page.locator("#voice-bar")).to_be_visible(timeout=TIMEOUT_MS)
    expect(teacher.locator(f"#roster tr[data-participant='{student_id}']")).to_be_visible(timeout=TIMEOUT_MS)
    return teacher, student, student_id


@pytest.mark.parametrize(
    "device", [pytest.param(PHONE, id="phone-390x844"), pytest.param(PHONE_ON_ITS_SIDE, id="phone-844x390"), pytest.param(DESKTOP, id="desktop-1280x800")]
)
def test_nothing_overlaps_and_a_long_name_keeps_mute_and_kick_in_view(
    server: LiveServer, context_for, device: dict[str, Any], screenshot: Callable[[Page, str], Any]
) -> None:
    teacher, student, student_id = teacher_and_student(server, context_for(device))
    kind = {id(PHONE): "phone", id(PHONE_ON_ITS_SIDE): "phone-on-its-side"}.get(id(device), "desktop")

    # The student: status line with Leave, voice bar, help, the stick (phone), the challenge column.
    boxes = assert_laid_out(student, ["#leave"])
    assert "#side" in boxes and "#help" in boxes and "#leave" in boxes, boxes
    assert ("#overlay > .stick" in boxes) == (kind != "desktop"), boxes
    assert inside(boxes["#leave"], boxes["#hud"]), boxes
    name = student.locator("#hud-name")
    expect(name).to_have_attribute("title", f"{LONG_NAME} (student)")
    screenshot(student, f"student-{kind}")

    # The teacher: the same, with the teacher panel and the progress grid.
    boxes = assert_laid_out(teacher, ["#leave"])
    assert "#teacher-panel" in boxes and "#grid-panel" in boxes, boxes
    row = teacher.locator(f"#roster tr[data-participant='{student_id}']")
    row.scroll_into_view_if_needed()
    panel = teacher.locator("#teacher-panel").bounding_box()
    assert panel is not None
    for button in ("Mute", "Kick"):
        box = row.get_by_role("button", name=button, exact=True).bounding_box()
        assert box is not None
        assert panel["x"] - 0.5 <= box["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"] + 0.5, (button, box, panel)
    cell = row.locator("td").first
    expect(cell).to_have_attribute("title", LONG_NAME)
    assert cell.evaluate("td => td.scrollWidth > td.clientWidth && getComputedStyle(td).textOverflow === 'ellipsis'")
    if kind == "phone":  # a toast (someone joins) covers neither the teacher's panel nor the grid
        other = teacher.context.new_page()
        other.goto(student.url)  # /?code=… once joined
        join_as(other, "Bekzod")
        toast = teacher.locator(".toast").filter(has_text="Bekzod joined")
        expect(toast).to_be_visible(timeout=TIMEOUT_MS)
        boxes = teacher.evaluate(BOXES, ["#teacher-panel", "#grid-panel"])
        spot = toast.bounding_box()
        assert spot is not None
        for name, box in boxes.items():
            apart = spot["y"] >= box["bottom"] - 0.5 or spot["y"] + spot["height"] <= box["top"] + 0.5
            assert apart, f"the toast {spot} covers {name} {box}"
        other.close()
    row.get_by_role("button", name="Kick", exact=True).click()  # it can be pressed: it asks first
    expect(teacher.locator("#teacher-confirm")).to_contain_text(LONG_NAME)
    teacher.get_by_role("button", name="Cancel").click()
    screenshot(teacher, f"teacher-{kind}")


def visible_help(page: Page) -> str:
    # what shows: the line's innerText leaves out its hidden parts (and is the whole text when it is hidden itself)
    return page.evaluate("(help => help.checkVisibility() ? help.innerText : '')(document.getElementById('help'))")


def test_help_speaks_of_the_device_in_hand(server: LiveServer, context_for) -> None:
    link = f"{server.base_url}/?code={server.demo_code}"
    phone = context_for(PHONE).new_page()
    phone.goto(link)
    join_as(phone, "Nilufar")
    said = visible_help(phone)
    assert "stick" in said and "drag" in said and "tap" in said, said
    assert "WASD" not in said and "click" not in said and "hold V" not in said, said

    # Push to talk on a touch screen: the Talk button, held, is what V is on a keyboard; the help
    # speaks of it only once it is there.
    expect(phone.locator("#voice-bar")).to_be_visible(timeout=TIMEOUT_MS)
    assert "Talk" not in visible_help(phone), visible_help(phone)
    phone.locator("#voice-ptt").tap()  # a finger: a click would make the page a mouse one
    expect(phone.locator("#voice-ptt")).to_be_checked()
    talk = phone.get_by_role("button", name="Talk", exact=True)
    expect(talk).to_be_visible()
    assert "hold the Talk button" in visible_help(phone), visible_help(phone)
    phone.wait_for_function("window.amaliy.voice.muted === true")
    box = talk.bounding_box()
    assert box is not None
    phone.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    phone.mouse.down()
    phone.wait_for_function("window.amaliy.voice.muted === false")
    phone.mouse.up()
    phone.wait_for_function("window.amaliy.voice.muted === true")

    # A headset's session (the controls mark it on the body): its own controls.
    phone.evaluate("document.body.dataset.input = 'xr'")
    said = visible_help(phone)
    assert "trigger" in said and "B or Y" in said and "tap" not in said, said

    desktop = context_for(DESKTOP).new_page()
    desktop.goto(link)
    assert visible_help(desktop) == "", "help on how to walk, before there is a lab to walk in"
    join_as(desktop, "Sardor")
    expect(desktop.locator("#voice-bar")).to_be_visible(timeout=TIMEOUT_MS)
    said = visible_help(desktop)
    assert "WASD" in said and "arrow keys" in said and "G" in said and "hold V" in said, said
    assert "stick" not in said and "tap" not in said, said


def test_the_help_line_folds_away_and_stays_folded_on_this_device(server: LiveServer, context_for) -> None:
    """On a phone the tips sit over the bench: a student who knows them folds them to a "?"."""
    link = f"{server.base_url}/?code={server.demo_code}"
    context = context_for(PHONE)
    phone = context.new_page()
    phone.goto(link)
    join_as(phone, "Madina")
    fold = phone.get_by_role("button", name="Hide these tips")
    expect(fold).to_be_visible()
    opened = phone.locator("#help").bounding_box()
    assert opened is not None and "stick" in visible_help(phone)
    fold.tap()
    unfold = phone.get_by_role("button", name="Show how to walk, look and pick up")
    expect(unfold).to_have_attribute("aria-expanded", "false")
    folded = phone.locator("#help").bounding_box()
    assert folded is not None and "stick" not in visible_help(phone)
    assert folded["height"] < opened["height"] / 2 and folded["width"] < 60, (opened, folded)

    # The next time on this phone, the tips stay folded until asked for.
    again = context.new_page()
    again.goto(link)
    join_as(again, "Madina ikki")
    expect(again.get_by_role("button", name="Show how to walk, look and pick up")).to_be_visible()
    assert "stick" not in visible_help(again)
    again.get_by_role("button", name="Show how to walk, look and pick up").tap()
    expect(again.get_by_role("button", name="Hide these tips")).to_have_attribute("aria-expanded", "true")
    assert "stick" in visible_help(again)


#: The contrast of every visible text on the page against its effective background, worst first:
#: [{text, ratio, need, where}] for those under what WCAG AA asks.
CONTRAST = """() => {
    const parse = (c) => {
        const m = c.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return [0, 0, 0, 0];
        const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    // premultiplied "a over b"
    const over = (a, b) => [a[0] + b[0] * (1 - a[3]), a[1] + b[1] * (1 - a[3]), a[2] + b[2] * (1 - a[3]), a[3] + b[3] * (1 - a[3])];
    const pre = ([r, g, b, a]) => [r * a, g * a, b * a, a];
    const scale = (c, o) => c.map((v) => v * o);
    const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    // what a pixel of `colour` inside `el` comes to over `backdrop`: each ancestor's background under it, its opacity
    const composite = (el, colour, backdrop) => {
        let cur = colour;
        for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
            const style = getComputedStyle(node);
            cur = over(cur, pre(parse(style.backgroundColor)));
            cur = scale(cur, Number(style.opacity));
        }
        return over(cur, backdrop);
    };
    const bad = [];
    const seen = new Set();
    const check = (el, text, colourCss, style) => {
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
        const need = large ? 3 : 4.5;
        let worst = Infinity;
        for (const backdrop of [[255, 255, 255, 1], [0, 0, 0, 1]]) {
            const fg = composite(el, pre(parse(colourCss)), backdrop);
            const bg = composite(el, [0, 0, 0, 0], backdrop);
            worst = Math.min(worst, ratio(fg, bg));
        }
        if (worst < need) {
            const where = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} in #${el.closest('[id]')?.id}`;
            const key = `${where}|${text}`;
            if (!seen.has(key)) { seen.add(key); bad.push({ text: text.slice(0, 60), ratio: Math.round(worst * 100) / 100, need, where, colour: colourCss }); }
        }
    };
    for (const el of document.body.querySelectorAll('*')) {
        if (el.getClientRects().length === 0) continue;
        const style = getComputedStyle(el);
        if (style.visibility !== 'visible' || el.closest('[aria-hidden="true"], .visually-hidden, .sr')) continue;
        if (el.closest('button:disabled, input:disabled, select:disabled, textarea:disabled, fieldset:disabled')) continue; // WCAG 1.4.3: inactive controls are exempt
        const r = el.getBoundingClientRect();
        if (r.width < 1 || r.height < 1 || r.bottom < 0 || r.right < 0 || r.top > innerHeight || r.left > innerWidth) continue;
        const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
        if (own) check(el, own, style.color, style);
        if ((el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') && !el.value && el.placeholder) {
            check(el, el.placeholder, getComputedStyle(el, '::placeholder').color, style);
        }
        if ((el.tagName === 'INPUT' && !['checkbox', 'radio', 'file', 'range', 'color'].includes(el.type) && el.value) || el.tagName === 'SELECT') {
            check(el, el.value || el.tagName, style.color, style);
        }
    }
    return bad.sort((a, b) => a.ratio - b.ratio);
}"""


def assert_contrast(page: Page, what: str) -> None:
    bad = page.evaluate(CONTRAST)
    assert not bad, f"{what}: text under WCAG AA contrast:\n" + "\n".join(map(str, bad))


def test_every_visible_text_meets_wcag_aa_contrast(server: LiveServer, context_for, screenshot: Callable[[Page, str], Any]) -> None:
    context = context_for(DESKTOP)
    teacher, student, student_id = teacher_and_student(server, context)
    # What a student sees muted by the teacher, and the teacher's confirm strip.
    teacher.locator(f"#roster tr[data-participant='{student_id}'] button[data-mute]").click()
    expect(student.locator("#voice-mute")).to_have_text("Muted by the teacher", timeout=TIMEOUT_MS)
    teacher.locator("button[data-action='reset']").click()
    expect(teacher.locator("#teacher-confirm")).to_be_visible()
    assert_contrast(student, "student page")
    assert_contrast(teacher, "teacher page")
    screenshot(student, "student")
    screenshot(teacher, "teacher")

    # The dashboard, signed in, with a course open.
    with server.http() as http:
        http.post("/api/courses", json={"name": "Kimyo 9A"}, headers={"Authorization": f"Bearer {server.teacher_key}"}).raise_for_status()
    dashboard = context.new_page()
    dashboard.goto(f"{server.base_url}/dashboard.html")
    assert_contrast(dashboard, "dashboard sign-in")
    dashboard.goto(f"{server.base_url}/dashboard.html#key={server.teacher_key}")
    dashboard.get_by_role("button", name="Kimyo 9A").first.click()
    expect(dashboard.locator(".course-head h2")).to_have_text("Kimyo 9A", timeout=TIMEOUT_MS)
    assert_contrast(dashboard, "dashboard course")
    screenshot(dashboard, "dashboard")


@pytest.mark.parametrize("device", [pytest.param(PHONE, id="phone-390x844"), pytest.param(DESKTOP, id="desktop-1280x800")])
def test_speakers_coming_and_going_do_not_move_the_teachers_roster(server: LiveServer, context_for, device: dict[str, Any]) -> None:
    """Who is speaking changes every moment; a roster that jumps with it puts Mute under the wrong finger."""
    teacher, _student, student_id = teacher_and_student(server, context_for(device))
    mute = teacher.locator(f"#roster tr[data-participant='{student_id}']").get_by_role("button", name="Mute", exact=True)
    before = mute.bounding_box(), teacher.locator("#voice-bar").bounding_box()
    # Three people talking at once, one of them with a 40-character name: what the voice bar lists while they speak.
    teacher.evaluate(
        """names => document.getElementById('voice-speakers').replaceChildren(...names.map((name) => {
          const item = document.createElement('li'); item.textContent = name; item.title = name; return item; }))""",
        [LONG_NAME, "Aziza", "Bekzod"],
    )
    room = teacher.locator("#voice-speakers").bounding_box()
    assert room is not None and room["width"] >= 50 and room["height"] >= 16, room  # the bar still has room to show who speaks
    assert (mute.bounding_box(), teacher.locator("#voice-bar").bounding_box()) == before
    teacher.evaluate("document.getElementById('voice-speakers').replaceChildren()")
    assert (mute.bounding_box(), teacher.locator("#voice-bar").bounding_box()) == before
    # Nor does the call's state, whose words differ in length ("voice connecting…" on a weak link for a while).
    for state, words in (("connecting", "voice connecting…"), ("failed", "voice unavailable"), ("connected", "voice on")):  # voicebar.js
        teacher.evaluate("([state, words]) => Object.assign(document.getElementById('voice-status'), { textContent: words }).dataset.state = state", [state, words])
        assert (mute.bounding_box(), teacher.locator("#voice-bar").bounding_box()) == before, words
