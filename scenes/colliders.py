"""Collision shapes for scene objects: boxes, and convex hulls computed once per asset.

A hull is computed in the asset's frame, once, however many objects use the
asset: an object's scale is a linear map, and a linear map of a convex hull is
the hull of the mapped points, so scaling the asset's hull vertices gives the
object's hull, with the same faces (a positive scale keeps their winding).
For the same reason the hull of an asset's meshes, as the asset places them,
is the hull of each mesh's own hull vertices placed the same way: a mesh the
asset places many times is reduced once.

The hull's cost is bounded however many vertices a mesh has. With D a fixed
set of directions (an icosphere's vertices, as many as ``max_vertices``
allows), the support points s(d) = argmax over vertices v of v . d, for d in D,
are found in one pass; they are vertices of the true hull and span a polytope
P inside it. A vertex strictly inside P cannot be a hull vertex, so only the
others go to qhull. When too many remain (a finely meshed smooth surface has
nearly all its vertices on its hull) or the exact hull has more than
``max_vertices``, P is the collider: it lies inside the true hull and touches
it in every direction of D. Points that span no volume (a line, a single
triangle) have no hull; such an object gets its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import QhullError

#: points handled at once, to bound the (points x directions) products
_CHUNK = 65_536
#: qhull gets at most this many candidate points per allowed hull vertex
_CANDIDATES_PER_VERTEX = 64


@dataclass(frozen=True)
class Hull:
    vertices: np.ndarray
    faces: np.ndarray
    #: the true hull has more than the allowed vertices; this is its polytope P
    simplified: bool = False


def _directions(max_vertices: int) -> np.ndarray:
    """The vertices of the finest icosphere with at most ``max_vertices`` of them (10 * 4**k + 2; 12 at least)."""
    subdivisions = 0
    while 10 * 4 ** (subdivisions + 1) + 2 <= max_vertices:
        subdivisions += 1
    return trimesh.creation.icosphere(subdivisions=subdivisions).vertices


def _support(points: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Indices of the points furthest along each direction."""
    best = np.full(len(directions), -np.inf)
    index = np.zeros(len(directions), dtype=np.int64)
    for start in range(0, len(points), _CHUNK):
        dots = points[start : start + _CHUNK] @ directions.T
        arg = dots.argmax(axis=0)
        value = dots[arg, np.arange(len(directions))]
        better = value > best
        best[better], index[better] = value[better], arg[better] + start
    return np.unique(index)


def _outside(points: np.ndarray, polytope: trimesh.Trimesh) -> np.ndarray:
    """Which points are not strictly inside the convex ``polytope``."""
    normals = polytope.face_normals
    offsets = np.einsum("ij,ij->i", normals, polytope.triangles[:, 0]) + 1e-9 * polytope.scale
    mask = np.empty(len(points), dtype=bool)
    for start in range(0, len(points), _CHUNK):
        mask[start : start + _CHUNK] = (points[start : start + _CHUNK] @ normals.T > offsets).any(axis=1)
    return mask


def _hull(points: np.ndarray, max_vertices: int) -> Hull | None:
    """The convex hull of ``points``, or P when it has more than ``max_vertices``; None when they span no volume."""
    support = points[_support(points, _directions(max_vertices))]
    try:
        polytope = trimesh.convex.convex_hull(support)
    except QhullError:  # fewer than four points, or all on one line, even after qhull's joggle
        return None
    candidates = np.vstack([support, points[_outside(points, polytope)]])
    if len(candidates) <= _CANDIDATES_PER_VERTEX * max_vertices:
        exact = trimesh.convex.convex_hull(candidates)
        if len(exact.vertices) <= max_vertices:
            return Hull(exact.vertices, exact.faces)
    return Hull(polytope.vertices, polytope.faces, simplified=True)


def asset_hull(parts: list[tuple[trimesh.Trimesh, np.ndarray]], max_vertices: int) -> Hull | None:
    """The hull of an asset's meshes, each placed by its matrix, in the asset's frame: at most
    ``max_vertices`` vertices, or None when they span no volume."""
    reduced: dict[int, tuple[np.ndarray, bool]] = {}
    pieces = []
    for mesh, matrix in parts:
        if id(mesh) not in reduced:
            vertices = np.asarray(mesh.vertices)
            own = _hull(vertices, max_vertices)
            # a flat piece is still part of the asset's hull: its extreme points stand for it
            reduced[id(mesh)] = (own.vertices, own.simplified) if own else (vertices[_support(vertices, _directions(max_vertices))], False)
        pieces.append(trimesh.transform_points(reduced[id(mesh)][0], matrix))
    hull = _hull(np.vstack(pieces), max_vertices)
    if hull is None:
        return None
    simplified = hull.simplified or any(cut for _, cut in reduced.values())
    return Hull(hull.vertices, hull.faces, simplified)


def hull_collider(hull: Hull, scale: list[float]) -> dict[str, Any]:
    return {"type": "hull", "vertices": (hull.vertices * scale).round(6).tolist(), "faces": hull.faces.tolist()}


def box_collider(low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    return {"type": "box", "center": ((low + high) / 2).round(6).tolist(), "extents": (high - low).round(6).tolist()}
