"""Sample package: a chemistry bench with beakers, a flask and a Bunsen burner."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from scenes.samples.parts import WOOD, beaker, box, burner, glb

BENCH_TOP = 0.9


def _furniture() -> trimesh.Trimesh:
    parts = [
        box((8.0, 0.02, 8.0), (0, -0.01, 0), (210, 210, 200, 255)),  # floor
        box((2.4, 0.06, 0.9), (0, BENCH_TOP - 0.03, -1.0), (235, 235, 235, 255)),  # bench top
        box((2.3, BENCH_TOP - 0.06, 0.8), (0, (BENCH_TOP - 0.06) / 2, -1.0), WOOD),  # bench body
    ]
    for level in (0.4, 1.0, 1.6):  # shelves on the back wall
        parts.append(box((2.0, 0.03, 0.35), (0, level, -2.6), WOOD))
    parts.append(box((0.04, 1.8, 0.35), (-1.0, 0.9, -2.6), WOOD))
    parts.append(box((0.04, 1.8, 0.35), (1.0, 0.9, -2.6), WOOD))
    for i, x in enumerate(np.linspace(-0.8, 0.8, 6)):  # reagent bottles
        parts.append(box((0.08, 0.18, 0.08), (float(x), 1.1, -2.6), (90 + 25 * i, 60, 160 - 15 * i, 255)))
    return trimesh.util.concatenate(parts)


def files() -> dict[str, bytes]:
    """The package's files: scene.json and one GLB per asset."""
    assets = {
        "furniture": _furniture(),
        "beaker-large": beaker(0.045, 0.12, (40, 110, 230, 255)),
        "beaker-water": beaker(0.045, 0.12, (170, 210, 250, 255)),
        "beaker-small": beaker(0.035, 0.09, (210, 60, 160, 255)),
        "flask": beaker(0.03, 0.2, (250, 200, 60, 255)),
        "burner": burner(),
    }

    def on_bench(x: float, z: float) -> dict[str, list[float]]:
        return {"position": [x, BENCH_TOP, z]}

    manifest = {
        "schema_version": 1,
        "id": "chemistry-bench",
        "title": "Chemistry bench",
        "description": "A bench with beakers of copper sulfate, water and indicator, a tall flask and a Bunsen burner.",
        "author": "Amaliy samples",
        "units": "m",
        "up_axis": "y",
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in assets],
        "objects": [
            {"id": "furniture", "title": "Bench and shelves", "asset": "furniture"},
            {"id": "beaker-1", "title": "Beaker (copper sulfate)", "asset": "beaker-large", "transform": on_bench(-0.6, -0.9), "interactable": True, "collider": "hull"},
            {"id": "beaker-2", "title": "Beaker (water)", "asset": "beaker-water", "transform": on_bench(-0.35, -0.95), "interactable": True},
            {"id": "beaker-3", "title": "Beaker (indicator)", "asset": "beaker-small", "transform": on_bench(-0.1, -0.9), "interactable": True},
            {"id": "flask-1", "title": "Tall flask", "asset": "flask", "transform": on_bench(0.25, -1.05), "interactable": True},
            {"id": "burner", "title": "Bunsen burner", "asset": "burner", "transform": on_bench(0.6, -1.0), "interactable": True, "grab": {"lease_seconds": 30}},
        ],
        "zones": [
            {"id": "bench", "shape": "box", "center": [0, 1.0, -1.0], "size": [2.4, 0.3, 0.9]},
            {"id": "shelves", "shape": "box", "center": [0, 0.9, -2.6], "size": [2.0, 1.8, 0.4]},
        ],
        "spawn_points": [
            {"position": [-0.9, 0, 0.2]},
            {"position": [-0.3, 0, 0.3]},
            {"position": [0.3, 0, 0.3]},
            {"position": [0.9, 0, 0.2]},
            {"position": [0, 0, 1.0]},
        ],
        "targets": ["headset", "desktop"],
    }
    out = {"scene.json": json.dumps(manifest, indent=2).encode()}
    out.update({f"assets/{name}.glb": glb(mesh) for name, mesh in assets.items()})
    return out
