"""Lab equipment built from trimesh primitives, for the sample packages.

No outside assets: a school server with no internet builds its sample labs
from code. Meshes are y-up with their origin at the base centre, coloured with
vertex colours so each exports as a small self-contained GLB.
"""

from __future__ import annotations

import numpy as np
import trimesh

RGBA = tuple[int, int, int, int]
GLASS: RGBA = (200, 225, 240, 255)
WOOD: RGBA = (150, 105, 60, 255)


def coloured(mesh: trimesh.Trimesh, rgba: RGBA) -> trimesh.Trimesh:
    mesh.visual.vertex_colors = np.tile(np.array(rgba, dtype=np.uint8), (len(mesh.vertices), 1))
    return mesh


def box(extents: tuple[float, float, float], at: tuple[float, float, float], rgba: RGBA) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(at)
    return coloured(mesh, rgba)


def upright(parts: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    """Join parts built along +z (trimesh's habit) and stand them up along +y (WebXR's)."""
    mesh = trimesh.util.concatenate(parts)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    return mesh


def cylinder(radius: float, height: float, z: float, rgba: RGBA, sections: int = 24) -> trimesh.Trimesh:
    mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    mesh.apply_translation((0, 0, z + height / 2))
    return coloured(mesh, rgba)


def beaker(radius: float, height: float, liquid: RGBA) -> trimesh.Trimesh:
    """An open glass with a coloured liquid inside."""
    glass = trimesh.creation.annulus(r_min=radius * 0.9, r_max=radius, height=height, sections=24)
    glass.apply_translation((0, 0, height / 2))
    return upright(
        [
            coloured(glass, GLASS),
            cylinder(radius * 0.88, height * 0.55, height * 0.03, liquid),
            cylinder(radius, height * 0.06, 0.0, GLASS),
        ]
    )


def burner() -> trimesh.Trimesh:
    flame = coloured(trimesh.creation.cone(radius=0.014, height=0.05, sections=16), (80, 140, 255, 255))
    flame.apply_translation((0, 0, 0.16))
    return upright(
        [cylinder(0.06, 0.02, 0.0, (60, 60, 70, 255)), cylinder(0.015, 0.14, 0.02, (150, 150, 160, 255), 16), flame]
    )


def glb(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.Scene(mesh).export(file_type="glb")
