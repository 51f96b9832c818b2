"""A student without a microphone still hears the practical.

Chromium here is started without the fake capture device (so there is no microphone at all),
or with one but the permission refused. Either way the page must still call the server,
receiving only, say "Listening only (no microphone)" with nothing to mute, and play the mix: a
second participant (the Python SDK, sending a 440 Hz tone) talks, and the page's call receives
packets that carry sound (inbound-rtp packets growing, audio level and energy above 0), played
by the page's audio element. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from amaliy_client.voice import ToneTrack, VoiceCall
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.browser.sdk_thread import ThreadedClient
from tests.browser.tabs import join_as
from tests.browser.test_voice import VOICE_TIMEOUT_MS, wait_hearing
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

#: Chromium with no capture device at all, as on a desktop without a microphone.
NO_DEVICE = [arg for arg in CHROMIUM_ARGS if "media-stream" not in arg]
#: Chromium with a microphone, but nobody answers the permission prompt yes (Playwright refuses it).
DENIED = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"]


@pytest.fixture(params=[pytest.param(NO_DEVICE, id="no-microphone"), pytest.param(DENIED, id="microphone-denied")])
def micless(request: pytest.FixtureRequest) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=request.param)
        yield browser
        browser.close()


def test_a_student_without_a_microphone_hears_the_others(
    server: LiveServer, micless: Browser, screenshot: Callable[[Page, str], object]
) -> None:
    context = micless.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error {msg.text}"))
    code = server.open_session("Listening")["join_code"]
    partner = ThreadedClient(server.base_url, code, "Malika")
    call: VoiceCall | None = None
    try:
        page.goto(f"{server.base_url}/?code={code}")
        join_as(page, "Kamola")
        status = page.locator("#voice-status")
        expect(status).to_have_text("Listening only (no microphone)", timeout=VOICE_TIMEOUT_MS)
        expect(page.locator("#voice-mute")).to_be_hidden()
        expect(page.locator("#voice-ptt")).to_be_hidden()
        # The page's one offer only receives: no microphone track is asked of the server.
        assert page.evaluate("window.amaliy.voice.muted") is True

        call = partner.call(VoiceCall.start(partner.client, ToneTrack(440.0)))
        wait_hearing(page)
        # The audio element plays the call's track.
        assert page.evaluate(
            """() => [...document.querySelectorAll('audio')].some((a) =>
                a.srcObject?.getAudioTracks().some((t) => t.readyState === 'live') && !a.paused)"""
        )
        screenshot(page, "listening-only")
    finally:
        if call is not None:
            partner.call(call.close())
        partner.close()
        context.close()
    assert not problems, "\n".join(problems)
