"""Benchmark: the ingest worker's peak memory and time on hostile and near-limit packages.

Each package goes through a real ``server.ingest_worker`` process, exactly as the
node runs it (memory limit, deadline, one job per process), and the worker's own
peak RSS is read from its answer. The packages are the test suite's bad-input
corpus (tests/scene_packages.py BAD: bombs, lying headers, huge accessors and
images, ...) plus packages built to sit just inside the asset limits, which cost
the most memory an accepted package can. Prints one line per package, then one
JSON line: {"packages", "worst", "worst_peak_rss_mb", "worst_seconds",
"over_1gb", "memory_limit_mb"}.

    .venv/bin/python bench/ingest_bad.py [--memory-mb 1024] [--only NAME]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scenes.ingest import IngestLimits  # noqa: E402
from scenes.package import pack_files  # noqa: E402
from server.ingest_worker import read_message, write_message  # noqa: E402
from tests.scene_packages import BAD, manifest  # noqa: E402


def _package(assets: dict[str, bytes], **extra: object) -> bytes:
    paths = {name.split("/")[-1].split(".")[0]: name for name in assets if name.endswith((".glb", ".obj", ".stl", ".ply"))}
    files = {"scene.json": json.dumps(manifest("near-limit", paths, targets=["desktop"], **extra)).encode(), **assets}
    return pack_files(files)


def _big_glb_with_hull() -> bytes:
    """About 1.4 million triangles in one GLB with a hull collider: the triangle limit's worst."""
    sphere = trimesh.creation.icosphere(subdivisions=8, radius=0.3)  # 1,310,720 triangles
    return pack_files(
        {
            "scene.json": json.dumps(
                {**manifest("near-limit", {"item": "assets/item.glb"}, targets=["desktop"]), "objects": [{"id": "o", "asset": "item", "collider": "hull"}]}
            ).encode(),
            "assets/item.glb": trimesh.Scene(sphere).export(file_type="glb"),
        }
    )


def _four_big_textures() -> bytes:
    """Four 4096x4096 noise textures on four textured boxes: the per-image pixel limit's worst."""
    assets: dict[str, bytes] = {}
    rng = np.random.default_rng(0)
    for i in range(4):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (4096, 4096, 3), dtype=np.uint8)).save(out, format="JPEG", quality=90)
        box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
        box.visual = trimesh.visual.TextureVisuals(
            uv=rng.random((len(box.vertices), 2)), material=trimesh.visual.material.SimpleMaterial(image=Image.open(io.BytesIO(out.getvalue())))
        )
        assets[f"assets/item{i}.glb"] = trimesh.Scene(box).export(file_type="glb")
    return _package(assets)


NEAR_LIMIT: dict[str, Callable[[], bytes]] = {"near-1.3M-triangles-hull": _big_glb_with_hull, "near-four-4096px-textures": _four_big_textures}


def run(package: bytes, memory_mb: int, timeout: int) -> tuple[str, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.zip"
        path.write_bytes(package)
        worker = subprocess.Popen(
            [sys.executable, "-m", "server.ingest_worker", str(memory_mb), str(timeout)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert worker.stdin is not None and worker.stdout is not None
        assert read_message(worker.stdout) == "ready"
        began = time.perf_counter()
        write_message(worker.stdin, (path, Path(tmp) / "blobs", IngestLimits()))
        try:
            kind, payload, peak_kb = read_message(worker.stdout)
            outcome = kind if kind != "rejected" else f"rejected: {payload[0].what[:70]}"
        except EOFError:
            outcome, peak_kb = f"worker died ({worker.wait()})", 0
        seconds = time.perf_counter() - began
        worker.wait(30)
        return outcome, peak_kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--timeout", type=int, default=120)
    parser.add_argument("--only", help="run only the packages whose name contains this")
    args = parser.parse_args()
    builders = {**{f"bad-{name}": build for name, (build, _) in BAD.items()}, **NEAR_LIMIT}
    results = []
    for name, build in sorted(builders.items()):
        if args.only and args.only not in name:
            continue
        outcome, peak, seconds = run(build(), args.memory_mb, args.timeout)
        results.append((name, peak, seconds))
        print(f"{name:<40} {peak:7.0f} MB {seconds:7.2f} s  {outcome}", flush=True)
    worst = max(results, key=lambda r: r[1])
    print(json.dumps({
        "packages": len(results), "worst": worst[0], "worst_peak_rss_mb": round(worst[1], 1), "worst_seconds": round(worst[2], 2),
        "over_1gb": sum(1 for r in results if r[1] > 1024), "memory_limit_mb": args.memory_mb,
    }))


if __name__ == "__main__":
    main()
