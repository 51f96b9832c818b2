"""The hint ladder: per station and step, how far up its hints the group has been.

Three rungs, from the least to the most telling (the ladder intelligent tutors climb,
VanLehn 2006, "The behavior of tutoring systems"):

    1 nudge       text
    2 specific    text + 3D highlight of objects and zones
    3 bottom-out  text + a demonstration (a ghost of the object moving to where it goes)

A step declares any of them (scene.json ``steps[].hints``); the ladder skips the rungs
a step leaves out, and past its last rung there is nothing more. It climbs one rung at
a time, on a stuck signal (automatic) or on a student's request, and never faster than
``cooldown_seconds`` after the last hint at the station (of any kind). A teacher may
push a given rung at any time. Fading caps automatic hints at the nudge (``cap``).

Pure and sans-I/O: the state is plain dicts, updated by ``shown``; the learning
engine (realtime.learning.engine) decides when to climb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scenes import challenge_format as cf

NUDGE, SPECIFIC, BOTTOM_OUT = 1, 2, 3
#: free text from a teacher: no rung, no cost
FREE_TEXT = 0
NAMES = {NUDGE: "nudge", SPECIFIC: "specific", BOTTOM_OUT: "bottom_out"}


def defined(hints: cf.StepHints | None) -> list[int]:
    """The rungs a step declares, lowest first."""
    if hints is None:
        return []
    return [level for level, rung in ((NUDGE, hints.nudge), (SPECIFIC, hints.specific), (BOTTOM_OUT, hints.bottom_out)) if rung is not None]


def next_level(reached: int, levels: list[int], cap: int = BOTTOM_OUT) -> int | None:
    """The rung above ``reached`` that the step declares, at most ``cap``; None when there is none."""
    return next((level for level in levels if reached < level <= cap), None)


def at_least(level: int, levels: list[int]) -> int | None:
    """``level`` if the step declares it, else the next rung above it that it declares (a teacher's push)."""
    return next((rung for rung in levels if rung >= level), None)


def cost(level: int, settings: cf.HintSettings) -> int:
    """Points a hint at ``level`` costs (free text: nothing)."""
    return {FREE_TEXT: 0, NUDGE: settings.nudge_cost, SPECIFIC: settings.specific_cost, BOTTOM_OUT: settings.bottom_out_cost}[level]


def text(hints: cf.StepHints, level: int) -> str:
    if level == NUDGE:
        assert hints.nudge is not None
        return hints.nudge
    rung = hints.specific if level == SPECIFIC else hints.bottom_out
    assert rung is not None
    return rung.text


@dataclass
class Ladder:
    """How far each station's group has climbed each step's hints, and when it last got one."""

    cooldown: float
    #: (station, step) -> the highest rung shown so far (0: none)
    reached: dict[tuple[int, str], int] = field(default_factory=dict)
    #: station -> time of its last hint
    last: dict[int, float] = field(default_factory=dict)
    #: station -> hints shown there so far (numbers the hint records)
    count: dict[int, int] = field(default_factory=dict)

    def level(self, station: int, step: str) -> int:
        return self.reached.get((station, step), 0)

    def wait(self, station: int, now: float) -> float:
        """Seconds until the station's cooldown is over (0: a hint may come now)."""
        last = self.last.get(station)
        return 0.0 if last is None else max(0.0, last + self.cooldown - now)

    def ready_at(self, station: int) -> float:
        last = self.last.get(station)
        return -math.inf if last is None else last + self.cooldown

    def shown(self, station: int, step: str | None, level: int, now: float) -> int:
        """Record a hint shown at ``level``; returns its number at the station (from 1)."""
        if step is not None and level > self.level(station, step):
            self.reached[(station, step)] = level
        self.last[station] = now
        self.count[station] = self.count.get(station, 0) + 1
        return self.count[station]

    def start_over(self, station: int) -> None:
        """The station's challenge started again (nobody there, nothing done): the next group
        starts at the foot of every step's ladder with no cooldown running. The count stays:
        it numbers the station's hint records, which must not repeat."""
        self.reached = {key: level for key, level in self.reached.items() if key[0] != station}
        self.last.pop(station, None)

    def public(self, station: int) -> dict[str, int]:
        """``{step: rung}`` of the steps the station has had hints for."""
        return {step: level for (number, step), level in sorted(self.reached.items()) if number == station}
