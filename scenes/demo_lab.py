"""The demo chemistry lab, built from code with trimesh primitives.

No outside assets: a school server with no internet can build it at start-up.
Static furniture (floor, bench, shelves) is merged into named static nodes;
each piece of equipment is its own node named by its object id, placed at its
initial transform, so the client can move it when the server says so.
"""

from __future__ import annotations

import numpy as np
import trimesh

from scenes.model import Scene, SceneObject, Transform

BENCH_TOP = 0.9


def _coloured(mesh: trimesh.Trimesh, rgba: tuple[int, int, int, int]) -> trimesh.Trimesh:
    mesh.visual.vertex_colors = np.tile(np.array(rgba, dtype=np.uint8), (len(mesh.vertices), 1))
    return mesh


def _box(extents: tuple[float, float, float], at: tuple[float, float, float], rgba: tuple[int, int, int, int]) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(at)
    return _coloured(mesh, rgba)


def _beaker(radius: float, height: float, rgba: tuple[int, int, int, int]) -> trimesh.Trimesh:
    """An open glass with a coloured liquid inside, origin at its base centre."""
    glass = trimesh.creation.annulus(r_min=radius * 0.9, r_max=radius, height=height, sections=24)
    glass.apply_translation((0, 0, height / 2))
    liquid = trimesh.creation.cylinder(radius=radius * 0.88, height=height * 0.55, sections=24)
    liquid.apply_translation((0, 0, height * 0.3))
    base = trimesh.creation.cylinder(radius=radius, height=height * 0.06, sections=24)
    base.apply_translation((0, 0, height * 0.03))
    parts = [_coloured(glass, (200, 225, 240, 255)), _coloured(liquid, rgba), _coloured(base, (200, 225, 240, 255))]
    mesh = trimesh.util.concatenate(parts)
    # trimesh builds along +z; the lab is y-up like WebXR
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    return mesh


def _burner() -> trimesh.Trimesh:
    foot = _coloured(trimesh.creation.cylinder(radius=0.06, height=0.02, sections=24), (60, 60, 70, 255))
    foot.apply_translation((0, 0, 0.01))
    tube = _coloured(trimesh.creation.cylinder(radius=0.015, height=0.14, sections=16), (150, 150, 160, 255))
    tube.apply_translation((0, 0, 0.09))
    flame = _coloured(trimesh.creation.cone(radius=0.014, height=0.05, sections=16), (80, 140, 255, 255))
    flame.apply_translation((0, 0, 0.16))
    mesh = trimesh.util.concatenate([foot, tube, flame])
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    return mesh


def _furniture() -> trimesh.Trimesh:
    wood = (150, 105, 60, 255)
    parts = [
        _box((8.0, 0.02, 8.0), (0, -0.01, 0), (210, 210, 200, 255)),  # floor
        _box((2.4, 0.06, 0.9), (0, BENCH_TOP - 0.03, -1.0), (235, 235, 235, 255)),  # bench top
        _box((2.3, BENCH_TOP - 0.06, 0.8), (0, (BENCH_TOP - 0.06) / 2, -1.0), wood),  # bench body
    ]
    for level in (0.4, 1.0, 1.6):  # shelves on the back wall
        parts.append(_box((2.0, 0.03, 0.35), (0, level, -2.6), wood))
    parts.append(_box((0.04, 1.8, 0.35), (-1.0, 0.9, -2.6), wood))
    parts.append(_box((0.04, 1.8, 0.35), (1.0, 0.9, -2.6), wood))
    for i, x in enumerate(np.linspace(-0.8, 0.8, 6)):  # reagent bottles on the shelves
        parts.append(_box((0.08, 0.18, 0.08), (float(x), 1.1, -2.6), (90 + 25 * i, 60, 160 - 15 * i, 255)))
    return trimesh.util.concatenate(parts)


def _at(x: float, z: float) -> Transform:
    return (x, BENCH_TOP, z, 0.0, 0.0, 0.0, 1.0)


def build_demo_lab() -> Scene:
    """Build the demo lab scene and its GLB."""
    equipment: list[tuple[SceneObject, trimesh.Trimesh]] = [
        (SceneObject("beaker-1", "Beaker (copper sulfate)", _at(-0.6, -0.9)), _beaker(0.045, 0.12, (40, 110, 230, 255))),
        (SceneObject("beaker-2", "Beaker (water)", _at(-0.35, -0.95)), _beaker(0.045, 0.12, (170, 210, 250, 255))),
        (SceneObject("beaker-3", "Beaker (indicator)", _at(-0.1, -0.9)), _beaker(0.035, 0.09, (210, 60, 160, 255))),
        (SceneObject("flask-1", "Tall flask", _at(0.25, -1.05)), _beaker(0.03, 0.2, (250, 200, 60, 255))),
        (SceneObject("burner", "Bunsen burner", _at(0.6, -1.0)), _burner()),
    ]
    graph = trimesh.Scene()
    graph.add_geometry(_furniture(), node_name="static-furniture", geom_name="furniture")
    for obj, mesh in equipment:
        matrix = trimesh.transformations.quaternion_matrix(
            (obj.transform[6], obj.transform[3], obj.transform[4], obj.transform[5])
        )
        matrix[:3, 3] = obj.transform[:3]
        graph.add_geometry(mesh, node_name=obj.id, geom_name=f"{obj.id}-mesh", transform=matrix)
    glb = graph.export(file_type="glb")
    return Scene(
        id="demo-lab",
        title="Demo chemistry lab",
        objects=tuple(obj for obj, _ in equipment),
        spawn_points=((-0.9, 0.0, 0.2), (-0.3, 0.0, 0.3), (0.3, 0.0, 0.3), (0.9, 0.0, 0.2), (0.0, 0.0, 1.0)),
        glb=glb,
    )
