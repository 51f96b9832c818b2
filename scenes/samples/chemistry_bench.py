"""Sample package: a chemistry lab of eight benches, and the practical "Prepare a water bath".

Each station's bench (the template, ids such as ``beaker-water@3`` in the room)
holds a beaker of water, a beaker of copper sulfate solution, a tall flask, a
tripod with a gauze, a Bunsen burner, a thermometer and a heat-proof mat. The
room, the whiteboard and the teacher's desk at the front are shared.

Station frame (scenes.stations): the bench is centred on the station's origin,
its worktop at BENCH_TOP, and the students stand on its +z side facing -z
(towards the teacher's desk).

What the room derives (rules): the flask is ``filled`` once the beaker of water
has been tipped over it for a second; the thermometer's ``reading`` is 80 °C
once the burner has burned for 10 s under the beaker with the thermometer in the
water, and 20 °C otherwise.
"""

from __future__ import annotations

import json
import math
from typing import Any

from scenes.samples.parts import (
    BENCH_TOP,
    DESK_AT,
    FRONT_SPAWNS,
    GRID,
    beaker,
    bench,
    burner,
    classroom,
    flask,
    glb,
    on_bench,
    property_is,
    heat_mat,
    teacher_desk,
    thermometer,
    tripod,
)

#: the gauze's upper face above the worktop (the burner, 0.2 m with its flame, stands under it)
TRIPOD_HEIGHT = 0.22
WATER_BEAKER = (0.05, 0.13)  # radius, height
FLASK = (0.025, 0.2)
THERMOMETER_LENGTH = 0.26
#: the thermometer's reading once the bath is hot, and in the room
HOT_C, ROOM_C = 80, 20
#: a quarter turn about z: lays a thermometer (built along +y) along +x
_LYING = [0.0, 0.0, -math.sqrt(0.5), math.sqrt(0.5)]


def _at_snap(obj: str, target: str, snap: str, **extra: Any) -> dict[str, Any]:
    return {"at_snap": {"object": obj, "target": target, "snap": snap, **extra}}


def _template() -> dict[str, Any]:
    bottom = WATER_BEAKER[1] * 0.05  # the beaker's glass floor
    return {
        "objects": [
            {"id": "bench", "title": "Lab bench", "asset": "bench"},
            {
                "id": "beaker-water",
                "title": "Beaker (water)",
                "asset": "beaker-water",
                "transform": on_bench(-0.45, 0.05),
                "interactable": True,
                "snap_points": [
                    {"id": "flask", "position": [0.0, bottom, 0.0]},
                    {"id": "thermometer", "position": [0.036, bottom, 0.0]},
                ],
            },
            {"id": "beaker-cuso4", "title": "Beaker (copper sulfate)", "asset": "beaker-cuso4", "transform": on_bench(-0.68, -0.1), "interactable": True},
            {
                "id": "flask",
                "title": "Tall flask",
                "asset": "flask",
                "transform": on_bench(-0.22, -0.1),
                "interactable": True,
                "properties": [{"id": "filled", "title": "Filled with water", "kind": "switch", "initial": False, "interactive": False}],
            },
            {
                "id": "tripod",
                "title": "Tripod and gauze",
                "asset": "tripod",
                "transform": on_bench(0.3, -0.05),
                "snap_points": [{"id": "top", "position": [0.0, TRIPOD_HEIGHT, 0.0]}, {"id": "burner", "position": [0.0, 0.0, 0.0]}],
            },
            {
                "id": "burner",
                "title": "Bunsen burner",
                "asset": "burner",
                "transform": on_bench(0.62, 0.1),
                "interactable": True,
                "grab": {"lease_seconds": 30},
                "properties": [{"id": "lit", "title": "Flame", "kind": "switch", "initial": False}],
            },
            {
                "id": "thermometer",
                "title": "Thermometer",
                "asset": "thermometer",
                "transform": on_bench(0.02, 0.2, y=0.006, rotation=_LYING),  # lying on the bench
                "interactable": True,
                "properties": [
                    {"id": "reading", "title": "Reading", "kind": "number", "initial": ROOM_C, "min": 0, "max": 110, "unit": "°C", "interactive": False}
                ],
            },
            {"id": "mat", "title": "Heat-proof mat", "asset": "mat", "transform": on_bench(0.0, -0.12), "snap_points": [{"id": "centre", "position": [0.0, 0.008, 0.0]}]},
        ],
        "zones": [{"id": "bench", "shape": "box", "center": [0.0, BENCH_TOP + 0.15, 0.0], "size": [1.6, 0.3, 0.7]}],
        "spawn_points": [{"position": [-0.35, 0.0, 1.05]}, {"position": [0.35, 0.0, 1.05]}],
    }


def _rules() -> list[dict[str, Any]]:
    return [
        {
            # pouring: the beaker of water tipped over the flask for a second
            "object": "flask",
            "property": "filled",
            "value": True,
            "when": {"all": [{"tilted": {"object": "beaker-water", "past_degrees": 60}}, {"near": {"object": "beaker-water", "other": "flask", "distance_m": 0.3}}]},
            "after_seconds": 1.0,
        },
        {
            "object": "thermometer",
            "property": "reading",
            "value": HOT_C,
            "otherwise": ROOM_C,
            "when": {
                "all": [
                    property_is("burner", "lit", equals=True),
                    _at_snap("burner", "tripod", "burner"),
                    _at_snap("beaker-water", "tripod", "top"),
                    _at_snap("thermometer", "beaker-water", "thermometer"),
                ]
            },
            "after_seconds": 10.0,
        },
    ]


def _challenge() -> dict[str, Any]:
    return {
        "id": "water-bath",
        "title": "Prepare a water bath",
        "description": "Set up a water bath at your bench: fill the flask, heat it in water over a Bunsen burner, read the thermometer and shut down safely.",
        "time_bonus": {"target_seconds": 600, "points": 20},
        "hints": {"idle_seconds": 60, "cooldown_seconds": 30},
        "badges": [
            {"id": "water-bath", "name": "Water bath ready", "description": "Finished every step of the practical.", "criteria": {"finished": True}},
            {"id": "steady-hands", "name": "Steady hands", "description": "Finished the practical with no mistakes.", "criteria": {"finished": True, "max_mistakes": 0}},
            {"id": "quick-hands", "name": "Quick hands", "description": "Finished within 7 minutes of the start.", "criteria": {"finished": True, "under_seconds": 420}},
        ],
        "steps": [
            {
                "id": "fill-flask",
                "text": "Fill the tall flask with water: tip the beaker of water over it and pour.",
                "condition": property_is("flask", "filled", equals=True),
                "skill": "pouring",
                "hints": {
                    "nudge": "Water gets into the flask the way you would pour it: from the beaker that holds some.",
                    "specific": {"text": "Pick up the beaker of water, hold it over the tall flask and tip it (hold Pour).", "highlight": ["beaker-water", "flask"]},
                },
                "mistakes": [
                    {
                        "id": "empty-flask-on-flame",
                        "condition": {"all": [property_is("burner", "lit", equals=True), property_is("flask", "filled", equals=False), {"near": {"object": "flask", "other": "burner", "distance_m": 0.25}}]},
                        "explanation": "An empty flask on a flame can crack: fill it first.",
                    }
                ],
            },
            {
                "id": "burner-under-tripod",
                "text": "Stand the Bunsen burner under the tripod.",
                "condition": _at_snap("burner", "tripod", "burner"),
                "skill": "apparatus-setup",
                "expected_seconds": 45,
                "hints": {
                    "nudge": "Which piece of equipment heats the water? It goes under the tripod.",
                    "specific": {"text": "Carry the Bunsen burner to the space under the tripod.", "highlight": ["burner", "tripod"]},
                    "bottom_out": {"text": "Put the Bunsen burner under the tripod.", "demo": {"object": "burner", "target": "tripod", "snap": "burner"}},
                },
            },
            {
                "id": "beaker-on-tripod",
                "text": "Put the beaker of water on the tripod's gauze.",
                "condition": _at_snap("beaker-water", "tripod", "top"),
                "skill": "apparatus-setup",
                "expected_seconds": 45,
                "hints": {
                    "nudge": "The water bath sits on top of the tripod. Which beaker holds the water?",
                    "specific": {"text": "Take the clear beaker of water (not the blue one) to the gauze on the tripod.", "highlight": ["beaker-water", "tripod"]},
                    "bottom_out": {"text": "Put the beaker of water on the tripod's gauze.", "demo": {"object": "beaker-water", "target": "tripod", "snap": "top"}},
                },
                "mistakes": [
                    {
                        "id": "wrong-beaker",
                        "condition": _at_snap("beaker-cuso4", "tripod", "top"),
                        "explanation": "That is the copper sulfate solution: the bath is the beaker of water.",
                    }
                ],
            },
            {
                "id": "flask-in-bath",
                "text": "Stand the filled flask in the water bath.",
                "condition": _at_snap("flask", "beaker-water", "flask"),
                "skill": "apparatus-setup",
            },
            {
                "id": "thermometer-in",
                "text": "Put the thermometer in the water, beside the flask.",
                "condition": _at_snap("thermometer", "beaker-water", "thermometer"),
                "skill": "measurement",
            },
            {
                "id": "light-burner",
                "text": "Light the Bunsen burner.",
                "hints": {
                    "nudge": "Everything is in place: what makes the heat?",
                    "specific": {"text": "Point at the Bunsen burner and press E, or use its switch in the equipment panel.", "highlight": ["burner"]},
                },
                "condition": property_is("burner", "lit", equals=True),
                "skill": "heating-safety",
            },
            {
                "id": "heat-bath",
                "text": "Wait for the water bath to heat up: watch the thermometer.",
                "condition": property_is("thermometer", "reading", min=60),
                "skill": "heating-safety",
                "mistakes": [
                    {
                        "id": "moved-hot-bath",
                        "condition": {"all": [property_is("burner", "lit", equals=True), {"held": {"object": "beaker-water"}}]},
                        "explanation": "Hot glass over a flame: turn the burner off before you move the bath.",
                    }
                ],
            },
            {
                "id": "read-temperature",
                "text": "Read the thermometer.",
                "checkpoint": {
                    "question": "What temperature did the thermometer show?",
                    "number": {"answer_from": {"object": "thermometer", "property": "reading"}, "tolerance": 2, "unit": "°C"},
                    "wrong": "Look at the thermometer in the bath and read it again.",
                },
                "skill": "measurement",
            },
            {
                "id": "burner-off",
                "text": "Turn the Bunsen burner off.",
                "condition": property_is("burner", "lit", equals=False),
                "skill": "heating-safety",
            },
            {
                "id": "flask-on-mat",
                "text": "Lift the warm flask out of the bath onto the heat-proof mat.",
                "condition": _at_snap("flask", "mat", "centre"),
                "skill": "heating-safety",
            },
        ],
    }


def files() -> dict[str, bytes]:
    """The package's files: scene.json and one GLB per asset."""
    assets = {
        "room": classroom((210, 210, 200, 255), (236, 232, 222, 255)),
        "desk": teacher_desk(),
        "bench": bench(1.6, 0.7, BENCH_TOP, (235, 235, 235, 255), (150, 105, 60, 255)),
        "beaker-water": beaker(*WATER_BEAKER, (170, 210, 250, 255)),
        "beaker-cuso4": beaker(0.045, 0.12, (40, 110, 230, 255)),
        "flask": flask(*FLASK),
        "tripod": tripod(TRIPOD_HEIGHT, 0.085),
        "burner": burner(),
        "thermometer": thermometer(THERMOMETER_LENGTH),
        "mat": heat_mat(0.2),
    }
    manifest = {
        "schema_version": 2,
        "id": "chemistry-bench",
        "title": "Chemistry lab: water bath",
        "description": "Eight chemistry benches, each with beakers of water and copper sulfate, a tall flask, a tripod, a Bunsen burner and a thermometer; the practical is preparing a water bath.",
        "author": "Amaliy samples",
        "units": "m",
        "up_axis": "y",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [
            {"id": "room", "title": "Chemistry lab", "asset": "room"},
            {"id": "teacher-desk", "title": "Teacher's desk", "asset": "desk", "transform": {"position": DESK_AT}},
        ],
        "spawn_points": FRONT_SPAWNS,
        "stations": {"template": _template(), "grid": GRID, "group_size": 2, "assignment": "auto"},
        "rules": _rules(),
        "challenge": _challenge(),
        "targets": ["headset", "desktop"],
    }
    out = {"scene.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode()}
    out.update({f"assets/{name}.glb": glb(mesh) for name, mesh in assets.items()})
    return out
