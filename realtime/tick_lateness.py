"""How late room ticks start: the event loop's stall, as students feel it.

A tick is due every 1/tick_rate seconds; anything that holds the event loop
(a slow handler, a big JSON on the loop, the garbage collector) makes the next
tick start late, and every student sees poses stutter by that much. The ticker
records each tick's lateness here, in a fixed ring (bounded memory whatever
the uptime); /healthz reports percentiles over a recent window, and the
benchmarks read the same figure.
"""

from __future__ import annotations

import numpy as np

#: ticks remembered per room: about 68 s at 30 Hz
CAPACITY = 2048


class TickLateness:
    __slots__ = ("_at", "_late", "_count")

    def __init__(self) -> None:
        self._at = np.zeros(CAPACITY)
        self._late = np.zeros(CAPACITY)
        self._count = 0

    def record(self, now: float, late: float) -> None:
        i = self._count % CAPACITY
        self._at[i] = now
        self._late[i] = late
        self._count += 1

    def since(self, start: float) -> np.ndarray:
        """Lateness in seconds of the ticks that started at or after ``start``."""
        n = min(self._count, CAPACITY)
        return self._late[:n][self._at[:n] >= start]


def summary(samples: list[np.ndarray]) -> dict[str, float | int]:
    """p50, p99 and max lateness in milliseconds over ``samples`` (one array per room)."""
    late = np.concatenate(samples) if samples else np.zeros(0)
    if not len(late):
        return {"ticks": 0, "late_p50_ms": 0.0, "late_p99_ms": 0.0, "late_max_ms": 0.0}
    p50, p99 = np.percentile(late, [50, 99]) * 1000
    return {"ticks": len(late), "late_p50_ms": round(float(p50), 2), "late_p99_ms": round(float(p99), 2), "late_max_ms": round(float(late.max() * 1000), 2)}
