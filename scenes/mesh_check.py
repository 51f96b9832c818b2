"""Check OBJ, STL and PLY models, and the files they name, before trimesh reads them.

What each format declares is distrusted and measured first:

- OBJ is text that trimesh holds whole, so its size is bounded (by the caller);
  its vertices and faces are counted from its 'v' and 'f' lines. The material
  library trimesh reads (the first 'mtllib') must be in the package, and so
  must every texture its 'map_Kd' lines name, as PNG or JPEG.
- STL: a binary STL's size must be 84 + 50 bytes per triangle of its header's
  count; an ASCII STL is text, bounded like OBJ, and its vertices are counted.
- PLY: the header is parsed (at most 64 KiB); the element counts it declares
  must fit in the bytes after it (every row takes at least its fixed-size
  properties in binary, two characters a property in ASCII); the texture a
  'TextureFile' comment names must be in the package.

Each texture's pixel size is read from its header for the package total; its
own limit and readability are checked once, with every texture file.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from scenes.images import header_size
from scenes.manifest import is_texture
from scenes.measure import Measure
from scenes.references import resolve
from scenes.report import Problem
from scenes.sniff import binary_stl_triangles

if TYPE_CHECKING:  # ingest imports this module
    from scenes.ingest import IngestLimits

_PLY_HEADER_BYTES = 64 * 1024
_PLY_TYPE_BYTES = {
    "char": 1, "uchar": 1, "int8": 1, "uint8": 1,
    "short": 2, "ushort": 2, "int16": 2, "uint16": 2, "float16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4,
    "int64": 8, "uint64": 8, "float64": 8, "double": 8,
}  # fmt: skip


def text_too_large(name: str, size: int, limits: IngestLimits) -> Problem | None:
    """Text models are parsed whole, in several copies at once: bound their size."""
    if size <= limits.max_text_bytes:
        return None
    return Problem(name, f"is {size} bytes of text, over the limit of {limits.max_text_bytes} for a text model file", "export the model as GLB (binary), or decimate it")


def _texture(root: Path, names: set[str], base: str, reference: str, where: str, line: str, limits: IngestLimits, measure: Measure) -> Problem | None:
    """A texture named by ``line`` of ``where``: it must be a PNG or JPEG file in the package."""
    target, why = resolve(base, reference, names, uri=False)
    if target is None:
        return Problem(where, f"its '{line}' names the texture {why}", f"add the texture to the package, or fix the '{line}' line (a file name relative to the model)")
    if not is_texture(target):
        return Problem(where, f"its '{line}' names {target}, which is not a PNG or JPEG file", "save the texture as PNG or JPEG")
    measure.textures.append(target)
    # one over the limit for a single image is refused with the texture files, not added up
    size = header_size(root / target)
    if size is not None and size[0] * size[1] <= limits.max_image_pixels:
        measure.image_pixels += size[0] * size[1]
    return None


def check_obj(root: Path, names: set[str], name: str, limits: IngestLimits, measure: Measure) -> list[Problem]:
    data = (root / name).read_bytes()
    measure.vertices += data.count(b"\nv ") + data.startswith(b"v ")
    measure.triangles += data.count(b"\nf ") + data.startswith(b"f ")
    # trimesh makes one mesh per material used
    measure.meshes += 1 + data.count(b"\nusemtl")
    # trimesh reads the rest of the line after the first 'mtllib' in the file, and only that library
    at = data.find(b"mtllib")
    if at < 0:
        return []
    end = data.find(b"\n", at)
    reference = data[at + 6 : end if end >= 0 else len(data)].decode("utf-8", "replace").strip()
    base = posixpath.dirname(name)
    mtl, why = resolve(base, reference, names, uri=False)
    if mtl is None:
        return [Problem(name, f"its 'mtllib' names the material library {why}", "add the MTL file to the package, or fix the 'mtllib' line")]
    too_large = text_too_large(mtl, (root / mtl).stat().st_size, limits)
    if too_large:
        return [too_large]
    problems = []
    for line in (root / mtl).read_bytes().decode("utf-8", "replace").splitlines():
        words = line.split()
        if words[:1] == ["newmtl"]:
            measure.materials += 1
        # trimesh resolves an MTL's textures from the OBJ's folder, as it does the MTL itself
        elif len(words) > 1 and words[0].lower() == "map_kd":
            problem = _texture(root, names, base, line[line.lower().index("map_kd") + 6 :].strip(), mtl, "map_Kd", limits, measure)
            if problem:
                problems.append(problem)
    return problems


def check_stl(root: Path, name: str, limits: IngestLimits, measure: Measure) -> list[Problem]:
    path = root / name
    size = path.stat().st_size
    with path.open("rb") as file:
        triangles = binary_stl_triangles(file.read(84), size)
    if triangles is not None:
        measure.triangles += triangles
        measure.vertices += 3 * triangles
        measure.meshes += 1
        return []
    too_large = text_too_large(name, size, limits)
    if too_large:
        return [too_large]
    text = path.read_bytes().lower()
    corners = text.count(b"vertex")
    measure.vertices += corners
    measure.triangles += corners // 3
    # one mesh for each 'solid ... endsolid'
    measure.meshes += max(1, text.count(b"endsolid"))
    return []


def _ply_header(name: str, head: bytes) -> tuple[bool, dict[str, list[int]], str | None, int] | Problem:
    """A PLY header read the way trimesh reads it: line by line up to the first line with the
    word 'end_header', an element wherever the first word contains 'element', and so on.

    Returns whether it is ASCII; per element its count and the fewest bytes a row takes (in
    binary its fixed-size properties and list counts, in ASCII two characters a property);
    the texture it names; and where its data starts.
    """
    lines = head.split(b"\n")
    fmt = lines[1].decode("utf-8", "replace").split() if len(lines) > 1 else []
    if len(fmt) != 3 or fmt[0] != "format" or fmt[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
        return Problem(name, f"its PLY format line is {' '.join(fmt)!r}, not ascii or binary", "export the model again as PLY")
    ascii = fmt[1] == "ascii"
    elements: dict[str, list[int]] = {}
    texture = None
    start = len(lines[0]) + len(lines[1]) + 2
    # the last piece has no newline after it: the header did not end within ``head``
    for raw in lines[2:-1]:
        start += len(raw) + 1
        line = raw.decode("utf-8", "replace").strip()
        words = line.split()
        if "end_header" in words:
            return ascii, elements, texture, start
        if not words:
            return Problem(name, "its PLY header has an empty line", "export the model again as PLY")
        if "element" in words[0]:
            if len(words) != 3 or not words[2].isdigit():
                return Problem(name, f"its PLY header has an element line ingest cannot read: {line!r}", "export the model again as PLY")
            elements[words[1]] = [int(words[2]), 0]
        elif "property" in words[0] and (len(words) == 3 or (len(words) > 1 and "list" in words[1])):
            kinds = words[1:2] if len(words) == 3 else words[2:4]
            if not elements or len(words) not in (3, 5) or any(kind not in _PLY_TYPE_BYTES for kind in kinds):
                return Problem(name, f"its PLY header has a property line ingest cannot read: {line!r}", "export the model again as PLY")
            elements[list(elements)[-1]][1] += 2 if ascii else _PLY_TYPE_BYTES[kinds[0]]
        elif "texturefile" in line.lower():
            texture = line[line.lower().index("texturefile") + 11 :].strip()
    return Problem(name, f"its PLY header does not end ('end_header') within {len(head)} bytes", "export the model again as PLY")


def check_ply(root: Path, names: set[str], name: str, limits: IngestLimits, measure: Measure) -> list[Problem]:
    path = root / name
    size = path.stat().st_size
    with path.open("rb") as file:
        header = _ply_header(name, file.read(_PLY_HEADER_BYTES))
    if isinstance(header, Problem):
        return [header]
    ascii, elements, texture, start = header
    if ascii:
        too_large = text_too_large(name, size, limits)
        if too_large:
            return [too_large]
    needed = sum(count * row for count, row in elements.values())
    if needed > size - start:
        counts = " and ".join(f"{count} '{element}'" for element, (count, _) in elements.items())
        return [
            Problem(
                name,
                f"its PLY header declares {counts} elements, which need at least {needed} bytes, but the file has {size - start} after the header",
                "export the model again as PLY (the file is cut short or its header is wrong)",
            )
        ]
    measure.vertices += elements.get("vertex", [0])[0]
    measure.triangles += elements.get("face", [0])[0]
    measure.meshes += 1
    if texture is None:
        return []
    problem = _texture(root, names, posixpath.dirname(name), texture, name, "TextureFile", limits, measure)
    return [problem] if problem else []
