"""Someone the server sends less often (far away, or to a weak link, under protocol 2)
still walks smoothly in the page: interpolation.js learns how far apart their poses
come and draws them far enough back that there is always a newer pose to move towards."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.browser

#: Draw a sender heard at ``hz`` for 3 s of 60 Hz frames; report the longest run of frames that
#: drew the same position (a stop) after the first second, and how far behind the newest pose it drew.
WALK = """async (hz) => {
  const { SampleBuffer, RENDER_DELAY_MS } = await import('/interpolation.js');
  const buffer = new SampleBuffer(7);
  const gap = 1000 / hz;
  const out = new Float32Array(7);
  let next = 0, last = null, still = 0, longest = 0, behind = 0;
  for (let now = 0; now < 3000; now += 1000 / 60) {
    while (next <= now) { buffer.push(next, [next / 1000, 0, 0, 0, 0, 0, 1]); next += gap; }
    const x = buffer.sample(now - RENDER_DELAY_MS - buffer.lag, out)[0];
    if (now > 1000) {
      still = x === last ? still + 1 : 0;
      longest = Math.max(longest, still);
      behind = Math.max(behind, (next - gap) / 1000 - x);
    }
    last = x;
  }
  return { longest, behind };
}"""


@pytest.fixture
def page(server, open_page) -> Page:
    page = open_page(f"{server.base_url}/", "interpolation")
    page.wait_for_function("document.readyState === 'complete'")
    return page


@pytest.mark.parametrize("hz", [30, 5, 2])
def test_a_sender_heard_less_often_never_stops_between_poses(page: Page, hz: int) -> None:
    drawn = page.evaluate(WALK, hz)
    assert drawn["longest"] == 0  # every frame moves
    # Never further behind than the spacing of its poses and the jitter allowance (RENDER_DELAY_MS at 30 Hz).
    assert drawn["behind"] <= (1 / hz) + 0.1 + 0.02
