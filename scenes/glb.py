"""The GLB container: a glTF's JSON chunk and its binary chunk, split apart and joined again.

Only for GLBs ingest wrote itself (the client GLB and its phone variant):
what a designer uploads is checked first by scenes.gltf_check.
"""

from __future__ import annotations

import json
from typing import Any

from scenes.gltf_check import CHUNK_HEADER, GLB_HEADER

_MAGIC, _VERSION = b"glTF", 2
_JSON, _BIN = b"JSON", b"BIN\x00"


class GlbError(ValueError):
    """The bytes are not a GLB this module can split."""


def split(glb: bytes) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON and the BIN chunk (empty if there is none)."""
    if len(glb) < GLB_HEADER.size + CHUNK_HEADER.size:
        raise GlbError(f"is {len(glb)} bytes, too short for a GLB")
    magic, version, length = GLB_HEADER.unpack_from(glb)
    if magic != _MAGIC or version != _VERSION or length != len(glb):
        raise GlbError("has no GLB version 2 header matching its length")
    size, kind = CHUNK_HEADER.unpack_from(glb, GLB_HEADER.size)
    start = GLB_HEADER.size + CHUNK_HEADER.size
    if kind != _JSON or start + size > len(glb):
        raise GlbError("has no JSON chunk first")
    try:
        gltf = json.loads(glb[start : start + size])
    except ValueError as exc:
        raise GlbError(f"has a JSON chunk that does not parse ({exc})") from None
    if not isinstance(gltf, dict):
        raise GlbError("has a JSON chunk that is not an object")
    rest = start + size
    if rest + CHUNK_HEADER.size > len(glb):
        return gltf, b""
    size, kind = CHUNK_HEADER.unpack_from(glb, rest)
    if kind != _BIN or rest + CHUNK_HEADER.size + size > len(glb):
        raise GlbError("has a second chunk that is not a BIN chunk inside the file")
    return gltf, glb[rest + CHUNK_HEADER.size : rest + CHUNK_HEADER.size + size]


def join(gltf: dict[str, Any], binary: bytes) -> bytes:
    """A GLB of the JSON (padded with spaces) and the binary chunk (padded with zeros), as the spec pads them."""
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    body = CHUNK_HEADER.pack(len(text), _JSON) + text
    if binary:
        binary += b"\x00" * (-len(binary) % 4)
        body += CHUNK_HEADER.pack(len(binary), _BIN) + binary
    return GLB_HEADER.pack(_MAGIC, _VERSION, GLB_HEADER.size + len(body)) + body
