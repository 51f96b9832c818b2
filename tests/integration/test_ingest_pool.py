"""The ingest workers of a real server: dead, stuck, hungry and crowded jobs.

Workers are real processes. To hold a job "running" for as long as a test needs,
without depending on how fast this machine is, the test stops the idle spare
workers with SIGSTOP before uploading: the job is handed to a stopped process.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import trimesh

from scenes.package import pack_files
from tests.conftest import LiveServer
from tests.scene_packages import good_package, manifest


def designer(live: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.designer_key}"}


def upload(live: LiveServer, data: bytes) -> httpx.Response:
    with httpx.Client(base_url=live.base_url, timeout=120) as http:
        return http.post("/api/scenes", files={"package": ("lab.zip", data, "application/zip")}, headers=designer(live))


def health(live: LiveServer) -> dict[str, Any]:
    return httpx.get(live.base_url + "/healthz", timeout=10).json()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pids(live: LiveServer) -> list[int]:
    """The server's ingest worker processes (its children running server.ingest_worker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == live.proc.pid and b"server.ingest_worker" in cmdline:
            pids.append(int(entry.name))
    return pids


@contextmanager
def spares_stopped(live: LiveServer) -> Iterator[None]:
    """Warm the pool with one upload, then SIGSTOP every idle spare until the block ends."""
    assert upload(live, good_package("stl", f"warm-{time.monotonic_ns()}")).status_code == 201
    workers = health(live)["ingest"]["workers"]
    wait_for(lambda: health(live)["ingest"]["spares_ready"] == workers, "spare workers")
    pids = worker_pids(live)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # killed by the test, or by the pool at a deadline
                pass


def upload_in_background(live: LiveServer, data: bytes) -> tuple[threading.Thread, list[httpx.Response]]:
    result: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: result.append(upload(live, data)), daemon=True)
    thread.start()
    return thread, result


def test_a_worker_killed_mid_job_costs_that_job_only(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(env={"AMALIY_INGEST_WORKERS": "1"})
    with spares_stopped(live):
        thread, result = upload_in_background(live, good_package("glb", "victim"))
        (busy,) = wait_for(lambda: health(live)["ingest"]["busy_pids"], "the job to be handed out")
        os.kill(busy, signal.SIGKILL)  # what the kernel's OOM killer does
        thread.join(60)
        refused = result[0]
        assert refused.status_code == 422, refused.text
        assert "stopped the checker" in refused.json()["problems"][0]["what"]
    again = upload(live, good_package("glb", "survivor"))
    assert again.status_code == 201, again.text
    state = health(live)
    assert state["status"] == "ok" and state["ingest"]["died"] == 1 and state["ingest"]["busy"] == 0


def test_a_stuck_job_is_stopped_at_the_deadline(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(env={"AMALIY_INGEST_WORKERS": "1", "AMALIY_INGEST_TIMEOUT": "2"})
    with spares_stopped(live):
        response = upload(live, good_package("glb", "stuck"))
    assert response.status_code == 422
    assert "took longer than 2 s" in response.json()["problems"][0]["what"]
    wait_for(lambda: health(live)["ingest"]["busy"] == 0, "the stuck worker to be gone")
    assert upload(live, good_package("glb", "after-stuck")).status_code == 201


def test_a_full_queue_answers_503_at_once(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(env={"AMALIY_INGEST_WORKERS": "1", "AMALIY_INGEST_QUEUE": "1"})
    with spares_stopped(live):
        first, first_result = upload_in_background(live, good_package("glb", "first"))
        wait_for(lambda: health(live)["ingest"]["busy"] == 1, "the first job to run")
        second, second_result = upload_in_background(live, good_package("glb", "second"))
        wait_for(lambda: health(live)["ingest"]["queued"] == 1, "the second job to queue")
        third = upload(live, good_package("glb", "third"))
        assert third.status_code == 503 and third.headers["retry-after"], third.text
        assert "Try again" in third.json()["detail"]
    first.join(60)
    second.join(60)
    assert first_result[0].status_code == 201 and second_result[0].status_code == 201


def test_a_package_over_the_memory_limit_is_refused_and_the_worker_is_gone(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(env={"AMALIY_INGEST_MEMORY_MB": "200", "AMALIY_BUDGETS": json.dumps({"desktop": {"triangles": 10_000_000}})})
    sphere = trimesh.Scene(trimesh.creation.icosphere(subdivisions=7, radius=0.3)).export(file_type="glb")  # 327,680 triangles
    package = pack_files(
        {"scene.json": json.dumps(manifest("hungry", {"item": "assets/item.glb"}, targets=["desktop"])).encode(), "assets/item.glb": sphere}
    )
    response = upload(live, package)
    assert response.status_code == 422, response.text
    assert "200 MB" in response.json()["problems"][0]["what"]
    state = wait_for(lambda: (h := health(live)) and h["ingest"]["busy"] == 0 and h, "the job to end")
    assert state["status"] == "ok" and state["ingest"]["max_peak_rss_mb"] < 400
    assert upload(live, good_package("glb", "small-after-hungry")).status_code == 201
