"""A lab too heavy for a phone: one dense, textured model, as a 3D scan of a specimen would be.

About 11 MB as the desktop GLB (a 330,000-triangle mesh with normals and texture
coordinates, and a 1024 px photo-like texture), inside the desktop budget: what
the phone variant (scenes.phone_variant) is for.
"""

from __future__ import annotations

import json

import numpy as np
import trimesh
from PIL import Image

from scenes.package import pack_files

HEAVY_ID = "specimen-scan"


def _texture(size: int) -> Image.Image:
    """Smooth colour with fine grain, which compresses as a photo does (not as flat colour)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.55 + 0.4 * np.sin(6 * x), 0.45 + 0.3 * np.cos(5 * y), 0.35 + 0.2 * np.sin(4 * (x + y))], axis=-1)
    grain = rng.normal(0, 0.06, base.shape)
    return Image.fromarray(np.clip((base + grain) * 255, 0, 255).astype(np.uint8), "RGB")


def scan(subdivisions: int = 7, texture_px: int = 1024) -> trimesh.Trimesh:
    """A bumpy sphere 30 cm across, textured: 20 x 4**subdivisions triangles."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.15)
    v = mesh.vertices
    mesh.vertices = v * (1 + 0.04 * np.sin(40 * v[:, [0]]) * np.cos(40 * v[:, [1]]))
    uv = np.column_stack([0.5 + np.arctan2(v[:, 2], v[:, 0]) / (2 * np.pi), 0.5 + np.arcsin(np.clip(v[:, 1] / 0.15, -1, 1)) / np.pi])
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=_texture(texture_px), roughnessFactor=0.7, metallicFactor=0.0)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return mesh


def heavy_package(package_id: str = HEAVY_ID, subdivisions: int = 7, texture_px: int = 1024) -> bytes:
    """A lab of one bench and the scan on it (desktop target only: the headset budget is 50,000 triangles)."""
    bench = trimesh.creation.box(extents=(1.2, 0.05, 0.6))
    files = {
        "assets/scan.glb": trimesh.Scene(scan(subdivisions, texture_px)).export(file_type="glb"),
        "assets/bench.glb": trimesh.Scene(bench).export(file_type="glb"),
        "scene.json": json.dumps(
            {
                "schema_version": 1,
                "id": package_id,
                "title": "Specimen scan",
                "targets": ["desktop"],
                "assets": [{"id": "scan", "path": "assets/scan.glb"}, {"id": "bench", "path": "assets/bench.glb", "color": "#8a6a44"}],
                "objects": [
                    {"id": "bench", "asset": "bench", "interactable": False, "transform": {"position": [0, 0.85, -1.0]}},
                    {"id": "specimen", "asset": "scan", "transform": {"position": [0, 1.03, -1.0]}},
                ],
                "spawn_points": [{"position": [0, 0, 0]}],
            }
        ).encode(),
    }
    return pack_files(files)
