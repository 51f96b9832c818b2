"""The phone variant of a lab: the client GLB made small enough for a phone on a weak link.

A student on a phone over 1 Mbit/s (125 KB/s) should see the lab in under 30 s,
page included, so the variant has its own budget (PhoneBudget). It is made from
the GLB ingest exported for desktops and headsets, which stays as it is; its
nodes, names, materials and transforms are kept, so the client binds it to the
room's objects the same way. In this order:

1. triangles: when the lab's triangles (each mesh counted once for every node
   that shows it, as the desktop budget counts them) pass the budget, every
   primitive of more than ``keep_triangles`` is decimated by one ratio
   (fast-simplification's quadric decimation). Each vertex left takes the
   normal, texture coordinates and colour of the nearest original vertex that
   collapsed into it, so flat colours stay flat;
2. textures: each image is scaled to at most ``texture_px`` a side and saved as
   JPEG, or PNG where it has transparency;
3. geometry: every primitive is compressed with Draco (KHR_draco_mesh_compression,
   encoded by DracoPy), which three.js's GLTFLoader decodes through DRACOLoader
   with the decoder files of the ``three`` npm package. Each compressed
   primitive is decoded back here: its accessors are declared from what the
   decoder really yields (counts, the attribute ids, the bounds).

Only what ingest exports is read (triangles; POSITION, NORMAL, TEXCOORD_0 and
COLOR_0; no animation or skin). Anything else, or bytes that do not hold
together, raises PhoneVariantError with one sentence; the size is what it is,
and ``PhoneVariant.over_budget`` says in words what still passes the budget.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import DracoPy
import fast_simplification
import numpy as np
from PIL import Image

from scenes import glb as glb_container


@dataclass(frozen=True)
class PhoneBudget:
    """What a phone on a 1 Mbit/s link gets: the file in about 16 s, leaving the rest of 30 s to the page."""

    triangles: int = 30_000
    texture_px: int = 512
    file_bytes: int = 2 * 1024 * 1024
    #: primitives this small (a box, a label) are kept whole: decimating them saves nothing and breaks their shape
    keep_triangles: int = 64
    #: no primitive is decimated below this fraction of its triangles, whatever the budget asks
    min_ratio: float = 0.02
    #: Draco quantization bits: positions (14 bits is 0.06 mm across a 1 m part), normals, texture coordinates
    position_bits: int = 14
    normal_bits: int = 10
    texcoord_bits: int = 12
    #: Draco effort, 0 (fastest) to 10 (smallest)
    compression_level: int = 7
    jpeg_quality: int = 80


@dataclass(frozen=True)
class PhoneVariant:
    glb: bytes
    #: triangles as placed (each mesh once per node that shows it), before and after decimation
    triangles_before: int
    triangles: int
    #: the longest side of any texture in the variant
    texture_px: int
    #: what is still over the budget, one sentence each (empty: within it)
    over_budget: list[str] = field(default_factory=list)


class PhoneVariantError(ValueError):
    """The GLB holds something the phone variant cannot be made of; the message says what."""


_DRACO = "KHR_draco_mesh_compression"
_TRIANGLES = 4
_UNSIGNED_BYTE, _UNSIGNED_SHORT, _UNSIGNED_INT, _FLOAT = 5121, 5123, 5125, 5126
_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
#: glTF attribute -> (Draco attribute type, as DracoPy numbers them, the accessor's type)
_ATTRIBUTES = {"POSITION": (0, "VEC3"), "NORMAL": (1, "VEC3"), "COLOR_0": (2, "VEC4"), "TEXCOORD_0": (3, "VEC2")}


def make(glb: bytes, budget: PhoneBudget | None = None) -> PhoneVariant:
    """The phone variant of a client GLB (module docstring); PhoneVariantError if it cannot be made."""
    budget = budget or PhoneBudget()
    try:
        gltf, binary = glb_container.split(glb)
    except glb_container.GlbError as exc:
        raise PhoneVariantError(f"the lab's GLB {exc}") from None
    for unsupported in ("animations", "skins"):
        if gltf.get(unsupported):
            raise PhoneVariantError(f"the lab's GLB has {unsupported}, which the phone variant does not carry")
    try:
        return _make(gltf, memoryview(binary), budget)
    except PhoneVariantError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # numbers that do not fit the bytes or each other
        raise PhoneVariantError(f"the lab's GLB does not hold together ({type(exc).__name__}: {exc})") from None


def _make(gltf: dict[str, Any], binary: memoryview, budget: PhoneBudget) -> PhoneVariant:
    meshes = gltf.get("meshes") or []
    shown = np.bincount([node["mesh"] for node in gltf.get("nodes") or () if "mesh" in node], minlength=len(meshes))
    primitives = [[_read_primitive(gltf, binary, prim) for prim in mesh["primitives"]] for mesh in meshes]
    before = sum(int(shown[m]) * len(faces) for m, prims in enumerate(primitives) for _, faces in prims)
    ratio = _ratio(primitives, shown, before, budget)
    out = _Writer()
    accessors: list[dict[str, Any]] = []
    after = 0
    for m, (mesh, prims) in enumerate(zip(meshes, primitives)):
        for prim, (attributes, faces) in zip(mesh["primitives"], prims):
            if ratio < 1 and len(faces) > budget.keep_triangles:
                attributes, faces = _decimate(attributes, faces, max(budget.keep_triangles, math.ceil(len(faces) * ratio)))
            after += int(shown[m]) * len(faces)
            _compress(prim, attributes, faces, budget, out, accessors)
    largest = 0
    for image in gltf.get("images") or ():
        if "bufferView" in image:
            data, mime, side = _shrink(_view(gltf, binary, image["bufferView"]), budget)
            image.update(bufferView=out.add(data), mimeType=mime)
            largest = max(largest, side)
    gltf["accessors"], gltf["bufferViews"] = accessors, out.views
    gltf["buffers"] = [{"byteLength": len(out.data)}] if out.data else []
    for key in ("extensionsUsed", "extensionsRequired"):
        gltf[key] = sorted({*gltf.get(key, ()), _DRACO})
    glb = glb_container.join(gltf, bytes(out.data))
    over = []
    if len(glb) > budget.file_bytes:
        over.append(f"is {len(glb)} bytes, over the phone budget of {budget.file_bytes}: shrink textures or decimate the largest meshes")
    if after > budget.triangles:
        over.append(f"has {after} triangles, over the phone budget of {budget.triangles}: many small meshes cannot be decimated; merge them")
    return PhoneVariant(glb, before, after, largest, over)


def _ratio(primitives: list[list[tuple[dict[str, np.ndarray], np.ndarray]]], shown: np.ndarray, total: int, budget: PhoneBudget) -> float:
    """The fraction of triangles each decimated primitive keeps so the lab fits the budget."""
    if total <= budget.triangles:
        return 1.0
    small = sum(int(shown[m]) * len(faces) for m, prims in enumerate(primitives) for _, faces in prims if len(faces) <= budget.keep_triangles)
    large = total - small
    return min(1.0, max(budget.min_ratio, (budget.triangles - small) / large)) if large else 1.0


def _read_primitive(gltf: dict[str, Any], binary: memoryview, prim: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if prim.get("mode", _TRIANGLES) != _TRIANGLES:
        raise PhoneVariantError("the lab's GLB has a primitive that is not triangles")
    if prim.get("targets") or prim.get("extensions"):
        raise PhoneVariantError("the lab's GLB has morph targets or compressed primitives already")
    attributes = {name: _accessor(gltf, binary, index) for name, index in prim["attributes"].items() if name in _ATTRIBUTES}
    if "POSITION" not in attributes:
        raise PhoneVariantError("the lab's GLB has a primitive without positions")
    count = len(attributes["POSITION"])
    if any(len(values) != count for values in attributes.values()):
        raise PhoneVariantError("the lab's GLB has a primitive whose attributes differ in length")
    if "indices" in prim:
        faces = _accessor(gltf, binary, prim["indices"]).reshape(-1).astype(np.int64)
    else:
        faces = np.arange(count, dtype=np.int64)
    if len(faces) % 3 or (len(faces) and (faces.min() < 0 or faces.max() >= count)):
        raise PhoneVariantError("the lab's GLB has triangles that point at missing vertices")
    return attributes, faces.reshape(-1, 3)


def _accessor(gltf: dict[str, Any], binary: memoryview, index: int) -> np.ndarray:
    """An accessor's values as float64 rows (normalized integers scaled to 0..1; COLOR_0 kept as read)."""
    accessor = gltf["accessors"][index]
    if "sparse" in accessor or "bufferView" not in accessor:
        raise PhoneVariantError("the lab's GLB has a sparse or empty accessor")
    dtype = np.dtype(_DTYPES[accessor["componentType"]]).newbyteorder("<")
    width = _COMPONENTS[accessor["type"]]
    view = gltf["bufferViews"][accessor["bufferView"]]
    stride = view.get("byteStride") or dtype.itemsize * width
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    count = accessor["count"]
    end = start + (stride * (count - 1) + dtype.itemsize * width if count else 0)
    if end > view.get("byteOffset", 0) + view["byteLength"] or end > len(binary):
        raise PhoneVariantError("the lab's GLB has an accessor that runs past its data")
    values = np.ndarray((count, width), dtype, buffer=binary, offset=start, strides=(stride, dtype.itemsize)).copy()
    if accessor.get("normalized") and values.dtype.kind in "iu":
        return values / np.iinfo(values.dtype).max
    return values.astype(np.float64)


def _view(gltf: dict[str, Any], binary: memoryview, index: int) -> bytes:
    view = gltf["bufferViews"][index]
    start = view.get("byteOffset", 0)
    if start + view["byteLength"] > len(binary):
        raise PhoneVariantError("the lab's GLB has an image that runs past its data")
    return bytes(binary[start : start + view["byteLength"]])


def _decimate(attributes: dict[str, np.ndarray], faces: np.ndarray, target: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """About ``target`` triangles; the other attributes follow the nearest original vertex (module docstring)."""
    positions = attributes["POSITION"]
    _, _, collapses = fast_simplification.simplify(positions, faces, target_count=target, return_collapses=True)
    points, kept, mapping = fast_simplification.replay_simplification(positions.astype(np.float32), faces.astype(np.int32), collapses)
    distance = np.linalg.norm(positions - points[mapping], axis=1)
    order = np.lexsort((distance, mapping))
    first = np.r_[True, mapping[order][1:] != mapping[order][:-1]]
    nearest = np.empty(len(points), dtype=np.int64)
    nearest[mapping[order][first]] = order[first]
    out = {name: values[nearest] for name, values in attributes.items()}
    out["POSITION"] = np.asarray(points, dtype=np.float64)
    return out, np.asarray(kept, dtype=np.int64).reshape(-1, 3)


def _compress(prim: dict[str, Any], attributes: dict[str, np.ndarray], faces: np.ndarray, budget: PhoneBudget, out: "_Writer", accessors: list[dict[str, Any]]) -> None:
    """Replace a primitive's data by one Draco buffer, and declare its accessors from the buffer decoded back."""
    normals = attributes.get("NORMAL")
    colours = attributes.get("COLOR_0")
    encoded = DracoPy.encode(
        attributes["POSITION"],
        faces,
        quantization_bits=budget.position_bits,
        compression_level=budget.compression_level,
        normals=normals,
        normal_quantization_bits=budget.normal_bits if normals is not None else None,
        tex_coord=attributes.get("TEXCOORD_0"),
        tex_coord_quantization_bits=budget.texcoord_bits if "TEXCOORD_0" in attributes else None,
        colors=None if colours is None else _bytes_rgba(colours),
    )
    decoded = DracoPy.decode(encoded)
    ids = {}
    prim["attributes"] = {}
    for name in attributes:
        kind, accessor_type = _ATTRIBUTES[name]
        found = decoded.get_attribute_by_type(kind)
        if found is None:
            raise PhoneVariantError(f"the Draco encoder dropped the {name} of a primitive")
        ids[name] = found["unique_id"]
        accessor: dict[str, Any] = {"count": len(decoded.points), "type": accessor_type, "componentType": _FLOAT}
        if name == "POSITION":
            accessor.update(min=decoded.points.min(axis=0).tolist(), max=decoded.points.max(axis=0).tolist())
        if name == "COLOR_0":
            accessor.update(componentType=_UNSIGNED_BYTE, normalized=True)
        prim["attributes"][name] = len(accessors)
        accessors.append(accessor)
    prim["indices"] = len(accessors)
    accessors.append({"count": int(decoded.faces.size), "type": "SCALAR", "componentType": _UNSIGNED_INT if len(decoded.points) > 65535 else _UNSIGNED_SHORT})
    prim["extensions"] = {_DRACO: {"bufferView": out.add(encoded), "attributes": ids}}


def _bytes_rgba(colours: np.ndarray) -> np.ndarray:
    """Colours (0..1, as glTF's COLOR_0 is read) as the uint8 RGBA the variant declares."""
    rgba = colours if colours.shape[1] == 4 else np.column_stack([colours, np.ones(len(colours))])
    return np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8)


def _shrink(data: bytes, budget: PhoneBudget) -> tuple[bytes, str, int]:
    """An image at most ``texture_px`` a side: JPEG, or PNG if it has transparency; its longest side."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image.thumbnail((budget.texture_px, budget.texture_px), Image.Resampling.LANCZOS)
            clear = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            picture = image.convert("RGBA" if clear else "RGB")
    except Exception as exc:  # PIL raises many types for what is not an image
        raise PhoneVariantError(f"the lab's GLB has an image that cannot be read ({type(exc).__name__})") from None
    if clear and picture.getchannel("A").getextrema()[0] == 255:
        picture, clear = picture.convert("RGB"), False
    saved = io.BytesIO()
    if clear:
        picture.save(saved, format="PNG", optimize=True)
    else:
        picture.save(saved, format="JPEG", quality=budget.jpeg_quality, optimize=True)
    return saved.getvalue(), "image/png" if clear else "image/jpeg", max(picture.size)


class _Writer:
    """The variant's one buffer: each piece 4-byte aligned in its own bufferView."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict[str, Any]] = []

    def add(self, piece: bytes) -> int:
        self.data += b"\x00" * (-len(self.data) % 4)
        self.views.append({"buffer": 0, "byteOffset": len(self.data), "byteLength": len(piece)})
        self.data += piece
        return len(self.views) - 1
