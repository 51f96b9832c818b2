"""Shared fixtures: a real `amaliy serve` process on free loopback ports."""

from __future__ import annotations

import functools
import os
import tempfile
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import redis

from amaliy_client.voice import use_ice_addresses
from scenes import samples
from scenes.ingest import ingest_zip
from scenes.model import Scene
from scenes.package import pack_files

#: the machine's Redis, which CI starts if it is down (.ci/run)
REDIS_URL = "redis://127.0.0.1:6379/0"

REPO = Path(__file__).resolve().parents[1]
#: voice media between test peers and test servers stays on loopback
LOOPBACK_VOICE = "127.0.0.1"
use_ice_addresses(LOOPBACK_VOICE)
ARTIFACTS = REPO / "test-artifacts"


@functools.cache
def sample_scene(package_id: str = samples.DEMO) -> Scene:
    """A sample lab as the room engine sees it, through the real ingest."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.zip"
        path.write_bytes(pack_files(samples.SAMPLES[package_id]()))
        return Scene.from_processed(ingest_zip(path).server, 1, f"/api/scenes/{package_id}/versions/1/scene.glb")


def free_port_pair() -> int:
    """A port P such that P and P + 1 (HTTP and room socket) are both free."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


@dataclass
class LiveServer:
    """A running server process and what it printed on start."""

    proc: subprocess.Popen[str]
    base_url: str
    ws_url: str
    teacher_key: str
    demo_code: str
    teacher_url: str
    designer_key: str
    output: list[str] = field(default_factory=list)

    def http(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kw)

    def open_session(self, title: str = "Test practical") -> dict[str, Any]:
        """Open a fresh practical as the teacher (each test gets its own room)."""
        with self.http() as http:
            response = http.post(
                "/api/sessions", json={"title": title}, headers={"Authorization": f"Bearer {self.teacher_key}"}
            )
            response.raise_for_status()
            return response.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None, teacher_key: str | None = None) -> LiveServer:
    """Start `amaliy serve` on free ports and wait until it answers /healthz. A node joining a
    deployment whose records have a teacher already prints no key: pass theirs as ``teacher_key``."""
    port = free_port_pair()
    designer = subprocess.run(
        [sys.executable, "-m", "server.cli", "users", "add", "Designer", "--role", "designer", "--data-dir", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    designer_key = designer.stdout.split()[-1]
    environ = {
        **os.environ,
        "AMALIY_JOIN_RATE_PER_MIN": "100000",
        "AMALIY_MAX_SESSIONS_PER_TEACHER": "1000",
        "AMALIY_VOICE_ADDRESSES": LOOPBACK_VOICE,
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), *(args or [])],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("server exited:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("API docs:"):
            break
    text = "".join(lines)
    found = re.search(r"^\s+(ak_\S+)$", text, re.M)
    key = teacher_key or (found.group(1) if found else None)
    code = re.search(r"join code (\w+)", text)
    teacher = re.search(r"teacher:\s+(\S+)", text)
    assert key and (code and teacher or "AMALIY_DEMO" in (env or {})), text  # a node started without its demo prints no code
    server = LiveServer(
        proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 1}/room", key,
        code.group(1) if code else "", teacher.group(1) if teacher else "", designer_key, lines,
    )
    # keep draining its output so a chatty server never blocks on a full pipe
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    return wait_healthy(server, deadline)


def wait_healthy(server: LiveServer, deadline: float) -> LiveServer:
    """The server once /healthz answers 200; stopped, and an error, if not by ``deadline``."""
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("server did not become healthy")


def serve_again(live: LiveServer, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None) -> LiveServer:
    """Start a server on a data dir that already has its teacher (who is not printed again),
    on new ports or on ``port`` (the same address, as after a restart), with ``env`` added to
    this process's environment (another node of ``live``'s deployment, say: see test_failover)."""
    port = port or free_port_pair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--no-demo"],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("API docs:") for line in lines):
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start again:\n" + "".join(lines))
        lines.append(line)
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    again = LiveServer(proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 1}/room", live.teacher_key, "", "", live.designer_key, lines)
    return wait_healthy(again, deadline)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("data"))
    yield live
    live.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with custom settings; all are stopped after the test."""
    started: list[LiveServer] = []

    def factory(env: dict[str, str] | None = None, args: list[str] | None = None) -> LiveServer:
        live = start_server(tmp_path / f"data{len(started)}", env, args)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture
def redis_deployment() -> Iterator[str]:
    """A deployment name of this test's own on the machine's Redis (REDIS_URL); its keys are deleted afterwards."""
    name = "t" + secrets.token_hex(4)
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Redis of the test's own, with no persistence, so it can be restarted empty."""
    port = free_port_pair()
    proc = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0", tmp_path
    proc.kill()
    proc.wait()


def start_redis(port: int, where: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(where)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return proc
