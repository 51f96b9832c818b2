"""The page's mirror of the room (state.js) agrees with the server's engines about when a
station's steps opened, which are overdue and how far up its hints it is, across a restart:
a student who finds a station empty and untouched starts its clock afresh, so the teacher's
grid must count the step's time from them, not from whoever stood there before, and their
hints start at the foot of the ladder."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

from realtime import protocol as p
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import Enter, Room, Send
from tests.unit.test_challenge_engine import quick
from tests.unit.test_conditions import lab_scene
from tests.unit.test_hints import hinted

pytestmark = pytest.mark.browser

#: Feed what the server sent the teacher into a fresh mirror; report station 1 as the mirror has it.
MIRROR = """async (sent) => {
  const { RoomState } = await import('/state.js');
  const state = new RoomState();
  for (const message of sent) {
    if (message.type === 'welcome') state.applyWelcome(message);
    else if (typeof message.seq === 'number') state.applyEvent(message);
  }
  const station = state.stations.get(1);
  const hints = state.hintsAt(1);
  return {
    started: station.progress.started, opened: station.progress.opened, overdue: [...station.overdue],
    hints: { levels: hints.levels, cooldown_until: hints.cooldownUntil, last: hints.last?.text ?? null },
  };
}"""


def to_teacher(out: list) -> list[dict]:
    return [json.loads(item.data) for item in out if isinstance(item, Send) and isinstance(item.data, str) and item.to in (None, "tea")]


@pytest.fixture
def page(server, open_page) -> Page:
    page = open_page(f"{server.base_url}/", "mirror")
    page.wait_for_function("document.readyState === 'complete'")
    return page


def test_the_mirror_counts_a_restarted_station_from_the_newcomer(page: Page) -> None:
    r = Room("r", lab_scene([], quick(time_limit=30), stations=1), RoomLimits(), record=True)
    sent = to_teacher(r.handle("tea", Enter("Tea", Role.TEACHER), 0.0))
    sent += to_teacher(r.handle("ann", Enter("Ann", Role.STUDENT), 5.0))
    sent += to_teacher(r.tick(40.0))  # Ann's step goes overdue (30 s from 5 s)
    sent += to_teacher(r.handle("ann", p.Leave(type="leave"), 41.0))
    sent += to_teacher(r.handle("bob", Enter("Bob", Role.STUDENT), 800.0))
    kinds = [m["type"] for m in sent]
    assert kinds.count("challenge_started") == 2 and "step_overdue" in kinds

    mirror = page.evaluate(MIRROR, sent)
    engine = r.challenges.progress[1]
    assert {key: mirror[key] for key in ("started", "opened", "overdue")} == {"started": 800.0, "opened": {"light": 800.0}, "overdue": []}
    assert (engine.started, engine.opened, engine.overdue) == (800.0, {"light": 800.0}, set())


def test_the_mirror_gives_a_restarted_station_the_hint_ladder_from_the_foot(page: Page) -> None:
    r = Room("r", lab_scene([], hinted(), stations=1), RoomLimits(), record=True)
    sent = to_teacher(r.handle("tea", Enter("Tea", Role.TEACHER), 0.0))
    sent += to_teacher(r.handle("ann", Enter("Ann", Role.STUDENT), 1.0))
    sent += to_teacher(r.handle("ann", p.Hint(type="hint", step="place"), 2.0))  # a free nudge: no progress
    sent += to_teacher(r.handle("ann", p.Leave(type="leave"), 3.0))
    before = page.evaluate(MIRROR, sent)["hints"]
    assert before["levels"] == {"place": 1} and before["cooldown_until"] is not None and before["last"]
    sent += to_teacher(r.handle("bob", Enter("Bob", Role.STUDENT), 10.0))

    assert page.evaluate(MIRROR, sent)["hints"] == {"levels": {}, "cooldown_until": None, "last": None}
    station = r.snapshot()["hints"]["stations"][0]
    assert (station["levels"], station["cooldown_until"], station["last"]) == ({}, None, None)
