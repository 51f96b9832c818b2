"""The live room: a sans-I/O state machine for one practical.

A Room takes inputs and returns outputs; it never awaits, never touches a
socket and never reads the clock (``now`` is passed in):

    room.handle(participant_id, message, now) -> list[Outgoing]
    room.tick(now)                            -> list[Outgoing]

That keeps unit tests deterministic, lets a recorded input log replay to the
same state, and keeps the hot path (pose in, tick out) small enough to profile.

Poses live in numpy structured arrays laid out exactly as they go on the wire
(protocol.POSE_RECORD). An incoming pose is copied as raw bytes into a staging
table; each tick validates every staged pose in one vectorised step, then
encodes what changed into one frame that is sent, unchanged, to every recipient.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from realtime import codec_v2 as v2
from realtime import protocol as p
from realtime.challenges import Challenges, Event, Refused
from realtime.interest import SPEAKING_LEVEL, Groups, Interest, PoseTick, full_frame, group
from realtime.learning.engine import Learning
from realtime.limits import RoomLimits, TokenBucket
from realtime.names import name_key, taken_refusal
from realtime.roles import Action, Role, allowed, refusal
from scenes.model import Scene

#: Participant id the server edge uses for actions a teacher took over REST
#: (already authorised there against the same role table).
SYSTEM = "@server"


class Enter(NamedTuple):
    """A participant's socket authenticated and wants in (new, or resuming)."""

    name: str
    role: Role
    last_seq: int | None = None
    #: the device key the join edge bound the participant's token to: set for a guest, who chose
    #: their name at POST /api/join; None for a teacher, a roster student, a preview or an older token
    device: str | None = None
    #: a course student's learner model: per skill, (P(known), opportunities so far); None for a guest
    skills: dict[str, tuple[float, int]] | None = None
    #: the protocol version the client asked for at join (the room answers with what it speaks)
    protocol: int = 1


class Disconnect(NamedTuple):
    """The participant's socket went away without a ``leave``; the resume window starts."""


class CallEnded(NamedTuple):
    """The media worker dropped the participant's voice call (failure, timeout, restart)."""


class Send(NamedTuple):
    """Data for one participant (``to``) or every connected participant (``to=None``).

    ``replaceable`` frames (pose ticks) may be skipped for a slow client, which
    then gets a full refresh; the others must be delivered in order. A tick's
    broadcast carries a PoseTick, which the fan-out cuts into each recipient's frame.
    """

    to: str | None
    data: str | bytes | PoseTick
    replaceable: bool = False


class Close(NamedTuple):
    """Close this participant's socket with a WebSocket close code and reason."""

    to: str
    code: int
    reason: str


class Media(NamedTuple):
    """An authorised voice request for the media worker (relayed by the runner's media hook).

    ``kind`` is "offer" (``sdp``; ``send`` says whether the caller may speak) or
    "close" (the participant hung up, left, dropped or was removed).
    """

    participant: str
    slot: int
    kind: str
    sdp: str = ""
    send: bool = False
    re: str | int | None = None


class Record(NamedTuple):
    """A challenge event for the node to store (results), under an id unique in the room:
    storing by id makes a replayed or repeated record count once."""

    id: str
    kind: str
    data: dict[str, Any]


Outgoing = Send | Close | Media | Record

#: One input as the room log keeps it: ("handle", now, participant, message), or
#: ("tick", now, None, the staged pose rows the tick accepted).
Input = tuple[str, float, str | None, Any]

_MESSAGE_ACTIONS: dict[type, Action] = {
    p.PoseFrame: Action.POSE,
    p.PoseFrameV2: Action.POSE,
    p.ObjectMove: Action.MOVE_OBJECT,
    p.Grab: Action.GRAB,
    p.Release: Action.RELEASE,
    p.Leave: Action.LEAVE,
    p.Kick: Action.KICK,
    p.Unkick: Action.UNKICK,
    p.Lock: Action.LOCK,
    p.Summon: Action.SUMMON,
    p.Freeze: Action.FREEZE,
    p.Reset: Action.RESET,
    p.End: Action.END,
    p.Broadcast: Action.BROADCAST,
    p.RtcOffer: Action.LISTEN,
    p.RtcClose: Action.LISTEN,
    p.Interact: Action.INTERACT,
    p.Answer: Action.ANSWER,
    p.ChooseStation: Action.CHOOSE_STATION,
    p.AssignStation: Action.ASSIGN_STATION,
    p.Hint: Action.HINT,
    p.PushHint: Action.PUSH_HINT,
}

#: ticks between walks of the participants for interest management's groups (Room._roles)
ROLES_EVERY = 10
#: entries Room.entered remembers; a hold whose entry was pushed out lapses after its 60 s, as any hold
ENTERED_KEPT = 512
#: the binary pose messages: never logged one by one (a tick's entry carries the poses it accepts)
_POSE_FRAMES = (p.PoseFrame, p.PoseFrameV2)

# quaternion columns inside a pose: head, left, right
_QUAT_COLUMNS = [[3, 4, 5, 6], [10, 11, 12, 13], [17, 18, 19, 20]]
_EYE_HEIGHT = 1.6


@dataclass(slots=True)
class Participant:
    id: str
    slot: int
    name: str
    role: Role
    connected: bool = True
    disconnected_at: float = 0.0
    held: set[int] = field(default_factory=set)
    self_muted: bool = False
    #: muted by a teacher; only a teacher lifts it
    forced_muted: bool = False
    #: has an open voice call at the media worker
    in_call: bool = False
    offers: TokenBucket | None = None
    interacts: TokenBucket | None = None
    #: the device key from the token (never sent to other participants)
    device: str | None = None
    #: the protocol version in force on this participant's socket (docs/protocol.md §3.3)
    protocol: int = 1

    @property
    def muted(self) -> bool:
        return self.self_muted or self.forced_muted

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slot": self.slot,
            "name": self.name,
            "role": str(self.role),
            "connected": self.connected,
            "muted": self.muted,
            "forced_muted": self.forced_muted,
        }


class Removed(NamedTuple):
    """Someone a teacher removed: kept out by participant id and by device until let back in."""

    id: str
    name: str
    role: Role
    device: str | None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": str(self.role)}


class Room:
    """One live practical: its participants, poses, objects and events."""

    def __init__(self, room_id: str, scene: Scene, limits: RoomLimits, record: bool = False, run: str = "") -> None:
        self.id = room_id
        self.scene = scene
        self.limits = limits
        self.locked = False
        self.frozen = False
        self.ended = False
        self.tick_no = 0
        self.seq = 0
        #: the latest time an input brought (the room never reads the clock)
        self.now = 0.0
        self.participants: dict[str, Participant] = {}
        #: people the teacher removed, by participant id, until a teacher lets them back in
        self.removed: dict[str, Removed] = {}
        #: the newest participant ids that entered, present or gone since: the join edge's
        #: name holds (server.admission) end when their token has entered, even if it left again
        self.entered: deque[str] = deque(maxlen=ENTERED_KEPT)
        #: teachers broadcasting their voice to every zone
        self.broadcasting: set[str] = set()
        self._log: deque[tuple[int, str]] = deque(maxlen=limits.resume_log_events)
        self._spawn_next = 0
        #: every input since the last drain, for the room log and replay; None unless recording.
        #: Pose frames are not kept one by one: a tick's entry carries the poses it accepts.
        self.inputs: list[Input] | None = [] if record else None

        capacity = 64
        self._poses = np.zeros(capacity, p.POSE_RECORD)
        self._poses["slot"] = np.arange(capacity)
        self._staging = self._poses.copy()
        self._staging_bytes = memoryview(self._staging.view(np.uint8).reshape(-1))
        self._pending = np.zeros(capacity, bool)
        #: protocol 2's pose frames since the last tick, dequantized at the tick into the staging table
        self._staged_v2 = v2.Staged(capacity)
        self._pose_dirty = np.zeros(capacity, bool)
        self._active = np.zeros(capacity, bool)
        self._slot_owner: list[str | None] = [None] * capacity

        self._object_ids = scene.object_index()
        n = len(scene.objects)
        self._objects = np.zeros(n, p.OBJECT_RECORD)
        self._objects["object"] = np.arange(n)
        self._reset_objects()
        self._object_dirty = np.zeros(n, bool)
        self._lease_until = np.zeros(n)
        self._lease = np.array([obj.lease or limits.grab_lease for obj in scene.objects])
        #: where protocol 2's quantized positions lie (realtime.codec_v2)
        self.grid = v2.Grid.for_scene(scene)
        self.interest = Interest(capacity, n, limits.tick_rate, limits.far_rate, limits.near_radius)
        self._roles_cache: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        #: the last tick's grouping, reused while nobody changes cell (realtime.interest.group)
        self._last_groups: Groups | None = None
        #: this run of the room (the node names each start): part of the ids of the room's records
        self.run = run
        self.challenges = Challenges(scene, limits.answer_rate, limits.answer_burst, run)
        self.learning = Learning(self.challenges, self.transform_of)

        self._handlers = self._handler_table()

    def _handler_table(self) -> dict[type, Callable[[Participant, Any, float], list[Outgoing]]]:
        return {
            p.ObjectMove: self._on_object_move,
            p.Grab: self._on_grab,
            p.Release: self._on_release,
            p.Leave: self._on_leave,
            p.Kick: self._on_kick,
            p.Unkick: self._on_unkick,
            p.Lock: self._on_lock,
            p.Summon: self._on_summon,
            p.Freeze: self._on_freeze,
            p.Reset: self._on_reset,
            p.End: self._on_end,
            p.Mute: self._on_mute,
            p.Broadcast: self._on_broadcast,
            p.RtcOffer: self._on_rtc_offer,
            p.RtcClose: self._on_rtc_close,
            p.Interact: self._on_interact,
            p.Answer: self._on_answer,
            p.ChooseStation: self._on_choose_station,
            p.AssignStation: self._on_assign_station,
            p.Hint: self._on_hint,
            p.PushHint: self._on_push_hint,
        }

    # ------------------------------------------------------------------ inputs

    def handle(self, participant_id: str, message: Any, now: float) -> list[Outgoing]:
        """Apply one input from one participant; return what to send and close."""
        if type(message) in _POSE_FRAMES:
            return self._pose(participant_id, message, now)
        if self.inputs is not None:
            self.inputs.append(("handle", now, participant_id, message))
        self.now = now
        if isinstance(message, Enter):
            return self._on_enter(participant_id, message, now)
        if participant_id == SYSTEM:
            actor = Participant(SYSTEM, -1, "server", Role.TEACHER)
        else:
            actor = self.participants.get(participant_id)
            if actor is None:
                return []
        if isinstance(message, Disconnect):
            return self._on_disconnect(actor, now)
        if isinstance(message, CallEnded):
            actor.in_call = False
            return []
        action = _MESSAGE_ACTIONS.get(type(message))
        if isinstance(message, p.Mute):
            action = Action.SPEAK if message.participant in (None, actor.id) else Action.MUTE_OTHERS
        if action is None:
            raise TypeError(f"Room cannot handle {type(message).__name__}")
        re = getattr(message, "id", None)
        if self.ended:
            return [self._error(actor, p.ErrorCode.SESSION_ENDED, "This practical has ended.", re)]
        if not allowed(actor.role, action):
            return [self._error(actor, p.ErrorCode.FORBIDDEN, refusal(actor.role, action), re)]
        return self._handlers[type(message)](actor, message, now)

    def tick(self, now: float) -> list[Outgoing]:
        """Advance the room one tick: validate staged poses, expire leases and
        resume windows, and hand what changed to interest management, which
        the fan-out asks for each recipient's frame (realtime.interest)."""
        refused = self._stage_v2_poses()
        if self.inputs is not None:
            self.inputs.append(("tick", now, None, self.staged_poses()))
        self.now = now
        self.tick_no += 1
        out = refused + self._accept_staged_poses()
        out += self._expire(now)
        poses = np.flatnonzero(self._pose_dirty)
        objects = np.flatnonzero(self._object_dirty)
        out += self._evaluate(now, poses, objects)
        out += self._challenge_events(self.learning.tick(now))
        self.interest.changed(poses, objects)
        self._pose_dirty[poses] = False
        self._object_dirty[objects] = False
        due_poses, due_objects, speaking = self.interest.due(self.tick_no, self._active, now)
        if any(mask.any() for mask in due_poses.values()) or any(mask.any() for mask in due_objects.values()):
            tick = PoseTick(
                self.tick_no, self.seq, self._poses, self._objects, due_poses, due_objects,
                self._groups(speaking), self.interest.far_every, self.grid,
            )
            out.append(Send(None, tick, replaceable=True))
        return out

    def _groups(self, speaking: np.ndarray) -> Groups:
        """Who is near whom this tick: stations, floor cells, teachers and speakers."""
        stations, teachers, everyone = self._roles()
        heads = self._poses["pose"][:, 0:3]
        self._last_groups = group(heads, self._active, stations, everyone, teachers | speaking, self.limits.near_radius, self._last_groups)
        return self._last_groups

    def _roles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per slot: station (-1: none), teacher, receives everyone. Walking every participant
        each tick would cost more than the rest of the grouping, so it is kept and walked again
        when someone comes or goes and every ROLES_EVERY ticks (a student moved to another
        station is grouped there within a third of a second)."""
        key = (len(self.participants), len(self._active))
        if self._roles_cache is not None and self._roles_cache[0] == key and self.tick_no % ROLES_EVERY:
            return self._roles_cache[1]
        capacity = len(self._active)
        stations = np.full(capacity, -1, np.int64)
        teachers = np.zeros(capacity, bool)
        everyone = np.zeros(capacity, bool)
        # a lab without declared stations puts everyone at one: that is no reason to be near
        station_of = self.challenges.station_of if self.challenges.stations.declared else lambda pid: None
        for part in self.participants.values():
            station = station_of(part.id)
            if station is not None:
                stations[part.slot] = station
            if part.role == Role.TEACHER:
                teachers[part.slot] = True
            if part.role != Role.STUDENT:
                everyone[part.slot] = True
        self._roles_cache = (key, (stations, teachers, everyone))
        return stations, teachers, everyone

    def staged_poses(self) -> bytes:
        """The pose records waiting for the next tick, as raw POSE_RECORD rows (slot included):
        what a tick's log entry carries, since a tick keeps only each slot's latest pose."""
        return self._staging[self._pending].tobytes()

    def restage(self, staged: bytes) -> None:
        """Put back the poses a logged tick accepted (replay): exactly those slots are pending."""
        rows = np.frombuffer(staged, p.POSE_RECORD)
        self._pending[:] = False
        self._staging[rows["slot"]] = rows
        self._pending[rows["slot"]] = True

    def __getstate__(self) -> dict[str, Any]:
        """A snapshot's view of the room (realtime.log.snapshot): views and bound handlers are rebuilt."""
        state = self.__dict__.copy()
        for derived in ("_staging_bytes", "_handlers", "inputs", "_last_groups"):
            del state[derived]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._staging_bytes = memoryview(self._staging.view(np.uint8).reshape(-1))
        self._handlers = self._handler_table()
        self.inputs = []
        self._last_groups = None
        if "entered" not in state:  # a snapshot from before the record of entries: holds lapse by time alone
            self.entered = deque(maxlen=ENTERED_KEPT)
        if "interest" not in state:  # a snapshot from before protocol 2 (a rolling upgrade): what it adds starts fresh
            capacity = len(self._active)
            self.grid = v2.Grid.for_scene(self.scene)
            self.interest = Interest(capacity, len(self._objects), self.limits.tick_rate, self.limits.far_rate, self.limits.near_radius)
            self._staged_v2 = v2.Staged(capacity)
            self._roles_cache = None
            for part in self.participants.values():
                part.protocol = 1

    # ------------------------------------------------------------------ reads

    def full_frame(self, version: int = 1) -> bytes:
        """Every visible pose and every object in protocol ``version``, for a client that joined or missed frames."""
        return full_frame(self.tick_no, self.seq, self._poses[self._active], self._objects, version, self.grid)

    def snapshot(self) -> dict[str, Any]:
        """The room's state as JSON, sent in ``welcome``."""
        slots = self._slot_owner
        return {
            "room": self.id,
            "scene": {
                "id": self.scene.id,
                "version": self.scene.version,
                "title": self.scene.title,
                "glb_url": self.scene.glb_url,
                "glb_phone_url": self.scene.glb_phone_url,
                "zones": [zone.public() for zone in self.scene.zones],
                "environment": self.scene.environment,
            },
            "tick": self.tick_no,
            "seq": self.seq,
            "now": self.now,
            "locked": self.locked,
            "frozen": self.frozen,
            "broadcast": sorted(self.broadcasting),
            "participants": [part.public() for part in self.participants.values()],
            "removed": [gone.public() for gone in self.removed.values()],
            "objects": [
                {
                    "id": obj.id,
                    "index": i,
                    "title": obj.title,
                    "interactable": obj.interactable,
                    "lease": float(self._lease[i]),
                    "holder": None if self._objects["holder"][i] == p.NO_HOLDER else slots[self._objects["holder"][i]],
                    "transform": [round(float(v), 6) for v in self._objects["transform"][i]],
                    "station": obj.station,
                    "properties": list(obj.properties),
                    "snap_points": [{"id": ident, "position": list(pos), "rotation": list(rot)} for ident, pos, rot in obj.snap_points],
                }
                for i, obj in enumerate(self.scene.objects)
            ],
            **self.challenges.snapshot(),
            "hints": self.learning.snapshot(),
        }

    def holder_of(self, object_id: str) -> str | None:
        """Participant id holding an object, if any."""
        slot = int(self._objects["holder"][self._object_ids[object_id]])
        return None if slot == p.NO_HOLDER else self._slot_owner[slot]

    def pose_of(self, participant_id: str) -> np.ndarray:
        """The accepted pose (21 floats) of a participant."""
        return self._poses["pose"][self.participants[participant_id].slot].copy()

    def head_poses(self, slots: list[int]) -> np.ndarray:
        """Head position and quaternion (N, 7) of the given slots, for the voice mix."""
        return self._poses["pose"][slots, 0:7]

    def transform_of(self, object_id: str) -> np.ndarray:
        return self._objects["transform"][self._object_ids[object_id]].copy()

    def voice_levels(self, levels: dict[str, float]) -> list[Outgoing]:
        """The media worker's speaking levels, sent to everyone as ``voice_levels``.

        The room's mute state wins over the worker's: the worker learns of a mute one
        pose tick later, and a client that has seen a ``muted`` event must not then
        see that participant speaking. Participants who have left are left out.
        """
        shown = {
            pid: 0.0 if self.participants[pid].muted else level
            for pid, level in levels.items()
            if pid in self.participants
        }
        self.interest.heard([self.participants[pid].slot for pid, level in shown.items() if level > SPEAKING_LEVEL], self.now)
        return [Send(None, p.dumps({"type": "voice_levels", "levels": shown}))] if shown else []

    def refusal(self, participant_id: str | None, device: str | None) -> str | None:
        """The sentence refusing entry to a participant id or device the teacher removed, else None."""
        for gone in self.removed.values():
            if gone.id == participant_id or (device is not None and gone.device == device):
                return "The teacher removed you from this practical; ask them to let you back in, then try again."
        return None

    def named(self, name: str) -> Participant | None:
        """The participant whose display name reads the same as ``name`` (realtime.names.name_key), if any."""
        key = name_key(name)
        return next((part for part in self.participants.values() if name_key(part.name) == key), None)

    def count(self) -> int:
        """Participants counted against the room cap (teachers are not)."""
        return sum(1 for part in self.participants.values() if part.role != Role.TEACHER)

    # ------------------------------------------------------------------ helpers

    def _event(self, kind: str, **fields: Any) -> Send:
        """A sequenced broadcast event, kept in the resume log."""
        self.seq += 1
        text = p.dumps({"type": kind, "seq": self.seq, **fields})
        self._log.append((self.seq, text))
        return Send(None, text)

    def _error(self, actor: Participant, code: p.ErrorCode, message: str, re: str | int | None = None) -> Send:
        return Send(actor.id, p.dumps(p.error(code, message, re)))

    def _reset_objects(self) -> None:
        self._objects["holder"] = p.NO_HOLDER
        self._objects["transform"] = [obj.transform for obj in self.scene.objects] or np.zeros((0, 7))

    def _grow(self) -> None:
        old = len(self._poses)
        new = old * 2
        if new > p.NO_HOLDER:
            raise OverflowError("Room has no free slot")
        poses = np.zeros(new, p.POSE_RECORD)
        poses[:old] = self._poses
        poses["slot"][old:] = np.arange(old, new)
        self._poses = poses
        staging = poses.copy()
        staging[:old] = self._staging  # keep poses received but not yet validated
        self._staging = staging
        self._staging_bytes = memoryview(self._staging.view(np.uint8).reshape(-1))
        for name in ("_pending", "_pose_dirty", "_active"):
            grown = np.zeros(new, bool)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        self._slot_owner.extend([None] * old)
        self.interest.grow(new)
        self._staged_v2.grow(new)

    def _free_slot(self) -> int:
        try:
            return self._slot_owner.index(None)
        except ValueError:
            self._grow()
            return self._slot_owner.index(None)

    def _spawn_pose(self, at: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """A standing pose at ``at`` (x, y, z, yaw degrees) or the scene's next spawn point."""
        if at is None:
            at = self.scene.spawn_points[self._spawn_next % len(self.scene.spawn_points)]
            self._spawn_next += 1
        x, y, z, yaw = at
        half = math.radians(yaw) / 2
        facing = (0.0, math.sin(half), 0.0, math.cos(half))  # turned about y, the up axis
        sin, cos = math.sin(2 * half), math.cos(2 * half)
        pose = np.zeros(p.POSE_FLOATS, np.float32)
        pose[0:7] = (x, y + _EYE_HEIGHT, z, *facing)
        for hand, side in ((7, -0.2), (14, 0.2)):  # hands a little ahead (-z) and to each side
            pose[hand : hand + 7] = (x + side * cos - 0.25 * sin, y + 1.1, z - side * sin - 0.25 * cos, *facing)
        return pose

    def _release(self, index: int, reason: str) -> Send:
        slot = int(self._objects["holder"][index])
        self._objects["holder"][index] = p.NO_HOLDER
        self._object_dirty[index] = True
        holder = self._slot_owner[slot]
        if holder in self.participants:
            self.participants[holder].held.discard(index)
        return self._event(
            "released",
            object=self.scene.objects[index].id,
            participant=holder,
            reason=reason,
            transform=[round(float(v), 6) for v in self._objects["transform"][index]],
        )

    def _remove(self, part: Participant, reason: str) -> list[Outgoing]:
        out: list[Outgoing] = [self._release(i, reason) for i in sorted(part.held)]
        out += self._hang_up(part)
        if part.id in self.broadcasting:
            self.broadcasting.discard(part.id)
            out.append(self._event("broadcast", on=False, by=part.id))
        del self.participants[part.id]
        self._slot_owner[part.slot] = None
        self._active[part.slot] = False
        self._pending[part.slot] = False
        self._staged_v2.pending[part.slot] = False
        self._pose_dirty[part.slot] = False
        out.append(self._event("left", participant=part.id, reason=reason))
        if part.role == Role.STUDENT:  # stored, so the learning record has "left" beside "joined" (xAPI)
            out.append(Record(f"left:{self.run}:{part.id}:{self.seq}", "left", {"participant": part.id, "reason": reason, "t": self.now}))
        out += self._challenge_events(self.challenges.leave(part.id, self.now))
        return out

    def _challenge_events(self, events: list[Event]) -> list[Outgoing]:
        """The engines' events (with what the learner model makes of them) as sequenced room
        events, and records for the node to store."""
        return self._sequenced(self.learning.observe(events, self.now))

    def _sequenced(self, events: list[Event]) -> list[Outgoing]:
        """Events the learner model has seen, as sequenced room events and records."""
        out: list[Outgoing] = []
        for event in events:
            if event.public:
                out.append(self._event(event.kind, **event.fields))
            if event.record is not None:
                out.append(Record(event.record, event.kind, {**event.fields, **(event.private or {})}))
        return out

    def _evaluate(self, now: float, poses: np.ndarray, objects: np.ndarray) -> list[Outgoing]:
        """Tell the challenge engine what changed this tick and let it evaluate."""
        engine = self.challenges
        if len(objects) and engine.watching:  # a lab with nothing to watch (no rules, no step conditions) skips this
            holders = self._objects["holder"][objects].tolist()
            owners = self._slot_owner
            engine.moved(objects.tolist(), self._objects["transform"][objects].tolist(), [None if h == p.NO_HOLDER else owners[h] for h in holders])
        if len(poses) and engine.watches_members:
            heads = self._poses["pose"][poses, 0:3].tolist()
            engine.walked({pid: tuple(head) for pid, head in zip((self._slot_owner[s] for s in poses.tolist()), heads) if pid is not None})
        return self._challenge_events(engine.tick(now))

    def _refused(self, part: Participant, refused: Refused, re: str | int | None) -> list[Outgoing]:
        retry_after = getattr(refused, "retry_after", None)
        return [Send(part.id, p.dumps(p.error(p.ErrorCode(refused.code), refused.message, re, retry_after)))]

    def _welcome(self, part: Participant, resumed: bool, last_seq: int | None) -> list[Outgoing]:
        replay: list[tuple[int, str]] | None = None
        if resumed and last_seq is not None and last_seq <= self.seq:
            oldest = self._log[0][0] if self._log else self.seq + 1
            if last_seq + 1 >= oldest:
                replay = [item for item in self._log if item[0] > last_seq]
        welcome: dict[str, Any] = {
            "type": "welcome",
            "protocol": part.protocol,
            "grid": self.grid.public(),
            "participant": part.public(),
            "resumed": resumed,
            "seq": self.seq,
            "tick_rate": self.limits.tick_rate,
            "limits": self.limits.public(),
            "held": [self.scene.objects[i].id for i in sorted(part.held)],
        }
        if replay is None:
            welcome["snapshot"] = self.snapshot()
        else:
            welcome["replayed"] = len(replay)
        out: list[Outgoing] = [Send(part.id, p.dumps(welcome))]
        out += [Send(part.id, text) for _, text in replay or ()]
        out.append(Send(part.id, self.full_frame(part.protocol), replaceable=True))
        return out

    # ------------------------------------------------------------------ handlers

    def _on_enter(self, pid: str, msg: Enter, now: float) -> list[Outgoing]:
        if self.ended:
            return [
                Send(pid, p.dumps(p.error(p.ErrorCode.SESSION_ENDED, "This practical has ended."))),
                Close(pid, p.CloseCode.SESSION_ENDED, "practical ended"),
            ]
        removed = self.refusal(pid, msg.device)
        if removed is not None:
            return [
                Send(pid, p.dumps(p.error(p.ErrorCode.FORBIDDEN, removed))),
                Close(pid, p.CloseCode.KICKED, "removed by the teacher"),
            ]
        part = self.participants.get(pid)
        if part is not None:  # reconnect within the resume window keeps identity and holds
            part.protocol = min(msg.protocol, p.PROTOCOL_VERSION)
            was_connected = part.connected
            part.connected = True
            for index in part.held:
                self._lease_until[index] = now + self._lease[index]
            out = self._welcome(part, resumed=True, last_seq=msg.last_seq)
            if not was_connected:
                out.append(self._event("presence", participant=pid, connected=True))
            return out
        # A guest's name was unique when the join edge issued the token, but the token may enter later
        # (after the edge's hold lapsed, or after a leave or kick freed the name for someone else).
        taken = self.named(msg.name) if msg.device is not None else None
        if taken is not None:
            return [
                Send(pid, p.dumps(p.error(p.ErrorCode.UNAUTHORIZED, f"{taken_refusal(taken.name)} Join again with the join code and the new name."))),
                Close(pid, p.CloseCode.UNAUTHORIZED, "name in use"),
            ]
        if msg.role != Role.TEACHER:
            if self.locked:
                return [
                    Send(pid, p.dumps(p.error(p.ErrorCode.ROOM_LOCKED, "The teacher has locked this practical."))),
                    Close(pid, p.CloseCode.ROOM_LOCKED, "practical locked"),
                ]
            if self.count() >= self.limits.room_cap:
                return [
                    Send(pid, p.dumps(p.error(p.ErrorCode.ROOM_FULL, f"This practical is full ({self.limits.room_cap} places)."))),
                    Close(pid, p.CloseCode.ROOM_FULL, "practical full"),
                ]
        slot = self._free_slot()
        part = Participant(pid, slot, msg.name, msg.role, device=msg.device, protocol=min(msg.protocol, p.PROTOCOL_VERSION))
        self.participants[pid] = part
        self.entered.append(pid)
        self._slot_owner[slot] = pid
        placed: list[Event] = []
        spawn = None
        if msg.role == Role.STUDENT:
            self.learning.enter(pid, msg.skills)
            placed, spawn = self.challenges.join(pid, msg.name, now)
        if msg.role != Role.OBSERVER:
            self._poses["pose"][slot] = self._spawn_pose(spawn)  # at their station, else the scene's next spawn point
            self._poses["flags"][slot] = 0
            self._poses["stamp"][slot] = 0
            self._active[slot] = True
            self._pose_dirty[slot] = True
        # the learner model sees the placement first: the snapshot reflects it (§5.1), hints included
        observed = self.learning.observe(placed, now)
        joined = self._event("joined", participant=part.public())
        return [*self._welcome(part, resumed=False, last_seq=None), joined, *self._sequenced(observed)]

    def _on_disconnect(self, part: Participant, now: float) -> list[Outgoing]:
        if not part.connected:
            return []
        part.connected = False
        part.disconnected_at = now
        # the call goes with the socket: a resuming client offers again
        return [*self._hang_up(part), self._event("presence", participant=part.id, connected=False)]

    def _hang_up(self, part: Participant) -> list[Outgoing]:
        if not part.in_call:
            return []
        part.in_call = False
        return [Media(part.id, part.slot, "close")]

    def _pose(self, participant_id: str, message: p.PoseFrame | p.PoseFrameV2, now: float) -> list[Outgoing]:
        """handle() for a pose frame, thirty a second from everyone: the same checks in the same
        order (who sends it, an ended room, the role table), without the general dispatch. A pose
        is not logged as an input: the tick's entry carries the poses it accepts."""
        self.now = now
        actor = self.participants.get(participant_id)
        if actor is None:
            return []
        if self.ended:
            return [self._error(actor, p.ErrorCode.SESSION_ENDED, "This practical has ended.")]
        if not allowed(actor.role, Action.POSE):
            return [self._error(actor, p.ErrorCode.FORBIDDEN, refusal(actor.role, Action.POSE))]
        if type(message) is p.PoseFrameV2:
            return self._on_pose_v2(actor, message, now)
        return self._on_pose(actor, message, now)

    def _on_pose(self, part: Participant, msg: p.PoseFrame, now: float) -> list[Outgoing]:
        # Hot path: copy the bytes; validation happens for all staged poses at tick.
        base = part.slot * p.POSE_RECORD.itemsize
        data = msg.data
        self._staging_bytes[base + 2] = data[1]
        self._staging_bytes[base + 4 : base + p.POSE_RECORD.itemsize] = data[4:]
        self._pending[part.slot] = True
        if self._staged_v2.used:  # the newest frame wins, whichever version it was
            self._staged_v2.pending[part.slot] = False
        return []

    def _on_pose_v2(self, part: Participant, msg: p.PoseFrameV2, now: float) -> list[Outgoing]:
        # Hot path as for version 1: copy the bytes; the tick dequantizes every staged one at once.
        self._staged_v2.put(part.slot, msg.data)
        self._pending[part.slot] = False  # the newest frame wins, whichever version it was
        return []

    def _stage_v2_poses(self) -> list[Outgoing]:
        """Protocol 2's staged poses as the floats a version 1 frame would carry, so validation,
        the room log and replay see one kind of pose; a rotation no encoder makes is refused."""
        slots, rows, ok = self._staged_v2.take(self.grid)
        if not len(slots):
            return []
        p.records(self._staging)[slots[ok]] = p.records(rows)[ok]
        self._pending[slots[ok]] = True
        owners = [self._slot_owner[slot] for slot in slots[~ok]]
        return [Send(owner, p.dumps(p.error(p.ErrorCode.BAD_POSE, v2.BAD_ROTATION))) for owner in owners if owner is not None]

    def _accept_staged_poses(self) -> list[Outgoing]:
        slots = np.flatnonzero(self._pending)
        if not len(slots):
            return []
        self._pending[slots] = False
        staged = p.records(self._staging)[slots].view(p.POSE_RECORD)
        pose = staged["pose"]
        ok = np.isfinite(pose).all(axis=1) & (np.abs(pose) <= p.MAX_COORDINATE).all(axis=1)
        low, high = p.QUAT_NORM2_RANGE
        for cols in _QUAT_COLUMNS:
            norm = np.einsum("ij,ij->i", pose[:, cols], pose[:, cols])
            ok &= (norm > low) & (norm < high)
        good = slots[ok]
        p.records(self._poses)[good] = p.records(staged)[ok]
        self._pose_dirty[good] = True
        out: list[Outgoing] = []
        for slot in slots[~ok]:
            owner = self._slot_owner[slot]
            if owner is not None:
                out.append(
                    Send(
                        owner,
                        p.dumps(
                            p.error(
                                p.ErrorCode.BAD_POSE,
                                "Pose refused: every value must be finite and within "
                                f"{p.MAX_COORDINATE:g} m, and each rotation a unit quaternion.",
                            )
                        ),
                    )
                )
        return out

    def _object_index(self, part: Participant, object_id: str, re: str | int | None) -> int | Send:
        index = self._object_ids.get(object_id)
        if index is None:
            return self._error(part, p.ErrorCode.UNKNOWN_OBJECT, f"There is no object {object_id!r} in this lab.", re)
        return index

    def _on_object_move(self, part: Participant, msg: p.ObjectMove, now: float) -> list[Outgoing]:
        if msg.object_index >= len(self._objects):
            return [self._error(part, p.ErrorCode.UNKNOWN_OBJECT, f"There is no object with index {msg.object_index}.")]
        if self._objects["holder"][msg.object_index] != part.slot:
            obj = self.scene.objects[msg.object_index].id
            return [self._error(part, p.ErrorCode.NOT_HOLDER, f"You do not hold {obj!r}; grab it first.")]
        self._objects["transform"][msg.object_index] = msg.transform
        self._object_dirty[msg.object_index] = True
        self.challenges.touched(msg.object_index, part.id, now)
        self._lease_until[msg.object_index] = now + self._lease[msg.object_index]
        return []

    def _on_grab(self, part: Participant, msg: p.Grab, now: float) -> list[Outgoing]:
        index = self._object_index(part, msg.object, msg.id)
        if isinstance(index, Send):
            return [index]
        if not self.scene.objects[index].interactable:
            return [self._error(part, p.ErrorCode.NOT_INTERACTABLE, f"{msg.object!r} is fixed in place.", msg.id)]
        if self.frozen and part.role != Role.TEACHER:
            return [self._error(part, p.ErrorCode.FROZEN, "The teacher has paused interaction.", msg.id)]
        holder = int(self._objects["holder"][index])
        if holder == part.slot:
            self._lease_until[index] = now + self._lease[index]
            return []
        if holder != p.NO_HOLDER:
            return [self._held_by_other(part, msg.object, holder, msg.id)]
        elsewhere = self._elsewhere(part, index, msg.id)
        if elsewhere is not None:
            return [elsewhere]
        self.challenges.touched(index, part.id, now)
        self._objects["holder"][index] = part.slot
        self._object_dirty[index] = True
        self._lease_until[index] = now + self._lease[index]
        part.held.add(index)
        return [self._event("grabbed", object=msg.object, participant=part.id)]

    def _on_release(self, part: Participant, msg: p.Release, now: float) -> list[Outgoing]:
        index = self._object_index(part, msg.object, msg.id)
        if isinstance(index, Send):
            return [index]
        if index not in part.held:
            return [self._error(part, p.ErrorCode.NOT_HOLDER, f"You do not hold {msg.object!r}.", msg.id)]
        self.challenges.touched(index, part.id, now)
        return [self._release(index, "released")]

    def _elsewhere(self, part: Participant, index: int, re: str | int | None) -> Send | None:
        """The refusal for a student handling another station's equipment (teachers may touch anything)."""
        if part.role == Role.TEACHER:
            return None
        why = self.challenges.may_touch(part.id, index)
        return None if why is None else self._error(part, p.ErrorCode.WRONG_STATION, why, re)

    def _held_by_other(self, part: Participant, object_id: str, holder: int, re: str | int | None) -> Send:
        """``object_held``, naming the holder by participant id (``holder``) for clients and by
        display name in the sentence for people."""
        owner = self._slot_owner[holder] or ""
        refusal = p.error(p.ErrorCode.OBJECT_HELD, f"{object_id!r} is held by {self.participants[owner].name}.", re)
        return Send(part.id, p.dumps({**refusal, "holder": owner}))

    def _on_interact(self, part: Participant, msg: p.Interact, now: float) -> list[Outgoing]:
        index = self._object_index(part, msg.object, msg.id)
        if isinstance(index, Send):
            return [index]
        if self.frozen and part.role != Role.TEACHER:
            return [self._error(part, p.ErrorCode.FROZEN, "The teacher has paused interaction.", msg.id)]
        holder = int(self._objects["holder"][index])
        if holder not in (p.NO_HOLDER, part.slot):
            return [self._held_by_other(part, msg.object, holder, msg.id)]
        elsewhere = self._elsewhere(part, index, msg.id)
        if elsewhere is not None:
            return [elsewhere]
        if part.interacts is None:
            part.interacts = TokenBucket(self.limits.interact_rate, self.limits.interact_burst, now)
        if not part.interacts.take(now):
            return [self._error(part, p.ErrorCode.RATE_LIMITED, f"Too many interactions: at most {self.limits.interact_rate:g} a second.", msg.id)]
        try:
            return self._challenge_events(self.challenges.interact(part.id, index, msg.property, msg.value, now))
        except Refused as refused:
            return self._refused(part, refused, msg.id)

    def _on_answer(self, part: Participant, msg: p.Answer, now: float) -> list[Outgoing]:
        if self.frozen:
            return [self._error(part, p.ErrorCode.FROZEN, "The teacher has paused the practical; answer when it resumes.", msg.id)]
        try:
            return self._challenge_events(self.challenges.answer(part.id, msg.step, msg.value, now))
        except Refused as refused:
            return self._refused(part, refused, msg.id)

    def _on_hint(self, part: Participant, msg: p.Hint, now: float) -> list[Outgoing]:
        try:
            return self._challenge_events(self.learning.request(part.id, msg.step, now))
        except Refused as refused:
            return self._refused(part, refused, msg.id)

    def _on_push_hint(self, part: Participant, msg: p.PushHint, now: float) -> list[Outgoing]:
        who = getattr(msg.to, "participant", None)
        if who is not None and who not in self.participants:
            return [self._error(part, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No participant {who!r} in this practical.", msg.id)]
        try:
            return self._challenge_events(self.learning.push(part.id, now, msg.level, msg.text, who, getattr(msg.to, "station", None)))
        except Refused as refused:
            return self._refused(part, refused, msg.id)

    def _on_choose_station(self, part: Participant, msg: p.ChooseStation, now: float) -> list[Outgoing]:
        if self.challenges.stations.assignment != "choose":
            who = "the teacher assigns them" if self.challenges.stations.assignment == "teacher" else "the server assigns them"
            return [self._error(part, p.ErrorCode.FORBIDDEN, f"Stations are not chosen in this practical: {who}.", msg.id)]
        return self._move_to_station(part, part, msg.station, now, msg.id)

    def _on_assign_station(self, part: Participant, msg: p.AssignStation, now: float) -> list[Outgoing]:
        target = self.participants.get(msg.participant)
        if target is None or target.role != Role.STUDENT:
            return [self._error(part, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No student {msg.participant!r} in this practical.", msg.id)]
        return self._move_to_station(part, target, msg.station, now, msg.id)

    def _move_to_station(self, part: Participant, target: Participant, station: int | None, now: float, re: str | int | None) -> list[Outgoing]:
        try:
            events, _ = self.challenges.assign(target.id, target.name, station, now)
        except Refused as refused:
            return self._refused(part, refused, re)
        # what they held belongs to the station they left
        out: list[Outgoing] = [self._release(i, "moved") for i in sorted(target.held) if self.challenges.may_touch(target.id, i)]
        return out + self._challenge_events(events)

    def _on_leave(self, part: Participant, msg: p.Leave, now: float) -> list[Outgoing]:
        return [*self._remove(part, "left"), Close(part.id, p.CloseCode.LEFT, "left the practical")]

    def _on_kick(self, part: Participant, msg: p.Kick, now: float) -> list[Outgoing]:
        target = self.participants.get(msg.participant)
        if target is None:
            return [self._error(part, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No participant {msg.participant!r}.", msg.id)]
        if target.id == part.id or target.role == Role.TEACHER:
            return [self._error(part, p.ErrorCode.FORBIDDEN, "Teachers cannot be removed from a practical.", msg.id)]
        self.removed[target.id] = Removed(target.id, target.name, target.role, target.device)
        return [*self._remove(target, "kicked"), Close(target.id, p.CloseCode.KICKED, "removed by the teacher")]

    def _on_unkick(self, part: Participant, msg: p.Unkick, now: float) -> list[Outgoing]:
        gone = self.removed.pop(msg.participant, None)
        if gone is None:
            return [self._error(part, p.ErrorCode.UNKNOWN_PARTICIPANT, f"Nobody {msg.participant!r} was removed from this practical.", msg.id)]
        return [self._event("unkicked", participant=gone.id, name=gone.name, by=part.id)]

    def _on_lock(self, part: Participant, msg: p.Lock, now: float) -> list[Outgoing]:
        if self.locked == msg.locked:
            return []
        self.locked = msg.locked
        return [self._event("locked", locked=msg.locked, by=part.id)]

    def _on_summon(self, part: Participant, msg: p.Summon, now: float) -> list[Outgoing]:
        if not all(abs(v) <= p.MAX_COORDINATE for v in msg.position):
            return [self._error(part, p.ErrorCode.INVALID_MESSAGE, "Summon point is out of range.", msg.id)]
        return [self._event("summoned", position=msg.position, by=part.id)]

    def _on_freeze(self, part: Participant, msg: p.Freeze, now: float) -> list[Outgoing]:
        if self.frozen == msg.frozen:
            return []
        self.frozen = msg.frozen
        self.learning.freeze(msg.frozen, now)
        out: list[Outgoing] = []
        if msg.frozen:
            for other in self.participants.values():
                if other.role != Role.TEACHER:
                    out += [self._release(i, "frozen") for i in sorted(other.held)]
        out.append(self._event("frozen", frozen=msg.frozen, by=part.id))
        return out

    def _on_reset(self, part: Participant, msg: p.Reset, now: float) -> list[Outgoing]:
        for other in self.participants.values():
            other.held.clear()
        self._reset_objects()
        self._object_dirty[:] = True
        out: list[Outgoing] = [self._event("reset", by=part.id, objects=self.snapshot()["objects"])]
        return out + self._challenge_events(self.challenges.reset())

    def _on_end(self, part: Participant, msg: p.End, now: float) -> list[Outgoing]:
        self.ended = True
        out: list[Outgoing] = [self._event("ended", by=part.id)]
        out += [Close(pid, p.CloseCode.SESSION_ENDED, "practical ended") for pid in self.participants]
        return out

    def _on_mute(self, part: Participant, msg: p.Mute, now: float) -> list[Outgoing]:
        target = self.participants.get(msg.participant or part.id)
        if target is None:
            return [self._error(part, p.ErrorCode.UNKNOWN_PARTICIPANT, f"No participant {msg.participant!r}.", msg.id)]
        before = (target.self_muted, target.forced_muted)
        if target is part:
            if not msg.muted and part.forced_muted and part.role != Role.TEACHER:
                return [self._error(part, p.ErrorCode.FORBIDDEN, "The teacher has muted you; ask them to unmute you.", msg.id)]
            part.self_muted = msg.muted
            if not msg.muted:
                part.forced_muted = False  # a teacher unmuting themselves lifts any mute
        else:
            target.forced_muted = msg.muted
        if (target.self_muted, target.forced_muted) == before:
            return []
        return [
            self._event("muted", participant=target.id, muted=target.muted, forced=target.forced_muted, by=part.id)
        ]

    def _on_broadcast(self, part: Participant, msg: p.Broadcast, now: float) -> list[Outgoing]:
        if (part.id in self.broadcasting) == msg.on:
            return []
        if msg.on:
            self.broadcasting.add(part.id)
        else:
            self.broadcasting.discard(part.id)
        return [self._event("broadcast", on=msg.on, by=part.id)]

    def _on_rtc_offer(self, part: Participant, msg: p.RtcOffer, now: float) -> list[Outgoing]:
        send = p.offer_sends_audio(msg.sdp)
        if send and not allowed(part.role, Action.SPEAK):
            return [
                self._error(
                    part, p.ErrorCode.FORBIDDEN, refusal(part.role, Action.SPEAK) + " Offer recvonly audio to listen.", msg.id
                )
            ]
        if part.offers is None:
            part.offers = TokenBucket(self.limits.rtc_offer_rate, self.limits.rtc_offer_burst, now)
        if not part.offers.take(now):
            return [
                self._error(
                    part,
                    p.ErrorCode.RATE_LIMITED,
                    f"Too many voice offers: at most {self.limits.rtc_offer_burst:g} at once, "
                    f"then one every {1 / self.limits.rtc_offer_rate:g} s.",
                    msg.id,
                )
            ]
        part.in_call = True
        return [Media(part.id, part.slot, "offer", msg.sdp, send, msg.id)]

    def _on_rtc_close(self, part: Participant, msg: p.RtcClose, now: float) -> list[Outgoing]:
        return self._hang_up(part)

    # ------------------------------------------------------------------ timers

    def _expire(self, now: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        for part in [q for q in self.participants.values() if not q.connected]:
            if now - part.disconnected_at >= self.limits.resume_window:
                out += self._remove(part, "timeout")
        held = np.flatnonzero((self._objects["holder"] != p.NO_HOLDER) & (self._lease_until <= now))
        for index in held:
            holder = self.participants.get(self._slot_owner[int(self._objects["holder"][index])] or "")
            if holder is not None and holder.connected:
                out.append(self._release(int(index), "lease"))
        return out


def replay(room_id: str, scene: Scene, limits: RoomLimits, inputs: list[Input], run: str = "") -> Room:
    """Rebuild a room from a recorded input log (session replay)."""
    room = Room(room_id, scene, limits, run=run)
    apply(room, inputs)
    return room


def apply(room: Room, inputs: list[Input]) -> list[Outgoing]:
    """Feed recorded inputs to a room, in order (replay, and recovery from snapshot + log tail);
    returns what the room answered, for a caller that keeps its records."""
    out: list[Outgoing] = []
    for kind, now, pid, payload in inputs:
        if kind == "tick":
            room.restage(payload)
            out += room.tick(now)
        else:
            assert pid is not None
            out += room.handle(pid, payload, now)
    return out
