"""scene.json schema_version 2: properties, rules, stations and the challenge, as a designer
writes them, through scenes.manifest.parse (field checks and cross-references), and the
station template's expansion (scenes.stations)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from scenes import manifest as mf
from scenes.stations import expand, out_of_bounds, places
from tests.scene_packages import manifest as v1_manifest

LIT = {"property": {"object": "burner", "property": "lit", "equals": True}}
AT_SNAP = {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}


def lab(**extra: Any) -> dict[str, Any]:
    """A valid version 2 manifest: four stations on a 2 x 2 grid, a rule and a three-step challenge."""
    box = "box"
    data: dict[str, Any] = {
        "schema_version": 2,
        "id": "bath-lab",
        "title": "Water bath",
        "assets": [{"id": box, "path": "assets/box.glb"}],
        "objects": [{"id": "bottle", "asset": box, "interactable": True, "transform": {"position": [0, 1, 5]}}],
        "zones": [{"id": "sink", "shape": "sphere", "center": [0, 1, 5], "radius": 1}],
        "spawn_points": [{"position": [0, 0, 3]}],
        "stations": {
            "template": {
                "objects": [
                    {"id": "beaker", "asset": box, "interactable": True, "transform": {"position": [0, 1, 0]}},
                    {"id": "tripod", "asset": box, "transform": {"position": [1, 0.8, 0]}, "snap_points": [{"id": "top", "position": [0, 0.2, 0]}]},
                    {"id": "burner", "asset": box, "interactable": True, "transform": {"position": [2, 0.8, 0]},
                     "properties": [{"id": "lit", "kind": "switch", "initial": False}]},
                    {"id": "valve", "asset": box, "transform": {"position": [3, 0.8, 0]},
                     "properties": [{"id": "state", "kind": "choice", "initial": "closed", "choices": ["closed", "open"]}]},
                    {"id": "thermo", "asset": box, "transform": {"position": [4, 0.8, 0]},
                     "properties": [{"id": "reading", "kind": "number", "initial": 20, "min": 0, "max": 120, "interactive": False}]},
                ],
                "zones": [{"id": "bench", "shape": "box", "center": [0, 1, 0], "size": [2, 1, 4]}],
                "spawn_points": [{"position": [0, 0, 2], "yaw_degrees": 0}],
            },
            "grid": {"count": 4, "columns": 2, "origin": [-10, 0, -10], "spacing": [20, 10]},
            "group_size": 2,
            "assignment": "auto",
        },
        "rules": [{"object": "thermo", "property": "reading", "value": 80, "otherwise": 20, "after_seconds": 5, "when": {"all": [LIT, AT_SNAP]}}],
        "challenge": {
            "id": "bath",
            "title": "Prepare a water bath",
            "steps": [
                {"id": "place", "text": "Put the beaker on the tripod", "condition": {"all": [AT_SNAP]},
                 "mistakes": [{"id": "spill", "condition": {"tilted": {"object": "beaker", "past_degrees": 60}}, "explanation": "Spilled!"}]},
                {"id": "light", "text": "Light the burner", "condition": {"all": [LIT, {"not": {"in_zone": {"object": "bottle", "zone": "sink"}}}]}},
                {"id": "read", "text": "Read it", "checkpoint": {"question": "Temperature?", "number": {"answer_from": {"object": "thermo", "property": "reading"}, "tolerance": 2}}},
            ],
        },
    }
    data.update(extra)
    return json.loads(json.dumps(data))  # no entry shared between two places


def parse(data: dict[str, Any]) -> tuple[mf.Manifest | None, list[mf.Problem]]:
    return mf.parse(json.dumps(data).encode())


def problems(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    manifest, found = parse(data)
    assert manifest is None and found, "expected the manifest to be refused"
    return [(p.where, p.what, p.fix) for p in found]


def where(data: dict[str, Any]) -> list[str]:
    return [p[0] for p in problems(data)]


def edit(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(lab())
    change(data)
    return data


# ------------------------------------------------------------------ good manifests


def test_the_example_lab_parses() -> None:
    manifest, found = parse(lab())
    assert found == [] and manifest is not None
    assert manifest.challenge is not None and [s.id for s in manifest.challenge.steps] == ["place", "light", "read"]
    assert manifest.stations is not None and manifest.stations.grid is not None


def test_version_1_packages_still_parse() -> None:
    data = v1_manifest("old-lab", {"item": "assets/item.glb"}, zones=[{"id": "z", "shape": "sphere", "center": [0, 1, 0], "radius": 1}])
    manifest, found = parse(data)
    assert found == [] and manifest is not None and manifest.schema_version == 1
    reserved = {**data, "challenges": {"version": 1, "items": [{"anything": True}]}}
    assert parse(reserved)[1] == []


def test_version_2_without_a_challenge_or_stations_parses() -> None:
    data = v1_manifest("plain-lab", {"item": "assets/item.glb"})
    data["schema_version"] = 2
    data["objects"][0]["properties"] = [{"id": "lit", "kind": "switch", "initial": False}]
    assert parse(data)[1] == []


# ------------------------------------------------------------------ unknown names


def test_an_unknown_snap_point_is_refused_with_its_path_and_a_fix() -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"][0]["condition"]["all"][0]["at_snap"]["snap"] = "side"

    [(path, what, fix)] = problems(edit(change))
    assert path == "scene.json $.challenge.steps[0].condition.all[0].at_snap.snap"
    assert what == "object 'tripod' has no snap point 'side' (it has 'top')"
    assert "snap_points" in fix


@pytest.mark.parametrize(
    ("condition", "path", "what"),
    [
        ({"in_zone": {"object": "ghost", "zone": "bench"}}, "in_zone.object", "there is no object 'ghost'"),
        ({"in_zone": {"object": "beaker", "zone": "attic"}}, "in_zone.zone", "there is no zone 'attic'"),
        ({"participant_in_zone": {"zone": "attic"}}, "participant_in_zone.zone", "there is no zone 'attic'"),
        ({"near": {"object": "beaker", "other": "ghost", "distance_m": 0.2}}, "near.other", "there is no object 'ghost'"),
        ({"upright": {"object": "ghost"}}, "upright.object", "there is no object 'ghost'"),
        ({"tilted": {"object": "ghost", "past_degrees": 30}}, "tilted.object", "there is no object 'ghost'"),
        ({"held": {"object": "tripod"}}, "held.object", "'tripod' is not interactable, so nobody can ever hold it"),
        ({"at_snap": {"object": "beaker", "target": "ghost", "snap": "top"}}, "at_snap.target", "there is no object 'ghost'"),
        ({"property": {"object": "burner", "property": "flame", "equals": True}}, "property.property", "object 'burner' has no property 'flame' (it has 'lit')"),
        ({"property": {"object": "ghost", "property": "lit", "equals": True}}, "property.object", "there is no object 'ghost'"),
    ],
)
def test_every_name_a_condition_uses_must_exist(condition: dict, path: str, what: str) -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"][1]["condition"] = {"all": [LIT, {"not": {"stable_for": {"seconds": 2, "condition": condition}}}]}

    [(found, message, _)] = problems(edit(change))
    assert found == f"scene.json $.challenge.steps[1].condition.all[1].not.stable_for.condition.{path}"
    assert message == what


def test_names_in_rules_mistakes_then_and_answer_from_are_checked() -> None:
    def change(data: dict) -> None:
        data["rules"][0]["when"]["all"][1] = {"then": {"conditions": [LIT, {"in_zone": {"object": "beaker", "zone": "attic"}}], "within_seconds": 3}}
        data["challenge"]["steps"][0]["mistakes"][0]["condition"] = {"upright": {"object": "ghost"}}
        data["challenge"]["steps"][2]["checkpoint"]["number"]["answer_from"]["property"] = "temp"

    assert where(edit(change)) == [
        "scene.json $.rules[0].when.all[1].then.conditions[1].in_zone.zone",
        "scene.json $.challenge.steps[0].mistakes[0].condition.upright.object",
        "scene.json $.challenge.steps[2].checkpoint.number.answer_from.property",
    ]


def test_a_rule_must_set_a_declared_property() -> None:
    def change(data: dict) -> None:
        data["rules"][0]["property"] = "colour"

    [(path, what, _)] = problems(edit(change))
    assert (path, what) == ("scene.json $.rules[0].property", "object 'thermo' has no property 'colour' (it has 'reading')")


def test_a_rule_on_shared_equipment_may_not_depend_on_one_stations_things() -> None:
    def change(data: dict) -> None:
        data["objects"][0]["properties"] = [{"id": "warm", "kind": "switch", "initial": False, "interactive": False}]
        data["rules"].append({"object": "bottle", "property": "warm", "value": True, "when": LIT})

    [(path, what, fix)] = problems(edit(change))
    assert path == "scene.json $.rules[1].object"
    assert "every station" in what and "station template" in fix


# ------------------------------------------------------------------ values and types


@pytest.mark.parametrize(
    ("change", "path", "what"),
    [
        (lambda d: d["challenge"]["steps"][1]["condition"]["all"].__setitem__(0, {"property": {"object": "burner", "property": "lit", "equals": 1}}),
         "$.challenge.steps[1].condition.all[0].property.equals", "'lit' is a switch: use true or false"),
        (lambda d: d["challenge"]["steps"][1]["condition"]["all"].__setitem__(0, {"property": {"object": "valve", "property": "state", "equals": "ajar"}}),
         "$.challenge.steps[1].condition.all[0].property.equals", "'ajar' is not one of 'state''s choices (closed, open)"),
        (lambda d: d["challenge"]["steps"][1]["condition"]["all"].__setitem__(0, {"property": {"object": "thermo", "property": "reading", "equals": "hot"}}),
         "$.challenge.steps[1].condition.all[0].property.equals", "'reading' is a number property: use a number"),
        (lambda d: d["challenge"]["steps"][1]["condition"]["all"].__setitem__(0, {"property": {"object": "valve", "property": "state", "min": 1}}),
         "$.challenge.steps[1].condition.all[0].property", "'state' is a choice: only number properties have a range"),
        (lambda d: d["rules"][0].__setitem__("value", 200), "$.rules[0].value", "200.0 is outside 'reading''s range 0..120"),
        (lambda d: d["rules"][0].__setitem__("otherwise", True), "$.rules[0].otherwise", "'reading' is a number property: use a number"),
        (lambda d: d["challenge"]["steps"][2]["checkpoint"]["number"].__setitem__("answer_from", {"object": "burner", "property": "lit"}),
         "$.challenge.steps[2].checkpoint.number.answer_from", "'lit' is a switch, not a number"),
    ],
)
def test_values_must_fit_their_property(change: Any, path: str, what: str) -> None:
    [(found, message, _)] = problems(edit(change))
    assert (found, message) == (f"scene.json {path}", what)


DIAL = {"id": "dial", "asset": "box", "properties": [{"id": "level", "kind": "number", "initial": 0, "min": 0, "max": 10, "step": 0.5}]}


@pytest.mark.parametrize(("value", "refused"), [(2.5, False), (10, False), (2.25, True), (0.1, True)])
def test_a_value_students_can_never_set_is_refused(value: float, refused: bool) -> None:
    def change(data: dict) -> None:
        data["stations"]["template"]["objects"].append(DIAL)
        data["challenge"]["steps"][1]["condition"] = {"property": {"object": "dial", "property": "level", "equals": value}}

    data = edit(change)
    if not refused:
        assert parse(data)[1] == []
        return
    [(path, what, _)] = problems(data)
    assert path == "scene.json $.challenge.steps[1].condition.property.equals"
    assert what.startswith(f"{value:g} lies between 'level''s steps (0, 0.5, ... in steps of 0.5)")


def test_a_value_between_steps_is_fine_when_a_rule_sets_it() -> None:
    def change(data: dict) -> None:
        data["stations"]["template"]["objects"].append(DIAL)
        data["rules"].append({"object": "dial", "property": "level", "value": 2.25, "when": LIT})
        data["challenge"]["steps"][1]["condition"] = {"property": {"object": "dial", "property": "level", "equals": 2.25}}

    assert parse(edit(change))[1] == []


def test_a_range_outside_the_propertys_own_is_refused() -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"][1]["condition"] = {"property": {"object": "thermo", "property": "reading", "min": 150}}

    [(path, what, _)] = problems(edit(change))
    assert (path, what) == ("scene.json $.challenge.steps[1].condition.property", "the range never meets 'reading''s own range 0..120, so it can never hold")


@pytest.mark.parametrize(
    ("prop", "what"),
    [
        ({"id": "lit", "kind": "switch", "initial": 0}, "a switch has a true/false 'initial'"),
        ({"id": "lit", "kind": "number", "initial": 5, "min": 10, "max": 0}, "a number property needs 'min' < 'max'"),
        ({"id": "lit", "kind": "number", "initial": 50, "min": 0, "max": 10}, "'initial' must be a number between 'min' and 'max'"),
        ({"id": "lit", "kind": "choice", "initial": "c", "choices": ["a", "b"]}, "'initial' must be one of its 'choices'"),
        ({"id": "lit", "kind": "choice", "initial": "a", "choices": ["a", "a"]}, "a choice property needs distinct 'choices'"),
    ],
)
def test_a_property_declaration_must_be_consistent(prop: dict, what: str) -> None:
    def change(data: dict) -> None:
        data["stations"]["template"]["objects"][2]["properties"] = [prop]
        data["rules"] = []
        data["challenge"]["steps"] = data["challenge"]["steps"][:1]

    [(path, message, _)] = problems(edit(change))
    assert path == "scene.json $.stations.template.objects[2].properties[0]"
    assert what in message


# ------------------------------------------------------------------ the challenge's own logic


def test_cyclic_requires_are_refused_naming_the_loop() -> None:
    def change(data: dict) -> None:
        data["challenge"]["order"] = "free"
        steps = data["challenge"]["steps"]
        steps[0]["requires"] = ["read"]
        steps[1]["requires"] = ["place"]
        steps[2]["requires"] = ["light"]

    [(path, what, fix)] = problems(edit(change))
    assert path == "scene.json $.challenge.steps[0].requires"
    assert what == "the steps require each other in a loop: place -> read -> light -> place"
    assert "remove one of these 'requires'" in fix


def test_a_loop_through_the_sequence_order_is_refused_too() -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"][0]["requires"] = ["read"]  # and read follows light follows place

    [(_, what, _)] = problems(edit(change))
    assert what == "the steps require each other in a loop: place -> read -> light -> place"


def test_a_step_requiring_itself_or_a_missing_step_is_refused_once() -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"][1]["requires"] = ["light", "boil"]

    assert problems(edit(change)) == [
        ("scene.json $.challenge.steps[1].requires[0]", "step 'light' requires itself", "remove it from its own 'requires'"),
        ("scene.json $.challenge.steps[1].requires[1]", "there is no step 'boil'", "use one of: place, light, read"),
    ]


def test_a_mistake_identical_to_its_step_is_refused() -> None:
    def change(data: dict) -> None:
        step = data["challenge"]["steps"][0]
        step["mistakes"].append({"id": "same", "condition": {"all": [{"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "distance_m": 0.05}}]}, "explanation": "?"})

    [(path, what, _)] = problems(edit(change))
    assert path == "scene.json $.challenge.steps[0].mistakes[1].condition"
    assert "the same condition as step 'place'" in what


def test_duplicate_step_and_mistake_ids_are_refused() -> None:
    def change(data: dict) -> None:
        steps = data["challenge"]["steps"]
        steps[1]["id"] = "place"
        steps[1]["requires"] = []
        steps[0]["mistakes"].append({**steps[0]["mistakes"][0], "condition": {"upright": {"object": "beaker"}}})

    assert where(edit(change)) == ["scene.json $.challenge.steps[0].mistakes[1].id", "scene.json $.challenge.steps[1].id"]


@pytest.mark.parametrize(
    ("step", "path", "what"),
    [
        ({"id": "x", "text": "Both", "condition": LIT, "checkpoint": {"question": "?", "number": {"answer": 1}}}, "$.challenge.steps[3]", "either a 'condition' or a 'checkpoint'"),
        ({"id": "x", "text": "Q", "checkpoint": {"question": "?", "choice": {"choices": ["a", "b"], "answer": 2}}}, "$.challenge.steps[3].checkpoint.choice", "'answer' is a choice's index from 0"),
        ({"id": "x", "text": "Q", "checkpoint": {"question": "?", "number": {"answer": 1, "answer_from": {"object": "thermo", "property": "reading"}}}}, "$.challenge.steps[3].checkpoint.number", "either 'answer' or 'answer_from'"),
        ({"id": "x", "text": "Q", "condition": {"smells": {"object": "beaker"}}}, "$.challenge.steps[3].condition", "a condition is an object with exactly one key"),
        ({"id": "x", "text": "Q", "condition": {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "distance_m": -1}}}, "$.challenge.steps[3].condition.at_snap.distance_m", "greater than 0"),
        ({"id": "x", "text": "Q", "condition": {"property": {"object": "burner", "property": "lit", "equals": True, "min": 1}}}, "$.challenge.steps[3].condition.property", "either 'equals' or a range"),
        ({"id": "x", "text": "Q", "condition": {"any": [LIT] * 40}}, "$.challenge.steps[3].condition.any", "at most 16 items"),
    ],
)
def test_field_problems_carry_their_json_path(step: dict, path: str, what: str) -> None:
    def change(data: dict) -> None:
        data["challenge"]["steps"].append(step)

    found = problems(edit(change))
    assert any(p == f"scene.json {path}" and what in m for p, m, _ in found), found


def test_a_condition_tree_is_bounded() -> None:
    wide = {"all": [{"any": [LIT] * 10} for _ in range(4)]}  # 45 parts

    def change(data: dict) -> None:
        data["challenge"]["steps"][1]["condition"] = wide

    assert any("at most 32 parts" in what for _, what, _ in problems(edit(change)))


# ------------------------------------------------------------------ versions


@pytest.mark.parametrize("field", ["stations", "rules", "challenge"])
def test_version_2_fields_in_a_version_1_manifest_are_refused(field: str) -> None:
    data = {**lab(), "schema_version": 1}
    data = {key: value for key, value in data.items() if key in ("schema_version", "id", "title", "assets", "objects", "zones", "spawn_points", field)}
    [(path, what, _)] = problems(data)
    assert path == "scene.json $" and what == f'{field} need schema_version 2; set "schema_version": 2'


def test_object_properties_in_a_version_1_manifest_are_refused() -> None:
    data = v1_manifest("old-lab", {"item": "assets/item.glb"})
    data["objects"][0]["properties"] = [{"id": "lit", "kind": "switch", "initial": False}]
    [(_, what, _)] = problems(data)
    assert what == 'object properties need schema_version 2; set "schema_version": 2'


def test_the_reserved_block_is_refused_in_version_2() -> None:
    [(_, what, _)] = problems({**lab(), "challenges": {"version": 1}})
    assert "reserved block of schema_version 1" in what


# ------------------------------------------------------------------ stations


def test_template_ids_may_not_clash_with_shared_ones() -> None:
    def change(data: dict) -> None:
        data["stations"]["template"]["objects"][0]["id"] = "bottle"
        data["stations"]["template"]["zones"][0]["id"] = "sink"
        data["rules"] = []
        data["challenge"]["steps"] = data["challenge"]["steps"][2:]

    assert where(edit(change)) == ["scene.json $.stations.template.objects[0].id", "scene.json $.stations.template.zones[0].id"]


def test_stations_need_a_grid_or_placements() -> None:
    def change(data: dict) -> None:
        data["stations"]["placements"] = [{"position": [0, 0, 0]}]

    assert where(edit(change)) == ["scene.json $.stations"]


def test_a_grid_numbers_stations_along_x_then_z() -> None:
    manifest, _ = parse(lab())
    assert manifest is not None and manifest.stations is not None
    assert [(s.number, s.position) for s in places(manifest.stations)] == [
        (1, (-10, 0, -10)), (2, (10, 0, -10)), (3, (-10, 0, 0)), (4, (10, 0, 0)),
    ]


def test_expansion_copies_the_template_to_every_station() -> None:
    manifest, _ = parse(lab())
    assert manifest is not None
    expanded = expand(manifest)
    ids = [(obj.id, station) for obj, station in expanded.objects]
    assert ids[0] == ("bottle", None) and ("beaker@1", 1) in ids and ("thermo@4", 4) in ids and len(ids) == 1 + 5 * 4
    beaker = next(obj for obj, _ in expanded.objects if obj.id == "beaker@2")
    assert beaker.transform.position == [10, 1, -10]
    assert [zone.id for zone, _ in expanded.zones] == ["sink", "bench@1", "bench@2", "bench@3", "bench@4"]
    assert expanded.stations[1]["spawn_points"] == [{"position": [10, 0, -8], "yaw_degrees": 0}]


@pytest.mark.parametrize("yaw", [90, -270])
def test_a_station_turned_a_quarter_turn(yaw: int) -> None:
    data = lab()
    data["stations"]["grid"] = None
    data["stations"]["placements"] = [{"position": [5, 0, 5], "yaw_degrees": yaw, "title": "Window bench"}]
    manifest, found = parse(data)
    assert found == [] and manifest is not None
    expanded = expand(manifest)
    tripod = next(obj for obj, _ in expanded.objects if obj.id == "tripod@1")
    assert tripod.transform.position == pytest.approx([5, 0.8, 4])  # +90 about y takes +x to -z
    x, y, z, w = tripod.transform.rotation
    assert (x, z) == (0, 0) and y == pytest.approx(math.sin(math.radians(45))) and w == pytest.approx(math.cos(math.radians(45)))
    bench = next(zone for zone, _ in expanded.zones if zone.id == "bench@1")
    assert bench.size == [4, 1, 2] and bench.center == pytest.approx([5, 1, 5])
    station = expanded.stations[0]
    assert station["title"] == "Window bench" and station["yaw_degrees"] == 90
    assert station["spawn_points"][0]["position"] == pytest.approx([7, 0, 5])
    assert station["spawn_points"][0]["yaw_degrees"] == 90


def test_stations_beyond_the_rooms_limit_are_refused() -> None:
    data = lab()
    data["stations"]["grid"] = {"count": 12, "columns": 12, "origin": [1000, 0, 0], "spacing": [1000, 1]}
    manifest, found = parse(data)
    assert found == [] and manifest is not None  # each number is within its limit; their sum is not
    [(path, what, _)] = out_of_bounds(expand(manifest))
    assert path == "scene.json $.stations" and what.startswith("tripod@10 lands at [10001.0, 0.8, 0.0]")
