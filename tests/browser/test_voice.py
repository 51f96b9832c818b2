"""Voice in real browser tabs: two students' fake microphones through a real server's mix.

Chromium's fake capture device plays a beep; each student's page must receive
the server's mix with the other's beep in it (inbound-rtp audio that is not
silence), see the other speaking (voice_levels), see them fall silent when they
mute, and show a teacher's forced mute, "Mute all" and broadcast. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.tabs import START_TIMEOUT_MS, two_students

pytestmark = pytest.mark.browser

#: Longest wait for a call to connect and audio to flow, ms: ICE plus the media worker on a busy machine.
VOICE_TIMEOUT_MS = 20_000


def wait_hearing(page: Page) -> None:
    """Wait until the page's call receives packets carrying sound (not silence)."""
    page.wait_for_function("window.amaliy.voice.state === 'connected'", timeout=VOICE_TIMEOUT_MS)
    first = page.evaluate("window.amaliy.voiceStats()")
    page.wait_for_function(
        """async (first) => {
            const s = await window.amaliy.voiceStats();
            return s !== null && s.packetsReceived > (first?.packetsReceived ?? 0) + 25
                && s.audioLevel > 0 && s.totalAudioEnergy > 0;
        }""",
        arg=first,
        timeout=VOICE_TIMEOUT_MS,
        polling=250,
    )


#: The page's newest voice_levels may predate the mute (they come 5 times a second); every later one
#: shows 0 for a muted participant (the room zeroes them), so silence is checked after this time, ms.
MUTE_SETTLE_MS = 500


def wait_silent(page: Page, participant: str) -> None:
    """Wait until ``page`` knows ``participant`` is muted, then check they stay silent for a whole window."""
    page.wait_for_function("id => window.amaliy.participants[id].muted", arg=participant, timeout=VOICE_TIMEOUT_MS)
    page.wait_for_timeout(MUTE_SETTLE_MS)
    assert loudest(page, participant) == 0


def loudest(page: Page, participant: str, window_ms: int = 2500) -> float:
    """The highest voice level ``page`` saw for ``participant`` over a window.

    Chromium's fake microphone beeps in short bursts with silence between, so a
    single reading of 0 proves nothing; a whole window of them does.
    """
    return page.evaluate(
        """([id, windowMs]) => new Promise((resolve) => {
            let most = 0;
            const timer = setInterval(() => { most = Math.max(most, window.amaliy.voice.levels[id] ?? 0); }, 50);
            setTimeout(() => { clearInterval(timer); resolve(most); }, windowMs);
        })""",
        [participant, window_ms],
    )


def test_two_students_hear_each_other_and_the_teacher_mutes(server, open_page, screenshot) -> None:
    aziz, bobur, aziz_id, bobur_id = two_students(server.base_url, server.demo_code, open_page)

    # Both pages start voice on joining and hear the mix, which carries the other's beep.
    for page in (aziz, bobur):
        wait_hearing(page)
    # Each sees the other speaking: the level, and the dot by their name.
    aziz.wait_for_function("id => window.amaliy.voice.levels[id] > 0", arg=bobur_id, timeout=VOICE_TIMEOUT_MS)
    bobur.wait_for_function("id => window.amaliy.voice.levels[id] > 0", arg=aziz_id, timeout=VOICE_TIMEOUT_MS)
    speaking_dot = bobur.locator(f"#voice-speakers li[data-participant='{aziz_id}']")
    expect(speaking_dot).to_have_text("Aziz", timeout=VOICE_TIMEOUT_MS)
    screenshot(bobur, "bobur-hears-aziz")  # the dot blinks with the beep: taken right as it shows
    # Aziz's avatar glows green on Bobur's screen while he speaks. Bobur turns to face him first.
    bobur.evaluate("id => window.amaliy.lookAt(id)", aziz_id)
    bobur.wait_for_function("id => window.amaliy.glows[id] > 0.2", arg=aziz_id, timeout=VOICE_TIMEOUT_MS, polling=20)
    screenshot(bobur, "bobur-sees-aziz-glow")

    # Aziz mutes himself with the button: Bobur's page sees his level drop to 0.
    aziz.locator("#voice-mute").click()
    expect(aziz.locator("#voice-mute")).to_have_text("Unmute")
    wait_silent(bobur, aziz_id)
    expect(speaking_dot).to_have_count(0)
    assert bobur.evaluate("id => window.amaliy.glows[id]", aziz_id) == 0
    screenshot(bobur, "bobur-sees-aziz-muted")  # the same avatar without its glow
    assert loudest(aziz, bobur_id) > 0  # Bobur still speaks

    # The teacher mutes Bobur from the roster: Bobur's page says so and will not unmute.
    teacher = open_page(server.teacher_url, "teacher")
    teacher.wait_for_function("window.amaliy?.state === 'connected'", timeout=START_TIMEOUT_MS)
    teacher.locator(f"#roster tr[data-participant='{bobur_id}'] button[data-mute]").click()
    expect(bobur.locator("#voice-mute")).to_have_text("Muted by the teacher", timeout=VOICE_TIMEOUT_MS)
    expect(bobur.locator("#voice-mute")).to_be_disabled()
    assert bobur.evaluate("window.amaliy.voice.forced") is True
    wait_silent(aziz, bobur_id)
    expect(teacher.locator(f"#roster tr[data-participant='{bobur_id}'] button[data-mute]")).to_have_text("Unmute")
    screenshot(bobur, "bobur-muted-by-teacher")
    screenshot(teacher, "teacher-muted-bobur")

    # "Mute all" holds Aziz too; the Broadcast toggle tells the students the teacher speaks to everyone.
    teacher.locator("button[data-action='muteAll']").click()
    teacher.locator("#teacher-confirm").get_by_role("button", name="Mute all").click()  # the panel asks first
    expect(aziz.locator("#voice-mute")).to_have_text("Muted by the teacher", timeout=VOICE_TIMEOUT_MS)
    teacher.locator("button[data-action='broadcast']").click()
    expect(teacher.locator("button[data-action='broadcast']")).to_have_text("Stop broadcast", timeout=VOICE_TIMEOUT_MS)
    for page in (aziz, bobur):
        expect(page.locator("#voice-broadcast")).to_be_visible(timeout=VOICE_TIMEOUT_MS)
    screenshot(aziz, "aziz-hears-broadcast")
