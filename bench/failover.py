#!/usr/bin/env python3
"""Failover benchmark: kill -9 the node hosting the most rooms, and time the rooms coming back.

    .venv/bin/python bench/failover.py [--nodes 3] [--rooms 6] [--bots 30] [--rate 30] [--rounds 5]

What it does
------------
It starts ``--nodes`` real ``amaliy serve`` processes of one deployment on the
Redis at ``--redis`` (a fresh deployment name, one shared secret.key, voice
off), opens ``--rooms`` practicals of the demo lab spread over them, and joins
``--bots`` bots per room, each through a node picked in turn (so most join
through a node that does not host their room and are forwarded), with the SDK's
``auto_reconnect``. Bots send a pose ``--rate`` times a second; one bot per
room holds that room's water beaker.

Each round: SIGKILL the node hosting the most rooms (read from the room
leases in Redis), wait until every bot is back, restart the killed node on the
same data dir and ports, and wait until it is healthy.

Figures (last line: one JSON object)
------------------------------------
failover_p50_s, failover_p99_s  per room of the killed node: SIGKILL until the
    room runs on another node, i.e. until its snapshot in Redis carries a
    higher epoch (the new owner writes one as soon as it restored the room and
    before its first tick).
reconnect_p95_s  per bot of those rooms: SIGKILL until its ``welcome`` from
    the new host (SDK auto_reconnect: backoff, every node tried in turn).
progress_lost  bots that came back as new participants, or whose room's
    holder of the beaker, participants or event sequence went backwards.
double_owner_ticks  log entries written under an older epoch after the new
    owner's first snapshot (epoch audit of the Redis stream; must be 0).
state_hash_mismatches  rooms whose state restored, by this process, from the
    shared log at the moment of the kill is not what its bots last saw (seq,
    participants, the beaker's holder).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "clients" / "python")]

from amaliy_client import AmaliyClient  # noqa: E402
from realtime.log.lease import room_key  # noqa: E402
from realtime.log.recovery import restore  # noqa: E402
from realtime.log.redis_log import RedisLog  # noqa: E402
from tests.conftest import free_port_pair, sample_scene  # noqa: E402

BEAKER = "beaker-water@1"


class Node:
    def __init__(self, index: int, root: Path, env: dict[str, str]) -> None:
        self.index = index
        self.dir = root / f"node{index}"
        self.port = free_port_pair()
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.dir), "--no-demo"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("node exited:\n" + "".join(self.output))
            self.output.append(line)
            if line.startswith("API docs:"):
                break
        import threading

        threading.Thread(target=lambda: self.output.extend(self.proc.stdout or ()), daemon=True).start()
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("node did not become healthy")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        found = re.search(r"^\s+(ak_\S+)$", "".join(self.output), re.M)
        assert found, "".join(self.output)
        return found.group(1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def keep_posing(bots: list[AmaliyClient], rate: float, stop: asyncio.Event) -> None:
    pose = [0.0, 1.6, 0.0, 0, 0, 0, 1, -0.2, 1.1, 0, 0, 0, 0, 1, 0.2, 1.1, 0, 0, 0, 0, 1]
    period = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        for bot in bots:
            if bot.connected:
                try:
                    await bot.send_pose(pose)
                except Exception:
                    pass
        nxt += period
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))


async def owners(redis: aioredis.Redis, rooms: list[str]) -> dict[str, tuple[str, int]]:
    out = {}
    for room in rooms:
        value = await redis.get(room_key(room, "lease"))
        if value:
            owner, epoch = value.decode().rsplit(":", 1)
            out[room] = (owner, int(epoch))
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="amaliy-failover-"))
    deployment = "bench" + secrets.token_hex(4)
    secret = secrets.token_hex(32)
    env = {**os.environ, "REDIS_URL": args.redis, "AMALIY_DEPLOYMENT": deployment, "AMALIY_VOICE": "false",
           "AMALIY_JOIN_RATE_PER_MIN": "1000000", "AMALIY_RESUME_WINDOW": "120", "AMALIY_MAX_SESSIONS_PER_TEACHER": "100",
           "AMALIY_ROOM_CAP": str(args.bots + 10)}
    nodes = [Node(i, root, env) for i in range(args.nodes)]
    for node in nodes:
        node.dir.mkdir(parents=True)
        (node.dir / "secret.key").write_text(secret)
        (node.dir / "secret.key").chmod(0o600)
        node.start()
    redis = aioredis.Redis.from_url(args.redis)
    log = RedisLog(redis)
    seal_key = hmac.digest(bytes.fromhex(secret), b"amaliy-room-snapshot", hashlib.sha256)
    scene = sample_scene()
    stop = asyncio.Event()
    bots_by_room: dict[str, list[AmaliyClient]] = {}
    failovers: list[float] = []
    reconnects: list[float] = []
    lost = double = mismatches = 0
    try:
        rooms = []
        async with httpx.AsyncClient(timeout=30) as http:
            teacher = nodes[0].key  # the first node creates the deployment's teacher; the others share it (server.replica)
            for r in range(args.rooms):
                node = nodes[r % len(nodes)]
                opened = await http.post(node.base + "/api/sessions", json={"title": f"Room {r}"}, headers={"Authorization": f"Bearer {teacher}"})
                opened.raise_for_status()
                rooms.append((opened.json()["id"], opened.json()["join_code"]))
        for r, (room, code) in enumerate(rooms):
            bots = []
            for b in range(args.bots):
                via = nodes[(r + b) % len(nodes)]
                bots.append(await AmaliyClient.join(via.base, code, f"Bot {b}", auto_reconnect=True))
            await bots[0].grab(BEAKER)
            await bots[0].expect("grabbed", object=BEAKER, timeout=30)
            bots_by_room[room] = bots
        all_bots = [bot for bots in bots_by_room.values() for bot in bots]
        poser = asyncio.create_task(keep_posing(all_bots, args.rate, stop))
        room_ids = [room for room, _ in rooms]
        for round_no in range(args.rounds):
            await asyncio.sleep(args.settle)
            held = await owners(redis, room_ids)
            counts: dict[str, int] = {}
            for owner, _ in held.values():
                counts[owner] = counts.get(owner, 0) + 1
            victim_id = max(counts, key=counts.__getitem__)
            victim = next(n for n in nodes if victim_id.endswith(f":{n.port}"))
            moved = [room for room, (owner, _) in held.items() if owner == victim_id]
            seen = {room: (bots_by_room[room][0].seq, set(bots_by_room[room][0].participants), bots_by_room[room][0].objects[BEAKER]["holder"]) for room in moved}
            marks = {id(bot): bot.reconnects for room in moved for bot in bots_by_room[room]}
            killed = time.monotonic()
            victim.kill()
            # the log as the killed node left it, restored here: is it what the bots saw?
            for room in moved:
                stored = await log.load(room)
                back = restore(stored, seal_key, lambda pid, version: scene).room if stored else None
                seq, members, holder = seen[room]
                if back is None or back.seq < seq or set(back.participants) != members or back.holder_of(BEAKER) != holder:
                    mismatches += 1
            pending_rooms = {room: held[room][1] for room in moved}
            pending_bots = {id(bot): bot for room in moved for bot in bots_by_room[room]}
            deadline = killed + args.timeout
            while (pending_rooms or pending_bots) and time.monotonic() < deadline:
                for room, epoch in list(pending_rooms.items()):
                    snap_epoch = await redis.hget(room_key(room, "snap"), "epoch")
                    if snap_epoch is not None and int(snap_epoch) > epoch:
                        failovers.append(time.monotonic() - killed)
                        del pending_rooms[room]
                for key, bot in list(pending_bots.items()):
                    if bot.reconnects > marks[key] and bot.connected:
                        reconnects.append(time.monotonic() - killed)
                        del pending_bots[key]
                await asyncio.sleep(0.01)
            lost += len(pending_bots)
            failovers += [args.timeout] * len(pending_rooms)
            for room in moved:
                seq, members, holder = seen[room]
                for bot in bots_by_room[room]:
                    if not bot.welcome.get("resumed") or bot.seq < seq or not members <= set(bot.participants) or bot.objects[BEAKER]["holder"] != holder:
                        lost += 1
                epochs = await log.epochs(room)
                top = max(epochs) if epochs else 0
                double += sum(1 for e in epochs if e < top)
            print(f"round {round_no + 1}: killed node {victim.index} hosting {len(moved)} rooms; "
                  f"failover max {max(failovers[-len(moved):]):.2f} s, reconnects {len(reconnects)}", flush=True)
            victim.start()
        stop.set()
        await poser
    finally:
        stop.set()
        for bots in bots_by_room.values():
            for bot in bots:
                await bot.close()
        await redis.aclose()
        for node in nodes:
            node.stop()
    return {
        "nodes": args.nodes,
        "rooms": args.rooms,
        "participants": args.rooms * args.bots,
        "failover_p50_s": round(statistics.median(failovers), 3),
        "failover_p99_s": round(float(np.percentile(failovers, 99)), 3),
        "reconnect_p95_s": round(float(np.percentile(reconnects, 95)), 3) if reconnects else None,
        "progress_lost": lost,
        "double_owner_ticks": double,
        "state_hash_mismatches": mismatches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--bots", type=int, default=30, help="bots per room (default 30)")
    parser.add_argument("--rate", type=float, default=30.0, help="poses per second per bot (default 30)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before each kill (default 3)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a room or bot to come back (default 30)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
