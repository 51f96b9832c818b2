"""Every model of a package, checked and measured before any of them is loaded.

For each model, in order: its content must be the format its extension says
(sniff), a text model must be small enough to parse whole, and then its
format's own check (gltf_check, mesh_check) reads its declared structure and
the files it names. Last, what all the models would cost together is held
against the package-wide limits, so that refusing never costs more than
reading headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scenes import gltf_check, mesh_check
from scenes.measure import Measure
from scenes.report import Problem
from scenes.sniff import mismatch

if TYPE_CHECKING:  # ingest imports this module
    from scenes.ingest import IngestLimits


def check_model(root: Path, names: set[str], name: str, kind: str, limits: IngestLimits) -> tuple[Measure, list[Problem]]:
    """The model file ``name`` of format ``kind`` ('glb', 'gltf', 'obj', 'stl', 'ply'): its cost, or what is wrong."""
    measure = Measure()
    wrong = mismatch(root / name, kind)
    if wrong:
        return measure, [Problem(name, *wrong)]
    if kind in ("gltf", "obj"):
        too_large = mesh_check.text_too_large(name, (root / name).stat().st_size, limits)
        if too_large:
            return measure, [too_large]
    if kind in ("glb", "gltf"):
        problems = gltf_check.check(root, names, name, kind, limits, measure)
    elif kind == "obj":
        problems = mesh_check.check_obj(root, names, name, limits, measure)
    elif kind == "stl":
        problems = mesh_check.check_stl(root, name, limits, measure)
    else:
        problems = mesh_check.check_ply(root, names, name, limits, measure)
    return measure, problems


def package_problems(measured: list[tuple[str, Measure, int]], limits: IngestLimits) -> list[Problem]:
    """What the models (path, measure, objects using it) would cost together, against the package-wide limits."""
    problems = []
    placed = sum(measure.meshes * uses for _, measure, uses in measured)
    if placed > limits.max_meshes:
        problems.append(
            Problem(
                "package",
                f"the objects place {placed} meshes in the scene (each object once for every mesh its model has), over the limit of {limits.max_meshes}",
                "merge meshes in the models, or use fewer objects",
            )
        )
    for key, limit, what, fix in (
        ("materials", limits.max_materials, "the models declare {} materials in all", "merge materials, or remove unused ones from the models"),
        ("vertices", limits.max_vertices, "the models have {} vertices in all", "decimate the models, or split the lab into several packages"),
        ("triangles", limits.max_triangles, "the models have {} triangles in all", "decimate the models, or split the lab into several packages"),
        ("decoded_bytes", limits.max_decoded_bytes, "decoding the models' glTF data (buffers, views, accessors) takes {} bytes in all", "reduce the models' geometry"),
        ("image_pixels", limits.max_total_image_pixels, "the textures the models use have {} px in all", "use fewer or smaller textures (a texture atlas helps)"),
    ):
        total = sum(getattr(measure, key) for _, measure, _ in measured)
        if total > limit:
            name, most = max(((name, getattr(measure, key)) for name, measure, _ in measured), key=lambda pair: pair[1])
            problems.append(Problem("package", f"{what.format(total)}, over the limit of {limit} (counted before loading; {most} of them in {name})", fix))
    return problems
