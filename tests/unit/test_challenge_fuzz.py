"""Hostile challenge messages against a sample practical, with no sockets: whatever students and
teachers send (any object, property, value, step or station, in any order, at any time), the
room answers with events or an error with a known code, never raises, and its state stays what
a client can be sent (the snapshot is JSON) and consistent (every student at most at one station,
within the group size; every property value within its declaration)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import protocol as p
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import Enter, Room, Send
from scenes.model import Scene
from tests.unit.test_samples import processed

PEOPLE = [("ann", Role.STUDENT), ("bob", Role.STUDENT), ("cat", Role.STUDENT), ("tess", Role.TEACHER)]
SCENE = Scene.from_processed(processed("chemistry-bench").server, 1, "")
OBJECTS = [obj.id for obj in SCENE.objects]
PROPERTIES = sorted({prop["id"] for obj in SCENE.objects for prop in obj.properties} | {"nope"})
STEPS = [step["id"] for step in (SCENE.challenge or {}).get("steps", [])] + ["nope"]
CODES = {str(code) for code in p.ErrorCode}

values = st.one_of(
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["on", "off", "", "x" * 64]),
)
messages = st.one_of(
    st.builds(lambda o, n, v: p.Interact(type="interact", object=o, property=n, value=v), st.sampled_from(OBJECTS + ["nope"]), st.sampled_from(PROPERTIES), values),
    st.builds(
        lambda s, v: p.Answer(type="answer", step=s, value=v),
        st.sampled_from(STEPS),
        st.one_of(st.integers(-(10**40), 10**40), st.floats(allow_nan=False, allow_infinity=False)),
    ),
    st.builds(lambda n: p.ChooseStation(type="choose_station", station=n), st.integers(1, 64)),
    st.builds(
        lambda who, n: p.AssignStation(type="assign_station", participant=who, station=n),
        st.sampled_from([pid for pid, _ in PEOPLE] + ["nope"]),
        st.none() | st.integers(1, 64),
    ),
    st.builds(lambda o: p.Grab(type="grab", object=o), st.sampled_from(OBJECTS)),
    st.builds(lambda o: p.Release(type="release", object=o), st.sampled_from(OBJECTS)),
    st.builds(lambda f: p.Freeze(type="freeze", frozen=f), st.booleans()),
    st.just(p.Reset(type="reset")),
)
inputs = st.lists(st.tuples(st.sampled_from([pid for pid, _ in PEOPLE]), messages, st.floats(0, 5)), max_size=40)


def _sent(out: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(item.data) for item in out if isinstance(item, Send) and isinstance(item.data, str)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs)
def test_any_challenge_message_gets_events_or_a_known_error(script: list[tuple[str, Any, float]]) -> None:
    room = Room("fuzz", SCENE, RoomLimits())
    now = 0.0
    for pid, role in PEOPLE:
        room.handle(pid, Enter(pid.title(), role), now)
    for pid, message, step in script:
        now += step
        for sent in _sent(room.handle(pid, message, now)) + _sent(room.tick(now)):
            if sent["type"] == "error":
                assert sent["code"] in CODES and sent["code"] != "server_error", sent
    json.dumps(room.snapshot(), allow_nan=False)
    engine = room.challenges
    placed = [pid for station in engine.stations.stations.values() for pid in station.members]
    assert len(placed) == len(set(placed)) and set(placed) <= {"ann", "bob", "cat"}
    assert all(len(station.members) <= engine.stations.group_size for station in engine.stations.stations.values())
    for key, value in engine.properties.values.items():
        spec = engine.properties.specs[key]
        if spec.kind == "number":
            assert isinstance(value, (int, float)) and math.isfinite(value) and spec.min <= value <= spec.max, (key, value)
        elif spec.kind == "switch":
            assert type(value) is bool, (key, value)
        else:
            assert value in (spec.choices or []), (key, value)
