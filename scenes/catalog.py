"""The scenes a node can open a practical from: the built-in sample labs."""

from __future__ import annotations

from functools import cache
from typing import Callable

from scenes.demo_lab import build_demo_lab
from scenes.model import Scene

_BUILTIN: dict[str, Callable[[], Scene]] = {"demo-lab": build_demo_lab}


def scene_ids() -> list[str]:
    return sorted(_BUILTIN)


@cache
def load(scene_id: str) -> Scene:
    """The scene with this id (built once per process); KeyError if there is none."""
    return _BUILTIN[scene_id]()
