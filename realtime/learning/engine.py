"""The learning engine of one room: the learner model, stuck detection and the hint ladder.

Sans-I/O like the room that owns it and the challenge engine it sits beside: it never
reads the clock or a store. The room hands it

* what each student is believed to know as they enter (``enter``: per skill, P(known)
  and the opportunities so far, from the course's records; nothing for a guest),
* every challenge event, as it happens (``observe``: placements, steps done, mistakes),
* the time, each tick (``tick``: the stations where members handled something, taken
  from the challenge engine, then the stations whose signals may have changed),
* a student's request for a hint (``request``) and a teacher's push (``push``),

and gets back events (realtime.challenges.Event), which it sends and stores as it does
the challenge engine's.

The learner model. Each student's belief per skill is Bayesian Knowledge Tracing
(realtime.learning.bkt), updated online on each *first attempt* at a step by that
student's group, the first of: the step done (correct), a mistake on it, or a hint at
it shown to them before it was done (incorrect: ``bkt.first_attempt_correct``). Each
update is O(1) and goes out as a record-only ``skill_attempt`` (id
``skill:<participant>:<step>``: a replay stores it once). Steps without a ``skill``
update nothing.

Stuck detection (realtime.learning.stuck) runs per station on its current step (the
first open step not done, in the challenge's order). A station whose flags change gets
a ``stuck`` event (the signals, with reasons), and ``unstuck`` when they clear (the step
done, activity again after ``idle``, the members gone).

The hint ladder (realtime.learning.ladder). While a station is flagged, each time its
cooldown is over the ladder climbs one rung by itself (``reason`` the first signal).
Fading: when every member had mastered the step's skill as they came to it, the
thresholds double and automatic hints stop at the nudge; requests and pushes are
unaffected. A hint is a
sequenced ``hint`` event stored as ``hint:<run>:<station>:<n>``; what it costs comes
off the station's score (and its members' own) as a mistake's penalty does, so a
``score`` event follows one that costs points.

Timing is computed minimally: each station has one due time (its next threshold or the
end of its cooldown) in a heap, and is looked at again only when that time comes or
something at the station changed (a member handling equipment only moves the station's
quiet time on, unless it is flagged: handling is the hot path). Every loop runs in a sorted order, so the same
inputs give the same events whatever the hash seed.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable, Sequence

from realtime.challenges.engine import Challenges, Event, Refused
from realtime.learning import bkt, ladder, stuck
from realtime.learning.ladder import FREE_TEXT, NUDGE, SPECIFIC, BOTTOM_OUT, Ladder
from scenes import challenge_format as cf
from scenes.quaternions import multiply, rotate

_DEFAULT = bkt.SkillParams()


class Cooldown(Refused):
    """A hint asked for before the station's cooldown is over; ``retry_after`` is the seconds left."""

    def __init__(self, seconds: float) -> None:
        super().__init__("hint_cooldown", f"The last hint was too recent: ask again in {math.ceil(seconds)} s.")
        self.retry_after = round(seconds, 3)


class Learning:
    def __init__(self, challenges: Challenges, transform_of: Callable[[str], Sequence[float]]) -> None:
        self.engine = challenges
        self.transform_of = transform_of
        self.challenge = challenges.challenge
        self.settings = self.challenge.hints if self.challenge else cf.HintSettings()
        s = self.settings
        self.thresholds = stuck.Thresholds(s.idle_seconds, s.slow_factor, s.repeat_mistakes, s.wheel_spinning_after)
        self.mastery = self.challenge.mastery if self.challenge else bkt.MASTERY
        self.params = {skill: bkt.SkillParams(**m.model_dump()) for skill, m in sorted(self.challenge.skills.items())} if self.challenge else {}
        self.steps: dict[str, tuple[int, cf.Step]] = {step.id: (i, step) for i, step in enumerate(self.challenge.steps)} if self.challenge else {}
        self.ladder = Ladder(s.cooldown_seconds)
        #: participant -> skill -> [P(known), opportunities]
        self.beliefs: dict[str, dict[str, list[Any]]] = {}
        #: (participant, step) whose first attempt has been counted -> P(known) of its skill before it
        self.attempted: dict[tuple[str, str], float] = {}
        self.names: dict[str, str] = {}
        #: participant -> their station, as the placements said
        self._where: dict[str, int] = {}
        #: station -> the last change there (a member's touch, a step, a mistake, an arrival)
        self.quiet: dict[int, float] = {}
        #: (station, step) -> mistake id -> times it was made
        self.made: dict[tuple[int, str], dict[str, list[float]]] = {}
        #: station -> (step, {signal key: signal}) while flagged
        self.flags: dict[int, tuple[str, dict[str, stuck.Signal]]] = {}
        #: station -> the fields of its last hint
        self.last: dict[int, dict[str, Any]] = {}
        #: step -> seconds it took the stations that did it, in the order they did (learns ``expected``)
        self.took: dict[str, list[float]] = {}
        self.frozen = False
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}
        self._dirty: set[int] = set()

    # ------------------------------------------------------------------ inputs

    def enter(self, participant: str, skills: dict[str, tuple[float, int]] | None) -> None:
        """A student entered: what the course's records believe they know (None: a guest, every skill at its prior).
        A student coming back to the same room keeps what the room has learnt of them since."""
        if participant in self.beliefs:
            return
        known: dict[str, list[Any]] = {}
        for skill, value in sorted((skills or {}).items()):
            try:
                p_known, count = float(value[0]), int(value[1])
            except (TypeError, ValueError, IndexError):
                continue
            if math.isfinite(p_known) and 0.0 <= p_known <= 1.0 and count >= 0:
                known[skill] = [p_known, count]
        self.beliefs[participant] = known

    def freeze(self, frozen: bool, now: float) -> None:
        """The teacher paused the lab: nobody is stuck while they cannot act, and the clock restarts when it resumes."""
        self.frozen = frozen
        if not frozen:
            for number in sorted(self.engine.progress):
                self._changed(number, now)

    def observe(self, events: list[Event], now: float) -> list[Event]:
        """The challenge engine's events, followed by what the learner model makes of them."""
        extra: list[Event] = []
        for event in events:
            fields = event.fields
            if event.kind == "station":
                pid, number = fields["participant"], fields["station"]
                old = self._where.pop(pid, None)
                if old is not None:
                    self._dirty.add(old)
                if number is not None:
                    self._where[pid] = number
                    self.names[pid] = (event.private or {}).get("name", self.names.get(pid, pid))
                    self._changed(number, now)
            elif event.kind == "challenge_started":
                # a first start finds nothing to forget; a restart leaves the last group's free
                # hints behind (a hint that cost points is progress, so there is none of those)
                self.ladder.start_over(fields["station"])
                self.last.pop(fields["station"], None)
                self._changed(fields["station"], fields["t"])
            elif event.kind in ("step_done", "mistake"):
                number, step, t = fields["station"], fields["step"], fields["t"]
                self._changed(number, t)
                if event.kind == "mistake":
                    self.made.setdefault((number, step), {}).setdefault(fields["mistake"], []).append(t)
                elif isinstance(fields.get("elapsed"), (int, float)):
                    self.took.setdefault(step, []).append(float(fields["elapsed"]))
                for pid in (event.private or {}).get("members", ()):
                    extra += self._attempt(pid, step, event.kind == "step_done", False, t)
        return events + extra if extra else events

    def tick(self, now: float) -> list[Event]:
        """Look again at the stations where something changed or a threshold or cooldown is due."""
        for number, t in self.engine.take_activity().items():
            if t > self.quiet.get(number, -math.inf):
                self.quiet[number] = t
            if number in self.flags:  # a flagged station may be idle no more; the others wait for their due time
                self._dirty.add(number)
        if self.frozen or self.challenge is None:
            return []
        due, self._dirty = self._dirty, set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, number = heapq.heappop(heap)
            if self._due.get(number) == when:
                del self._due[number]
                due.add(number)
        events: list[Event] = []
        for number in sorted(due):
            events += self._assess(number, now)
        return events

    def request(self, participant: str, step_id: str, now: float) -> list[Event]:
        """A student asks for the next hint of an open step at their station."""
        if self.challenge is None:
            raise Refused("unknown_step", "This practical has no challenge, so no hints.")
        number = self.engine.station_of(participant)
        if number is None:
            raise Refused("no_station", "You are not at a lab station yet.")
        found = self.steps.get(step_id)
        if found is None:
            raise Refused("unknown_step", f"There is no step {step_id!r} in this challenge.")
        step = found[1]
        progress = self.engine.progress[number]
        if step_id in progress.done or step_id not in progress.opened:
            raise Refused("step_not_open", f"That step is {'already done' if step_id in progress.done else 'not open yet'}.")
        levels = ladder.defined(step.hints)
        level = ladder.next_level(self.ladder.level(number, step_id), levels)
        if level is None:
            raise Refused("no_hint", "This step has no hints." if not levels else "You have had every hint this step has.")
        wait = self.ladder.wait(number, now)
        if wait > 0:
            raise Cooldown(wait)
        return self._show(number, step, level, "requested", participant, list(self.engine.members(number)), now)

    def push(self, by: str, now: float, level: int | None, text: str | None, participant: str | None = None, station: int | None = None) -> list[Event]:
        """A teacher's hint: a rung of the ladder (``level``: that rung, or the next the step has above
        it) or free text, to one participant, one station, or (neither given) every station's group."""
        if participant is not None:
            number = self.engine.station_of(participant)
            if number is None:
                raise Refused("no_station", f"{self.names.get(participant, participant)} is not at a lab station.")
            targets = [(number, [participant])]
        elif station is not None:
            if station not in self.engine.progress:
                raise Refused("unknown_station", f"There is no station {station} in this lab.")
            members = list(self.engine.members(station))
            if not members:
                raise Refused("no_station", f"Nobody works at station {station}.")
            targets = [(station, members)]
        else:
            targets = [(n, list(self.engine.members(n))) for n in sorted(self.engine.progress) if self.engine.members(n)]
        events: list[Event] = []
        refusal = Refused("no_station", "Nobody is at a lab station.")
        for number, to in targets:
            step = self._current(number)
            if text is not None:
                events += self._show(number, step, FREE_TEXT, "teacher", by, to, now, text)
                continue
            assert level is not None
            if step is None:
                refusal = Refused("step_not_open", f"Station {number} has no open step." if len(targets) == 1 else "No station has an open step.")
                continue
            rung = ladder.at_least(level, ladder.defined(step.hints))
            if rung is None:
                said = f"Step {self.steps[step.id][0] + 1} has no" if len(targets) == 1 else "No station's open step has a"
                refusal = Refused("no_hint", f"{said} hint at level {level} or above.")
                continue
            events += self._show(number, step, rung, "teacher", by, to, now)
        if not events:
            raise refusal
        return events

    # ------------------------------------------------------------------ reads

    def snapshot(self) -> dict[str, Any]:
        """Each station's hint levels, cooldown, current flags and last hint, for ``welcome``."""
        stations = []
        for number in sorted(self.engine.progress):
            flagged = self.flags.get(number)
            stations.append(
                {
                    "station": number,
                    "levels": self.ladder.public(number),
                    "cooldown_until": self.ladder.last[number] + self.ladder.cooldown if number in self.ladder.last else None,
                    "stuck": self._stuck_fields(number) if flagged else None,
                    "last": self.last.get(number),
                }
            )
        return {"stations": stations}

    def belief(self, participant: str, skill: str) -> tuple[float, int]:
        """P(known) and opportunities of a participant at a skill."""
        p_known, count = self._belief(participant, skill)
        return p_known, count

    # ------------------------------------------------------------------ the learner model

    def _belief(self, participant: str, skill: str) -> list[Any]:
        known = self.beliefs.setdefault(participant, {})
        belief = known.get(skill)
        if belief is None:
            belief = known[skill] = [self.params.get(skill, _DEFAULT).prior, 0]
        return belief

    def _mastered(self, participant: str, skill: str) -> bool:
        return bkt.mastered(self._belief(participant, skill)[0], self.mastery)

    def _attempt(self, participant: str, step_id: str, correct: bool, hinted: bool, t: float) -> list[Event]:
        """The first attempt of a participant at a step: update their belief in the step's skill."""
        if (participant, step_id) in self.attempted or step_id not in self.steps:
            return []
        skill = self.steps[step_id][1].skill
        if skill is None:
            self.attempted[(participant, step_id)] = math.nan
            return []
        belief = self._belief(participant, skill)
        self.attempted[(participant, step_id)] = belief[0]
        observed = bkt.first_attempt_correct(correct, hinted)
        belief[0] = bkt.update(belief[0], observed, self.params.get(skill, _DEFAULT))
        belief[1] += 1
        number = self._where.get(participant)
        if number is not None:
            self._dirty.add(number)
        fields = {
            "participant": participant, "skill": skill, "step": step_id, "correct": observed,
            "p_known": belief[0], "opportunities": belief[1], "mastered": bkt.mastered(belief[0], self.mastery), "t": t,
        }
        return [Event("skill_attempt", fields, f"skill:{participant}:{step_id}", public=False)]

    # ------------------------------------------------------------------ stuck detection

    def _changed(self, number: int, t: float) -> None:
        if t > self.quiet.get(number, -math.inf):
            self.quiet[number] = t
        self._dirty.add(number)

    def _current(self, number: int) -> cf.Step | None:
        if self.challenge is None:
            return None
        progress = self.engine.progress[number]
        return next((step for step in self.challenge.steps if step.id in progress.opened and step.id not in progress.done), None)

    def _faded(self, step: cf.Step, members: list[str]) -> bool:
        """Whether every member had mastered the step's skill as they came to the step (the
        hint that counts as their first attempt does not take its fading away)."""
        skill = step.skill
        if not self.settings.fading or skill is None:
            return False
        for pid in members:
            before = self.attempted.get((pid, step.id))
            if not bkt.mastered(self._belief(pid, skill)[0] if before is None else before, self.mastery):
                return False
        return True

    def _assess(self, number: int, now: float) -> list[Event]:
        members = list(self.engine.members(number))
        step = self._current(number) if members else None
        signals: list[stuck.Signal] = []
        due: list[float] = []
        faded = False
        if step is not None:
            faded = self._faded(step, members)
            th = self.thresholds.faded() if faded else self.thresholds
            opened = self.engine.progress[number].opened[step.id]
            label = f"step {self.steps[step.id][0] + 1}"
            quiet = max(self.quiet.get(number, -math.inf), opened)
            found = stuck.idle(quiet, now, th.idle_seconds, label)
            signals += [found] if found else []
            due += [] if found else [stuck.idle_due(quiet, th.idle_seconds)]
            expected = stuck.expected_seconds(step.expected_seconds, self.took.get(step.id, ()))
            found = stuck.slow(opened, now, expected, th.slow_factor, label)
            signals += [found] if found else []
            later = None if found else stuck.slow_due(opened, expected, th.slow_factor)
            due += [] if later is None else [later]
            signals += stuck.mistakes(self.made.get((number, step.id), {}), th.repeat_mistakes, label)
            if step.skill is not None:
                spinning = [(pid, self.names.get(pid, pid), self._belief(pid, step.skill)[1], self._mastered(pid, step.skill)) for pid in members]
                signals += stuck.wheel_spinning(spinning, th.wheel_spinning_after, step.skill, label, now)
        events = self._flag(number, step, signals)
        if signals and step is not None:
            cap = NUDGE if faded else BOTTOM_OUT
            levels = ladder.defined(step.hints)
            level = ladder.next_level(self.ladder.level(number, step.id), levels, cap)
            if level is not None and now >= self.ladder.ready_at(number):
                events += self._show(number, step, level, signals[0].signal, None, members, now)
                level = ladder.next_level(level, levels, cap)
            if level is not None:
                due.append(self.ladder.ready_at(number))
        if due:
            when = min(due)
            if self._due.get(number) != when:
                self._due[number] = when
                heapq.heappush(self._heap, (when, number))
        else:
            self._due.pop(number, None)
        return events

    def _flag(self, number: int, step: cf.Step | None, signals: list[stuck.Signal]) -> list[Event]:
        """``stuck`` when the station's set of signals changes, ``unstuck`` when it clears (or moves to another step)."""
        events: list[Event] = []
        old = self.flags.get(number)
        if old is not None and (not signals or step is None or old[0] != step.id):
            events.append(Event("unstuck", {"station": number, "step": old[0]}))
            del self.flags[number]
            old = None
        if not signals or step is None:
            return events
        kept = old[1] if old else {}
        now_flagged = {}
        for signal in signals:
            key = f"{signal.signal}:{signal.key}"
            now_flagged[key] = kept.get(key, signal)  # a flag keeps the reason and time it was raised with
        self.flags[number] = (step.id, now_flagged)
        if old is None or set(now_flagged) != set(kept):
            events.append(Event("stuck", self._stuck_fields(number)))
        return events

    def _stuck_fields(self, number: int) -> dict[str, Any]:
        step, signals = self.flags[number]
        flagged = list(signals.values())
        return {
            "station": number,
            "step": step,
            "participants": list(self.engine.members(number)),
            "level": stuck.level(flagged),
            "signals": [signal.public() for signal in flagged],
        }

    # ------------------------------------------------------------------ hints

    def _show(self, number: int, step: cf.Step | None, level: int, reason: str, by: str | None, to: list[str], now: float, free: str | None = None) -> list[Event]:
        highlight: list[str] = []
        demo: dict[str, Any] | None = None
        if level == FREE_TEXT:
            assert free is not None
            said = free
        else:
            assert step is not None and step.hints is not None
            hints = step.hints
            said = ladder.text(hints, level)
            if level >= SPECIFIC and hints.specific is not None:
                highlight = [self.engine.local_name(name, number) for name in hints.specific.highlight]
            if level == BOTTOM_OUT and hints.bottom_out is not None and hints.bottom_out.demo is not None:
                demo = self._demo(number, hints.bottom_out.demo)
        cost = ladder.cost(level, self.settings)
        step_id = step.id if step is not None else None
        count = self.ladder.shown(number, step_id, level, now)
        fields = {
            "station": number, "step": step_id, "level": level, "text": said, "highlight": highlight, "demo": demo,
            "cost": cost, "reason": reason, "by": by, "to": list(to), "t": now,
        }
        self.last[number] = fields
        self._dirty.add(number)
        skill = step.skill if step is not None else None
        events = [Event("hint", fields, f"hint:{self.engine.run}:{number}:{count}", {"members": list(to), "skill": skill})]
        if cost:
            events.append(self.engine.charge(number, cost, list(to)))
        if level != FREE_TEXT and step_id is not None:
            for pid in to:
                events += self._attempt(pid, step_id, False, True, now)
        return events

    def _demo(self, number: int, demo: cf.Demo) -> dict[str, Any]:
        """Where the demonstration's ghost goes: the target's snap point in the world (its
        position + rotate(its rotation, the snap point's), rotation theirs multiplied), the
        target's position, or a zone's centre (the ghost then keeps the object's rotation in the scene)."""
        engine = self.engine
        moved = engine.local_name(demo.object, number)
        target = engine.local_name(demo.target, number)
        rotation: Sequence[float] = engine.scene.objects[engine.index[moved]].transform[3:]
        if target in engine.index:
            transform = [float(v) for v in self.transform_of(target)]
            position: Sequence[float] = transform[:3]
            if demo.snap is not None:
                for ident, local, local_q in engine.scene.objects[engine.index[target]].snap_points:
                    if ident == demo.snap:
                        offset = rotate(transform[3:], local)
                        position = [transform[0] + offset[0], transform[1] + offset[1], transform[2] + offset[2]]
                        rotation = multiply(transform[3:], local_q)
                        break
        else:
            zone = next(z for z in engine.scene.zones if z.id == target)
            position = zone.center
        return {"object": moved, "to": [round(float(v), 6) for v in (*position, *rotation)]}
