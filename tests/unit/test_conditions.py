"""Every condition kind, evaluated by the challenge engine from the room's state (no sockets).

Each test declares its condition as a rule's ``when`` that sets a station's
``probe.on`` switch (with ``otherwise: false``), so the probe shows whether the
condition holds after every tick, as a student's lab would. Times are explicit.
"""

from __future__ import annotations

import math
from typing import Any

from realtime.challenges import Challenges, Event
from scenes.model import Scene, SceneObject, Zone

IDENTITY = (0.0, 0.0, 0.0, 1.0)
_KEEP: Any = object()


def about(axis: str, degrees: float) -> tuple[float, float, float, float]:
    """The unit quaternion turning ``degrees`` about the x, y or z axis."""
    half = math.radians(degrees) / 2
    s, c = math.sin(half), math.cos(half)
    return {"x": (s, 0.0, 0.0, c), "y": (0.0, s, 0.0, c), "z": (0.0, 0.0, s, c)}[axis]


def _obj(ident: str, position: tuple[float, float, float], station: int | None, *, interactable: bool = True, properties: tuple[dict, ...] = (), snaps: tuple = ()) -> SceneObject:
    return SceneObject(ident, ident, (*position, *IDENTITY), interactable, None, station, properties, snaps)  # type: ignore[arg-type]


def station_x(number: int) -> float:
    return 10.0 * number


def lab_scene(rules: list[dict] = (), challenge: dict | None = None, stations: int = 2, group_size: int = 2, assignment: str = "auto") -> Scene:  # type: ignore[assignment]
    """A bench per station at x = 10, 20, ...: beaker, tripod (snap point 'top' 0.2 m above it),
    burner (switch 'lit'), dial (number 'level' 0..10 in steps of 0.5), valve (choice 'state'),
    thermo (rule-driven number 'reading'), flask and probe (rule-driven switch 'on');
    zones 'bench' (2 x 1 x 2 m box around the beaker) and 'door' (sphere, radius 0.5 m).
    Shared: a bottle and the 'sink' zone."""
    objects = [_obj("bottle", (0.0, 1.0, 5.0), None)]
    zones = [Zone("sink", "sphere", (0.0, 1.0, 5.0), None, 1.0)]
    places = []
    for s in range(1, stations + 1):
        x = station_x(s)
        objects += [
            _obj(f"beaker@{s}", (x, 1.0, 0.0), s),
            _obj(f"tripod@{s}", (x + 1, 0.8, 0.0), s, interactable=False, snaps=(("top", (0.0, 0.2, 0.0), IDENTITY),)),
            _obj(f"burner@{s}", (x + 2, 0.8, 0.0), s, properties=({"id": "lit", "kind": "switch", "initial": False},)),
            _obj(f"dial@{s}", (x + 3, 0.8, 0.0), s, properties=({"id": "level", "kind": "number", "initial": 0, "min": 0, "max": 10, "step": 0.5},)),
            _obj(f"valve@{s}", (x + 3.5, 0.8, 0.0), s, properties=({"id": "state", "kind": "choice", "initial": "closed", "choices": ["closed", "open"]},)),
            _obj(f"thermo@{s}", (x + 4, 0.8, 0.0), s, properties=({"id": "reading", "kind": "number", "initial": 20, "min": 0, "max": 120, "interactive": False},)),
            _obj(f"flask@{s}", (x + 4.5, 1.0, 0.0), s),
            _obj(f"probe@{s}", (x, 0.0, -1.0), s, interactable=False, properties=({"id": "on", "kind": "switch", "initial": False, "interactive": False},)),
        ]
        zones += [Zone(f"bench@{s}", "box", (x, 1.0, 0.0), (2.0, 1.0, 2.0), None, s), Zone(f"door@{s}", "sphere", (x + 5, 0.0, 0.0), None, 0.5, s)]
        places.append({"number": s, "title": f"Station {s}", "position": [x, 0, 0], "yaw_degrees": 0, "spawn_points": [{"position": [x, 0, 2], "yaw_degrees": 0}]})
    template = {"objects": ["beaker", "tripod", "burner", "dial", "valve", "thermo", "flask", "probe"], "zones": ["bench", "door"]}
    return Scene(
        "lab", 1, "Lab", tuple(objects), ((0.0, 0.0, 3.0, 0.0),), tuple(zones), "", {}, tuple(places),
        {"group_size": group_size, "assignment": assignment}, template, tuple(rules), challenge,
    )


class Lab:
    """The engine of one room, driven the way the room drives it."""

    def __init__(self, scene: Scene) -> None:
        self.engine = Challenges(scene)
        self.events: list[Event] = []

    def index(self, name: str) -> int:
        return self.engine.index[name]

    def join(self, participant: str, now: float = 0.0) -> list[Event]:
        events, _ = self.engine.join(participant, participant.title(), now)
        self.events += events
        return events

    def put(self, name: str, position: tuple[float, float, float] | None = None, rotation: tuple[float, ...] | None = None, holder: str | None = _KEEP, by: str | None = None, now: float = 0.0) -> None:
        """Move (or hand over) an object, as the room reports it at the next tick."""
        i = self.index(name)
        transform = [*(position or self.engine.position[i]), *(rotation or self.engine.rotation[i])]
        if by is not None:
            self.engine.touched(i, by, now)
        self.engine.moved([i], [transform], [self.engine.holder[i] if holder is _KEEP else holder])

    def set(self, participant: str, name: str, prop: str, value: Any, now: float) -> list[Event]:
        events = self.engine.interact(participant, self.index(name), prop, value, now)
        self.events += events
        return events

    def value(self, name: str, prop: str) -> Any:
        return self.engine.values[(self.index(name), prop)]

    def tick(self, now: float) -> list[Event]:
        events = self.engine.tick(now)
        self.events += events
        return events

    def kinds(self, events: list[Event] | None = None) -> list[str]:
        return [event.kind for event in (self.events if events is None else events)]


def probe(condition: dict, **scene: Any) -> Lab:
    """A lab whose stations' probe.on shows whether ``condition`` holds there; Ann is at station 1."""
    rule = {"object": "probe", "property": "on", "value": True, "otherwise": False, "when": condition}
    lab = Lab(lab_scene([rule], **scene))
    lab.join("ann")
    lab.tick(0.0)
    return lab


def on(lab: Lab, station: int = 1) -> bool:
    return lab.value(f"probe@{station}", "on")


X = station_x(1)
SNAP = (X + 1, 1.0, 0.0)  # the tripod's 'top' in the world


# ------------------------------------------------------------------ in_zone


def test_in_zone_box_is_inclusive_at_its_faces_and_checks_height() -> None:
    lab = probe({"in_zone": {"object": "beaker", "zone": "bench"}})
    assert on(lab)  # the beaker starts in the middle of the bench
    lab.put("beaker@1", (X + 1.0, 1.0, 0.0))
    lab.tick(0.1)
    assert on(lab)  # on the face: still in
    lab.put("beaker@1", (X + 1.01, 1.0, 0.0))
    lab.tick(0.2)
    assert not on(lab)
    lab.put("beaker@1", (X, 1.6, 0.0))  # above the box
    lab.tick(0.3)
    assert not on(lab)
    lab.put("beaker@1", (X - 0.9, 0.6, 0.9))
    lab.tick(0.4)
    assert on(lab)


def test_in_zone_sphere_by_distance_from_its_centre() -> None:
    lab = probe({"in_zone": {"object": "flask", "zone": "door"}})
    assert not on(lab)
    lab.put("flask@1", (X + 5, 0.3, 0.4))  # 0.5 m from the centre
    lab.tick(0.1)
    assert on(lab)
    lab.put("flask@1", (X + 5, 0.4, 0.4))
    lab.tick(0.2)
    assert not on(lab)


def test_in_zone_names_each_stations_own_copy_and_shared_zones() -> None:
    lab = probe({"in_zone": {"object": "beaker", "zone": "sink"}})
    lab.put("beaker@2", (0.0, 1.0, 5.0))  # station 2's beaker in the shared sink
    lab.tick(0.1)
    assert on(lab, 2) and not on(lab, 1)


# ------------------------------------------------------------------ at_snap


def test_at_snap_within_distance_of_the_snap_point_and_put_down() -> None:
    lab = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}})
    assert not on(lab)
    lab.put("beaker@1", (SNAP[0], SNAP[1] + 0.04, 0.0))
    lab.tick(0.1)
    assert on(lab)
    lab.put("beaker@1", (SNAP[0], SNAP[1] + 0.06, 0.0))
    lab.tick(0.2)
    assert not on(lab)  # default distance_m 0.05


def test_at_snap_distance_is_configurable() -> None:
    lab = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "distance_m": 0.1}})
    lab.put("beaker@1", (SNAP[0] + 0.08, SNAP[1], 0.0))
    lab.tick(0.1)
    assert on(lab)


def test_at_snap_angle_between_up_axes() -> None:
    lab = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}})
    lab.put("beaker@1", SNAP, about("x", 15))
    lab.tick(0.1)
    assert on(lab)  # default angle_degrees 20
    lab.put("beaker@1", SNAP, about("x", 25))
    lab.tick(0.2)
    assert not on(lab)
    wide = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "angle_degrees": 30}})
    wide.put("beaker@1", SNAP, about("z", 25))
    wide.tick(0.1)
    assert on(wide)


def test_at_snap_ignores_yaw_unless_match_yaw() -> None:
    free = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}})
    free.put("beaker@1", SNAP, about("y", 90))
    free.tick(0.1)
    assert on(free)
    strict = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "match_yaw": True}})
    strict.put("beaker@1", SNAP, about("y", 90))
    strict.tick(0.1)
    assert not on(strict)
    strict.put("beaker@1", SNAP, about("y", 15))
    strict.tick(0.2)
    assert on(strict)
    strict.put("beaker@1", SNAP, about("y", -25))
    strict.tick(0.3)
    assert not on(strict)


def test_at_snap_follows_the_target_when_it_turns() -> None:
    lab = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}})
    # tripod on its side (90 degrees about z): 'top' is now 0.2 m along -x, facing -x
    lab.put("tripod@1", (X + 1, 0.8, 0.0), about("z", 90))
    lab.put("beaker@1", (X + 0.8, 0.8, 0.0))
    lab.tick(0.1)
    assert not on(lab)  # in place but upright, 90 degrees off the snap point's up
    lab.put("beaker@1", (X + 0.8, 0.8, 0.0), about("z", 90))
    lab.tick(0.2)
    assert on(lab)
    lab.put("beaker@1", SNAP, IDENTITY)  # where the snap point was
    lab.tick(0.3)
    assert not on(lab)


def test_at_snap_placed_needs_nobody_holding_it() -> None:
    lab = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}})
    lab.put("beaker@1", SNAP, holder="ann")
    lab.tick(0.1)
    assert not on(lab)
    lab.put("beaker@1", holder=None)
    lab.tick(0.2)
    assert on(lab)
    held = probe({"at_snap": {"object": "beaker", "target": "tripod", "snap": "top", "placed": False}})
    held.put("beaker@1", SNAP, holder="ann")
    held.tick(0.1)
    assert on(held)


# ------------------------------------------------------------------ near, upright, tilted


def test_near_by_distance_between_origins() -> None:
    lab = probe({"near": {"object": "beaker", "other": "flask", "distance_m": 0.3}})
    assert not on(lab)
    lab.put("beaker@1", (X + 4.5, 1.0, 0.3))
    lab.tick(0.1)
    assert on(lab)
    lab.put("flask@1", (X + 4.5, 1.0, -0.01))  # the other one moves away
    lab.tick(0.2)
    assert not on(lab)


def test_upright_within_degrees_of_the_worlds_up() -> None:
    lab = probe({"upright": {"object": "flask"}})
    assert on(lab)
    lab.put("flask@1", rotation=about("x", 14))
    lab.tick(0.1)
    assert on(lab)  # default within_degrees 15
    lab.put("flask@1", rotation=about("z", 16))
    lab.tick(0.2)
    assert not on(lab)
    lab.put("flask@1", rotation=about("y", 170))  # turning about up keeps it upright
    lab.tick(0.3)
    assert on(lab)


def test_tilted_past_degrees() -> None:
    lab = probe({"tilted": {"object": "flask", "past_degrees": 60}})
    assert not on(lab)
    lab.put("flask@1", rotation=about("x", 50))
    lab.tick(0.1)
    assert not on(lab)
    lab.put("flask@1", rotation=about("x", 70))
    lab.tick(0.2)
    assert on(lab)
    lab.put("flask@1", rotation=about("z", 180))  # upside down
    lab.tick(0.3)
    assert on(lab)


# ------------------------------------------------------------------ held, participant_in_zone


def test_held_by_anyone() -> None:
    lab = probe({"held": {"object": "flask"}})
    assert not on(lab)
    lab.put("flask@1", holder="teacher")
    lab.tick(0.1)
    assert on(lab)
    lab.put("flask@1", holder=None)
    lab.tick(0.2)
    assert not on(lab)


def test_held_by_learner_needs_a_member_of_the_stations_group() -> None:
    lab = probe({"held": {"object": "bottle", "by_learner": True}})
    lab.join("bob")  # station 2
    lab.put("bottle", holder="teacher")
    lab.tick(0.1)
    assert not on(lab, 1) and not on(lab, 2)
    lab.put("bottle", holder="bob")
    lab.tick(0.2)
    assert on(lab, 2) and not on(lab, 1)
    lab.engine.assign("bob", "Bob", 1, 0.3)  # moved to station 1, still holding it
    lab.tick(0.3)
    assert on(lab, 1) and not on(lab, 2)


def test_participant_in_zone_by_head_over_the_zones_footprint() -> None:
    lab = probe({"participant_in_zone": {"zone": "door"}})
    lab.join("bob")  # station 2
    lab.engine.walked({"ann": (X + 5, 1.6, 0.3)})  # head 1.6 m up, over the 0.5 m sphere's footprint
    lab.tick(0.1)
    assert on(lab, 1)
    lab.engine.walked({"ann": (X + 5, 1.6, 0.6)})
    lab.tick(0.2)
    assert not on(lab, 1)
    lab.engine.walked({"bob": (X + 5, 1.7, 0.0)})  # someone of another station
    lab.tick(0.3)
    assert not on(lab, 1) and not on(lab, 2)


def test_participant_in_zone_stops_when_the_member_leaves_the_station() -> None:
    lab = probe({"participant_in_zone": {"zone": "door"}})
    lab.engine.walked({"ann": (X + 5, 1.6, 0.0)})
    lab.tick(0.1)
    assert on(lab)
    lab.engine.leave("ann", 0.2)
    lab.tick(0.2)
    assert not on(lab)


def test_participant_in_zone_counts_a_member_who_stood_still_through_a_teacher_move() -> None:
    lab = probe({"participant_in_zone": {"zone": "door"}})
    lab.engine.walked({"ann": (X + 5, 1.6, 0.0)})
    lab.tick(0.1)
    lab.engine.assign("ann", "Ann", None, 0.2)  # the teacher takes her off the station
    lab.tick(0.2)
    assert not on(lab)
    lab.engine.assign("ann", "Ann", 1, 0.3)  # and puts her back; she has not moved
    lab.tick(0.3)
    assert on(lab)


# ------------------------------------------------------------------ property


def test_property_equals_a_switch() -> None:
    lab = probe({"property": {"object": "burner", "property": "lit", "equals": True}})
    assert not on(lab)
    lab.set("ann", "burner@1", "lit", True, 0.1)
    lab.tick(0.1)
    assert on(lab)
    lab.set("ann", "burner@1", "lit", False, 0.2)
    lab.tick(0.2)
    assert not on(lab)


def test_property_equals_a_choice() -> None:
    lab = probe({"property": {"object": "valve", "property": "state", "equals": "open"}})
    lab.set("ann", "valve@1", "state", "open", 0.1)
    lab.tick(0.1)
    assert on(lab)


def test_property_equals_a_number_reached_in_steps() -> None:
    lab = probe({"property": {"object": "dial", "property": "level", "equals": 2.5}})
    lab.set("ann", "dial@1", "level", 2.6, 0.1)  # rounded to the 0.5 step
    lab.tick(0.1)
    assert lab.value("dial@1", "level") == 2.5 and on(lab)


def test_property_equals_a_decimal_step_exactly() -> None:
    scene = lab_scene([])
    objects = list(scene.objects)
    i = scene.object_index()["dial@1"]
    dial = objects[i]
    objects[i] = SceneObject(dial.id, dial.title, dial.transform, True, None, 1, ({"id": "level", "kind": "number", "initial": 0, "min": 0, "max": 1, "step": 0.1},))
    rule = {"object": "probe", "property": "on", "value": True, "otherwise": False, "when": {"property": {"object": "dial", "property": "level", "equals": 0.3}}}
    scene = Scene(scene.id, 1, "Lab", tuple(objects), scene.spawn_points, scene.zones, "", {}, scene.stations, scene.station_rules, scene.template, (rule,), None)
    lab = Lab(scene)
    lab.join("ann")
    lab.set("ann", "dial@1", "level", 0.3, 0.1)
    lab.tick(0.1)
    assert lab.value("dial@1", "level") == 0.3  # not 0.30000000000000004
    assert on(lab)


def test_property_range_with_both_or_one_bound() -> None:
    lab = probe({"property": {"object": "dial", "property": "level", "min": 2, "max": 4}})
    for value, holds in ((3, True), (4, True), (4.5, False), (1.5, False), (2, True)):
        lab.set("ann", "dial@1", "level", value, 0.1)
        lab.tick(0.1)
        assert on(lab) is holds, value
    above = probe({"property": {"object": "dial", "property": "level", "min": 2}})
    above.set("ann", "dial@1", "level", 10, 0.1)
    above.tick(0.1)
    assert on(above)


# ------------------------------------------------------------------ all, any, not


def test_all_any_not() -> None:
    lit = {"property": {"object": "burner", "property": "lit", "equals": True}}
    placed = {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
    both = probe({"all": [lit, placed]})
    either = probe({"any": [lit, placed]})
    neither = probe({"not": {"any": [lit, placed]}})
    for lab in (both, either, neither):
        lab.tick(0.05)
    assert (on(both), on(either), on(neither)) == (False, False, True)
    for lab in (both, either, neither):
        lab.set("ann", "burner@1", "lit", True, 0.1)
        lab.tick(0.1)
    assert (on(both), on(either), on(neither)) == (False, True, False)
    for lab in (both, either, neither):
        lab.put("beaker@1", SNAP)
        lab.tick(0.2)
    assert (on(both), on(either), on(neither)) == (True, True, False)


# ------------------------------------------------------------------ stable_for


def test_stable_for_fires_on_time_with_nothing_moving() -> None:
    lab = probe({"stable_for": {"seconds": 3, "condition": {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}}})
    lab.put("beaker@1", SNAP)
    lab.tick(1.0)
    assert not on(lab)
    lab.tick(3.9)
    assert not on(lab)
    lab.tick(4.0)  # nothing changed since 1.0: the timer woke the condition
    assert on(lab)


def test_stable_for_starts_again_after_a_break() -> None:
    lab = probe({"stable_for": {"seconds": 3, "condition": {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}}})
    lab.put("beaker@1", SNAP)
    lab.tick(1.0)
    lab.put("beaker@1", holder="ann")  # picked up again
    lab.tick(2.0)
    lab.put("beaker@1", holder=None)
    lab.tick(2.5)
    lab.tick(4.0)
    assert not on(lab)  # 3 s from 1.0, but it broke at 2.0
    lab.tick(5.4)
    assert not on(lab)
    lab.tick(5.5)
    assert on(lab)
    lab.put("beaker@1", holder="ann")
    lab.tick(6.0)
    assert not on(lab)


def test_stable_for_fires_at_exactly_its_time() -> None:
    lab = probe({"stable_for": {"seconds": 0.1, "condition": {"property": {"object": "burner", "property": "lit", "equals": True}}}})
    lab.set("ann", "burner@1", "lit", True, 0.7)
    lab.tick(0.7)
    lab.tick(0.7 + 0.1)  # a float just short of 0.8
    assert on(lab)


def test_two_timers_in_one_condition_each_wake_it() -> None:
    lab = probe({"any": [
        {"stable_for": {"seconds": 2, "condition": {"property": {"object": "burner", "property": "lit", "equals": True}}}},
        {"stable_for": {"seconds": 5, "condition": {"property": {"object": "valve", "property": "state", "equals": "open"}}}},
    ]})
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.set("ann", "valve@1", "state", "open", 1.0)
    lab.tick(1.0)
    lab.tick(3.0)  # the shorter timer is due
    assert on(lab)


def test_stable_for_behind_a_false_sibling_still_sees_its_break() -> None:
    lit = {"property": {"object": "burner", "property": "lit", "equals": True}}
    placed = {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
    lab = probe({"all": [lit, {"stable_for": {"seconds": 3, "condition": placed}}]})
    lab.put("beaker@1", SNAP)
    lab.tick(0.0)
    lab.put("beaker@1", holder="ann")  # breaks while the burner is off
    lab.tick(1.0)
    lab.put("beaker@1", holder=None)
    lab.tick(2.0)
    lab.set("ann", "burner@1", "lit", True, 3.5)
    lab.tick(3.5)
    assert not on(lab)  # placed again only 1.5 s ago
    lab.tick(5.0)
    assert on(lab)


# ------------------------------------------------------------------ then


LIT = {"property": {"object": "burner", "property": "lit", "equals": True}}
IN_BENCH = {"in_zone": {"object": "flask", "zone": "bench"}}


def test_then_in_turn_within_the_window() -> None:
    lab = probe({"then": {"conditions": [LIT, IN_BENCH], "within_seconds": 5}})
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    assert not on(lab)
    lab.put("flask@1", (X, 1.0, 0.5))
    lab.tick(5.5)
    assert on(lab)


def test_then_too_slow_does_not_count_even_if_the_first_still_holds() -> None:
    lab = probe({"then": {"conditions": [LIT, IN_BENCH], "within_seconds": 5}})
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    lab.put("flask@1", (X, 1.0, 0.5))
    lab.tick(7.0)  # 6 s after the burner was lit; it is still lit
    assert not on(lab)


def test_then_out_of_order_does_not_count() -> None:
    lab = probe({"then": {"conditions": [LIT, IN_BENCH], "within_seconds": 5}})
    lab.put("flask@1", (X, 1.0, 0.5))
    lab.tick(1.0)
    lab.set("ann", "burner@1", "lit", True, 2.0)
    lab.tick(2.0)
    assert not on(lab)  # the flask was there before the burner was lit
    lab.put("flask@1", (X + 4.5, 1.0, 0.0))
    lab.tick(3.0)
    lab.put("flask@1", (X, 1.0, 0.5))  # taken away and brought back: now it is in turn
    lab.tick(4.0)
    assert on(lab)


def test_then_starts_again_after_a_slow_try() -> None:
    lab = probe({"then": {"conditions": [LIT, IN_BENCH], "within_seconds": 5}})
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    lab.set("ann", "burner@1", "lit", False, 2.0)
    lab.tick(2.0)
    lab.set("ann", "burner@1", "lit", True, 10.0)
    lab.tick(10.0)
    lab.put("flask@1", (X, 1.0, 0.5))
    lab.tick(12.0)
    assert on(lab)
    lab.put("flask@1", (X + 4.5, 1.0, 0.0))  # holds while the last one does
    lab.tick(13.0)
    assert not on(lab)


# ------------------------------------------------------------------ rules


def test_rule_after_seconds_and_otherwise() -> None:
    rule = {"object": "thermo", "property": "reading", "value": 80, "otherwise": 20, "after_seconds": 5, "when": LIT}
    lab = Lab(lab_scene([rule]))
    lab.join("ann")
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    lab.tick(5.9)
    assert lab.value("thermo@1", "reading") == 20
    events = lab.tick(6.0)
    assert lab.value("thermo@1", "reading") == 80
    assert [(e.kind, e.fields) for e in events] == [("property", {"object": "thermo@1", "property": "reading", "value": 80, "by": None})]
    assert lab.value("thermo@2", "reading") == 20  # each station has its own rule
    lab.set("ann", "burner@1", "lit", False, 7.0)
    lab.tick(7.0)
    assert lab.value("thermo@1", "reading") == 20


def test_rule_without_otherwise_keeps_its_value() -> None:
    rule = {"object": "thermo", "property": "reading", "value": 80, "when": LIT}
    lab = Lab(lab_scene([rule]))
    lab.join("ann")
    lab.set("ann", "burner@1", "lit", True, 1.0)
    lab.tick(1.0)
    lab.set("ann", "burner@1", "lit", False, 2.0)
    lab.tick(2.0)
    assert lab.value("thermo@1", "reading") == 80


def test_rules_feed_each_other_and_steps_in_the_same_tick() -> None:
    rules = [
        {"object": "thermo", "property": "reading", "value": 80, "otherwise": 20, "when": LIT},
        {"object": "probe", "property": "on", "value": True, "otherwise": False, "when": {"property": {"object": "thermo", "property": "reading", "min": 70}}},
    ]
    challenge = {"id": "hot", "title": "Hot", "steps": [{"id": "heat", "text": "Heat it", "condition": {"property": {"object": "probe", "property": "on", "equals": True}}}]}
    lab = Lab(lab_scene(rules, challenge))
    lab.join("ann")
    lab.tick(0.0)
    lab.set("ann", "burner@1", "lit", True, 1.0)
    events = lab.tick(1.0)
    assert [e.kind for e in events] == ["property", "property", "step_done", "challenge_done", "score"]
    assert events[2].fields["step"] == "heat" and events[2].fields["t"] == 1.0


def test_rules_that_flip_each_other_cannot_spin() -> None:
    rule = {"object": "probe", "property": "on", "value": True, "otherwise": False, "when": {"property": {"object": "probe", "property": "on", "equals": False}}}
    lab = Lab(lab_scene([rule], stations=1))
    lab.join("ann")
    events = lab.tick(0.0)
    assert 1 <= len(events) <= 8


def test_rule_on_shared_things_runs_once_for_the_room() -> None:
    rule = {"object": "bottle", "property": "full", "value": True, "otherwise": False, "when": {"in_zone": {"object": "bottle", "zone": "sink"}}}
    scene = lab_scene([rule])
    objects = (SceneObject("bottle", "bottle", (0.0, 1.0, 9.0, *IDENTITY), True, None, None, ({"id": "full", "kind": "switch", "initial": False, "interactive": False},)), *scene.objects[1:])
    scene = Scene(scene.id, 1, "Lab", objects, scene.spawn_points, scene.zones, "", {}, scene.stations, scene.station_rules, scene.template, (rule,), None)
    lab = Lab(scene)
    lab.put("bottle", (0.0, 1.0, 5.2))
    events = lab.tick(0.1)
    assert [e.fields["value"] for e in events if e.kind == "property"] == [True]


def test_rule_reading_where_people_stand_in_a_lab_without_stations() -> None:
    rule = {"object": "lamp", "property": "on", "value": True, "otherwise": False, "when": {"participant_in_zone": {"zone": "door"}}}
    lamp = SceneObject("lamp", "Lamp", (0.0, 2.0, 0.0, *IDENTITY), False, None, None, ({"id": "on", "kind": "switch", "initial": False, "interactive": False},))
    scene = Scene("plain", 1, "Plain", (lamp,), ((0.0, 0.0, 0.0, 0.0),), (Zone("door", "sphere", (3.0, 0.0, 0.0), None, 1.0),), rules=(rule,))
    lab = Lab(scene)
    lab.join("ann")
    lab.engine.walked({"ann": (3.0, 1.6, 0.2)})
    lab.tick(0.1)
    assert lab.value("lamp", "on") is True
