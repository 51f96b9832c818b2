"""Who works at which lab station: assignment of students to stations, and what they may touch.

A scene with ``stations`` has numbered benches (scenes.stations); a scene
without has one implicit station, the whole lab, shared by every student.
Assignment follows the scene's rule: ``auto`` puts a joining student at the
least-filled station with a free place (lowest number on a tie), so students
get a bench of their own while there are benches, then partners; ``teacher``
waits for the teacher; ``choose`` waits for the student's choice. The teacher
can move anyone at any time. A student returning under the same identity goes
back to the station they left, if it has room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scenes.model import Scene

#: group size of the implicit station of a scene without stations: everyone
_EVERYONE = 10_000


@dataclass
class Station:
    number: int
    title: str
    spawn_points: list[tuple[float, float, float, float]]
    members: list[str] = field(default_factory=list)
    #: spawn points handed out so far, to spread a group over them
    spawned: int = 0

    def next_spawn(self) -> tuple[float, float, float, float]:
        point = self.spawn_points[self.spawned % len(self.spawn_points)]
        self.spawned += 1
        return point


class StationError(Exception):
    """An assignment the rules do not allow; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Stations:
    def __init__(self, scene: Scene) -> None:
        rules = scene.station_rules or {}
        self.declared = bool(scene.stations)
        self.group_size: int = rules.get("group_size", _EVERYONE) if self.declared else _EVERYONE
        self.assignment: str = rules.get("assignment", "auto")
        if self.declared:
            self.stations = {
                s["number"]: Station(s["number"], s["title"], [(*sp["position"], sp.get("yaw_degrees", 0.0)) for sp in s["spawn_points"]])
                for s in scene.stations
            }
        else:
            self.stations = {1: Station(1, scene.title, list(scene.spawn_points))}
        self.of: dict[str, int] = {}
        self._last: dict[str, int] = {}

    def on_join(self) -> bool:
        """Whether a joining student is placed by the server (else they wait for a choice)."""
        return self.assignment == "auto" or not self.declared

    def returning(self, participant: str) -> int | None:
        """The station a returning student left, if it still has a free place (under any rule)."""
        back = self._last.get(participant)
        return back if back is not None and len(self.stations[back].members) < self.group_size else None

    def pick(self) -> int | None:
        """The station for a new student under ``auto``: the least-filled with a free place
        (lowest number on a tie), or None when every place is taken."""
        free = [s for s in self.stations.values() if len(s.members) < self.group_size]
        if not free:
            return None
        return min(free, key=lambda s: (len(s.members), s.number)).number

    def check(self, number: int | None) -> None:
        """Refuse a station that does not exist or has no free place."""
        if number is None:
            return
        station = self.stations.get(number)
        if station is None:
            raise StationError("unknown_station", f"There is no station {number}; stations are 1 to {len(self.stations)}.")
        if len(station.members) >= self.group_size:
            raise StationError("station_full", f"Station {number} is full ({self.group_size} places).")

    def place(self, participant: str, number: int | None) -> int | None:
        """Move a student to a station (None: off every station); returns the station they left."""
        left = self.of.pop(participant, None)
        if left is not None:
            self.stations[left].members.remove(participant)
            self._last[participant] = left
        if number is not None:
            self.stations[number].members.append(participant)
            self.of[participant] = number
        return left

    def public(self) -> list[dict[str, Any]]:
        return [{"number": s.number, "title": s.title, "members": list(s.members)} for s in self.stations.values()]
