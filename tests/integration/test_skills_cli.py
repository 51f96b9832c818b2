"""`amaliy skills fit` on a data dir: it reads the rooms' recorded first attempts and recovers
the parameters they were simulated with; too few learners are reported, not fitted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from realtime.learning.bkt import SkillParams
from realtime.learning.bkt_fit import simulate
from server.store import Store

from tests.conftest import REPO

TRUE = SkillParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1)


def skills(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", "skills", "fit", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_fit_recovers_the_parameters_the_attempts_came_from(tmp_path: Path) -> None:
    store = Store(tmp_path)
    teacher, _ = store.add_user("T")
    course = store.add_course(teacher.id, "Kimyo")
    session = store.open_session(teacher.id, "lab", 1, "Week 1", course_id=course.id)
    rows = []
    for learner, sequence in enumerate(simulate(TRUE, 600, 25, seed=3)):
        for n, correct in enumerate(sequence):
            rows.append((session.id, f"skill:p{learner}:s{n}", "skill_attempt", 1000.0 + n,
                         {"participant": f"p{learner}", "skill": "heating", "step": f"s{n}", "correct": bool(correct)}))
    for learner in range(3):
        rows.append((session.id, f"skill:q{learner}:a", "skill_attempt", 1.0, {"participant": f"q{learner}", "skill": "pouring", "step": "a", "correct": True}))
    store.add_records(rows)
    store.close()

    printed = skills(tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert "heating: 600 learners, 15000 attempts: prior" in printed.stdout
    assert "pouring: 3 learners, 3 attempts: too few learners to fit (at least 10)" in printed.stdout
    fitted = json.loads(skills(tmp_path, "--json").stdout)
    assert list(fitted) == ["heating"]
    for name, truth in TRUE.as_dict().items():
        assert abs(fitted["heating"][name] - truth) < 0.06, (name, fitted["heating"])
    assert skills(tmp_path, "--course", "c_other").stdout.startswith("No first attempts recorded yet in course c_other")
    relative = skills(Path(os.path.relpath(tmp_path, REPO)))  # as typed in a shell: a relative --data-dir
    assert relative.returncode == 0 and relative.stdout == printed.stdout


def test_a_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    done = skills(tmp_path / "nowhere")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "no database at" in done.stderr and "Traceback" not in done.stderr
