"""The hint ladder and the learner model in the sans-I/O room: automatic hints on stuck
signals, requests and their cooldown, teacher pushes, costs in the score, BKT on first
attempts, and replay. No sockets; every time is explicit.

The lab is tests/unit/test_conditions.py's (a bench per station at x = 10, 20, ...).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime import protocol as p
from realtime.interest import PoseTick
from realtime.learning import bkt
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import SYSTEM, Enter, Record, Room, Send, replay
from tests.unit.test_conditions import about, lab_scene, station_x

AT_SNAP = {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
LIT = {"property": {"object": "burner", "property": "lit", "equals": True}}
SPILLED = {"tilted": {"object": "beaker", "past_degrees": 60}}
NUDGE = "Where does a beaker go to be heated?"
SPECIFIC = "The tripod has a place on top."
BOTTOM = "Put the beaker on top of the tripod."
SETUP = bkt.SkillParams(prior=0.3)


def hinted(hints: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Place the beaker (every rung, skill 'setup'), light the burner (only 'specific', skill 'burner'), answer a question."""
    return {
        "id": "bath",
        "title": "Prepare a water bath",
        "hints": hints or {},
        "skills": {"setup": {"prior": 0.3}},
        "steps": [
            {"id": "place", "text": "Put the beaker on the tripod", "condition": AT_SNAP, "points": 10, "skill": "setup", "expected_seconds": 40,
             "mistakes": [{"id": "spill", "condition": SPILLED, "explanation": "Spilled!"}],
             "hints": {"nudge": NUDGE, "specific": {"text": SPECIFIC, "highlight": ["beaker", "tripod", "bench"]},
                       "bottom_out": {"text": BOTTOM, "demo": {"object": "beaker", "target": "tripod", "snap": "top"}}}},
            {"id": "light", "text": "Light the burner", "condition": LIT, "points": 5, "skill": "burner",
             "hints": {"specific": {"text": "The burner's flame switch.", "highlight": ["burner"]}}},
            {"id": "read", "text": "How hot?", "points": 4, "checkpoint": {"question": "Pick one", "choice": {"choices": ["hot", "cold"], "answer": 0}}},
        ],
        **extra,
    }


class Lab:
    """A recorded room with the hinted challenge, and every output it sent."""

    def __init__(self, challenge: dict[str, Any] | None = None, **scene: Any) -> None:
        self.room = Room("r", lab_scene([], hinted() if challenge is None else challenge, **scene), RoomLimits(), record=True, run="run1")
        self.out: list = []

    def enter(self, pid: str, now: float = 0.0, role: Role = Role.STUDENT, skills: dict | None = None) -> list:
        return self._keep(self.room.handle(pid, Enter(pid.title(), role, skills=skills), now))

    def do(self, pid: str, message: Any, now: float) -> list:
        return self._keep(self.room.handle(pid, message, now))

    def tick(self, now: float) -> list:
        return self._keep(self.room.tick(now))

    def _keep(self, out: list) -> list:
        self.out += out
        return out

    def place(self, pid: str, now: float, station: int = 1) -> None:
        """Grab the station's beaker, put it on the tripod's top, let go, and tick."""
        beaker = self.room._object_ids[f"beaker@{station}"]
        self.do(pid, p.Grab(type="grab", object=f"beaker@{station}"), now)
        self.do(pid, p.ObjectMove(beaker, (station_x(station) + 1, 1.0, 0.0, 0, 0, 0, 1)), now)
        self.do(pid, p.Release(type="release", object=f"beaker@{station}"), now)
        self.tick(now)

    def spill(self, pid: str, now: float, station: int = 1) -> None:
        beaker = self.room._object_ids[f"beaker@{station}"]
        self.do(pid, p.Grab(type="grab", object=f"beaker@{station}"), now)
        self.do(pid, p.ObjectMove(beaker, (station_x(station), 1.1, 0.0, *about("x", 90))), now)
        self.tick(now)
        self.do(pid, p.ObjectMove(beaker, (station_x(station), 1.1, 0.0, 0, 0, 0, 1)), now + 0.1)
        self.do(pid, p.Release(type="release", object=f"beaker@{station}"), now + 0.1)
        self.tick(now + 0.1)


def events(out: list, kind: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(o.data) for o in out if isinstance(o, Send) and o.to is None and isinstance(o.data, str)]
    return [m for m in found if kind is None or m["type"] == kind]


def errors(out: list, pid: str) -> list[dict[str, Any]]:
    return [json.loads(o.data) for o in out if isinstance(o, Send) and o.to == pid and isinstance(o.data, str) and json.loads(o.data)["type"] == "error"]


def records(out: list, kind: str) -> list[Record]:
    return [o for o in out if isinstance(o, Record) and o.kind == kind]


def ask(step: str, rid: Any = None) -> p.Hint:
    return p.Hint(type="hint", step=step, id=rid)


def push(to: dict[str, Any], level: int | None = None, text: str | None = None) -> p.PushHint:
    return p.PushHint.model_validate({"type": "push_hint", "to": to, "level": level, "text": text})


# ------------------------------------------------------------------ automatic hints


def test_an_idle_station_climbs_the_ladder_one_rung_per_cooldown() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    assert events(lab.tick(59.9), "hint") == []
    out = lab.tick(60.0)
    [stuck] = events(out, "stuck")
    assert stuck["station"] == 1 and stuck["step"] == "place" and stuck["level"] == "amber"
    [nudge] = events(out, "hint")
    assert nudge == {
        "type": "hint", "seq": nudge["seq"], "station": 1, "step": "place", "level": 1, "text": NUDGE, "highlight": [], "demo": None,
        "cost": 0, "reason": "idle", "by": None, "to": ["ann"], "t": 60.0,
    }
    assert events(out, "score") == []  # a free nudge changes no score
    assert events(lab.tick(89.9), "hint") == []
    [specific] = events(lab.tick(90.0), "hint")
    assert (specific["level"], specific["text"], specific["cost"]) == (2, SPECIFIC, 2)
    assert specific["highlight"] == ["beaker@1", "tripod@1", "bench@1"]  # the station's own copies
    [bottom] = events(lab.tick(120.0), "hint")
    assert (bottom["level"], bottom["text"], bottom["cost"]) == (3, BOTTOM, 5)
    assert bottom["demo"] == {"object": "beaker@1", "to": [11.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]}  # the tripod's top in the world
    assert events(lab.tick(150.0), "hint") == events(lab.tick(400.0), "hint") == []  # past the last rung: nothing more
    hints = records(lab.out, "hint")
    assert [r.id for r in hints] == ["hint:run1:1:1", "hint:run1:1:2", "hint:run1:1:3"]
    assert hints[1].data["members"] == ["ann"] and hints[1].data["skill"] == "setup" and hints[1].data["cost"] == 2
    assert lab.room.snapshot()["hints"]["stations"][0]["levels"] == {"place": 3}


def test_the_demo_follows_the_target_where_it_is_now() -> None:
    lab = Lab(hinted({"idle_seconds": 10, "cooldown_seconds": 1}))
    lab.enter("ann")
    tripod = lab.room._object_ids["tripod@1"]
    lab.room._objects["transform"][tripod] = (12.0, 0.8, 1.0, *about("y", 90))  # as if it had been moved there
    for t in (0.0, 10.0, 11.0, 12.0):
        lab.tick(t)
    [demo] = [h["demo"] for h in events(lab.out, "hint") if h["level"] == 3]
    assert demo["object"] == "beaker@1"
    assert demo["to"][:3] == pytest.approx([12.0, 1.0, 1.0]) and demo["to"][3:] == pytest.approx(list(about("y", 90)), abs=1e-6)


# ------------------------------------------------------------------ requests


def test_a_request_climbs_one_rung_and_costs_its_points_in_the_score() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    lab.place("ann", 1.0)
    out = lab.do("ann", ask("light"), 2.0)
    [hint] = events(out, "hint")
    assert (hint["step"], hint["level"], hint["cost"], hint["reason"], hint["by"], hint["to"]) == ("light", 2, 2, "requested", "ann", ["ann"])  # no nudge: skipped
    [score] = events(out, "score")
    assert score["score"] == 10 - 2 and score["members"] == {"ann": 8}
    [record] = records(out, "hint")
    assert record.data["cost"] == 2 and record.data["members"] == ["ann"] and record.data["skill"] == "burner"
    # past the step's last rung there is nothing more to ask for
    assert [e["code"] for e in errors(lab.do("ann", ask("light", "r2"), 40.0), "ann")] == ["no_hint"]


def test_a_request_inside_the_cooldown_is_refused_and_costs_nothing() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    assert events(lab.do("ann", ask("place"), 1.0), "hint")[0]["level"] == 1
    seq = lab.room.seq
    out = lab.do("ann", ask("place", "again"), 10.0)
    [error] = errors(out, "ann")
    assert error["code"] == "hint_cooldown" and error["retry_after"] == 21.0 and error["re"] == "again"
    assert "21 s" in error["message"]
    for t in (11.0, 12.0, 13.0):  # a flood costs nothing either
        lab.do("ann", ask("place"), t)
    assert lab.room.seq == seq and not records(out, "hint")
    assert lab.room.snapshot()["hints"]["stations"][0]["levels"] == {"place": 1}
    assert events(lab.do("ann", ask("place"), 31.0), "hint")[0]["level"] == 2


def test_a_station_started_again_gives_its_newcomer_the_ladder_from_the_foot() -> None:
    lab = Lab(stations=1)
    lab.enter("ann")
    assert events(lab.do("ann", ask("place"), 1.0), "hint")[0]["level"] == 1  # free: no progress
    lab.do("ann", p.Leave(type="leave"), 2.0)
    out = lab.enter("bob", 10.0)  # within Ann's cooldown, at a station that got nowhere
    assert events(out, "challenge_started")
    [welcome] = [json.loads(o.data) for o in out if isinstance(o, Send) and o.to == "bob" and isinstance(o.data, str) and '"welcome"' in o.data]
    station = welcome["snapshot"]["hints"]["stations"][0]  # the snapshot reflects the restart that follows it
    assert (station["levels"], station["cooldown_until"], station["last"]) == ({}, None, None)
    [hint] = events(lab.do("bob", ask("place"), 11.0), "hint")
    assert (hint["level"], hint["text"], hint["to"]) == (1, NUDGE, ["bob"])
    assert [r.id for r in records(lab.out, "hint")] == ["hint:run1:1:1", "hint:run1:1:2"]


def test_requests_only_for_an_open_step_at_your_station() -> None:
    lab = Lab()
    lab.enter("ann")
    codes = lambda out: [e["code"] for e in errors(out, "ann")]  # noqa: E731
    assert codes(lab.do("ann", ask("light"), 1.0)) == ["step_not_open"]
    assert codes(lab.do("ann", ask("nope"), 1.0)) == ["unknown_step"]
    lab.enter("obs", role=Role.OBSERVER)
    assert [e["code"] for e in errors(lab.do("obs", ask("place"), 1.0), "obs")] == ["forbidden"]


def test_an_automatic_hint_waits_for_the_cooldown_after_a_request() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    lab.do("ann", ask("place"), 50.0)  # the nudge, asked for
    assert events(lab.tick(60.0), "hint") == []  # idle now, but the cooldown runs to 80
    [auto] = events(lab.tick(80.0), "hint")
    assert (auto["level"], auto["reason"]) == (2, "idle")


# ------------------------------------------------------------------ teacher pushes


def test_a_teacher_push_reaches_only_its_target() -> None:
    lab = Lab()
    for pid in ("ann", "bob", "cat"):  # ann and cat at station 1, bob at station 2
        lab.enter(pid)
    lab.enter("tea", role=Role.TEACHER)
    lab.tick(0.0)
    [one] = events(lab.do("tea", push({"participant": "cat"}, level=1), 1.0), "hint")
    assert (one["station"], one["to"], one["level"], one["reason"], one["by"]) == (1, ["cat"], 1, "teacher", "tea")
    attempts = records(lab.out, "skill_attempt")
    assert [r.data["participant"] for r in attempts] == ["cat"]  # only cat's first attempt is spent
    [two] = events(lab.do("tea", push({"station": 2}, level=2), 2.0), "hint")
    assert (two["station"], two["to"], two["level"], two["cost"]) == (2, ["bob"], 2, 2)
    everyone = events(lab.do("tea", push({"all": True}, text="Five minutes left"), 3.0), "hint")
    assert [(h["station"], h["to"], h["level"], h["cost"], h["text"], h["step"]) for h in everyone] == [
        (1, ["ann", "cat"], 0, 0, "Five minutes left", "place"), (2, ["bob"], 0, 0, "Five minutes left", "place"),
    ]
    assert [r.data["participant"] for r in records(lab.out, "skill_attempt")] == ["cat", "bob"]  # free text is not a hint at the step


def test_a_push_to_a_level_the_step_lacks_gives_the_next_it_has() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.enter("tea", role=Role.TEACHER)
    lab.tick(0.0)
    lab.place("ann", 1.0)
    [hint] = events(lab.do("tea", push({"station": 1}, level=1), 2.0), "hint")
    assert (hint["step"], hint["level"]) == ("light", 2)
    out = lab.do("tea", push({"station": 1}, level=3), 2.0)
    assert [e["code"] for e in errors(out, "tea")] == ["no_hint"]


def test_pushes_to_nobody_are_refused_with_a_code() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.enter("tea", role=Role.TEACHER)
    codes = lambda out: [e["code"] for e in errors(out, "tea")]  # noqa: E731
    assert codes(lab.do("tea", push({"participant": "ghost"}, text="hi"), 1.0)) == ["unknown_participant"]
    assert codes(lab.do("tea", push({"station": 9}, text="hi"), 1.0)) == ["unknown_station"]
    assert codes(lab.do("tea", push({"station": 2}, text="hi"), 1.0)) == ["no_station"]  # nobody works there
    assert codes(lab.do("tea", push({"participant": "tea"}, text="hi"), 1.0)) == ["no_station"]
    assert codes(lab.do("ann", push({"all": True}, text="hi"), 1.0)) == []  # a student may not push at all:
    assert [e["code"] for e in errors(lab.out, "ann")] == ["forbidden"]


def test_the_server_pushes_for_a_teacher_over_rest() -> None:
    lab = Lab()
    lab.enter("ann")
    [hint] = events(lab.do(SYSTEM, push({"participant": "ann"}, text="Look up"), 1.0), "hint")
    assert hint["by"] == SYSTEM and hint["to"] == ["ann"] and hint["level"] == 0


# ------------------------------------------------------------------ the learner model


def test_a_hint_before_success_makes_the_first_attempt_incorrect() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    lab.do("ann", ask("place"), 1.0)
    lab.place("ann", 2.0)
    [attempt] = records(lab.out, "skill_attempt")
    assert attempt.id == "skill:ann:place"
    assert attempt.data == {
        "participant": "ann", "skill": "setup", "step": "place", "correct": False,
        "p_known": bkt.update(0.3, False, SETUP), "opportunities": 1, "mastered": False, "t": 1.0,
    }
    assert not any(m["type"] == "skill_attempt" for m in events(lab.out))  # stored, never broadcast


def test_a_step_done_first_is_a_correct_first_attempt() -> None:
    lab = Lab()
    lab.enter("ann", skills={"setup": (0.5, 4)})
    lab.tick(0.0)
    lab.place("ann", 2.0)
    [attempt] = records(lab.out, "skill_attempt")
    assert attempt.data["correct"] is True and attempt.data["opportunities"] == 5
    assert attempt.data["p_known"] == bkt.update(0.5, True, SETUP)
    lab.do("ann", ask("light"), 3.0)  # a later hint is for another step
    assert [r.data["step"] for r in records(lab.out, "skill_attempt")] == ["place", "light"]
    assert lab.room.learning.belief("ann", "burner") == (bkt.update(0.1, False, bkt.SkillParams()), 1)  # no params given: the defaults


def test_a_mistake_is_an_incorrect_first_attempt_for_the_whole_group() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.enter("cat")
    lab.do(SYSTEM, p.AssignStation(type="assign_station", participant="cat", station=1), 0.0)
    lab.tick(0.0)
    lab.spill("ann", 1.0)
    lab.place("ann", 2.0)
    attempts = records(lab.out, "skill_attempt")
    assert [(r.data["participant"], r.data["correct"]) for r in attempts] == [("ann", False), ("cat", False)]


def test_a_guest_starts_from_the_prior_and_a_returning_student_keeps_what_the_room_learnt() -> None:
    lab = Lab()
    lab.enter("ann", skills={"setup": (0.9, 3)})
    lab.tick(0.0)
    lab.place("ann", 1.0)
    learnt = lab.room.learning.belief("ann", "setup")
    lab.do("ann", p.Leave(type="leave"), 2.0)
    lab.enter("ann", 3.0, skills={"setup": (0.9, 3)})  # the edge's copy may lag the room's
    assert lab.room.learning.belief("ann", "setup") == learnt
    lab.enter("bob")
    assert lab.room.learning.belief("bob", "setup") == (0.3, 0)


# ------------------------------------------------------------------ state and replay


def test_the_snapshot_carries_levels_flags_and_the_last_hint() -> None:
    lab = Lab()
    lab.enter("ann")
    lab.tick(0.0)
    lab.tick(60.0)
    station = lab.room.snapshot()["hints"]["stations"][0]
    assert station["levels"] == {"place": 1} and station["cooldown_until"] == 90.0
    assert station["stuck"]["signals"][0]["signal"] == "idle" and station["last"]["text"] == NUDGE
    challenge = lab.room.snapshot()["challenge"]
    assert [s["hint_levels"] for s in challenge["steps"]] == [[1, 2, 3], [2], []]
    assert challenge["steps"][0]["expected_seconds"] == 40 and challenge["hints"]["specific_cost"] == 2
    assert NUDGE not in json.dumps(challenge)  # hint texts are never sent ahead


def practical() -> Lab:
    lab = Lab(hinted({"idle_seconds": 20, "cooldown_seconds": 5}))
    lab.enter("ann", skills={"setup": (0.4, 2)})
    lab.enter("bob")
    lab.enter("tea", role=Role.TEACHER)
    for t in (0.0, 10.0, 20.0, 25.0):
        lab.tick(t)
    lab.spill("bob", 26.0, station=2)
    lab.do("bob", ask("place"), 27.0)
    lab.do("bob", ask("place"), 28.0)  # cooldown
    lab.place("ann", 30.0)
    lab.do("tea", push({"all": True}, level=2), 31.0)
    lab.do("tea", push({"participant": "bob"}, text="Nearly there"), 32.0)
    for t in (33.0, 40.0, 60.0, 80.0):
        lab.tick(t)
    lab.place("bob", 81.0, station=2)
    lab.tick(82.0)
    return lab


def test_replay_of_a_practical_with_hints_gives_the_same_events_and_records() -> None:
    lab = practical()
    assert len(events(lab.out, "hint")) >= 5 and records(lab.out, "skill_attempt")
    inputs = lab.room.inputs or []
    again = replay("r", lab.room.scene, lab.room.limits, inputs, run="run1")
    assert again.seq == lab.room.seq and again.snapshot() == lab.room.snapshot()
    fresh = Room("r", lab.room.scene, lab.room.limits, run="run1")
    out: list = []
    for kind, now, pid, message in inputs:
        out += fresh.tick(now) if kind == "tick" else fresh.handle(pid or "", message, now)
    assert [o for o in out if isinstance(o, (Record, Send)) and not isinstance(getattr(o, "data", ""), (bytes, PoseTick))] == [
        o for o in lab.out if isinstance(o, (Record, Send)) and not isinstance(getattr(o, "data", ""), (bytes, PoseTick))
    ]
    ids = [o.id for o in out if isinstance(o, Record)]
    assert len(ids) == len(set(ids))


_SCRIPT = """
import json
from tests.unit.test_hints import practical, events
print(json.dumps(events(practical().out)))
"""


def test_the_same_hints_whatever_the_hash_seed() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    runs = []
    for seed in ("0", "977"):
        done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1] == events(practical().out)
