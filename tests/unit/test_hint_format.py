"""scene.json hints and skills: the challenge's hint settings and BKT parameters, each step's
expected time and hint ladder, through scenes.manifest.parse (field bounds and cross-references
with their JSON paths)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from realtime.learning import bkt
from scenes import challenge_format as cf
from tests.unit.test_challenge_format import edit, lab, parse, problems

LADDER = {
    "nudge": "Where does a beaker go to be heated?",
    "specific": {"text": "The tripod has a place on top.", "highlight": ["beaker", "tripod", "bench", "bottle", "sink"]},
    "bottom_out": {"text": "Put the beaker on the tripod.", "demo": {"object": "beaker", "target": "tripod", "snap": "top"}},
}


def hinted(**step: Any) -> dict[str, Any]:
    def change(data: dict) -> None:
        data["challenge"]["steps"][0].update({"skill": "setup", "expected_seconds": 45, "hints": LADDER, **step})

    return edit(change)


def test_hints_and_skills_parse_with_their_defaults() -> None:
    data = hinted()
    data["challenge"]["skills"] = {"setup": {"guess": 0.3}}
    manifest, found = parse(data)
    assert found == [] and manifest is not None and manifest.challenge is not None
    challenge = manifest.challenge
    assert challenge.hints == cf.HintSettings()
    assert challenge.hints.model_dump() == {
        "nudge_cost": 0, "specific_cost": 2, "bottom_out_cost": 5, "cooldown_seconds": 30.0, "idle_seconds": 60.0,
        "slow_factor": 1.5, "repeat_mistakes": 2, "wheel_spinning_after": 10, "fading": True,
    }
    assert challenge.mastery == 0.95 == bkt.MASTERY
    assert challenge.skills["setup"].guess == 0.3 and challenge.skills["setup"].prior == 0.1
    step = challenge.steps[0]
    assert step.expected_seconds == 45 and step.hints is not None and step.hints.bottom_out is not None
    assert step.hints.bottom_out.demo == cf.Demo(object="beaker", target="tripod", snap="top")
    assert challenge.steps[1].hints is None and challenge.steps[1].expected_seconds is None


def test_the_skill_defaults_are_the_learner_models() -> None:
    assert cf.SkillModel().model_dump() == dataclasses.asdict(bkt.SkillParams())  # scenes may not import realtime


def test_each_rung_is_optional_and_a_demo_may_go_to_a_zone_or_an_objects_position() -> None:
    for ladder in ({"nudge": "Look around"}, {"specific": {"text": "This one", "highlight": []}},
                   {"bottom_out": {"text": "Like this", "demo": {"object": "beaker", "target": "bench"}}},
                   {"bottom_out": {"text": "Like this", "demo": {"object": "beaker", "target": "tripod"}}},
                   {"bottom_out": {"text": "Like this"}}, {}):
        assert parse(hinted(hints=ladder))[1] == [], ladder


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("nudge_cost", -1), ("specific_cost", 1001), ("bottom_out_cost", 2.5), ("cooldown_seconds", 0), ("idle_seconds", 3601),
        ("slow_factor", 0.9), ("slow_factor", 11), ("repeat_mistakes", 0), ("wheel_spinning_after", 101), ("fading", "maybe"),
    ],
)
def test_hint_settings_out_of_bounds_are_refused_with_their_path(where: str, value: Any) -> None:
    data = lab()
    data["challenge"]["hints"] = {where: value}
    assert [p[0] for p in problems(data)] == [f"scene.json $.challenge.hints.{where}"]


@pytest.mark.parametrize(
    ("skill", "path"),
    [({"prior": 1.5}, "prior"), ({"slip": -0.1}, "slip"), ({"guess": 0.6, "slip": 0.5}, ""), ({"learning": 0.2}, "learning")],
)
def test_skill_parameters_must_be_probabilities_that_tell_the_states_apart(skill: dict, path: str) -> None:
    data = hinted()
    data["challenge"]["skills"] = {"setup": skill}
    [(where, what, _)] = problems(data)
    assert where == "scene.json $.challenge.skills.setup" + (f".{path}" if path else "")


def test_mastery_and_expected_seconds_are_bounded() -> None:
    data = lab()
    data["challenge"]["mastery"] = 0
    assert [p[0] for p in problems(data)] == ["scene.json $.challenge.mastery"]
    assert [p[0] for p in problems(hinted(expected_seconds=0))] == ["scene.json $.challenge.steps[0].expected_seconds"]


def test_a_hint_text_is_bounded_like_every_text() -> None:
    found = problems(hinted(hints={"nudge": "x" * 301}))
    assert [p[0] for p in found] == ["scene.json $.challenge.steps[0].hints.nudge"]


@pytest.mark.parametrize(
    ("ladder", "path", "what"),
    [
        ({"specific": {"text": "t", "highlight": ["beaker", "ghost"]}}, "specific.highlight[1]", "there is no object or zone 'ghost'"),
        ({"bottom_out": {"text": "t", "demo": {"object": "ghost", "target": "tripod"}}}, "bottom_out.demo.object", "there is no object 'ghost'"),
        ({"bottom_out": {"text": "t", "demo": {"object": "tripod", "target": "burner"}}}, "bottom_out.demo.object",
         "'tripod' is not interactable, so no student could do what the demonstration shows"),
        ({"bottom_out": {"text": "t", "demo": {"object": "beaker", "target": "attic"}}}, "bottom_out.demo.target", "there is no object or zone 'attic'"),
        ({"bottom_out": {"text": "t", "demo": {"object": "beaker", "target": "tripod", "snap": "rim"}}}, "bottom_out.demo.snap",
         "object 'tripod' has no snap point 'rim' (it has 'top')"),
        ({"bottom_out": {"text": "t", "demo": {"object": "beaker", "target": "sink", "snap": "top"}}}, "bottom_out.demo.snap",
         "'sink' is a zone, and a zone has no snap points"),
    ],
)
def test_every_name_a_hint_uses_must_exist(ladder: dict, path: str, what: str) -> None:
    [(where, found, fix)] = problems(hinted(hints=ladder))
    assert where == f"scene.json $.challenge.steps[0].hints.{path}"
    assert found == what and fix


def test_a_skill_no_step_exercises_is_refused() -> None:
    data = hinted()
    data["challenge"]["skills"] = {"setup": {}, "pouring": {"prior": 0.2}}
    [(where, what, fix)] = problems(data)
    assert where == "scene.json $.challenge.skills.pouring"
    assert what == "no step exercises skill 'pouring'" and "setup" in fix


def test_hint_fields_of_a_step_are_checked_by_shape() -> None:
    found = problems(hinted(hints={"specific": {"text": "t", "highlight": ["a"] * 17}}))
    assert [p[0] for p in found] == ["scene.json $.challenge.steps[0].hints.specific.highlight"]
    found = problems(hinted(hints={"bottom_out": {"demo": {"object": "beaker", "target": "tripod"}}}))
    assert [p[0] for p in found] == ["scene.json $.challenge.steps[0].hints.bottom_out.text"]
