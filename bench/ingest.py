"""Benchmark: ingest a large scene package (default 1,000,000 triangles over 200 textured objects).

The package is generated first (not timed), then ingested in a fresh child
process so that its peak memory is the ingest's own. Prints a human summary,
then one JSON line: {"triangles", "bytes", "seconds", "mb_per_s", "peak_rss_mb"}.

    .venv/bin/python bench/ingest.py [--triangles 1000000] [--objects 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scenes.package import pack_files  # noqa: E402


def _texture(seed: int, size: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    pattern = (((xx // 16) + (yy // 16)) % 2)[..., None] * 60
    return Image.fromarray(np.clip(base + pattern, 0, 255).astype(np.uint8))


def _asset(triangles: int, seed: int, texture: Image.Image) -> bytes:
    """A textured sphere-like mesh of about ``triangles`` faces, as GLB."""
    rings = max(3, math.ceil(1 + math.sqrt(1 + triangles / 4)))  # a uv sphere of r rings has 4r(r-2) faces
    mesh = trimesh.creation.uv_sphere(radius=0.05 + 0.01 * (seed % 5), count=[rings, rings])
    # every asset its own geometry, as in a real lab (identical buffers would be shared in the GLB)
    mesh.vertices *= 1.0 + 0.02 * np.random.default_rng(seed).random((len(mesh.vertices), 1))
    uv = np.column_stack([(np.arctan2(mesh.vertices[:, 1], mesh.vertices[:, 0]) / (2 * np.pi)) % 1, mesh.vertices[:, 2] * 5 + 0.5])
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=trimesh.visual.material.PBRMaterial(baseColorTexture=texture))
    return trimesh.Scene(mesh).export(file_type="glb")


def build_package(triangles: int, objects: int, textures: int, texture_px: int, padding: int = 0) -> tuple[bytes, int]:
    """The package, and its triangle count; ``padding`` bytes of noise in a file no model uses make it bigger."""
    per_object = triangles // objects
    images = [_texture(i, texture_px) for i in range(textures)]
    files: dict[str, bytes] = {}
    assets, scene_objects = [], []
    for i in range(objects):
        files[f"assets/part-{i}.glb"] = _asset(per_object, i, images[i % textures])
        assets.append({"id": f"part-{i}", "path": f"assets/part-{i}.glb"})
        x, z = (i % 20) * 0.3 - 3.0, (i // 20) * 0.3 - 3.0
        scene_objects.append({"id": f"obj-{i}", "asset": f"part-{i}", "interactable": i % 4 == 0, "transform": {"position": [x, 1.0, z]}, "collider": "hull" if i % 10 == 0 else "box"})
    manifest = {
        "schema_version": 1,
        "id": "bench-large",
        "title": "Large benchmark lab",
        "assets": assets,
        "objects": scene_objects,
        "spawn_points": [{"position": [0, 0, 4]}],
        "targets": ["desktop"],
    }
    files["scene.json"] = json.dumps(manifest).encode()
    if padding:
        files["notes/padding.bin"] = np.random.default_rng(0).bytes(padding)
    return pack_files(files), triangles


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from scenes.ingest import Budget, IngestLimits, DEFAULT_BUDGETS, ingest_zip
limits = IngestLimits(budgets={**DEFAULT_BUDGETS, "desktop": Budget(5_000_000, 1000, 8192, 1 << 30)})
start = time.perf_counter()
processed = ingest_zip(Path(sys.argv[1]), limits)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "triangles": processed.stats["triangles"], "glb_bytes": processed.stats["glb_bytes"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triangles", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--textures", type=int, default=20, help="distinct textures shared among the objects")
    parser.add_argument("--texture-px", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    package, _ = build_package(args.triangles, args.objects, args.textures, args.texture_px)
    print(f"generated a {len(package) / 1e6:.1f} MB package in {time.perf_counter() - began:.1f} s", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zip"
        path.write_bytes(package)
        for i in range(args.repeat):
            child = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=REPO, capture_output=True, text=True)
            if child.returncode != 0:
                sys.exit(child.stderr)
            run = json.loads(child.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(f"run {i + 1}: {run['seconds']:.2f} s, peak RSS {run['peak_rss_mb']:.0f} MB, {run['triangles']} triangles, GLB {run['glb_bytes'] / 1e6:.1f} MB", flush=True)
    seconds = statistics.median(r["seconds"] for r in runs)
    summary = {
        "triangles": runs[0]["triangles"],
        "bytes": len(package),
        "seconds": round(seconds, 3),
        "mb_per_s": round(len(package) / 1e6 / seconds, 2),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
