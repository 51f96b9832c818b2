"""Check a glTF or GLB model's structure before trimesh reads it.

trimesh trusts the numbers a glTF declares: it allocates every accessor's
count x element size (zeros when the accessor has no bufferView), copies every
bufferView out of its buffer, and opens every image, so a 580-byte file can ask
for gigabytes. Here the JSON is read on its own and every number is checked
against the bytes really there, in this order; a stage with problems stops the
check of that model, since the later stages rely on it:

1. the GLB container: magic, version 2, total length, chunks that fit in the
   file (JSON first, then an optional BIN chunk);
2. the JSON: its size and its number of values, bounded before it is parsed;
   an object with ``asset.version`` 2.x, whose top-level lists hold objects;
3. buffers: a ``uri`` that is a base64 ``data:`` URI or a file inside the
   package (references.resolve), or in a GLB the BIN chunk; the declared
   ``byteLength`` must be what is really there;
4. bufferViews: inside their buffer, ``byteStride`` as the spec allows;
5. accessors: a known type, a bufferView (trimesh zero-fills the others and
   ignores ``sparse``), and count x element size, with the stride, inside it;
6. meshes: every attribute and index an accessor that exists, POSITION a VEC3
   and indices a SCALAR;
7. images: inside the package or the file, and readable; their pixel size is
   read from the header only.

What passes is measured for the package-wide limits: vertices and triangles
of every primitive, the bytes trimesh holds while decoding, image pixels.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenes.images import header_size, size_problem
from scenes.manifest import is_texture
from scenes.measure import Measure
from scenes.references import resolve
from scenes.report import Problem

if TYPE_CHECKING:  # ingest imports this module
    from scenes.ingest import IngestLimits

GLB_HEADER = struct.Struct("<4sII")
CHUNK_HEADER = struct.Struct("<I4s")
_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES, _STRIP, _FAN = 4, 5, 6
#: the top-level lists of a glTF, each a list of objects
_LISTS = ("accessors", "animations", "bufferViews", "buffers", "cameras", "images", "materials", "meshes", "nodes", "samplers", "scenes", "skins", "textures")
_REEXPORT = "re-export the model from your modelling tool (its numbers do not match its data)"
_INSIDE = "put the file in the package and refer to it by a path relative to the model"
#: this many problems that differ only in which accessor (view, ...) they are about are reported apart
_APART = 3


class _Bad(Exception):
    """One thing wrong with one part of the model, in the designer's words, and its fix."""

    def __init__(self, what: str, fix: str = _REEXPORT) -> None:
        super().__init__(what)
        self.fix = fix


def _int(item: dict[str, Any], key: str, default: int | None = None, minimum: int = 0) -> int:
    value = item.get(key, default)
    if type(value) is not int or value < minimum:
        raise _Bad(f"'{key}' is {value!r}, not a whole number of at least {minimum}" if key in item else f"has no '{key}'")
    return value


def _index(item: dict[str, Any], key: str, length: int, what: str) -> int:
    value = item.get(key)
    if type(value) is not int or not 0 <= value < length:
        raise _Bad(f"'{key}' is {value!r}, but the model has {length} {what}")
    return value


def _entries(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = parent.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _Bad(f"'{key}' is not a list of objects")
    return value


class _Model:
    """One glTF's JSON and where its buffers' bytes are, as the checks go."""

    def __init__(self, root: Path, names: set[str], name: str, kind: str, limits: IngestLimits) -> None:
        self.root, self.names, self.name, self.limits = root, names, name, limits
        self.label = kind.upper()
        self.base = posixpath.dirname(name)
        self.path = root / name
        self.problems: list[Problem] = []
        self.gltf: dict[str, Any] = {}
        #: the BIN chunk's (offset, length) in a GLB
        self.bin_chunk: tuple[int, int] | None = None
        #: per buffer: a package file, or the BIN chunk (None), or decoded data: URI bytes
        self.sources: list[str | bytes | None] = []
        self.buffer_lengths: list[int] = []
        #: per bufferView: buffer, byteOffset, byteLength
        self.view_ranges: list[tuple[int, int, int]] = []
        #: bytes trimesh will hold for this model while decoding it
        self.decoded = 0

    def refuse(self, part: str, what: str, fix: str = _REEXPORT) -> None:
        self.problems.append(Problem(f"{self.name} {part}".rstrip(), what, fix))

    def grouped(self) -> list[Problem]:
        """The problems, those that differ only in the index of the part they are about as one
        (a broken exporter repeats the same mistake on every accessor)."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for problem in self.problems:
            prefix, _, index = problem.where.rpartition(" ")
            key = (prefix, problem.what, problem.fix) if index.isdigit() else (problem.where, problem.what, problem.fix)
            groups.setdefault(key, []).append(index if index.isdigit() else "")
        problems = []
        for (where, what, fix), indexes in groups.items():
            if len(indexes) > _APART:
                shown = ", ".join(indexes[:_APART])
                problems.append(Problem(f"{where}s {shown} and {len(indexes) - _APART} more", what, fix))
            else:
                problems += [Problem(f"{where} {index}".rstrip(), what, fix) for index in indexes]
        return problems

    def unreadable(self, what: str, fix: str = _REEXPORT) -> None:
        self.problems.append(Problem(self.name, f"cannot be read as {self.label}: {what}", fix))

    # 1 and 2 ------------------------------------------------------------------

    def read_container(self) -> bytes | None:
        """The JSON bytes of a GLB, with its BIN chunk located; None if the container is broken."""
        size = self.path.stat().st_size
        with self.path.open("rb") as file:
            head = file.read(GLB_HEADER.size)
            if len(head) < GLB_HEADER.size:
                self.unreadable(f"the file is {size} bytes, too short for a GLB header")
                return None
            _, version, length = GLB_HEADER.unpack(head)
            if version != 2:
                self.unreadable(f"it is GLB version {version}; only glTF 2.0 is read", "export the model as glTF 2.0 (GLB)")
                return None
            if length != size:
                self.unreadable(f"its header says {length} bytes, but the file has {size} (cut short or padded?)")
                return None
            chunks: list[tuple[bytes, int, int]] = []
            offset = GLB_HEADER.size
            # trimesh reads every chunk to the end of the file, so every one must fit
            while offset + CHUNK_HEADER.size <= size:
                chunk_length, kind = CHUNK_HEADER.unpack(file.read(CHUNK_HEADER.size))
                start = offset + CHUNK_HEADER.size
                if start + chunk_length > size:
                    self.unreadable(f"chunk {len(chunks)} declares {chunk_length} bytes, past the end of the file")
                    return None
                chunks.append((kind, start, chunk_length))
                offset = start + chunk_length
                file.seek(offset)
            if not chunks or chunks[0][0] != b"JSON":
                self.unreadable("it does not start with a JSON chunk")
                return None
            if chunks[0][2] > self.limits.max_text_bytes:
                self.refuse("", f"its JSON chunk is {chunks[0][2]} bytes, over the limit of {self.limits.max_text_bytes}", "keep geometry and images in the binary chunk")
                return None
            if len(chunks) > 1 and chunks[1][0] == b"BIN\x00":
                self.bin_chunk = chunks[1][1:]
            file.seek(chunks[0][1])
            return file.read(chunks[0][2])

    def parse(self, raw: bytes) -> bool:
        # every value but the first in an array or object follows a comma, so this bounds
        # the values (and the memory) json.loads will make, without parsing
        values = raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1
        if values > self.limits.max_json_values:
            self.refuse(
                "", f"its glTF JSON has up to {values} values, over the limit of {self.limits.max_json_values}", "export the model as GLB, with geometry in the binary chunk"
            )
            return False
        try:
            gltf = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.unreadable("its JSON is not UTF-8 text")
            return False
        except (ValueError, RecursionError) as exc:
            self.unreadable(f"its JSON is not valid ({str(exc)[:120] or 'nested too deeply'})")
            return False
        if not isinstance(gltf, dict):
            self.unreadable("its JSON is not an object")
            return False
        asset = gltf.get("asset")
        version = asset.get("version") if isinstance(asset, dict) else None
        if not isinstance(version, str) or not version.startswith("2."):
            said = f"it is glTF version {version!r}" if version is not None else "it has no 'asset.version', which glTF 2.0 requires"
            self.unreadable(f"{said}; only glTF 2.0 is read", "export the model as glTF 2.0")
            return False
        broken = [key for key in _LISTS if not isinstance(gltf.get(key, []), list) or not all(isinstance(item, dict) for item in gltf.get(key, []))]
        if broken:
            self.unreadable(f"its {', '.join(repr(key) for key in broken)} must {'each ' if len(broken) > 1 else ''}be a list of objects")
            return False
        self.gltf = gltf
        return True

    # 3 and 4 ------------------------------------------------------------------

    def check_buffers(self) -> None:
        for i, buffer in enumerate(_entries(self.gltf, "buffers")):
            try:
                declared = _int(buffer, "byteLength", minimum=1)
                actual, source = self._buffer_source(i, buffer)
                # the BIN chunk is the buffer padded to a multiple of 4 bytes
                if source is None and not declared <= actual <= declared + 3:
                    raise _Bad(f"declares {declared} bytes, but the GLB's binary chunk holds {actual}")
                if actual < declared:
                    raise _Bad(f"declares {declared} bytes, but its data holds only {actual}")
            except _Bad as bad:
                self.refuse(f"buffer {i}", str(bad), bad.fix)
                continue
            self.buffer_lengths.append(declared)
            self.sources.append(source)
            self.decoded += actual

    def _buffer_source(self, i: int, buffer: dict[str, Any]) -> tuple[int, str | bytes | None]:
        uri = buffer.get("uri")
        if uri is None:
            if self.bin_chunk is None or i != 0:
                raise _Bad("has no 'uri'" + (" (only buffer 0 of a GLB may use its binary chunk)" if self.bin_chunk else ""))
            return self.bin_chunk[1], None
        if not isinstance(uri, str):
            raise _Bad("'uri' is not text")
        if uri.startswith("data:"):
            data = _data_uri(uri)
            return len(data), data
        target, why = resolve(self.base, uri, self.names, uri=True)
        if target is None:
            raise _Bad(f"names {why}", _INSIDE)
        return (self.root / target).stat().st_size, target

    def check_views(self) -> None:
        for i, view in enumerate(_entries(self.gltf, "bufferViews")):
            try:
                buffer = _index(view, "buffer", len(self.buffer_lengths), "buffers")
                offset, length = _int(view, "byteOffset", 0), _int(view, "byteLength", minimum=1)
                if offset + length > self.buffer_lengths[buffer]:
                    raise _Bad(f"reaches byte {offset + length} of buffer {buffer}, which has {self.buffer_lengths[buffer]}")
                stride = view.get("byteStride")
                if stride is not None and (type(stride) is not int or not 4 <= stride <= 252 or stride % 4):
                    raise _Bad(f"'byteStride' is {stride!r}; glTF allows a multiple of 4 from 4 to 252")
            except _Bad as bad:
                self.refuse(f"bufferView {i}", str(bad))
                continue
            self.view_ranges.append((buffer, offset, length))
            self.decoded += length

    # 5 and 6 ------------------------------------------------------------------

    def check_accessors(self) -> list[tuple[int, str]]:
        """Every accessor's count (0 for a refused one) and type."""
        counts = []
        used = self.gltf.get("extensionsUsed")
        draco = isinstance(used, list) and "KHR_draco_mesh_compression" in used
        views = _entries(self.gltf, "bufferViews")
        for i, accessor in enumerate(_entries(self.gltf, "accessors")):
            counts.append((0, ""))
            try:
                component = accessor.get("componentType")
                shape = accessor.get("type")
                if type(component) is not int or component not in _COMPONENT_BYTES or not isinstance(shape, str) or shape not in _COMPONENTS:
                    raise _Bad(f"has componentType {component!r} and type {shape!r}, which glTF does not define")
                count = _int(accessor, "count", minimum=1)
                if "sparse" in accessor:
                    raise _Bad("uses sparse storage, which ingest does not read (its values would be lost)")
                if "bufferView" not in accessor:
                    fix = "export without Draco mesh compression" if draco else _REEXPORT
                    self.refuse(f"accessor {i}", f"has no bufferView, so it holds no data: its {count} values would all be zero", fix)
                    continue
                view = _index(accessor, "bufferView", len(self.view_ranges), "bufferViews")
                element = _COMPONENTS[shape] * _COMPONENT_BYTES[component]
                offset = _int(accessor, "byteOffset", 0)
                stride = views[view].get("byteStride")
                if stride is not None and stride < element:
                    raise _Bad(f"has {element}-byte elements, but bufferView {view} has a byteStride of {stride}: they would overlap")
                end = offset + (count - 1) * (stride or element) + element
                if end > self.view_ranges[view][2]:
                    raise _Bad(f"needs {end} bytes ({count} elements of {element} bytes) but bufferView {view} holds {self.view_ranges[view][2]}")
            except _Bad as bad:
                self.refuse(f"accessor {i}", str(bad))
                continue
            counts[i] = count, shape
            self.decoded += count * element
        return counts

    def measure_meshes(self, counts: list[tuple[int, str]], measure: Measure) -> None:
        meshes = _entries(self.gltf, "meshes")
        primitives = [len(_entries(mesh, "primitives")) for mesh in meshes]
        placed = [node["mesh"] for node in _entries(self.gltf, "nodes") if type(node.get("mesh")) is int and 0 <= node["mesh"] < len(meshes)]
        measure.meshes += sum(primitives[m] for m in placed) if placed else sum(primitives)
        measure.materials += len(_entries(self.gltf, "materials"))
        for m, mesh in enumerate(meshes):
            for p, primitive in enumerate(_entries(mesh, "primitives")):
                try:
                    attributes = primitive.get("attributes")
                    if not isinstance(attributes, dict) or "POSITION" not in attributes:
                        raise _Bad("has no POSITION attribute")
                    for key in attributes:
                        _index(attributes, key, len(counts), "accessors")
                    vertices, shape = counts[attributes["POSITION"]]
                    if shape not in ("VEC3", ""):
                        raise _Bad(f"its POSITION accessor {attributes['POSITION']} is {shape}; positions are VEC3")
                    corners = vertices
                    if "indices" in primitive:
                        corners, shape = counts[_index(primitive, "indices", len(counts), "accessors")]
                        if shape not in ("SCALAR", ""):
                            raise _Bad(f"its indices accessor {primitive['indices']} is {shape}; indices are SCALAR")
                    mode = primitive.get("mode", _TRIANGLES)
                except _Bad as bad:
                    self.refuse(f"mesh {m} primitive {p}", str(bad))
                    continue
                measure.vertices += vertices
                measure.triangles += corners // 3 if mode == _TRIANGLES else max(corners - 2, 0) if mode in (_STRIP, _FAN) else 0

    # 7 ------------------------------------------------------------------------

    def check_images(self, measure: Measure) -> None:
        for i, image in enumerate(_entries(self.gltf, "images")):
            part = f"image {i}"
            try:
                if "bufferView" in image:
                    data: Path | bytes = self._view_bytes(_index(image, "bufferView", len(self.view_ranges), "bufferViews"))
                elif isinstance(image.get("uri"), str) and image["uri"].startswith("data:"):
                    data = _data_uri(image["uri"])
                elif isinstance(image.get("uri"), str):
                    target, why = resolve(self.base, image["uri"], self.names, uri=True)
                    if target is None:
                        raise _Bad(f"names {why}", _INSIDE)
                    if not is_texture(target):
                        self.refuse(part, f"names {target}, which is not a PNG or JPEG file", "save the texture as PNG or JPEG")
                        continue
                    data = self.root / target
                    measure.textures.append(target)
                else:
                    raise _Bad("has neither a bufferView nor a uri")
            except _Bad as bad:
                self.refuse(part, str(bad), bad.fix)
                continue
            size = header_size(data)
            if size is None:
                # a texture file is reported by the package's own texture check
                if not isinstance(data, Path):
                    self.refuse(part, "is not a PNG or JPEG image that can be read", "embed the texture as PNG or JPEG")
                continue
            # one over the limit is refused here (or with the texture files) and not added up
            problem = size_problem(f"{self.name} {part}", size, self.limits.max_image_pixels)
            if problem is None:
                measure.image_pixels += size[0] * size[1]
            elif not isinstance(data, Path):
                self.problems.append(problem)

    def _view_bytes(self, view: int) -> bytes:
        buffer, offset, length = self.view_ranges[view]
        source = self.sources[buffer]
        if isinstance(source, bytes):
            return source[offset : offset + length]
        if source is None:
            assert self.bin_chunk is not None  # a buffer without a uri passed only with a BIN chunk
            path, start = self.path, self.bin_chunk[0]
        else:
            path, start = self.root / source, 0
        with path.open("rb") as file:
            file.seek(start + offset)
            return file.read(length)


def _data_uri(uri: str) -> bytes:
    head, comma, payload = uri.partition(",")
    if not comma or not head.endswith(";base64"):
        raise _Bad("has a data: URI that is not base64, which ingest does not read")
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError):
        raise _Bad("has a data: URI whose base64 is broken") from None


def check(root: Path, names: set[str], name: str, kind: str, limits: IngestLimits, measure: Measure) -> list[Problem]:
    """Problems with the glTF or GLB ``name`` (``kind`` 'gltf' or 'glb'); what passes is added to ``measure``."""
    model = _Model(root, names, name, kind, limits)
    raw = model.read_container() if kind == "glb" else model.path.read_bytes()
    if raw is None or not model.parse(raw):
        return model.problems
    try:
        for stage in (model.check_buffers, model.check_views):
            stage()
            if model.problems:
                return model.grouped()
        counts = model.check_accessors()
        model.measure_meshes(counts, measure)
        model.check_images(measure)
    except _Bad as bad:  # a top-level list that is not a list of objects
        model.refuse("", str(bad))
    measure.decoded_bytes += model.decoded
    return model.grouped()
