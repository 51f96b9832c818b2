"""The challenge engine of one room: properties, rules, stations, step progress and score.

Sans-I/O like the room that owns it: it never reads the clock or a store. The
room tells it what changed (objects that moved or changed hands, members who
walked, properties set, students placed) and the time; it answers with events.

Event-driven. Every condition the room must watch right now (an open step's
condition, its mistakes, every rule) is a *tracker*, compiled for its station
(realtime.challenges.conditions). An index maps each key a tracker reads
(an object, a property, a station's members) to the trackers reading it, and
only trackers that are open are in it. A tick re-evaluates the trackers whose
keys changed, plus those whose timer (``stable_for``) is due, in tracker order,
so the same inputs give the same events in the same order: the room's input
log replays to the same progress. A rule that sets a property feeds that
change back in the same tick (at most ``_ROUNDS`` rounds, so rules that flip
each other cannot spin), and so does a step that opens: one whose condition
already holds completes in that tick (opened by an answer, at the next tick).

Progress goes out as sequenced room events (``challenge_started``,
``step_done``, ``mistake``, ``checkpoint_answer``, ``challenge_done``,
``score``, ``step_overdue``, ``property``, ``station``), each with the record id
under which the node stores it, so a replay never credits twice. The score
formula is realtime.challenges.scoring.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from realtime.challenges import scoring
from realtime.challenges.conditions import Node, StableFor, Zone, compile_condition
from realtime.challenges.properties import BadValue, Properties
from realtime.challenges.stations import StationError, Stations
from realtime.learning import ladder
from realtime.limits import TokenBucket
from scenes import challenge_format as cf
from scenes.challenge_check import requires_of
from scenes.model import Scene
from scenes.stations import instance_id

#: rounds of rule feedback per tick
_ROUNDS = 8
WRONG_ANSWER = "wrong_answer"


class Event(NamedTuple):
    """A room event: ``kind`` and its public ``fields``; ``record`` is the id the node stores it
    under (None: not stored), with ``private`` fields added to the stored copy only. An event
    that is not ``public`` is only stored, never sent (the learner model's updates)."""

    kind: str
    fields: dict[str, Any]
    record: str | None = None
    private: dict[str, Any] | None = None
    public: bool = True


class Refused(Exception):
    """An action the engine will not take; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Resolver:
    """Names to indices for one station: template names to that station's copies."""

    def __init__(self, engine: "Challenges", station: int | None) -> None:
        self.engine = engine
        self.station = station

    def _name(self, name: str, kind: str) -> str:
        template = self.engine.scene.template or {}
        if self.station is not None and name in template.get(kind, ()):
            return instance_id(name, self.station)
        return name

    def object(self, name: str) -> int:
        return self.engine.index[self._name(name, "objects")]

    def zone(self, name: str) -> Zone:
        return self.engine.zones[self._name(name, "zones")]

    def snap(self, target: int, name: str) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
        for ident, position, rotation in self.engine.scene.objects[target].snap_points:
            if ident == name:
                return position, rotation
        raise KeyError(name)


@dataclass(eq=False)
class Tracker:
    id: int
    node: Node
    station: int
    kind: str  # "step", "mistake" or "rule"
    step: cf.Step | None = None
    mistake: cf.Mistake | None = None
    rule: cf.Rule | None = None
    rule_key: tuple[int, str] | None = None
    #: the last evaluation; None before the first (and, for a rule, after a reset)
    value: bool | None = None
    active: bool = False
    #: when its ``stable_for`` parts next want it evaluated (the earliest they asked for)
    wake_at: float | None = None
    keys: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Progress:
    """One station's way through the challenge."""

    started: float | None = None
    opened: dict[str, float] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    mistakes: dict[str, int] = field(default_factory=dict)
    finished: float | None = None
    bonus: int = 0
    entries: list[int] = field(default_factory=list)
    #: each member's own entries (scoring.total of them is their score)
    personal: dict[str, list[int]] = field(default_factory=dict)
    counter: int = 0
    overdue: set[str] = field(default_factory=set)

    def untouched(self) -> bool:
        """Whether the station got nowhere: no step done, no mistake, no hint that cost points.
        Each of those is an entry of the ledger (even one worth 0 points), so an empty ledger
        says it; a free hint or a step gone overdue is no progress."""
        return not self.entries

    def public(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "opened": dict(self.opened),
            "done": {step: dict(info) for step, info in self.done.items()},
            "mistakes": dict(self.mistakes),
            "finished": self.finished,
            "bonus": self.bonus,
            "score": scoring.total(self.entries),
        }


class Challenges:
    def __init__(self, scene: Scene, answer_rate: float = 0.5, answer_burst: float = 3.0, run: str = "") -> None:
        self.scene = scene
        #: names this run of the room in record ids that count events (mistakes, answers), so a
        #: practical reopened after a restart stores its new ones beside the old, not over them
        self.run = run
        self.names = [obj.id for obj in scene.objects]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.zones = {z.id: Zone(z.shape, z.center, z.size, z.radius) for z in scene.zones}
        self.properties = Properties(scene)
        #: property values by (object index, name), read by conditions
        self.values = self.properties.values
        self.stations = Stations(scene)
        self.challenge = cf.Challenge.model_validate(scene.challenge) if scene.challenge else None
        self.requires = requires_of(self.challenge) if self.challenge else {}
        self.position: list[list[float]] = [list(obj.transform[:3]) for obj in scene.objects]
        self.rotation: list[list[float]] = [list(obj.transform[3:]) for obj in scene.objects]
        self.holder: list[str | None] = [None] * len(scene.objects)
        #: each object's last touch: (time, order of the touch, participant)
        self._touched: list[tuple[float, int, str] | None] = [None] * len(scene.objects)
        self._touches = 0
        self._heads: dict[str, tuple[float, float, float]] = {}
        self._answer_rate, self._answer_burst = answer_rate, answer_burst
        self._answers: dict[str, TokenBucket] = {}
        self.progress = {number: Progress() for number in self.stations.stations}
        self._trackers: list[Tracker] = []
        self._index: dict[tuple[Any, ...], dict[int, Tracker]] = {}
        self._timers: list[tuple[float, int, str, int, str]] = []  # (when, seq, kind, station or tracker, step)
        self._timer_seq = 0
        self._dirty: dict[tuple[Any, ...], None] = {}
        self._pending: dict[int, Tracker] = {}
        self._current: Tracker | None = None
        self._step_trackers: dict[tuple[int, str], list[Tracker]] = {}
        #: whether any condition reads objects at all (else the room need not report what moved),
        #: and whether any reads where students stand (the room then reports walking)
        self.watching = False
        self.watches_members = False
        #: students who found every place taken under ``auto``, in arrival order, with their names
        self._waiting: dict[str, str] = {}
        #: station -> when a member last handled something there (taken by the learning engine each tick)
        self.activity: dict[int, float] = {}
        self._build()

    # ------------------------------------------------------------------ setup

    def _new(self, node: Node, station: int, kind: str, **fields: Any) -> Tracker:
        tracker = Tracker(len(self._trackers), node, station, kind, keys=list(dict.fromkeys(node.keys())), **fields)
        self._trackers.append(tracker)
        return tracker

    def _build(self) -> None:
        template = self.scene.template or {}
        template_names = set(template.get("objects", ())) | set(template.get("zones", ()))
        stations = list(self.stations.stations) if self.stations.declared else [1]
        for raw in self.scene.rules:
            rule = cf.Rule.model_validate(raw)
            local = rule.object in template_names or _names_any(rule.when, template_names)
            for number in stations if (local and self.stations.declared) else [0]:
                resolve = _Resolver(self, number or None)
                key = (resolve.object(rule.object), rule.property)
                node = compile_condition(rule.when, resolve, number)
                if rule.after_seconds > 0:
                    node = StableFor(node, rule.after_seconds)
                self._activate(self._new(node, number, "rule", rule=rule, rule_key=key))
        if self.challenge is not None:
            self._build_steps(stations)
        self.watching = bool(self._trackers)
        self.watches_members = any(key[0] == "w" for tracker in self._trackers for key in tracker.keys)

    def _build_steps(self, stations: list[int]) -> None:
        assert self.challenge is not None
        for number in stations:
            resolve = _Resolver(self, number if self.stations.declared else None)
            for step in self.challenge.steps:
                trackers = []
                if step.condition is not None:
                    trackers.append(self._new(compile_condition(step.condition, resolve, number), number, "step", step=step))
                for mistake in step.mistakes:
                    trackers.append(self._new(compile_condition(mistake.condition, resolve, number), number, "mistake", step=step, mistake=mistake))
                self._step_trackers[(number, step.id)] = trackers

    # ------------------------------------------------------------------ context (read by nodes)

    def members(self, station: int) -> list[str]:
        """The station's group; station 0 (a rule on shared equipment): every placed student."""
        if station == 0:
            return list(self.stations.of)
        return self.stations.stations[station].members

    def head(self, participant: str) -> tuple[float, float, float]:
        return self._heads.get(participant, (math.inf, math.inf, math.inf))

    def wake(self, when: float) -> None:
        """Evaluate the tracker being evaluated again at ``when`` (the earliest of its timers wins)."""
        tracker = self._current
        if tracker is not None and (tracker.wake_at is None or when < tracker.wake_at):
            tracker.wake_at = when

    # ------------------------------------------------------------------ index

    def _activate(self, tracker: Tracker) -> None:
        tracker.active = True
        for key in tracker.keys:
            self._index.setdefault(key, {})[tracker.id] = tracker
        self._pending[tracker.id] = tracker

    def _deactivate(self, tracker: Tracker) -> None:
        tracker.active = False
        for key in tracker.keys:
            self._index[key].pop(tracker.id, None)
        self._pending.pop(tracker.id, None)

    def _push(self, when: float, kind: str, ident: int, step: str) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, ident, step))

    # ------------------------------------------------------------------ inputs from the room

    def touched(self, index: int, participant: str, now: float) -> None:
        """A participant grabbed, moved, released or set something on an object: the last one gets credit."""
        self._touches += 1
        self._touched[index] = (now, self._touches, participant)
        number = self.stations.of.get(participant)
        if number is not None:
            self.activity[number] = now

    def take_activity(self) -> dict[int, float]:
        """Stations where a member handled something since the last call, and when they last did."""
        taken, self.activity = self.activity, {}
        return taken

    def moved(self, indices: list[int], transforms: list[list[float]], holders: list[str | None]) -> None:
        """Objects whose transform or holder changed this tick."""
        for i, transform, holder in zip(indices, transforms, holders):
            self.position[i] = transform[:3]
            self.rotation[i] = transform[3:]
            self.holder[i] = holder
            self._dirty[("o", i)] = None

    def walked(self, heads: dict[str, tuple[float, float, float]]) -> None:
        """Head positions of participants whose pose changed this tick."""
        for pid, head in heads.items():
            self._heads[pid] = head
            station = self.stations.of.get(pid)
            if station is not None:
                self._dirty[("w", station)] = None
                self._dirty[("w", 0)] = None

    def join(self, participant: str, name: str, now: float) -> tuple[list[Event], tuple[float, float, float, float] | None]:
        """A student entered the room: back to the station they left if it has room, else placed
        if the rule is ``auto``; returns their spawn point, if any."""
        number = self.stations.returning(participant)
        if number is None:
            if not self.stations.on_join():
                return [], None
            number = self.stations.pick()
            if number is None:
                self._waiting[participant] = name
                return [Event("station", {"participant": participant, "station": None, "full": True})], None
        if not self.stations.declared and self.challenge is None:  # a plain shared room: rules may read who is in it, nothing to report
            self.stations.place(participant, number)
            self._regrouped(number)
            return [], None
        return self._place(participant, name, number, now)

    def leave(self, participant: str, now: float) -> list[Event]:
        """A student left the room for good (left, timed out, removed). Their answer rate
        stays with their identity, so leaving and coming back buys no extra tries."""
        self._heads.pop(participant, None)
        self._waiting.pop(participant, None)
        events = self._unplace(participant)
        if events and self._waiting:  # a place came free: the first student waiting for one takes it
            number = self.stations.pick()
            if number is not None:
                waiting = next(iter(self._waiting))
                events += self._place(waiting, self._waiting.pop(waiting), number, now)[0]
        return events

    def _unplace(self, participant: str) -> list[Event]:
        left = self.stations.place(participant, None)
        if left is None:
            return []
        self._regrouped(left)
        return [Event("station", {"participant": participant, "station": None})]

    def assign(self, participant: str, name: str, number: int | None, now: float) -> tuple[list[Event], tuple[float, float, float, float] | None]:
        """The teacher (or, under ``choose``, the student) puts a student at a station (None: at none)."""
        if self.stations.of.get(participant) == number:
            return [], None
        try:
            self.stations.check(number)
        except StationError as exc:
            raise Refused(exc.code, exc.message) from None
        if number is None:
            return self._unplace(participant), None
        return self._place(participant, name, number, now)

    def _place(self, participant: str, name: str, number: int, now: float) -> tuple[list[Event], tuple[float, float, float, float] | None]:
        self._waiting.pop(participant, None)
        left = self.stations.place(participant, number)
        if left is not None:
            self._regrouped(left)
        self._regrouped(number)
        station = self.stations.stations[number]
        spawn = station.next_spawn() if self.stations.declared else None
        progress = self.progress[number]
        progress.personal.setdefault(participant, [])
        progress.counter += 1
        events = [
            Event(
                "station",
                {"participant": participant, "station": number, "spawn": [round(v, 6) for v in spawn] if spawn else None},
                f"member:{participant}:{number}",
                {"name": name, "t": now},
            )
        ]
        if self.challenge is not None and (progress.started is None or (station.members == [participant] and progress.untouched())):
            events.append(self._start(number, now))
        return events, spawn

    def _start(self, number: int, now: float) -> Event:
        """Start a station's challenge at ``now``: its clock (the time bonus counts from it) and
        the steps open from the start, whose time limits count from it too.

        Also a restart: a student placed at a station where nobody is and nothing was done
        (Progress.untouched) would otherwise find its clock running since the first student
        ever placed there, and the time bonus spent, for work nobody did. So the steps it had
        opened open again now, and their time limit timers from before are dropped (nothing was
        done there, so every ``overdue`` timer of the station is one of them). The first start keeps
        its record id ``started:<station>``; a restart gets one of its own, so the results see it,
        and the record names who it started for (whoever left before it keeps the earlier start).
        """
        assert self.challenge is not None
        progress = self.progress[number]
        record = f"started:{number}" if progress.started is None else f"started:{self.run}:{number}:{progress.counter}"
        progress.started = now
        progress.opened.clear()
        progress.overdue.clear()
        self._timers = [timer for timer in self._timers if timer[2] != "overdue" or timer[3] != number]
        heapq.heapify(self._timers)
        self._open_steps(number, now)
        members = list(self.members(number))  # stored: the results give each student the start that was theirs
        return Event("challenge_started", {"station": number, "challenge": self.challenge.id, "t": now}, record, {"members": members})

    def _regrouped(self, number: int) -> None:
        """A station's group changed: conditions on who its members are, or where they stand, re-check."""
        for key in (("m", number), ("w", number), ("m", 0), ("w", 0)):
            self._dirty[key] = None

    def interact(self, participant: str, index: int, name: str, value: Any, now: float) -> list[Event]:
        """Set an interactive property (the room already checked who may touch the object)."""
        key = (index, name)
        spec = self.properties.specs.get(key)
        if spec is None:
            declared = ", ".join(repr(n) for (i, n) in self.properties.specs if i == index) or "none"
            raise Refused("unknown_property", f"{self.names[index]!r} has no property {name!r} (it has {declared}).")
        if not spec.interactive:
            raise Refused("not_interactable", f"{spec.title or spec.id!r} of {self.names[index]!r} changes by itself; it cannot be set.")
        try:
            value = self.properties.check(key, value)
        except BadValue as exc:
            raise Refused("bad_value", str(exc)) from None
        self.touched(index, participant, now)
        return self._set(key, value, participant)

    def _set(self, key: tuple[int, str], value: Any, by: str | None) -> list[Event]:
        if self.properties.values[key] == value and type(self.properties.values[key]) is type(value):
            return []
        self.properties.values[key] = value
        self._dirty[("p", *key)] = None
        return [Event("property", {"object": self.names[key[0]], "property": key[1], "value": value, "by": by})]

    def reset(self) -> list[Event]:
        """The teacher reset the lab: every property back to its initial value, and every
        rule applied again at the next tick (its condition may hold all the same)."""
        changed = self.properties.reset()
        for key in changed:
            self._dirty[("p", *key)] = None
        for tracker in self._trackers:
            if tracker.kind == "rule":
                tracker.value = None
                self._pending[tracker.id] = tracker
        return [Event("property", {"object": self.names[i], "property": n, "value": self.properties.values[(i, n)], "by": None}) for i, n in changed]

    def answer(self, participant: str, step_id: str, value: Any, now: float) -> list[Event]:
        """A student's answer to a checkpoint step of their station."""
        if self.challenge is None:
            raise Refused("unknown_step", "This practical has no challenge, so no questions to answer.")
        number = self.stations.of.get(participant)
        if number is None:
            raise Refused("no_station", "You are not at a lab station yet.")
        step = next((s for s in self.challenge.steps if s.id == step_id), None)
        if step is None or step.checkpoint is None:
            raise Refused("unknown_step", f"There is no question {step_id!r} in this challenge.")
        progress = self.progress[number]
        if step_id in progress.done or step_id not in progress.opened:
            state = "already answered" if step_id in progress.done else "not open yet"
            raise Refused("step_not_open", f"That question is {state}.")
        correct = self._check_answer(step.checkpoint, value, number)  # a malformed answer costs no try
        bucket = self._answers.get(participant)
        if bucket is None:
            bucket = self._answers[participant] = TokenBucket(self._answer_rate, self._answer_burst, now)
        if not bucket.take(now):
            raise Refused("rate_limited", f"Too many answers: wait {1 / self._answer_rate:g} s between tries.")
        progress.counter += 1
        events = [
            Event(
                "checkpoint_answer",
                {"station": number, "step": step_id, "by": participant, "correct": correct, "t": now},
                f"answer:{self.run}:{number}:{progress.counter}",
                {"value": value},
            )
        ]
        if correct:
            events += self._complete(number, step, participant, now)
        else:
            events += self._mistake(number, step, WRONG_ANSWER, step.checkpoint.wrong, self.challenge.mistake_penalty, participant, now)
        return events

    def _check_answer(self, checkpoint: cf.Checkpoint, value: Any, number: int) -> bool:
        if checkpoint.choice is not None:
            if type(value) is not int or not 0 <= value < len(checkpoint.choice.choices):
                raise Refused("bad_value", f"Answer with the number of a choice, from 0 to {len(checkpoint.choice.choices) - 1}.")
            return value == checkpoint.choice.answer
        question = checkpoint.number
        assert question is not None
        if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > 1e9:
            raise Refused("bad_value", "Answer with a number.")
        expected = question.answer
        if question.answer_from is not None:
            resolve = _Resolver(self, number if self.stations.declared else None)
            expected = self.properties.values[(resolve.object(question.answer_from.object), question.answer_from.property)]
        assert expected is not None
        return abs(value - expected) <= question.tolerance + 1e-9

    # ------------------------------------------------------------------ tick

    def tick(self, now: float) -> list[Event]:
        """Re-evaluate what this tick's changes touched and what is due; return the events."""
        events: list[Event] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, ident, step_id = heapq.heappop(self._timers)
            if kind == "tracker":
                tracker = self._trackers[ident]
                if tracker.active and tracker.wake_at is not None and tracker.wake_at <= now:
                    tracker.wake_at = None
                    self._pending[tracker.id] = tracker
            elif step_id not in self.progress[ident].done and step_id not in self.progress[ident].overdue:
                self.progress[ident].overdue.add(step_id)
                events.append(Event("step_overdue", {"station": ident, "step": step_id, "t": now}))
        index, pending, dirty, evaluate = self._index, self._pending, self._dirty, self._evaluate  # hot loop
        for _ in range(_ROUNDS):
            for key in dirty:
                watchers = index.get(key)
                if watchers:
                    pending.update(watchers)
            dirty.clear()
            if not pending:
                break
            due = sorted(pending.items())
            pending.clear()
            for _, tracker in due:
                if tracker.active:
                    out = evaluate(tracker, now)
                    if out:
                        events += out
        return events

    def _evaluate(self, tracker: Tracker, now: float) -> list[Event]:
        scheduled, tracker.wake_at = tracker.wake_at, None
        self._current = tracker
        try:
            value = tracker.node.eval(self, now)
        finally:
            self._current = None
        if tracker.wake_at is not None and tracker.wake_at != scheduled:  # the earliest timer its stable_for parts asked for
            self._push(tracker.wake_at, "tracker", tracker.id, "")
        was, tracker.value = tracker.value, value
        if not value and (was is False or tracker.kind != "rule"):  # the common case: nothing happened
            return []
        if tracker.kind == "step":
            assert tracker.step is not None
            return self._complete(tracker.station, tracker.step, self._credit(tracker.node), now) if value else []
        if tracker.kind == "mistake":
            assert tracker.step is not None and tracker.mistake is not None and self.challenge is not None
            if value and not was:
                penalty = self.challenge.mistake_penalty if tracker.mistake.penalty is None else tracker.mistake.penalty
                return self._mistake(tracker.station, tracker.step, tracker.mistake.id, tracker.mistake.explanation, penalty, self._credit(tracker.node), now)
            return []
        assert tracker.rule is not None and tracker.rule_key is not None
        if value == was:
            return []
        target = tracker.rule.value if value else tracker.rule.otherwise
        if target is None:
            return []
        by = self._credit(tracker.node)
        if by is not None:  # the flask a student filled by pouring is theirs to get credit for
            self.touched(tracker.rule_key[0], by, now)
        return self._set(tracker.rule_key, target, None)

    def _credit(self, node: Node) -> str | None:
        """Who did it: the last participant to touch one of the objects the condition names."""
        touches = [self._touched[i] for i in node.objects() if self._touched[i] is not None]
        return max(touches)[2] if touches else None  # type: ignore[type-var]

    # ------------------------------------------------------------------ progress

    def _open_steps(self, number: int, now: float) -> None:
        """Open every step whose prerequisites are done; a checkpoint just waits for its answer."""
        assert self.challenge is not None
        progress = self.progress[number]
        for step in self.challenge.steps:
            if step.id in progress.opened or not all(before in progress.done for before in self.requires[step.id]):
                continue
            progress.opened[step.id] = now
            for tracker in self._step_trackers[(number, step.id)]:
                self._activate(tracker)
            if step.time_limit_seconds is not None:
                self._push(now + step.time_limit_seconds, "overdue", number, step.id)

    def _ledger(self, number: int, points: int, members: list[str] | None = None) -> None:
        progress = self.progress[number]
        progress.entries.append(points)
        for pid in self.members(number) if members is None else members:
            progress.personal.setdefault(pid, []).append(points)

    def charge(self, number: int, points: int, members: list[str]) -> Event:
        """Take ``points`` off a station's score, and off the own scores of ``members`` (a hint's
        cost, charged to those it was for); returns the ``score`` event."""
        self._ledger(number, -points, members)
        return self._score(number)

    def _score(self, number: int) -> Event:
        progress = self.progress[number]
        members = {pid: scoring.total(progress.personal.get(pid, [])) for pid in self.members(number)}
        return Event("score", {"station": number, "score": scoring.total(progress.entries), "members": members})

    def _complete(self, number: int, step: cf.Step, by: str | None, now: float) -> list[Event]:
        assert self.challenge is not None
        progress = self.progress[number]
        if step.id in progress.done:
            return []
        for tracker in self._step_trackers[(number, step.id)]:
            self._deactivate(tracker)
        opened = progress.opened[step.id]
        points = scoring.step_points(step.points, opened, now, step.time_limit_seconds)
        progress.done[step.id] = {"by": by, "t": now, "points": points}
        self._ledger(number, points)
        members = list(self.members(number))
        events = [
            Event(
                "step_done",
                {"station": number, "step": step.id, "by": by, "points": points, "t": now, "elapsed": round(now - opened, 3)},
                f"step:{number}:{step.id}",
                {"members": members, "skill": step.skill, "opened": opened},
            )
        ]
        self._open_steps(number, now)
        if len(progress.done) == len(self.challenge.steps):
            progress.finished = now
            assert progress.started is not None
            elapsed = now - progress.started
            if self.challenge.time_bonus is not None:
                progress.bonus = scoring.time_bonus(self.challenge.time_bonus.points, self.challenge.time_bonus.target_seconds, elapsed)
                if progress.bonus:
                    self._ledger(number, progress.bonus)
            events.append(
                Event(
                    "challenge_done",
                    {"station": number, "t": now, "elapsed": round(elapsed, 3), "bonus": progress.bonus, "score": scoring.total(progress.entries)},
                    f"done:{number}",
                    {"members": members},
                )
            )
        events.append(self._score(number))
        return events

    def _mistake(self, number: int, step: cf.Step, mistake: str, explanation: str, penalty: int, by: str | None, now: float) -> list[Event]:
        progress = self.progress[number]
        progress.mistakes[step.id] = progress.mistakes.get(step.id, 0) + 1
        progress.counter += 1
        self._ledger(number, -penalty)
        return [
            Event(
                "mistake",
                {"station": number, "step": step.id, "mistake": mistake, "explanation": explanation, "penalty": penalty, "by": by, "t": now},
                f"mistake:{self.run}:{number}:{progress.counter}",
                {"members": list(self.members(number)), "skill": step.skill},
            ),
            self._score(number),
        ]

    # ------------------------------------------------------------------ reads

    def station_of(self, participant: str) -> int | None:
        return self.stations.of.get(participant)

    def local_name(self, name: str, number: int) -> str:
        """The id a scene.json name has at a station: a template object's or zone's copy there, else itself."""
        template = self.scene.template or {}
        if self.stations.declared and (name in template.get("objects", ()) or name in template.get("zones", ())):
            return instance_id(name, number)
        return name

    def may_touch(self, participant: str, index: int) -> str | None:
        """Why a student may not handle an object (another station's equipment), or None."""
        owner = self.scene.objects[index].station
        if owner is None:
            return None
        mine = self.stations.of.get(participant)
        if mine == owner:
            return None
        where = f"yours is at station {mine}" if mine is not None else "you are not at a station yet"
        return f"That is station {owner}'s equipment; {where}."

    def public_challenge(self) -> dict[str, Any] | None:
        """The challenge as clients see it: no answers."""
        if self.challenge is None:
            return None
        steps = []
        for step in self.challenge.steps:
            item: dict[str, Any] = {
                "id": step.id,
                "text": step.text,
                "points": step.points,
                "skill": step.skill,
                "requires": self.requires[step.id],
                "time_limit_seconds": step.time_limit_seconds,
                "highlight": self.challenge.highlight if step.highlight is None else step.highlight,
                "expected_seconds": step.expected_seconds,
                "hint_levels": ladder.defined(step.hints),  # the rungs it has (1 nudge, 2 specific, 3 bottom-out), not their text
            }
            if step.checkpoint is not None:
                question: dict[str, Any] = {"question": step.checkpoint.question}
                if step.checkpoint.choice is not None:
                    question["choices"] = step.checkpoint.choice.choices
                else:
                    assert step.checkpoint.number is not None
                    question["number"] = {"unit": step.checkpoint.number.unit}
                item["checkpoint"] = question
            steps.append(item)
        return {
            "id": self.challenge.id,
            "title": self.challenge.title,
            "description": self.challenge.description,
            "steps": steps,
            "mistake_penalty": self.challenge.mistake_penalty,
            "time_bonus": self.challenge.time_bonus.model_dump() if self.challenge.time_bonus else None,
            "badges": [badge.model_dump(exclude_defaults=True) for badge in self.challenge.badges],
            "hints": self.challenge.hints.model_dump(),
            "mastery": self.challenge.mastery,
        }

    def highlights(self, number: int) -> dict[str, list[str]]:
        """Per step, the objects its condition names at this station (what the HUD highlights)."""
        out: dict[str, list[str]] = {}
        for (station, step_id), trackers in self._step_trackers.items():
            if station == number and trackers and trackers[0].kind == "step":
                out[step_id] = [self.names[i] for i in dict.fromkeys(trackers[0].node.objects())]
        return out

    def snapshot(self) -> dict[str, Any]:
        """Stations, the challenge, every station's progress and every property, for ``welcome``."""
        return {
            "stations": {
                "declared": self.stations.declared,
                "assignment": self.stations.assignment,
                "group_size": self.stations.group_size if self.stations.declared else None,
                "list": [
                    {**station, "progress": self.progress[station["number"]].public(), "highlight": self.highlights(station["number"]),
                     "scores": {pid: scoring.total(self.progress[station["number"]].personal.get(pid, [])) for pid in station["members"]}}
                    for station in self.stations.public()
                ],
            },
            "challenge": self.public_challenge(),
            "properties": self.properties.public(self.names),
        }

    def at_rest(self) -> list[tuple[int, str | None]]:
        """Steps open from the start (index, None), and their mistakes (step index, mistake id),
        whose condition holds at the first station in the lab as it opens, untouched, once
        every timer has run out.

        Such a step would be done before anyone did anything (a mistake, counted against
        a student who did nothing), so the server refuses the package (spawn_check). A step
        that opens later may well hold at spawn ("turn the burner off"): it is not checked.
        """
        if self.challenge is None:
            return []
        self.tick(0.0)
        self.tick(cf.MAX_SECONDS + 1)  # rules' timers run out
        first = next(iter(self.stations.stations))
        found: list[tuple[int, str | None]] = []
        for index, step in enumerate(self.challenge.steps):
            if self.requires[step.id]:
                continue
            for tracker in self._step_trackers[(first, step.id)]:
                held = tracker.node.eval(self, 0.0)
                held = tracker.node.eval(self, cf.MAX_SECONDS + 1) or held
                if held:
                    found.append((index, tracker.mistake.id if tracker.mistake else None))
        return found

    def debug(self, number: int) -> list[dict[str, Any]]:
        """For a designer's preview: each step of a station with its condition (as scene.json
        says it) and whether it holds. For an open step that is the engine's own last
        evaluation; for a step not open yet, the condition is tried on a fresh copy against
        the room as it is now, timers counted as run out (the engine's state is not touched)."""
        assert self.challenge is not None
        progress = self.progress[number]
        resolve = _Resolver(self, number if self.stations.declared else None)
        out = []
        for step in self.challenge.steps:
            done = progress.done.get(step.id)
            trackers = self._step_trackers[(number, step.id)]
            holds: bool | None = None
            if done is not None:
                holds = True
            elif step.condition is not None and trackers[0].active and trackers[0].value is not None:
                holds = trackers[0].value
            elif step.condition is not None:  # not open, or opened since the last tick
                fresh = compile_condition(step.condition, resolve, number)
                holds = fresh.eval(self, 0.0) or fresh.eval(self, cf.MAX_SECONDS + 1)
            out.append(
                {
                    "id": step.id,
                    "text": step.text,
                    "condition": None if step.condition is None else step.condition.model_dump(by_alias=True, exclude_defaults=True),
                    "checkpoint": step.checkpoint is not None,
                    "requires": self.requires[step.id],
                    "open": step.id in progress.opened and done is None,
                    "done": done is not None,
                    "holds": holds,
                    "by": None if done is None else done["by"],
                    "points": None if done is None else done["points"],
                    "mistakes": progress.mistakes.get(step.id, 0),
                }
            )
        return out


def _names_any(condition: Any, names: set[str]) -> bool:
    """Whether a condition names any of ``names`` (a rule over template things runs per station)."""
    body = cf.body_of(condition)
    for field_name in ("object", "other", "target", "zone"):
        if getattr(body, field_name, None) in names:
            return True
    return any(_names_any(child, names) for child in cf.children(condition))
