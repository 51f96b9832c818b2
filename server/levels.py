"""Levels from XP: the curve a course climbs, in three documented shapes.

A level is reached at a threshold of total XP; level 1 starts at 0. With ``n`` the
level (2 … ``levels``), ``b`` the base and ``c`` the coefficient:

* ``relative`` (the default): each level needs ``c`` times the XP of the one before,
  starting with ``b``: threshold(n) = round(b * (c**(n-1) - 1) / (c - 1)). With
  b = 120, c = 1.3 and 10 levels, the default of Moodle's Level Up XP, the thresholds
  are 0, 120, 276, 479, 742, 1085, 1531, 2110, 2863, 3842: early levels come quickly,
  later ones take a term.
* ``linear``: the gap grows by ``b`` each level: threshold(n) = b * n * (n-1) / 2.
* ``flat``: every level the same gap: threshold(n) = b * (n-1).

Past the last level XP still counts (ladders use it), the level stays the last.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_LEVELS = 50


class LevelCurve(BaseModel):
    """A course's level curve (docs/operations.md, "XP, levels and badges")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["relative", "linear", "flat"] = "relative"
    levels: int = Field(10, ge=2, le=MAX_LEVELS)
    base: int = Field(120, ge=1, le=1_000_000)
    coefficient: float = Field(1.3, ge=1.01, le=3.0)

    @model_validator(mode="after")
    def _bounded(self) -> "LevelCurve":
        if self.thresholds()[-1] > 10**12:
            raise ValueError("the last level needs more than 10^12 XP; use fewer levels, a smaller base or coefficient")
        return self

    def thresholds(self) -> tuple[int, ...]:
        """Total XP at which each level starts, level 1 first (always 0)."""
        return _thresholds(self.kind, self.levels, self.base, self.coefficient)

    def level(self, xp: int) -> int:
        """The level ``xp`` total XP has reached (1 … levels)."""
        return bisect_right(self.thresholds(), max(0, xp))

    def progress(self, xp: int) -> dict[str, int | None]:
        """What a student's card shows: level, where it started, and XP to the next one
        (None at the last level)."""
        thresholds = self.thresholds()
        level = self.level(xp)
        following = thresholds[level] if level < len(thresholds) else None
        return {
            "level": level,
            "levels": len(thresholds),
            "xp": xp,
            "level_xp": thresholds[level - 1],
            "next_level_xp": following,
            "to_next": None if following is None else following - xp,
        }


@lru_cache(maxsize=64)
def _thresholds(kind: str, levels: int, base: int, coefficient: float) -> tuple[int, ...]:
    out = [0]
    for n in range(2, levels + 1):
        if kind == "relative":
            out.append(round(base * (coefficient ** (n - 1) - 1) / (coefficient - 1)))
        elif kind == "linear":
            out.append(base * n * (n - 1) // 2)
        else:
            out.append(base * (n - 1))
    return tuple(out)
