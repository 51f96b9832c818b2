"""Stuck detection: each signal at its threshold and not before, fading, wheel-spinning from
what a student brings in at Enter, and the stuck/unstuck events the room sends.

The pure functions (realtime.learning.stuck) first, then the same signals through the room
(tests/unit/test_hints.py's lab), with explicit times.
"""

from __future__ import annotations

from typing import Any

import pytest

from realtime import protocol as p
from realtime.learning import stuck
from scenes import challenge_format as cf
from realtime.roles import Role
from realtime.room import SYSTEM
from tests.unit.test_hints import NUDGE, Lab, ask, events, hinted

# ------------------------------------------------------------------ the signals as functions


def test_idle_holds_at_its_threshold_not_before() -> None:
    assert stuck.idle(10.0, 69.999, 60.0, "step 1") is None
    signal = stuck.idle(10.0, 70.0, 60.0, "step 1")
    assert signal is not None and signal.signal == "idle" and signal.since == 70.0
    assert signal.reason == "idle 60 s on step 1"
    assert stuck.idle_due(10.0, 60.0) == 70.0


def test_slow_holds_at_factor_times_expected_and_only_for_timed_steps() -> None:
    assert stuck.slow(5.0, 64.9, 40.0, 1.5, "step 2") is None
    signal = stuck.slow(5.0, 65.0, 40.0, 1.5, "step 2")
    assert signal is not None and signal.since == 65.0 and signal.reason == "60 s on step 2, expected 40 s"
    assert stuck.slow(5.0, 10_000.0, None, 1.5, "step 2") is None and stuck.slow_due(5.0, None, 1.5) is None


def test_the_same_mistake_repeated_is_a_signal_other_mistakes_are_not() -> None:
    made = {"spill": [3.0], "valve": [4.0]}
    assert stuck.mistakes(made, 2, "step 1") == []
    made["spill"].append(9.0)
    [signal] = stuck.mistakes(made, 2, "step 1")
    assert (signal.signal, signal.key, signal.since) == ("mistakes", "spill", 9.0)
    assert signal.reason == "mistake 'spill' 2 times on step 1"
    assert stuck.mistakes({"wrong_answer": [1.0, 2.0, 3.0]}, 3, "step 4")[0].reason == "wrong answers 3 times on step 4"


def test_wheel_spinning_after_n_opportunities_without_mastery() -> None:
    members = [("a", "Ann", 9, False), ("b", "Bob", 10, False), ("c", "Cat", 12, True)]
    [signal] = stuck.wheel_spinning(members, 10, "setup", "step 1", 5.0)
    assert (signal.signal, signal.participant, signal.since) == ("wheel_spinning", "b", 5.0)
    assert "Bob" in signal.reason and "setup" in signal.reason
    assert stuck.wheel_spinning(members, 10, None, "step 1", 5.0) == []
    assert stuck.level([signal]) == "red" and stuck.level([stuck.idle(0, 60, 60, "s")]) == "amber"  # type: ignore[list-item]


def test_fading_doubles_every_threshold_but_wheel_spinning() -> None:
    faded = stuck.Thresholds(60, 1.5, 2, 10).faded()
    assert faded == stuck.Thresholds(120, 3.0, 4, 10)


# ------------------------------------------------------------------ through the room


def flags(lab: Lab, station: int = 1) -> dict[str, Any] | None:
    return lab.room.snapshot()["hints"]["stations"][station - 1]["stuck"]


def test_an_idle_station_is_flagged_at_idle_seconds_and_activity_clears_it() -> None:
    lab = Lab(hinted({"idle_seconds": 60, "slow_factor": 10}))
    lab.enter("ann")
    lab.tick(0.0)
    assert events(lab.tick(59.99), "stuck") == []
    [flag] = events(lab.tick(60.0), "stuck")
    assert flag == {
        "type": "stuck", "seq": flag["seq"], "station": 1, "step": "place", "participants": ["ann"], "level": "amber",
        "signals": [{"signal": "idle", "reason": "idle 60 s on step 1", "since": 60.0}],
    }
    lab.do("ann", p.Grab(type="grab", object="beaker@1"), 70.0)
    [clear] = events(lab.tick(70.1), "unstuck")
    assert clear["station"] == 1 and clear["step"] == "place"
    assert flags(lab) is None
    assert events(lab.tick(129.9), "stuck") == []  # sixty seconds from the grab
    assert events(lab.tick(130.0), "stuck")[0]["signals"][0]["since"] == 130.0


def test_handling_equipment_keeps_a_station_from_being_idle() -> None:
    lab = Lab(hinted({"idle_seconds": 60, "slow_factor": 10}))
    lab.enter("ann")
    lab.tick(0.0)
    beaker = lab.room._object_ids["beaker@1"]
    lab.do("ann", p.Grab(type="grab", object="beaker@1"), 30.0)
    lab.do("ann", p.ObjectMove(beaker, (10.0, 1.2, 0.0, 0, 0, 0, 1)), 50.0)
    lab.tick(50.0)
    assert events(lab.tick(109.9), "stuck") == []
    assert events(lab.tick(110.0), "stuck")


def test_a_slow_step_is_flagged_at_slow_factor_times_its_expected_seconds() -> None:
    lab = Lab(hinted({"idle_seconds": 3600, "slow_factor": 2}))  # expected_seconds 40
    lab.enter("ann")
    lab.tick(0.0)
    assert events(lab.tick(79.9), "stuck") == []
    [flag] = events(lab.tick(80.0), "stuck")
    assert flag["signals"] == [{"signal": "slow", "reason": "80 s on step 1, expected 40 s", "since": 80.0}]
    lab.place("ann", 81.0)  # the step done clears it; the next step has no expected time
    assert [e["type"] for e in events(lab.out) if e["type"] in ("stuck", "unstuck")] == ["stuck", "unstuck"]
    assert events(lab.tick(1000.0), "stuck") == []


def test_the_same_mistake_repeat_mistakes_times_is_flagged() -> None:
    lab = Lab(hinted({"idle_seconds": 3600, "repeat_mistakes": 2}))
    lab.enter("ann")
    lab.tick(0.0)
    lab.spill("ann", 1.0)
    assert events(lab.out, "stuck") == []
    lab.spill("ann", 2.0)
    [flag] = events(lab.out, "stuck")
    assert flag["signals"] == [{"signal": "mistakes", "reason": "mistake 'spill' 2 times on step 1", "since": 2.0}]
    # and it climbs the ladder as any stuck signal does
    assert [(h["level"], h["reason"]) for h in events(lab.out, "hint")] == [(1, "mistakes")]


def test_wrong_answers_count_as_the_same_mistake() -> None:
    challenge = hinted({"idle_seconds": 3600, "repeat_mistakes": 3}, order="free")
    challenge["steps"] = [challenge["steps"][2]]  # only the question
    lab = Lab(challenge)
    lab.enter("ann")
    lab.tick(0.0)
    for t in (1.0, 2.0):
        lab.do("ann", p.Answer(type="answer", step="read", value=1), t)
        lab.tick(t)
    assert events(lab.out, "stuck") == []
    lab.do("ann", p.Answer(type="answer", step="read", value=1), 3.0)
    lab.tick(3.0)
    assert events(lab.out, "stuck")[0]["signals"][0]["reason"] == "wrong answers 3 times on step 1"


def test_wheel_spinning_counts_the_opportunities_brought_in_at_enter() -> None:
    lab = Lab(hinted({"idle_seconds": 3600, "wheel_spinning_after": 10}))
    lab.enter("ann", skills={"setup": (0.3, 10)})
    [flag] = events(lab.tick(0.0), "stuck")
    assert flag["level"] == "red"
    assert flag["signals"] == [{"signal": "wheel_spinning", "reason": "Ann: 10 tries at 'setup' without mastering it (step 1)", "since": 0.0, "participant": "ann"}]


def test_wheel_spinning_starts_with_the_attempt_that_reaches_the_count() -> None:
    lab = Lab(hinted({"idle_seconds": 3600, "wheel_spinning_after": 10, "repeat_mistakes": 5}))
    lab.enter("ann", skills={"setup": (0.3, 9)})
    assert events(lab.tick(0.0), "stuck") == []
    lab.spill("ann", 1.0)  # the first attempt at the step, wrong: the tenth at the skill
    [flag] = events(lab.out, "stuck")
    assert flag["level"] == "red" and flag["signals"][0]["participant"] == "ann"


def test_a_master_is_not_wheel_spinning() -> None:
    lab = Lab(hinted({"idle_seconds": 3600, "wheel_spinning_after": 10}))
    lab.enter("ann", skills={"setup": (0.97, 30)})
    assert events(lab.tick(0.0), "stuck") == []


def test_fading_waits_twice_as_long_and_stops_at_the_nudge() -> None:
    lab = Lab(hinted({"idle_seconds": 60, "cooldown_seconds": 30}))
    lab.enter("ann", skills={"setup": (0.96, 5)})  # mastered (0.95)
    lab.tick(0.0)
    assert events(lab.tick(60.0), "stuck") == events(lab.tick(119.9), "stuck") == []
    out = lab.tick(120.0)
    assert events(out, "stuck")[0]["signals"][0]["reason"] == "idle 120 s on step 1"
    assert [h["text"] for h in events(out, "hint")] == [NUDGE]
    for t in (150.0, 180.0, 600.0):
        assert events(lab.tick(t), "hint") == []  # never past the nudge by itself
    assert events(lab.do("ann", ask("place"), 601.0), "hint")[0]["level"] == 2  # but asking still works


def test_fading_needs_every_member_to_have_mastered_the_skill() -> None:
    lab = Lab(hinted({"idle_seconds": 60}))
    lab.enter("ann", skills={"setup": (0.96, 5)})
    lab.enter("cat")  # no mastery: ann's partner, not at a bench of their own
    lab.do(SYSTEM, p.AssignStation(type="assign_station", participant="cat", station=1), 0.0)
    lab.tick(0.0)
    assert events(lab.tick(60.0), "hint")[0]["to"] == ["ann", "cat"]


def test_fading_can_be_turned_off() -> None:
    lab = Lab(hinted({"idle_seconds": 60, "fading": False}))
    lab.enter("ann", skills={"setup": (0.96, 5)})
    lab.tick(0.0)
    assert events(lab.tick(60.0), "hint")


def test_nobody_is_stuck_while_the_teacher_has_frozen_the_lab() -> None:
    lab = Lab(hinted({"idle_seconds": 60, "slow_factor": 10}))
    lab.enter("ann")
    lab.enter("tea", role=Role.TEACHER)
    lab.tick(0.0)
    lab.do("tea", p.Freeze(type="freeze", frozen=True), 30.0)
    assert events(lab.tick(100.0), "stuck") == []
    lab.do("tea", p.Freeze(type="freeze", frozen=False), 100.0)
    assert events(lab.tick(159.9), "stuck") == []
    assert events(lab.tick(160.0), "stuck")


def test_an_empty_station_is_not_stuck_and_a_leaving_group_clears_its_flag() -> None:
    lab = Lab(hinted({"idle_seconds": 60}))
    lab.enter("ann")
    lab.tick(0.0)
    lab.tick(60.0)
    lab.do("ann", p.Leave(type="leave"), 61.0)
    assert events(lab.tick(61.0), "unstuck")
    assert events(lab.tick(500.0), "stuck") == []


@pytest.mark.parametrize("field,value", [("idle_seconds", 0), ("slow_factor", 0.5), ("repeat_mistakes", 0), ("wheel_spinning_after", 101), ("nudge_cost", 1001)])
def test_thresholds_out_of_bounds_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError):
        cf.HintSettings.model_validate({field: value})


def test_a_step_without_a_designers_time_is_timed_by_the_class_once_three_stations_did_it() -> None:
    from realtime.learning.stuck import CLASS_SAMPLES, expected_seconds

    assert expected_seconds(40.0, [1.0, 2.0, 3.0]) == 40.0
    assert expected_seconds(None, [30.0, 50.0][: CLASS_SAMPLES - 1]) is None
    assert expected_seconds(None, [50.0, 30.0, 90.0]) == 50.0
    assert expected_seconds(None, [50.0, 30.0, 90.0, 10.0]) == 40.0
