"""The score: points per step, a mistake penalty, a time bonus. One formula, used by the
room (the live ``score``) and by the node's results, so they can never disagree.

For a station's group:

    score = max(0, sum(step points) - sum(mistake penalties) + time bonus)

* a step earns its ``points``, or half of them (rounded down) when it was done more
  than its ``time_limit_seconds`` after it opened;
* each mistake (a mistake condition starting to hold, or a wrong checkpoint answer)
  costs its ``penalty``, by default the challenge's ``mistake_penalty``;
* finishing every step t seconds after the challenge started earns
  bonus * max(0, 1 - t / target), rounded half up, of the ``time_bonus``: all of it at once,
  nothing at the target time or later.

A student's own score is the same sum over what was credited to the group while
they were a member of it, so a student who joins a group late shares only the
steps done after they came. No client message can award points: every entry
comes from the server's evaluation of the lab.
"""

from __future__ import annotations

import math


def step_points(points: int, opened: float, done: float, time_limit: float | None) -> int:
    """Points a step earns when done at ``done`` after opening at ``opened``."""
    if time_limit is not None and done - opened > time_limit:
        return points // 2
    return points


def time_bonus(points: int, target: float, elapsed: float) -> int:
    """The bonus for finishing ``elapsed`` seconds after the start, with ``target`` seconds as the limit."""
    return math.floor(points * max(0.0, 1.0 - elapsed / target) + 0.5)  # halves up, as people round


def total(entries: list[int]) -> int:
    """A score from its signed entries (points, bonuses, minus penalties): never below zero."""
    return max(0, sum(entries))
