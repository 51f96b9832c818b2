"""Conditions compiled from scene.json into small trees the evaluator re-checks on change.

A designer's condition (scenes.challenge_format) names template objects and
zones; compiling it for one station resolves each name to the room's object
index or zone, so evaluating is arithmetic on the room's current state and
nothing else: no lookups by name, no allocation.

Conventions (WebXR's, as in the rest of the room): metres, right-handed, y up;
rotations are unit quaternions (x, y, z, w). An object's up axis is its local
+y turned by its rotation q:

    up(q) = (2(xy - wz), 1 - 2(x² + z²), 2(yz + wx))

so "upright within a" is up.y >= cos a, and "tilted past a" is up.y < cos a.
``at_snap`` places the target's snap point in the world as
target.position + rotate(target.q, snap.position) with rotation target.q * snap.q;
the object is there when its origin is within ``distance_m`` and its up axis
within ``angle_degrees`` of the snap point's (with ``match_yaw``, the whole
rotation: the angle between quaternions, 2 acos |q1 . q2|), and, unless
``placed`` is false, nobody holds it.

Every node reads the world through a Context (the evaluator) and reports the
keys it reads, which is what the evaluator's index is built from:
("o", i) an object's transform or holder, ("p", i, name) a property, ("m", s)
who the members of station s are, ("w", s) where they stand (station 0: every
student at any station, for a rule on shared equipment). Timers: ``stable_for`` asks the context
to wake its tracker when its time is up; ``then`` needs no timer (its window
only ever turns it false, which the next change will see).

A subtree with a timer in it is evaluated without short-circuit, so that a
``stable_for`` behind a false sibling still sees its condition break.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol

from scenes import challenge_format as cf
from scenes.quaternions import multiply, rotate, up, up_y

Key = tuple[Any, ...]


class Context(Protocol):
    """What a node may read of the room, and the one thing it may ask for (a wake-up)."""

    position: list[list[float]]
    rotation: list[list[float]]
    holder: list[str | None]
    values: dict[tuple[int, str], Any]

    def members(self, station: int) -> list[str]: ...

    def head(self, participant: str) -> tuple[float, float, float]: ...

    def wake(self, when: float) -> None: ...


class Zone:
    """A zone's shape as numbers: an axis-aligned box (half extents) or a sphere."""

    __slots__ = ("cx", "cy", "cz", "hx", "hy", "hz", "r2", "box")

    def __init__(self, shape: str, center: tuple[float, float, float], size: tuple[float, float, float] | None, radius: float | None) -> None:
        self.cx, self.cy, self.cz = center
        self.box = shape == "box"
        hx, hy, hz = (size or (0.0, 0.0, 0.0))
        self.hx, self.hy, self.hz = hx / 2, hy / 2, hz / 2
        self.r2 = (radius or 0.0) ** 2

    def contains(self, p: list[float] | tuple[float, float, float]) -> bool:
        dx, dy, dz = p[0] - self.cx, p[1] - self.cy, p[2] - self.cz
        if self.box:
            return abs(dx) <= self.hx and abs(dy) <= self.hy and abs(dz) <= self.hz
        return dx * dx + dy * dy + dz * dz <= self.r2

    def contains_floor_point(self, p: tuple[float, float, float]) -> bool:
        """Whether a point is over the zone's footprint (a standing person's head, any height)."""
        dx, dz = p[0] - self.cx, p[2] - self.cz
        if self.box:
            return abs(dx) <= self.hx and abs(dz) <= self.hz
        return dx * dx + dz * dz <= self.r2


class Node:
    """One part of a compiled condition."""

    __slots__ = ("temporal",)

    def __init__(self) -> None:
        self.temporal = False

    def eval(self, ctx: Context, now: float) -> bool:
        raise NotImplementedError

    def keys(self) -> list[Key]:
        return []

    def objects(self) -> list[int]:
        """Object indices this node names, for highlights and for who gets credit."""
        return []


class InZone(Node):
    __slots__ = ("i", "zone")

    def __init__(self, i: int, zone: Zone) -> None:
        super().__init__()
        self.i, self.zone = i, zone

    def eval(self, ctx: Context, now: float) -> bool:
        return self.zone.contains(ctx.position[self.i])

    def keys(self) -> list[Key]:
        return [("o", self.i)]

    def objects(self) -> list[int]:
        return [self.i]


class AtSnap(Node):
    __slots__ = ("i", "j", "local", "local_q", "d2", "cos", "match_yaw", "placed")

    def __init__(self, i: int, j: int, position: tuple[float, float, float], rotation: tuple[float, float, float, float], spec: cf.AtSnap) -> None:
        super().__init__()
        self.i, self.j, self.local, self.local_q = i, j, position, rotation
        self.d2 = spec.distance_m**2
        self.cos = math.cos(math.radians(spec.angle_degrees))
        self.match_yaw = spec.match_yaw
        self.placed = spec.placed

    def eval(self, ctx: Context, now: float) -> bool:
        if self.placed and ctx.holder[self.i] is not None:
            return False
        p, tp, tq = ctx.position[self.i], ctx.position[self.j], ctx.rotation[self.j]
        ox, oy, oz = rotate(tq, self.local)
        dx, dy, dz = p[0] - tp[0] - ox, p[1] - tp[1] - oy, p[2] - tp[2] - oz
        if dx * dx + dy * dy + dz * dz > self.d2:
            return False
        snap_q = multiply(tq, self.local_q)
        q = ctx.rotation[self.i]
        if self.match_yaw:
            dot = abs(q[0] * snap_q[0] + q[1] * snap_q[1] + q[2] * snap_q[2] + q[3] * snap_q[3])
            return 2 * dot * dot - 1 >= self.cos  # cos(2 acos d) = 2d² - 1
        a, b = up(q), up(snap_q)
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] >= self.cos

    def keys(self) -> list[Key]:
        return [("o", self.i), ("o", self.j)]

    def objects(self) -> list[int]:
        return [self.i, self.j]


class Near(Node):
    __slots__ = ("i", "j", "d2")

    def __init__(self, i: int, j: int, distance: float) -> None:
        super().__init__()
        self.i, self.j, self.d2 = i, j, distance * distance

    def eval(self, ctx: Context, now: float) -> bool:
        a, b = ctx.position[self.i], ctx.position[self.j]
        dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
        return dx * dx + dy * dy + dz * dz <= self.d2

    def keys(self) -> list[Key]:
        return [("o", self.i), ("o", self.j)]

    def objects(self) -> list[int]:
        return [self.i, self.j]


class Tilt(Node):
    """Upright (``upright`` True: up.y >= cos a) or tilted past a (up.y < cos a)."""

    __slots__ = ("i", "cos", "upright")

    def __init__(self, i: int, degrees: float, upright: bool) -> None:
        super().__init__()
        self.i, self.cos, self.upright = i, math.cos(math.radians(degrees)), upright

    def eval(self, ctx: Context, now: float) -> bool:
        return (up_y(ctx.rotation[self.i]) >= self.cos) == self.upright

    def keys(self) -> list[Key]:
        return [("o", self.i)]

    def objects(self) -> list[int]:
        return [self.i]


class Held(Node):
    __slots__ = ("i", "station")

    def __init__(self, i: int, station: int | None) -> None:
        super().__init__()
        self.i, self.station = i, station

    def eval(self, ctx: Context, now: float) -> bool:
        holder = ctx.holder[self.i]
        if holder is None:
            return False
        return self.station is None or holder in ctx.members(self.station)

    def keys(self) -> list[Key]:
        return [("o", self.i)] if self.station is None else [("o", self.i), ("m", self.station)]

    def objects(self) -> list[int]:
        return [self.i]


class ParticipantInZone(Node):
    __slots__ = ("zone", "station")

    def __init__(self, zone: Zone, station: int) -> None:
        super().__init__()
        self.zone, self.station = zone, station

    def eval(self, ctx: Context, now: float) -> bool:
        return any(self.zone.contains_floor_point(ctx.head(pid)) for pid in ctx.members(self.station))

    def keys(self) -> list[Key]:
        return [("w", self.station)]


class PropertyIs(Node):
    __slots__ = ("i", "key", "equals", "low", "high")

    def __init__(self, i: int, name: str, spec: cf.PropertyIs) -> None:
        super().__init__()
        self.i, self.key = i, (i, name)
        self.equals = spec.equals
        self.low = -math.inf if spec.min is None else spec.min
        self.high = math.inf if spec.max is None else spec.max

    def eval(self, ctx: Context, now: float) -> bool:
        value = ctx.values[self.key]
        if self.equals is not None:
            return value == self.equals and (type(value) is bool) == (type(self.equals) is bool)
        return type(value) is not bool and self.low <= value <= self.high

    def keys(self) -> list[Key]:
        return [("p", *self.key)]

    def objects(self) -> list[int]:
        return [self.i]


class _Group(Node):
    __slots__ = ("parts",)

    def __init__(self, parts: list[Node]) -> None:
        super().__init__()
        self.parts = parts
        self.temporal = any(part.temporal for part in parts)

    def keys(self) -> list[Key]:
        return [key for part in self.parts for key in part.keys()]

    def objects(self) -> list[int]:
        return [i for part in self.parts for i in part.objects()]


class All(_Group):
    __slots__ = ()

    def eval(self, ctx: Context, now: float) -> bool:
        if self.temporal:
            return all([part.eval(ctx, now) for part in self.parts])
        for part in self.parts:  # a loop, not all(<generator>): the generator costs more than most parts
            if not part.eval(ctx, now):
                return False
        return True


class AnyOf(_Group):
    __slots__ = ()

    def eval(self, ctx: Context, now: float) -> bool:
        if self.temporal:
            return any([part.eval(ctx, now) for part in self.parts])
        for part in self.parts:
            if part.eval(ctx, now):
                return True
        return False


class Not(_Group):
    __slots__ = ()

    def eval(self, ctx: Context, now: float) -> bool:
        return not self.parts[0].eval(ctx, now)

    def objects(self) -> list[int]:
        return []  # what must not happen is not what to highlight


class StableFor(_Group):
    __slots__ = ("seconds", "since")

    def __init__(self, part: Node, seconds: float) -> None:
        super().__init__([part])
        self.temporal = True
        self.seconds = seconds
        self.since: float | None = None

    def eval(self, ctx: Context, now: float) -> bool:
        if not self.parts[0].eval(ctx, now):
            self.since = None
            return False
        if self.since is None:
            self.since = now
        due = self.since + self.seconds  # the very time the wake-up asks for, so it is due then
        if now >= due:
            return True
        ctx.wake(due)
        return False


class Then(_Group):
    """Each part starts to hold (is false, then true) in turn, each at or after the one
    before it did, the last within ``within`` seconds of the first; then it holds while
    the last part does. A part holding before its turn must stop and start again."""

    __slots__ = ("within", "stage", "started", "was")

    def __init__(self, parts: list[Node], within: float) -> None:
        super().__init__(parts)
        self.temporal = True
        self.within = within
        self.stage = 0
        self.started = 0.0
        #: each part's value at the last evaluation (false before the first)
        self.was = [False] * len(parts)

    def eval(self, ctx: Context, now: float) -> bool:
        holds = [part.eval(ctx, now) for part in self.parts]
        rose = [h and not w for h, w in zip(holds, self.was)]
        self.was = holds
        if self.stage == len(holds):
            if holds[-1]:
                return True
            self.stage = 0
        if self.stage and now - self.started > self.within:
            self.stage = 0
        while self.stage < len(holds) and rose[self.stage]:
            if self.stage == 0:
                self.started = now
            self.stage += 1
        return self.stage == len(holds)


class Resolver(Protocol):
    """Names to the room's things, for one station (or the shared scene)."""

    def object(self, name: str) -> int: ...

    def zone(self, name: str) -> Zone: ...

    def snap(self, target: int, name: str) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]: ...


def compile_condition(condition: Any, resolve: Resolver, station: int) -> Node:
    """The tree for one parsed condition (scenes.challenge_format) at one station."""
    kind = cf.kind_of(condition)
    body = cf.body_of(condition)
    builders: dict[str, Callable[[], Node]] = {
        "in_zone": lambda: InZone(resolve.object(body.object), resolve.zone(body.zone)),
        "at_snap": lambda: _at_snap(body, resolve),
        "near": lambda: Near(resolve.object(body.object), resolve.object(body.other), body.distance_m),
        "upright": lambda: Tilt(resolve.object(body.object), body.within_degrees, True),
        "tilted": lambda: Tilt(resolve.object(body.object), body.past_degrees, False),
        "held": lambda: Held(resolve.object(body.object), station if body.by_learner else None),
        "participant_in_zone": lambda: ParticipantInZone(resolve.zone(body.zone), station),
        "property": lambda: PropertyIs(resolve.object(body.object), body.property, body),
        "all": lambda: All([compile_condition(part, resolve, station) for part in body]),
        "any": lambda: AnyOf([compile_condition(part, resolve, station) for part in body]),
        "not": lambda: Not([compile_condition(body, resolve, station)]),
        "stable_for": lambda: StableFor(compile_condition(body.condition, resolve, station), body.seconds),
        "then": lambda: Then([compile_condition(part, resolve, station) for part in body.conditions], body.within_seconds),
    }
    return builders[kind]()


def _at_snap(spec: cf.AtSnap, resolve: Resolver) -> Node:
    target = resolve.object(spec.target)
    position, rotation = resolve.snap(target, spec.snap)
    return AtSnap(resolve.object(spec.object), target, position, rotation, spec)
