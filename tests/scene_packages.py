"""Scene packages built by the tests: good ones in every format, and a corpus of bad ones."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from typing import Any, Callable

import numpy as np
import trimesh
from PIL import Image

from scenes.package import pack_files


def manifest(package_id: str, assets: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A valid manifest with one object per asset (the first one interactable)."""
    return {
        "schema_version": 1,
        "id": package_id,
        "title": f"Test lab {package_id}",
        "assets": [{"id": aid, "path": path} for aid, path in assets.items()],
        "objects": [
            {"id": f"obj-{aid}", "asset": aid, "interactable": i == 0, "transform": {"position": [i * 0.3, 0.9, -1.0]}}
            for i, aid in enumerate(assets)
        ],
        "spawn_points": [{"position": [0, 0, 1]}],
        **extra,
    }


def _mesh_bytes(mesh: trimesh.Trimesh, kind: str) -> bytes:
    return mesh.export(file_type=kind)


def _texture_png(size: int = 64) -> bytes:
    image = Image.new("RGB", (size, size))
    image.putdata([((x * 4) % 256, (y * 4) % 256, 128) for y in range(size) for x in range(size)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def good_package(kind: str, package_id: str | None = None) -> bytes:
    """A valid package whose one asset is in ``kind`` format (glb, gltf, obj, stl, ply)."""
    package_id = package_id or f"lab-{kind}"
    box = trimesh.creation.box(extents=(0.1, 0.2, 0.1))
    files: dict[str, bytes] = {}
    if kind == "glb":
        files["assets/item.glb"] = trimesh.Scene(box).export(file_type="glb")
        path = "assets/item.glb"
    elif kind == "gltf":
        exported = trimesh.Scene(box).export(file_type="gltf")
        for name, data in exported.items():
            files[f"assets/{name}"] = data
        path = "assets/model.gltf"
    elif kind == "obj":
        textured = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
        uv = np.random.default_rng(1).random((len(textured.vertices), 2))
        material = trimesh.visual.material.SimpleMaterial(image=Image.open(io.BytesIO(_texture_png())))
        textured.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        exported = trimesh.exchange.obj.export_obj(textured, include_texture=True, return_texture=True, mtl_name="item.mtl")
        text, textures = exported
        files["assets/item.obj"] = text.encode()
        for name, data in textures.items():
            files[f"assets/{name}"] = data
        path = "assets/item.obj"
    else:
        files[f"assets/item.{kind}"] = _mesh_bytes(box, kind)
        path = f"assets/item.{kind}"
    files["scene.json"] = json.dumps(manifest(package_id, {"item": path}, zones=[{"id": "z", "shape": "sphere", "center": [0, 1, 0], "radius": 1}])).encode()
    return pack_files(files)


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return out.getvalue()


def _with_manifest(extra_entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    box = trimesh.Scene(trimesh.creation.box(extents=(0.1, 0.1, 0.1))).export(file_type="glb")
    base: list[tuple[zipfile.ZipInfo | str, bytes]] = [
        ("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/item.glb"})).encode()),
        ("assets/item.glb", box),
    ]
    return _zip(base + extra_entries)


def _link() -> bytes:
    info = zipfile.ZipInfo("assets/link.glb")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _with_manifest([(info, b"/etc/passwd")])


def _device() -> bytes:
    info = zipfile.ZipInfo("assets/dev")
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    return _with_manifest([(info, b"")])


def _mesh_package(mesh_bytes: bytes, kind: str = "ply", **extra: Any) -> bytes:
    return _zip(
        [
            ("scene.json", json.dumps(manifest("bad-lab", {"item": f"assets/item.{kind}"}, **extra)).encode()),
            (f"assets/item.{kind}", mesh_bytes),
        ]
    )


def _nan_mesh() -> bytes:
    vertices = "\n".join(["v 0 0 0", "v 1 0 0", "v nan 1 0", "v 0 0 1"])
    return (vertices + "\nf 1 2 3\nf 1 3 4\n").encode()


def _big_mesh() -> bytes:
    sphere = trimesh.creation.icosphere(subdivisions=6, radius=0.3)  # 81,920 triangles
    return trimesh.Scene(sphere).export(file_type="glb")


def _manifest_only(data: dict[str, Any]) -> bytes:
    box = trimesh.Scene(trimesh.creation.box(extents=(0.1, 0.1, 0.1))).export(file_type="glb")
    return _zip([("scene.json", json.dumps(data).encode()), ("assets/item.glb", box)])


#: name -> (builder, a fragment every refusal for it must mention)
BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "zip-bomb": (lambda: _with_manifest([("assets/bomb.bin", b"\0" * (40 * 1024 * 1024))]), "compression ratio"),
    "path-traversal": (lambda: _with_manifest([("../../evil.txt", b"x")]), "unsafe entry name"),
    "absolute-path": (lambda: _with_manifest([("/etc/cron.d/evil", b"x")]), "absolute path"),
    "link": (_link, "symbolic link"),
    "device": (_device, "not a regular file"),
    "10000-entries": (lambda: _with_manifest([(f"assets/f{i}.txt", b"") for i in range(10_000)]), "entries"),
    "duplicate-names": (lambda: _with_manifest([("assets/ITEM.glb", b"x")]), "duplicate entry"),
    "truncated-glb": (lambda: _mesh_package(trimesh.Scene(trimesh.creation.box()).export(file_type="glb")[:200], "glb"), "cannot be read"),
    "nan-vertices": (lambda: _mesh_package(_nan_mesh(), "obj"), "non-finite"),
    "over-budget": (lambda: _mesh_package(_big_mesh(), "glb"), "over the budget"),
    "unknown-schema-version": (lambda: _manifest_only({**manifest("bad-lab", {"item": "assets/item.glb"}), "schema_version": 99}), "schema_version"),
    "missing-asset": (lambda: _zip([("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/gone.glb"})).encode())]), "missing from the package"),
    "object-missing-asset": (
        lambda: _manifest_only({**manifest("bad-lab", {"item": "assets/item.glb"}), "objects": [{"id": "o", "asset": "ghost"}]}),
        "not declared",
    ),
    "absurd-scale": (lambda: _mesh_package(trimesh.creation.box(extents=(1, 1, 1)).export(file_type="stl"), "stl", units="m", objects=[{"id": "o", "asset": "item", "transform": {"scale": [2000, 2000, 2000]}}]), "implausible"),
    "bad-texture": (lambda: _with_manifest([("assets/wood.png", b"\x89PNG not really")]), "not a readable"),
    "no-manifest": (lambda: _zip([("assets/item.glb", b"x")]), "no scene.json"),
    "not-a-zip": (lambda: b"this is not a zip file", "not a readable zip"),
    "invalid-json": (lambda: _zip([("scene.json", b"{ nope")]), "not valid JSON"),
    "bad-fields": (
        lambda: _manifest_only({**manifest("Bad Id!", {"item": "assets/item.glb"}), "units": "furlongs", "spawn_points": []}),
        "$.units",
    ),
}
