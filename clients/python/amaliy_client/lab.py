"""The client's mirror of a practical's lab: stations, the challenge, progress, scores, properties.

Built from ``welcome.snapshot`` ("stations", "challenge", "properties") and kept
up to date by the sequenced events ``station``, ``challenge_started``,
``step_done``, ``mistake``, ``checkpoint_answer``, ``challenge_done``, ``score``,
``property`` and ``step_overdue`` (docs/protocol.md). Like the rest of the SDK it
only reads what the server sends: it never decides that a step is done.

Which steps are open is worked out as the server does it: a step opens when every
step in its ``requires`` is done (at the challenge's start for those with none).
Times (``t``, ``started``, ``finished``, ``opened``) are the room's clock, in seconds.
"""

from __future__ import annotations

from typing import Any

#: the events this mirror follows
EVENTS = frozenset(
    {"station", "challenge_started", "step_done", "mistake", "checkpoint_answer", "challenge_done", "score", "property", "step_overdue"}
)


def _progress() -> dict[str, Any]:
    return {"started": None, "opened": {}, "done": {}, "mistakes": {}, "finished": None, "bonus": 0, "score": 0}


class LabState:
    """Stations (by number), the challenge and every property's value, as the server last said."""

    def __init__(self) -> None:
        #: who this mirror belongs to (its station is ``station``)
        self.me = ""
        #: "declared", "assignment" ("auto", "teacher" or "choose") and "group_size"
        self.rules: dict[str, Any] = {}
        #: number -> {"number", "title", "members", "progress", "highlight", "scores"}
        self.stations: dict[int, dict[str, Any]] = {}
        #: the challenge as the server shows it (no answers), or None
        self.challenge: dict[str, Any] | None = None
        #: object id -> property -> value
        self.properties: dict[str, dict[str, Any]] = {}
        #: every ``mistake`` and ``checkpoint_answer`` event seen, in order
        self.mistakes: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        #: (station, step) pairs past their time limit
        self.overdue: set[tuple[int, str]] = set()

    # ------------------------------------------------------------------ reads

    @property
    def station(self) -> int | None:
        """The number of the station this participant works at, or None."""
        return next((n for n, s in self.stations.items() if self.me in s["members"]), None)

    def progress(self, station: int | None = None) -> dict[str, Any]:
        """A station's progress (default: ours): started, opened, done, mistakes, finished, bonus, score."""
        number = self.station if station is None else station
        if number is None or number not in self.stations:
            return _progress()
        return self.stations[number]["progress"]

    def score(self, participant: str | None = None, station: int | None = None) -> int:
        """A participant's own score (default: ours) at a station (default: ours)."""
        number = self.station if station is None else station
        if number is None or number not in self.stations:
            return 0
        return int(self.stations[number].get("scores", {}).get(participant or self.me, 0))

    def done(self, step: str, station: int | None = None) -> bool:
        return step in self.progress(station)["done"]

    def finished(self, station: int | None = None) -> bool:
        return self.progress(station)["finished"] is not None

    def open_steps(self, station: int | None = None) -> list[str]:
        """Steps open now (prerequisites done, not done yet), in challenge order."""
        progress = self.progress(station)
        return [s["id"] for s in self._steps() if s["id"] in progress["opened"] and s["id"] not in progress["done"]]

    def value(self, object_id: str, prop: str) -> Any:
        return self.properties.get(object_id, {}).get(prop)

    def _steps(self) -> list[dict[str, Any]]:
        return self.challenge["steps"] if self.challenge else []

    # ------------------------------------------------------------------ updates

    def apply_snapshot(self, me: str, snap: dict[str, Any]) -> None:
        self.me = me
        stations = snap.get("stations") or {}
        self.rules = {key: stations.get(key) for key in ("declared", "assignment", "group_size")}
        self.stations = {}
        for station in stations.get("list", ()):
            station = dict(station)
            station["members"] = list(station.get("members", ()))
            station["scores"] = dict(station.get("scores") or {})
            progress = {**_progress(), **(station.get("progress") or {})}
            progress["opened"], progress["done"], progress["mistakes"] = dict(progress["opened"]), dict(progress["done"]), dict(progress["mistakes"])
            station["progress"] = progress
            self.stations[station["number"]] = station
        self.challenge = snap.get("challenge")
        self.properties = {obj: dict(values) for obj, values in (snap.get("properties") or {}).items()}

    def apply_event(self, msg: dict[str, Any]) -> None:
        """Follow one sequenced event (others are ignored)."""
        kind = msg["type"]
        if kind == "property":
            self.properties.setdefault(msg["object"], {})[msg["property"]] = msg["value"]
            return
        if kind == "station":
            pid = msg["participant"]
            for station in self.stations.values():
                if pid in station["members"]:
                    station["members"].remove(pid)
            if msg.get("station") is not None:
                station = self._station(msg["station"])
                station["members"].append(pid)
                station["scores"].setdefault(pid, 0)
            return
        if kind not in EVENTS:
            return
        station = self._station(msg["station"])
        progress = station["progress"]
        if kind == "challenge_started":
            progress["started"] = msg["t"]
            self._open(progress, msg["t"])
        elif kind == "step_done":
            progress["done"][msg["step"]] = {"by": msg["by"], "t": msg["t"], "points": msg["points"], "elapsed": msg.get("elapsed")}
            self._open(progress, msg["t"])
        elif kind == "mistake":
            progress["mistakes"][msg["step"]] = progress["mistakes"].get(msg["step"], 0) + 1
            self.mistakes.append(msg)
        elif kind == "checkpoint_answer":
            self.answers.append(msg)
        elif kind == "challenge_done":
            progress.update(finished=msg["t"], bonus=msg["bonus"], score=msg["score"])
        elif kind == "score":
            progress["score"] = msg["score"]
            station["scores"].update(msg.get("members") or {})
        elif kind == "step_overdue":
            self.overdue.add((msg["station"], msg["step"]))

    def _station(self, number: int) -> dict[str, Any]:
        if number not in self.stations:
            self.stations[number] = {"number": number, "title": f"Station {number}", "members": [], "progress": _progress(), "highlight": {}, "scores": {}}
        return self.stations[number]

    def _open(self, progress: dict[str, Any], t: float) -> None:
        for step in self._steps():
            if step["id"] not in progress["opened"] and all(before in progress["done"] for before in step.get("requires", ())):
                progress["opened"][step["id"]] = t
