#!/usr/bin/env python3
"""Course benchmark: the teacher's course view and a student's ladder on a big course.

    .venv/bin/python bench/courses.py [--students 2000] [--practicals 40] [--requests 50]

The issue's goal: a course of 2,000 students with 40 practicals each, the
dashboard's course view answers in <= 200 ms and a student's ladder in <= 20 ms.

The data: one course, ``--students`` students on its roster (added through the
store, so each has a hashed sign-in code), ``--practicals`` practicals of the
course, and for every student and practical the row server.learners keeps as a
practical's records arrive (points, XP, steps, mistakes, times; 80,000 rows by
default), with students' XP totals and one to three badges each. The rows are
written with SQL straight into the tables server.learners owns, because what is
measured is reading them: crediting records is measured with the room's records
elsewhere (tests/unit/test_learners.py checks that path gives these rows).

The measurement: a real ``amaliy serve`` on that data dir, timed over HTTP on
loopback from this process (one keep-alive connection): ``--requests`` GETs of
``/api/courses/{id}/dashboard`` with the teacher's key (the course view: every
student's XP, level, badges and counts, and the practicals' aggregates; the
JSON is about 400 kB), and ten times as many of ``/api/courses/{id}/ladder``
with a student's token (the relative ladder), each for a student picked at
random. p50/p95 of wall time per request, after 3 warm-up requests each.

Last line: {"students", "practicals", "course_view_ms_p95", "ladder_ms_p95", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.roles import Role  # noqa: E402
from server.auth import Claims, issue_token, load_secret  # noqa: E402
from server.store import Store  # noqa: E402


def build(data_dir: Path, students: int, practicals: int, seed: int) -> tuple[str, str, list[str], list[str]]:
    """The course's data; returns (teacher key, course id, student ids, session ids)."""
    rng = random.Random(seed)
    store = Store(data_dir)
    teacher, key = store.add_user("Bench Teacher")
    course = store.add_course(teacher.id, "Chemistry 9A")
    added = store.add_students(course.id, [(f"Student {i:04d}", None, f"9A-{i:04d}") for i in range(students)])
    ids = [student.id for student, _ in added]
    sessions = [store.open_session(teacher.id, "chemistry-bench", 1, f"Week {n + 1}", course_id=course.id) for n in range(practicals)]
    for session in sessions:
        store.end_session(session.id)
    db = store._db  # the bench writes the learner tables directly (see the docstring)
    db.execute("BEGIN")
    totals = dict.fromkeys(ids, 0)
    rows = []
    for n, session in enumerate(sessions):
        for i, sid in enumerate(ids):
            points = rng.randint(0, 120)
            joined = session.created + rng.uniform(0, 120)
            finished = joined + rng.uniform(300, 1500) if rng.random() < 0.7 else None
            rows.append((sid, session.id, course.id, 1 + i // 2, points, points, rng.randint(3, 10), rng.randint(0, 4),
                         joined, finished or joined + 1800, finished, None if finished is None else finished - joined))
            totals[sid] += points
    db.executemany("INSERT INTO learner_practicals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany("UPDATE students SET xp = ? WHERE id = ?", [(xp, sid) for sid, xp in totals.items()])
    badges = ["Water bath ready", "Steady hands", "Quick hands"]
    db.executemany(
        "INSERT INTO badge_awards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(f"aw_{sid}_{b}", course.id, sid, f"chemistry-bench/{b}", name, "", "Finish.", sessions[b].id, sessions[b].created)
         for sid in ids for b, name in enumerate(badges[: rng.randint(1, 3)])],
    )
    db.execute("COMMIT")
    store.close()
    return key, course.id, ids, [s.id for s in sessions]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--no-demo"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def timed(http: httpx.Client, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    response = http.get(path, headers=headers)
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed


def p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=2000)
    ap.add_argument("--practicals", type=int, default=40)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="amaliy-bench-courses-") as tmp:
        data_dir = Path(tmp) / "data"
        began = time.perf_counter()
        key, course_id, students, sessions = build(data_dir, args.students, args.practicals, args.seed)
        built_s = time.perf_counter() - began
        secret = load_secret(data_dir)
        rng = random.Random(args.seed)
        proc, base = serve(data_dir)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                teacher = {"Authorization": f"Bearer {key}"}
                path = f"/api/courses/{course_id}/dashboard"
                size = len(http.get(path, headers=teacher).content)
                for _ in range(3):
                    timed(http, path, teacher)
                course_view = [timed(http, path, teacher) for _ in range(args.requests)]
                ladder_path = f"/api/courses/{course_id}/ladder"

                def student() -> dict[str, str]:
                    sid = rng.choice(students)
                    claims = Claims(sid, sessions[-1], Role.STUDENT, sid, course_id=course_id)
                    return {"Authorization": f"Bearer {issue_token(secret, claims, 3600)}"}

                for _ in range(3):
                    timed(http, ladder_path, student())
                ladder = [timed(http, ladder_path, student()) for _ in range(args.requests * 10)]
        finally:
            proc.terminate()
            proc.wait(15)
    summary = {
        "students": args.students,
        "practicals": args.practicals,
        "course_view_ms_p50": p(course_view, 50),
        "course_view_ms_p95": p(course_view, 95),
        "ladder_ms_p50": p(ladder, 50),
        "ladder_ms_p95": p(ladder, 95),
        "course_view_bytes": size,
        "rows": args.students * args.practicals,
        "build_seconds": round(built_s, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
