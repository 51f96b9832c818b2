"""Learners across practicals: XP, levels and badges of the students on a course's roster.

Only the room's records count (server.results lists them), so no client message can
earn XP. They are credited in the same transaction that stores them, and only when a
record is new, so a replayed record counts once. For each roster student named in a
record's ``members`` (the station's group at that moment), within one practical:

* ``step_done`` adds the step's points, once per step and practical, even if the
  student moves to another station and the step is done there again (the cheat guard);
* ``mistake`` takes its penalty off, and so does a ``hint`` its cost;
* ``challenge_done`` adds the time bonus once, and checks the badges earned by how the
  practical went (scenes.badge_format);

and the practical's XP is round(max(0, points) * ``xp_per_point``), the practical's
score scaled by the course's rate, never below zero. A course's XP is the sum over its
practicals; the level follows from it by the course's curve (server.levels), and level
badges are checked whenever it grows. A changed rate re-scales every practical's XP.
A ``skill_attempt`` (the room's learner model after a student's first attempt at a step)
keeps their p_known and opportunities per skill, which the next practical starts from.

Guests (no roster entry) earn nothing here: their score lives in the practical's results.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenes.badge_format import MAX_BADGES, Badge
from server import xapi_outbox
from server.levels import LevelCurve

#: a relative ladder shows this many neighbours above and below by default
DEFAULT_NEIGHBOURS = 2

MIGRATION = """
ALTER TABLE courses ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE students ADD COLUMN xp INTEGER NOT NULL DEFAULT 0;
CREATE INDEX students_ladder ON students(course_id, xp DESC, id);
CREATE TABLE learner_practicals (
    student_id TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    course_id TEXT NOT NULL REFERENCES courses(id),
    station INTEGER,
    points INTEGER NOT NULL DEFAULT 0,
    xp INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    mistakes INTEGER NOT NULL DEFAULT 0,
    joined REAL NOT NULL,
    last REAL NOT NULL,
    finished REAL,
    elapsed REAL,
    PRIMARY KEY (student_id, session_id)
);
-- covering indexes for the course view's two aggregates (per student, per practical): no table reads
CREATE INDEX learner_practicals_students ON learner_practicals(course_id, student_id, finished, last);
CREATE INDEX learner_practicals_sessions ON learner_practicals(course_id, session_id, finished, points);
CREATE TABLE learner_steps (
    student_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    PRIMARY KEY (student_id, session_id, step_id)
) WITHOUT ROWID;
CREATE TABLE badge_awards (
    id TEXT PRIMARY KEY,
    course_id TEXT NOT NULL REFERENCES courses(id),
    student_id TEXT NOT NULL,
    badge_key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    criteria TEXT NOT NULL,
    session_id TEXT,
    awarded_at REAL NOT NULL,
    UNIQUE (student_id, badge_key)
);
CREATE INDEX badge_awards_course ON badge_awards(course_id);
"""


#: schema step 6: hints a student was shown in a practical, and what the room's learner model
#: knows of each student's skills (BKT p_known after their latest first attempt, and how many)
MIGRATION_SKILLS = """
ALTER TABLE learner_practicals ADD COLUMN hints INTEGER NOT NULL DEFAULT 0;
CREATE TABLE learner_skills (
    student_id TEXT NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses(id),
    skill TEXT NOT NULL,
    p_known REAL NOT NULL,
    opportunities INTEGER NOT NULL,
    mastered INTEGER NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (student_id, skill)
);
CREATE INDEX learner_skills_course ON learner_skills(course_id, skill);
"""


class CourseSettings(BaseModel):
    """What a teacher sets per course (docs/operations.md, "XP, levels and badges")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    #: XP per point of a practical's score
    xp_per_point: Annotated[float, Field(ge=0, le=100)] = 1.0
    curve: LevelCurve = LevelCurve()
    #: what students see of the course ladder: their neighbours without names, everyone with names, or nothing
    ladder: Literal["relative", "full", "off"] = "relative"
    neighbours: Annotated[int, Field(ge=1, le=10)] = DEFAULT_NEIGHBOURS
    #: the course's own badges (level badges, or practical criteria for every practical of the course)
    badges: Annotated[list[Badge], Field(max_length=MAX_BADGES)] = []

    @model_validator(mode="after")
    def _unique(self) -> "CourseSettings":
        ids = [badge.id for badge in self.badges]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"badge id(s) used twice: {', '.join(twice)}")
        for badge in self.badges:
            level = badge.criteria.level
            if level is not None and level > self.curve.levels:
                raise ValueError(f"badge {badge.id!r} needs level {level}, but the curve has {self.curve.levels} levels")
        return self

    def xp(self, points: int) -> int:
        """A practical's XP from its points: scaled, rounded half up, never below zero."""
        return math.floor(max(0, points) * self.xp_per_point + 0.5)


@dataclass(frozen=True)
class Award:
    """A badge a student has earned (server.credentials issues it as a credential)."""

    id: str
    course_id: str
    student_id: str
    badge_key: str
    name: str
    description: str
    criteria: str
    session_id: str | None
    awarded_at: float


_AWARD_COLUMNS = "id, course_id, student_id, badge_key, name, description, criteria, session_id, awarded_at"


def settings_of(raw: str) -> CourseSettings:
    return CourseSettings.model_validate_json(raw or "{}")


class Ledger:
    """Credits one batch of new records to the learners they name (caller holds the
    transaction). Keeps per-batch caches of sessions, courses and roster membership."""

    def __init__(self, db: sqlite3.Connection, nonce: str) -> None:
        self.db = db
        #: the batch's random part of new award ids (``award``)
        self.nonce = nonce
        self._sessions: dict[str, tuple[str | None, str, dict[str, Any] | None]] = {}
        self._settings: dict[str, CourseSettings] = {}

    def credit(self, session_id: str, kind: str, at: float, data: dict[str, Any]) -> None:
        course_id, scene_id, challenge = self._session(session_id)
        if course_id is None:
            return
        if kind == "station":
            for pid in self._roster(course_id, [data.get("participant")]):
                self._row(pid, session_id, course_id, at)
                self.db.execute("UPDATE learner_practicals SET station = ? WHERE student_id = ? AND session_id = ?", (data.get("station"), pid, session_id))
            return
        if kind == "skill_attempt":
            for pid in self._roster(course_id, [data.get("participant")]):
                self.db.execute(
                    """INSERT INTO learner_skills VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (student_id, skill) DO UPDATE SET p_known = excluded.p_known,
                       opportunities = excluded.opportunities, mastered = excluded.mastered, updated = excluded.updated""",
                    (pid, course_id, str(data.get("skill")), float(data.get("p_known", 0.0)), int(data.get("opportunities", 0)),
                     int(bool(data.get("mastered"))), at),
                )
            return
        if kind not in ("step_done", "mistake", "hint", "challenge_done"):
            return
        settings = self._course(course_id)
        for pid in self._roster(course_id, data.get("members") or ()):
            points, xp = self._row(pid, session_id, course_id, at)
            if kind == "step_done":
                fresh = self.db.execute(
                    "INSERT OR IGNORE INTO learner_steps VALUES (?, ?, ?)", (pid, session_id, str(data.get("step")))
                ).rowcount
                if not fresh:
                    continue
                points += int(data.get("points", 0))
                self.db.execute("UPDATE learner_practicals SET steps = steps + 1 WHERE student_id = ? AND session_id = ?", (pid, session_id))
            elif kind == "mistake":
                points -= int(data.get("penalty", 0))
                self.db.execute("UPDATE learner_practicals SET mistakes = mistakes + 1 WHERE student_id = ? AND session_id = ?", (pid, session_id))
            elif kind == "hint":
                points -= int(data.get("cost", 0))
                self.db.execute("UPDATE learner_practicals SET hints = hints + 1 WHERE student_id = ? AND session_id = ?", (pid, session_id))
            else:
                first = self.db.execute(
                    "UPDATE learner_practicals SET finished = ?, elapsed = ? WHERE student_id = ? AND session_id = ? AND finished IS NULL",
                    (at, data.get("elapsed"), pid, session_id),
                ).rowcount
                if not first:
                    continue
                points += int(data.get("bonus", 0))
            self._set_points(pid, session_id, points, xp, settings, at)
            if kind == "challenge_done":
                self._practical_badges(pid, session_id, course_id, scene_id, challenge, settings, at)

    # ------------------------------------------------------------------ internals

    def _session(self, session_id: str) -> tuple[str | None, str, dict[str, Any] | None]:
        if session_id not in self._sessions:
            row = self.db.execute("SELECT course_id, scene_id, preview FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None or row[2]:
                self._sessions[session_id] = (None, "", None)
            else:
                stored = self.db.execute("SELECT challenge FROM result_challenges WHERE session_id = ?", (session_id,)).fetchone()
                self._sessions[session_id] = (row[0], row[1], json.loads(stored[0]) if stored else None)
        return self._sessions[session_id]

    def _course(self, course_id: str) -> CourseSettings:
        if course_id not in self._settings:
            row = self.db.execute("SELECT settings FROM courses WHERE id = ?", (course_id,)).fetchone()
            self._settings[course_id] = settings_of(row[0] if row else "{}")
        return self._settings[course_id]

    def _roster(self, course_id: str, pids: Iterable[Any]) -> list[str]:
        wanted = [pid for pid in dict.fromkeys(pids) if isinstance(pid, str)]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        found = {row[0] for row in self.db.execute(f"SELECT id FROM students WHERE course_id = ? AND id IN ({marks})", (course_id, *wanted))}
        return [pid for pid in wanted if pid in found]

    def _row(self, pid: str, session_id: str, course_id: str, at: float) -> tuple[int, int]:
        self.db.execute(
            "INSERT OR IGNORE INTO learner_practicals (student_id, session_id, course_id, joined, last) VALUES (?, ?, ?, ?, ?)",
            (pid, session_id, course_id, at, at),
        )
        self.db.execute("UPDATE learner_practicals SET last = max(last, ?) WHERE student_id = ? AND session_id = ?", (at, pid, session_id))
        points, xp = self.db.execute(
            "SELECT points, xp FROM learner_practicals WHERE student_id = ? AND session_id = ?", (pid, session_id)
        ).fetchone()
        return points, xp

    def _set_points(self, pid: str, session_id: str, points: int, old_xp: int, settings: CourseSettings, at: float) -> None:
        xp = settings.xp(points)
        self.db.execute("UPDATE learner_practicals SET points = ?, xp = ? WHERE student_id = ? AND session_id = ?", (points, xp, pid, session_id))
        if xp != old_xp:
            total = self.db.execute("UPDATE students SET xp = xp + ? WHERE id = ? RETURNING xp, course_id", (xp - old_xp, pid)).fetchone()
            if xp > old_xp:
                level_badges(self.db, pid, total[1], total[0], settings, session_id, at, self.nonce)

    def _practical_badges(
        self, pid: str, session_id: str, course_id: str, scene_id: str, challenge: dict[str, Any] | None, settings: CourseSettings, at: float
    ) -> None:
        mistakes, hints, elapsed = self.db.execute(
            "SELECT mistakes, hints, elapsed FROM learner_practicals WHERE student_id = ? AND session_id = ?", (pid, session_id)
        ).fetchone()
        declared = [(f"{scene_id}/{b['id']}", Badge.model_validate(b)) for b in (challenge or {}).get("badges", ())]
        declared += [(f"course/{b.id}", b) for b in settings.badges]
        for key, badge in declared:
            c = badge.criteria
            if not c.per_practical:
                continue
            if c.max_mistakes is not None and mistakes > c.max_mistakes:
                continue
            if c.max_hints is not None and hints > c.max_hints:
                continue
            if c.under_seconds is not None and (elapsed is None or elapsed > c.under_seconds):
                continue
            award(self.db, course_id, pid, key, badge, session_id, at, self.nonce)


def award(db: sqlite3.Connection, course_id: str, pid: str, key: str, badge: Badge, session_id: str | None, at: float, nonce: str) -> None:
    """Record a badge once per student (a second earning of the same badge changes nothing);
    a new award is queued as an xAPI statement in the same transaction.

    The award's id is its hosted credential's address, so it must not be guessable; it is
    drawn from the write's random ``nonce`` and what is awarded rather than on the spot, so
    every replica of shared records (server.replica) gives the same award the same id."""
    award_id = "aw_" + hashlib.sha256(f"{nonce}\n{course_id}\n{pid}\n{key}".encode()).hexdigest()[:16]
    if db.execute(
        f"INSERT OR IGNORE INTO badge_awards ({_AWARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (award_id, course_id, pid, key, badge.name, badge.description, badge.criteria.narrative(), session_id, at),
    ).rowcount:
        xapi_outbox.enqueue_badge(db, award_id, course_id, pid, key, badge.name, badge.description, session_id, at)


def level_badges(
    db: sqlite3.Connection, pid: str, course_id: str, xp: int, settings: CourseSettings, session_id: str | None, at: float, nonce: str
) -> None:
    level = settings.curve.level(xp)
    for badge in settings.badges:
        if badge.criteria.level is not None and badge.criteria.level <= level:
            award(db, course_id, pid, f"course/{badge.id}", badge, session_id, at, nonce)


def rescale(db: sqlite3.Connection, course_id: str, settings: CourseSettings, at: float, nonce: str) -> None:
    """After a course's settings change: every practical's XP by the new rate, every
    student's total, and level badges newly reached (badges are never taken back)."""
    for pid, session_id, points in db.execute(
        "SELECT student_id, session_id, points FROM learner_practicals WHERE course_id = ?", (course_id,)
    ).fetchall():
        db.execute("UPDATE learner_practicals SET xp = ? WHERE student_id = ? AND session_id = ?", (settings.xp(points), pid, session_id))
    db.execute(
        "UPDATE students SET xp = coalesce((SELECT sum(xp) FROM learner_practicals lp WHERE lp.student_id = students.id), 0) WHERE course_id = ?",
        (course_id,),
    )
    for pid, xp in db.execute("SELECT id, xp FROM students WHERE course_id = ?", (course_id,)).fetchall():
        level_badges(db, pid, course_id, xp, settings, None, at, nonce)


def awards(db: sqlite3.Connection, where: str, args: tuple[Any, ...], limit: int = -1) -> list[Award]:
    """Awards matching a fixed ``where`` clause of this package (never client text), oldest first."""
    rows = db.execute(f"SELECT {_AWARD_COLUMNS} FROM badge_awards WHERE {where} ORDER BY awarded_at, id LIMIT ?", (*args, limit))
    return [Award(*row) for row in rows]
