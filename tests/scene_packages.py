"""Scene packages built by the tests: good ones in every format, and a corpus of bad ones."""

from __future__ import annotations

import base64
import io
import json
import stat
import struct
import zipfile
import zlib
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


def _nested(depth: int) -> bytes:
    """scene.json with a reserved 'challenges' field nested ``depth`` arrays deep."""
    body = json.dumps(manifest("bad-lab", {"item": "assets/item.glb"}))
    return (body[:-1] + ', "challenges": {"version": 1, "items": ' + "[" * depth + "]" * depth + "}}").encode()


def _with_scene_json(raw: bytes) -> bytes:
    box = trimesh.Scene(trimesh.creation.box(extents=(0.1, 0.1, 0.1))).export(file_type="glb")
    return _zip([("scene.json", raw), ("assets/item.glb", box)])


def _many_small_zero_files(count: int = 200) -> bytes:
    """Entries of exactly 1 MiB of zeros: each sits at the per-entry ratio floor, together they expand ~1000:1."""
    return _with_manifest([(f"assets/zeros{i}.bin", b"\0" * (1024 * 1024)) for i in range(count)])


# Limits on the archive and on scene.json itself (scenes/safe_zip.py, scenes/manifest.py).
BAD.update(
    {
        "file-and-folder": (lambda: _with_manifest([("assets/item.glb/inner.txt", b"x")]), "also a file"),
        "long-utf8-folder": (lambda: _with_manifest([("assets/" + "ж" * 130 + "/a.txt", b"x")]), "longer than 255 bytes"),
        "empty-folder-name": (lambda: _with_manifest([("assets//x.txt", b"x")]), "empty folder name"),
        "small-entries-bomb": (_many_small_zero_files, "zip bomb"),
        "manifest-900-deep": (lambda: _with_scene_json(_nested(900)), "nested deeper than"),
        "manifest-5000-deep": (lambda: _with_scene_json(_nested(5000)), "nested deeper than"),
        "manifest-200000-deep": (lambda: _with_scene_json(_nested(200_000)), "nested deeper than"),
        "manifest-too-big": (
            lambda: _with_scene_json(_nested(1)[:-2] + b', "padding": "' + base64.b64encode(np.random.default_rng(0).bytes(1_600_000)) + b'"}}'),
            "byte limit for a manifest",
        ),
        "position-beyond-float32": (
            lambda: _manifest_only({**manifest("bad-lab", {"item": "assets/item.glb"}), "objects": [{"id": "o", "asset": "item", "transform": {"position": [1e39, 0, 0]}}]}),
            "$.objects[0].transform.position[0]",
        ),
        "zone-beyond-room": (
            lambda: _manifest_only({**manifest("bad-lab", {"item": "assets/item.glb"}), "zones": [{"id": "z", "shape": "box", "center": [0, 0, 0], "size": [1, 1e30, 1]}]}),
            "$.zones[0].size[1]",
        ),
    }
)


# Models and textures that declare more than they hold, or name what is not there
# (scenes/asset_check.py and the checks it runs, before trimesh loads anything).


def glb(gltf: dict[str, Any], binary: bytes = b"") -> bytes:
    """A GLB container around ``gltf`` and an optional BIN chunk, both padded as the spec says."""
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        body += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def box_gltf() -> tuple[dict[str, Any], bytes]:
    """A small box's glTF JSON and its binary buffer, to break in one place."""
    exported = trimesh.Scene(trimesh.creation.box(extents=(0.1, 0.1, 0.1))).export(file_type="glb")
    length = struct.unpack_from("<I", exported, 12)[0]
    return json.loads(exported[20 : 20 + length]), exported[28 + length :]


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (1 bit a pixel) but whose pixels are one row:
    small to upload, and gigabytes for a decoder that believes the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + (width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def _glb_package(model: bytes) -> bytes:
    return _zip([("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/item.glb"})).encode()), ("assets/item.glb", model)])


def _accessor_without_data(count: int = 30_000_000) -> bytes:
    """A GLB of a few hundred bytes whose POSITION accessor has a count but no bufferView:
    trimesh would allocate and zero-fill 30 million vertices (1 GB as float32, more as float64)."""
    gltf, binary = box_gltf()
    del gltf["accessors"][1]["bufferView"]
    gltf["accessors"][1]["count"] = count
    return _glb_package(glb(gltf, binary))


def _overlapping_strides(accessors: int = 64) -> bytes:
    """MAT4 accessors (64 bytes an element) strided 4 bytes apart over a 1 MB buffer: 1.1 GB decoded."""
    gltf, binary = box_gltf()
    gltf["buffers"][0]["byteLength"] = len(binary) + (1 << 20)
    gltf["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": 1 << 20, "byteStride": 4})
    view = len(gltf["bufferViews"]) - 1
    gltf["accessors"] += [{"componentType": 5126, "type": "MAT4", "bufferView": view, "count": (1 << 18) - 15} for _ in range(accessors)]
    return _glb_package(glb(gltf, binary + np.random.default_rng(0).bytes(1 << 20)))


def _many_full_accessors(accessors: int = 300) -> bytes:
    """Accessors that each fit their 1 MiB bufferView, but read it 300 times over: 300 MiB decoded."""
    gltf, binary = box_gltf()
    gltf["buffers"][0]["byteLength"] = len(binary) + (1 << 20)
    gltf["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": 1 << 20})
    view = len(gltf["bufferViews"]) - 1
    gltf["accessors"] += [{"componentType": 5126, "type": "MAT4", "bufferView": view, "count": 1 << 14} for _ in range(accessors)]
    return _glb_package(glb(gltf, binary + np.random.default_rng(0).bytes(1 << 20)))


def _view_past_bin() -> bytes:
    gltf, binary = box_gltf()
    gltf["bufferViews"][1]["byteLength"] += 4096
    return _glb_package(glb(gltf, binary))


def _embedded_png(width: int = 65535, height: int = 65535) -> bytes:
    """A GLB whose material's texture is an embedded PNG declaring 65535 x 65535 px."""
    gltf, binary = box_gltf()
    image = png_declaring(width, height)
    gltf["buffers"][0]["byteLength"] = len(binary) + len(image)
    gltf["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(image)})
    gltf["images"] = [{"bufferView": len(gltf["bufferViews"]) - 1, "mimeType": "image/png"}]
    gltf["textures"] = [{"source": 0}]
    gltf["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    gltf["meshes"][0]["primitives"][0]["material"] = 0
    return _glb_package(glb(gltf, binary + image))


def _gltf_uri(uri: str) -> bytes:
    """A .gltf whose buffer lives in a file named by ``uri``."""
    gltf, binary = box_gltf()
    gltf["buffers"][0]["uri"] = uri
    return _zip(
        [
            ("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/model.gltf"})).encode()),
            ("assets/model.gltf", json.dumps(gltf).encode()),
            ("assets/model.bin", binary),
        ]
    )


def _obj_with_mtl(mtl: str, *extra: tuple[str, bytes]) -> bytes:
    """A textured box as OBJ whose MTL reads ``mtl``, with ``extra`` files beside it."""
    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    uv = "\n".join("vt 0.5 0.5" for _ in box.vertices)
    faces = "\n".join("f " + " ".join(f"{i + 1}/{i + 1}" for i in face) for face in box.faces)
    obj = "mtllib item.mtl\n" + "\n".join(f"v {x:f} {y:f} {z:f}" for x, y, z in box.vertices) + "\n" + uv + "\nusemtl wood\n" + faces + "\n"
    return _zip(
        [
            ("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/item.obj"})).encode()),
            ("assets/item.obj", obj.encode()),
            ("assets/item.mtl", mtl.encode()),
            *extra,
        ]
    )


def _hull_objects(count: int) -> bytes:
    """``count`` objects with hull colliders sharing one smooth asset (10,242 vertices, all on its hull)."""
    sphere = trimesh.Scene(trimesh.creation.icosphere(subdivisions=5, radius=0.05)).export(file_type="glb")
    data = manifest("bad-lab", {"item": "assets/item.glb"})
    data["objects"] = [{"id": f"o{i}", "asset": "item", "collider": "hull", "transform": {"position": [i * 0.001, 1, 0]}} for i in range(count)]
    return _zip([("scene.json", json.dumps(data).encode()), ("assets/item.glb", sphere)])


def _placed_everywhere(nodes: int = 10_001) -> bytes:
    """One small box placed by 10,001 nodes: a few kilobytes of JSON, as many meshes in the scene."""
    gltf, binary = box_gltf()
    gltf["nodes"] = [{"mesh": 0, "translation": [i * 1e-4, 0, 0]} for i in range(nodes)]
    gltf["scenes"] = [{"nodes": list(range(nodes))}]
    return _glb_package(glb(gltf, binary))


def _ply_declaring(vertices: int) -> bytes:
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {vertices}\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
    return header.encode() + np.zeros(9, "<f4").tobytes() + struct.pack("<Biii", 3, 0, 1, 2)


BAD.update(
    {
        "gltf-accessor-without-bufferview": (_accessor_without_data, "has no bufferView"),
        "gltf-overlapping-strides": (_overlapping_strides, "would overlap"),
        "gltf-decodes-too-much": (_many_full_accessors, "decoding the models' glTF data"),
        "glb-view-past-bin-chunk": (_view_past_bin, "reaches byte"),
        "glb-embedded-huge-png": (_embedded_png, "65535x65535 px"),
        "gltf-uri-escapes": (lambda: _gltf_uri("../../etc/passwd"), "points outside the package"),
        "gltf-uri-missing": (lambda: _gltf_uri("other.bin"), "not in the package"),
        "gltf-uri-web": (lambda: _gltf_uri("http://example.com/model.bin"), "web address"),
        "texture-bomb": (lambda: _with_manifest([("assets/wood.png", png_declaring(20000, 20000))]), "20000x20000 px"),
        "obj-mtl-huge-texture": (lambda: _obj_with_mtl("newmtl wood\nmap_Kd big.png\n", ("assets/big.png", png_declaring(12000, 12000))), "12000x12000 px"),
        "obj-mtl-missing-texture": (lambda: _obj_with_mtl("newmtl wood\nmap_Kd wood.png\n"), "wood.png"),
        "obj-missing-mtl": (lambda: _zip([("scene.json", json.dumps(manifest("bad-lab", {"item": "assets/item.obj"})).encode()), ("assets/item.obj", b"mtllib gone.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")]), "gone.mtl"),
        "glb-named-stl": (lambda: _mesh_package(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"), "stl"), "this file is a GLB, not an STL"),
        "stl-named-ply": (lambda: _mesh_package(trimesh.creation.box().export(file_type="stl"), "ply"), "this file is an STL, not a PLY"),
        "stl-cut-short": (lambda: _mesh_package(trimesh.creation.box().export(file_type="stl")[:-10], "stl"), "is not an STL file"),
        "ply-counts-beyond-data": (lambda: _mesh_package(_ply_declaring(100_000_000)), "declares 100000000 'vertex'"),
        "hull-colliders-over-limit": (lambda: _hull_objects(1000), "hull colliders have"),
        "glb-places-too-many-meshes": (_placed_everywhere, "10001 meshes in the scene"),
        "mtl-too-many-materials": (lambda: _obj_with_mtl("".join(f"newmtl m{i}\nKd 1 1 1\n" for i in range(1001))), "1001 materials"),
    }
)
