#!/usr/bin/env python3
"""Reach benchmark: what one student in a 30-person practical receives, all in.

    .venv/bin/python bench/bandwidth.py [--participants 30] [--seconds 20] [--protocol 2] [--hands 1.0]

What it does
------------
It starts a real ``amaliy serve`` (tests.conftest.start_server: a temporary data
dir, loopback voice) and opens a practical of the demo lab. Into it join:

* the recipient: the first student in, so at station 1, moving like the movers,
  whose room socket is measured;
* ``participants - 5`` movers: SDK clients that each send a pose at 30 Hz,
  walking a 0.4 m circle and turning their head: at their station where the lab
  has a place for them, else at a spot in two rows about the benches 2 m apart
  (the demo lab has 16 places at 8 stations); a fraction ``--hands`` of them with
  both hands tracked (headsets), the rest head only (phones, desktops);
* three talkers and one listener (bench/voice_bandwidth.py): the talkers send a
  tone each, and the listener's voice call is measured.

Once everyone is in and every talker is heard, it counts for ``--seconds``.

Figures (last line: one JSON object)
------------------------------------
participants        everyone in the practical.
pose_kbps_down      binary frames (tick frames) the recipient received, WebSocket
                    header included, kbit/s.
events_kbps_down    text frames the recipient received (events, voice levels,
                    quality), header included, kbit/s.
voice_kbps_down     the listener's voice mix as SRTP, at the mix's pace (50 packets
                    a second; bench/voice_bandwidth.py says what is counted).
total_kbps_down     the three added. TCP/IP headers are not counted (about 40 bytes a
                    segment: at 30 frames a second, 10 kbit/s more).
position_err_mm_max largest error of any position the recipient decoded against
                    what its sender sent (head and tracked hands), mm.
angle_err_deg_max   the same for rotations, degrees.
lab_bytes_phone     the demo lab's phone variant, bytes; lab_bytes_desktop its GLB.
recipient_level     the recipient's link level at the end (0: full; the figures are
                    only the defaults' if it is 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amaliy_client import AmaliyClient  # noqa: E402
from bench.voice_bandwidth import measure_voice  # noqa: E402
from realtime import protocol as p  # noqa: E402
from scenes import samples  # noqa: E402
from scenes.lab_bytes import lab_bytes  # noqa: E402
from tests.conftest import start_server  # noqa: E402

RATE = 30.0
TALKERS = 3
#: where students without a station stand: two rows about the demo lab's benches, 2 m apart
SPOTS = [(x, 0.0, z) for z in (-3.0, 5.5) for x in (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)] + [(x, 0.0, 8.0) for x in (-5.0, -3.0, -1.0, 1.0, 3.0, 5.0)]


def quaternion(yaw: float, pitch: float) -> list[float]:
    cy, sy, cp, sp = math.cos(yaw / 2), math.sin(yaw / 2), math.cos(pitch / 2), math.sin(pitch / 2)
    return [cy * sp, sy * cp, -sy * sp, cy * cp]


def pose(origin: np.ndarray, t: float, phase: float) -> np.ndarray:
    """A student at ``origin`` walking a small circle, looking about, hands before them."""
    x = origin[0] + 0.4 * math.cos(t + phase)
    z = origin[2] + 0.4 * math.sin(t + phase)
    yaw, pitch = 0.8 * math.sin(0.7 * t + phase), 0.3 * math.sin(1.3 * t)
    head = [x, 1.6 + 0.02 * math.sin(3 * t), z, *quaternion(yaw, pitch)]
    left = [x - 0.25, 1.2 + 0.1 * math.sin(2 * t), z - 0.3, *quaternion(yaw + 0.3, 0.2)]
    right = [x + 0.25, 1.2 + 0.1 * math.cos(2 * t), z - 0.3, *quaternion(yaw - 0.3, -0.2)]
    return np.array(head + left + right)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return math.degrees(2 * math.acos(min(1.0, abs(float(np.dot(a, b))))))


async def run(participants: int, seconds: float, protocol: int, hands: float, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    server = start_server(Path(tempfile.mkdtemp(prefix="amaliy-bench-bandwidth-")))
    clients: list[AmaliyClient] = []
    try:
        session = server.open_session("Reach benchmark")
        code = session["join_code"]
        recipient = await AmaliyClient.join(server.base_url, code, "Recipient", protocol=protocol)
        movers = [await AmaliyClient.join(server.base_url, code, f"Mover {i}", protocol=protocol) for i in range(participants - TALKERS - 2)]
        clients = [recipient, *movers]
        tracked = {c.id: rng.random() < hands for c in clients}
        origins = {c.id: c.poses[c.id][0:3].copy() for c in clients}
        # the lab has places at its stations for some; the others stand about the room, not all on
        # the teacher's desk where the scene's spawn points are
        free = iter(SPOTS)
        for client in movers:
            if client.station is None:
                origins[client.id] = np.array(next(free))
        phases = {c.id: rng.uniform(0, 2 * math.pi) for c in clients}
        sent: dict[tuple[str, int], np.ndarray] = {}
        errors = {"position": 0.0, "angle": 0.0}
        measuring = False

        def check(frame: p.TickFrame) -> None:
            if not measuring or frame.full:
                return
            for rec in frame.poses:
                owner = recipient._slot_owner.get(int(rec["slot"]))
                truth = sent.get((owner or "", int(rec["stamp"])))
                if truth is None:
                    continue
                got = rec["pose"].astype(float)
                parts = [0] + [i + 1 for i, bit in enumerate((p.FLAG_LEFT_TRACKED, p.FLAG_RIGHT_TRACKED)) if rec["flags"] & bit]
                for part in parts:
                    at = 7 * part
                    errors["position"] = max(errors["position"], float(np.abs(got[at : at + 3] - truth[at : at + 3]).max()) * 1000)
                    errors["angle"] = max(errors["angle"], angle_deg(got[at + 3 : at + 7], truth[at + 3 : at + 7]))

        recipient.on_tick = check
        stop = asyncio.Event()

        async def move() -> None:
            start = time.monotonic()
            stamp = 0
            while not stop.is_set():
                t = time.monotonic() - start
                stamp = (stamp + 1) & 0xFFFFFFFF
                for client in clients:
                    value = pose(origins[client.id], t, phases[client.id])
                    flags = p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED if tracked[client.id] else 0
                    sent[(client.id, stamp)] = value
                    await client.send_pose(value, stamp=stamp, flags=flags)
                for key in [k for k in sent if k[1] == (stamp - 60) & 0xFFFFFFFF]:
                    del sent[key]
                await asyncio.sleep(max(0.0, start + stamp / RATE - time.monotonic()))

        async def measured() -> tuple[dict[str, int], float, object]:
            nonlocal measuring
            voice_task = asyncio.create_task(measure_voice(server.base_url, code, TALKERS, seconds))
            # measure_voice counts once every talker is heard; count the socket over the same stretch
            await recipient.wait_until(lambda: sum(1 for v in recipient.voice_levels.values() if v > 0.05) >= TALKERS, 90, "talkers heard")
            measuring = True
            before, t0 = dict(recipient.received_bytes), time.monotonic()
            await asyncio.sleep(seconds)
            after, t1 = dict(recipient.received_bytes), time.monotonic()
            measuring = False
            voice = await voice_task
            return {k: after[k] - before[k] for k in after}, t1 - t0, voice

        mover = asyncio.create_task(move())
        try:
            counted, wall, voice = await measured()
        finally:
            stop.set()
            await mover
        pose_kbps = counted["binary"] * 8 / 1000 / wall
        events_kbps = counted["text"] * 8 / 1000 / wall
        phone, desktop = lab_bytes(samples.DEMO)
        return {
            "participants": participants,
            "protocol": protocol,
            "hands_tracked": hands,
            "pose_kbps_down": round(pose_kbps, 1),
            "voice_kbps_down": voice.kbps,  # type: ignore[attr-defined]
            "events_kbps_down": round(events_kbps, 1),
            "total_kbps_down": round(pose_kbps + events_kbps + voice.kbps, 1),  # type: ignore[attr-defined]
            "position_err_mm_max": round(errors["position"], 3),
            "angle_err_deg_max": round(errors["angle"], 3),
            "lab_bytes_phone": phone,
            "lab_bytes_desktop": desktop,
            "voice_packets_per_s": voice.packets_per_s,  # type: ignore[attr-defined]
            "recipient_level": recipient.quality.get("level", 0),
        }
    finally:
        for client in clients:
            await client.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--protocol", type=int, default=2, choices=(1, 2))
    parser.add_argument("--hands", type=float, default=1.0, help="fraction of movers with both hands tracked (headsets)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.participants < TALKERS + 3:
        parser.error(f"--participants must be at least {TALKERS + 3}")
    result = asyncio.run(run(args.participants, args.seconds, args.protocol, args.hands, args.seed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
