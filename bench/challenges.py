#!/usr/bin/env python3
"""Challenge benchmark: what a running challenge costs the live room's tick.

    .venv/bin/python bench/challenges.py [--ticks 900] [--seconds 15] [--pairs 2]

The issue: "Challenges must not cost the room its tick." 200 participants in
one room, 40 stations of 5 running a 12-step challenge, every object moving
each tick. Goal: the evaluator's p99 <= 1,000 us per tick (3 % of a 30 Hz
tick), and server CPU within 10 % of the same load without the challenge.

The scene
---------
One schema_version 2 package, built here (boxes as meshes, so ingest is quick):
a station template of 8 objects (beaker, flask, thermometer, burner and tongs
interactable; tripod and rack fixed, with snap points; a tray), 4 properties
(the burner's ``lit`` switch and ``valve`` number; the thermometer's
``reading`` and the tripod's ``hot``, set by the rules), 4 zones (the bench, the heat spot over the
tripod, the waste tray, the floor in front of the bench) and 5 spawn points,
on a grid of 40 stations with ``group_size`` 5 and ``auto`` assignment. The
challenge has 12 condition steps mixing every kind (at_snap, in_zone, near,
property, held by learner, upright, tilted, all, any, not, stable_for, then,
participant_in_zone), 4 mistakes and 2 rules. With ``--order free`` (the
default) every step is open from the start, so every step, mistake and rule of
every station is a live tracker for the whole run: the evaluator's worst
case. ``--order sequence`` opens one step at a time (the common case).

The "without" scene is the same package with ``rules`` and ``challenge``
removed: the same objects, properties, zones and stations.

The load
--------
Every participant holds one interactable object of its station (a station's
5 members hold its 5 interactable objects), and every tick each participant
sends a new pose (head and hands sway around its spawn point) and a new
transform for the object it holds (lifted 15 cm, circling 3 cm, tilting up
to 20 degrees): every object moves every tick, every pose changes every tick.
The motion is a 30-tick cycle. Nothing in it completes a step or makes a
mistake hold (the run checks this and reports the events it saw), so the
figures are the steady cost of watching, not of scoring.

Part 1: evaluator time (sans-I/O, in this process)
---------------------------------------------------
The package is ingested with the server's own path (server.package_check),
loaded with scenes.model.Scene.from_processed, and put in a realtime.room.Room
subclass whose ``_evaluate`` (the challenge step of ``Room.tick``: telling the
engine which objects moved and who walked, then ``engine.tick``) is timed with
perf_counter_ns; room.py is not changed. 200 students enter, grab their
objects, then ``--ticks`` ticks run at a simulated 30 Hz, each after every
participant's pose and object-move frame (decoded with
realtime.protocol.decode_binary, as the room socket does). ``eval_*`` are
percentiles of the per-tick ``_evaluate`` time after ``--skip`` warm-up ticks.
The same run is made with the plain scene (what ``_evaluate`` costs with no
challenge) and shown on stderr, with this thread's CPU time per tick (the
same less any time another program had the core) and whether the garbage
collector ran inside. A run during which other programs used more than
``--quiet-limit`` % of a core is flagged NOISY and repeated (``--retry-noisy``).

Part 2: server CPU with and without (a real server)
---------------------------------------------------
bench/sync.py's machinery: a real ``amaliy serve`` (sync.Server), epoll bots
in load-generator processes (sync.Worker), the same window and /proc
accounting. Before the bots come, a designer uploads the package through
``POST /api/scenes`` and a teacher opens a practical on it through
``POST /api/sessions`` (users made with ``amaliy users add``); the bots join
that practical's code. Each bot, on ``welcome``, finds its station and place in
the snapshot, grabs its object (JSON ``grab``) and waits for ``grabbed``; from
then on each send is one masked pose frame followed by one masked object-move
frame (realtime.protocol.encode_object_move) in the same ``send()``, taken in
turn from a prebuilt 30-frame cycle (the hook ``Bot.cycle`` in bench/sync.py).
Two frames in one read means the room socket's one-pose fast path does not
apply; that is the same in both kinds of run. Voice is off (AMALIY_VOICE=false).
Runs alternate ``without, with, without, with, ...`` (``--pairs``), each with a
fresh server, so drift shows; a run that sync.py flags NOISY is repeated
(``--retry-noisy`` times at most).
``server_cpu_pct`` and ``server_cpu_pct_without`` are medians over the runs of
each kind. The demo practical the server opens on start stays empty in both.

Last line of stdout: one JSON object {"participants", "stations",
"conditions", "eval_p50_us", "eval_p99_us", "server_cpu_pct",
"server_cpu_pct_without"}; ``conditions`` is the number of compiled condition
trackers in the room (each step, mistake and rule at each station); the
number of condition nodes is on stderr. Progress goes to stderr.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import gc
import io
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from websockets.utils import apply_mask  # noqa: E402

import sync  # noqa: E402  (bench/sync.py)
from realtime import protocol as p  # noqa: E402
from realtime.limits import RoomLimits  # noqa: E402
from realtime.roles import Role  # noqa: E402
from realtime.room import Enter, Record, Room, Send  # noqa: E402
from scenes.model import Scene  # noqa: E402
from scenes.samples.parts import box, glb  # noqa: E402
from server.package_check import ingest_package  # noqa: E402

CYCLE = 30  # ticks in one cycle of the motion (one second at 30 Hz)
BENCH_TOP = 0.9
STATION_SPACING = (4.0, 4.0)
COLUMNS = 8


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the scene

#: template objects: id, title, asset, position (station frame), interactable, extras
TEMPLATE = [
    ("beaker", "Beaker", "cup", (-0.5, BENCH_TOP, -0.3), True, {}),
    ("flask", "Flask", "tall", (-0.25, BENCH_TOP, -0.3), True, {}),
    ("thermometer", "Thermometer", "rod", (0.0, BENCH_TOP, -0.3), True,
     {"properties": [{"id": "reading", "kind": "number", "initial": 20, "min": 0, "max": 120, "unit": "C", "interactive": False}]}),
    ("burner", "Bunsen burner", "cup", (0.3, BENCH_TOP, -0.3), True,
     {"properties": [{"id": "lit", "kind": "switch", "initial": False},
                     {"id": "valve", "kind": "number", "initial": 0, "min": 0, "max": 100, "step": 10}]}),
    ("tongs", "Tongs", "rod", (0.55, BENCH_TOP, -0.3), True, {}),
    ("tripod", "Tripod", "stand", (0.3, BENCH_TOP, -0.65), False,
     {"snap_points": [{"id": "top", "position": [0, 0.25, 0]}],
      "properties": [{"id": "hot", "kind": "switch", "initial": False, "interactive": False}]}),
    ("rack", "Rack", "stand", (-0.4, BENCH_TOP, -0.65), False,
     {"snap_points": [{"id": "slot-1", "position": [-0.06, 0.1, 0]}, {"id": "slot-2", "position": [0.06, 0.1, 0]}]}),
    ("tray", "Waste tray", "tray", (0.8, BENCH_TOP, -0.6), False, {}),
]
INTERACTABLE = [t[0] for t in TEMPLATE if t[4]]
HOME = {t[0]: t[3] for t in TEMPLATE}
ZONES = [
    {"id": "bench", "shape": "box", "center": [0, 1.0, -0.45], "size": [2.0, 0.4, 0.9]},
    {"id": "heat", "shape": "sphere", "center": [0.3, 1.15, -0.65], "radius": 0.08},
    {"id": "waste", "shape": "box", "center": [0.8, 1.0, -0.6], "size": [0.3, 0.2, 0.3]},
    {"id": "floor", "shape": "box", "center": [0, 1.0, 0.5], "size": [2.4, 2.0, 1.2]},
]
SPAWNS = [(-0.8, 0.3), (-0.4, 0.45), (0.0, 0.5), (0.4, 0.45), (0.8, 0.3)]


def _snap(obj: str, target: str, snap: str, **extra: Any) -> dict:
    return {"at_snap": {"object": obj, "target": target, "snap": snap, **extra}}


def _prop(obj: str, name: str, **test: Any) -> dict:
    return {"property": {"object": obj, "property": name, **test}}


def _held(obj: str) -> dict:
    return {"held": {"object": obj, "by_learner": True}}


LIT = _prop("burner", "lit", equals=True)

#: 12 steps; each false in the untouched lab (the server's spawn check) and under the load
STEPS = [
    {"id": "flask-to-rack", "text": "Put the flask in the rack", "condition": _snap("flask", "rack", "slot-1")},
    {"id": "beaker-on-tripod", "text": "Stand the beaker on the tripod", "condition": _snap("beaker", "tripod", "top"),
     "mistakes": [{"id": "spill", "condition": {"tilted": {"object": "beaker", "past_degrees": 60}}, "explanation": "Keep the beaker upright."}]},
    {"id": "light", "text": "Light the burner, tongs in hand",
     "condition": {"all": [_held("tongs"), {"upright": {"object": "burner", "within_degrees": 30}}, LIT]},
     "mistakes": [{"id": "hot-hands", "condition": {"all": [LIT, _held("burner")]}, "explanation": "Don't carry a lit burner."}]},
    {"id": "burner-under", "text": "Put the burner under the tripod",
     "condition": {"all": [{"upright": {"object": "burner", "within_degrees": 10}}, {"near": {"object": "burner", "other": "tripod", "distance_m": 0.1}}]}},
    {"id": "thermometer-in", "text": "Hold the thermometer in the beaker over the flame",
     "condition": {"all": [{"in_zone": {"object": "thermometer", "zone": "heat"}},
                           {"stable_for": {"seconds": 3, "condition": {"near": {"object": "thermometer", "other": "beaker", "distance_m": 0.08}}}}]},
     "mistakes": [{"id": "dropped", "condition": {"all": [{"not": _held("thermometer")}, {"in_zone": {"object": "thermometer", "zone": "heat"}}]},
                   "explanation": "Hold the thermometer; don't leave it in the flame."}]},
    {"id": "heat-up", "text": "Heat the water to 60 C or more", "condition": _prop("thermometer", "reading", min=60)},
    {"id": "pour", "text": "Pour the flask out and stand it up again",
     "condition": {"then": {"conditions": [{"tilted": {"object": "flask", "past_degrees": 70}}, {"upright": {"object": "flask"}},
                                           {"in_zone": {"object": "flask", "zone": "waste"}}], "within_seconds": 10}},
     "mistakes": [{"id": "pour-on-flame", "condition": {"all": [{"tilted": {"object": "flask", "past_degrees": 45}},
                                                                {"near": {"object": "flask", "other": "burner", "distance_m": 0.2}}]},
                   "explanation": "Never pour near the flame."}]},
    {"id": "carry", "text": "Carry the beaker to the tray, upright, standing at the bench",
     "condition": {"all": [{"participant_in_zone": {"zone": "floor"}}, _held("beaker"),
                           {"not": {"tilted": {"object": "beaker", "past_degrees": 45}}}, {"in_zone": {"object": "beaker", "zone": "waste"}}]}},
    {"id": "tongs-flask", "text": "Pick the flask up with the tongs", "condition": {"near": {"object": "tongs", "other": "flask", "distance_m": 0.05}}},
    {"id": "valve", "text": "Open the valve half way, or set the beaker beside the tripod",
     "condition": {"any": [_prop("burner", "valve", min=50),
                           {"all": [{"near": {"object": "beaker", "other": "tripod", "distance_m": 0.05}}, {"not": {"held": {"object": "beaker"}}}]}]}},
    {"id": "settle", "text": "Let the beaker rest by the rack for 2 s",
     "condition": {"stable_for": {"seconds": 2, "condition": _snap("beaker", "rack", "slot-2", distance_m=0.1, placed=False)}}},
    {"id": "clean-up", "text": "Rack the glassware and put the flame out",
     "condition": {"all": [_snap("flask", "rack", "slot-1"), _snap("beaker", "rack", "slot-2"), {"not": LIT}]}},
]
RULES = [
    {"object": "thermometer", "property": "reading", "value": 80, "otherwise": 20, "after_seconds": 5,
     "when": {"all": [LIT, _snap("beaker", "tripod", "top")]}},
    {"object": "tripod", "property": "hot", "value": True, "otherwise": False,
     "when": {"all": [LIT, {"near": {"object": "burner", "other": "tripod", "distance_m": 0.15}}]}},
]


def manifest(stations: int, group: int, challenge: bool, order: str = "free") -> dict[str, Any]:
    rows = math.ceil(stations / COLUMNS)
    origin = [-(min(stations, COLUMNS) - 1) * STATION_SPACING[0] / 2, 0.0, -(rows - 1) * STATION_SPACING[1] / 2]
    out: dict[str, Any] = {
        "schema_version": 2,
        "id": "bench-challenge" if challenge else "bench-plain",
        "title": "Challenge bench" + ("" if challenge else " (no challenge)"),
        "assets": [{"id": name, "path": f"assets/{name}.glb"} for name in ASSETS],
        "objects": [{"id": "floor", "title": "Floor", "asset": "floor"}],
        "spawn_points": [{"position": [0, 0, 0]}],
        "targets": ["desktop"],
        "stations": {
            "template": {
                "objects": [
                    {"id": ident, "title": title, "asset": asset, "transform": {"position": list(pos)}, "interactable": inter, **extra}
                    for ident, title, asset, pos, inter, extra in TEMPLATE
                ],
                "zones": ZONES,
                "spawn_points": [{"position": [x, 0, z]} for x, z in SPAWNS],
            },
            "grid": {"count": stations, "columns": COLUMNS, "origin": origin, "spacing": list(STATION_SPACING)},
            "group_size": group,
            "assignment": "auto",
        },
    }
    if challenge:
        out["rules"] = RULES
        out["challenge"] = {"id": "water-bath", "title": "Heat a water bath", "order": order, "steps": STEPS,
                            "time_bonus": {"target_seconds": 600, "points": 20}}
    return out


ASSETS = {
    "floor": lambda: box((40.0, 0.02, 24.0), (0, -0.01, 0), (210, 210, 200, 255)),
    "cup": lambda: box((0.08, 0.12, 0.08), (0, 0.06, 0), (170, 210, 250, 255)),
    "tall": lambda: box((0.06, 0.2, 0.06), (0, 0.1, 0), (250, 200, 60, 255)),
    "rod": lambda: box((0.02, 0.25, 0.02), (0, 0.125, 0), (150, 150, 160, 255)),
    "stand": lambda: box((0.2, 0.25, 0.2), (0, 0.125, 0), (60, 60, 70, 255)),
    "tray": lambda: box((0.3, 0.04, 0.3), (0, 0.02, 0), (90, 90, 200, 255)),
}


def package(data: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scene.json", json.dumps(data, indent=1))
        for name, make in ASSETS.items():
            zf.writestr(f"assets/{name}.glb", glb(make()))
    return buf.getvalue()


def station_origin(number: int, stations: int) -> tuple[float, float, float]:
    """Where station ``number`` (from 1) stands: the manifest's grid (yaw 0)."""
    rows = math.ceil(stations / COLUMNS)
    k = number - 1
    x0 = -(min(stations, COLUMNS) - 1) * STATION_SPACING[0] / 2
    z0 = -(rows - 1) * STATION_SPACING[1] / 2
    return (x0 + (k % COLUMNS) * STATION_SPACING[0], 0.0, z0 + (k // COLUMNS) * STATION_SPACING[1])


# --------------------------------------------------------------------------- the motion


def _quat_z(degrees: float) -> tuple[float, float, float, float]:
    half = math.radians(degrees) / 2
    return (0.0, 0.0, math.sin(half), math.cos(half))


def object_transform(station: tuple[float, float, float], template_id: str, phase: float, tick: int) -> tuple[float, ...]:
    """The held object lifted 15 cm over its place, circling 3 cm, tilting up to 20 degrees."""
    a = 2 * math.pi * (tick % CYCLE) / CYCLE + phase
    x, y, z = HOME[template_id]
    return (station[0] + x + 0.03 * math.cos(a), y + 0.15 + 0.01 * math.sin(2 * a), station[2] + z + 0.03 * math.sin(a), *_quat_z(20 * math.sin(a)))


def pose(station: tuple[float, float, float], place: int, phase: float, tick: int) -> list[float]:
    """Head over the participant's spawn point, swaying 5 cm; hands ahead and to the sides."""
    a = 2 * math.pi * (tick % CYCLE) / CYCLE + phase
    sx, sz = SPAWNS[place % len(SPAWNS)]
    x, z = station[0] + sx + 0.05 * math.sin(a), station[2] + sz + 0.05 * math.cos(a)
    turn = (0.0, math.sin(0.1 * math.sin(a)), 0.0, math.cos(0.1 * math.sin(a)))
    return [x, 1.6, z, *turn, x - 0.2, 1.1 + 0.05 * math.sin(a), z - 0.3, *turn, x + 0.2, 1.1 - 0.05 * math.sin(a), z - 0.3, *turn]


# --------------------------------------------------------------------------- part 1: in process


class TimedRoom(Room):
    """The live room with its challenge step timed (realtime/room.py unchanged): wall time
    (perf_counter_ns, the figure), this thread's CPU time (thread_time_ns: the same less any time
    another program had the core), and whether the garbage collector ran inside."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eval_ns: list[int] = []
        self.eval_cpu_ns: list[int] = []
        self.eval_gc: list[bool] = []
        self._collections = 0
        gc.callbacks.append(self._on_gc)
        # the learning engine's step of the tick (stuck detection, the hint ladder), timed apart
        self.learn_ns: list[int] = []
        learning_tick = self.learning.tick

        def timed_learning(now: float) -> list:
            t0 = time.perf_counter_ns()
            out = learning_tick(now)
            self.learn_ns.append(time.perf_counter_ns() - t0)
            return out

        self.learning.tick = timed_learning  # type: ignore[method-assign]

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collections += 1

    def _evaluate(self, now: float, poses: np.ndarray, objects: np.ndarray) -> list:
        collections = self._collections
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        out = super()._evaluate(now, poses, objects)
        t1 = time.perf_counter_ns()
        self.eval_cpu_ns.append(time.thread_time_ns() - c0)
        self.eval_ns.append(t1 - t0)
        self.eval_gc.append(self._collections != collections)
        return out

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)


def count_nodes(node: Any) -> int:
    return 1 + sum(count_nodes(part) for part in getattr(node, "parts", ()))


def in_process(scene: Scene, participants: int, stations: int, ticks: int, skip: int, seed: int, profiler: Any = None) -> dict[str, Any]:
    """Drive a TimedRoom sans-I/O: enter, grab, then ``ticks`` ticks of poses and moves."""
    rate = 30.0
    room = TimedRoom("bench", scene, RoomLimits(room_cap=participants + 10))
    rng = random.Random(seed)
    frames: list[tuple[str, list[bytes]]] = []  # (participant, per-tick pose + move frames of its cycle)
    now = 0.0
    for k in range(participants):
        pid = f"p{k:04d}"
        room.handle(pid, Enter(f"Bot {k}", Role.STUDENT), now)
    setup_events: Counter[str] = Counter()
    for pid in room.participants:
        number = room.challenges.station_of(pid)
        assert number is not None, "every participant should be at a station"
        members = room.challenges.members(number)
        place = members.index(pid)
        obj = f"{INTERACTABLE[place]}@{number}"
        for item in room.handle(pid, p.Grab(type="grab", object=obj), now):
            if isinstance(item, Send) and isinstance(item.data, str):
                kind = json.loads(item.data)["type"]
                if kind == "error":
                    raise RuntimeError(f"{pid} could not grab {obj}: {item.data}")
                setup_events[kind] += 1
        origin = station_origin(number, stations)
        index = room._object_ids[obj]
        phase = rng.random() * 2 * math.pi
        cycle = [
            (p.encode_pose(np.array(pose(origin, place, phase, t), np.float32), stamp=t),
             p.encode_object_move(index, object_transform(origin, INTERACTABLE[place], phase, t)))
            for t in range(CYCLE)
        ]
        frames.append((pid, cycle))
    events: Counter[str] = Counter()
    tick_ns: list[int] = []
    handle_ns: list[int] = []
    perf = time.perf_counter_ns
    if profiler is not None:
        profiler.enable()
    for t in range(ticks + skip):
        now += 1.0 / rate
        h0 = perf()
        for pid, cycle in frames:
            pose_bytes, move_bytes = cycle[t % CYCLE]
            for data in (pose_bytes, move_bytes):
                for item in room.handle(pid, p.decode_binary(data), now):
                    if isinstance(item, Send) and isinstance(item.data, str):
                        raise RuntimeError(f"unexpected reply to {pid}: {item.data}")
        t0 = perf()
        out = room.tick(now)
        t1 = perf()
        if t >= skip:
            tick_ns.append(t1 - t0)
            handle_ns.append(t0 - h0)
            for item in out:
                if isinstance(item, Send) and isinstance(item.data, str):
                    events[json.loads(item.data)["type"]] += 1
                elif isinstance(item, Record):
                    events["record:" + item.kind] += 1
    if profiler is not None:
        profiler.disable()
    room.close()
    engine = room.challenges
    trackers = engine._trackers
    active = sum(1 for tr in trackers if tr.active)
    ev = np.array(room.eval_ns[-ticks:], np.float64) / 1000.0
    cpu = np.array(room.eval_cpu_ns[-ticks:], np.float64) / 1000.0
    with_gc = np.array(room.eval_gc[-ticks:], bool)
    tk = np.array(tick_ns, np.float64) / 1000.0
    hd = np.array(handle_ns, np.float64) / 1000.0
    return {
        "trackers": len(trackers),
        "active": active,
        "nodes": sum(count_nodes(tr.node) for tr in trackers),
        "by_kind": dict(Counter(tr.kind for tr in trackers)),
        "eval_us": ev,
        "learn_us": np.array(room.learn_ns[-ticks:], np.float64) / 1000.0,
        "eval_cpu_us": cpu,
        "eval_gc": with_gc,
        "tick_us": tk,
        "handle_us": hd,
        "events": dict(events),
        "setup_events": dict(setup_events),
        "objects_moved": int(len(frames)),
    }


def percentiles(values: np.ndarray) -> str:
    if not len(values):
        return "-"
    return (f"p50 {np.percentile(values, 50):.0f}  p90 {np.percentile(values, 90):.0f}  p99 {np.percentile(values, 99):.0f}  "
            f"max {values.max():.0f} us (mean {values.mean():.0f})")


# --------------------------------------------------------------------------- part 2: a real server


def _masked(opcode: int, payload: bytes, mask: bytes) -> bytes:
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + apply_mask(payload, mask)


class ChallengeWorker(sync.Worker):
    """sync.Worker whose bots grab their station's object after ``welcome`` and then send a
    pose and an object move, both changing, every period (a prebuilt cycle, see Bot.cycle)."""

    def __init__(self, cfg: dict[str, Any], indices: list[int], observer: bool, pipe: Any) -> None:
        super().__init__(cfg, indices, observer, pipe)
        #: bot index -> (participant id, object id, the welcome payload to replay once granted)
        self.waiting: dict[int, tuple[str, str, bytes]] = {}
        self.text_in_window: Counter[str] = Counter()
        #: steps of the challenge each bot's welcome showed (0: none), to check the scene
        self.challenge_steps: set[int] = set()

    def on_frame(self, bot: sync.Bot, opcode: int, payload: bytes, recv_ms: float) -> None:
        if opcode == 0x1:
            msg = json.loads(payload)
            kind = msg.get("type")
            if bot.state == sync.JOINING and kind == "welcome" and bot.index not in self.waiting:
                self._grab(bot, msg, payload)
                return
            if bot.state == sync.JOINING and kind == "grabbed" and bot.index in self.waiting:
                pid, obj, welcome = self.waiting[bot.index]
                if msg.get("participant") == pid and msg.get("object") == obj:
                    del self.waiting[bot.index]
                    super().on_frame(bot, opcode, welcome, recv_ms)  # now live, as sync.Worker does it
                return
            if bot.state == sync.LIVE and self.t_start <= recv_ms / 1000.0 < self.t_end:
                self.text_in_window[str(kind) + (":" + msg.get("code", "") if kind == "error" else "")] += 1
        super().on_frame(bot, opcode, payload, recv_ms)

    def _grab(self, bot: sync.Bot, msg: dict[str, Any], payload: bytes) -> None:
        pid = msg["participant"]["id"]
        snapshot = msg["snapshot"]
        listing = snapshot["stations"]["list"]
        station = next((s for s in listing if pid in s["members"]), None)
        if station is None:
            self.fail(bot, "not placed at a station")
            return
        number, place = station["number"], station["members"].index(pid)
        obj = f"{INTERACTABLE[place]}@{number}"
        index = next(o["index"] for o in snapshot["objects"] if o["id"] == obj)
        origin = station_origin(number, len(listing))
        phase = self.rng.random() * 2 * math.pi
        mask = self.rng.randbytes(4)
        cycle = deque()
        for t in range(CYCLE):
            pose_payload = p.encode_pose(np.array(pose(origin, place, phase, t), np.float32), stamp=0)
            move_payload = p.encode_object_move(index, object_transform(origin, INTERACTABLE[place], phase, t))
            # the pose first, so its stamp stays at bytes 10..14 (masked by mask bytes 0..3) as sync.Worker patches it
            cycle.append(bytearray(_masked(0x2, pose_payload, mask) + _masked(0x2, move_payload, mask)))
        bot.cycle = cycle
        bot.frame = cycle[-1]
        bot.mask32 = int.from_bytes(mask, "little")
        self.waiting[bot.index] = (pid, obj, payload)
        self.challenge_steps.add(len(snapshot["challenge"]["steps"]) if snapshot.get("challenge") else 0)
        assert bot.sock is not None
        bot.sock.send(_masked(0x1, json.dumps({"type": "grab", "object": obj}).encode(), self.rng.randbytes(4)))

    def collect(self) -> dict[str, Any]:
        out = super().collect()
        out["text_in_window"] = dict(self.text_in_window)
        out["challenge_steps"] = sorted(self.challenge_steps)
        return out


def _cli(server: sync.Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--data-dir", str(server.dir / "data")],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return done.stdout.split()[-1]


def opener(zip_bytes: bytes, scene_id: str, times: dict[str, float]):
    """A sync.run_once ``prepare`` hook: upload the package as a designer, open a practical on it
    as a teacher, and return its join code."""

    def prepare(server: sync.Server) -> str:
        designer = _cli(server, "users", "add", "Bench Designer", "--role", "designer")
        teacher = _cli(server, "users", "add", "Bench Teacher", "--role", "teacher")
        began = time.monotonic()
        r = httpx.post(f"{server.base}/api/scenes", files={"package": ("bench.zip", zip_bytes, "application/zip")},
                       headers={"Authorization": f"Bearer {designer}"}, timeout=300)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"upload refused: {r.status_code} {r.text[:2000]}")
        times["upload_s"] = time.monotonic() - began
        r = httpx.post(f"{server.base}/api/sessions", json={"scene": scene_id, "title": scene_id},
                       headers={"Authorization": f"Bearer {teacher}"}, timeout=60)
        if r.status_code != 201:
            raise RuntimeError(f"could not open a practical: {r.status_code} {r.text[:500]}")
        return r.json()["join_code"]

    return prepare


def sync_args(args: argparse.Namespace, label: str) -> argparse.Namespace:
    """The namespace sync.run_once reads, with sync.py's defaults where this bench has no option."""
    return argparse.Namespace(
        participants=args.participants, rate=30.0, seconds=args.seconds, observers=args.observers, procs=args.procs,
        groups=8, warmup=args.warmup, tail=1.0, room_cap=0, seed=args.seed, quiet_limit=args.quiet_limit,
        protocol=1,  # its prebuilt cycle of pose and move frames is version 1's
        quiet_wait=args.quiet_wait, server_root=None, server_env=["AMALIY_VOICE=false"], server_arg=[],
        py_spy=args.py_spy if label == "with" else None, py_spy_top=15, py_spy_rate=200, py_spy_bin=str(Path(sys.executable).with_name("py-spy")),
    )


def server_run(args: argparse.Namespace, label: str, zip_bytes: bytes, scene_id: str, run: int) -> dict[str, Any]:
    retries = args.retry_noisy
    while True:
        times: dict[str, float] = {}
        log(f"server run {run + 1} ({label}):")
        with contextlib.redirect_stdout(sys.stderr):  # sync.run_once prints its report; stdout is for the JSON
            result = sync.run_once(sync_args(args, label), run, prepare=opener(zip_bytes, scene_id, times), worker=ChallengeWorker)
        texts: Counter[str] = Counter()
        steps: set[int] = set()
        for extra in result["_results"]:
            texts.update(extra["text_in_window"])
            steps.update(extra["challenge_steps"])
        log(f"  upload + ingest {times.get('upload_s', float('nan')):.1f} s; steps of the challenge in the bots' welcome: "
            f"{sorted(steps)}; text messages the observers got in the window: {dict(texts) or 'none'}")
        result["_texts"] = dict(texts)
        if result["_noisy"] and retries > 0:
            retries -= 1
            log("  (noisy run discarded; repeating it)")
            continue
        return result


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", "-n", type=int, default=200)
    parser.add_argument("--stations", type=int, default=40)
    parser.add_argument("--order", choices=("free", "sequence"), default="free",
                        help="challenge order: free opens all 12 steps at once (default, the worst case)")
    parser.add_argument("--ticks", type=int, default=900, help="measured ticks of the in-process run (default 900)")
    parser.add_argument("--skip", type=int, default=30, help="warm-up ticks before those (default 30)")
    parser.add_argument("--pairs", type=int, default=2, help="server runs: this many (without, with) pairs (default 2; 0: none)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window of each server run (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--observers", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-limit", type=float, default=30.0)
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for a quiet machine before each run (default 30)")
    parser.add_argument("--retry-noisy", type=int, default=1, help="repeat a NOISY server run up to this many times (default 1)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the server of each run with challenges with py-spy (FILE.runK.txt; figures then skewed)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the in-process run with challenges into FILE (figures then skewed)")
    args = parser.parse_args(argv)
    if args.participants % args.stations:
        log(f"note: {args.participants} participants over {args.stations} stations is not a whole number per station")
    group = math.ceil(args.participants / args.stations)
    if group > len(INTERACTABLE):
        raise SystemExit(f"at most {len(INTERACTABLE)} participants per station (one object each)")

    zips = {kind: package(manifest(args.stations, group, kind == "with", args.order)) for kind in ("with", "without")}
    scenes = {}
    with tempfile.TemporaryDirectory(prefix="amaliy-bench-challenges-") as tmp:
        for kind, data in zips.items():
            path = Path(tmp) / f"{kind}.zip"
            path.write_bytes(data)
            began = time.monotonic()
            processed = ingest_package(path)
            scenes[kind] = Scene.from_processed(processed.server, 1, "")
            log(f"package {kind} challenge: {len(data) / 1e3:.0f} kB, {len(scenes[kind].objects)} objects, ingested in {time.monotonic() - began:.1f} s")

    # part 1
    if args.quiet_wait > 0:
        with contextlib.redirect_stdout(sys.stderr):
            sync.wait_quiet(args.quiet_limit, args.quiet_wait)
    results = {}
    for kind in ("without", "with"):
        log(f"in-process run {kind} challenge: {args.participants} participants, {args.ticks} ticks (+{args.skip} warm-up) ...")
        prof = None
        if kind == "with" and args.profile:
            import cProfile

            prof = cProfile.Profile()
        retries = args.retry_noisy
        while True:
            before, w0 = sync.all_processes(), time.monotonic()
            results[kind] = in_process(scenes[kind], args.participants, args.stations, args.ticks, args.skip, args.seed, prof)
            others, kernel, top = sync.other_load(before, sync.all_processes(), set(), time.monotonic() - w0)
            noisy = others > args.quiet_limit
            log(f"  other programs used {others:.0f} % of one core meanwhile (top: {', '.join(top) or '-'})"
                + ("  NOISY: another program competed for the CPU" if noisy else ""))
            if not noisy or retries <= 0 or prof is not None:
                break
            retries -= 1
            log("  (noisy run discarded; repeating it)")
            if args.quiet_wait > 0:
                with contextlib.redirect_stdout(sys.stderr):
                    sync.wait_quiet(args.quiet_limit, args.quiet_wait)
        if prof is not None:
            import pstats

            prof.dump_stats(args.profile)
            log("  cProfile of the ticks (inputs and ticks; the figures below are skewed by it):")
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(20)
        r = results[kind]
        log(f"  _evaluate: {percentiles(r['eval_us'])}")
        log(f"  learning.tick (stuck detection, hint ladder): {percentiles(r['learn_us'])}")
        log(f"  _evaluate, thread CPU time: {percentiles(r['eval_cpu_us'])}")
        log(f"  _evaluate, the {int((~r['eval_gc']).sum())} ticks without a garbage collection in it: {percentiles(r['eval_us'][~r['eval_gc']])} "
            f"({int(r['eval_gc'].sum())} ticks with one)")
        log(f"  whole tick: {percentiles(r['tick_us'])}; the tick's {2 * args.participants} inputs: {percentiles(r['handle_us'])}")
        log(f"  trackers {r['trackers']} ({r['by_kind']}), active {r['active']}, condition nodes {r['nodes']}; "
            f"objects moved per tick {r['objects_moved']}; events in the measured ticks: {r['events'] or 'none'}")
    with_r = results["with"]

    # part 2
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    n = 0
    for _ in range(args.pairs):
        for kind in ("without", "with"):
            runs[kind].append(server_run(args, kind, zips[kind], f"bench-{'challenge' if kind == 'with' else 'plain'}", n))
            n += 1
    if args.pairs:
        for kind in ("without", "with"):
            rs = runs[kind]
            log(f"server {kind} challenge: CPU {[r['server_cpu_pct'] for r in rs]} % of one core; load generator "
                f"{[round(r['_loadgen_cpu_pct'], 1) for r in rs]} %; server/load generator {[round(r['_ratio'], 2) for r in rs]}; "
                f"p99 {[r['p99_ms'] for r in rs]} ms; out {[round(r['bytes_out_per_s'] / 1e6, 1) for r in rs]} MB/s")
        cpu_with = statistics.median(r["server_cpu_pct"] for r in runs["with"])
        cpu_without = statistics.median(r["server_cpu_pct"] for r in runs["without"])
        ratio_with = statistics.median(r["_ratio"] for r in runs["with"])
        ratio_without = statistics.median(r["_ratio"] for r in runs["without"])
        pairs = [(a["server_cpu_pct"], b["server_cpu_pct"]) for a, b in zip(runs["without"], runs["with"])]
        log(f"server CPU with / without: {cpu_with / cpu_without:.3f} (medians {cpu_with:.1f} / {cpu_without:.1f} %); "
            f"per pair {[round(w / wo, 3) for wo, w in pairs]}; server/load-generator ratio with / without: {ratio_with / ratio_without:.3f}")
        log(f"the in-process runs predict +{30 * (with_r['eval_us'].mean() - results['without']['eval_us'].mean()) / 1e4:.1f} % of one core "
            f"for the challenge at 30 Hz (mean _evaluate with minus without)")
    else:
        cpu_with = cpu_without = None
    summary = {
        "participants": args.participants,
        "stations": args.stations,
        "conditions": with_r["trackers"],
        "eval_p50_us": round(float(np.percentile(with_r["eval_us"], 50)), 1),
        "eval_p99_us": round(float(np.percentile(with_r["eval_us"], 99)), 1),
        "learning_p50_us": round(float(np.percentile(with_r["learn_us"], 50)), 1),
        "learning_p99_us": round(float(np.percentile(with_r["learn_us"], 99)), 1),
        "server_cpu_pct": None if cpu_with is None else round(cpu_with, 1),
        "server_cpu_pct_without": None if cpu_without is None else round(cpu_without, 1),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
