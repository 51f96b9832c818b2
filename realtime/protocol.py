"""The wire protocol: every message a client and the server exchange on the room socket.

This module is the single home of the protocol. The server edge, the room engine,
the Python SDK, the benchmarks and docs/protocol.md all describe the same bytes, so
the binary layouts and the control-message models live here once.

Two kinds of frames travel on one WebSocket per participant:

* JSON text frames with a ``type`` field for control messages and events.
* Binary frames with fixed little-endian layouts for the high-rate data: a client's
  pose (head + two hands) and the transform of an object it holds; the server's
  per-tick delta of every pose and object that changed.

The binary record layouts are numpy structured dtypes so that the room can keep
its state in arrays of exactly the bytes it sends, and encode a tick for every
recipient with one ``tobytes()``.
"""

from __future__ import annotations

import json
import math
import struct
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError, model_validator, Discriminator, Tag

from scenes import bounded_json
from scenes.manifest import MAX_COORDINATE_M

#: The newest protocol version this server speaks; a client asks for one at ``join`` (1 if it
#: does not say) and the welcome names the version in force (docs/protocol.md §3.3).
PROTOCOL_VERSION = 2

# --------------------------------------------------------------------------- binary

#: Floats in a pose: head, left hand, right hand; each position (x, y, z) then
#: rotation quaternion (x, y, z, w). Metres, right-handed, y up (WebXR's frame).
POSE_FLOATS = 21
#: Floats in an object transform: position (x, y, z) then quaternion (x, y, z, w).
TRANSFORM_FLOATS = 7

#: Pose flags.
FLAG_LEFT_TRACKED = 0x01
FLAG_RIGHT_TRACKED = 0x02


class BinaryKind(IntEnum):
    """First byte of every binary frame."""

    POSE = 0x01  # client -> server: my pose
    OBJECT_MOVE = 0x02  # client -> server: transform of an object I hold
    POSE_V2 = 0x03  # client -> server: my pose, quantized (protocol 2, realtime.codec_v2)
    TICK = 0x10  # server -> client: what changed this tick (or everything, on refresh)
    TICK_V2 = 0x11  # server -> client: the same, quantized (protocol 2)


#: Client -> server pose: 92 bytes. ``stamp`` is the client's own clock in
#: milliseconds (wrapping u32); the server relays it untouched so receivers can
#: interpolate on the sender's timeline and measure latency.
CLIENT_POSE = np.dtype(
    [("kind", "u1"), ("flags", "u1"), ("reserved", "<u2"), ("stamp", "<u4"), ("pose", "<f4", (POSE_FLOATS,))]
)
#: Client -> server object move: 36 bytes.
CLIENT_OBJECT_MOVE = np.dtype(
    [("kind", "u1"), ("reserved", "u1"), ("object", "<u2"), ("stamp", "<u4"), ("transform", "<f4", (TRANSFORM_FLOATS,))]
)
#: Server -> client tick header: 16 bytes, followed by ``poses`` POSE_RECORDs then
#: ``objects`` OBJECT_RECORDs.
TICK_HEADER = np.dtype(
    [
        ("kind", "u1"),
        ("flags", "u1"),
        ("poses", "<u2"),
        ("objects", "<u2"),
        ("reserved", "<u2"),
        ("tick", "<u4"),
        ("event_seq", "<u4"),
    ]
)
#: One participant's pose inside a tick frame: 92 bytes. Bytes 4..92 are the same
#: bytes as bytes 4..92 of the CLIENT_POSE the participant sent.
POSE_RECORD = np.dtype(
    [("slot", "<u2"), ("flags", "u1"), ("reserved", "u1"), ("stamp", "<u4"), ("pose", "<f4", (POSE_FLOATS,))]
)
#: One object's state inside a tick frame: 32 bytes. ``holder`` is the holder's
#: slot, or NO_HOLDER.
OBJECT_RECORD = np.dtype([("object", "<u2"), ("holder", "<u2"), ("transform", "<f4", (TRANSFORM_FLOATS,))])
NO_HOLDER = 0xFFFF

#: Tick flag: this frame holds every pose and object (sent after join, resume, or
#: when the client missed frames), not only the changes.
TICK_FULL = 0x01

#: Largest magnitude accepted for any coordinate, in metres (scenes are held to the same bound).
MAX_COORDINATE = MAX_COORDINATE_M
#: A rotation is accepted as a unit quaternion when its squared norm is in this open range.
QUAT_NORM2_RANGE = (0.81, 1.21)

_TRANSFORM = struct.Struct("<7f")


class ProtocolError(Exception):
    """A message broke the protocol. ``code`` is machine-readable (see ErrorCode)."""

    def __init__(self, code: "ErrorCode", message: str, re: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re


class PoseFrame(NamedTuple):
    """A client's pose frame, kept as its raw bytes: the room copies them as they are."""

    data: bytes


class PoseFrameV2(NamedTuple):
    """A client's quantized pose frame (protocol 2), checked; the room dequantizes it on its grid."""

    data: bytes


class ObjectMove(NamedTuple):
    """A client's move of an object it holds."""

    object_index: int
    transform: tuple[float, ...]


def records(rows: np.ndarray) -> np.ndarray:
    """Structured rows seen as opaque records of their size, to gather and scatter whole rows:
    numpy copies a structured row field by field, several times slower than one block."""
    return rows.view(np.dtype((np.void, rows.dtype.itemsize)))


def decode_binary(data: bytes) -> PoseFrame | PoseFrameV2 | ObjectMove:
    """Check a client's binary frame and return it as a message for the room."""
    if not data:
        raise ProtocolError(ErrorCode.BAD_BINARY, "Empty binary frame.")
    kind = data[0]
    if kind == BinaryKind.POSE:
        if len(data) != CLIENT_POSE.itemsize:
            raise ProtocolError(
                ErrorCode.BAD_BINARY,
                f"A pose frame is {CLIENT_POSE.itemsize} bytes; this one is {len(data)}.",
            )
        return PoseFrame(data)
    if kind == BinaryKind.OBJECT_MOVE:
        if len(data) != CLIENT_OBJECT_MOVE.itemsize:
            raise ProtocolError(
                ErrorCode.BAD_BINARY,
                f"An object-move frame is {CLIENT_OBJECT_MOVE.itemsize} bytes; this one is {len(data)}.",
            )
        (obj,) = struct.unpack_from("<H", data, 2)
        transform = _TRANSFORM.unpack_from(data, 8)
        norm2 = sum(v * v for v in transform[3:])
        if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in transform) or not (
            QUAT_NORM2_RANGE[0] < norm2 < QUAT_NORM2_RANGE[1]
        ):
            raise ProtocolError(
                ErrorCode.BAD_POSE,
                f"Object transform refused: values must be finite and within {MAX_COORDINATE:g} m, "
                "and the rotation a unit quaternion.",
            )
        return ObjectMove(obj, transform)
    if kind == BinaryKind.POSE_V2:
        _check_pose_v2(data)
        return PoseFrameV2(data)
    raise ProtocolError(ErrorCode.BAD_BINARY, f"Unknown binary frame kind 0x{kind:02x}.")


def _check_pose_v2(data: bytes) -> None:
    """realtime.codec_v2.check_client_pose, imported on first use (codec_v2 builds on this module)."""
    global _check_pose_v2
    from realtime.codec_v2 import check_client_pose

    _check_pose_v2 = check_client_pose
    check_client_pose(data)


def encode_pose(
    pose: "np.ndarray | list[float]", stamp: int = 0, flags: int = FLAG_LEFT_TRACKED | FLAG_RIGHT_TRACKED
) -> bytes:
    """Encode a client pose frame (used by clients; the server never sends one)."""
    rec = np.zeros(1, CLIENT_POSE)
    rec["kind"] = BinaryKind.POSE
    rec["flags"] = flags
    rec["stamp"] = stamp & 0xFFFFFFFF
    rec["pose"][0] = pose
    return rec.tobytes()


def encode_object_move(object_index: int, transform: "list[float] | tuple[float, ...]", stamp: int = 0) -> bytes:
    """Encode a client object-move frame."""
    return struct.pack("<BBHI7f", BinaryKind.OBJECT_MOVE, 0, object_index, stamp & 0xFFFFFFFF, *transform)


def encode_tick(
    tick: int, event_seq: int, poses: np.ndarray, objects: np.ndarray, full: bool = False
) -> bytes:
    """Encode one tick frame from arrays of POSE_RECORD and OBJECT_RECORD."""
    header = np.zeros(1, TICK_HEADER)
    header["kind"] = BinaryKind.TICK
    header["flags"] = TICK_FULL if full else 0
    header["poses"] = len(poses)
    header["objects"] = len(objects)
    header["tick"] = tick & 0xFFFFFFFF
    header["event_seq"] = event_seq & 0xFFFFFFFF
    return b"".join((header.tobytes(), poses.tobytes(), objects.tobytes()))


class TickFrame(NamedTuple):
    """A decoded server tick frame (views into the received bytes)."""

    tick: int
    event_seq: int
    full: bool
    poses: np.ndarray
    objects: np.ndarray


def decode_tick(data: bytes) -> TickFrame:
    """Decode a server tick frame; raises ProtocolError if the lengths do not add up."""
    if len(data) < TICK_HEADER.itemsize or data[0] != BinaryKind.TICK:
        raise ProtocolError(ErrorCode.BAD_BINARY, "Not a tick frame.")
    header = np.frombuffer(data, TICK_HEADER, count=1)[0]
    n_poses, n_objects = int(header["poses"]), int(header["objects"])
    expected = TICK_HEADER.itemsize + n_poses * POSE_RECORD.itemsize + n_objects * OBJECT_RECORD.itemsize
    if len(data) != expected:
        raise ProtocolError(ErrorCode.BAD_BINARY, f"Tick frame should be {expected} bytes, got {len(data)}.")
    poses = np.frombuffer(data, POSE_RECORD, count=n_poses, offset=TICK_HEADER.itemsize)
    objects = np.frombuffer(
        data, OBJECT_RECORD, count=n_objects, offset=TICK_HEADER.itemsize + n_poses * POSE_RECORD.itemsize
    )
    return TickFrame(int(header["tick"]), int(header["event_seq"]), bool(header["flags"] & TICK_FULL), poses, objects)


# ------------------------------------------------------------------ codes


class ErrorCode(StrEnum):
    """Machine-readable ``code`` of an ``error`` message."""

    INVALID_JSON = "invalid_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    BAD_BINARY = "bad_binary"
    BAD_POSE = "bad_pose"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    ROOM_FULL = "room_full"
    ROOM_LOCKED = "room_locked"
    SESSION_ENDED = "session_ended"
    #: the practical is hosted by another node: the error carries its ``ws_url`` (several nodes)
    ROOM_ELSEWHERE = "room_elsewhere"
    #: the practical is between nodes (its node died a moment ago), or this node cannot reach Redis: try again
    ROOM_MOVING = "room_moving"
    UNKNOWN_OBJECT = "unknown_object"
    NOT_INTERACTABLE = "not_interactable"
    OBJECT_HELD = "object_held"
    NOT_HOLDER = "not_holder"
    FROZEN = "frozen"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    RATE_LIMITED = "rate_limited"
    # challenges
    UNKNOWN_PROPERTY = "unknown_property"
    BAD_VALUE = "bad_value"
    WRONG_STATION = "wrong_station"
    NO_STATION = "no_station"
    UNKNOWN_STATION = "unknown_station"
    STATION_FULL = "station_full"
    UNKNOWN_STEP = "unknown_step"
    STEP_NOT_OPEN = "step_not_open"
    # hints
    HINT_COOLDOWN = "hint_cooldown"
    NO_HINT = "no_hint"
    #: the server failed on a message through a fault of its own (a bug); the message was dropped
    SERVER_ERROR = "server_error"
    # voice (WebRTC)
    BAD_SDP = "bad_sdp"
    ICE_TIMEOUT = "ice_timeout"
    PEER_FAILED = "peer_failed"
    MEDIA_UNAVAILABLE = "media_unavailable"


class CloseCode(IntEnum):
    """WebSocket close codes the server uses, with the reason sent alongside."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    POLICY = 1008
    TOO_BIG = 1009
    UNAUTHORIZED = 4001
    REPLACED = 4002
    KICKED = 4003
    SESSION_ENDED = 4004
    ROOM_FULL = 4005
    ROOM_LOCKED = 4006
    JOIN_TIMEOUT = 4007
    RATE_LIMITED = 4008
    IDLE = 4010
    #: the practical is hosted by another node now (the error before it names its socket): reconnect
    MOVED = 4011
    #: standard "try again later": the practical is between nodes, or this node cannot reach Redis
    TRY_AGAIN = 1013
    TOO_SLOW = 4013
    LEFT = 4000


# ------------------------------------------------------------ control messages

_ReqId = Annotated[StrictStr | StrictInt, Field(description="Client's request id, echoed as `re` in errors and pongs.")]
Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
_Name = Annotated[str, Field(min_length=1, max_length=64)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: _ReqId | None = None


class Join(_Msg):
    """First message on a socket: the participant token from /api/join (or a teacher
    link). The same token resumes after a drop; ``last_seq`` asks for the events since."""

    type: Literal["join"]
    token: Annotated[str, Field(min_length=1, max_length=2048)]
    last_seq: Annotated[int, Field(ge=0)] | None = None
    #: the newest protocol version the client speaks; the server answers with the version in force
    protocol: Annotated[StrictInt, Field(ge=1, le=0xFFFF)] = 1


class Ack(_Msg):
    """The newest tick frame the client has processed (protocol 2): the server measures the
    client's link by it (realtime.downstream). Stale or repeated acks are ignored."""

    type: Literal["ack"]
    tick: Annotated[StrictInt, Field(ge=0, le=0xFFFFFFFF)]


class Ping(_Msg):
    type: Literal["ping"]
    t: float | None = None


class Grab(_Msg):
    type: Literal["grab"]
    object: _Name


class Release(_Msg):
    type: Literal["release"]
    object: _Name


class Leave(_Msg):
    type: Literal["leave"]


class Kick(_Msg):
    type: Literal["kick"]
    participant: _Name


class Unkick(_Msg):
    """Teacher: let someone removed with ``kick`` back into the practical."""

    type: Literal["unkick"]
    participant: _Name


class Lock(_Msg):
    type: Literal["lock"]
    locked: bool


class Summon(_Msg):
    type: Literal["summon"]
    position: Vec3


class Freeze(_Msg):
    type: Literal["freeze"]
    frozen: bool


class Reset(_Msg):
    type: Literal["reset"]


class End(_Msg):
    type: Literal["end"]


class Mute(_Msg):
    """Mute or unmute yourself, or (teacher) force another participant's mute."""

    type: Literal["mute"]
    muted: bool
    participant: _Name | None = None


class Broadcast(_Msg):
    """Teacher: speak to every zone at full level, or stop."""

    type: Literal["broadcast"]
    on: bool


_Value = Annotated[StrictBool | StrictInt | float | Annotated[str, Field(max_length=64)], Field(description="true/false, a number or a choice")]
_Station = Annotated[int, Field(ge=1, le=64)]


class Interact(_Msg):
    """Set an interactive property of an object: a burner on, a dial to 7, a switch closed."""

    type: Literal["interact"]
    object: _Name
    property: _Name
    value: _Value


class Answer(_Msg):
    """Answer a checkpoint question of your station's challenge: a choice's index from 0, or a number.

    The value keeps its JSON type, as ``interact``'s does, so the engine judges what was sent:
    ``true`` or ``"3"`` is no answer (``bad_value``), not the number 1 or 3."""

    type: Literal["answer"]
    step: _Name
    value: _Value


class ChooseStation(_Msg):
    """Student, where the scene lets students choose: work at this station."""

    type: Literal["choose_station"]
    station: _Station


class AssignStation(_Msg):
    """Teacher: put a student at a station (``null``: at none)."""

    type: Literal["assign_station"]
    participant: _Name
    station: _Station | None


class Hint(_Msg):
    """Student: ask for the next hint of an open step at your station (after the station's cooldown)."""

    type: Literal["hint"]
    step: _Name


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToParticipant(_Target):
    participant: _Name


class ToStation(_Target):
    station: _Station


class ToAll(_Target):
    all: Literal[True]


_TARGETS: dict[str, type[_Target]] = {"participant": ToParticipant, "station": ToStation, "all": ToAll}


def _target_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 and next(iter(value)) in _TARGETS else None
    return next((kind for kind, model in _TARGETS.items() if type(value) is model), None)


HintTarget = Annotated[
    Annotated[ToParticipant, Tag("participant")] | Annotated[ToStation, Tag("station")] | Annotated[ToAll, Tag("all")],
    Discriminator(
        _target_kind,
        custom_error_type="hint_target",
        custom_error_message='one of {"participant": id}, {"station": number} or {"all": true}',
    ),
]
MAX_HINT_TEXT = 300


class PushHint(_Msg):
    """Teacher: push a rung of the hint ladder (``level`` 1-3) or free ``text`` (exactly one of
    the two) to a participant, a station's group, or every station's group."""

    type: Literal["push_hint"]
    to: HintTarget
    level: Annotated[StrictInt, Field(ge=1, le=3)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=MAX_HINT_TEXT)] | None = None

    @model_validator(mode="after")
    def _one(self) -> "PushHint":
        if (self.level is None) == (self.text is None):
            raise ValueError("give exactly one of 'level' (1-3) and 'text'")
        return self


#: Largest ``rtc_offer`` message: the only message allowed past RoomLimits.max_message_bytes
#: (a complete SDP with every ICE candidate outgrows 16 KiB), and the SDP inside it.
MAX_OFFER_MESSAGE_BYTES = 64 * 1024
MAX_SDP_BYTES = 60 * 1024
#: Deepest nesting of JSON arrays and objects in a control message (the message object is
#: level 1). No message needs more than 2; the bound keeps a hostile one from exhausting
#: the parser's recursion, as RFC 8259 section 9 lets a parser do.
MAX_JSON_DEPTH = 32


class RtcOffer(_Msg):
    """A complete WebRTC offer (ICE gathering finished): the server answers with ``rtc_answer``.
    A new offer replaces the participant's current call."""

    type: Literal["rtc_offer"]
    sdp: Annotated[str, Field(min_length=1, max_length=MAX_SDP_BYTES)]


class RtcClose(_Msg):
    """Hang up the participant's voice call."""

    type: Literal["rtc_close"]


ClientMessage = Annotated[
    Join | Ack | Ping | Grab | Release | Leave | Kick | Unkick | Lock | Summon | Freeze | Reset | End | Mute | Broadcast | RtcOffer | RtcClose
    | Interact | Answer | ChooseStation | AssignStation | Hint | PushHint,
    Field(discriminator="type"),
]
_CLIENT_MESSAGE: TypeAdapter[Any] = TypeAdapter(ClientMessage)
#: the base of every client control message (for code that keeps them, such as the room log)
ControlMessage = _Msg


def control_from_fields(fields: dict[str, Any]) -> _Msg:
    """A control message from already-parsed fields, validated as decode_control validates
    (a room log entry); raises pydantic's ValidationError."""
    return _CLIENT_MESSAGE.validate_python(fields)

CLIENT_TYPES = frozenset(
    (
        "join", "ack", "ping", "grab", "release", "leave", "kick", "unkick", "lock", "summon", "freeze", "reset", "end",
        "mute", "broadcast", "rtc_offer", "rtc_close", "interact", "answer", "choose_station", "assign_station",
        "hint", "push_hint",
    )
)


def offer_sends_audio(sdp: str) -> bool:
    """True if the offer's audio sections would send audio (sendrecv or sendonly, the default).

    Observers may only listen: their offers must be ``recvonly`` (or ``inactive``).
    """
    sends = False
    in_audio = False
    direction = "sendrecv"
    for line in sdp.splitlines():
        if line.startswith("m="):
            if in_audio and direction in ("sendrecv", "sendonly"):
                sends = True
            in_audio = line.startswith("m=audio")
            direction = "sendrecv"
        elif in_audio and line.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            direction = line.strip()[2:]
    return sends or (in_audio and direction in ("sendrecv", "sendonly"))


#: Problems an ``invalid_message`` error lists (and counts the rest): a message of a
#: thousand stray fields gets a short answer, not one four times its size.
_SHOWN_PROBLEMS = 5
_TOO_DEEP = f"Message nests arrays and objects deeper than the limit of {MAX_JSON_DEPTH} levels."


def decode_control(text: str | bytes) -> _Msg:
    """Parse and validate a client's JSON control message.

    Whatever the text, raises nothing but ProtocolError: INVALID_JSON (not JSON, or
    nested deeper than MAX_JSON_DEPTH), UNKNOWN_TYPE or INVALID_MESSAGE, with a
    sentence a developer can act on.
    """
    try:
        raw = bounded_json.loads(text, MAX_JSON_DEPTH)  # depth before shape: one answer at any depth
    except bounded_json.TooDeep:
        raise ProtocolError(ErrorCode.INVALID_JSON, _TOO_DEEP) from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise ProtocolError(ErrorCode.INVALID_JSON, f"Message is not valid JSON: {exc}.") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A control message must be a JSON object with a 'type'.")
    re = raw.get("id") if isinstance(raw.get("id"), (str, int)) and not isinstance(raw.get("id"), bool) else None
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type {_cut(repr(kind))}.", re)
    try:
        return _CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{_cut('.'.join(str(p) for p in err['loc'][1:])) or 'message'}: {err['msg']}" for err in errors[:_SHOWN_PROBLEMS]
        )
        if len(errors) > _SHOWN_PROBLEMS:
            problems += f" (and {len(errors) - _SHOWN_PROBLEMS} more)"
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"Bad {kind!r} message: {problems}.", re) from None


def _cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters: an error quotes the client's message, it does not echo it."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dumps(message: dict[str, Any]) -> str:
    """Serialise a server message compactly (one encoding shared by all recipients)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def error(code: ErrorCode, message: str, re: str | int | None = None, retry_after: float | None = None) -> dict[str, Any]:
    """Build an ``error`` message (``retry_after``: seconds until the refused action may be tried again)."""
    out: dict[str, Any] = {"type": "error", "code": str(code), "message": message}
    if retry_after is not None:
        out["retry_after"] = retry_after
    if re is not None:
        out["re"] = re
    return out
