"""Interest management: who receives whose pose, at what rate, in which bytes.

A student needs the people at their bench at the full tick rate; someone across
the lab moving at 5 Hz looks the same once the client interpolates, at a sixth
of the bytes. So each tick a recipient gets:

* its **near** participants whenever they changed: everyone at the same lab
  station, everyone in the 3 x 3 floor cells of ``near_radius`` metres around
  it (so all within ``near_radius``, and some up to twice that), every teacher,
  and whoever spoke in the last ``SPEAKING_HOLD`` seconds;
* everyone else (**far**) only on every ``far_every``-th tick, with whatever
  changed since the last such tick;
* objects that changed, at its near rate.

Teachers and observers receive everyone as near: they watch the whole class.

A weak link (realtime.downstream) moves a recipient to a lower ``Level``, which
stretches both periods and may drop hand records. Every period divides the far
period of its level, so a recipient's far ticks are also near ticks; and every
divisor keeps its own "changed since my last due tick" mask, so a recipient
that changes level never misses a change, it only gets it a little later.

Encode once: a tick's changed records are quantized once (``PoseTick``), and
recipients that get the same selection (the same version, level and group:
same station and floor cell) get the very same bytes, built on first use. That
is one encoding per group, not one per recipient, and no work at all for a
tick in which a recipient gets nothing.

Sans-I/O like the room: ``Interest`` is state the room keeps (and replays);
``PoseTick`` is the tick's output, which the fan-out asks for bytes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from realtime import codec_v2 as v2
from realtime import protocol as p

#: Seconds a participant counts as speaking (near to everyone) after the media worker last heard them.
SPEAKING_HOLD = 1.5
#: Voice level above which a participant is speaking (the media worker's 0..1 level).
SPEAKING_LEVEL = 0.05
#: A recipient's group when it receives everyone as near (a teacher, an observer).
EVERYONE = -1
#: The smallest floor cell, in metres, whatever ``near_radius`` says.
MIN_CELL = 0.5


class Level(NamedTuple):
    """What a recipient on a given link quality gets: its near and far periods in ticks
    (multiples of the room's), and whether hand records are sent."""

    near_every: int
    far_factor: int
    hands: bool


#: Link quality 0 (full), 1 (reduced), 2 (low): at 30 Hz with a 5 Hz far rate, near at
#: 30, 15 and 10 Hz, far at 5, 2.5 and 1.7 Hz; the lowest drops hands.
LEVELS: tuple[Level, ...] = (Level(1, 1, True), Level(2, 2, True), Level(3, 3, False))


def far_every(tick_rate: float, far_rate: float) -> int:
    """Ticks between far updates at full quality (at least 1)."""
    return max(1, round(tick_rate / far_rate)) if far_rate > 0 else 1


class Interest:
    """The room's record of what changed since each period's last due tick, and who is speaking."""

    def __init__(self, capacity: int, objects: int, tick_rate: float, far_rate: float, near_radius: float) -> None:
        self.near_radius = near_radius
        self.far_every = far_every(tick_rate, far_rate)
        #: every period in ticks any level uses: near periods and far periods
        self.periods = sorted({lv.near_every for lv in LEVELS} | {self.far_every * lv.far_factor for lv in LEVELS})
        self.poses = {d: np.zeros(capacity, bool) for d in self.periods}
        self.objects = {d: np.zeros(objects, bool) for d in self.periods}
        #: slot -> room time until which it counts as speaking
        self.speaking: dict[int, float] = {}

    def grow(self, capacity: int) -> None:
        for d, mask in self.poses.items():
            grown = np.zeros(capacity, bool)
            grown[: len(mask)] = mask
            self.poses[d] = grown

    def changed(self, slots: np.ndarray, objects: np.ndarray) -> None:
        """Slots and objects that changed this tick."""
        for d in self.periods:
            self.poses[d][slots] = True
            self.objects[d][objects] = True

    def everything_changed(self) -> None:
        """Every object changed (a reset): due on every recipient's next tick."""
        for mask in self.objects.values():
            mask[:] = True

    def heard(self, slots: list[int], now: float) -> None:
        """Participants the media worker hears speaking now."""
        until = now + SPEAKING_HOLD
        for slot in slots:
            self.speaking[slot] = until

    def due(self, tick: int, active: np.ndarray, now: float) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray]:
        """Take this tick's due masks (pose, object) per period, and clear them.

        Returns the due masks of the periods that fall on ``tick`` and the slots
        speaking now."""
        poses: dict[int, np.ndarray] = {}
        objects: dict[int, np.ndarray] = {}
        for d in self.periods:
            if tick % d == 0:
                poses[d] = self.poses[d] & active
                objects[d] = self.objects[d].copy()
                self.poses[d][:] = False
                self.objects[d][:] = False
        for slot, until in list(self.speaking.items()):
            if until <= now:
                del self.speaking[slot]
        speaking = np.zeros(len(active), bool)
        speaking[[s for s in self.speaking if s < len(active)]] = True
        return poses, objects, speaking


class Groups(NamedTuple):
    """Recipients grouped by where they stand: slot -> group, and each group's near mask."""

    of_slot: np.ndarray  # group index per slot (EVERYONE for teachers and observers)
    near: list[np.ndarray]  # per group: bool over slots
    key: bytes  # everything the grouping was made from (see group)


def group(
    heads: np.ndarray, active: np.ndarray, stations: np.ndarray, everyone: np.ndarray, always: np.ndarray, radius: float,
    last: Groups | None = None,
) -> Groups:
    """Group the active recipients by (station, floor cell) and give each group its near mask.

    ``heads`` (capacity, 3) head positions; ``stations`` per slot (-1: none);
    ``everyone``: slots that receive all as near (teachers, observers);
    ``always``: slots near to every recipient (teachers, speakers). Groups whose near masks
    come out the same are one group, and one near to every active slot is EVERYONE's: in a
    small lab everyone shares a single frame.

    ``last``, the previous tick's grouping, is returned as it is when nobody changed cell,
    station, role or speaking since: people at a bench mostly stay in their cells, and
    grouping anew costs a few dozen numpy calls a tick."""
    capacity = len(active)
    # no radius (0, negative, not a number): everyone near; cells of at least MIN_CELL keep every
    # cell number of a lab's coordinates (at most 10 km out) within the key's 21 bits
    cell = max(radius, MIN_CELL) if radius > 0 and math.isfinite(radius) else math.inf
    if cell == math.inf:
        cx = cz = np.zeros(capacity, np.int64)
    else:
        cx = np.floor(heads[:, 0] / cell).astype(np.int64)
        cz = np.floor(heads[:, 2] / cell).astype(np.int64)
    made_from = b"".join((cx.tobytes(), cz.tobytes(), active.tobytes(), stations.tobytes(), everyone.tobytes(), always.tobytes()))
    if last is not None and last.key == made_from:
        return last
    of_slot = np.full(capacity, EVERYONE, np.int64)
    grouped = np.flatnonzero(active & ~everyone)
    near: list[np.ndarray] = []
    if len(grouped):
        # one integer per (station, cell): cells within 2^19 of the origin, as a lab's grid is
        keys = ((stations[grouped] + 1) << 42) | ((cx[grouped] + (1 << 20)) << 21) | (cz[grouped] + (1 << 20))
        unique, inverse = np.unique(keys, return_inverse=True)
        canonical: dict[bytes, int] = {active.tobytes(): EVERYONE}
        index = np.empty(len(unique), np.int64)
        # who stands within one cell of a cell column, and of a cell row: a few of each in a lab
        columns: dict[int, np.ndarray] = {}
        rows: dict[int, np.ndarray] = {}
        for g, key in enumerate(unique.tolist()):
            station, gx, gz = (key >> 42) - 1, ((key >> 21) & ((1 << 21) - 1)) - (1 << 20), (key & ((1 << 21) - 1)) - (1 << 20)
            if gx not in columns:
                columns[gx] = np.abs(cx - gx) <= 1
            if gz not in rows:
                rows[gz] = np.abs(cz - gz) <= 1
            mask = columns[gx] & rows[gz]
            if station >= 0:
                mask |= stations == station
            mask = (mask | always) & active
            found = canonical.setdefault(mask.tobytes(), len(near))
            if found == len(near):
                near.append(mask)
            index[g] = found
        of_slot[grouped] = index[inverse.reshape(-1)]
    return Groups(of_slot, near, made_from)


class PoseTick:
    """One tick's pose and object changes, quantized once, cut into per-group frames on demand."""

    def __init__(
        self,
        tick: int,
        event_seq: int,
        poses: np.ndarray,
        objects: np.ndarray,
        due_poses: dict[int, np.ndarray],
        due_objects: dict[int, np.ndarray],
        groups: Groups,
        far_every: int,
        grid: v2.Grid,
    ) -> None:
        self.tick = tick
        self.event_seq = event_seq
        self.far_every = far_every
        self.groups = groups
        self.grid = grid
        self._due_poses = due_poses
        self._due_objects = due_objects
        slots = np.flatnonzero(np.logical_or.reduce(list(due_poses.values()))) if due_poses else np.zeros(0, np.int64)
        #: the changed records, copied: the frames may be built after the room moved on
        self._poses = p.records(poses)[slots].view(p.POSE_RECORD)
        self._row = np.full(len(poses), -1, np.int64)
        self._row[slots] = np.arange(len(slots))
        changed = np.flatnonzero(np.logical_or.reduce(list(due_objects.values()))) if due_objects else np.zeros(0, np.int64)
        self._objects = objects[changed]
        self._object_row = np.full(len(objects), -1, np.int64)
        self._object_row[changed] = np.arange(len(changed))
        self._v2: v2.Encoded | None = None
        self._v2_objects: np.ndarray | None = None
        self._frames: dict[tuple[int, int, int], bytes | None] = {}
        self._of_slot: list[int] = groups.of_slot.tolist()

    def frame_for(self, slot: int, version: int = 1, level: int = 0) -> bytes | None:
        """The frame for the recipient at ``slot`` (None: nothing for it this tick).
        Recipients with the same version, level and group share one bytes object."""
        group = self._of_slot[slot] if 0 <= slot < len(self._of_slot) else EVERYONE
        key = (version, level, group)
        if key not in self._frames:
            self._frames[key] = self._build(version, LEVELS[level], group)
        return self._frames[key]

    def whole(self, version: int = 1) -> bytes | None:
        """Every change, as a recipient that gets everyone as near at full quality would."""
        return self.frame_for(-1, version)

    def _build(self, version: int, level: Level, group: int) -> bytes | None:
        near_every, far = level.near_every, self.far_every * level.far_factor
        if self.tick % near_every or near_every not in self._due_poses:
            return None
        near = None if group == EVERYONE else self.groups.near[group]
        pick = self._due_poses[near_every]
        if near is not None:
            pick = pick & near
            if self.tick % far == 0:
                pick = pick | (self._due_poses[far] & ~near)
        rows = self._row[np.flatnonzero(pick)]
        objects = self._object_row[np.flatnonzero(self._due_objects[near_every])]
        if not len(rows) and not len(objects):
            return None
        if version >= 2:
            if self._v2 is None:
                self._v2 = v2.encode_poses(self._poses, self.grid)
                self._v2_objects = v2.encode_objects(self._objects, self.grid)
            assert self._v2_objects is not None
            encoded = self._v2 if level.hands else v2.without_hands(self._v2)
            return v2.tick_frame(self.tick, self.event_seq, encoded, rows, self._v2_objects[objects])
        poses = self._poses[rows]
        if not level.hands:
            poses = poses.copy()
            poses["flags"] = 0
        return p.encode_tick(self.tick, self.event_seq, poses, self._objects[objects])


def full_frame(tick: int, event_seq: int, poses: np.ndarray, objects: np.ndarray, version: int, grid: v2.Grid) -> bytes:
    """Every given pose and object in the recipient's version (after join, resume or a skip)."""
    if version >= 2:
        return v2.encode_tick_v2(tick, event_seq, poses, objects, grid, full=True)
    return p.encode_tick(tick, event_seq, poses, objects, full=True)
