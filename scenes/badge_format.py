"""Badges as data: what a designer declares in a challenge and a teacher per course.

A badge is earned once per student and course when all of its ``criteria`` hold;
the server decides (server.learners), from the room's records only. Criteria:

* ``finished``: the student's group finished every step of the challenge;
* ``max_mistakes``: the student was credited with at most this many mistakes in the practical;
* ``under_seconds``: finished within this many seconds of the challenge's start;
* ``max_hints``: the student's group was shown at most this many hints in the practical (``0``: "no hints");
* ``level``: the student reached this level of the course's curve (course badges only:
  a scene does not know the curve of the courses that will run it).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BADGES = 16

BadgeId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="lower-case letters, digits, '-' and '_'")]


class BadgeCriteria(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    finished: bool = False
    max_mistakes: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_hints: Annotated[int, Field(ge=0, le=1000)] | None = None
    under_seconds: Annotated[float, Field(gt=0, le=86_400)] | None = None
    level: Annotated[int, Field(ge=2, le=50)] | None = None

    @model_validator(mode="after")
    def _some(self) -> "BadgeCriteria":
        practical = (self.max_mistakes, self.max_hints, self.under_seconds)
        if self.level is not None and (self.finished or any(c is not None for c in practical)):
            raise ValueError("a 'level' badge is earned by XP alone; put practical criteria in a badge of their own")
        if self.level is None and not self.finished and all(c is None for c in practical):
            raise ValueError("give at least one criterion: finished, max_mistakes, max_hints, under_seconds or level")
        return self

    @property
    def per_practical(self) -> bool:
        """Checked when a student's group finishes a practical (else: when their XP grows)."""
        return self.level is None

    def narrative(self) -> str:
        """The criteria in words, as the credential's ``criteria.narrative`` says them."""
        if self.level is not None:
            return f"Reach level {self.level} in the course."
        parts = []
        if self.max_mistakes == 0:
            parts.append("with no mistakes")
        elif self.max_mistakes is not None:
            parts.append(f"with at most {self.max_mistakes} mistake{'s' if self.max_mistakes != 1 else ''}")
        if self.max_hints == 0:
            parts.append("without a hint")
        elif self.max_hints is not None:
            parts.append(f"with at most {self.max_hints} hint{'s' if self.max_hints != 1 else ''}")
        if self.under_seconds is not None:
            parts.append(f"within {_duration(self.under_seconds)} of the start")
        return " ".join(["Finish every step of the practical's challenge", " and ".join(parts)]).strip() + "."


class Badge(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: BadgeId
    name: Annotated[str, Field(min_length=1, max_length=60)]
    description: Annotated[str, Field(max_length=300)] = ""
    criteria: BadgeCriteria


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    if minutes and rest:
        return f"{minutes} min {rest} s"
    return f"{minutes} min" if minutes else f"{rest} s"
