"""The node's side of voice: spawn the media worker, relay messages, restart it if it dies.

Rooms tick on the node's event loop; calls live in the worker process. After
every room tick the runner's hook sends that room's voice table (one POSES
message); the room's authorised voice requests (realtime.room.Media) go out as
JSON; answers, errors, dropped calls and voice levels come back and are routed
to the room runner, which sends them to the participant (or, for levels, to the
whole room) as unsequenced messages.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import socket
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from realtime import protocol as p
from realtime.audio import ipc, worker
from realtime.fanout import RoomRunner
from realtime.room import CallEnded, Media, Send

log = logging.getLogger("amaliy.media")

#: least time between two restarts of a crashing worker, in seconds
RESTART_BACKOFF = 1.0
#: stop sending pose tables while this many bytes wait for the worker (it is stalled)
MAX_BACKLOG = 1 << 20
#: seconds of tick durations kept for /healthz and benchmarks
STATS_WINDOW = 120


class MediaSupervisor:
    """Owns the media worker process and the socket to it."""

    def __init__(
        self,
        runners: Callable[[], dict[str, RoomRunner]],
        settings: ipc.WorkerSettings,
        listener_bitrate: Callable[[str, str], int | None] = lambda room, participant: None,
    ) -> None:
        self._runners = runners
        self.settings = settings
        #: the bit rate chosen for a participant's mix (None: the configured one), sent with each offer
        self._listener_bitrate = listener_bitrate
        self.process: multiprocessing.process.BaseProcess | None = None
        self.restarts = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: (monotonic time, tick duration ms) reported by the worker, and late ticks per report
        self.ticks: deque[tuple[float, float]] = deque(maxlen=STATS_WINDOW * 50 * 4)
        self.late: deque[tuple[float, int]] = deque(maxlen=STATS_WINDOW)
        self.peers = 0
        self.frames_in = 0
        #: the libopus the worker loaded (realtime.audio.opus.LIBRARY), once it has reported
        self.opus: str | None = None
        #: the Opus complexity the worker encodes at now (lower while crowded)
        self.opus_complexity: int | None = None
        #: totals since the node started (across worker restarts), for before/after differences
        self.ticks_total = 0
        self.late_total = 0

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.process is not None and self.process.is_alive():
            self.process.join(2.0)
            if self.process.is_alive():
                self.process.kill()

    async def _supervise(self) -> None:
        """Run the worker; when it exits unexpectedly, log it, end its calls and start another."""
        while not self._stopping:
            started = time.monotonic()
            ours, theirs = socket.socketpair()
            context = multiprocessing.get_context("spawn")
            self.process = context.Process(target=worker.main, args=(theirs, self.settings), name="amaliy-media", daemon=True)
            self.process.start()
            theirs.close()
            reader, self._writer = await asyncio.open_unix_connection(sock=ours)
            try:
                await self._read(reader)
            finally:
                self._writer.close()
                self._writer = None
            if self._stopping:
                return
            await asyncio.get_running_loop().run_in_executor(None, self.process.join, 2.0)
            log.error("media worker (pid %s) died with exit code %s; restarting it", self.process.pid, self.process.exitcode)
            if self.process.is_alive():
                self.process.kill()
            self.restarts += 1
            self._calls_lost()
            await asyncio.sleep(max(0.0, RESTART_BACKOFF - (time.monotonic() - started)))

    def _calls_lost(self) -> None:
        for runner in self._runners().values():
            for part in list(runner.room.participants.values()):
                if part.in_call:
                    self._closed(runner, part.id, p.ErrorCode.MEDIA_UNAVAILABLE, "Voice restarted; offer again.")

    # ------------------------------------------------------------ node -> worker

    def _write(self, data: bytes) -> bool:
        if self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(data)
        return True

    def media(self, runner: RoomRunner, item: Media) -> None:
        """The runner's hook for a room's voice requests."""
        room = runner.room.id
        if item.kind == "offer":
            message = {"type": "offer", "room": room, "participant": item.participant, "slot": item.slot,
                       "sdp": item.sdp, "send": item.send, "re": item.re,
                       "bitrate": self._listener_bitrate(room, item.participant)}
            if not self._write(ipc.encode_json(message)):
                self._closed(runner, item.participant, p.ErrorCode.MEDIA_UNAVAILABLE, "Voice is restarting; offer again in a moment.", item.re)
            else:
                self.after_tick(runner)  # the worker knows the caller's pose before the first mix
        else:
            self._write(ipc.encode_json({"type": "close", "room": room, "participant": item.participant}))

    def after_tick(self, runner: RoomRunner) -> None:
        """The runner's hook after each room tick: the room's voice table, if anyone is in a call."""
        if self._writer is None or self._writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            return
        data = ipc.encode_poses(runner.room)
        if data is not None:
            self._write(data)

    def set_listener_bitrate(self, room_id: str, participant_id: str, bitrate: int | None) -> None:
        """That listener's mix at ``bitrate`` bit/s (None: the configured one) from its next
        frame, if it is in a call on this worker; checked by the caller (MediaPool)."""
        self._write(ipc.encode_json({"type": "bitrate", "room": room_id, "participant": participant_id, "bitrate": bitrate}))

    def room_closed(self, room_id: str) -> None:
        self._write(ipc.encode_json({"type": "room_closed", "room": room_id}))

    # ------------------------------------------------------------ worker -> node

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                message = await ipc.read(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if isinstance(message, dict):
                try:
                    self._received(message)
                except Exception:
                    log.exception("bad message from the media worker: %r", message.get("type"))

    def _received(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "stats":
            now = time.monotonic()
            self.ticks.extend((now, d) for d in message["durations_ms"])
            self.late.append((now, message["late"]))
            self.ticks_total += len(message["durations_ms"])
            self.late_total += message["late"]
            self.peers = message["peers"]
            self.frames_in = message["frames_in"]
            self.opus = message["opus"]
            self.opus_complexity = message["opus_complexity"]
            return
        runner = self._runners().get(message["room"])
        if runner is None:
            return
        if kind == "answer":
            self._to(runner, message["participant"], {"type": "rtc_answer", "sdp": message["sdp"], "re": message["re"]})
        elif kind == "error":
            runner.dispatch(runner.room.handle(message["participant"], CallEnded(), runner.now()))
            self._to(runner, message["participant"], p.error(p.ErrorCode(message["code"]), message["message"], message["re"]))
        elif kind == "closed":
            self._closed(runner, message["participant"], p.ErrorCode(message["code"]), message["message"])
        elif kind == "levels":
            runner.dispatch(runner.room.voice_levels(dict(zip(message["participants"], message["levels"]))))

    def _closed(self, runner: RoomRunner, pid: str, code: p.ErrorCode, text: str, re: str | int | None = None) -> None:
        runner.dispatch(runner.room.handle(pid, CallEnded(), runner.now()))
        self._to(runner, pid, {"type": "rtc_closed", "code": str(code), "message": text, "re": re})

    @staticmethod
    def _to(runner: RoomRunner, pid: str, message: dict[str, Any]) -> None:
        if message.get("re") is None:
            message.pop("re", None)
        runner.dispatch([Send(pid, p.dumps(message))])

    # ------------------------------------------------------------ figures

    def durations(self, window: float) -> np.ndarray:
        """Mix tick durations (ms) the worker reported over the last ``window`` seconds."""
        since = time.monotonic() - window
        return np.array([d for t, d in self.ticks if t >= since])

    def stats(self, window: float = 10.0) -> dict[str, Any]:
        """Mix tick figures over the last ``window`` seconds (for /healthz and bench/audio.py)."""
        since = time.monotonic() - window
        durations = self.durations(window)
        alive = self.process is not None and self.process.is_alive()
        return {
            "alive": alive,
            "pid": self.process.pid if alive and self.process is not None else None,
            "restarts": self.restarts,
            "peers": self.peers,
            "frames_in": self.frames_in,
            "opus": self.opus,
            "opus_complexity": self.opus_complexity,
            "ticks": len(durations),
            "tick_p50_ms": round(float(np.percentile(durations, 50)), 3) if len(durations) else None,
            "tick_p99_ms": round(float(np.percentile(durations, 99)), 3) if len(durations) else None,
            "late_ticks": sum(n for t, n in self.late if t >= since),
            "ticks_total": self.ticks_total,
            "late_total": self.late_total,
        }
