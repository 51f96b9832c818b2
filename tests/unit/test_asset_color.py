"""An asset's 'color', 'metalness' and 'roughness' give bare meshes (STL, OBJ without MTL, PLY
without colours) a look; a model with its own materials or colours keeps them, with a note."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import trimesh

from scenes.ingest import Processed, ingest_zip
from scenes.package import pack_files
from scenes.report import PackageRejected
from tests.scene_packages import manifest

BOX = trimesh.creation.box(extents=(0.1, 0.2, 0.1))


def _ingest(tmp_path: Path, kind: str, model: bytes, **look: Any) -> Processed:
    data = manifest("colour-lab", {"item": f"assets/item.{kind}"})
    data["assets"][0].update(look)
    path = tmp_path / "p.zip"
    path.write_bytes(pack_files({"scene.json": json.dumps(data).encode(), f"assets/item.{kind}": model}))
    return ingest_zip(path)


def _gltf(glb: bytes) -> dict[str, Any]:
    """The JSON chunk of a GLB."""
    length = int.from_bytes(glb[12:16], "little")
    return json.loads(glb[20 : 20 + length])


def _materials_of_item(glb: bytes) -> list[dict[str, Any]]:
    gltf = _gltf(glb)
    return [gltf["materials"][prim["material"]] for mesh in gltf["meshes"] if mesh["name"].startswith("item/") for prim in mesh["primitives"]]


def test_an_stl_with_a_color_has_that_base_colour_in_the_glb(tmp_path: Path) -> None:
    processed = _ingest(tmp_path, "stl", BOX.export(file_type="stl"), color="#ff0000")
    [material] = _materials_of_item(processed.glb)
    pbr = material["pbrMetallicRoughness"]
    assert pbr["baseColorFactor"] == pytest.approx([1.0, 0.0, 0.0, 1.0])
    assert pbr["metallicFactor"] == 0.0 and pbr["roughnessFactor"] == pytest.approx(0.8)  # matte, as bare meshes are by default
    # and trimesh, as a client would, reads the same colour back
    scene = trimesh.load(io.BytesIO(processed.glb), file_type="glb")
    [mesh] = [geom for name, geom in scene.geometry.items() if name.startswith("item/")]
    assert mesh.visual.material.baseColorFactor.tolist() == [255, 0, 0, 255]
    assert not [note for note in processed.notes if "ignored" in note.what]


def test_metalness_and_roughness_and_srgb_colour(tmp_path: Path) -> None:
    processed = _ingest(tmp_path, "stl", BOX.export(file_type="stl"), color="#808080", metalness=1, roughness=0.25)
    [material] = _materials_of_item(processed.glb)
    pbr = material["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 1.0 and pbr["roughnessFactor"] == 0.25
    # '#808080' is sRGB mid grey: linear 0.216 in glTF's baseColorFactor (8 bits, as trimesh stores it)
    assert pbr["baseColorFactor"][:3] == pytest.approx([0.2158] * 3, abs=0.004)


@pytest.mark.parametrize("kind", ["obj", "ply"])
def test_bare_obj_and_ply_take_the_colour(kind: str, tmp_path: Path) -> None:
    processed = _ingest(tmp_path, kind, BOX.export(file_type=kind).encode() if kind == "obj" else BOX.export(file_type=kind), color="#00ff00")
    [material] = _materials_of_item(processed.glb)
    assert material["pbrMetallicRoughness"]["baseColorFactor"] == pytest.approx([0.0, 1.0, 0.0, 1.0])


def test_an_obj_with_texture_coordinates_but_no_material_takes_the_colour(tmp_path: Path) -> None:
    obj = b"v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nv 0 0 0.1\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\nf 1/1 3/3 2/2\nf 1/1 2/2 4/4\nf 1/1 4/4 3/3\nf 2/2 3/3 4/4\n"
    [material] = _materials_of_item(_ingest(tmp_path, "obj", obj, color="#0000ff").glb)
    assert material["pbrMetallicRoughness"]["baseColorFactor"] == pytest.approx([0.0, 0.0, 1.0, 1.0])
    assert "baseColorTexture" not in material["pbrMetallicRoughness"]


def test_a_glb_with_its_own_material_keeps_it_and_the_colour_is_noted_as_ignored(tmp_path: Path) -> None:
    blue = BOX.copy()
    blue.visual = trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(baseColorFactor=[0, 0, 255, 255], metallicFactor=0.0))
    processed = _ingest(tmp_path, "glb", trimesh.Scene(blue).export(file_type="glb"), color="#ff0000")
    [material] = _materials_of_item(processed.glb)
    assert material["pbrMetallicRoughness"]["baseColorFactor"] == pytest.approx([0.0, 0.0, 1.0, 1.0])
    [note] = [note for note in processed.notes if "ignored" in note.what]
    assert note.where == "assets/item.glb" and "'color' of asset 'item'" in note.what and "every mesh" in note.what
    assert "remove 'color'" in note.fix


def test_vertex_colours_are_kept_over_the_colour(tmp_path: Path) -> None:
    painted = BOX.copy()
    painted.visual.vertex_colors = [0, 255, 0, 255]
    processed = _ingest(tmp_path, "ply", painted.export(file_type="ply"), color="#ff0000", roughness=0.1)
    gltf = _gltf(processed.glb)
    [prim] = [prim for mesh in gltf["meshes"] for prim in mesh["primitives"]]
    assert "COLOR_0" in prim["attributes"]
    assert "baseColorFactor" not in gltf["materials"][prim["material"]].get("pbrMetallicRoughness", {})
    assert [note.what for note in processed.notes if "ignored" in note.what] == [
        "'color', 'roughness' of asset 'item' ignored for every mesh: they have their own material or colours, which are kept"
    ]


def test_without_a_colour_bare_meshes_stay_matte(tmp_path: Path) -> None:
    [material] = _materials_of_item(_ingest(tmp_path, "stl", BOX.export(file_type="stl")).glb)
    assert material == {"name": "matte", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.8}}


@pytest.mark.parametrize(
    ("look", "fragment"),
    [
        ({"color": "red"}, "color must be '#rrggbb'"),
        ({"color": "#ff00"}, "color must be '#rrggbb'"),
        ({"metalness": 1.5}, "less than or equal to 1"),
        ({"roughness": -0.1}, "greater than or equal to 0"),
    ],
)
def test_a_bad_look_is_refused_at_its_path(look: dict[str, Any], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(PackageRejected) as refused:
        _ingest(tmp_path, "stl", BOX.export(file_type="stl"), **look)
    [problem] = refused.value.problems
    assert problem.where == f"scene.json $.assets[0].{next(iter(look))}" and fragment in problem.what
