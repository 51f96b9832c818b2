"""What a model file really is, from its first bytes, whatever its name says.

trimesh picks its loader by the extension, so a GLB renamed .stl is read as an
ASCII STL and fails somewhere deep inside with a message about text encodings.
Checking the content first gives the designer the one fix that matters: the
right extension.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: how many leading bytes ``sniff`` needs
HEAD_BYTES = 84

#: each format's name in a sentence
NAMED = {
    "glb": "a GLB",
    "gltf": "a glTF (JSON)",
    "obj": "an OBJ",
    "stl": "an STL",
    "ply": "a PLY",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "zip": "a zip archive",
    "fbx": "an FBX",
    "blend": "a Blender file",
}

_MAGIC = (
    (b"glTF", "glb"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"PK\x03\x04", "zip"),
    (b"Kaydara FBX Binary", "fbx"),
    (b"BLENDER", "blend"),
)


def binary_stl_triangles(head: bytes, size: int) -> int | None:
    """The triangle count of a binary STL of ``size`` bytes starting with ``head``, or None if it is not one:
    a binary STL is an 80-byte header, a triangle count, and 50 bytes per triangle."""
    if size < 84 or len(head) < 84:
        return None
    (count,) = struct.unpack_from("<I", head, 80)
    return count if 84 + 50 * count == size else None


def sniff(path: Path) -> str | None:
    """The format the file holds (a key of NAMED), or None when it has no signature (OBJ is plain text)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if binary_stl_triangles(head, size) is not None:
        return "stl"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith((b"ply\n", b"ply\r\n")):
        return "ply"
    if text.startswith(b"{"):
        return "gltf"
    if text[:5].lower() == b"solid":
        return "stl"
    return None


def mismatch(path: Path, kind: str) -> tuple[str, str] | None:
    """What is wrong and the fix, when the file's content is not the ``kind`` its extension says."""
    real = sniff(path)
    if real == kind or (real is None and kind == "obj"):
        return None
    if real is None and kind == "stl":
        return (
            "is not an STL file: a binary STL is 84 bytes plus 50 for each triangle its header counts, an ASCII STL starts with 'solid'",
            "export the model again as STL (this one may be cut short)",
        )
    if real is None:
        return f"is not {NAMED[kind]} file: it does not start the way {NAMED[kind]} file does", f"export the model again as {kind.upper()}"
    if real in ("glb", "gltf", "obj", "stl", "ply"):
        return f"this file is {NAMED[real]}, not {NAMED[kind]}", f"rename it to .{real} (and its path in scene.json)"
    return f"this file is {NAMED[real]}, not {NAMED[kind]} model", "export the model as GLB, glTF, OBJ, STL or PLY"
