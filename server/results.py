"""Challenge results: the room's records stored as they happen, and read back per student.

A live room never touches a store (realtime.room). What it learns goes out as
``Record(id, kind, data)`` outputs, each under an id unique in the room
(realtime.challenges.engine): ``member:<participant>:<station>`` (a student
placed at a station), ``started:<station>`` (and ``started:<run>:<station>:<n>``
when a station left untouched starts again: the station's later time wins, and each student
keeps the start of their own time there), ``step:<station>:<step>`` (a
step's credit once per practical), ``mistake:<run>:<station>:<n>``,
``answer:<run>:<station>:<n>``, ``hint:<run>:<station>:<n>`` (a hint shown; its
``cost`` comes off the score like a mistake's penalty) (``run`` names each start of the
room, so a practical reopened after a restart adds its mistakes beside the old ones),
``done:<station>`` and ``skill:<participant>:<step>`` (the learner model after a first
attempt: kept by server.learners, not part of the results).
The node hands them to a ``ResultsWriter``, which writes them in batches on a
thread of its own (a commit waits for the disk, and the event loop that ticks
rooms must not), idempotent by (session, record id): a record replayed after a
failover or a retry is stored once.

``build`` turns a session's records into its results. Credit follows the room's
own ledger: a step, a mistake or a time bonus counts for every student in the
record's ``members`` (the station's group at that moment), and a student's score
is realtime.challenges.scoring.total of those entries, the same formula the
live ``score`` event uses. ``to_csv`` is one row a student for a spreadsheet.

Times: a record's ``t`` is the room's clock (the event loop's monotonic time);
the node converts it to wall-clock seconds (``at``, Unix time) as it stores it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from realtime.challenges import scoring
from realtime.room import Record
from server.replica import RecordsUnavailable
from server.store import Session, Store, StoredRecord

log = logging.getLogger("amaliy.results")

#: a batch that could not be written is tried again this often, this many times
_RETRY_SECONDS = 1.0
_RETRIES = 5
#: while the shared records do not answer (server.replica), records wait without counting tries, up to this many
_MAX_WAITING = 200_000

Row = tuple[str, str, str, float, dict[str, Any]]


class ResultsWriter:
    """Stores records off the event loop: one batch per loop iteration, one writer thread.

    A batch that fails (a full disk, a locked file) is tried again after
    ``_RETRY_SECONDS``, at most ``_RETRIES`` times, then dropped with an error in the log;
    trying again is safe because a stored record is never stored twice. While the shared
    records of a deployment do not answer (Redis down), batches wait and are tried again
    without counting tries, up to ``_MAX_WAITING`` records: an outage as long as the rooms
    can run from memory loses no result."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[Row] = []
        self._handle: asyncio.Handle | None = None
        self._tries = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="amaliy-results")
        self._last: asyncio.Future[int] | None = None
        self._closing = False
        #: records written, found already stored (a replay), and dropped after every retry failed
        self.stored = 0
        self.duplicates = 0
        self.dropped = 0

    def add(self, session_id: str, record: Record, at: float) -> None:
        """Queue one record of a session, ``at`` its wall-clock time (call on the event loop)."""
        self._pending.append((session_id, record.id, record.kind, at, record.data))
        self._schedule()

    def _schedule(self, delay: float = 0.0) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(delay, self._flush) if delay else loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        tries = self._tries
        future = asyncio.get_running_loop().run_in_executor(self._executor, self.store.add_records, batch)
        future.add_done_callback(lambda done: self._written(batch, done, tries))
        self._last = future

    def _written(self, batch: list[Row], done: asyncio.Future[int], tries: int) -> None:
        error = None if done.cancelled() else done.exception()
        if not done.cancelled() and error is None:
            new = done.result()
            self.stored += new
            self.duplicates += len(batch) - new
            self._tries = 0
            return
        waiting = isinstance(error, RecordsUnavailable) and not self._closing and len(self._pending) + len(batch) <= _MAX_WAITING
        if tries + 1 >= _RETRIES and not waiting:
            self.dropped += len(batch)
            self._tries = 0
            log.error("dropped %d result records after %d failed writes: %s", len(batch), _RETRIES, error)
            return
        log.warning("could not store %d result records (%s); trying again in %g s", len(batch), error, _RETRY_SECONDS)
        self._pending[:0] = batch
        self._tries = tries if waiting else tries + 1
        self._schedule(_RETRY_SECONDS)

    async def flush(self) -> None:
        """Wait until every record queued so far has been written (or its write failed)."""
        self._flush()
        while self._last is not None and not self._last.done():
            await asyncio.wait([self._last])

    async def close(self) -> None:
        """Write what is queued (a failing batch is tried again at once, up to its retries), then
        stop the writer thread."""
        self._closing = True
        await self.flush()
        while self._pending:  # each failed try counts, so this ends once a batch is dropped
            await self.flush()
        self._executor.shutdown(wait=True)

    def stats(self) -> dict[str, int]:
        return {"stored": self.stored, "duplicates": self.duplicates, "dropped": self.dropped, "queued": len(self._pending)}


# ------------------------------------------------------------------ reading


def _wall(at: float | None) -> str:
    """Unix time as ISO 8601 UTC (for the CSV), or empty."""
    return "" if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


def _challenge_summary(challenge: dict[str, Any] | None) -> dict[str, Any] | None:
    if challenge is None:
        return None
    return {
        "id": challenge["id"],
        "title": challenge["title"],
        "steps": [{"id": s["id"], "text": s["text"], "points": s["points"], "skill": s.get("skill")} for s in challenge["steps"]],
    }


def build(session: Session, challenge: dict[str, Any] | None, records: list[StoredRecord]) -> dict[str, Any]:
    """A session's results: the challenge, every station's totals and every student's record."""
    records = sorted(records, key=lambda r: r.at)  # stable: records of one instant keep their stored order
    names: dict[str, str] = {}
    students: dict[str, dict[str, Any]] = {}
    stations: dict[int, dict[str, Any]] = {}
    credit: dict[str, list[int]] = {}
    #: participant -> station -> when the station's challenge started for them
    starts: dict[str, dict[int, float | None]] = {}

    def station(number: int) -> dict[str, Any]:
        if number not in stations:
            stations[number] = {
                "station": number, "members": [], "started": None, "finished": None, "elapsed": None,
                "bonus": 0, "score": 0, "steps_done": 0, "mistakes": 0, "hints": 0, "_entries": [],
            }
        return stations[number]

    def credited(data: dict[str, Any], points: int) -> list[dict[str, Any]]:
        out = []
        for pid in data.get("members") or ():
            if pid in students:
                credit[pid].append(points)
                out.append(students[pid])
        return out

    for record in records:
        data = record.data
        kind = record.kind
        if kind == "station":
            pid = data["participant"]
            names[pid] = data.get("name", pid)
            student = students.setdefault(
                pid,
                {"participant": pid, "name": names[pid], "stations": [], "station": None, "joined": record.at,
                 "started": None, "finished": None, "elapsed": None, "done": False, "score": 0, "bonus": 0,
                 "steps": [], "mistakes": [], "hints": [], "answers": []},
            )
            credit.setdefault(pid, [])
            number = data["station"]
            if number not in student["stations"]:
                student["stations"].append(number)
            student["station"] = number
            group = station(number)
            starts.setdefault(pid, {})[number] = group["started"]  # a late partner joins the start under way
            if pid not in group["members"]:
                group["members"].append(pid)
        elif kind == "challenge_started":
            number = data["station"]
            station(number)["started"] = record.at
            # who it started for: its members, or (a record from before they were stored) whoever was placed there last
            members = data["members"] if "members" in data else [pid for pid, s in students.items() if s["station"] == number]
            for pid in members:
                starts.setdefault(pid, {})[number] = record.at
        elif kind == "step_done":
            group = station(data["station"])
            group["steps_done"] += 1
            group["_entries"].append(data["points"])
            entry = {
                "step": data["step"], "station": data["station"], "at": record.at, "by": data.get("by"),
                "by_name": names.get(data.get("by") or ""), "points": data["points"], "seconds": data.get("elapsed"),
            }
            for student in credited(data, data["points"]):
                student["steps"].append(entry)
        elif kind == "mistake":
            group = station(data["station"])
            group["mistakes"] += 1
            group["_entries"].append(-data["penalty"])
            entry = {
                "step": data["step"], "station": data["station"], "mistake": data["mistake"], "explanation": data["explanation"],
                "penalty": data["penalty"], "at": record.at, "by": data.get("by"), "by_name": names.get(data.get("by") or ""),
            }
            for student in credited(data, -data["penalty"]):
                student["mistakes"].append(entry)
        elif kind == "hint":
            group = station(data["station"])
            group["hints"] += 1
            cost = int(data.get("cost", 0))
            if cost:
                group["_entries"].append(-cost)
            entry = {"step": data["step"], "station": data["station"], "level": data.get("level"), "reason": data.get("reason"),
                     "cost": cost, "at": record.at}
            for student in credited(data, -cost):
                student["hints"].append(entry)
        elif kind == "checkpoint_answer":
            student = students.get(data.get("by") or "")
            if student is not None:
                student["answers"].append(
                    {"step": data["step"], "station": data["station"], "at": record.at, "correct": data["correct"], "value": data.get("value")}
                )
        elif kind == "challenge_done":
            group = station(data["station"])
            group.update(finished=record.at, elapsed=data["elapsed"], bonus=data["bonus"])
            if data["bonus"]:
                group["_entries"].append(data["bonus"])
            for student in credited(data, data["bonus"]):
                student.update(finished=record.at, elapsed=data["elapsed"], done=True, bonus=data["bonus"])
                student["finished_station"] = data["station"]

    for pid, student in students.items():
        student["score"] = scoring.total(credit[pid])
        where = student.pop("finished_station", student["station"])
        student["started"] = starts.get(pid, {}).get(where)
    for group in stations.values():
        group["score"] = scoring.total(group.pop("_entries"))
    return {
        "session": {
            "id": session.id, "title": session.title, "scene": session.scene_id, "scene_version": session.scene_version,
            "status": session.status, "created": session.created,
        },
        "challenge": _challenge_summary(challenge),
        "stations": [stations[n] for n in sorted(stations)],
        "students": sorted(students.values(), key=lambda s: (s["station"] or 0, s["name"].casefold(), s["participant"])),
    }


def step_ids(results: dict[str, Any]) -> list[str]:
    """The challenge's steps in order; without a stored challenge, those seen in records."""
    if results["challenge"] is not None:
        return [step["id"] for step in results["challenge"]["steps"]]
    seen: dict[str, None] = {}
    for student in results["students"]:
        seen.update((entry["step"], None) for entry in student["steps"])
    return list(seen)


#: what a spreadsheet would run as a formula if a cell began with it (OWASP "CSV injection")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as written to any CSV export: text a spreadsheet would run as a formula gets a
    leading apostrophe (server.roster's export uses this too)."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def to_csv(results: dict[str, Any]) -> str:
    """One row a student: name, station, score, counts, elapsed, finished, then seconds per step.

    Starts with a UTF-8 byte order mark so spreadsheet programs read non-Latin names right."""
    steps = step_ids(results)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["participant", "name", "station", "score", "steps_done", "mistakes", "hints", "elapsed_seconds", "finished", "finished_at",
                     *(f"step:{step}" for step in steps)])
    for student in results["students"]:
        seconds = {entry["step"]: entry["seconds"] for entry in student["steps"]}
        writer.writerow(
            [
                student["participant"],
                csv_cell(student["name"]),
                ";".join(str(n) for n in student["stations"]),
                student["score"],
                len(student["steps"]),
                len(student["mistakes"]),
                len(student["hints"]),
                "" if student["elapsed"] is None else student["elapsed"],
                "yes" if student["done"] else "no",
                _wall(student["finished"]),
                *("" if seconds.get(step) is None else seconds[step] for step in steps),
            ]
        )
    return out.getvalue()
