"""The node's ingest workers: a bounded queue in front of a few short-lived processes.

Ingest is CPU- and memory-heavy (trimesh), and its input is whatever a designer
uploads. So it never runs on the event loop that ticks rooms, and never twice in
one process: each job gets a fresh ``server.ingest_worker`` process under a
memory and CPU limit, killed on a wall-clock deadline, and gone when the job
ends, so one bad package cannot leave a bloated or broken worker behind for the
next. Spares are started ahead (imports take about a second) so an upload does
not wait for one. At most ``workers`` jobs run at once and at most ``queue``
wait; past that an upload is refused at once with IngestBusy (HTTP 503) rather
than piling up. A worker that dies mid-job (the kernel's OOM killer, a crash in
a native library) costs that job a clear refusal and nothing else: the next job
gets the next spare.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenes.ingest import IngestLimits
from scenes.report import PackageRejected, Problem
from scenes.store import Staged

log = logging.getLogger("amaliy.ingest")

#: framing of the pipe between the pool and a worker: a length, then a pickle (both sides are ours)
FRAME = struct.Struct("<Q")
#: a worker's answer is a few records; anything larger is not ours
_MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: seconds a spare may take to import and say it is ready
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class PoolSettings:
    """How much ingest one node does at once, and what one job may use."""

    #: jobs run at once (each in its own process)
    workers: int = 2
    #: jobs waiting for a worker; more are refused with 503
    queue: int = 8
    #: memory one job may allocate (heap and anonymous maps), in MB
    memory_mb: int = 1024
    #: seconds one job may take, wall clock and CPU
    timeout: float = 120.0


class IngestBusy(Exception):
    """Every worker is busy and the queue is full, or no worker could be started."""


class _Worker:
    """One started worker process that has done its imports and waits for its one job."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, value: Any) -> None:
        assert self.proc.stdin is not None
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(FRAME.pack(len(data)) + data)
        await self.proc.stdin.drain()

    async def receive(self) -> Any:
        assert self.proc.stdout is not None
        (length,) = FRAME.unpack(await self.proc.stdout.readexactly(FRAME.size))
        if length > _MAX_ANSWER_BYTES:
            raise EOFError(f"answer of {length} bytes")
        return pickle.loads(await self.proc.stdout.readexactly(length))

    async def end(self) -> None:
        """Make sure the process is gone and reaped."""
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        await self.proc.wait()


class IngestPool:
    def __init__(self, settings: PoolSettings, limits: IngestLimits, blobs: Path) -> None:
        self.settings = settings
        self.limits = limits
        self.blobs = blobs
        self._slots = asyncio.Semaphore(settings.workers)
        self._spares: list[asyncio.Task[_Worker]] = []
        self._running: set[_Worker] = set()
        self._waiting = 0
        self._closed = False
        self._counts = {"jobs": 0, "rejected": 0, "died": 0, "timed_out": 0, "errors": 0, "start_failures": 0}
        self._failing_starts = 0
        self._last_peak_mb = 0.0
        self._max_peak_mb = 0.0

    # ------------------------------------------------------------------ public

    async def ingest(self, package: Path) -> Staged:
        """Check and stage one package. Raises PackageRejected, or IngestBusy when it cannot be taken now."""
        if self._closed:
            raise IngestBusy("the node is shutting down")
        if self._waiting >= self.settings.queue:
            raise IngestBusy(f"{self.settings.workers} packages are being checked and {self._waiting} are waiting")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            worker = await self._hand_job(package)
            self._running.add(worker)
            try:
                return await self._run(worker)
            finally:
                self._running.discard(worker)
                await worker.end()
        finally:
            self._slots.release()

    def stats(self) -> dict[str, Any]:
        """For /healthz: the pool's shape, what it is doing, and how jobs ended since start."""
        ready = sum(1 for t in self._spares if t.done() and not t.cancelled() and t.exception() is None)
        return {
            "workers": self.settings.workers,
            "busy": len(self._running),
            "queued": self._waiting,
            "queue_limit": self.settings.queue,
            "busy_pids": sorted(w.proc.pid for w in self._running),
            "spares_ready": ready,
            "memory_limit_mb": self.settings.memory_mb,
            "timeout_s": self.settings.timeout,
            **self._counts,
            "last_peak_rss_mb": round(self._last_peak_mb, 1),
            "max_peak_rss_mb": round(self._max_peak_mb, 1),
        }

    def healthy(self) -> bool:
        """False while workers fail to start (a broken install): uploads cannot be checked."""
        return self._failing_starts == 0

    async def close(self) -> None:
        self._closed = True
        spares, self._spares = self._spares, []
        for task in spares:
            task.cancel()
        for task in spares:
            try:
                await (await task).end()
            except (asyncio.CancelledError, Exception):
                pass
        for worker in list(self._running):
            await worker.end()

    # ------------------------------------------------------------------ internals

    async def _start(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.ingest_worker", str(self.settings.memory_mb), str(int(self.settings.timeout) + 1),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        worker = _Worker(proc)
        try:
            if await asyncio.wait_for(worker.receive(), _START_TIMEOUT) != "ready":
                raise EOFError("unexpected greeting")
        except BaseException:
            await worker.end()
            raise
        return worker

    def _refill(self) -> None:
        while not self._closed and len(self._spares) < self.settings.workers:
            self._spares.append(asyncio.create_task(self._start()))

    async def _take_spare(self) -> _Worker:
        """A ready worker: a spare started earlier, or (twice at most) a new one."""
        self._refill()
        for _ in range(2):
            task = self._spares.pop(0)
            self._refill()
            try:
                worker = await task
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, pickle.UnpicklingError) as exc:
                self._counts["start_failures"] += 1
                self._failing_starts += 1
                log.error("an ingest worker failed to start: %s", exc or type(exc).__name__)
                continue
            self._failing_starts = 0
            return worker
        raise IngestBusy("the ingest worker could not be started; the operator should check the server log")

    async def _hand_job(self, package: Path) -> _Worker:
        """Give the job to a spare; one that died while idle is replaced (a few times at most)."""
        for _ in range(3):
            worker = await self._take_spare()
            try:
                await worker.send((package, self.blobs, self.limits))
                return worker
            except (BrokenPipeError, ConnectionResetError):
                await worker.end()
        raise IngestBusy("the ingest workers keep exiting before they take a job; the operator should check the server log")

    async def _run(self, worker: _Worker) -> Staged:
        self._counts["jobs"] += 1
        try:
            kind, payload, peak_kb = await asyncio.wait_for(worker.receive(), self.settings.timeout)
        except asyncio.TimeoutError:
            self._counts["timed_out"] += 1
            raise PackageRejected([self._too_slow()]) from None
        except (EOFError, asyncio.IncompleteReadError, pickle.UnpicklingError):
            await worker.end()
            raise PackageRejected([self._died(worker.proc.returncode)]) from None
        self._last_peak_mb = peak_kb / 1024
        self._max_peak_mb = max(self._max_peak_mb, self._last_peak_mb)
        if kind == "ok":
            return payload
        if kind == "rejected":
            self._counts["rejected"] += 1
            raise PackageRejected(payload)
        self._counts["errors"] += 1
        log.error("ingest failed on a bug: %s", payload)
        raise PackageRejected(
            [Problem("package", "could not be checked because of an error in the server (it is in the server's log)", "tell the operator; the package may be fine")]
        )

    def _too_slow(self) -> Problem:
        return Problem(
            "package",
            f"took longer than {self.settings.timeout:g} s to check, the limit for one package",
            "reduce the meshes (triangles, vertices, hull colliders) or split the lab into several packages",
        )

    def _died(self, returncode: int | None) -> Problem:
        self._counts["died"] += 1
        if returncode == -signal.SIGXCPU:
            self._counts["timed_out"] += 1
            return self._too_slow()
        log.warning("an ingest worker died during a job (exit status %s)", returncode)
        return Problem(
            "package",
            f"stopped the checker (it may need more than the {self.settings.memory_mb} MB of memory one package may use)",
            "reduce the meshes (triangles, vertices) and textures, or split the lab into several packages",
        )
