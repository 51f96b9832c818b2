"""``amaliy skills``: what the recorded first attempts say about each skill.

``amaliy skills fit`` fits each skill's BKT parameters (realtime.learning.bkt_fit, EM)
to the first attempts the rooms recorded (``skill_attempt`` records: one per student,
step and practical, in time order), optionally for one course or skill. It prints a
line per skill, or with ``--json`` the ``skills`` object to put in a scene's challenge
(docs/scene-package.md §9), so the next practicals start from what the class showed
rather than from the defaults. It reads the data dir and may run beside the server.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from realtime.learning.bkt_fit import FitResult, fit_skills

#: a skill with fewer learners than this is reported, not fitted: EM on a handful of
#: sequences returns whatever it started from
MIN_LEARNERS = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    skills = sub.add_parser("skills", help="the learner model's skills: fit their BKT parameters to what students did")
    skills_sub = skills.add_subparsers(dest="skills_command", required=True)
    fit = skills_sub.add_parser("fit", help="fit each skill's BKT parameters (EM) to the recorded first attempts")
    fit.add_argument("--course", help="only practicals of this course (id)")
    fit.add_argument("--skill", action="append", help="only this skill (repeat for several)")
    fit.add_argument("--json", action="store_true", help="print the fitted 'skills' object for a scene's challenge")
    fit.add_argument("--data-dir", help="data dir of the server (default ./amaliy-data)")


def attempts(db: sqlite3.Connection, course: str | None, skills: list[str] | None) -> dict[str, list[list[int]]]:
    """Per skill, each learner's first attempts in time order (1 correct, 0 not)."""
    rows = db.execute(
        """SELECT r.data FROM results r JOIN sessions s ON s.id = r.session_id
           WHERE r.kind = 'skill_attempt' AND s.preview = 0 AND (? IS NULL OR s.course_id = ?)
           ORDER BY r.at, r.seq""",
        (course, course),
    )
    sequences: dict[str, dict[str, list[int]]] = {}
    for (raw,) in rows:
        data = json.loads(raw)
        skill, who = data.get("skill"), data.get("participant")
        if isinstance(skill, str) and isinstance(who, str) and (not skills or skill in skills):
            sequences.setdefault(skill, {}).setdefault(who, []).append(1 if data.get("correct") else 0)
    return {skill: list(by.values()) for skill, by in sorted(sequences.items())}


def run(args: argparse.Namespace, data_dir: Path) -> int:
    path = (data_dir / "amaliy.sqlite3").resolve()  # a file URI (read-only open) needs an absolute path
    if not path.exists():
        print(f"amaliy: no database at {path}; give the server's --data-dir", file=sys.stderr)
        return 1
    db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    try:
        found = attempts(db, args.course, args.skill)
    except sqlite3.Error as exc:
        print(f"amaliy: could not read {path}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    enough = {skill: seqs for skill, seqs in found.items() if len(seqs) >= MIN_LEARNERS}
    fitted: dict[str, FitResult] = fit_skills(enough) if enough else {}
    if args.json:
        print(json.dumps({skill: _rounded(result) for skill, result in fitted.items()}, indent=2))
        return 0
    if not found:
        print("No first attempts recorded yet" + (f" in course {args.course}" if args.course else "") + ": nothing to fit.")
        return 0
    for skill, seqs in found.items():
        count = sum(len(s) for s in seqs)
        if skill not in fitted:
            print(f"{skill}: {len(seqs)} learners, {count} attempts: too few learners to fit (at least {MIN_LEARNERS})")
            continue
        result = fitted[skill]
        p = _rounded(result)
        state = "converged" if result.converged else f"not converged after {result.iterations} iterations"
        print(
            f"{skill}: {len(seqs)} learners, {count} attempts: prior {p['prior']} learn {p['learn']} guess {p['guess']} "
            f"slip {p['slip']} forget {p['forget']} ({state}, log-likelihood {result.log_likelihood:.1f})"
        )
    return 0


def _rounded(result: FitResult) -> dict[str, float]:
    return {name: round(value, 4) for name, value in result.params.as_dict().items()}
