"""Turn an uploaded scene package into what the server and the clients need.

    unpack safely -> validate scene.json -> load each asset with trimesh ->
    check (finite, degenerate faces, scale, budgets per target) -> safe repairs ->
    bounds, colliders, zones -> one optimized GLB whose nodes are named by object id

Every problem is collected and reported together (PackageRejected); nothing is
written anywhere but a private temporary folder, which is always removed.
"""

from __future__ import annotations

import json
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from scenes import manifest as mf
from scenes.report import PackageRejected, Problem
from scenes.safe_zip import ZipLimits, unpack

MANIFEST_NAME = "scene.json"


@dataclass(frozen=True)
class Budget:
    """What one kind of device can render smoothly."""

    triangles: int
    materials: int
    texture_px: int
    file_bytes: int


#: Headset defaults follow Mozilla Hubs' Spoke performance budget; desktop is looser.
DEFAULT_BUDGETS = {
    "headset": Budget(triangles=50_000, materials=25, texture_px=2048, file_bytes=16 * 1024 * 1024),
    "desktop": Budget(triangles=500_000, materials=100, texture_px=4096, file_bytes=64 * 1024 * 1024),
}


@dataclass(frozen=True)
class IngestLimits:
    zip: ZipLimits = field(default_factory=ZipLimits)
    budgets: dict[str, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    #: an object larger or smaller than this (metres) is almost surely in the wrong units
    max_extent_m: float = 500.0
    min_extent_m: float = 0.0005


@dataclass(frozen=True)
class Processed:
    """A validated, converted package."""

    manifest: mf.Manifest
    glb: bytes
    #: what the room engine needs, JSON-serialisable (objects, zones, spawn points)
    server: dict[str, Any]
    stats: dict[str, int]
    #: repairs made, reported to the designer but not refusals
    notes: list[Problem]


def ingest_zip(zip_path: Path, limits: IngestLimits | None = None) -> Processed:
    """Ingest a package zip; raises PackageRejected listing every problem."""
    limits = limits or IngestLimits()
    with tempfile.TemporaryDirectory(prefix="amaliy-ingest-") as tmp:
        root = Path(tmp)
        names = set(unpack(zip_path, root, limits.zip))
        return _ingest_tree(root, names, limits)


def _ingest_tree(root: Path, names: set[str], limits: IngestLimits) -> Processed:
    if MANIFEST_NAME not in names:
        raise PackageRejected([Problem("package", f"no {MANIFEST_NAME} at the top of the zip", "add scene.json next to the asset folders (see 'amaliy scenes new')")])
    manifest, problems = mf.parse((root / MANIFEST_NAME).read_bytes())
    if manifest is None:
        raise PackageRejected(problems)
    notes: list[Problem] = []
    assets: dict[str, list[tuple[trimesh.Trimesh, np.ndarray]]] = {}
    for asset in manifest.assets:
        if asset.path not in names:
            problems.append(Problem(asset.path, f"asset {asset.id!r} is missing from the package", "add the file at this path or fix 'path'"))
            continue
        loaded = _load_asset(root / asset.path, asset, manifest, problems, notes)
        if loaded is not None:
            assets[asset.id] = loaded
    problems += _check_textures(root, names)
    if problems:
        raise PackageRejected(problems)

    graph = trimesh.Scene()
    server_objects = []
    triangles = 0
    for obj in manifest.objects:
        parts = assets[obj.asset]
        scale = np.diag([*obj.transform.scale, 1.0])
        local = [(mesh, scale @ matrix) for mesh, matrix in parts]
        low, high = _bounds(local)
        extent = float(np.max(high - low))
        if extent > limits.max_extent_m or extent < limits.min_extent_m:
            problems.append(
                Problem(
                    f"object {obj.id}",
                    f"is {extent:.4g} m across, which is implausible for lab equipment",
                    f"check 'units' (now {manifest.units!r}) and the object's scale",
                )
            )
            continue
        triangles += sum(len(mesh.faces) for mesh, _ in parts)
        _add_node(graph, obj, parts)
        server_objects.append(
            {
                "id": obj.id,
                "title": obj.title or obj.id,
                "interactable": obj.interactable,
                "transform": [*obj.transform.position, *obj.transform.rotation],
                "scale": obj.transform.scale,
                "bounds": {"min": low.round(6).tolist(), "max": high.round(6).tolist()},
                "collider": _collider(obj.collider, local, low, high),
                "grab": obj.grab.model_dump() if obj.grab else None,
                "snap_points": [sp.model_dump() for sp in obj.snap_points],
            }
        )
    if problems:
        raise PackageRejected(problems)
    glb = _matte_by_default(graph.export(file_type="glb"))
    materials, embedded_px = _material_stats(assets)
    texture_px = max(embedded_px, _largest_texture(root, names))
    stats = {"triangles": triangles, "materials": materials, "texture_px": texture_px, "glb_bytes": len(glb), "objects": len(server_objects)}
    problems += _check_budgets(manifest, stats, limits)
    if problems:
        raise PackageRejected(problems)
    server = {
        "id": manifest.id,
        "title": manifest.title,
        "objects": server_objects,
        "zones": [zone.model_dump(exclude_none=True) for zone in manifest.zones],
        "spawn_points": [sp.model_dump() for sp in manifest.spawn_points],
        "environment": manifest.environment.model_dump(),
    }
    return Processed(manifest, glb, server, stats, notes)


def _load_asset(
    path: Path, asset: mf.Asset, manifest: mf.Manifest, problems: list[Problem], notes: list[Problem]
) -> list[tuple[trimesh.Trimesh, np.ndarray]] | None:
    """The asset's meshes in metres, y up, each with its transform inside the asset."""
    kind = mf.MESH_FORMATS["." + asset.path.rsplit(".", 1)[-1].lower()]
    try:
        scene = trimesh.load(str(path), file_type=kind, force="scene", process=False)
    except Exception as exc:  # trimesh raises many types for broken files
        problems.append(Problem(asset.path, f"cannot be read as {kind.upper()}: {exc or type(exc).__name__}", f"re-export the model as a valid {kind.upper()}"))
        return None
    convert = np.eye(4) * mf.UNIT_METRES[manifest.units]
    convert[3, 3] = 1.0
    if manifest.up_axis == "z":
        convert = trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)) @ convert
    parts = []
    for node in scene.graph.nodes_geometry:
        matrix, geom_name = scene.graph[node]
        mesh = scene.geometry.get(geom_name)
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        where = f"{asset.path} mesh {geom_name!r}"
        if not np.isfinite(mesh.vertices).all():
            problems.append(Problem(where, "has non-finite (NaN or infinite) vertex coordinates", "clean up the mesh in your modelling tool and re-export"))
            continue
        if len(mesh.faces) and (mesh.faces.max() >= len(mesh.vertices) or mesh.faces.min() < 0):
            problems.append(Problem(where, "has faces that point at missing vertices", "re-export the mesh"))
            continue
        before_faces, before_vertices = len(mesh.faces), len(mesh.vertices)
        degenerate = ~mesh.nondegenerate_faces()
        if degenerate.any():
            mesh.update_faces(~degenerate)
        mesh.merge_vertices()
        mesh.remove_unreferenced_vertices()
        if len(mesh.faces) == 0:
            problems.append(Problem(where, "has only degenerate (zero-area) faces", "re-export the mesh with real geometry"))
            continue
        _orient(mesh)
        if len(mesh.faces) != before_faces or len(mesh.vertices) != before_vertices:
            notes.append(
                Problem(where, f"repaired: {before_faces - len(mesh.faces)} degenerate faces removed, {before_vertices - len(mesh.vertices)} duplicate vertices merged", "none needed")
            )
        parts.append((mesh, convert @ matrix))
    if not parts and not any(p.where.startswith(asset.path) for p in problems):
        problems.append(Problem(asset.path, "contains no triangle mesh", "export the model with its geometry"))
    return parts or None


_GLB_HEADER = struct.Struct("<4sII")
_CHUNK_HEADER = struct.Struct("<I4s")


def _matte_by_default(glb: bytes) -> bytes:
    """Give primitives without a material a plain matte one.

    glTF says a primitive with no material is fully metallic, which renders
    nearly black without an environment map; vertex-coloured meshes (common from
    STL/PLY and simple exporters) come out of trimesh that way.
    """
    magic, version, _ = _GLB_HEADER.unpack_from(glb)
    length, kind = _CHUNK_HEADER.unpack_from(glb, _GLB_HEADER.size)
    start = _GLB_HEADER.size + _CHUNK_HEADER.size
    gltf = json.loads(glb[start : start + length])
    bare = [prim for mesh in gltf.get("meshes", []) for prim in mesh["primitives"] if "material" not in prim]
    if not bare:
        return glb
    materials = gltf.setdefault("materials", [])
    materials.append({"name": "matte", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.8}})
    for prim in bare:
        prim["material"] = len(materials) - 1
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    rest = glb[start + length :]
    body = _CHUNK_HEADER.pack(len(text), kind) + text + rest
    return _GLB_HEADER.pack(magic, version, _GLB_HEADER.size + len(body)) + body


def _orient(mesh: trimesh.Trimesh) -> None:
    """Make face winding consistent, and turn a closed mesh inside out if it is inverted.

    trimesh's fix_normals does the same but computes full mass properties to find
    the sign of the volume; the signed volume alone is a fraction of the cost.
    """
    trimesh.repair.fix_winding(mesh)
    if mesh.is_watertight:
        a, b, c = (mesh.vertices[mesh.faces[:, i]] for i in range(3))
        if np.einsum("ij,ij->", a, np.cross(b, c)) < 0:
            mesh.invert()


def _bounds(parts: list[tuple[trimesh.Trimesh, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.vstack([trimesh.transform_points(trimesh.bounds.corners(mesh.bounds), matrix) for mesh, matrix in parts])
    return boxes.min(axis=0), boxes.max(axis=0)


def _collider(kind: str, parts: list[tuple[trimesh.Trimesh, np.ndarray]], low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    if kind == "hull":
        points = np.vstack([trimesh.transform_points(mesh.vertices, matrix) for mesh, matrix in parts])
        hull = trimesh.convex.convex_hull(points)
        return {"type": "hull", "vertices": hull.vertices.round(6).tolist(), "faces": hull.faces.tolist()}
    return {"type": "box", "center": ((low + high) / 2).round(6).tolist(), "extents": (high - low).round(6).tolist()}


def _add_node(graph: trimesh.Scene, obj: mf.SceneObject, parts: list[tuple[trimesh.Trimesh, np.ndarray]]) -> None:
    """One node per object, named by its id, carrying position, rotation and scale;
    the asset's meshes hang below it and are shared between objects using the same asset."""
    x, y, z, w = obj.transform.rotation
    matrix = trimesh.transformations.quaternion_matrix((w, x, y, z))
    matrix[:3, 3] = obj.transform.position
    matrix = matrix @ np.diag([*obj.transform.scale, 1.0])
    graph.graph.update(frame_from=graph.graph.base_frame, frame_to=obj.id, matrix=matrix)
    for k, (mesh, local) in enumerate(parts):
        geom = f"{obj.asset}/{k}"
        if geom not in graph.geometry:
            graph.geometry[geom] = mesh
        graph.graph.update(frame_from=obj.id, frame_to=f"{obj.id}/{k}", matrix=local, geometry=geom)


_TEXTURE_SLOTS = ("image", "baseColorTexture", "metallicRoughnessTexture", "normalTexture", "occlusionTexture", "emissiveTexture")


def _material_stats(assets: dict[str, list[tuple[trimesh.Trimesh, np.ndarray]]]) -> tuple[int, int]:
    """How many materials the scene has, and its largest texture side (textures inside models too)."""
    materials: set[object] = set()
    largest = 0
    for parts in assets.values():
        for mesh, _ in parts:
            material = getattr(mesh.visual, "material", None)
            materials.add(id(material) if material is not None else "vertex-colours")
            for slot in _TEXTURE_SLOTS:
                image = getattr(material, slot, None)
                if image is not None and hasattr(image, "size"):
                    largest = max(largest, *image.size)
    return len(materials), largest


def _texture_files(names: set[str]) -> list[str]:
    return sorted(n for n in names if "." + n.rsplit(".", 1)[-1].lower() in mf.TEXTURE_FORMATS)


def _check_textures(root: Path, names: set[str]) -> list[Problem]:
    problems = []
    for name in _texture_files(names):
        try:
            with Image.open(root / name) as image:
                image.verify()
        except Exception as exc:  # PIL's message names our temporary path: report only its kind
            problems.append(Problem(name, f"is not a readable PNG/JPEG image ({type(exc).__name__})", "re-save the texture as PNG or JPEG"))
    return problems


def _largest_texture(root: Path, names: set[str]) -> int:
    largest = 0
    for name in _texture_files(names):
        with Image.open(root / name) as image:
            largest = max(largest, *image.size)
    return largest


def _check_budgets(manifest: mf.Manifest, stats: dict[str, int], limits: IngestLimits) -> list[Problem]:
    problems = []
    for target in manifest.targets:
        budget = limits.budgets[target]
        for key, limit, fix in (
            ("triangles", budget.triangles, "decimate meshes or drop hidden detail"),
            ("materials", budget.materials, "merge materials or use a texture atlas"),
            ("texture_px", budget.texture_px, f"resize textures to at most {budget.texture_px} px a side"),
            ("glb_bytes", budget.file_bytes, "reduce geometry and texture sizes"),
        ):
            if stats[key] > limit:
                problems.append(Problem(f"target {target}", f"{key.replace('_', ' ')} {stats[key]} is over the budget of {limit}", fix + f", or drop {target!r} from 'targets'"))
    return problems

