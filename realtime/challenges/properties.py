"""Object properties: the discrete and numeric states of lab equipment (a burner's flame,
a switch, a dial, a thermometer's reading), kept by the room as part of its state.

A value comes from one of three places: the scene's ``initial``, a student's
``interact`` (interactive properties only, checked here against the
declaration), or a derived-property rule the evaluator runs. This module owns
the values and the one check of a value against its declaration.
"""

from __future__ import annotations

import math
from typing import Any

from scenes import challenge_format as cf
from scenes.model import Scene


class BadValue(ValueError):
    """A value the property cannot take; the message says which it can."""


class Properties:
    """Every declared property of every object in a room, by (object index, name)."""

    def __init__(self, scene: Scene) -> None:
        self.specs: dict[tuple[int, str], cf.Property] = {}
        for i, obj in enumerate(scene.objects):
            for raw in obj.properties:
                spec = cf.Property.model_validate(raw)
                self.specs[(i, spec.id)] = spec
        self.values: dict[tuple[int, str], Any] = {}
        self.reset()

    def reset(self) -> list[tuple[int, str]]:
        """Back to every initial value; returns the keys whose value changed."""
        changed = [key for key, spec in self.specs.items() if key in self.values and self.values[key] != spec.initial]
        self.values.update({key: spec.initial for key, spec in self.specs.items()})
        return changed

    def of(self, index: int) -> dict[str, Any]:
        return {name: value for (i, name), value in self.values.items() if i == index}

    def check(self, key: tuple[int, str], value: Any) -> Any:
        """``value`` as the property keeps it (a number rounded to its ``step``), or BadValue."""
        spec = self.specs[key]
        if spec.kind == "switch":
            if type(value) is not bool:
                raise BadValue(f"{spec.id!r} is a switch: send true or false.")
            return value
        if spec.kind == "choice":
            assert spec.choices is not None
            if not isinstance(value, str) or value not in spec.choices:
                raise BadValue(f"{spec.id!r} is one of {', '.join(map(repr, spec.choices))}.")
            return value
        assert spec.min is not None and spec.max is not None
        if type(value) not in (int, float) or not math.isfinite(value) or not spec.min <= value <= spec.max:
            raise BadValue(f"{spec.id!r} is a number from {spec.min:g} to {spec.max:g}{' ' + spec.unit if spec.unit else ''}.")
        if spec.step is not None:
            value = min(spec.max, spec.min + round((value - spec.min) / spec.step) * spec.step)
            value = float(f"{value:.15g}")  # 3 * 0.1 is 0.30000000000000004: keep the 0.3 a condition names
        return float(value)

    def public(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Values by object id, for the snapshot."""
        out: dict[str, dict[str, Any]] = {}
        for (i, name), value in self.values.items():
            out.setdefault(names[i], {})[name] = value
        return out
