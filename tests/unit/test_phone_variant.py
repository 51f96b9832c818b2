"""The phone variant of a lab (scenes.phone_variant): within the phone budget, fewer triangles where
the lab has too many, small textures, Draco geometry that decodes back to the same lab (read again
with trimesh, as a client's GLTFLoader would), and a clear sentence, never a crash, for what it
cannot be made of. The desktop GLB is not touched."""

from __future__ import annotations

import functools
import io
import json
import struct
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from scenes import glb as glb_container
from scenes import samples
from scenes.ingest import IngestLimits, Processed, ingest_zip
from scenes.lab_bytes import lab_bytes
from scenes.package import pack_files
from scenes.phone_variant import PhoneBudget, PhoneVariantError, make

from tests.phone_labs import heavy_package
from tests.unit.test_samples import processed

BUDGET = PhoneBudget()


@functools.cache
def heavy() -> Processed:
    """The heavy lab at a quarter of its triangles (82,000), to keep the test quick; still over the phone budget."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lab.zip"
        path.write_bytes(heavy_package(subdivisions=6))
        return ingest_zip(path)


def load(glb: bytes) -> trimesh.Scene:
    return trimesh.load(io.BytesIO(glb), file_type="glb", force="scene")


def node_names(glb: bytes) -> list[str]:
    return sorted(node.get("name", "") for node in glb_container.split(glb)[0]["nodes"])


@pytest.mark.parametrize("package_id", sorted(samples.SAMPLES))
def test_each_sample_lab_has_a_phone_variant_within_budget_that_decodes_to_the_same_lab(package_id: str) -> None:
    phone, desktop = lab_bytes(package_id)
    assert phone < desktop and phone <= BUDGET.file_bytes
    done = processed(package_id)
    assert done.stats["glb_phone_bytes"] == len(done.glb_phone) == phone
    gltf, _ = glb_container.split(done.glb_phone)
    assert gltf["extensionsRequired"] == ["KHR_draco_mesh_compression"]
    assert node_names(done.glb_phone) == node_names(done.glb)  # the client binds objects by these names
    full, small = load(done.glb), load(done.glb_phone)
    for name, mesh in full.geometry.items():
        assert len(small.geometry[name].faces) == len(mesh.faces)  # within the triangle budget: nothing decimated
        assert np.abs(small.geometry[name].bounds - mesh.bounds).max() < 0.002  # 14-bit positions
    assert np.allclose(small.bounds, full.bounds, atol=0.002)


def test_a_heavy_lab_is_decimated_and_its_textures_shrunk_to_the_phone_budget() -> None:
    done = heavy()
    assert done.stats["triangles"] > 80_000 and done.stats["texture_px"] == 1024
    assert done.stats["phone_triangles"] <= BUDGET.triangles
    assert len(done.glb_phone) <= BUDGET.file_bytes and len(done.glb_phone) < len(done.glb) / 10
    assert any(note.where == "phone variant" and "decimated from" in note.what for note in done.notes)
    gltf, binary = glb_container.split(done.glb_phone)
    (image,) = gltf["images"]
    view = gltf["bufferViews"][image["bufferView"]]
    with Image.open(io.BytesIO(binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]])) as picture:
        assert max(picture.size) <= BUDGET.texture_px and picture.format == "JPEG" and image["mimeType"] == "image/jpeg"
    full, small = load(done.glb), load(done.glb_phone)
    scan = next(name for name in full.geometry if name.startswith("scan"))
    assert len(small.geometry[scan].faces) < len(full.geometry[scan].faces) / 2
    assert small.geometry[scan].visual.uv is not None  # still textured
    assert np.allclose(small.bounds, full.bounds, atol=0.01)  # the same shape, within a centimetre
    assert node_names(done.glb_phone) == node_names(done.glb)


def test_the_desktop_glb_is_left_as_it_was() -> None:
    done = heavy()
    gltf, _ = glb_container.split(done.glb)
    assert "KHR_draco_mesh_compression" not in json.dumps(gltf)
    assert done.stats["glb_bytes"] == len(done.glb)


def test_a_lab_over_the_phone_budget_is_still_accepted_with_a_note(tmp_path: Path) -> None:
    """Many small meshes cannot be decimated and a tiny byte budget cannot be met: the designer reads
    why, the lab is stored, and phones get the smallest variant there is."""
    path = tmp_path / "lab.zip"
    path.write_bytes(pack_files(samples.SAMPLES[samples.DEMO]()))
    done = ingest_zip(path, replace(IngestLimits(), phone=PhoneBudget(triangles=100, file_bytes=1000)))
    over = [note.what for note in done.notes if note.where == "phone variant"]
    assert any("over the phone budget of 1000" in text for text in over), over
    assert any("triangles, over the phone budget of 100" in text for text in over), over
    assert done.glb_phone is not None and len(done.glb_phone) < len(done.glb)


@pytest.mark.parametrize(
    "glb, says",
    [
        (b"", "too short for a GLB"),
        (b"not a GLB at all, but long enough", "no GLB version 2 header"),
        (glb_container.join({"asset": {"version": "2.0"}, "animations": [{"channels": []}]}, b""), "has animations"),
        (
            glb_container.join(
                {
                    "asset": {"version": "2.0"},
                    "buffers": [{"byteLength": 12}],
                    "bufferViews": [{"buffer": 0, "byteLength": 12}],
                    "accessors": [{"bufferView": 0, "componentType": 5126, "count": 1000, "type": "VEC3"}],
                    "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
                    "nodes": [{"mesh": 0}],
                },
                b"\x00" * 12,
            ),
            "runs past its data",
        ),
        (
            glb_container.join({"asset": {"version": "2.0"}, "meshes": [{"primitives": [{"attributes": {"POSITION": 7}}]}]}, b""),
            "does not hold together",
        ),
        (
            glb_container.join({"asset": {"version": "2.0"}, "meshes": [{"primitives": [{"attributes": {}, "mode": 1}]}]}, b""),
            "not triangles",
        ),
    ],
)
def test_a_glb_the_variant_cannot_be_made_of_gets_one_clear_sentence(glb: bytes, says: str) -> None:
    with pytest.raises(PhoneVariantError, match=says):
        make(glb)


def test_an_image_that_cannot_be_read_gets_a_clear_sentence() -> None:
    done = heavy()
    gltf, binary = glb_container.split(done.glb)
    view = gltf["bufferViews"][gltf["images"][0]["bufferView"]]
    broken = bytearray(binary)
    broken[view.get("byteOffset", 0) : view.get("byteOffset", 0) + 16] = b"\x00" * 16
    with pytest.raises(PhoneVariantError, match="image that cannot be read"):
        make(glb_container.join(gltf, bytes(broken)))


def test_faces_pointing_at_missing_vertices_get_a_clear_sentence() -> None:
    positions = np.zeros((3, 3), np.float32).tobytes()
    indices = struct.pack("<3I", 0, 1, 9)
    gltf = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": 48}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}, {"buffer": 0, "byteOffset": 36, "byteLength": 12}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5125, "count": 3, "type": "SCALAR"},
        ],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "nodes": [{"mesh": 0}],
    }
    with pytest.raises(PhoneVariantError, match="missing vertices"):
        make(glb_container.join(gltf, positions + indices))
