"""The one check of a challenge that needs the evaluator: nothing may hold before anyone acts.

Ingest (scenes) checks a manifest's shape and names but cannot run conditions;
the server runs this on what ingest produced, before the package is stored. A
step whose condition already holds in the untouched lab (the beaker is placed
on the tripod in scene.json) would tick off by itself, and a mistake that holds
would count against students who did nothing.
"""

from __future__ import annotations

from typing import Any

from realtime.challenges.engine import Challenges
from scenes.model import Scene
from scenes.report import Problem


def problems(server: dict[str, Any]) -> list[Problem]:
    """A problem, with its JSON path, for each step or mistake that holds at spawn."""
    found = []
    for step, mistake in Challenges(Scene.from_processed(server, 1, "")).at_rest():
        path = f"scene.json $.challenge.steps[{step}]"
        if mistake is None:
            found.append(Problem(f"{path}.condition", "already holds when the lab opens, so the step would be done before anyone acts", "place the objects in scene.json where the step's condition does not hold yet, or change the condition"))
        else:
            found.append(Problem(f"{path}.mistakes", f"mistake {mistake!r} already holds when the lab opens, so it would count against students who did nothing", "place the objects so the mistake does not hold at the start, or change its condition"))
    return found
