"""Sample package: an electric-circuits lab of eight benches, and the practical "Build a series circuit".

Each station's bench (the template, ids such as ``bulb@3`` in the room) holds a
circuit board with places for a battery, a switch, a resistor and a bulb
around one loop, plus a second bulb holder wired straight across the battery
(the trap), and the four parts beside it. The room, the whiteboard and the
teacher's desk at the front are shared.

Station frame (scenes.stations): the bench is centred on the station's origin,
its worktop at BENCH_TOP, and the students stand on its +z side facing -z.

What the room derives (a rule): the bulb is ``lit`` while the battery, the
switch, the resistor and the bulb are in their places on the board's loop and
the switch is ``closed``.
"""

from __future__ import annotations

import json
from typing import Any

from scenes.samples.parts import (
    BENCH_TOP,
    DESK_AT,
    FRONT_SPAWNS,
    GRID,
    battery,
    bench,
    bulb,
    circuit_board,
    classroom,
    glb,
    on_bench,
    property_is,
    resistor,
    switch,
    teacher_desk,
)

#: where the board's parts go, in the board's frame (x, z): one loop battery -> switch -> resistor
#: -> bulb -> battery, and "across", a bulb holder wired straight to the battery's terminals
SLOTS = {"battery": (-0.2, 0.0), "switch": (0.0, 0.12), "resistor": (0.2, 0.0), "bulb": (0.0, -0.12), "across": (-0.08, 0.0)}
_PAD_COLOURS = {
    "battery": (200, 60, 50, 255),
    "switch": (200, 170, 60, 255),
    "resistor": (225, 200, 150, 255),
    "bulb": (250, 240, 170, 255),
    "across": (250, 240, 170, 255),
}
#: printed wires: the loop's rectangle, and the two short leads from the battery to "across"
_WIRES = [(-0.2, 0.12, 0.2, 0.12), (-0.2, -0.12, 0.2, -0.12), (-0.2, -0.12, -0.2, 0.12), (0.2, -0.12, 0.2, 0.12), (-0.2, 0.03, -0.08, 0.03), (-0.2, -0.03, -0.08, -0.03)]
#: the board's upper face above its base
BOARD_TOP = 0.02
_PARTS = ("battery", "switch", "resistor", "bulb")


def _on_board(part: str, slot: str | None = None) -> dict[str, Any]:
    return {"at_snap": {"object": part, "target": "board", "snap": slot or part}}


def _template() -> dict[str, Any]:
    return {
        "objects": [
            {"id": "bench", "title": "Lab bench", "asset": "bench"},
            {
                "id": "board",
                "title": "Circuit board",
                "asset": "board",
                "transform": on_bench(0.0, -0.05),
                "snap_points": [{"id": slot, "position": [x, BOARD_TOP, z]} for slot, (x, z) in SLOTS.items()],
            },
            {"id": "battery", "title": "Battery (4.5 V)", "asset": "battery", "transform": on_bench(-0.55, 0.1), "interactable": True},
            {
                "id": "switch",
                "title": "Switch",
                "asset": "switch",
                "transform": on_bench(-0.6, -0.15),
                "interactable": True,
                "properties": [{"id": "closed", "title": "Closed", "kind": "switch", "initial": False}],
            },
            {"id": "resistor", "title": "Resistor (100 Ω)", "asset": "resistor", "transform": on_bench(0.55, 0.12), "interactable": True},
            {
                "id": "bulb",
                "title": "Bulb",
                "asset": "bulb",
                "transform": on_bench(0.6, -0.15),
                "interactable": True,
                "properties": [{"id": "lit", "title": "Lit", "kind": "switch", "initial": False, "interactive": False}],
            },
        ],
        "zones": [{"id": "bench", "shape": "box", "center": [0.0, BENCH_TOP + 0.15, 0.0], "size": [1.6, 0.3, 0.7]}],
        "spawn_points": [{"position": [-0.35, 0.0, 1.05]}, {"position": [0.35, 0.0, 1.05]}],
    }


def _challenge() -> dict[str, Any]:
    loop = [_on_board(part) for part in _PARTS]
    return {
        "id": "series-circuit",
        "title": "Build a series circuit",
        "description": "Build one loop of battery, switch, resistor and bulb on the circuit board, switch it on and off, and explain what the resistor is for.",
        "time_bonus": {"target_seconds": 480, "points": 20},
        "badges": [
            {"id": "series-circuit", "name": "Circuit closed", "description": "Finished every step of the practical.", "criteria": {"finished": True}},
            {"id": "steady-hands", "name": "Steady hands", "description": "Finished the practical with no mistakes.", "criteria": {"finished": True, "max_mistakes": 0}},
            {"id": "quick-hands", "name": "Quick hands", "description": "Finished within 6 minutes of the start.", "criteria": {"finished": True, "under_seconds": 360}},
        ],
        "steps": [
            {"id": "battery-in", "text": "Put the battery in its holder on the circuit board.", "condition": _on_board("battery"), "skill": "circuit-building"},
            {
                "id": "switch-in",
                "text": "Put the switch in its place on the board, and leave it open.",
                "condition": {"all": [_on_board("switch"), property_is("switch", "closed", equals=False)]},
                "skill": "circuit-building",
            },
            {
                "id": "resistor-in",
                "text": "Put the resistor on the board, after the switch.",
                "condition": _on_board("resistor"),
                "skill": "circuit-building",
                "mistakes": [
                    {
                        "id": "closed-while-building",
                        "condition": property_is("switch", "closed", equals=True),
                        "explanation": "Keep the switch open while you build: work on a circuit only while it is dead.",
                    }
                ],
            },
            {
                "id": "bulb-in",
                "text": "Put the bulb in its holder at the back of the loop, after the resistor.",
                "condition": _on_board("bulb"),
                "skill": "circuit-building",
                "mistakes": [
                    {
                        "id": "bulb-across-battery",
                        "condition": {"all": [_on_board("bulb", "across"), _on_board("battery")]},
                        "explanation": "Straight across the battery nothing limits the current and the bulb burns out: put it in the loop, after the resistor.",
                    }
                ],
            },
            {"id": "close-switch", "text": "Close the switch: the bulb lights up.", "condition": property_is("bulb", "lit", equals=True), "skill": "series-circuits"},
            {
                "id": "predict-open",
                "text": "Predict before you try it.",
                "checkpoint": {
                    "question": "What happens to the bulb if you open the switch?",
                    "choice": {"choices": ["It stays lit", "It goes out", "It gets brighter", "It flickers but stays on"], "answer": 1},
                    "wrong": "Think about what an open switch does to the loop the current flows around.",
                },
                "skill": "series-circuits",
            },
            {
                "id": "open-switch",
                "text": "Open the switch and watch the bulb.",
                "condition": {"all": [*loop, property_is("switch", "closed", equals=False)]},
                "skill": "series-circuits",
            },
            {
                "id": "why-resistor",
                "text": "Explain the circuit.",
                "checkpoint": {
                    "question": "Why is the resistor in the circuit?",
                    "choice": {
                        "choices": ["It limits the current so the bulb does not burn out", "It stores electricity for later", "It raises the battery's voltage", "It turns the bulb on and off"],
                        "answer": 0,
                    },
                    "wrong": "Remember what happened to a bulb wired straight across the battery.",
                },
                "skill": "resistance",
            },
        ],
    }


def _rules() -> list[dict[str, Any]]:
    return [{"object": "bulb", "property": "lit", "value": True, "otherwise": False, "when": {"all": [*(_on_board(part) for part in _PARTS), property_is("switch", "closed", equals=True)]}}]


def files() -> dict[str, bytes]:
    """The package's files: scene.json and one GLB per asset."""
    assets = {
        "room": classroom((200, 205, 215, 255), (232, 234, 238, 255)),
        "desk": teacher_desk(),
        "bench": bench(1.6, 0.7, BENCH_TOP, (60, 90, 70, 255), (120, 125, 135, 255)),
        "board": circuit_board(0.6, 0.4, [(x, z, _PAD_COLOURS[slot]) for slot, (x, z) in SLOTS.items()], _WIRES),
        "battery": battery(),
        "switch": switch(),
        "resistor": resistor(),
        "bulb": bulb(),
    }
    manifest = {
        "schema_version": 2,
        "id": "circuits-table",
        "title": "Electric circuits lab: series circuit",
        "description": "Eight benches, each with a circuit board, a battery, a switch, a resistor and a bulb; the practical is building a series circuit.",
        "author": "Amaliy samples",
        "units": "m",
        "up_axis": "y",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [
            {"id": "room", "title": "Physics lab", "asset": "room"},
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
