#!/usr/bin/env python3
"""Pose sync benchmark: N participants in one room, each sending poses at R Hz.

    .venv/bin/python bench/sync.py --participants 200 --rate 30 --seconds 20 [--runs 3]

What it does
------------
It starts a real ``amaliy serve`` process on loopback (free ports, a temporary
data dir, ``--room-cap`` large enough) and reads the demo practical's join code
from its stdout. ``AMALIY_JOIN_RATE_PER_MIN`` is raised in the server's
environment because every bot joins from 127.0.0.1 and the default (30 joins
per minute per address) is meant for the internet, not for a load test.

Every bot joins like a real client: ``POST /api/join`` with the join code, then
a WebSocket handshake on the room socket (websockets' sans-I/O ClientProtocol)
and a ``join`` text message, and waits for ``welcome`` (which gives its slot).
From then on it sends a 92-byte pose frame (realtime.protocol.encode_pose,
masked as a client must) every 1/R seconds. The frame bytes are prebuilt once
per bot; each send only patches the masked u32 ``stamp`` (milliseconds of
time.monotonic(), system-wide on Linux, so the receiving process can subtract
it).

The load generator must cost less than the server it measures, on a machine
with two cores shared with the server, so:

* bots are spread over ``--procs`` worker processes plus one process for the
  observers; each runs one epoll loop with no asyncio, no task and no parser
  per bot;
* send times are spread over ``--groups`` phase groups per process (each
  process picks a random phase), never in one burst;
* most bots read and discard: ``recv_into(..., MSG_TRUNC)`` lets the kernel
  drop the bytes without copying them to user space; only the byte count is
  kept;
* ``--observers`` bots (default 2, counted among the N participants, joined as
  students and sending poses like the others) parse every WebSocket frame and
  decode every tick with realtime.protocol.decode_tick.

Measurement window
------------------
After every bot is in the room (and /healthz agrees), the bots keep sending
for ``--warmup`` seconds, then the window [t0, t1) of ``--seconds`` seconds
starts, then they keep sending for ``--tail`` more seconds so that poses sent
just before t1 can still arrive. Only the window counts.

Figures (last line: one JSON object)
------------------------------------
participants     N, bots in the room (observers included).
rate_hz          R, poses per second per bot.
seconds          length of the window.
p50_ms, p99_ms   latency of a pose from one bot to another: observer receive
                 time (time.monotonic() right after the recv() that completed
                 the tick frame) minus the pose's ``stamp`` (taken right before
                 the send), over every pose that was sent in the window by any
                 bot other than the observer itself and that the observer
                 received in a delta tick frame (first receipt only; full
                 refresh frames are excluded). Stamps are whole milliseconds,
                 truncated, so figures read up to 1 ms high. It includes the
                 wait for the next tick: at 30 Hz a pose waits 0 to 33 ms for
                 it, so the floor is about 17 ms (p50) and 33 ms (p99).
server_cpu_pct   (utime + stime) of the server process over the window, from
                 /proc/<pid>/stat, divided by the window's wall time, in
                 percent of one core.
msgs_in_per_s    pose frames the bots sent in the window / seconds (what the
                 server received, counted at the senders).
bytes_out_per_s  bytes the bots received in the window (all bots, WebSocket
                 framing included) / seconds: what the server sent.
dropped          over every observer: (a) poses sent in the window by other
                 bots that the observer never saw in any tick frame (delta or
                 full) received before t1 + tail, plus (b) tick gaps: for
                 consecutive tick frames received in the window, the sum of
                 (tick number difference - 1), i.e. frames the server skipped
                 for that observer. Note on (a): the server keeps only the
                 newest pose per participant per tick (poses are replaceable),
                 so when two poses of one sender reach the server within one
                 tick period (R > tick rate, or sender/server timing jitter at
                 R = tick rate) the older one is never relayed by design; (a)
                 counts those too, so it measures freshness lost to jitter as
                 well as loss. The human-readable lines above the JSON split
                 the figure up.

With several observers the figure grows with their number; the lines above the
JSON give it as a percentage of what the observers could have seen ("unseen").

The human-readable lines also report the load generator's own CPU (all its
processes, same /proc method), how late its sends were against their
schedule, the whole machine's CPU use (/proc/stat) split into ours, kernel
threads and other programs, and the ratio of server CPU to load-generator CPU,
because this machine is small and shared: when load generator + server need
more than the cores there are, latency measures the machine, not the server.
The load generator does the same work for the same N and R whatever the server
does, so that ratio is the steadier figure for comparing two server versions
when the machine's speed drifts between runs (``--server-root`` runs the server
from another source tree, e.g. a copy of the previous commit).

Before each run the bench waits (``--quiet-wait``) until other programs use
less than ``--quiet-limit`` % of one core; a run during which they used more
is reported as NOISY and repeated (``--retry-noisy`` times at most).

With ``--runs K`` the whole thing (fresh server included) is repeated K times
and the JSON holds the median of each figure. ``--py-spy FILE`` records the
server with py-spy during the window of each run (FILE gets a run suffix) and
prints the top entries; figures from a profiled run are skewed by the
profiler and should not be quoted.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import array
import http.client
import json
import random
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from websockets.client import ClientProtocol  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402
from websockets.utils import apply_mask  # noqa: E402

from realtime import codec_v2  # noqa: E402
from realtime import protocol as p  # noqa: E402

MAX_INFLIGHT = 8  # handshakes in flight per process
#: protocol 2: a bot sends an ``ack`` with every ACK_EVERY-th pose (about every 250 ms at 30 Hz);
#: the server's tick rate, for the tick it names
ACK_EVERY = 8
TICK_RATE = 30.0
JOIN_TIMEOUT = 60.0
RECV_MAX = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
U32 = 0xFFFFFFFF

# bot states
HANDSHAKE, JOINING, LIVE, DEAD = range(4)


# --------------------------------------------------------------------------- /proc


def proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, in seconds (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rfind(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (all threads)."""
    return sum(proc_times(pid))


def machine_cpu() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle, sum(values), steal


def all_processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (name, ppid, cpu seconds) for every process on the machine."""
    out: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.find("(") + 1 : data.rfind(")")]
        fields = data[data.rfind(")") + 2 :].split()
        out[int(entry)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def other_load(before: dict, after: dict, ours: set[int], wall: float) -> tuple[float, float, list[str]]:
    """CPU (% of one core) of processes that are not ours over a window: user programs,
    kernel threads (softirq work for loopback shows up here), and the top consumers."""
    user = kernel = 0.0
    top: list[tuple[float, str]] = []
    for pid, (name, ppid, cpu) in after.items():
        if pid in ours or pid == os.getpid():
            continue
        used = 100.0 * (cpu - before.get(pid, (name, ppid, 0.0))[2]) / wall
        if used <= 0:
            continue
        if pid == 2 or ppid == 2:
            kernel += used
        else:
            user += used
        top.append((used, name))
    top.sort(reverse=True)
    return user, kernel, [f"{name} {used:.0f}%" for used, name in top[:3] if used >= 1.0]


def wait_quiet(limit: float, max_wait: float) -> None:
    """Wait until the machine is quiet (busy below ``limit`` % of one core over a second)."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        before = all_processes()
        m0 = machine_cpu()
        time.sleep(1.0)
        m1 = machine_cpu()
        busy = 100.0 * cores * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
        if busy < limit:
            if warned:
                print(f"  machine quiet now ({busy:.0f}% of one core busy)", flush=True)
            return
        if time.monotonic() > deadline:
            print(f"  machine still busy ({busy:.0f}% of one core); measuring anyway", flush=True)
            return
        if not warned:
            _, _, top = other_load(before, all_processes(), set(), 1.0)
            print(f"  machine busy ({busy:.0f}% of one core: {', '.join(top)}); waiting up to {max_wait:g} s", flush=True)
            warned = True


# --------------------------------------------------------------------------- bots


class Bot:
    __slots__ = (
        "index", "name", "observer", "token", "ws_url", "sock", "fd", "state", "proto", "buf",
        "frame", "mask32", "slot", "group", "pending", "started", "error",
        "frames", "records", "errors", "cycle", "pose", "stamp_at", "grid", "tick0", "sends",
    )

    def __init__(self, index: int, observer: bool) -> None:
        self.index = index
        self.name = f"bot{index:04d}"
        self.observer = observer
        self.token = ""
        self.ws_url = ""
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = HANDSHAKE
        self.proto: ClientProtocol | None = None
        self.buf = bytearray()
        self.frame = bytearray()
        self.mask32 = 0
        self.slot = -1
        self.group = 0
        self.pending = b""
        self.started = 0.0
        self.error = ""
        #: observers: (tick, full, recv_ms) per tick frame, and record chunks
        self.frames: list[tuple[int, bool, float]] = []
        self.records: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.errors: Counter[str] = Counter()
        #: None, or frames to send in turn instead of ``frame`` (bench/challenges.py: a pose and
        #: an object move that change every send); each starts with the pose frame, masked by ``mask32``
        self.cycle: deque[bytearray] | None = None
        #: the pose the bot sends (21 floats), where its frame's masked stamp sits, and protocol 2's
        #: grid, the tick and time of its welcome (for its acks), and poses sent so far
        self.pose: list[float] = []
        self.stamp_at = 10
        self.grid: codec_v2.Grid | None = None
        self.tick0 = (0, 0.0)
        self.sends = 0


def prebuilt_pose_frame(bot: Bot, rng: random.Random) -> None:
    """A masked client WebSocket frame holding this bot's pose; only the stamp changes later.
    Protocol 2 bots get theirs again once their welcome gives the grid (v2_pose_frame)."""
    x, z = rng.uniform(-3, 3), rng.uniform(-3, 3)
    bot.pose = [x, 1.6, z, 0, 0, 0, 1, x - 0.2, 1.1, z - 0.25, 0, 0, 0, 1, x + 0.2, 1.1, z - 0.25, 0, 0, 0, 1]
    payload = p.encode_pose(np.array(bot.pose, np.float32), stamp=0)
    assert len(payload) == p.CLIENT_POSE.itemsize < 126
    mask = rng.randbytes(4)
    bot.frame = bytearray(bytes((0x82, 0x80 | len(payload))) + mask + apply_mask(payload, mask))
    # the stamp is payload bytes 4..8, masked by mask bytes 0..3 (4 % 4 == 0)
    bot.mask32 = int.from_bytes(mask, "little")
    bot.stamp_at = 2 + 4 + 4


def v2_pose_frame(bot: Bot, rng: random.Random) -> None:
    """The bot's pose as a masked POSE_V2 frame on its room's grid (36 bytes: both hands tracked)."""
    assert bot.grid is not None
    payload = codec_v2.encode_pose_v2(bot.pose, 0, p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED, bot.grid)
    mask = rng.randbytes(4)
    bot.frame = bytearray(bytes((0x82, 0x80 | len(payload))) + mask + apply_mask(payload, mask))
    # the stamp is payload bytes 2..6, masked by mask bytes 2, 3, 0, 1
    bot.mask32 = int.from_bytes(mask[2:] + mask[:2], "little")
    bot.stamp_at = 2 + 4 + 2


def masked_text(text: str, rng: random.Random) -> bytes:
    """A client's masked WebSocket text frame (short: under 126 bytes)."""
    payload = text.encode()
    mask = rng.randbytes(4)
    return bytes((0x81, 0x80 | len(payload))) + mask + apply_mask(payload, mask)


def rest_join(code: str, bot: Bot, conn: http.client.HTTPConnection) -> None:
    body = json.dumps({"code": code, "name": bot.name, "role": "student"})
    conn.request("POST", "/api/join", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"/api/join answered {response.status}: {data[:200]!r}")
    info = json.loads(data)
    bot.token, bot.ws_url = info["token"], info["ws_url"]


def parse_frames(bot: Bot, recv_ms: float, on_frame) -> None:
    """Split the bot's buffer into server WebSocket frames (unmasked, never fragmented)."""
    buf = bot.buf
    while len(buf) >= 2:
        b1 = buf[1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if len(buf) < 4:
                return
            (length,) = struct.unpack_from(">H", buf, 2)
            head = 4
        elif length == 127:
            if len(buf) < 10:
                return
            (length,) = struct.unpack_from(">Q", buf, 2)
            head = 10
        if b1 & 0x80:
            head += 4  # a server must not mask; tolerate it anyway
        if len(buf) < head + length:
            return
        payload = bytes(buf[head : head + length])
        if b1 & 0x80:
            payload = apply_mask(payload, bytes(buf[head - 4 : head]))
        opcode = buf[0] & 0x0F
        del buf[: head + length]
        on_frame(bot, opcode, payload, recv_ms)


class Worker:
    """One load-generator process: join its bots, then send and receive in one epoll loop."""

    def __init__(self, cfg: dict[str, Any], indices: list[int], observer: bool, pipe: Any) -> None:
        self.cfg = cfg
        self.pipe = pipe
        self.rng = random.Random(cfg["seed"] * 7919 + indices[0])
        self.bots = [Bot(i, observer) for i in indices]
        for bot in self.bots:
            prebuilt_pose_frame(bot, self.rng)
        self.ep = select.epoll()
        self.by_fd: dict[int, Bot] = {}
        self.inflight = 0
        self.resolved = 0
        self.period = 1.0 / cfg["rate"]
        self.n_groups = max(1, min(cfg["groups"], len(self.bots)))
        self.groups: list[list[Bot]] = [[] for _ in range(self.n_groups)]
        self.live = 0
        # window and counters
        self.t_start = self.t_end = self.t_stop = float("inf")
        self.sent_win = 0
        self.sent_keys = array.array("Q")
        self.lag_ms = array.array("f")
        self.skipped = 0
        self.blocked = 0
        self.bytes_win = 0
        self.closed_live = 0

    # ------------------------------------------------------------------ joining

    def start(self, bot: Bot) -> None:
        uri = parse_uri(bot.ws_url)
        sock = socket.create_connection((uri.host, uri.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        bot.sock, bot.fd = sock, sock.fileno()
        bot.proto = ClientProtocol(uri, max_size=None)
        bot.proto.send_request(bot.proto.connect())
        for chunk in bot.proto.data_to_send():
            sock.send(chunk)
        bot.state = HANDSHAKE
        bot.started = time.monotonic()
        self.by_fd[bot.fd] = bot
        self.ep.register(bot.fd, select.EPOLLIN)
        self.inflight += 1

    def handshake_data(self, bot: Bot, data: bytes) -> None:
        proto = bot.proto
        assert proto is not None and bot.sock is not None
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Response):
                if proto.state is not State.OPEN:
                    self.fail(bot, f"handshake refused: {proto.handshake_exc}")
                    return
                join = {"type": "join", "token": bot.token}
                if self.cfg["protocol"] != 1:
                    join["protocol"] = self.cfg["protocol"]
                proto.send_text(json.dumps(join).encode())
                for chunk in proto.data_to_send():
                    bot.sock.send(chunk)
                bot.state = JOINING
                bot.proto = None
                return

    def fail(self, bot: Bot, why: str) -> None:
        if bot.state in (HANDSHAKE, JOINING):
            self.inflight -= 1
            self.resolved += 1
        elif bot.state == LIVE:
            self.closed_live += 1
        bot.state = DEAD
        bot.error = why
        if self.by_fd.get(bot.fd) is bot:
            self.ep.unregister(bot.fd)
            del self.by_fd[bot.fd]
        if bot.sock is not None:
            bot.sock.close()

    def on_frame(self, bot: Bot, opcode: int, payload: bytes, recv_ms: float) -> None:
        if opcode == 0x2:
            if bot.state != LIVE:
                return
            tick = codec_v2.decode_tick_v2(payload, bot.grid) if payload[0] == p.BinaryKind.TICK_V2 and bot.grid else p.decode_tick(payload)
            bot.frames.append((tick.tick, tick.full, recv_ms))
            if len(tick.poses):
                bot.records.append((len(bot.frames) - 1, tick.poses["slot"].copy(), tick.poses["stamp"].copy()))
        elif opcode == 0x1:
            msg = json.loads(payload)
            kind = msg.get("type")
            if kind == "error":
                bot.errors[msg.get("code", "?")] += 1
                if bot.state == JOINING:
                    self.fail(bot, f"join refused: {msg.get('code')}: {msg.get('message')}")
            elif kind == "welcome" and bot.state == JOINING:
                bot.slot = int(msg["participant"]["slot"])
                if msg.get("protocol", 1) >= 2:
                    bot.grid = codec_v2.Grid.from_welcome(msg["grid"])
                    bot.tick0 = (int(msg["snapshot"]["tick"]), time.monotonic())
                    v2_pose_frame(bot, self.rng)
                bot.state = LIVE
                self.inflight -= 1
                self.resolved += 1
                bot.group = self.live % self.n_groups
                self.live += 1
                self.groups[bot.group].append(bot)
                if not bot.observer:
                    bot.buf = bytearray()  # from here on: read and discard
        elif opcode == 0x8:
            code = struct.unpack_from(">H", payload)[0] if len(payload) >= 2 else 1005
            reason = payload[2:].decode(errors="replace")
            bot.errors[f"close {code} {reason}"] += 1
            self.fail(bot, f"closed by server: {code} {reason}")

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        cfg = self.cfg
        conn = http.client.HTTPConnection("127.0.0.1", cfg["http_port"], timeout=30)
        for bot in self.bots:
            rest_join(cfg["code"], bot, conn)
        conn.close()

        ep, pipe, by_fd, groups = self.ep, self.pipe, self.by_fd, self.groups
        pipe_fd = pipe.fileno()
        ep.register(pipe_fd, select.EPOLLIN)
        to_connect = deque(self.bots)
        reported = results_sent = exiting = False
        period, n_groups = self.period, self.n_groups
        step = period / n_groups
        next_due = time.monotonic() + self.rng.random() * period
        gidx = 0
        trunc_buf = bytearray(RECV_MAX)
        trunc = socket.MSG_TRUNC
        monotonic = time.monotonic
        pack_into = struct.pack_into
        lag_append = self.lag_ms.append
        key_append = self.sent_keys.append

        while not exiting:
            now = monotonic()
            while self.inflight < MAX_INFLIGHT and to_connect:
                self.start(to_connect.popleft())
            if not reported:
                if self.resolved == len(self.bots):
                    pipe.send(("live", self.live, [b.error for b in self.bots if b.state == DEAD]))
                    reported = True
                for bot in list(by_fd.values()):
                    if bot.state != LIVE and now - bot.started > JOIN_TIMEOUT:
                        self.fail(bot, "timed out joining")

            # sends that are due, one phase group at a time; behind by a period -> skip, never burst
            t_start, t_end = self.t_start, self.t_end
            while next_due <= now:
                late = now - next_due
                group = groups[gidx]
                in_win = t_start <= now < t_end
                if late > period:
                    if in_win:
                        self.skipped += len(group)
                else:
                    if in_win:
                        lag_append(late * 1000.0)
                    for bot in group:
                        if bot.state != LIVE:
                            continue
                        sock = bot.sock
                        if bot.pending:
                            try:
                                n = sock.send(bot.pending)
                            except BlockingIOError:
                                n = 0
                            bot.pending = bot.pending[n:]
                            if bot.pending:
                                self.blocked += in_win
                                continue
                        if bot.cycle is not None:
                            bot.cycle.rotate(-1)
                            bot.frame = bot.cycle[0]
                        stamp = int(monotonic() * 1000.0) & U32
                        frame = bot.frame
                        pack_into("<I", frame, bot.stamp_at, stamp ^ bot.mask32)
                        bot.sends += 1
                        if bot.grid is not None and bot.sends % ACK_EVERY == 0:
                            # a protocol 2 client acknowledges about every 250 ms. These bots discard what
                            # they receive, so they cannot name a tick they processed: they name one a
                            # second ahead of the server's, which it parses and looks up like any ack and
                            # then ignores (never sent), so no link is judged by a guess
                            tick0, at = bot.tick0
                            frame = frame + masked_text(json.dumps({"type": "ack", "tick": tick0 + int((now - at + 1.0) * TICK_RATE)}), self.rng)
                        try:
                            n = sock.send(frame)
                        except BlockingIOError:
                            self.blocked += in_win
                            continue
                        except OSError as exc:
                            self.fail(bot, f"send failed: {exc}")
                            continue
                        if n < len(frame):
                            bot.pending = bytes(frame[n:])
                        if in_win:
                            self.sent_win += 1
                            key_append((bot.slot << 32) | stamp)
                gidx += 1
                if gidx == n_groups:
                    gidx = 0
                next_due += step

            if now >= self.t_stop and not results_sent:
                pipe.send(("result", self.collect()))
                results_sent = True

            timeout = min(next_due - monotonic(), 0.05)
            for fd, _ in ep.poll(timeout if timeout > 0 else 0):
                if fd == pipe_fd:
                    msg = pipe.recv()
                    if msg[0] == "go":
                        self.t_start, self.t_end, self.t_stop = msg[1], msg[2], msg[3]
                    elif msg[0] == "exit":
                        exiting = True
                    continue
                bot = by_fd.get(fd)
                if bot is None:
                    continue
                sock = bot.sock
                if bot.state == LIVE and not bot.observer:
                    try:
                        n = sock.recv_into(trunc_buf, RECV_MAX, trunc)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:
                        self.fail(bot, f"recv failed: {exc}")
                        continue
                    if n == 0:
                        self.fail(bot, "connection closed by server")
                        continue
                    if t_start <= monotonic() < t_end:
                        self.bytes_win += n
                    continue
                try:
                    data = sock.recv(RECV_MAX)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    self.fail(bot, f"recv failed: {exc}")
                    continue
                tnow = monotonic()
                if not data:
                    self.fail(bot, "connection closed by server")
                    continue
                if t_start <= tnow < t_end:
                    self.bytes_win += len(data)
                if bot.state == HANDSHAKE:
                    self.handshake_data(bot, data)
                else:
                    bot.buf += data
                    parse_frames(bot, tnow * 1000.0, self.on_frame)
        for bot in self.bots:
            if bot.sock is not None:
                bot.sock.close()

    def collect(self) -> dict[str, Any]:
        observers = []
        for bot in self.bots:
            if not bot.observer:
                continue
            frames = np.array(bot.frames, dtype=[("tick", "<u4"), ("full", "?"), ("recv_ms", "<f8")])
            if bot.records:
                frame_of = np.concatenate([np.full(len(s), i, np.int64) for i, s, _ in bot.records])
                slots = np.concatenate([s for _, s, _ in bot.records]).astype(np.int64)
                stamps = np.concatenate([t for _, _, t in bot.records]).astype(np.int64)
            else:
                frame_of = slots = stamps = np.zeros(0, np.int64)
            observers.append(
                {
                    "slot": bot.slot,
                    "state": bot.state,
                    "frames": frames,
                    "frame_of": frame_of,
                    "slots": slots,
                    "stamps": stamps,
                    "errors": dict(bot.errors),
                }
            )
        return {
            "pid": os.getpid(),
            "bots": len(self.bots),
            "live_at_end": sum(1 for b in self.bots if b.state == LIVE),
            "dead": [b.error for b in self.bots if b.state == DEAD],
            "sent_win": self.sent_win,
            "sent_keys": np.frombuffer(self.sent_keys, np.uint64).copy(),
            "lag_ms": np.frombuffer(self.lag_ms, np.float32).copy(),
            "skipped": self.skipped,
            "blocked": self.blocked,
            "bytes_win": self.bytes_win,
            "closed_live": self.closed_live,
            "observers": observers,
        }


def worker_main(cfg: dict[str, Any], indices: list[int], observer: bool, pipe: Any, worker: type[Worker] | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        (worker or Worker)(cfg, indices, observer, pipe).run()
    except BaseException as exc:  # tell the main process rather than hang it
        import traceback

        pipe.send(("crash", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real ``amaliy serve`` process on loopback with its own temporary data dir."""

    def __init__(self, room_cap: int, extra: list[str], root: Path | None = None, env_extra: list[str] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="amaliy-bench-"))
        self.http_port, self.ws_port = free_port(), free_port()
        while self.ws_port == self.http_port:
            self.ws_port = free_port()
        exe = Path(sys.executable).with_name("amaliy")
        env = dict(os.environ, AMALIY_JOIN_RATE_PER_MIN="1000000")
        env.update(item.split("=", 1) for item in env_extra)
        if root is not None:  # another source tree, e.g. a checkout of the previous commit for an A/B
            cmd = [sys.executable, "-m", "server.cli"]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
        else:
            root = ROOT
            cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "server.cli"]
        cmd += [
            "serve", "--host", "127.0.0.1", "--port", str(self.http_port), "--ws-port", str(self.ws_port),
            "--data-dir", str(self.dir / "data"), "--room-cap", str(room_cap), *extra,
        ]
        self.out_path = self.dir / "server.out"
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, env=env, cwd=root)
        self.pid = self.proc.pid
        self.code = self._join_code()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self._wait_healthy()

    def _join_code(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.out_path.read_text()}")
            for line in self.out_path.read_text().splitlines():
                if "join code " in line:
                    return line.rsplit("join code ", 1)[1].strip()
            time.sleep(0.05)
        raise RuntimeError(f"no join code on the server's stdout:\n{self.out_path.read_text()}")

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.health()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server never answered /healthz")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/healthz", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- analysis


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def analyse(results: list[dict[str, Any]], t_start: float, t_end: float, tail: float) -> dict[str, Any]:
    """Latency, unseen poses and tick gaps per observer (see the module docstring)."""
    sent = np.concatenate([r["sent_keys"] for r in results])
    sent_slots = (sent >> np.uint64(32)).astype(np.int64)
    start_ms = int(t_start * 1000.0)
    start32 = start_ms & U32
    window_ms = int((t_end - t_start) * 1000.0) + 1
    latencies = []
    per_observer = []
    for r in results:
        for obs in r["observers"]:
            frames = obs["frames"]
            recv_ms = frames["recv_ms"]
            in_win = (recv_ms >= t_start * 1000.0) & (recv_ms < t_end * 1000.0)
            ticks = frames["tick"][in_win & ~frames["full"]].astype(np.int64)
            gaps = int(np.clip(np.diff(ticks) - 1, 0, None).sum()) if len(ticks) > 1 else 0
            fulls = int((in_win & frames["full"]).sum())
            slots, stamps, frame_of = obs["slots"], obs["stamps"], obs["frame_of"]
            by_deadline = recv_ms[frame_of] < (t_end + tail) * 1000.0
            seen = np.unique(((slots[by_deadline] << 32) | stamps[by_deadline]).astype(np.uint64))
            others = sent[sent_slots != obs["slot"]]
            unseen = int((~np.isin(others, seen)).sum())
            # latency: delta frames, others' poses sent in the window, first receipt
            rel = (stamps - start32) & U32
            keep = (~frames["full"][frame_of]) & (slots != obs["slot"]) & (rel < window_ms)
            keys = ((slots << 32) | stamps)[keep]
            _, first = np.unique(keys, return_index=True)
            lat = (recv_ms[frame_of][keep][first] - start_ms) - rel[keep][first]
            latencies.append(lat)
            per_observer.append(
                {
                    "slot": obs["slot"], "alive": obs["state"] == LIVE, "frames": int(in_win.sum()),
                    "sent_by_others": len(others), "unseen": unseen, "tick_gaps": gaps, "full_refreshes": fulls,
                    "errors": obs["errors"], "samples": len(lat),
                }
            )
    lat = np.concatenate(latencies) if latencies else np.zeros(0)
    return {"latency": lat, "observers": per_observer}


# --------------------------------------------------------------------------- py-spy


def _function(frame: str) -> str:
    """'func (path/file.py:123)' -> 'func (path/file.py)': aggregate a function's lines."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def pyspy_top(path: Path, n: int = 15) -> str:
    """Top self (by line) and inclusive (by function) entries of a py-spy ``--format raw`` file."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        own[frames[-1]] += c
        for f in {_function(f) for f in frames}:
            incl[f] += c
    if not total:
        return "  (no samples)"
    out = [f"  {total} samples; self time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(n)]
    out.append("  inclusive:")
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in incl.most_common(n)]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def sleep_until(t: float) -> None:
    while (d := t - time.monotonic()) > 0:
        time.sleep(min(d, 0.5))


def run_once(
    args: argparse.Namespace, run: int, prepare: Callable[[Server], str] | None = None, worker: type[Worker] | None = None
) -> dict[str, Any]:
    """One run with a fresh server. Hooks for other benchmarks (bench/challenges.py): ``prepare``
    sets the server up and returns the join code to use (default: the demo practical's), and
    ``worker`` replaces the load-generator class. The summary's "_results" holds what each
    load-generator process collected."""
    n, k = args.participants, args.observers
    if not 0 < k <= n:
        raise SystemExit("--observers must be between 1 and --participants")
    if args.quiet_wait > 0:
        wait_quiet(args.quiet_limit, args.quiet_wait)
    server = Server(args.room_cap or n + 10, args.server_arg, args.server_root, args.server_env)
    ctx = get_context("fork")
    procs = []
    pipes = []
    try:
        code = server.code if prepare is None else prepare(server)
        cfg = {
            "base": server.base, "http_port": server.http_port, "code": code, "rate": args.rate,
            "groups": args.groups, "seed": args.seed + run, "protocol": args.protocol,
        }
        plan = [(list(range(k)), True)]
        rest = list(range(k, n))
        per = max(1, args.procs)
        plan += [(rest[i::per], False) for i in range(per) if rest[i::per]]
        for indices, observer in plan:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(cfg, indices, observer, theirs, worker), daemon=True)
            proc.start()
            procs.append(proc)
            pipes.append(ours)

        def receive(pipe: Any, timeout: float) -> tuple:
            if not pipe.poll(timeout):
                raise RuntimeError("a load-generator process did not answer in time")
            msg = pipe.recv()
            if msg[0] == "crash":
                raise RuntimeError("load-generator process crashed:\n" + msg[1])
            return msg

        joined_at = time.monotonic()
        live = 0
        failures: list[str] = []
        for pipe in pipes:
            msg = receive(pipe, JOIN_TIMEOUT + 30 + n * 0.1)
            live += msg[1]
            failures += msg[2]
        join_s = time.monotonic() - joined_at
        health = server.health()
        print(
            f"run {run + 1}: {live}/{n} bots in the room after {join_s:.1f} s "
            f"(server pid {server.pid} says {health['participants']} participants, {health['connections']} sockets)",
            flush=True,
        )
        if failures:
            print(f"  join failures ({len(failures)}): {Counter(failures).most_common(3)}", flush=True)
        if live != n:
            raise RuntimeError(f"only {live} of {n} bots joined")

        t_start = time.monotonic() + args.warmup
        t_end = t_start + args.seconds
        t_stop = t_end + args.tail
        for pipe in pipes:
            pipe.send(("go", t_start, t_end, t_stop))
        loadgen_pids = [proc.pid for proc in procs]
        spy = None
        sleep_until(t_start)
        user0, sys0 = proc_times(server.pid)
        gen0 = sum(proc_cpu_seconds(pid) for pid in loadgen_pids) + proc_cpu_seconds(os.getpid())
        m0 = machine_cpu()
        procs0 = all_processes()
        w0 = time.monotonic()
        if args.py_spy:
            out = Path(f"{args.py_spy}.run{run + 1}.txt")
            spy = subprocess.Popen(
                [args.py_spy_bin, "record", "-p", str(server.pid), "-d", str(int(args.seconds)), "-r", str(args.py_spy_rate),
                 "--format", "raw", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        sleep_until(t_end)
        user1, sys1 = proc_times(server.pid)
        gen1 = sum(proc_cpu_seconds(pid) for pid in loadgen_pids) + proc_cpu_seconds(os.getpid())
        m1 = machine_cpu()
        wall = time.monotonic() - w0
        procs1 = all_processes()
        results = [receive(pipe, args.tail + 60)[1] for pipe in pipes]
        health_end = server.health()
        if spy is not None:
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                print(f"  py-spy failed: {err.decode(errors='replace')[-500:]}", flush=True)
    finally:
        server.stop()
        for pipe in pipes:
            try:
                pipe.send(("exit",))
            except OSError:
                pass
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()

    a = analyse(results, t_start, t_end, args.tail)
    lat = a["latency"]
    sent_win = sum(r["sent_win"] for r in results)
    bytes_win = sum(r["bytes_win"] for r in results)
    lag = np.concatenate([r["lag_ms"] for r in results])
    unseen = sum(o["unseen"] for o in a["observers"])
    gaps = sum(o["tick_gaps"] for o in a["observers"])
    others = sum(o["sent_by_others"] for o in a["observers"])
    server_user = 100.0 * (user1 - user0) / wall
    server_sys = 100.0 * (sys1 - sys0) / wall
    server_cpu = server_user + server_sys
    gen_cpu = 100.0 * (gen1 - gen0) / wall
    cores = os.cpu_count() or 1
    machine_pct = 100.0 * cores * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    steal_pct = 100.0 * cores * (m1[2] - m0[2]) / max(1, m1[1] - m0[1])
    _, other_kernel, other_top = other_load(procs0, procs1, {server.pid, *loadgen_pids}, wall)
    # everything else the machine did, short-lived processes included
    other_user = max(0.0, machine_pct - server_cpu - gen_cpu - other_kernel)
    noisy = other_user > args.quiet_limit
    summary = {
        "participants": n,
        "rate_hz": args.rate,
        "seconds": round(wall, 2),
        "p50_ms": round(pct(lat, 50), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "server_cpu_pct": round(server_cpu, 1),
        "msgs_in_per_s": round(sent_win / wall, 1),
        "bytes_out_per_s": round(bytes_win / wall),
        "dropped": unseen + gaps,
    }
    print(
        f"  latency ms: p50 {pct(lat, 50):.1f}  p90 {pct(lat, 90):.1f}  p99 {pct(lat, 99):.1f}  "
        f"p99.9 {pct(lat, 99.9):.1f}  max {float(lat.max()) if len(lat) else float('nan'):.1f}  "
        f"({len(lat)} samples from {sum(1 for o in a['observers'])} observers)",
        flush=True,
    )
    print(
        f"  server CPU {server_cpu:.1f}% of one core (user {server_user:.1f}%, system {server_sys:.1f}%); load generator CPU {gen_cpu:.1f}% "
        f"({len(procs)} processes); whole machine busy {machine_pct:.0f}% of one core ({cores} cores = {100 * cores}%), "
        f"stolen by the hypervisor {steal_pct:.1f}%; server/load generator CPU ratio {server_cpu / max(gen_cpu, 0.1):.2f}",
        flush=True,
    )
    print(
        f"  rest of the machine: kernel threads {other_kernel:.1f}%, other programs {other_user:.1f}% "
        f"(top: {', '.join(other_top) or '-'})"
        + ("  NOISY: another program competed for the CPU" if noisy else ""),
        flush=True,
    )
    print(
        f"  in {sent_win / wall:.0f} poses/s; out {bytes_win / wall / 1e6:.2f} MB/s; "
        f"unseen {unseen}/{others} ({100 * unseen / max(1, others):.2f}%), tick gaps {gaps}, "
        f"full refreshes {sum(o['full_refreshes'] for o in a['observers'])}",
        flush=True,
    )
    print(
        f"  send lag ms: p50 {pct(lag, 50):.2f} p99 {pct(lag, 99):.2f} max {float(lag.max()) if len(lag) else 0:.1f}; "
        f"skipped {sum(r['skipped'] for r in results)}, blocked {sum(r['blocked'] for r in results)}, "
        f"closed {sum(r['closed_live'] for r in results)}; server at end: {health_end['participants']} participants",
        flush=True,
    )
    errors: Counter[str] = Counter()
    for o in a["observers"]:
        errors.update(o["errors"])
    if errors:
        print(f"  observers got errors/closes: {dict(errors)}", flush=True)
    if args.py_spy and Path(f"{args.py_spy}.run{run + 1}.txt").exists():
        print(pyspy_top(Path(f"{args.py_spy}.run{run + 1}.txt"), args.py_spy_top), flush=True)
    summary["_loadgen_cpu_pct"] = gen_cpu
    summary["_ratio"] = server_cpu / max(gen_cpu, 0.1)
    summary["_unseen_pct"] = 100 * unseen / max(1, others)
    summary["_machine_pct"] = machine_pct
    summary["_noisy"] = noisy
    summary["_results"] = results
    return summary


def main(argv: list[str] | None = None) -> None:
    # SIGTERM: unwind, so that the server and the workers are stopped on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", "-n", type=int, default=200, help="bots in the room (default 200)")
    parser.add_argument("--rate", type=float, default=30.0, help="poses per second per bot (default 30)")
    parser.add_argument("--protocol", type=int, default=2, choices=(1, 2),
                        help="protocol version the bots speak (default 2: quantized poses, acks)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window (default 20)")
    parser.add_argument("--observers", type=int, default=2, help="bots that decode every tick and time it (default 2)")
    parser.add_argument("--procs", type=int, default=2, help="processes for the other bots (default 2)")
    parser.add_argument("--groups", type=int, default=8, help="send phase groups per process (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the window (default 3)")
    parser.add_argument("--tail", type=float, default=1.0, help="seconds of load after the window (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="repeat with a fresh server; JSON holds medians")
    parser.add_argument("--room-cap", type=int, default=0, help="server --room-cap (default participants + 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-limit", type=float, default=30.0,
                        help="%% of one core other programs may use: wait for less before a run, flag more during it (default 30)")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="seconds to wait for a quiet machine (default 300; 0: don't)")
    parser.add_argument("--retry-noisy", type=int, default=2, help="repeat a run that was flagged noisy, up to this many times (default 2)")
    parser.add_argument("--server-root", type=Path, help="run the server from this source tree (default: this repo)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment variable for the server process")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for 'amaliy serve', written --server-arg=--flag=value")
    parser.add_argument("--py-spy", metavar="FILE", help="record the server with py-spy (raw stacks to FILE.runK.txt)")
    parser.add_argument("--py-spy-top", type=int, default=15, help="entries of the profile to print (default 15)")
    parser.add_argument("--py-spy-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--py-spy-bin", default=str(Path(sys.executable).with_name("py-spy")))
    args = parser.parse_args(argv)

    runs = []
    retries = args.retry_noisy
    while len(runs) < args.runs:
        result = run_once(args, len(runs))
        if result["_noisy"] and retries > 0:
            retries -= 1
            print("  (noisy run discarded; repeating it)", flush=True)
            continue
        runs.append(result)
    if len(runs) > 1:
        keys = [k for k in runs[0] if not k.startswith("_")]
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        med["participants"], med["rate_hz"] = args.participants, args.rate
        for k in ("p50_ms", "p99_ms", "server_cpu_pct", "msgs_in_per_s", "seconds"):
            med[k] = round(med[k], 2)
        med["bytes_out_per_s"] = round(med["bytes_out_per_s"])
        med["dropped"] = int(med["dropped"])
        print(
            f"medians of {len(runs)} runs; per run p99 {[r['p99_ms'] for r in runs]}, "
            f"server CPU {[r['server_cpu_pct'] for r in runs]}, "
            f"loadgen CPU {[round(r['_loadgen_cpu_pct'], 1) for r in runs]}, "
            f"server/loadgen {[round(r['_ratio'], 2) for r in runs]}, dropped {[r['dropped'] for r in runs]} "
            f"(unseen % {[round(r['_unseen_pct'], 2) for r in runs]})",
            flush=True,
        )
        final = med
    else:
        final = {k: v for k, v in runs[0].items() if not k.startswith("_")}
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()
