"""What loading one model will cost, as its files declare it, before trimesh reads them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Measure:
    """Filled by the format checks; added up over the package against IngestLimits."""

    #: vertices and triangles trimesh will build meshes of
    vertices: int = 0
    triangles: int = 0
    #: meshes the model places in its scene (a glTF primitive once per node that uses it)
    meshes: int = 0
    #: materials the model declares (glTF materials, MTL 'newmtl')
    materials: int = 0
    #: glTF bytes trimesh holds while decoding: buffers, a copy of every bufferView, every accessor
    decoded_bytes: int = 0
    #: pixels of the images the model uses; each is decoded when the GLB is written
    image_pixels: int = 0
    #: package files the model uses as textures
    textures: list[str] = field(default_factory=list)
