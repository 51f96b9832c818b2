"""Stuck detection: when a station's group seems stuck on its current step, and why.

Pure functions of what the room already knows (times, counts, beliefs), sans-I/O:
no clock, no randomness, so a replayed room log flags the same stations at the same
times. The learning engine (realtime.learning.engine) evaluates them for each station
that has members and an open step, for its *current* step (the first step, in the
challenge's order, that is open and not done), and turns changes into ``stuck`` and
``unstuck`` events and automatic hints.

The signals, each with its threshold (scene.json ``challenge.hints``, defaults in
scenes.challenge_format.HintSettings):

* ``idle``: nothing changed at the station for ``idle_seconds`` (60). A change is a
  grab, move, release or ``interact`` by a member, a step done, a mistake, or a member
  arriving; the count starts no earlier than the step's opening. Holds once
  ``now - quiet_since >= idle_seconds``.
* ``slow``: the group has been on the step ``slow_factor`` (1.5) times the designer's
  ``expected_seconds`` for it: ``now - opened >= slow_factor * expected_seconds``. The
  expected time is the designer's, or for a step without one, the median time of the
  stations of this practical that have done it, once ``CLASS_SAMPLES`` (3) have.
* ``mistakes``: the same mistake (the same mistake id, or ``wrong_answer``) made
  ``repeat_mistakes`` (2) times on the step.
* ``wheel_spinning``: a member has had ``wheel_spinning_after`` (10) or more
  opportunities at the step's skill (first attempts at steps of that skill, those
  before this practical included) and has still not mastered it (P(known) below the
  challenge's ``mastery``, 0.95). Beck & Gong (2013) call a student who has not
  mastered a skill after ten practice opportunities "wheel-spinning"; hints, not more
  practice, are what they need. Only for steps that have a ``skill``.

A signal holds *at* its threshold, not before. ``since`` is when it started to hold
(for ``idle`` and ``slow`` the moment the threshold was crossed, for ``mistakes`` the
moment of the mistake that reached the count; ``wheel_spinning`` is given the time the
engine first saw it). ``idle``, ``slow`` and ``mistakes`` flag a station amber;
``wheel_spinning`` red.

Fading: when every member has mastered the step's skill, ``Thresholds.faded`` doubles
the thresholds of ``idle``, ``slow`` and ``mistakes`` (``wheel_spinning`` cannot hold
then), so a group that knows the skill is left alone twice as long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

IDLE, SLOW, MISTAKES, WHEEL_SPINNING = "idle", "slow", "mistakes", "wheel_spinning"
#: the order signals are listed in (and the first one names an automatic hint's reason)
ORDER = (IDLE, SLOW, MISTAKES, WHEEL_SPINNING)
AMBER, RED = "amber", "red"


class Signal(NamedTuple):
    """One reason a station looks stuck. ``key`` tells two signals apart (a mistake's id,
    a wheel-spinning member), so the engine sees which flags are new."""

    signal: str
    reason: str
    since: float
    key: str = ""
    participant: str | None = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signal": self.signal, "reason": self.reason, "since": self.since}
        if self.participant is not None:
            out["participant"] = self.participant
        return out


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds of the signals (scene.json ``challenge.hints``)."""

    idle_seconds: float = 60.0
    slow_factor: float = 1.5
    repeat_mistakes: int = 2
    wheel_spinning_after: int = 10

    def faded(self) -> "Thresholds":
        """Twice the thresholds, for a group that has mastered the step's skill."""
        return Thresholds(2 * self.idle_seconds, 2 * self.slow_factor, 2 * self.repeat_mistakes, self.wheel_spinning_after)


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.3g}"


def idle(quiet_since: float, now: float, idle_seconds: float, step: str) -> Signal | None:
    """``idle`` if nothing has changed since ``quiet_since`` for ``idle_seconds`` or more."""
    if now - quiet_since < idle_seconds:
        return None
    return Signal(IDLE, f"idle {_seconds(idle_seconds)} s on {step}", quiet_since + idle_seconds)


def idle_due(quiet_since: float, idle_seconds: float) -> float:
    """When ``idle`` starts to hold if nothing changes."""
    return quiet_since + idle_seconds


#: a step the designer gave no ``expected_seconds`` is timed once this many stations have done it
CLASS_SAMPLES = 3


def expected_seconds(declared: float | None, class_times: Sequence[float]) -> float | None:
    """How long a step should take: the designer's ``expected_seconds``, else (once
    ``CLASS_SAMPLES`` stations have done it) the median of the times this class took, so
    ``slow`` works for every step of a practical that is under way."""
    if declared is not None:
        return declared
    if len(class_times) < CLASS_SAMPLES:
        return None
    ordered = sorted(class_times)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def slow(opened: float, now: float, expected_seconds: float | None, slow_factor: float, step: str) -> Signal | None:
    """``slow`` once the step has been open ``slow_factor * expected_seconds`` (None: not a timed step)."""
    if expected_seconds is None or now - opened < slow_factor * expected_seconds:
        return None
    return Signal(SLOW, f"{_seconds(now - opened)} s on {step}, expected {_seconds(expected_seconds)} s", opened + slow_factor * expected_seconds)


def slow_due(opened: float, expected_seconds: float | None, slow_factor: float) -> float | None:
    """When ``slow`` starts to hold, or None for a step without ``expected_seconds``."""
    return None if expected_seconds is None else opened + slow_factor * expected_seconds


def mistakes(made: dict[str, list[float]], repeat_mistakes: int, step: str) -> list[Signal]:
    """``mistakes`` for each mistake id made ``repeat_mistakes`` times or more (``made``: the
    times each was made on the step, in order), in the order of their ids."""
    out = []
    for mistake in sorted(made):
        times = made[mistake]
        if len(times) >= repeat_mistakes:
            what = "wrong answers" if mistake == "wrong_answer" else f"mistake '{mistake}'"
            out.append(Signal(MISTAKES, f"{what} {len(times)} times on {step}", times[repeat_mistakes - 1], mistake))
    return out


def wheel_spinning(members: list[tuple[str, str, int, bool]], wheel_spinning_after: int, skill: str | None, step: str, now: float) -> list[Signal]:
    """``wheel_spinning`` for each member (participant, name, opportunities at the skill, mastered)
    with ``wheel_spinning_after`` or more opportunities and no mastery, in the given order."""
    if skill is None:
        return []
    return [
        Signal(WHEEL_SPINNING, f"{name}: {count} tries at '{skill}' without mastering it ({step})", now, who, who)
        for who, name, count, known in members
        if count >= wheel_spinning_after and not known
    ]


def level(signals: list[Signal]) -> str:
    """The flag's colour: red when a member is wheel-spinning, else amber."""
    return RED if any(s.signal == WHEEL_SPINNING for s in signals) else AMBER
