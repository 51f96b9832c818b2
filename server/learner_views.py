"""What teachers and students read of a course's learners: the course view, a student's
term, the student's card after a practical, the ladder and the CSV export.

Each view is a function of a database connection (run through ``Store.read``, between
writes) and plain values, and answers from the tables server.learners keeps up to date
as records arrive, so no view replays a practical's records: the course view of 2,000
students over 40 practicals is a handful of indexed queries (bench/courses.py).

Ladders motivate without shaming: by default a student sees only their neighbours, a few
above and below, with the gap in XP and no names (``relative``); a teacher can show the
whole ladder with names (``full``) or none (``off``); the teacher always sees it all.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any

from server.learners import Award, CourseSettings, awards
from server.results import csv_cell


def _badge(award: Award) -> dict[str, Any]:
    return {
        "id": award.id, "badge": award.badge_key, "name": award.name, "description": award.description,
        "criteria": award.criteria, "session": award.session_id, "awarded_at": award.awarded_at,
    }


def _practicals(db: sqlite3.Connection, course_id: str) -> list[dict[str, Any]]:
    counts = {
        sid: (n, done, mean)
        for sid, n, done, mean in db.execute(
            "SELECT session_id, count(*), count(finished), avg(max(points, 0)) FROM learner_practicals WHERE course_id = ? GROUP BY session_id",
            (course_id,),
        )
    }
    rows = db.execute(
        "SELECT id, title, scene_id, status, created FROM sessions WHERE course_id = ? AND preview = 0 ORDER BY created", (course_id,)
    )
    out = []
    for sid, title, scene, status, created in rows:
        n, done, mean = counts.get(sid, (0, 0, None))
        out.append(
            {"id": sid, "title": title, "scene": scene, "status": status, "created": created, "students": n, "finished": done,
             "mean_points": None if mean is None else round(mean, 1)}
        )
    return out


def course_view(db: sqlite3.Connection, course_id: str, settings: CourseSettings) -> dict[str, Any]:
    """The dashboard's course page: practicals with how many came and finished, and one row
    per student with XP, level, badges and how many practicals they came to and finished."""
    badges: dict[str, list[str]] = {}
    for student_id, name in db.execute("SELECT student_id, name FROM badge_awards WHERE course_id = ? ORDER BY awarded_at", (course_id,)):
        badges.setdefault(student_id, []).append(name)
    counts = {
        sid: (n, done, last)
        for sid, n, done, last in db.execute(
            "SELECT student_id, count(*), count(finished), max(last) FROM learner_practicals WHERE course_id = ? GROUP BY student_id", (course_id,)
        )
    }
    students = []
    for sid, name, xp in db.execute("SELECT id, name, xp FROM students WHERE course_id = ? ORDER BY created, rowid", (course_id,)):
        came, finished, last = counts.get(sid, (0, 0, None))
        students.append(
            {"id": sid, "name": name, "xp": xp, "level": settings.curve.level(xp), "badges": badges.get(sid, []),
             "practicals": came, "finished": finished, "last_seen": last}
        )
    return {"practicals": _practicals(db, course_id), "students": students}


def term_view(db: sqlite3.Connection, course_id: str, student_id: str, settings: CourseSettings) -> dict[str, Any]:
    """One student over the term: XP, level, badges, and each practical of the course with
    what they did in it (steps, mistakes, points, XP, time)."""
    (xp,) = db.execute("SELECT xp FROM students WHERE id = ?", (student_id,)).fetchone()
    mine = {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT session_id, station, points, xp, steps, mistakes, joined, last, finished, elapsed FROM learner_practicals WHERE student_id = ?",
            (student_id,),
        )
    }
    practicals = []
    for practical in _practicals(db, course_id):
        row = mine.get(practical["id"])
        entry: dict[str, Any] = {"session": practical["id"], "title": practical["title"], "created": practical["created"], "attended": row is not None}
        if row is not None:
            station, points, pxp, steps, mistakes, joined, last, finished, elapsed = row
            entry.update(
                station=station, points=max(0, points), xp=pxp, steps=steps, mistakes=mistakes, finished=finished is not None,
                elapsed=elapsed, minutes=round((last - joined) / 60, 1),
            )
        practicals.append(entry)
    return {
        **settings.curve.progress(xp),
        "badges": [_badge(a) for a in awards(db, "student_id = ?", (student_id,))],
        "practicals": practicals,
    }


def ladder(db: sqlite3.Connection, course_id: str, settings: CourseSettings, student_id: str | None) -> dict[str, Any]:
    """The course ladder. For the teacher (``student_id`` None) every student, ranked, with
    names. For a student, by the course's mode: their neighbours (``relative``), everyone
    (``full``), or nothing (``off``). Ties share a rank (1, 2, 2, 4)."""
    mode = "full" if student_id is None else settings.ladder
    out: dict[str, Any] = {"mode": mode, "students": db.execute("SELECT count(*) FROM students WHERE course_id = ?", (course_id,)).fetchone()[0]}
    if mode == "off":
        return out
    if mode == "full":
        rows = db.execute("SELECT id, name, xp FROM students WHERE course_id = ? ORDER BY xp DESC, id", (course_id,)).fetchall()
        entries, rank, previous = [], 0, None
        mine = next((xp for sid, _, xp in rows if sid == student_id), None)
        for position, (sid, name, xp) in enumerate(rows, start=1):
            if xp != previous:
                rank, previous = position, xp
            entry = {"rank": rank, "name": name, "xp": xp, "level": settings.curve.level(xp)}
            if student_id is not None:
                entry.update(you=sid == student_id, gap=None if mine is None else xp - mine)
            else:
                entry["student"] = sid
            entries.append(entry)
        out["ladder"] = entries
        return out
    (xp,) = db.execute("SELECT xp FROM students WHERE id = ?", (student_id,)).fetchone()
    k = settings.neighbours
    above = db.execute(
        "SELECT id, xp FROM students WHERE course_id = ? AND (xp > ? OR (xp = ? AND id < ?)) ORDER BY xp ASC, id DESC LIMIT ?",
        (course_id, xp, xp, student_id, k),
    ).fetchall()[::-1]
    below = db.execute(
        "SELECT id, xp FROM students WHERE course_id = ? AND (xp < ? OR (xp = ? AND id > ?)) ORDER BY xp DESC, id ASC LIMIT ?",
        (course_id, xp, xp, student_id, k),
    ).fetchall()
    entries = []
    for sid, other in [*above, (student_id, xp), *below]:
        rank = db.execute("SELECT count(*) FROM students WHERE course_id = ? AND xp > ?", (course_id, other)).fetchone()[0] + 1
        entries.append({"rank": rank, "xp": other, "level": settings.curve.level(other), "gap": other - xp, "you": sid == student_id})
    out["ladder"] = entries
    return out


def card(db: sqlite3.Connection, course_id: str, student_id: str, session_id: str, settings: CourseSettings) -> dict[str, Any]:
    """The student's card after (or during) a practical: XP gained in it, the level before
    and now, badges earned in it, and where they stand on the ladder."""
    (xp,) = db.execute("SELECT xp FROM students WHERE id = ?", (student_id,)).fetchone()
    row = db.execute(
        "SELECT xp, points, steps, mistakes, finished, elapsed FROM learner_practicals WHERE student_id = ? AND session_id = ?", (student_id, session_id)
    ).fetchone()
    gained, points, steps, mistakes, finished, elapsed = row if row else (0, 0, 0, 0, None, None)
    before = settings.curve.level(xp - gained)
    return {
        "session": session_id,
        "xp_gained": gained,
        "points": max(0, points),
        "steps": steps,
        "mistakes": mistakes,
        "finished": finished is not None,
        "elapsed": elapsed,
        "level_before": before,
        "level_up": settings.curve.level(xp) > before,
        **settings.curve.progress(xp),
        "badges": [_badge(a) for a in awards(db, "student_id = ? AND session_id = ?", (student_id, session_id))],
        "ladder": ladder(db, course_id, settings, student_id),
    }


def course_csv(db: sqlite3.Connection, course_id: str, settings: CourseSettings) -> str:
    """One row a student: XP, level, badges, then points per practical (empty: not there)."""
    practicals = _practicals(db, course_id)
    points = {(sid, sess): max(0, p) for sid, sess, p in db.execute("SELECT student_id, session_id, points FROM learner_practicals WHERE course_id = ?", (course_id,))}
    view = course_view(db, course_id, settings)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["student", "name", "xp", "level", "badges", "practicals", "finished",
                     *(csv_cell(f"{p['title']} ({p['id']})") for p in practicals)])
    for s in view["students"]:
        writer.writerow(
            [s["id"], csv_cell(s["name"]), s["xp"], s["level"], csv_cell("; ".join(s["badges"])), s["practicals"], s["finished"],
             *(points.get((s["id"], p["id"]), "") for p in practicals)]
        )
    return out.getvalue()


def station_ladder(built: dict[str, Any], participant: str | None, mode: str, neighbours: int = 2) -> dict[str, Any]:
    """One practical's stations ranked by their group's score (server.results.build): the
    teacher (``participant`` None) and a ``full`` ladder name each group's members; a
    ``relative`` one shows the student's station among its neighbours, without names."""
    names = {s["participant"]: s["name"] for s in built["students"]}
    stations = sorted((s for s in built["stations"] if s["members"]), key=lambda s: (-s["score"], s["station"]))
    mine = next((s["station"] for s in built["students"] if s["participant"] == participant), None)
    out: dict[str, Any] = {"mode": mode, "stations": len(stations)}
    if mode == "off":
        return out
    entries, rank, previous = [], 0, None
    for position, group in enumerate(stations, start=1):
        if group["score"] != previous:
            rank, previous = position, group["score"]
        entry: dict[str, Any] = {"rank": rank, "station": group["station"], "score": group["score"], "steps_done": group["steps_done"]}
        if participant is None or mode == "full":
            entry["members"] = [names.get(pid, pid) for pid in group["members"]]
        if participant is not None:
            entry["you"] = group["station"] == mine
        entries.append(entry)
    if participant is not None and mode == "relative":
        at = next((i for i, e in enumerate(entries) if e["you"]), None)
        entries = [] if at is None else entries[max(0, at - neighbours): at + neighbours + 1]
        score = next((e["score"] for e in entries if e["you"]), 0)
        for entry in entries:
            entry["gap"] = entry["score"] - score
    out["ladder"] = entries
    return out


def skills_view(db: sqlite3.Connection, course_id: str) -> dict[str, Any]:
    """Mastery per skill per student (the dashboard's heat map): each student's p_known,
    opportunities and whether it is mastered, for every skill any student of the course has
    attempted; a student who has not attempted a skill has no entry for it."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for sid, skill, p_known, opportunities, mastered in db.execute(
        "SELECT student_id, skill, p_known, opportunities, mastered FROM learner_skills WHERE course_id = ?", (course_id,)
    ):
        cells.setdefault(sid, {})[skill] = {"p_known": round(p_known, 4), "opportunities": opportunities, "mastered": bool(mastered)}
    skills = sorted({skill for row in cells.values() for skill in row})
    students = [
        {"id": sid, "name": name, "skills": cells.get(sid, {})}
        for sid, name in db.execute("SELECT id, name FROM students WHERE course_id = ? ORDER BY created, rowid", (course_id,))
    ]
    return {"skills": skills, "students": students}
