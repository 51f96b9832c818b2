"""Sample package: an electric-circuits table with a battery, bulbs, a switch, a resistor and a multimeter."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from scenes.samples.parts import WOOD, box, coloured, cylinder, glb, upright

TABLE_TOP = 0.8


def _table() -> trimesh.Trimesh:
    parts = [
        box((8.0, 0.02, 8.0), (0, -0.01, 0), (200, 205, 215, 255)),  # floor
        box((1.8, 0.05, 1.0), (0, TABLE_TOP - 0.025, -0.9), (60, 90, 70, 255)),  # green work mat
    ]
    for x in (-0.85, 0.85):
        for z in (-1.35, -0.45):
            parts.append(box((0.05, TABLE_TOP - 0.05, 0.05), (x, (TABLE_TOP - 0.05) / 2, z), WOOD))
    parts.append(box((1.6, 0.5, 0.04), (0, TABLE_TOP + 0.45, -1.45), (230, 230, 225, 255)))  # circuit diagram board
    return trimesh.util.concatenate(parts)


def _battery() -> trimesh.Trimesh:
    body = box((0.16, 0.08, 0.07), (0, 0.04, 0), (30, 30, 35, 255))
    plus = box((0.02, 0.02, 0.02), (0.05, 0.09, 0), (200, 40, 40, 255))
    minus = box((0.02, 0.02, 0.02), (-0.05, 0.09, 0), (40, 40, 200, 255))
    return trimesh.util.concatenate([body, plus, minus])


def _bulb() -> trimesh.Trimesh:
    glass = coloured(trimesh.creation.icosphere(subdivisions=2, radius=0.03), (255, 240, 170, 255))
    glass.apply_translation((0, 0, 0.07))
    return upright([cylinder(0.035, 0.02, 0.0, (70, 70, 70, 255)), cylinder(0.012, 0.03, 0.02, (180, 180, 180, 255)), glass])


def _switch() -> trimesh.Trimesh:
    base = box((0.08, 0.015, 0.05), (0, 0.0075, 0), (120, 80, 50, 255))
    lever = box((0.06, 0.008, 0.01), (0.01, 0.03, 0), (190, 190, 200, 255))
    lever.apply_transform(trimesh.transformations.rotation_matrix(np.radians(15), (0, 0, 1), (-0.02, 0.03, 0)))
    return trimesh.util.concatenate([base, lever])


def _resistor() -> trimesh.Trimesh:
    bands = [cylinder(0.009, 0.006, 0.012 + 0.01 * i, c, 16) for i, c in enumerate([(150, 75, 0, 255), (0, 0, 0, 255), (255, 0, 0, 255)])]
    mesh = upright([cylinder(0.008, 0.05, 0.0, (225, 200, 150, 255), 16), *bands])
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 0, 1)))  # lie it down along x
    mesh.apply_translation((0.025, 0.009, 0))
    return mesh


def _multimeter() -> trimesh.Trimesh:
    body = box((0.09, 0.03, 0.16), (0, 0.015, 0), (230, 190, 30, 255))
    screen = box((0.06, 0.004, 0.04), (0, 0.032, -0.04), (140, 170, 140, 255))
    dial = cylinder(0.018, 0.006, 0.0, (40, 40, 40, 255))
    dial.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    dial.apply_translation((0, 0.03, 0.03))
    return trimesh.util.concatenate([body, screen, dial])


def files() -> dict[str, bytes]:
    assets = {"table": _table(), "battery": _battery(), "bulb": _bulb(), "switch": _switch(), "resistor": _resistor(), "multimeter": _multimeter()}

    def on_table(x: float, z: float) -> dict[str, list[float]]:
        return {"position": [x, TABLE_TOP, z]}

    manifest = {
        "schema_version": 1,
        "id": "circuits-table",
        "title": "Electric circuits table",
        "description": "Build a series circuit: battery, switch, two bulbs and a resistor; measure it with the multimeter.",
        "author": "Amaliy samples",
        "units": "m",
        "up_axis": "y",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [
            {"id": "table", "title": "Work table", "asset": "table"},
            {"id": "battery", "title": "Battery (4.5 V)", "asset": "battery", "transform": on_table(-0.5, -0.8), "interactable": True,
             "snap_points": [{"id": "plus", "position": [0.05, 0.1, 0]}, {"id": "minus", "position": [-0.05, 0.1, 0]}]},
            {"id": "bulb-1", "title": "Bulb 1", "asset": "bulb", "transform": on_table(-0.15, -0.95), "interactable": True},
            {"id": "bulb-2", "title": "Bulb 2", "asset": "bulb", "transform": on_table(0.05, -0.95), "interactable": True},
            {"id": "switch", "title": "Switch", "asset": "switch", "transform": on_table(0.3, -0.8), "interactable": True},
            {"id": "resistor", "title": "Resistor (100 Ω)", "asset": "resistor", "transform": on_table(0.5, -0.7), "interactable": True},
            {"id": "multimeter", "title": "Multimeter", "asset": "multimeter", "transform": on_table(0.6, -1.1), "interactable": True, "collider": "hull"},
        ],
        "zones": [
            {"id": "circuit-area", "shape": "box", "center": [0, TABLE_TOP + 0.1, -0.9], "size": [1.2, 0.2, 0.6]},
            {"id": "teacher-desk", "shape": "sphere", "center": [0, 1.0, 1.5], "radius": 1.0},
        ],
        "spawn_points": [{"position": [x, 0, 0.3]} for x in (-0.6, -0.2, 0.2, 0.6)],
        "targets": ["headset", "desktop"],
    }
    out = {"scene.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode()}
    out.update({f"assets/{name}.glb": glb(mesh) for name, mesh in assets.items()})
    return out
