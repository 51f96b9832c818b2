"""Benchmark: what a large scene upload costs a live practical, and the ingest worker's peak memory.

Starts a real server (voice off), fills its demo practical with ``amaliy bots``
walking and sending poses, measures how late room ticks start (the server's own
/healthz ``ticks`` figure, i.e. the event loop's stall) over a quiet window,
then uploads a large package (bench/ingest.py's generator, default 1,000,000
triangles, accepted with a raised desktop budget) and measures the same figure
over the upload. Repeats, then prints a human summary and one JSON line:
{"bots", "package_bytes", "triangles", "upload_seconds", "baseline_p99_ms",
"during_p99_ms", "added_p99_ms", "during_max_ms", "worker_peak_rss_mb"} (medians over the runs).

    .venv/bin/python bench/upload_stall.py [--triangles 1000000] [--bots 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from ingest import build_package  # noqa: E402
from sync import Server  # noqa: E402


def _ticks(base: str, window: float) -> dict[str, Any]:
    return httpx.get(f"{base}/healthz", params={"tick_window": min(window, 60.0)}, timeout=30).json()


def run_once(package: bytes, bots: int, quiet: float) -> dict[str, Any]:
    env = [
        "AMALIY_VOICE=false",
        f"AMALIY_UPLOAD_MAX_BYTES={256 * 1024 * 1024}",
        "AMALIY_BUDGETS=" + json.dumps({"desktop": {"triangles": 5_000_000, "materials": 1000, "file_bytes": 1 << 30}}),
    ]
    server = Server(bots + 10, [], env_extra=env)
    designer = subprocess.run(
        [sys.executable, "-m", "server.cli", "users", "add", "Bench", "--role", "designer", "--data-dir", str(server.dir / "data")],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    key = designer.stdout.split()[-1]
    base = server.base
    crowd = subprocess.Popen(
        [sys.executable, "-m", "amaliy_client.bots", "--url", base, "--code", server.code, "--count", str(bots)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _ticks(base, 1)["participants"] < bots:
            if time.monotonic() > deadline:
                raise SystemExit("the bots did not all join")
            time.sleep(0.2)
        # warm the ingest pool (its spares start on first use) with a small upload
        small = build_package(2_000, 2, 1, 64)[0].replace(b"bench-large", b"bench-small")
        httpx.post(f"{base}/api/scenes", files={"package": ("s.zip", small)}, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        time.sleep(quiet)
        baseline = _ticks(base, quiet)["ticks"]
        began = time.monotonic()
        response = httpx.post(
            f"{base}/api/scenes", files={"package": ("lab.zip", package, "application/zip")},
            headers={"Authorization": f"Bearer {key}"}, timeout=600,
        )
        seconds = time.monotonic() - began
        if response.status_code not in (200, 201):
            raise SystemExit(f"upload refused: {response.status_code} {response.text[:2000]}")
        state = _ticks(base, seconds + 0.5)
        return {
            "upload_seconds": seconds,
            "triangles": response.json()["stats"]["triangles"],
            "baseline_p99_ms": baseline["late_p99_ms"],
            "during_p99_ms": state["ticks"]["late_p99_ms"],
            "during_max_ms": state["ticks"]["late_max_ms"],
            "worker_peak_rss_mb": state["ingest"]["last_peak_rss_mb"],
        }
    finally:
        crowd.terminate()
        crowd.wait()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triangles", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--quiet", type=float, default=10.0, help="seconds of the baseline window (default 10)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--padding-mb", type=int, default=0, help="add an incompressible file of this many MB (the upload path's cost)")
    args = parser.parse_args()
    package, _ = build_package(args.triangles, args.objects, 20, 512, padding=args.padding_mb * 1_000_000)
    print(f"package: {len(package) / 1e6:.1f} MB", flush=True)
    runs = []
    for i in range(args.repeat):
        run = run_once(package, args.bots, args.quiet)
        runs.append(run)
        print(
            f"run {i + 1}: upload {run['upload_seconds']:.1f} s; tick lateness p99 {run['baseline_p99_ms']:.1f} ms quiet, "
            f"{run['during_p99_ms']:.1f} ms during (max {run['during_max_ms']:.1f}); worker peak RSS {run['worker_peak_rss_mb']:.0f} MB",
            flush=True,
        )
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary = {
        "bots": args.bots,
        "package_bytes": len(package),
        "triangles": runs[0]["triangles"],
        "upload_seconds": round(med["upload_seconds"], 2),
        "baseline_p99_ms": round(med["baseline_p99_ms"], 2),
        "during_p99_ms": round(med["during_p99_ms"], 2),
        "added_p99_ms": round(statistics.median(r["during_p99_ms"] - r["baseline_p99_ms"] for r in runs), 2),
        "during_max_ms": round(med["during_max_ms"], 2),
        "worker_peak_rss_mb": round(med["worker_peak_rss_mb"], 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
