"""Turn an uploaded scene package into what the server and the clients need.

    unpack safely -> validate scene.json -> check and measure every model and
    texture from its headers (asset_check) -> load each asset with trimesh ->
    check (finite, degenerate faces, scale, budgets per target) -> safe repairs ->
    bounds, colliders, zones, size notes (scale_check) -> one optimized GLB whose
    nodes are named by object id, bare meshes given their asset's 'color' or matte
    -> its phone variant (phone_variant: decimated, small textures, Draco)

Every problem is collected and reported together (PackageRejected), in the
designer's words (plain_words): nothing else is raised, whatever the input.
Nothing is written anywhere but a private temporary folder, which is always
removed. Memory is bounded by IngestLimits before trimesh allocates: what a
file declares is measured first, and only a package inside every limit loads.
"""

from __future__ import annotations

import logging
import posixpath
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import DracoPy
import numpy as np
import trimesh
from PIL import Image

from scenes import glb as glb_container
from scenes import manifest as mf
from scenes import phone_variant, scale_check
from scenes.asset_check import check_model, package_problems
from scenes.colliders import Hull, asset_hull, box_collider, hull_collider
from scenes.images import pixel_limit, size_problem
from scenes.measure import Measure
from scenes.plain_words import plain_words, scrub_problem
from scenes.references import PackageResolver
from scenes.report import PackageRejected, Problem, one_line
from scenes.stations import expand, out_of_bounds
from scenes.safe_zip import ZipLimits, unpack

MANIFEST_NAME = "scene.json"
log = logging.getLogger(__name__)


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
    manifest: mf.ManifestLimits = field(default_factory=mf.ManifestLimits)
    budgets: dict[str, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    #: what the phone variant of every lab is made to fit (scenes.phone_variant)
    phone: phone_variant.PhoneBudget = field(default_factory=phone_variant.PhoneBudget)
    #: an object larger or smaller than this (metres) is almost surely in the wrong units
    max_extent_m: float = 500.0
    min_extent_m: float = 0.0005
    # Sizes that are possible but unlikely get a note, not a refusal (scenes.scale_check says why).
    #: an object taller than this as placed (metres; a generous classroom ceiling) gets a note
    note_taller_than_m: float = 3.5
    #: an object whose longest side is under this (metres) gets a note: too small to see or grab
    note_smaller_than_m: float = 0.005
    #: a lab whose objects together span less than this (metres) gets a note: a likely unit slip
    note_lab_smaller_than_m: float = 0.5
    # The limits below bound ingest's own memory (its worker has 1 GB): each is checked
    # from what the files declare, before trimesh or PIL allocates.
    #: vertices of all models together, counted from their headers before loading
    max_vertices: int = 1_500_000
    #: triangles of all models together, counted from their headers before loading (about 400 bytes each)
    max_triangles: int = 1_500_000
    #: meshes placed in the scene: each object once for every mesh (glTF primitive) its model places (about 12 KB each)
    max_meshes: int = 10_000
    #: materials declared by all models together (glTF materials, MTL 'newmtl')
    max_materials: int = 1_000
    #: glTF data trimesh holds while decoding (buffers, a copy of each bufferView, accessors), all models together
    max_decoded_bytes: int = 256 * 1024 * 1024
    #: one text file trimesh parses whole (OBJ, MTL, ASCII STL or PLY, glTF JSON), held in several copies at once
    max_text_bytes: int = 32 * 1024 * 1024
    #: values in one glTF's JSON, bounded by counting its commas and brackets before parsing it
    max_json_values: int = 1_000_000
    #: pixels of one image, read from its header; nothing larger is decoded (about 10 bytes a pixel to decode and re-encode)
    max_image_pixels: int = 4096 * 4096
    #: pixels of all the images the models use, added up (each is decoded to write the GLB)
    max_total_image_pixels: int = 64 * 1024 * 1024
    #: triangles of one mesh whose inconsistent winding ingest repairs (about 1 KB each while repairing)
    max_winding_repair_triangles: int = 250_000
    #: vertices of one hull collider; a larger hull is simplified to its extreme points
    max_hull_vertices: int = 256
    #: vertices of all hull colliders together
    max_collider_vertices: int = 65_536


@dataclass(frozen=True)
class Processed:
    """A validated, converted package."""

    manifest: mf.Manifest
    glb: bytes
    #: the GLB for phones on weak links (scenes.phone_variant); None if it could not be made (a note says why)
    glb_phone: bytes | None
    #: what the room engine needs, JSON-serialisable (objects, zones, spawn points)
    server: dict[str, Any]
    stats: dict[str, int]
    #: repairs made, reported to the designer but not refusals
    notes: list[Problem]


def ingest_zip(zip_path: Path, limits: IngestLimits | None = None) -> Processed:
    """Ingest a package zip; raises PackageRejected listing every problem, and nothing else
    but MemoryError (past a memory limit the caller set)."""
    limits = limits or IngestLimits()
    with tempfile.TemporaryDirectory(prefix="amaliy-ingest-") as tmp:
        root = Path(tmp)
        try:
            with pixel_limit(limits.max_image_pixels):
                names = set(unpack(zip_path, root, limits.zip))
                return _ingest_tree(root, names, limits)
        except PackageRejected as refused:
            raise PackageRejected([scrub_problem(problem, root) for problem in refused.problems]) from None
        except MemoryError:  # the caller set the memory limit and says which (server.ingest_worker)
            raise
        except Exception as exc:  # a stray error would answer the uploader with a 500
            log.error("ingest of %s failed unexpectedly: %s", zip_path.name, one_line(exc))  # one line: this may be a designer's terminal
            fix = "check the models; if they open in your modelling tool, send the package to the server administrator"
            raise PackageRejected([Problem("package", f"could not be processed: {plain_words(exc, root)}", fix)]) from None


def _ingest_tree(root: Path, names: set[str], limits: IngestLimits) -> Processed:
    if MANIFEST_NAME not in names:
        raise PackageRejected([Problem("package", f"no {MANIFEST_NAME} at the top of the zip", "add scene.json next to the asset folders (see 'amaliy scenes new')")])
    size = (root / MANIFEST_NAME).stat().st_size
    if size > limits.manifest.max_bytes:
        raise PackageRejected([mf.too_big(size, limits.manifest)])
    manifest, problems = mf.parse((root / MANIFEST_NAME).read_bytes(), limits.manifest)
    if manifest is None:
        raise PackageRejected(problems)
    notes: list[Problem] = []
    measures: dict[str, Measure] = {}
    for asset in manifest.assets:
        if asset.path not in names:
            problems.append(Problem(asset.path, f"asset {asset.id!r} is missing from the package", "add the file at this path or fix 'path'"))
            continue
        measures[asset.id], found = check_model(root, names, asset.path, _kind(asset.path), limits)
        problems += found
    expanded = expand(manifest)
    problems += out_of_bounds(expanded)
    placed = [obj for obj, _ in expanded.objects]
    uses = Counter(obj.asset for obj in placed)
    texture_problems, largest_texture = _check_textures(root, names, limits)
    problems += texture_problems + package_problems([(a.path, measures[a.id], uses[a.id]) for a in manifest.assets if a.id in measures], limits)
    if problems:
        raise PackageRejected(problems)
    assets: dict[str, list[tuple[trimesh.Trimesh, np.ndarray]]] = {}
    for asset in manifest.assets:
        loaded = _load_asset(root, names, asset, manifest, limits, bool(measures[asset.id].textures), problems, notes)
        if loaded is not None:
            assets[asset.id] = loaded
    if problems:
        raise PackageRejected(problems)
    hulls = _hulls(manifest, placed, assets, limits, problems, notes)
    if problems:
        raise PackageRejected(problems)

    graph = trimesh.Scene()
    server_objects = []
    sizes: list[scale_check.Placed] = []
    triangles = 0
    for obj, station in expanded.objects:
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
        sizes.append(scale_check.placed(obj.id, low, high, obj.transform.rotation, obj.transform.position))
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
                "collider": hull_collider(hulls[obj.asset], obj.transform.scale) if obj.collider == "hull" and obj.asset in hulls else box_collider(low, high),
                "grab": obj.grab.model_dump() if obj.grab else None,
                "snap_points": [sp.model_dump() for sp in obj.snap_points],
                "station": station,
                "properties": [prop.model_dump(exclude_none=True) for prop in obj.properties],
            }
        )
    if problems:
        raise PackageRejected(problems)
    notes += scale_check.size_notes(
        sizes,
        manifest.units,
        taller_than_m=limits.note_taller_than_m,
        smaller_than_m=limits.note_smaller_than_m,
        lab_smaller_than_m=limits.note_lab_smaller_than_m,
    )
    glb = _matte_by_default(graph.export(file_type="glb"))
    materials, embedded_px = _material_stats(assets)
    texture_px = max(embedded_px, largest_texture)
    stats = {"triangles": triangles, "materials": materials, "texture_px": texture_px, "glb_bytes": len(glb), "objects": len(server_objects)}
    problems += _check_budgets(manifest, stats, limits)
    if problems:
        raise PackageRejected(problems)
    glb_phone = _phone_variant(glb, limits.phone, stats, notes)
    server = {
        "id": manifest.id,
        "title": manifest.title,
        "objects": server_objects,
        "zones": [{**zone.model_dump(exclude_none=True), **({"station": station} if station else {})} for zone, station in expanded.zones],
        "spawn_points": [sp.model_dump() for sp in manifest.spawn_points],
        "environment": manifest.environment.model_dump(),
        "stations": expanded.stations,
        "station_rules": manifest.stations.model_dump(include={"group_size", "assignment"}) if manifest.stations else None,
        "template": {"objects": [obj.id for obj in manifest.stations.template.objects], "zones": [zone.id for zone in manifest.stations.template.zones]}
        if manifest.stations
        else None,
        "rules": [rule.model_dump(by_alias=True, exclude_none=True) for rule in manifest.rules],
        "challenge": manifest.challenge.model_dump(by_alias=True, exclude_none=True) if manifest.challenge else None,
    }
    return Processed(manifest, glb, glb_phone, server, stats, notes)


def _kind(path: str) -> str:
    return mf.MESH_FORMATS["." + path.rsplit(".", 1)[-1].lower()]


def _load_asset(
    root: Path,
    names: set[str],
    asset: mf.Asset,
    manifest: mf.Manifest,
    limits: IngestLimits,
    textured: bool,
    problems: list[Problem],
    notes: list[Problem],
) -> list[tuple[trimesh.Trimesh, np.ndarray]] | None:
    """The asset's meshes in metres, y up, each with its transform inside the asset.

    trimesh reads the files the model names only through a PackageResolver: the
    same paths the checks before loading accepted, and nothing outside the package.
    """
    kind = _kind(asset.path)
    look, own = _asset_look(asset), 0
    resolver = PackageResolver(root, names, posixpath.dirname(asset.path), uri=kind in ("glb", "gltf"))
    try:
        scene = trimesh.load(str(root / asset.path), file_type=kind, resolver=resolver, force="scene", process=False)
    except MemoryError:  # not the file's fault: see ingest_zip
        raise
    except Exception as exc:  # trimesh raises many types for broken files
        problems.append(Problem(asset.path, f"cannot be read as {kind.upper()}: {plain_words(exc, root)}", f"re-export the model as a valid {kind.upper()}"))
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
        if mesh.vertices.ndim != 2 or mesh.vertices.shape[1] != 3 or mesh.faces.ndim != 2 or mesh.faces.shape[1] != 3:
            problems.append(Problem(where, "has vertices or faces that are not triples of numbers", "re-export the mesh"))
            continue
        if not np.isfinite(mesh.vertices).all():
            problems.append(Problem(where, "has non-finite (NaN or infinite) vertex coordinates", "clean up the mesh in your modelling tool and re-export"))
            continue
        if len(mesh.faces) and (mesh.faces.max() >= len(mesh.vertices) or mesh.faces.min() < 0):
            problems.append(Problem(where, "has faces that point at missing vertices", "re-export the mesh"))
            continue
        _keep_vertex_colours(mesh, textured)
        before_faces, before_vertices = len(mesh.faces), len(mesh.vertices)
        degenerate = ~mesh.nondegenerate_faces()
        if degenerate.any():
            mesh.update_faces(~degenerate)
        _merge_vertices(mesh)
        mesh.remove_unreferenced_vertices()
        if len(mesh.faces) == 0:
            problems.append(Problem(where, "has only degenerate (zero-area) faces", "re-export the mesh with real geometry"))
            continue
        # trimesh's winding repair walks a networkx graph of the faces: about 1 KB and 30 us a face
        if len(mesh.faces) > limits.max_winding_repair_triangles and not mesh.is_winding_consistent:
            problems.append(
                Problem(
                    where,
                    f"has faces wound inconsistently and {len(mesh.faces)} triangles, more than the {limits.max_winding_repair_triangles} ingest repairs",
                    "recalculate the normals in your modelling tool (Blender: Mesh > Normals > Recalculate Outside) and re-export",
                )
            )
            continue
        _orient(mesh)
        if len(mesh.faces) != before_faces or len(mesh.vertices) != before_vertices:
            notes.append(
                Problem(where, f"repaired: {before_faces - len(mesh.faces)} degenerate faces removed, {before_vertices - len(mesh.vertices)} duplicate vertices merged", "none needed")
            )
        if look is not None:
            if _has_own_look(mesh, textured):
                own += 1
            else:
                _give_look(mesh, look)
        parts.append((mesh, convert @ matrix))
    if not parts and not any(p.where.startswith(asset.path) for p in problems):
        problems.append(Problem(asset.path, "contains no triangle mesh", "export the model with its geometry"))
    if look is not None and own:
        given = ", ".join(f"'{name}'" for name in ("color", "metalness", "roughness") if getattr(asset, name) is not None)
        what = "every mesh" if own == len(parts) else f"{own} of its {len(parts)} meshes"
        notes.append(
            Problem(
                asset.path,
                f"{given} of asset {asset.id!r} ignored for {what}: they have their own material or colours, which are kept",
                f"remove {given} from asset {asset.id!r} in scene.json, or the materials from the model, to use the manifest's",
            )
        )
    return parts or None


#: what a mesh with no material of its own is given: the matte material (_matte_by_default), unless its asset says otherwise
_MATTE_METALNESS, _MATTE_ROUGHNESS = 0.0, 0.8


def _asset_look(asset: mf.Asset) -> trimesh.visual.material.PBRMaterial | None:
    """The material the manifest gives an asset's bare meshes ('color', 'metalness', 'roughness'), if any.

    '#rrggbb' is read as sRGB, as colour pickers and the environment's colours are,
    and converted to the linear factor glTF's baseColorFactor is.
    """
    if asset.color is None and asset.metalness is None and asset.roughness is None:
        return None
    base = None
    if asset.color is not None:
        srgb = np.array([int(asset.color[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        base = [*linear, 1.0]
    return trimesh.visual.material.PBRMaterial(
        name=f"{asset.id}-color",
        baseColorFactor=base,
        metallicFactor=float(_MATTE_METALNESS if asset.metalness is None else asset.metalness),
        roughnessFactor=float(_MATTE_ROUGHNESS if asset.roughness is None else asset.roughness),
    )


def _has_own_look(mesh: trimesh.Trimesh, textured: bool) -> bool:
    """Whether a mesh brings its own material or colours: vertex or face colours, or a
    material from its file. trimesh gives a model with texture coordinates but no
    material a stand-in (a one-colour image) that is not the model's own: a model that
    names no texture file has an image only then (OBJ and PLY cannot embed one, and a
    glTF's materials are PBR)."""
    visual = mesh.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        return not (not textured and isinstance(material, trimesh.visual.material.SimpleMaterial) and material.image is not None)
    return visual.kind is not None


def _give_look(mesh: trimesh.Trimesh, look: trimesh.visual.material.PBRMaterial) -> None:
    """Give a bare mesh the asset's material (shared by its meshes: one material in the GLB)."""
    if isinstance(mesh.visual, trimesh.visual.TextureVisuals):
        mesh.visual.material = look
    else:
        mesh.visual = trimesh.visual.TextureVisuals(material=look)


def _matte_by_default(glb: bytes) -> bytes:
    """Give primitives without a material a plain matte one.

    glTF says a primitive with no material is fully metallic, which renders
    nearly black without an environment map; vertex-coloured meshes (common from
    STL/PLY and simple exporters) come out of trimesh that way.
    """
    gltf, binary = glb_container.split(glb)
    bare = [prim for mesh in gltf.get("meshes", []) for prim in mesh["primitives"] if "material" not in prim]
    if not bare:
        return glb
    materials = gltf.setdefault("materials", [])
    materials.append({"name": "matte", "pbrMetallicRoughness": {"metallicFactor": _MATTE_METALNESS, "roughnessFactor": _MATTE_ROUGHNESS}})
    for prim in bare:
        prim["material"] = len(materials) - 1
    return glb_container.join(gltf, binary)


def _phone_variant(glb: bytes, budget: phone_variant.PhoneBudget, stats: dict[str, int], notes: list[Problem]) -> bytes | None:
    """The lab's GLB for phones, its size and triangles added to ``stats``; what the designer
    should know about it goes to ``notes``. A lab that passed every check is never refused
    here: without a variant, phones load the full GLB."""
    try:
        variant = phone_variant.make(glb, budget)
    except (phone_variant.PhoneVariantError, DracoPy.EncodingFailedException) as exc:
        notes.append(Problem("phone variant", f"not made: {exc}; phones load the full lab", "none needed; to give phones a smaller lab, simplify the models and re-export them"))
        return None
    stats.update(glb_phone_bytes=len(variant.glb), phone_triangles=variant.triangles)
    if variant.triangles < variant.triangles_before:
        notes.append(Problem("phone variant", f"decimated from {variant.triangles_before} to {variant.triangles} triangles for phones", "none needed"))
    notes += [Problem("phone variant", sentence, "none needed for desktops and headsets; phones on weak links wait longer") for sentence in variant.over_budget]
    return variant.glb


def _keep_vertex_colours(mesh: trimesh.Trimesh, textured: bool) -> None:
    """Put vertex colours trimesh read where its GLB writer exports them as COLOR_0.

    Two ways trimesh loses them: a PLY (or OBJ) with texture coordinates gets
    texture visuals and its colours are parked in ``mesh.vertex_attributes``,
    which the writer exports as '_color', a custom attribute no client reads;
    and PLYs from scanners name them diffuse_red/green/blue, which trimesh's PLY
    reader leaves in the raw header data. A model that names no texture file
    has only placeholder texture visuals: its colours replace them.
    """
    colours = mesh.vertex_attributes.pop("color", None)
    raw = mesh.metadata.get("_ply_raw", {}).get("vertex")
    diffuse = [f"diffuse_{c}" for c in ("red", "green", "blue")]
    if colours is None and mesh.visual.kind != "vertex" and raw and all(key in raw["properties"] for key in diffuse):
        colours = np.column_stack([raw["data"][key] for key in diffuse])
    if colours is None or len(colours) != len(mesh.vertices):
        return
    colours = trimesh.visual.color.to_rgba(colours)
    if textured and isinstance(mesh.visual, trimesh.visual.TextureVisuals):
        mesh.visual.vertex_attributes["color"] = colours
    else:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)


def _merge_vertices(mesh: trimesh.Trimesh) -> None:
    """trimesh's merge_vertices, but vertices of different colours stay apart.

    trimesh merges by position, texture coordinates and normals, not colour: a
    model with flat-coloured faces stores each corner once per colour, and
    merging would smear each face's colour into its neighbours'.
    """
    if mesh.visual.kind != "vertex":
        mesh.merge_vertices()
        return
    digits = trimesh.util.decimal_to_digits(trimesh.tol.merge)
    columns = [mesh.vertices * 10**digits, mesh.visual.vertex_colors]
    normals = mesh._cache["vertex_normals"]  # normals read from the file, as trimesh's own merge checks
    if np.shape(normals) == mesh.vertices.shape:
        columns.append(normals * 100)
    unique, inverse = trimesh.grouping.unique_rows(np.column_stack(columns).round().astype(np.int64), keep_order=True)
    mesh.update_vertices(mask=unique, inverse=inverse)


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


def _hulls(
    manifest: mf.Manifest,
    objects: list[mf.SceneObject],
    assets: dict[str, list[tuple[trimesh.Trimesh, np.ndarray]]], limits: IngestLimits, problems: list[Problem], notes: list[Problem]
) -> dict[str, Hull]:
    """The hull of every asset an object with a hull collider uses, computed once per asset."""
    paths = {asset.id: asset.path for asset in manifest.assets}
    hulls: dict[str, Hull] = {}
    for asset_id in dict.fromkeys(obj.asset for obj in objects if obj.collider == "hull"):
        hull = asset_hull(assets[asset_id], limits.max_hull_vertices)
        if hull is None:
            notes.append(Problem(paths[asset_id], "is flat or thin, so it has no convex hull: its objects get a box collider", "none needed"))
            continue
        hulls[asset_id] = hull
        if hull.simplified:
            notes.append(
                Problem(
                    paths[asset_id],
                    f"hull collider simplified: the convex hull has more than {limits.max_hull_vertices} vertices; the collider keeps {len(hull.vertices)} of its extreme points",
                    "none needed (for an exact hull, give the model a simpler shape)",
                )
            )
    total = sum(len(hulls[obj.asset].vertices) for obj in objects if obj.collider == "hull" and obj.asset in hulls)
    if total > limits.max_collider_vertices:
        problems.append(
            Problem("package", f"hull colliders have {total} vertices in all, over the limit of {limits.max_collider_vertices}", "use 'collider': 'box' for some objects")
        )
    return hulls


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
    return sorted(n for n in names if mf.is_texture(n))


def _check_textures(root: Path, names: set[str], limits: IngestLimits) -> tuple[list[Problem], int]:
    """Every PNG/JPEG file in the package, used or not: readable and within the pixel limit, by
    its header, before anything decodes it; and the longest side among them."""
    problems = []
    largest = 0
    for name in _texture_files(names):
        try:
            with pixel_limit(None), Image.open(root / name) as image:
                too_large = size_problem(name, image.size, limits.max_image_pixels)
                if too_large is None:
                    image.verify()
        except Exception as exc:  # PIL's message names our temporary path: report only its kind
            problems.append(Problem(name, f"is not a readable PNG/JPEG image ({type(exc).__name__})", "re-save the texture as PNG or JPEG"))
            continue
        if too_large:
            problems.append(too_large)
        else:
            largest = max(largest, *image.size)
    return problems, largest


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

