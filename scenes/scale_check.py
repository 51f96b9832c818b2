"""Sizes at human scale: notes (not refusals) for objects and labs of implausible size.

Why: the commonest mistake in a scene package is a unit slip. A lab modelled in
millimetres but declared in metres (or the reverse) still loads, and ingest
refuses only what is absurd (an object over ``max_extent_m`` or under
``min_extent_m``, see IngestLimits). Between those bounds a slip of 10x or
1000x passes and shows up only when a class puts on headsets and finds a beaker
as tall as a house, or a bench the size of a coin. These rules catch the likely
cases early, in the ingest report, while the package is still stored: an odd
size can be meant (a hall around the lab, an AR model placed on a real desk),
so the designer decides.

The rules, each measured after `units`, `up_axis` and the object's `scale`
(thresholds are IngestLimits fields, defaults in brackets):

- an object taller than a room: its height as placed (the y side of its
  bounding box after its rotation) is over ``note_taller_than_m`` [3.5 m, a
  generous classroom ceiling];
- an object too small to see or grab: the longest side of its bounding box in
  its own frame is under ``note_smaller_than_m`` [5 mm];
- a lab too small to stand in: the bounding box of every object as placed
  (positions included) has its longest side under ``note_lab_smaller_than_m``
  [0.5 m], a shoebox; this is how a lab modelled in metres but declared in
  millimetres or centimetres usually looks.

Each note names the object (for the lab, its largest object), the size in
metres, and a fix naming `units` with its current value and, where another
metric unit would bring the size within the rules, what that unit would make it.

Pure: no I/O, no trimesh; ingest measures the objects and calls ``size_notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from scenes.manifest import UNIT_METRES
from scenes.report import Problem

#: the units a fix may suggest: the usual slips are between these three
_SUGGESTED_UNITS = ("mm", "cm", "m")


@dataclass(frozen=True)
class Placed:
    """One object as ingest measured it, in metres."""

    id: str
    #: longest side of its bounding box in its own frame (scaled, before rotation)
    extent_m: float
    #: its bounding box in the scene (rotated and moved to its position)
    low: np.ndarray
    high: np.ndarray

    @property
    def height_m(self) -> float:
        return float(self.high[1] - self.low[1])


def placed(object_id: str, low: np.ndarray, high: np.ndarray, rotation: Sequence[float], position: Sequence[float]) -> Placed:
    """An object's measures from its bounding box in its own frame and its transform
    (rotation as the manifest's [x, y, z, w] unit quaternion, position in metres)."""
    x, y, z, w = rotation
    turn = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    corners = np.array([[hx, hy, hz] for hx in (low[0], high[0]) for hy in (low[1], high[1]) for hz in (low[2], high[2])])
    moved = corners @ turn.T + np.asarray(position, dtype=float)
    return Placed(object_id, float(np.max(high - low)), moved.min(axis=0), moved.max(axis=0))


def size_notes(
    objects: Sequence[Placed],
    units: str,
    *,
    taller_than_m: float,
    smaller_than_m: float,
    lab_smaller_than_m: float,
) -> list[Problem]:
    """The notes for objects taller than a room or too small to grab, and for a lab
    too small to stand in (the rules are in the module docstring)."""
    notes = []
    for obj in objects:
        if obj.height_m > taller_than_m:
            notes.append(
                Problem(
                    f"object {obj.id}",
                    f"is {_metres(obj.height_m)} tall as placed, taller than a room ({_metres(taller_than_m)}): the model may be in other units than 'units' says",
                    _units_fix(obj.height_m, units, smaller_than_m, taller_than_m, "tall", "the object's 'scale'")
                    + "; if it really is this tall (a hall around the lab), ignore this note",
                )
            )
        if obj.extent_m < smaller_than_m:
            notes.append(
                Problem(
                    f"object {obj.id}",
                    f"is only {_metres(obj.extent_m)} across at its longest, under {_metres(smaller_than_m)}: too small to see or grab",
                    _units_fix(obj.extent_m, units, smaller_than_m, taller_than_m, "across", "the object's 'scale'"),
                )
            )
    if objects:
        low = np.min([obj.low for obj in objects], axis=0)
        high = np.max([obj.high for obj in objects], axis=0)
        span = float(np.max(high - low))
        if span < lab_smaller_than_m:
            largest = max(objects, key=lambda obj: obj.extent_m)
            notes.append(
                Problem(
                    "package",
                    f"the whole lab is only {_metres(span)} across (its {len(objects)} object(s) as placed; the largest, object {largest.id!r}, "
                    f"is {_metres(largest.extent_m)}), under {_metres(lab_smaller_than_m)}: a lab people stand in spans metres",
                    _units_fix(largest.extent_m, units, smaller_than_m, taller_than_m, "across, for the largest object", "the objects' 'scale' and 'position'")
                    + "; if the lab is meant to be this small (an AR model placed on a real desk), ignore this note",
                )
            )
    return notes


def _units_fix(size_m: float, units: str, low: float, high: float, measure: str, otherwise: str) -> str:
    """Check 'units', with what each other usual unit would make ``size_m``, where that is within [low, high]."""
    factor = UNIT_METRES[units]
    fitting = [
        f"{unit!r} makes it {_metres(size_m * UNIT_METRES[unit] / factor)} {measure}"
        for unit in _SUGGESTED_UNITS
        if unit != units and low <= size_m * UNIT_METRES[unit] / factor <= high
    ]
    if not fitting:
        return f"check 'units' in scene.json (currently set to {units!r}) and {otherwise}"
    return f"check 'units' in scene.json (currently set to {units!r}): if the model files use another unit, set it ({'; '.join(fitting)}); otherwise check {otherwise}"


def _metres(value: float) -> str:
    """A length in metres, with millimetres too when it is under 10 cm."""
    text = f"{value:.3g} m"
    return f"{text} ({value * 1000:.3g} mm)" if value < 0.1 else text
