"""Unit quaternions (x, y, z, w) on plain floats: the one copy of the rotation arithmetic that
scenes (placing station copies) and the live room (checking conditions) share.

WebXR's conventions: right-handed, y up. Plain Python, not numpy: callers handle one
object at a time, where a numpy call costs more than the arithmetic.
"""

from __future__ import annotations

import math
from typing import Sequence


def multiply(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """The product a * b: first b, then a."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def rotate(q: Sequence[float], v: Sequence[float]) -> tuple[float, float, float]:
    """v turned by q: v + 2w (u x v) + 2 u x (u x v), u = (x, y, z)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    return (vx + w * tx + y * tz - z * ty, vy + w * ty + z * tx - x * tz, vz + w * tz + x * ty - y * tx)


def up(q: Sequence[float]) -> tuple[float, float, float]:
    """The local +y axis turned by q: (2(xy - wz), 1 - 2(x² + z²), 2(yz + wx))."""
    x, y, z, w = q
    return (2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x))


def up_y(q: Sequence[float]) -> float:
    """The height of the turned up axis: the cosine of the tilt from the vertical."""
    x, _, z, _ = q
    return 1.0 - 2.0 * (x * x + z * z)


def about_y(degrees: float) -> tuple[float, float, float, float]:
    """A turn about the vertical axis."""
    half = math.radians(degrees) / 2
    return (0.0, math.sin(half), 0.0, math.cos(half))
