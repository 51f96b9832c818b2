"""Several media workers on one node: voice capacity grows with the cores it is given.

One worker process mixes and encodes on one core (realtime.audio.worker), so a
node with more cores runs more of them, one MediaSupervisor each. A room's calls
must all be on one worker (each listener's mix is made of the room's speakers),
so rooms, not calls, are placed: a room goes to the worker with the fewest calls
(then the fewest rooms) when its first call is offered, and stays there. The
pool has the supervisor's own interface, so the node and the room runners do
not know how many workers there are.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from realtime.audio import ipc
from realtime.audio.supervisor import MediaSupervisor
from realtime.fanout import RoomRunner
from realtime.room import Media


def default_workers() -> int:
    """One per core this process may run on, less one for the node's event loop; at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class MediaPool:
    """``workers`` media workers, rooms placed on the least loaded."""

    def __init__(self, runners: Callable[[], dict[str, RoomRunner]], settings: ipc.WorkerSettings, workers: int) -> None:
        self._runners = runners
        #: the worker index each room's calls are on
        self.placed: dict[str, int] = {}
        #: per room, the mix bit rate chosen for a participant, where it is not the configured one:
        #: kept here, not in a worker, so it holds across renegotiations and worker restarts
        self.listener_bitrates: dict[str, dict[str, int]] = {}

        def rooms_on(index: int) -> Callable[[], dict[str, RoomRunner]]:
            # a worker sees only its own rooms: when it restarts, only their calls are ended
            return lambda: {rid: r for rid, r in runners().items() if self.placed.get(rid) == index}

        self.workers = [MediaSupervisor(rooms_on(i), settings, self.listener_bitrate) for i in range(max(1, workers))]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    async def stop(self) -> None:
        for worker in self.workers:
            await worker.stop()

    def _worker(self, room_id: str, place: bool) -> MediaSupervisor | None:
        index = self.placed.get(room_id)
        if index is None:
            if not place:
                return None
            rooms = [0] * len(self.workers)
            for i in self.placed.values():
                rooms[i] += 1
            index = min(range(len(self.workers)), key=lambda i: (self.workers[i].peers, rooms[i], i))
            self.placed[room_id] = index
        return self.workers[index]

    def media(self, runner: RoomRunner, item: Media) -> None:
        """The runner's hook for a room's voice requests: to the room's worker (placing it on an offer)."""
        worker = self._worker(runner.room.id, place=item.kind == "offer")
        if worker is not None:
            worker.media(runner, item)

    def after_tick(self, runner: RoomRunner) -> None:
        worker = self._worker(runner.room.id, place=False)
        if worker is not None:
            worker.after_tick(runner)

    def listener_bitrate(self, room_id: str, participant_id: str) -> int | None:
        """The bit rate chosen for a participant's mix, None if it is the configured one."""
        return self.listener_bitrates.get(room_id, {}).get(participant_id)

    def set_listener_bitrate(self, room_id: str, participant_id: str, bitrate: int | None) -> None:
        """Encode that participant's mix at ``bitrate`` bit/s (ipc.MIN_LISTENER_BITRATE to
        ipc.MAX_LISTENER_BITRATE; None: back to the configured ``opus_bitrate``), for the call
        it is in now from the next 20 ms frame, without renegotiating, and for any call it
        offers later in this practical. ipc.VOICE_BITRATE_BY_LEVEL is the ladder for a weak link.

        Raises ValueError, changing nothing, for a bit rate out of bounds or not an int, or a
        room or participant this node does not have.
        """
        if bitrate is not None:
            ipc.check_listener_bitrate(bitrate)
        runner = self._runners().get(room_id)
        if runner is None:
            raise ValueError(f"no live practical {room_id!r} on this node")
        participants = runner.room.participants
        if participant_id not in participants:
            raise ValueError(f"no participant {participant_id!r} in practical {room_id!r}")
        chosen = self.listener_bitrates.setdefault(room_id, {})
        for gone in [pid for pid in chosen if pid not in participants]:  # bounded by the room's own table
            del chosen[gone]
        if bitrate is None:
            chosen.pop(participant_id, None)
        else:
            chosen[participant_id] = bitrate
        worker = self._worker(room_id, place=False)
        if worker is not None:
            worker.set_listener_bitrate(room_id, participant_id, bitrate)

    def room_closed(self, room_id: str) -> None:
        self.listener_bitrates.pop(room_id, None)
        index = self.placed.pop(room_id, None)
        if index is not None:
            self.workers[index].room_closed(room_id)

    def stats(self, window: float = 10.0) -> dict[str, Any]:
        """The workers' figures added up (tick percentiles over all of their ticks), and each one's."""
        each = [worker.stats(window) for worker in self.workers]
        durations = np.concatenate([w.durations(window) for w in self.workers]) if self.workers else np.zeros(0)
        total = {key: sum(s[key] for s in each) for key in ("restarts", "peers", "frames_in", "ticks", "late_ticks", "ticks_total", "late_total")}
        rooms = [0] * len(self.workers)
        for i in self.placed.values():
            rooms[i] += 1
        return {
            **total,
            "alive": all(s["alive"] for s in each),
            "opus": each[0]["opus"],
            "opus_complexity": max((s["opus_complexity"] for s in each if s["opus_complexity"] is not None), default=None),
            "tick_p50_ms": round(float(np.percentile(durations, 50)), 3) if len(durations) else None,
            "tick_p99_ms": round(float(np.percentile(durations, 99)), 3) if len(durations) else None,
            "workers": [{**s, "rooms": n} for s, n in zip(each, rooms)],
        }
