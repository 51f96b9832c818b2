"""The challenge engine's progress, scores, checkpoints and stations, and the room that feeds it.

No sockets: the engine (realtime.challenges) and the Room (realtime.room) are
driven with explicit times. The lab is tests/unit/test_conditions.py's: a bench
per station with beaker, tripod, burner, dial, valve, thermometer and flask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from realtime import protocol as p
from realtime.challenges import Refused, scoring
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import Disconnect, Enter, Record, Room, Send, replay
from tests.unit.test_conditions import SNAP, Lab, about, lab_scene, station_x

REPO = Path(__file__).resolve().parents[2]

AT_SNAP = {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
LIT = {"property": {"object": "burner", "property": "lit", "equals": True}}
OPEN = {"property": {"object": "valve", "property": "state", "equals": "open"}}
SPILLED = {"tilted": {"object": "beaker", "past_degrees": 60}}
READING = {"object": "thermo", "property": "reading", "value": 80, "otherwise": 20, "after_seconds": 5, "when": {"all": [LIT, AT_SNAP]}}


def bath(**extra: Any) -> dict[str, Any]:
    """Put the beaker on the tripod, light the burner, read the thermometer."""
    return {
        "id": "bath",
        "title": "Prepare a water bath",
        "steps": [
            {"id": "place", "text": "Put the beaker on the tripod", "condition": AT_SNAP, "points": 10,
             "mistakes": [{"id": "spill", "condition": SPILLED, "explanation": "Spilled!"}]},
            {"id": "light", "text": "Light the burner", "condition": LIT, "points": 5,
             "mistakes": [{"id": "valve", "condition": OPEN, "explanation": "Not the valve yet", "penalty": 3}]},
            {"id": "read", "text": "Read the thermometer", "points": 4,
             "checkpoint": {"question": "What does it read?", "number": {"answer_from": {"object": "thermo", "property": "reading"}, "tolerance": 2, "unit": "C"}}},
        ],
        **extra,
    }


def make(challenge: dict | None = None, rules: list[dict] | None = None, **scene: Any) -> Lab:
    return Lab(lab_scene([READING] if rules is None else rules, bath() if challenge is None else challenge, **scene))


def snap(station: int = 1) -> tuple[float, float, float]:
    return (station_x(station) + 1, SNAP[1], SNAP[2])


def place(lab: Lab, by: str, now: float, station: int = 1) -> None:
    lab.put(f"beaker@{station}", snap(station), holder=None, by=by, now=now)


def steps_done(events: list) -> list[str]:
    return [e.fields["step"] for e in events if e.kind == "step_done"]


def only(events: list, kind: str) -> dict[str, Any]:
    found = [e.fields for e in events if e.kind == kind]
    assert len(found) == 1, [e.kind for e in events]
    return found[0]


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(Refused) as info:
        call(*args)
    return info.value.code


# ------------------------------------------------------------------ order


def test_a_step_opens_only_after_its_requires_and_completes_at_once_if_already_done() -> None:
    lab = make()
    started = lab.join("ann", 0.0)
    assert [e.kind for e in started] == ["station", "challenge_started"]
    assert lab.engine.progress[1].opened == {"place": 0.0}
    lab.set("ann", "burner@1", "lit", True, 1.0)
    assert steps_done(lab.tick(1.0)) == []  # "light" is not open yet
    place(lab, "ann", 2.0)
    events = lab.tick(2.0)
    assert steps_done(events) == ["place", "light"]  # the burner was already lit when "light" opened
    assert [e.fields["t"] for e in events if e.kind == "step_done"] == [2.0, 2.0]
    assert lab.engine.progress[1].opened == {"place": 0.0, "light": 2.0, "read": 2.0}


def test_free_order_only_listed_requires_order_steps() -> None:
    challenge = {"id": "free", "title": "Free", "order": "free", "steps": [
        {"id": "place", "text": "Place", "condition": AT_SNAP},
        {"id": "light", "text": "Light", "condition": LIT},
        {"id": "open", "text": "Open", "condition": OPEN, "requires": ["place", "light"]},
    ]}
    lab = make(challenge, rules=[])
    lab.join("ann", 0.0)
    assert set(lab.engine.progress[1].opened) == {"place", "light"}
    lab.set("ann", "valve@1", "state", "open", 0.5)
    lab.set("ann", "burner@1", "lit", True, 0.5)
    assert steps_done(lab.tick(0.5)) == ["light"]
    place(lab, "ann", 1.0)
    assert steps_done(lab.tick(1.0)) == ["place", "open"]
    assert lab.kinds()[-2:] == ["challenge_done", "score"]


def test_sequence_with_explicit_requires() -> None:
    challenge = {"id": "seq", "title": "Seq", "steps": [
        {"id": "place", "text": "Place", "condition": AT_SNAP},
        {"id": "light", "text": "Light", "condition": LIT, "requires": []},
        {"id": "open", "text": "Open", "condition": OPEN},
    ]}
    lab = make(challenge, rules=[])
    lab.join("ann", 0.0)
    assert set(lab.engine.progress[1].opened) == {"place", "light"}
    assert lab.engine.public_challenge()["steps"][2]["requires"] == ["light"]


# ------------------------------------------------------------------ mistakes


def test_a_mistake_counts_each_time_it_starts_to_hold_while_its_step_is_open() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.put("beaker@1", rotation=about("x", 90), by="ann", now=1.0)
    first = lab.tick(1.0)
    assert only(first, "mistake") == {"station": 1, "step": "place", "mistake": "spill", "explanation": "Spilled!", "penalty": 2, "by": "ann", "t": 1.0}
    lab.put("beaker@1", rotation=about("x", 100))  # still tilted: the same mistake
    assert lab.tick(2.0) == []
    lab.put("beaker@1", rotation=about("x", 0))
    lab.tick(3.0)
    lab.put("beaker@1", rotation=about("z", 90))
    assert only(lab.tick(4.0), "mistake")["mistake"] == "spill"
    assert lab.engine.progress[1].mistakes == {"place": 2}
    lab.put("beaker@1", snap(), about("x", 0))
    lab.tick(5.0)
    lab.put("beaker@1", rotation=about("x", 90))  # "place" is done: no longer a mistake
    assert [e.kind for e in lab.tick(6.0)] == []


def test_a_mistake_of_a_step_not_open_yet_counts_once_when_the_step_opens() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.set("ann", "valve@1", "state", "open", 1.0)  # "light"'s mistake, but "light" is not open
    assert lab.tick(1.0) == []
    place(lab, "ann", 2.0)
    events = lab.tick(2.0)
    assert [e.kind for e in events] == ["step_done", "score", "mistake", "score"]  # it holds as "light" opens
    assert events[2].fields == {"station": 1, "step": "light", "mistake": "valve", "explanation": "Not the valve yet", "penalty": 3, "by": "ann", "t": 2.0}
    assert lab.tick(3.0) == []  # still open: the same mistake
    lab.set("ann", "valve@1", "state", "closed", 3.5)
    lab.tick(3.5)
    lab.set("ann", "valve@1", "state", "open", 4.0)
    assert only(lab.tick(4.0), "mistake")["t"] == 4.0
    assert lab.engine.progress[1].mistakes == {"light": 2}


def test_penalties_take_points_off_but_the_score_never_goes_below_zero() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.put("beaker@1", rotation=about("x", 90))
    assert only(lab.tick(1.0), "score")["score"] == 0
    lab.put("beaker@1", snap(), about("x", 0), by="ann", now=2.0)
    assert only(lab.tick(2.0), "score") == {"station": 1, "score": 8, "members": {"ann": 8}}


# ------------------------------------------------------------------ time


def test_a_step_done_after_its_time_limit_earns_half_and_is_reported_overdue() -> None:
    challenge = bath()
    challenge["steps"][0]["time_limit_seconds"] = 10
    challenge["steps"][1]["time_limit_seconds"] = 10
    lab = make(challenge)
    lab.join("ann", 0.0)
    lab.tick(9.9)
    assert only(lab.tick(10.0), "step_overdue") == {"station": 1, "step": "place", "t": 10.0}
    place(lab, "ann", 12.0)
    done = only(lab.tick(12.0), "step_done")
    assert done["points"] == 5 and done["elapsed"] == 12.0
    lab.set("ann", "burner@1", "lit", True, 21.0)
    assert only(lab.tick(21.0), "step_done")["points"] == 5  # 9 s after it opened
    assert lab.tick(22.0) == []  # no overdue for a step already done


def test_time_bonus_by_the_formula() -> None:
    assert scoring.time_bonus(30, 60, 0) == 30
    assert scoring.time_bonus(30, 60, 20) == 20
    assert scoring.time_bonus(30, 60, 60) == 0
    assert scoring.time_bonus(30, 60, 600) == 0
    assert scoring.step_points(10, 0, 10, 10) == 10 and scoring.step_points(11, 0, 10.5, 10) == 5


def test_finishing_early_earns_the_time_bonus_once() -> None:
    challenge = {"id": "quick", "title": "Quick", "time_bonus": {"target_seconds": 60, "points": 30}, "steps": [
        {"id": "light", "text": "Light", "condition": LIT, "points": 10}]}
    lab = make(challenge, rules=[])
    lab.join("ann", 5.0)
    lab.set("ann", "burner@1", "lit", True, 25.0)
    events = lab.tick(25.0)
    assert only(events, "challenge_done") == {"station": 1, "t": 25.0, "elapsed": 20.0, "bonus": 20, "score": 30}
    assert only(events, "score")["members"] == {"ann": 30}
    lab.set("ann", "burner@1", "lit", False, 26.0)
    lab.set("ann", "burner@1", "lit", True, 27.0)
    assert [e.kind for e in lab.tick(27.0)] == []


# ------------------------------------------------------------------ scores and credit


def test_scores_per_station_and_a_late_member_shares_only_later_credit() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.join("bob", 0.0)  # station 2
    place(lab, "ann", 1.0)
    first = lab.tick(1.0)
    assert only(first, "score") == {"station": 1, "score": 10, "members": {"ann": 10}}
    lab.join("cat", 2.0)  # station 1 (2 stations, groups of 2)
    assert lab.engine.station_of("cat") == 1
    lab.set("cat", "burner@1", "lit", True, 3.0)
    events = lab.tick(3.0)
    assert only(events, "step_done")["by"] == "cat"
    assert only(events, "score") == {"station": 1, "score": 15, "members": {"ann": 15, "cat": 5}}
    stations = {s["number"]: s for s in lab.engine.snapshot()["stations"]["list"]}
    assert stations[1]["scores"] == {"ann": 15, "cat": 5} and stations[1]["progress"]["score"] == 15
    assert stations[2]["scores"] == {"bob": 0} and stations[2]["progress"]["score"] == 0


def test_credit_goes_to_the_last_to_touch_what_the_condition_names() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.join("bob", 0.0)
    lab.engine.assign("bob", "Bob", 1, 0.0)
    lab.put("beaker@1", (station_x(1), 1.2, 0.0), holder="bob", by="bob", now=1.0)
    lab.tick(1.0)
    lab.put("beaker@1", snap(), holder=None, by="ann", now=2.0)  # Ann took it from Bob and placed it
    assert only(lab.tick(2.0), "step_done")["by"] == "ann"


def test_credit_among_touches_at_the_same_time_goes_to_the_later_one() -> None:
    lab = make()
    lab.join("zoe", 0.0)
    lab.join("ann", 0.0)
    lab.engine.assign("ann", "Ann", 1, 0.0)
    lab.engine.touched(lab.index("tripod@1"), "zoe", 1.0)
    place(lab, "ann", 1.0)  # after Zoe, in the same instant
    assert only(lab.tick(1.0), "step_done")["by"] == "ann"


def test_step_records_carry_ids_unique_in_the_room() -> None:
    lab = make()
    lab.join("ann", 0.0)
    lab.put("beaker@1", rotation=about("x", 90))
    lab.tick(1.0)
    lab.put("beaker@1", snap(), about("x", 0), by="ann", now=2.0)
    lab.tick(2.0)
    records = [e.record for e in lab.events if e.record is not None]
    assert records == ["member:ann:1", "started:1", "mistake::1:2", "step:1:place"]
    done = next(e for e in lab.events if e.kind == "step_done")
    assert done.private == {"members": ["ann"], "skill": None, "opened": 0.0}


# ------------------------------------------------------------------ checkpoints


def checkpoint_lab(question: dict[str, Any]) -> Lab:
    challenge = {"id": "quiz", "title": "Quiz", "steps": [{"id": "q", "text": "Answer", "points": 6, "checkpoint": {"question": "?", **question}}]}
    lab = make(challenge, rules=[READING])
    lab.join("ann", 0.0)
    return lab


def test_a_choice_answer_by_index_right_or_wrong() -> None:
    lab = checkpoint_lab({"choice": {"choices": ["red", "blue", "green"], "answer": 1}, "wrong": "Look at the flame."})
    wrong = lab.engine.answer("ann", "q", 2, 1.0)
    assert only(wrong, "checkpoint_answer") == {"station": 1, "step": "q", "by": "ann", "correct": False, "t": 1.0}
    assert wrong[0].private == {"value": 2}
    assert only(wrong, "mistake") == {"station": 1, "step": "q", "mistake": "wrong_answer", "explanation": "Look at the flame.", "penalty": 2, "by": "ann", "t": 1.0}
    right = lab.engine.answer("ann", "q", 1, 2.0)
    assert only(right, "step_done")["by"] == "ann"
    assert only(right, "challenge_done")["score"] == 4
    assert refused(lab.engine.answer, "ann", "q", 1, 3.0) == "step_not_open"  # already answered


def test_a_number_answer_within_tolerance() -> None:
    lab = checkpoint_lab({"number": {"answer": 80, "tolerance": 2}})
    assert only(lab.engine.answer("ann", "q", 82.5, 1.0), "checkpoint_answer")["correct"] is False
    assert only(lab.engine.answer("ann", "q", 78, 2.0), "checkpoint_answer")["correct"] is True


def test_a_number_answer_from_a_property_at_the_moment_of_answering() -> None:
    lab = checkpoint_lab({"number": {"answer_from": {"object": "thermo", "property": "reading"}, "tolerance": 1}})
    assert only(lab.engine.answer("ann", "q", 80, 1.0), "checkpoint_answer")["correct"] is False  # it reads 20 yet
    lab.set("ann", "burner@1", "lit", True, 2.0)
    place(lab, "ann", 2.0)
    lab.tick(2.0)
    lab.tick(7.0)
    assert lab.value("thermo@1", "reading") == 80
    assert only(lab.engine.answer("ann", "q", 80.5, 8.0), "checkpoint_answer")["correct"] is True


def test_answers_are_rate_limited() -> None:
    lab = checkpoint_lab({"choice": {"choices": ["a", "b", "c", "d"], "answer": 3}})
    for i in range(3):
        lab.engine.answer("ann", "q", i, 1.0)
    assert refused(lab.engine.answer, "ann", "q", 3, 1.0) == "rate_limited"
    assert refused(lab.engine.answer, "ann", "q", 3, 2.9) == "rate_limited"
    assert only(lab.engine.answer("ann", "q", 3, 3.0), "checkpoint_answer")["correct"] is True


def test_leaving_and_coming_back_buys_no_extra_answers() -> None:
    lab = checkpoint_lab({"choice": {"choices": ["a", "b", "c", "d"], "answer": 3}})
    for i in range(3):
        lab.engine.answer("ann", "q", i, 1.0)
    lab.engine.leave("ann", 1.0)
    lab.join("ann", 1.0)
    assert refused(lab.engine.answer, "ann", "q", 3, 1.0) == "rate_limited"


def test_answers_refused_when_not_open_unknown_or_not_at_a_station() -> None:
    lab = make()
    lab.join("ann", 0.0)
    assert refused(lab.engine.answer, "ann", "read", 80, 1.0) == "step_not_open"
    assert refused(lab.engine.answer, "ann", "place", 1, 1.0) == "unknown_step"  # not a question
    assert refused(lab.engine.answer, "ann", "nope", 1, 1.0) == "unknown_step"
    assert refused(lab.engine.answer, "nobody", "read", 80, 1.0) == "no_station"


@pytest.mark.parametrize("value", [1.0, True, -1, 3, "1"])
def test_a_malformed_choice_answer_is_refused_without_cost(value: Any) -> None:
    lab = checkpoint_lab({"choice": {"choices": ["a", "b", "c"], "answer": 1}})
    for _ in range(4):
        assert refused(lab.engine.answer, "ann", "q", value, 1.0) == "bad_value"
    assert lab.engine.progress[1].mistakes == {}
    assert only(lab.engine.answer("ann", "q", 1, 1.0), "checkpoint_answer")["correct"] is True  # no try was spent


@pytest.mark.parametrize("value", ["80", float("nan"), float("inf"), 1e10, None, False])
def test_a_malformed_number_answer_is_refused(value: Any) -> None:
    lab = checkpoint_lab({"number": {"answer": 80}})
    assert refused(lab.engine.answer, "ann", "q", value, 1.0) == "bad_value"


# ------------------------------------------------------------------ stations


def test_auto_assignment_spreads_over_the_least_filled_station() -> None:
    lab = make(stations=3)
    for pid in ("a", "b", "c", "d"):
        lab.join(pid, 0.0)
    assert {pid: lab.engine.station_of(pid) for pid in "abcd"} == {"a": 1, "b": 2, "c": 3, "d": 1}
    lab.engine.leave("b", 1.0)
    lab.join("e", 1.0)
    assert lab.engine.station_of("e") == 2


def test_a_full_lab_has_no_station_for_a_newcomer() -> None:
    lab = make(stations=2, group_size=1)
    lab.join("a", 0.0)
    lab.join("b", 0.0)
    events = lab.join("c", 0.0)
    assert [(e.kind, e.fields) for e in events] == [("station", {"participant": "c", "station": None, "full": True})]
    assert lab.engine.station_of("c") is None


def test_a_student_waiting_for_a_place_takes_the_first_that_comes_free() -> None:
    lab = make(stations=2, group_size=1)
    for pid in ("a", "b", "c", "d"):
        lab.join(pid, 0.0)  # c and d find the lab full, in that order
    events = lab.engine.leave("b", 1.0)
    assert [(e.kind, e.fields.get("participant"), e.fields["station"]) for e in events] == [
        ("station", "b", None), ("station", "c", 2), ("challenge_started", None, 2)]  # b left station 2 untouched: it starts afresh for c
    assert lab.engine.station_of("c") == 2 and lab.engine.station_of("d") is None
    lab.engine.leave("d", 2.0)  # gave up waiting: nothing to place
    assert [e.kind for e in lab.engine.leave("a", 3.0)] == ["station"]


def test_a_returning_student_goes_back_to_their_station() -> None:
    lab = make(stations=2)
    for pid in ("ann", "bob", "cat"):
        lab.join(pid, 0.0)  # 1, 2, 1
    lab.engine.leave("bob", 1.0)
    lab.engine.leave("ann", 1.0)
    lab.join("ann", 2.0)  # station 2 is emptier, but station 1 is hers
    assert lab.engine.station_of("ann") == 1
    assert lab.engine.stations.stations[1].members == ["cat", "ann"]


def test_teacher_assignment_waits_for_the_teacher() -> None:
    lab = make(stations=2, group_size=1, assignment="teacher")
    assert lab.join("ann", 0.0) == []
    assert lab.engine.station_of("ann") is None
    events, spawn = lab.engine.assign("ann", "Ann", 2, 1.0)
    assert [e.kind for e in events] == ["station", "challenge_started"]
    assert spawn == (station_x(2), 0, 2, 0)
    lab.join("bob", 1.0)
    assert refused(lab.engine.assign, "bob", "Bob", 2, 1.5) == "station_full"
    assert refused(lab.engine.assign, "bob", "Bob", 3, 1.5) == "unknown_station"
    events, _ = lab.engine.assign("ann", "Ann", None, 2.0)
    assert [(e.kind, e.fields) for e in events] == [("station", {"participant": "ann", "station": None})]
    assert lab.engine.stations.stations[2].members == []


def test_a_returning_student_goes_back_under_teacher_assignment_too() -> None:
    lab = make(stations=2, assignment="teacher")
    lab.join("ann", 0.0)
    lab.engine.assign("ann", "Ann", 2, 0.5)
    lab.engine.leave("ann", 1.0)
    events = lab.join("ann", 2.0)
    assert lab.engine.station_of("ann") == 2 and events[0].fields["station"] == 2


def test_started_is_per_station_and_only_once() -> None:
    lab = make(stations=2, assignment="teacher")
    lab.join("ann", 0.0)
    lab.join("bob", 0.0)
    lab.engine.assign("ann", "Ann", 1, 3.0)
    events, _ = lab.engine.assign("bob", "Bob", 1, 4.0)
    assert [e.kind for e in events] == ["station"]
    assert lab.engine.progress[1].started == 3.0 and lab.engine.progress[2].started is None


def quick(time_limit: float | None = None) -> dict[str, Any]:
    """One step, light the burner, with a time bonus of 30 points for finishing within 60 s."""
    return {"id": "quick", "title": "Quick", "time_bonus": {"target_seconds": 60, "points": 30}, "steps": [
        {"id": "light", "text": "Light", "condition": LIT, "points": 10, "time_limit_seconds": time_limit}]}


def test_a_newcomer_at_an_empty_station_that_got_nowhere_starts_its_clock_afresh() -> None:
    lab = make(quick(time_limit=30), rules=[], stations=1)
    lab.join("ann", 5.0)  # looks around and leaves without doing anything
    lab.tick(6.0)
    lab.engine.leave("ann", 10.0)
    events = lab.join("bob", 800.0)
    assert [(e.kind, e.record) for e in events] == [("station", "member:bob:1"), ("challenge_started", "started::1:2")]
    assert events[1].fields == {"station": 1, "challenge": "quick", "t": 800.0}
    progress = lab.engine.snapshot()["stations"]["list"][0]["progress"]
    assert progress["started"] == 800.0 and progress["opened"] == {"light": 800.0}
    lab.set("bob", "burner@1", "lit", True, 820.0)
    events = lab.tick(820.0)
    assert only(events, "step_done")["points"] == 10  # within the time limit, counted from Bob's arrival too
    assert only(events, "challenge_done") == {"station": 1, "t": 820.0, "elapsed": 20.0, "bonus": 20, "score": 30}


def test_a_restart_drops_the_time_limits_of_the_start_before() -> None:
    lab = make(quick(time_limit=30), rules=[], stations=1)
    lab.join("ann", 5.0)
    lab.engine.leave("ann", 10.0)
    lab.join("bob", 20.0)
    assert lab.tick(35.0) == []  # Ann's limit, gone with her start
    assert only(lab.tick(50.0), "step_overdue") == {"station": 1, "step": "light", "t": 50.0}
    lab.engine.leave("bob", 51.0)  # an overdue step is no progress
    lab.join("cat", 60.0)
    assert lab.engine.progress[1].overdue == set() and lab.engine.progress[1].started == 60.0
    assert lab.tick(80.0) == [] and only(lab.tick(90.0), "step_overdue")["t"] == 90.0


@pytest.mark.parametrize("progress", ["step", "mistake"])
def test_a_station_that_got_somewhere_keeps_its_clock_for_a_newcomer(progress: str) -> None:
    lab = make(stations=1)
    lab.join("ann", 0.0)
    if progress == "step":
        place(lab, "ann", 1.0)
    else:
        lab.put("beaker@1", rotation=about("x", 90), by="ann", now=1.0)
    assert lab.kinds(lab.tick(1.0))[0] == ("step_done" if progress == "step" else "mistake")
    opened = dict(lab.engine.progress[1].opened)
    lab.engine.leave("ann", 2.0)
    assert lab.kinds(lab.join("bob", 500.0)) == ["station"]
    assert lab.engine.progress[1].started == 0.0 and lab.engine.progress[1].opened == opened


def test_a_newcomer_joining_a_group_that_got_nowhere_keeps_its_clock() -> None:
    lab = make(stations=1)
    lab.join("ann", 0.0)
    assert lab.kinds(lab.join("bob", 300.0)) == ["station"]
    assert lab.engine.progress[1].started == 0.0


# ------------------------------------------------------------------ in the room


def messages(out: list, to: str | None = "*") -> list[dict]:
    return [json.loads(item.data) for item in out if isinstance(item, Send) and isinstance(item.data, str) and (to == "*" or item.to == to)]


def errors(out: list) -> list[str]:
    return [m["code"] for m in messages(out) if m["type"] == "error"]


def events_of(out: list, kind: str) -> list[dict]:
    return [m for m in messages(out) if m["type"] == kind]


def room(**scene: Any) -> Room:
    return Room("r", lab_scene([READING], bath(), **scene), RoomLimits(), record=True)


def interact(obj: str, prop: str, value: Any) -> p.Interact:
    return p.Interact(type="interact", object=obj, property=prop, value=value)


def test_may_touch_only_your_own_stations_equipment() -> None:
    r = room()
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    r.handle("bob", Enter("Bob", Role.STUDENT), 0.0)
    r.handle("tea", Enter("Tea", Role.TEACHER), 0.0)
    out = r.handle("bob", p.Grab(type="grab", object="beaker@1"), 1.0)
    assert messages(out, "bob")[0]["message"] == "That is station 1's equipment; yours is at station 2."
    assert errors(r.handle("bob", interact("burner@1", "lit", True), 1.0)) == ["wrong_station"]
    assert events_of(r.handle("bob", p.Grab(type="grab", object="bottle"), 1.0), "grabbed")  # shared
    assert events_of(r.handle("tea", p.Grab(type="grab", object="beaker@1"), 1.0), "grabbed")  # the teacher may


def test_a_student_at_no_station_may_touch_only_shared_things() -> None:
    r = room(assignment="teacher")
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    out = r.handle("ann", p.Grab(type="grab", object="beaker@1"), 1.0)
    assert messages(out, "ann")[0]["message"] == "That is station 1's equipment; you are not at a station yet."


def test_moving_a_student_releases_what_they_held_of_their_old_station() -> None:
    r = room(assignment="choose")
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    assert errors(r.handle("ann", p.Grab(type="grab", object="beaker@1"), 0.5)) == ["wrong_station"]
    r.handle("ann", p.ChooseStation(type="choose_station", station=1), 1.0)
    r.handle("ann", p.Grab(type="grab", object="beaker@1"), 1.5)
    r.handle("ann", p.Grab(type="grab", object="bottle"), 1.5)
    out = r.handle("ann", p.ChooseStation(type="choose_station", station=2), 2.0)
    assert [m["object"] for m in events_of(out, "released")] == ["beaker@1"]
    assert r.holder_of("bottle") == "ann"


def test_choosing_a_station_only_where_the_scene_lets_students_choose() -> None:
    r = room()
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    out = r.handle("ann", p.ChooseStation(type="choose_station", station=2), 1.0)
    assert errors(out) == ["forbidden"] and r.challenges.station_of("ann") == 1
    r.handle("tea", Enter("Tea", Role.TEACHER), 0.0)
    out = r.handle("tea", p.AssignStation(type="assign_station", participant="ann", station=2), 1.0)
    assert events_of(out, "station")[0]["station"] == 2
    assert errors(r.handle("tea", p.AssignStation(type="assign_station", participant="ghost", station=2), 1.0)) == ["unknown_participant"]


def test_interact_validates_against_the_declaration() -> None:
    r = room()
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    cases = [
        (interact("burner@1", "flame", True), "unknown_property"),
        (interact("thermo@1", "reading", 50), "not_interactable"),
        (interact("dial@1", "level", 11), "bad_value"),
        (interact("dial@1", "level", -0.5), "bad_value"),
        (interact("burner@1", "lit", 1), "bad_value"),
        (interact("burner@1", "lit", "true"), "bad_value"),
        (interact("dial@1", "level", True), "bad_value"),
        (interact("valve@1", "state", "ajar"), "bad_value"),
        (interact("valve@1", "state", 1), "bad_value"),
        (interact("ghost", "lit", True), "unknown_object"),
    ]
    for message, code in cases:
        assert errors(r.handle("ann", message, 1.0)) == [code], message
    out = r.handle("ann", interact("dial@1", "level", 7.3), 1.0)
    assert events_of(out, "property") == [{"type": "property", "seq": r.seq, "object": "dial@1", "property": "level", "value": 7.5, "by": "ann"}]
    assert r.handle("ann", interact("dial@1", "level", 7.4), 1.0) == []  # the same value after rounding
    assert r.snapshot()["properties"]["dial@1"] == {"level": 7.5}


def test_interactions_are_rate_limited() -> None:
    r = room()
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    codes = [errors(r.handle("ann", interact("burner@1", "lit", i % 2 == 0), 1.0)) for i in range(21)]
    assert codes[:20] == [[]] * 20 and codes[20] == ["rate_limited"]


def test_the_room_restarts_an_abandoned_station_for_a_newcomer_but_not_for_a_resume() -> None:
    r = room(stations=1)
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    r.handle("ann", Disconnect(), 5.0)
    r.tick(20.0)
    out = r.handle("ann", Enter("Ann", Role.STUDENT), 25.0)  # back within the resume window: still a member
    assert events_of(out, "challenge_started") == []
    r.handle("ann", p.Leave(type="leave"), 30.0)
    out = r.handle("bob", Enter("Bob", Role.STUDENT), 400.0)
    welcome = messages(out, "bob")[0]
    assert welcome["snapshot"]["stations"]["list"][0]["progress"]["started"] == 400.0
    assert [e["t"] for e in events_of(out, "challenge_started")] == [400.0]
    assert [item.id for item in out if isinstance(item, Record) and item.kind == "challenge_started"] == ["started::1:2"]


def test_the_room_refuses_answers_with_the_engines_codes() -> None:
    r = room()
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    assert errors(r.handle("ann", p.Answer(type="answer", step="read", value=80), 1.0)) == ["step_not_open"]
    r.handle("tea", Enter("Tea", Role.TEACHER), 0.0)
    assert errors(r.handle("tea", p.Answer(type="answer", step="read", value=80), 1.0)) == ["forbidden"]


# ------------------------------------------------------------------ a whole practical, and its replay


def pose_at(x: float, z: float) -> bytes:
    return p.encode_pose([x, 1.6, z, 0, 0, 0, 1, x - 0.2, 1.1, z, 0, 0, 0, 1, x + 0.2, 1.1, z, 0, 0, 0, 1], stamp=1)


def practical() -> tuple[Room, list[str]]:
    """Three students at two stations do the water bath, with a mistake, a wrong answer and a late partner."""
    r = room()
    out: list = []

    def do(pid: str, message: Any, now: float) -> None:
        out.extend(r.handle(pid, message, now))

    def tick(now: float) -> None:
        out.extend(r.tick(now))

    beaker = [r._object_ids[f"beaker@{s}"] for s in (1, 2)]
    do("ann", Enter("Ann", Role.STUDENT), 0.0)
    do("bob", Enter("Bob", Role.STUDENT), 0.0)
    tick(0.1)
    do("ann", p.Grab(type="grab", object="beaker@1"), 0.2)
    do("ann", p.ObjectMove(beaker[0], (station_x(1) + 1, 1.1, 0.0, *about("x", 90))), 0.3)  # spilled
    tick(0.3)
    do("ann", p.ObjectMove(beaker[0], (*snap(1), 0, 0, 0, 1)), 0.5)
    do("ann", p.Release(type="release", object="beaker@1"), 0.6)
    do("bob", p.Grab(type="grab", object="beaker@2"), 0.6)
    do("bob", p.ObjectMove(beaker[1], (*snap(2), 0, 0, 0, 1)), 0.6)
    do("bob", p.Release(type="release", object="beaker@2"), 0.7)
    do("bob", p.PoseFrame(pose_at(station_x(2), 1.0)), 0.7)
    tick(0.7)
    do("cat", Enter("Cat", Role.STUDENT), 1.0)  # Ann's partner, late
    do("cat", interact("burner@1", "lit", True), 1.2)
    do("bob", interact("valve@2", "state", "open"), 1.3)  # a mistake at station 2
    tick(1.3)
    do("bob", interact("burner@2", "lit", True), 1.35)
    tick(1.4)
    for t in (2.0, 4.0, 6.0, 6.3, 7.0):
        tick(t)
    do("cat", p.Answer(type="answer", step="read", value=50), 7.1)  # wrong
    do("ann", p.Answer(type="answer", step="read", value=79), 7.2)
    do("bob", p.Answer(type="answer", step="read", value=81), 7.3)
    tick(7.4)
    do("bob", p.Leave(type="leave"), 8.0)
    tick(8.1)
    texts = [item.data for item in out if isinstance(item, Send) and isinstance(item.data, str) and item.to is None]
    return r, texts


def test_a_whole_practical_scores_each_station_and_member() -> None:
    r, texts = practical()
    kinds = [json.loads(t)["type"] for t in texts]
    assert kinds.count("challenge_done") == 2 and kinds.count("mistake") == 3
    stations = {s["number"]: s for s in r.snapshot()["stations"]["list"]}
    one, two = stations[1], stations[2]
    assert one["progress"]["done"]["place"]["by"] == "ann" and one["progress"]["done"]["light"]["by"] == "cat"
    assert one["progress"]["done"]["read"]["by"] == "ann"
    assert one["progress"]["mistakes"] == {"place": 1, "read": 1}
    assert one["progress"]["score"] == 10 + 5 + 4 - 2 - 2
    assert one["scores"] == {"ann": 15, "cat": 5 + 4 - 2}
    assert two["progress"]["score"] == 10 + 5 + 4 - 3 and two["members"] == []
    assert r.snapshot()["properties"]["thermo@1"] == {"reading": 80}


def test_replay_of_the_input_log_gives_the_same_state_and_sequence() -> None:
    r, _ = practical()
    again = replay("r", r.scene, r.limits, r.inputs or [])
    assert again.seq == r.seq
    assert again.snapshot() == r.snapshot()


def test_records_are_the_same_on_replay_and_unique() -> None:
    def records(r: Room) -> list[str]:
        ids: list[str] = []
        fresh = Room("r", r.scene, r.limits)
        for kind, now, pid, message in r.inputs or []:
            out = fresh.tick(now) if kind == "tick" else fresh.handle(pid or "", message, now)
            ids += [item.id for item in out if isinstance(item, Record)]
        return ids

    r, _ = practical()
    first = records(r)
    assert first == records(r)
    assert len(first) == len(set(first)) and "step:1:read" in first and "done:2" in first


_SCRIPT = """
import json
from tests.unit.test_challenge_engine import practical
print(json.dumps(practical()[1]))
"""


def test_the_same_events_in_the_same_order_whatever_the_hash_seed() -> None:
    runs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1]
    assert runs[0] == practical()[1]


def test_a_teacher_reset_puts_properties_back_and_rules_apply_again() -> None:
    upright = {"object": "probe", "property": "on", "value": True, "otherwise": False, "when": {"upright": {"object": "flask"}}}
    lab = make(rules=[READING, upright])
    lab.join("ann", 0.0)
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    assert lab.value("probe@1", "on") is True
    events = lab.engine.reset()
    assert [(e.fields["object"], e.fields["value"]) for e in events] == [("burner@1", False), ("probe@1", False), ("probe@2", False)]
    after = lab.tick(2.0)
    assert lab.value("probe@1", "on") is True and lab.value("probe@2", "on") is True  # the flasks still stand
    assert [(e.fields["object"], e.fields["value"]) for e in after if e.kind == "property"] == [("probe@1", True), ("probe@2", True)]


def test_the_room_reports_where_students_stand() -> None:
    challenge = {"id": "walk", "title": "Walk", "steps": [{"id": "door", "text": "Go to the door", "condition": {"participant_in_zone": {"zone": "door"}}}]}
    r = Room("r", lab_scene([], challenge), RoomLimits())
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    r.handle("bob", Enter("Bob", Role.STUDENT), 0.0)
    assert events_of(r.tick(0.1), "step_done") == []  # both at their spawn points
    r.handle("bob", p.PoseFrame(pose_at(station_x(1) + 5, 0.2)), 0.2)  # at station 1's door, but of station 2
    assert events_of(r.tick(0.2), "step_done") == []
    r.handle("ann", p.PoseFrame(pose_at(station_x(1) + 5, 0.2)), 0.3)
    done = events_of(r.tick(0.3), "step_done")
    assert [(d["station"], d["step"]) for d in done] == [(1, "door")]


def test_held_by_learner_through_the_room() -> None:
    challenge = {"id": "hold", "title": "Hold", "steps": [{"id": "hold", "text": "Pick up the bottle", "condition": {"held": {"object": "bottle", "by_learner": True}}}]}
    r = Room("r", lab_scene([], challenge), RoomLimits())
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    r.handle("tea", Enter("Tea", Role.TEACHER), 0.0)
    r.handle("tea", p.Grab(type="grab", object="bottle"), 0.1)
    assert events_of(r.tick(0.1), "step_done") == []
    r.handle("tea", p.Release(type="release", object="bottle"), 0.2)
    r.handle("ann", p.Grab(type="grab", object="bottle"), 0.2)
    done = events_of(r.tick(0.2), "step_done")
    assert [(d["station"], d["by"]) for d in done] == [(1, "ann")]


def test_clients_see_the_challenge_and_highlights_but_no_answers() -> None:
    challenge = bath()
    challenge["steps"][1]["condition"] = {"all": [LIT, {"not": {"in_zone": {"object": "bottle", "zone": "sink"}}}]}
    challenge["steps"].append({"id": "pick", "text": "Which?", "checkpoint": {"question": "Which?", "choice": {"choices": ["a", "b"], "answer": 1}}})
    lab = make(challenge)
    snapshot = json.dumps(lab.engine.snapshot())
    assert '"answer"' not in snapshot and "answer_from" not in snapshot
    steps = lab.engine.public_challenge()["steps"]
    assert steps[2]["checkpoint"] == {"question": "What does it read?", "number": {"unit": "C"}}
    assert steps[3]["checkpoint"] == {"question": "Which?", "choices": ["a", "b"]}
    assert lab.engine.highlights(2) == {"place": ["beaker@2", "tripod@2"], "light": ["burner@2"]}  # not what must not happen


def test_answering_before_choosing_a_station_is_refused() -> None:
    r = room(assignment="choose")
    r.handle("ann", Enter("Ann", Role.STUDENT), 0.0)
    assert errors(r.handle("ann", p.Answer(type="answer", step="read", value=20), 0.5)) == ["no_station"]
