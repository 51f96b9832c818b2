"""The built-in sample labs are real practicals: they ingest cleanly, at human scale, with
eight stations, and each challenge can be worked through from start to finish in the
sans-I/O room by two students at one bench, mistake included, while a student at
another bench cannot touch their equipment.

The scripted runs drive the room as a client would (grab, move, release, interact,
answer) with explicit times; where a part is put down comes from the room's own
snapshot (the target's transform and its snap point, in the target's frame).
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest

from realtime import protocol as p
from realtime.challenges import spawn_check
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import Enter, Room, Send
from scenes import samples
from scenes.ingest import DEFAULT_BUDGETS, Processed, ingest_zip
from scenes.model import Scene
from scenes.package import pack_files
from scenes.quaternions import multiply, rotate

Transform = tuple[float, float, float, float, float, float, float]


@functools.cache
def processed(package_id: str) -> Processed:
    """A sample through the real ingest, packed as server.node.install_samples packs it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{package_id}.zip"
        path.write_bytes(pack_files(samples.SAMPLES[package_id]()))
        return ingest_zip(path)  # PackageRejected (every problem listed) if anything is wrong


SAMPLE_IDS = sorted(samples.SAMPLES)


# ------------------------------------------------------------------ the packages


@pytest.mark.parametrize("package_id", SAMPLE_IDS)
def test_sample_ingests_cleanly_as_a_practical(package_id: str) -> None:
    done = processed(package_id)
    assert done.notes == [], [str(note) for note in done.notes]
    assert spawn_check.problems(done.server) == []
    manifest = done.manifest
    assert manifest.schema_version == 2 and manifest.id == package_id
    assert manifest.stations is not None and manifest.stations.grid is not None
    assert manifest.stations.group_size == 2 and manifest.stations.assignment == "auto"
    assert len(done.server["stations"]) == 8
    assert manifest.rules, "at least one derived property"
    assert any(obj.properties for obj in manifest.stations.template.objects)
    challenge = manifest.challenge
    assert challenge is not None
    assert 8 <= len(challenge.steps) <= 12
    assert all(step.skill for step in challenge.steps), [step.id for step in challenge.steps if not step.skill]
    assert any(step.checkpoint for step in challenge.steps)
    mistakes = [mistake for step in challenge.steps for mistake in step.mistakes]
    assert mistakes and all(mistake.explanation and "\n" not in mistake.explanation for mistake in mistakes)
    # students can tell every piece of equipment apart by its title
    titles = [obj.title for obj in manifest.stations.template.objects]
    assert all(titles) and len(set(titles)) == len(titles), titles
    assert all(obj.title for obj in manifest.objects)
    # eight copies of everything still fit a headset
    assert done.stats["triangles"] <= DEFAULT_BUDGETS["headset"].triangles
    assert done.stats["objects"] == len(manifest.objects) + 8 * len(manifest.stations.template.objects)


@pytest.mark.parametrize("package_id", SAMPLE_IDS)
def test_sample_is_at_human_scale_with_room_to_walk(package_id: str) -> None:
    server = processed(package_id).server
    objects = {obj["id"]: obj for obj in server["objects"]}
    stations = server["stations"]
    for station in stations:
        n = station["number"]
        bench = objects[f"bench@{n}"]
        top = bench["bounds"]["max"][1]
        assert 0.85 <= top <= 0.95, f"bench top of station {n} at {top} m"
        x, _, z = station["position"]
        front = bench["transform"][2] + bench["bounds"]["max"][2]
        for spawn in station["spawn_points"]:
            sx, sy, sz = spawn["position"]
            assert sy == 0.0 and abs(sx - x) < 0.8, spawn  # on the floor, in front of the bench
            assert 0.4 < sz - front < 1.2, f"station {n}: spawn {spawn} should stand just in front of the bench (front edge z={front})"
        equipment = [obj for obj in server["objects"] if obj["station"] == n and obj["interactable"]]
        for obj in equipment:  # resting on the worktop, within the bench
            low = obj["transform"][1] + obj["bounds"]["min"][1]
            assert abs(low - top) < 0.01, (obj["id"], low, top)
            assert abs(obj["transform"][0] - x) < 0.8 and abs(obj["transform"][2] - z) < 0.35, obj["id"]
    # neighbouring benches leave an aisle of at least a metre
    benches = [objects[f"bench@{s['number']}"] for s in stations]
    for i, a in enumerate(benches):
        for b in benches[i + 1 :]:
            gap_x = abs(a["transform"][0] - b["transform"][0]) - (a["bounds"]["max"][0] - a["bounds"]["min"][0])
            gap_z = abs(a["transform"][2] - b["transform"][2]) - (a["bounds"]["max"][2] - a["bounds"]["min"][2])
            assert max(gap_x, gap_z) >= 1.0, (a["id"], b["id"])
    # the teacher appears at the front (-z), in front of every bench, facing the class
    first_row = min(s["position"][2] for s in stations)
    for spawn in server["spawn_points"]:
        assert spawn["position"][2] < first_row - 2.0 and abs(abs(spawn["yaw_degrees"]) - 180) < 1e-9, spawn


# ------------------------------------------------------------------ a practical in the room


#: a quarter turn about z: a beaker held on its side, pouring
POURING = [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)]


class Lab:
    """A sample's room with a clock the test moves, and every message it sent, in order."""

    def __init__(self, package_id: str) -> None:
        self.room = Room("s_sample", Scene.from_processed(processed(package_id).server, 1, ""), RoomLimits())
        self.now = 0.0
        self.messages: list[dict[str, Any]] = []

    def _take(self, out: list) -> list[dict[str, Any]]:
        got = [json.loads(item.data) for item in out if isinstance(item, Send) and isinstance(item.data, str)]
        self.messages += got
        return got

    def later(self, seconds: float = 0.25) -> list[dict[str, Any]]:
        """Let ``seconds`` pass and tick once."""
        self.now += seconds
        return self._take(self.room.tick(self.now))

    def send(self, pid: str, message: Any) -> list[dict[str, Any]]:
        self.now += 0.05
        return self._take(self.room.handle(pid, message, self.now))

    def enter(self, pid: str, role: Role = Role.STUDENT) -> int | None:
        """A participant joins; returns the station they were put at (None: none)."""
        placed = [m for m in self.send(pid, Enter(pid, role)) if m["type"] == "station" and m["participant"] == pid]
        return placed[0]["station"] if placed else None

    def object(self, object_id: str) -> dict[str, Any]:
        return next(obj for obj in self.room.snapshot()["objects"] if obj["id"] == object_id)

    def snap_pose(self, target_id: str, snap_id: str) -> Transform:
        """Where an object put down on a target's snap point stands: the snap point turned and moved by the target's transform."""
        target = self.object(target_id)
        snap = next(sp for sp in target["snap_points"] if sp["id"] == snap_id)
        position, rotation = target["transform"][:3], target["transform"][3:]
        offset = rotate(rotation, snap["position"])
        return (*(a + b for a, b in zip(position, offset)), *multiply(rotation, snap["rotation"]))  # type: ignore[return-value]

    def grab(self, pid: str, object_id: str) -> list[dict[str, Any]]:
        return self.send(pid, p.Grab(type="grab", object=object_id))

    def move(self, pid: str, object_id: str, transform: Transform | list[float]) -> list[dict[str, Any]]:
        return self.send(pid, p.ObjectMove(self.object(object_id)["index"], tuple(transform)))

    def put(self, pid: str, object_id: str, transform: Transform | list[float]) -> list[dict[str, Any]]:
        """Pick an object up, carry it to ``transform``, put it down; what the next tick said."""
        assert any(m["type"] == "grabbed" for m in self.grab(pid, object_id)), f"{pid} could not grab {object_id}"
        self.later()
        self.move(pid, object_id, transform)
        self.later()
        released = self.send(pid, p.Release(type="release", object=object_id))
        return released + self.later()

    def interact(self, pid: str, object_id: str, prop: str, value: Any) -> list[dict[str, Any]]:
        return self.send(pid, p.Interact(type="interact", object=object_id, property=prop, value=value)) + self.later()

    def answer(self, pid: str, step: str, value: float) -> list[dict[str, Any]]:
        return self.send(pid, p.Answer(type="answer", step=step, value=value)) + self.later()

    def of(self, kind: str, station: int | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind and (station is None or m.get("station") == station)]


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def steps_done(messages: list[dict[str, Any]]) -> list[str]:
    return [m["step"] for m in messages if m["type"] == "step_done"]


def pair_at_station_one(lab: Lab) -> None:
    """Aziz and Bobur work at station 1 (the teacher puts Bobur with Aziz); Dilnoza then gets station 2."""
    lab.enter("teacher", Role.TEACHER)
    assert lab.enter("aziz") == 1
    assert lab.enter("bobur") == 2  # auto: a bench of one's own while there are free benches
    moved = lab.send("teacher", p.AssignStation(type="assign_station", participant="bobur", station=1))
    assert [m["station"] for m in moved if m["type"] == "station"] == [1]
    assert lab.enter("dilnoza") == 2
    lab.later()


def refused_at_another_station(lab: Lab, object_id: str) -> None:
    errors = [m for m in lab.grab("dilnoza", object_id) if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["wrong_station"], errors
    assert lab.room.holder_of(object_id) is None


def finished(lab: Lab, package_id: str, mistake: str) -> None:
    """Station 1 did every step in order with exactly one mistake, and finished; station 2 did nothing."""
    challenge = processed(package_id).manifest.challenge
    assert challenge is not None
    assert steps_done(lab.of("step_done", 1)) == [step.id for step in challenge.steps]
    assert [m["mistake"] for m in lab.of("mistake", 1)] == [mistake]
    explanation = next(m.explanation for step in challenge.steps for m in step.mistakes if m.id == mistake)
    assert lab.of("mistake", 1)[0]["explanation"] == explanation
    done = lab.of("challenge_done", 1)
    assert len(done) == 1 and done[0]["score"] > 0
    assert {m["by"] for m in lab.of("step_done", 1)} <= {"aziz", "bobur", None}
    assert not lab.of("step_done", 2) and not lab.of("mistake", 2)
    progress = lab.room.snapshot()["stations"]["list"][0]["progress"]
    assert progress["finished"] is not None and set(progress["done"]) == {step.id for step in challenge.steps}


def test_water_bath_from_start_to_finish() -> None:
    lab = Lab("chemistry-bench")
    pair_at_station_one(lab)
    refused_at_another_station(lab, "beaker-water@1")

    # The mistake: the burner lit, and the empty flask brought over the flame.
    lab.interact("aziz", "burner@1", "lit", True)
    home = lab.object("flask@1")["transform"]
    burner = lab.object("burner@1")["transform"]
    lab.grab("bobur", "flask@1")
    out = lab.move("bobur", "flask@1", [burner[0], burner[1] + 0.2, burner[2], 0, 0, 0, 1]) + lab.later()
    mistakes = [m for m in out if m["type"] == "mistake"]
    assert [(m["mistake"], m["station"], m["by"]) for m in mistakes] == [("empty-flask-on-flame", 1, "bobur")]
    assert "fill it first" in mistakes[0]["explanation"]
    lab.move("bobur", "flask@1", home)
    lab.send("bobur", p.Release(type="release", object="flask@1"))
    lab.interact("aziz", "burner@1", "lit", False)

    # 1. Pour: the beaker of water tipped over the flask for a second fills it.
    flask = lab.object("flask@1")["transform"]
    water_home = lab.object("beaker-water@1")["transform"]
    lab.grab("aziz", "beaker-water@1")
    lab.move("aziz", "beaker-water@1", [flask[0] + 0.08, flask[1] + 0.22, flask[2], *POURING])
    assert not steps_done(lab.later(0.5))  # held over it from this tick on
    out = lab.later(1.1)
    assert {"object": "flask@1", "property": "filled", "value": True} in [{k: m[k] for k in ("object", "property", "value")} for m in out if m["type"] == "property"]
    assert steps_done(out) == ["fill-flask"]
    lab.move("aziz", "beaker-water@1", water_home)
    lab.send("aziz", p.Release(type="release", object="beaker-water@1"))
    lab.later()

    # 2-5. Set up: burner under the tripod, the bath on it, the flask and the thermometer in the bath.
    assert steps_done(lab.put("bobur", "burner@1", lab.snap_pose("tripod@1", "burner"))) == ["burner-under-tripod"]
    assert steps_done(lab.put("aziz", "beaker-water@1", lab.snap_pose("tripod@1", "top"))) == ["beaker-on-tripod"]
    assert steps_done(lab.put("bobur", "flask@1", lab.snap_pose("beaker-water@1", "flask"))) == ["flask-in-bath"]
    assert steps_done(lab.put("aziz", "thermometer@1", lab.snap_pose("beaker-water@1", "thermometer"))) == ["thermometer-in"]

    # 6-7. Light the burner; about ten seconds later the thermometer reads hot.
    assert steps_done(lab.interact("bobur", "burner@1", "lit", True)) == ["light-burner"]
    assert not steps_done(lab.later(5.0))
    out = lab.later(5.5)
    reading = [m["value"] for m in out if m["type"] == "property" and m["object"] == "thermometer@1"]
    assert reading == [80] and steps_done(out) == ["heat-bath"]

    # 8. The checkpoint takes its answer from the thermometer, within 2 °C.
    out = lab.answer("aziz", "read-temperature", 79)
    assert [m["correct"] for m in out if m["type"] == "checkpoint_answer"] == [True]
    assert steps_done(out) == ["read-temperature"]

    # 9-10. Burner off; the flask out of the bath onto the heat-proof mat.
    assert steps_done(lab.interact("bobur", "burner@1", "lit", False)) == ["burner-off"]
    out = lab.put("aziz", "flask@1", lab.snap_pose("mat@1", "centre"))
    assert steps_done(out) == ["flask-on-mat"] and "challenge_done" in kinds(out)
    finished(lab, "chemistry-bench", "empty-flask-on-flame")


def test_series_circuit_from_start_to_finish() -> None:
    lab = Lab("circuits-table")
    pair_at_station_one(lab)
    refused_at_another_station(lab, "battery@1")

    assert steps_done(lab.put("aziz", "battery@1", lab.snap_pose("board@1", "battery"))) == ["battery-in"]
    assert steps_done(lab.put("bobur", "switch@1", lab.snap_pose("board@1", "switch"))) == ["switch-in"]
    assert steps_done(lab.put("aziz", "resistor@1", lab.snap_pose("board@1", "resistor"))) == ["resistor-in"]

    # The mistake: the bulb in the holder straight across the battery, bypassing the resistor.
    out = lab.put("bobur", "bulb@1", lab.snap_pose("board@1", "across"))
    assert [(m["mistake"], m["by"]) for m in out if m["type"] == "mistake"] == [("bulb-across-battery", "bobur")]
    assert not steps_done(out)
    assert steps_done(lab.put("bobur", "bulb@1", lab.snap_pose("board@1", "bulb"))) == ["bulb-in"]

    # Closing the switch lights the bulb (a rule), which is the step.
    out = lab.interact("aziz", "switch@1", "closed", True)
    assert [m["value"] for m in out if m["type"] == "property" and m["object"] == "bulb@1"] == [True]
    assert steps_done(out) == ["close-switch"]

    out = lab.answer("bobur", "predict-open", 1)
    assert [m["correct"] for m in out if m["type"] == "checkpoint_answer"] == [True] and steps_done(out) == ["predict-open"]
    out = lab.interact("aziz", "switch@1", "closed", False)
    assert [m["value"] for m in out if m["type"] == "property" and m["object"] == "bulb@1"] == [False]
    assert steps_done(out) == ["open-switch"]
    out = lab.answer("bobur", "why-resistor", 0)
    assert steps_done(out) == ["why-resistor"] and "challenge_done" in kinds(out)
    finished(lab, "circuits-table", "bulb-across-battery")


@pytest.mark.parametrize("package_id", SAMPLE_IDS)
def test_nothing_holds_before_anyone_acts(package_id: str) -> None:
    lab = Lab(package_id)
    lab._take(lab.room.handle("teacher", Enter("teacher", Role.TEACHER), 0.0))
    for i in range(8):  # one student at every bench, so every station's challenge starts
        lab._take(lab.room.handle(f"s{i}", Enter(f"s{i}", Role.STUDENT), 0.0))
    assert sorted(m["station"] for m in lab.of("station")) == list(range(1, 9))
    assert len(lab.of("challenge_started")) == 8
    for now in (0.0, 4000.0):  # the first evaluation, and every rule's timer long run out
        out = lab._take(lab.room.tick(now))
        assert not [m for m in out if m["type"] in ("step_done", "mistake", "challenge_done")], out
    assert not lab.of("step_done") and not lab.of("mistake")
