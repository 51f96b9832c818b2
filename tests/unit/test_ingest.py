"""Ingest without a server: good packages in every format, and every kind of bad one."""

from __future__ import annotations

import json
import struct
from pathlib import Path

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


@pytest.mark.parametrize("version", [True, 1.0, 2, "1"])
def test_only_integer_schema_versions_we_know(tmp_path: Path, version: object) -> None:
    from tests.scene_packages import manifest

    problems = _refusals(tmp_path, {**manifest("v", {"item": "assets/item.glb"}), "schema_version": version})
    assert problems == [f"scene.json $.schema_version: unknown schema_version {version!r}"]


def test_reserved_package_ids_are_refused(tmp_path: Path) -> None:
    from tests.scene_packages import manifest

    problems = _refusals(tmp_path, manifest("schema", {"item": "assets/item.glb"}))
    assert any("$.id" in p and "reserved" in p for p in problems)
