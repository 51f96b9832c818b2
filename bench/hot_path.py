#!/usr/bin/env python3
"""The pose hot path in one process: the room socket's reads and the tick's fan-out, no kernel.

    .venv/bin/python bench/hot_path.py [--participants 200] [--protocol 2] [--ticks 300] [--runs 5]

``bench/sync.py`` measures the whole server on real sockets, where the kernel's share and the
machine's drift (up to 2 x between days here) hide a change of a few per cent. This one drives the
same code with nothing else: N real ``RoomSocket``s on in-memory transports, joined to one
``RoomRunner`` and its room, each handed what a ``bench/sync.py`` bot sends, one read at a time,
then the runner's tick. A read is a masked pose frame (protocol 2: a 36-byte POSE_V2 with both
hands; protocol 1: the 92-byte pose), and with every 8th pose, in the same read, an ``ack`` of
the newest tick. Senders stand at random places in a 6 m square, walking 1 cm a tick, so they
change floor cell now and then as people do. The clock is virtual (1/30 s a tick), so rate
limits and link judgements see the rates of a real class however fast this runs.

What is timed is process CPU time (``time.process_time``) over ``--ticks`` ticks after a warm-up,
``--runs`` times; the figures are the medians. ``cpu_pct_at_30hz`` is what that work would cost
a core at 30 ticks a second; the floor of reads, writes and epoll that a real server adds is in
docs/benchmarks.md ("The hot path again, and where the floor is").

Last line, one JSON object: participants, protocol, ticks, runs, ms_per_tick, us_per_pose (a
tick's work over its poses: each pose's read and its share of the tick), cpu_pct_at_30hz,
writes_per_tick, bytes_per_tick.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from websockets.frames import Frame, Opcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime import codec_v2 as v2  # noqa: E402
from realtime import protocol as p  # noqa: E402
from realtime.fanout import RoomRunner  # noqa: E402
from realtime.limits import RoomLimits  # noqa: E402
from realtime.roles import Role  # noqa: E402
from realtime.room import Enter, Room  # noqa: E402
from scenes.model import Scene, SceneObject  # noqa: E402
from server.room_socket import RoomSocket  # noqa: E402

TICK = 1 / 30
ACK_EVERY = 8
LAB = Scene("bench", 1, "Bench lab", (SceneObject("cup", "Cup", (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)),), ((0.0, 0.0, 0.0, 0.0),))
HANDSHAKE = (
    b"GET /room HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Transport:
    """An in-memory transport that counts what the socket writes and never backs up."""

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    abort = close


def masked(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True)


class Class:
    """N sockets joined to one room, and the reads their clients send."""

    def __init__(self, n: int, protocol: int, seed: int) -> None:
        loop = asyncio.get_running_loop()
        self.clock = 1000.0
        loop.time = lambda: self.clock  # type: ignore[method-assign]  # the virtual clock
        limits = RoomLimits(room_cap=n + 10)
        self.room = Room("bench", LAB, limits)
        self.runner = RoomRunner(self.room, loop)
        node = SimpleNamespace(config=SimpleNamespace(limits=limits, max_connections=n + 10), sockets=set())
        self.sockets: list[RoomSocket] = []
        self.transports: list[Transport] = []
        for i in range(n):
            sock, transport = RoomSocket(node), Transport()  # type: ignore[arg-type]
            sock.connection_made(transport)  # type: ignore[arg-type]
            sock.data_received(HANDSHAKE)
            for timer in sock._timers:
                timer.cancel()
            pid = f"p{i}"
            sock.runner, sock.participant_id = self.runner, pid
            self.runner.attach(pid, sock)
            self.runner.handle(pid, Enter(pid, Role.STUDENT, protocol=protocol))
            self.sockets.append(sock)
            self.transports.append(transport)
        rng = np.random.default_rng(seed)
        self.protocol = protocol
        self.where = rng.uniform(-3.0, 3.0, (n, 2))
        self.heading = rng.uniform(0.0, 2 * np.pi, n)

    def poses(self, k: int) -> list[bytes]:
        """Each client's pose frame for tick ``k`` (built before the timing starts)."""
        step = 0.01 * np.stack([np.cos(self.heading), np.sin(self.heading)], axis=1)
        self.where = np.clip(self.where + step, -3.0, 3.0)
        out = []
        for x, z in self.where.tolist():
            floats = [x, 1.6, z, 0, 0, 0, 1, x - 0.2, 1.1, z, 0, 0, 0, 1, x + 0.2, 1.1, z, 0, 0, 0, 1]
            if self.protocol == 2:
                out.append(masked(Opcode.BINARY, v2.encode_pose_v2(floats, k, 3, self.room.grid)))
            else:
                out.append(masked(Opcode.BINARY, p.encode_pose(floats, stamp=k)))
        return out

    def run(self, frames: list[list[bytes]], acks: dict[int, bytes]) -> None:
        """One read per client per tick (a pose, and every 8th an ack in the same read), then the tick."""
        for k, row in enumerate(frames):
            tick = self.room.tick_no
            for i, (sock, frame) in enumerate(zip(self.sockets, row)):
                sock.data_received(frame + acks[tick] if self.protocol == 2 and (i + k) % ACK_EVERY == 0 else frame)
            self.clock += TICK
            self.runner._tick()
            self.runner.stop()


async def measure(args: argparse.Namespace) -> dict[str, object]:
    lab = Class(args.participants, args.protocol, args.seed)
    warmup = [lab.poses(k) for k in range(30)]
    timed = [lab.poses(k) for k in range(args.ticks)]
    acks = {t: masked(Opcode.TEXT, json.dumps({"type": "ack", "tick": t}).encode()) for t in range(args.ticks * (args.runs + 2) + 100)}
    lab.run(warmup, acks)
    spans = []
    for _ in range(args.runs):
        writes0, bytes0 = sum(t.writes for t in lab.transports), sum(t.bytes for t in lab.transports)
        start = time.process_time()
        lab.run(timed, acks)
        spans.append(time.process_time() - start)
        writes = sum(t.writes for t in lab.transports) - writes0
        sent = sum(t.bytes for t in lab.transports) - bytes0
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        lab.run(timed, acks)
        profile.disable()
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
    per_tick = statistics.median(spans) / args.ticks
    return {
        "participants": args.participants,
        "protocol": args.protocol,
        "ticks": args.ticks,
        "runs": args.runs,
        "ms_per_tick": round(per_tick * 1e3, 3),
        "us_per_pose": round(per_tick / args.participants * 1e6, 2),
        "cpu_pct_at_30hz": round(per_tick * 30 * 100, 2),
        "writes_per_tick": round(writes / args.ticks, 1),
        "bytes_per_tick": round(sent / args.ticks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", "-n", type=int, default=200)
    parser.add_argument("--protocol", type=int, choices=(1, 2), default=2)
    parser.add_argument("--ticks", type=int, default=300, help="ticks per timed run (default 300)")
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 101), metavar="1..100", help="timed runs; figures are medians (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=int, metavar="K", default=0, help="also print cProfile's top K to stderr")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    print(f"{result['ms_per_tick']} ms a tick, {result['us_per_pose']} us a pose, {result['cpu_pct_at_30hz']} % of a core at 30 Hz")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
