"""Ingest without a server: good packages in every format, and every kind of bad one."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from scenes.ingest import ingest_zip
from scenes.report import PackageRejected

from tests.scene_packages import BAD, good_package


def glb_node_names(glb: bytes) -> set[str]:
    length = struct.unpack_from("<I", glb, 12)[0]
    return {node.get("name") for node in json.loads(glb[20 : 20 + length])["nodes"]}


@pytest.mark.parametrize("kind", ["glb", "gltf", "obj", "stl", "ply"])
def test_good_package_in_each_format(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    path.write_bytes(good_package(kind))
    processed = ingest_zip(path)
    assert processed.manifest.id == f"lab-{kind}"
    assert "obj-item" in glb_node_names(processed.glb)
    obj = processed.server["objects"][0]
    assert obj["interactable"] is True and obj["transform"][:3] == [0.0, 0.9, -1.0]
    assert obj["collider"]["type"] == "box"
    extents = obj["collider"]["extents"]
    assert max(extents) == pytest.approx(0.2 if kind not in ("obj",) else 0.1, rel=1e-3)
    assert processed.server["zones"] == [{"id": "z", "shape": "sphere", "center": [0.0, 1.0, 0.0], "radius": 1.0}]
    assert processed.stats["triangles"] == 12


def test_obj_texture_is_carried_into_the_glb(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    path.write_bytes(good_package("obj"))
    glb = ingest_zip(path).glb
    length = struct.unpack_from("<I", glb, 12)[0]
    gltf = json.loads(glb[20 : 20 + length])
    assert gltf.get("images") and gltf.get("textures")


def test_units_and_up_axis_are_converted(tmp_path: Path) -> None:
    import trimesh

    from scenes.package import pack_files
    from tests.scene_packages import manifest

    box = trimesh.creation.box(extents=(10.0, 20.0, 30.0))  # centimetres, z up
    data = manifest("cm-lab", {"item": "assets/item.stl"}, units="cm", up_axis="z")
    path = tmp_path / "p.zip"
    path.write_bytes(pack_files({"scene.json": json.dumps(data).encode(), "assets/item.stl": box.export(file_type="stl")}))
    extents = ingest_zip(path).server["objects"][0]["collider"]["extents"]
    assert extents == pytest.approx([0.1, 0.3, 0.2])  # metres, and z became y


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_package_is_refused_with_every_problem_named(name: str, tmp_path: Path) -> None:
    build, fragment = BAD[name]
    path = tmp_path / "p.zip"
    path.write_bytes(build())
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(path)
    problems = refused.value.problems
    assert problems and all(p.where and p.what and p.fix for p in problems)
    assert any(fragment in p.what or fragment in p.where for p in problems), problems
    assert not any(leak in str(p) for p in problems for leak in ("amaliy-ingest-", "[Errno", "/tmp/")), problems


def test_all_manifest_problems_are_reported_at_once(tmp_path: Path) -> None:
    build, _ = BAD["bad-fields"]
    path = tmp_path / "p.zip"
    path.write_bytes(build())
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(path)
    wheres = " ".join(p.where for p in refused.value.problems)
    assert "$.id" in wheres and "$.units" in wheres and "$.spawn_points" in wheres


def _refusals(tmp_path: Path, data: dict) -> list[str]:
    import trimesh

    from scenes.package import pack_files

    box = trimesh.Scene(trimesh.creation.box()).export(file_type="glb")
    path = tmp_path / "p.zip"
    path.write_bytes(pack_files({"scene.json": json.dumps(data).encode(), "assets/item.glb": box}))
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(path)
    return [f"{p.where}: {p.what}" for p in refused.value.problems]


def test_references_and_fields_are_reported_together_at_their_paths(tmp_path: Path) -> None:
    from tests.scene_packages import manifest

    data = manifest("refs", {"item": "assets/item.glb"})
    data["objects"].append({"id": "obj-item", "asset": "ghost", "snap_points": [{"id": "s", "position": [0, 0, 0]}, {"id": "s", "position": [1, 0, 0]}]})
    data["zones"] = [{"id": "z", "shape": "sphere", "center": [0, 0, 0], "radius": 1, "size": [1, 1, 1]}]
    data["environment"] = {"lights": [{"kind": "point"}]}
    problems = "\n".join(_refusals(tmp_path, data))
    assert "$.objects[1].id: object id 'obj-item' is used twice" in problems
    assert "$.objects[1].asset: asset 'ghost' is not declared" in problems
    assert "$.objects[1].snap_points[1].id" in problems
    assert "$.zones[0]" in problems and "no 'size'" in problems
    assert "$.environment.lights[0]" in problems and "needs a 'position'" in problems


@pytest.mark.parametrize("version", [True, 1.0, 3, "2"])
def test_only_integer_schema_versions_we_know(tmp_path: Path, version: object) -> None:
    from tests.scene_packages import manifest

    problems = _refusals(tmp_path, {**manifest("v", {"item": "assets/item.glb"}), "schema_version": version})
    assert problems == [f"scene.json $.schema_version: unknown schema_version {version!r}"]


def test_reserved_package_ids_are_refused(tmp_path: Path) -> None:
    from tests.scene_packages import manifest

    problems = _refusals(tmp_path, manifest("schema", {"item": "assets/item.glb"}))
    assert any("$.id" in p and "reserved" in p for p in problems)


# Models and textures: checked from what they declare before anything is loaded or decoded.

#: BAD cases that would take gigabytes if loaded (or decoded) as declared
MEMORY_CASES = [
    "gltf-accessor-without-bufferview",
    "gltf-overlapping-strides",
    "gltf-decodes-too-much",
    "glb-embedded-huge-png",
    "texture-bomb",
    "obj-mtl-huge-texture",
    "ply-counts-beyond-data",
    "glb-places-too-many-meshes",
    "mtl-too-many-materials",
]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What trimesh loaded and PIL decoded during the test."""
    import PIL.ImageFile

    import scenes.ingest

    seen: list[str] = []
    load, decode = scenes.ingest.trimesh.load, PIL.ImageFile.ImageFile.load

    def counting_load(*args: object, **kwargs: object) -> object:
        seen.append(f"trimesh.load {args[0]}")
        return load(*args, **kwargs)

    def counting_decode(self: PIL.ImageFile.ImageFile) -> object:
        seen.append(f"decode {self.size}")
        return decode(self)

    monkeypatch.setattr(scenes.ingest.trimesh, "load", counting_load)
    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", counting_decode)
    return seen


@pytest.mark.parametrize("name", MEMORY_CASES)
def test_what_would_not_fit_in_memory_is_refused_before_loading(name: str, tmp_path: Path, loads: list[str]) -> None:
    build, fragment = BAD[name]
    path = tmp_path / "p.zip"
    path.write_bytes(build())
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(path)
    assert any(fragment in p.what for p in refused.value.problems), refused.value.problems
    assert loads == []


def _package(tmp_path: Path, files: dict[str, bytes], data: dict) -> Path:
    from scenes.package import pack_files

    path = tmp_path / "p.zip"
    path.write_bytes(pack_files({"scene.json": json.dumps(data).encode(), **files}))
    return path


def _good(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.zip"
    path.write_bytes(good_package(kind))
    return path


@pytest.mark.parametrize(
    ("kind", "limit", "value", "fragment"),
    [
        ("glb", "max_vertices", 7, "8 vertices in all, over the limit of 7"),
        ("stl", "max_triangles", 11, "12 triangles in all, over the limit of 11"),
        ("ply", "max_meshes", 0, "place 1 meshes in the scene"),
        ("obj", "max_materials", 0, "declare 1 materials"),
        ("glb", "max_decoded_bytes", 100, "takes 720 bytes in all"),
        ("gltf", "max_json_values", 10, "values, over the limit of 10"),
        ("obj", "max_text_bytes", 100, "bytes of text, over the limit of 100"),
        ("obj", "max_image_pixels", 4095, "is 64x64 px"),
        ("obj", "max_total_image_pixels", 4095, "4096 px in all"),
    ],
)
def test_every_model_limit_refuses_before_loading(kind: str, limit: str, value: int, fragment: str, tmp_path: Path, loads: list[str]) -> None:
    from dataclasses import replace

    from scenes.ingest import IngestLimits

    package = _good(tmp_path, kind)
    loads.clear()  # building the package decoded its texture
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(package, replace(IngestLimits(), **{limit: value}))
    assert any(fragment in p.what for p in refused.value.problems), refused.value.problems
    assert loads == []


def test_a_mesh_whose_winding_needs_fixing_ingests(tmp_path: Path) -> None:
    """trimesh's fix_winding needs networkx: two boxes in one STL, one with faces flipped."""
    import trimesh

    from tests.scene_packages import manifest

    flipped = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    flipped.apply_translation((0.2, 0, 0))
    faces = flipped.faces.copy()
    faces[[0, 3, 7]] = faces[[0, 3, 7]][:, ::-1]
    two = trimesh.util.concatenate([trimesh.creation.box(extents=(0.1, 0.1, 0.1)), trimesh.Trimesh(flipped.vertices, faces, process=False)])
    assert not two.is_winding_consistent
    path = _package(tmp_path, {"assets/item.stl": two.export(file_type="stl")}, manifest("winding", {"item": "assets/item.stl"}))
    glb = ingest_zip(path).glb
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", force="scene").geometry.values()
    assert len(mesh.faces) == 24 and mesh.is_winding_consistent


def test_winding_is_repaired_only_up_to_its_limit(tmp_path: Path) -> None:
    from dataclasses import replace

    import trimesh

    from scenes.ingest import IngestLimits
    from tests.scene_packages import manifest

    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    faces = box.faces.copy()
    faces[0] = faces[0][::-1]
    path = _package(tmp_path, {"assets/item.ply": trimesh.Trimesh(box.vertices, faces, process=False).export(file_type="ply")}, manifest("w", {"item": "assets/item.ply"}))
    assert ingest_zip(path, replace(IngestLimits(), max_winding_repair_triangles=12)).stats["triangles"] == 12
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(path, replace(IngestLimits(), max_winding_repair_triangles=11))
    assert "wound inconsistently and 12 triangles, more than the 11" in refused.value.problems[0].what


def test_flat_coloured_faces_keep_their_colours(tmp_path: Path) -> None:
    """Corners stored once per face colour must not be merged into one colour."""
    import trimesh

    from tests.scene_packages import manifest

    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    soup = trimesh.Trimesh(box.vertices[box.faces].reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False)
    soup.visual.vertex_colors = np.repeat([[255, 0, 0, 255], [0, 0, 255, 255]], 18, axis=0)
    glb = ingest_zip(_package(tmp_path, {"assets/item.ply": soup.export(file_type="ply")}, manifest("flat", {"item": "assets/item.ply"}))).glb
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", force="scene").geometry.values()
    corners = mesh.visual.vertex_attributes["color"][mesh.faces]
    assert (corners == corners[:, :1]).all()
    assert len({tuple(c) for c in corners[:, 0].tolist()}) == 2


def test_an_obj_that_is_not_utf8_ingests(tmp_path: Path) -> None:
    """trimesh guesses the encoding of non-UTF-8 text with charset-normalizer."""
    import trimesh

    from tests.scene_packages import manifest

    text = "# Лабораторная работа: стакан\n" + trimesh.creation.box(extents=(0.1, 0.1, 0.1)).export(file_type="obj")
    path = _package(tmp_path, {"assets/item.obj": text.encode("cp1251")}, manifest("cp1251", {"item": "assets/item.obj"}))
    assert ingest_zip(path).stats["triangles"] == 12


def _ply(properties: list[str], rows: list[tuple[float, ...]]) -> bytes:
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    header = ["ply", "format ascii 1.0", f"element vertex {len(rows)}", *(f"property {p}" for p in properties)]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    body = [" ".join(map(str, row)) for row in rows] + [" ".join(map(str, (3, *face))) for face in faces]
    return ("\n".join(header + body) + "\n").encode()


_CORNERS = [(0, 0, 0), (0.1, 0, 0), (0, 0.1, 0), (0, 0, 0.1)]
_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
_XYZ = ["float x", "float y", "float z"]


@pytest.mark.parametrize(
    "ply",
    [
        _ply(_XYZ + ["uchar red", "uchar green", "uchar blue"], [v + c for v, c in zip(_CORNERS, _COLOURS)]),
        _ply(_XYZ + ["float s", "float t", "uchar red", "uchar green", "uchar blue"], [v + (0.5, 0.5) + c for v, c in zip(_CORNERS, _COLOURS)]),
        _ply(_XYZ + ["uchar diffuse_red", "uchar diffuse_green", "uchar diffuse_blue"], [v + c for v, c in zip(_CORNERS, _COLOURS)]),
    ],
    ids=["rgb", "with-texture-coordinates", "diffuse-names"],
)
def test_ply_vertex_colours_reach_the_glb(ply: bytes, tmp_path: Path) -> None:
    import trimesh

    from tests.scene_packages import manifest

    glb = ingest_zip(_package(tmp_path, {"assets/item.ply": ply}, manifest("colours", {"item": "assets/item.ply"}))).glb
    length = struct.unpack_from("<I", glb, 12)[0]
    (primitive,) = json.loads(glb[20 : 20 + length])["meshes"][0]["primitives"]
    assert "COLOR_0" in primitive["attributes"] and "_color" not in primitive["attributes"]
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", force="scene").geometry.values()
    colours = mesh.visual.vertex_attributes["color"]  # a material was added, so trimesh reads texture visuals
    assert {tuple(c[:3]) for c in colours.tolist()} == set(_COLOURS)


def test_hulls_are_computed_once_per_asset_and_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trimesh

    import scenes.ingest
    from tests.scene_packages import manifest

    calls: list[int] = []
    hull = scenes.ingest.asset_hull
    monkeypatch.setattr(scenes.ingest, "asset_hull", lambda parts, cap: calls.append(len(parts)) or hull(parts, cap))
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.05)  # 2,562 vertices, every one on the hull
    data = manifest("hulls", {"item": "assets/item.glb"}, targets=["desktop"])
    data["objects"] = [
        {"id": f"o{i}", "asset": "item", "collider": "hull", "transform": {"position": [i * 0.2, 1, 0], "scale": [1 + i % 2, 1, 1]}} for i in range(60)
    ]
    processed = ingest_zip(_package(tmp_path, {"assets/item.glb": trimesh.Scene(sphere).export(file_type="glb")}, data))
    assert len(calls) == 1
    colliders = [obj["collider"] for obj in processed.server["objects"]]
    plain, wide = np.array(colliders[0]["vertices"]), np.array(colliders[1]["vertices"])
    assert len(plain) <= 256 and colliders[0]["faces"] == colliders[1]["faces"]
    assert wide == pytest.approx(plain * [2, 1, 1], abs=2e-6)  # both rounded to 6 places
    # the simplified hull is made of the sphere's own vertices: inside the true hull
    assert np.linalg.norm(plain, axis=1) == pytest.approx(0.05, rel=1e-4)
    assert [n.what for n in processed.notes if "hull collider simplified" in n.what]


@pytest.mark.parametrize(
    ("where", "uri"),
    [("assets/my model.bin", "my%20model.bin"), ("buffers/model.bin", "../buffers/model.bin")],
    ids=["percent-escaped", "sibling-folder"],
)
def test_gltf_uris_resolve_inside_the_package(where: str, uri: str, tmp_path: Path) -> None:
    from tests.scene_packages import box_gltf, manifest

    gltf, binary = box_gltf()
    gltf["buffers"][0]["uri"] = uri
    files = {"assets/model.gltf": json.dumps(gltf).encode(), where: binary}
    assert ingest_zip(_package(tmp_path, files, manifest("uris", {"item": "assets/model.gltf"}))).stats["triangles"] == 12


def test_an_unexpected_error_is_a_refusal_in_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scenes.ingest

    def broken(root: Path, names: set[str], limits: object) -> None:
        raise FileExistsError(17, "File exists", str(root / "assets" / "item.glb"))

    monkeypatch.setattr(scenes.ingest, "_ingest_tree", broken)
    with pytest.raises(PackageRejected) as refused:
        ingest_zip(_good(tmp_path, "glb"))
    (problem,) = refused.value.problems
    assert problem.what == "could not be processed: a file and a folder in the package have the same name (assets/item.glb)"


def test_plain_words_never_leave_a_message_empty(tmp_path: Path) -> None:
    from scenes.plain_words import plain_words

    assert plain_words(AssertionError(), tmp_path) == "its internal structure is inconsistent"
    assert plain_words(ValueError(), tmp_path) == "value error"
    assert plain_words(KeyError("uri"), tmp_path) == "a required field 'uri' is missing"
    assert plain_words(ValueError(f"bad data in {tmp_path}/assets/a.glb"), tmp_path) == "bad data in assets/a.glb"


def test_pil_refuses_larger_images_while_models_load() -> None:
    """The guard behind the header checks: inside pixel_limit nothing larger opens, even lazily."""
    from PIL import Image

    from scenes.images import header_size, pixel_limit
    from tests.scene_packages import png_declaring

    with pixel_limit(100 * 100):
        assert Image.open(io.BytesIO(png_declaring(100, 100))).size == (100, 100)
        with pytest.raises(Image.DecompressionBombWarning):
            Image.open(io.BytesIO(png_declaring(101, 100)))
        assert header_size(png_declaring(65535, 65535)) == (65535, 65535)
