"""Protocol version 2's pose codec: fixed-point positions and smallest-three rotations.

Version 1 sends every pose as 21 float32 (92 bytes a record). Version 2 sends
the same poses in 17 bytes for a head and 10 more per tracked hand:

* A position is three u16 on the room's grid (``Grid``): ``origin + u * step``
  per axis. The step is 1 mm for any lab up to 65.5 m across, so a position
  inside the grid comes back within half a millimetre; outside it is clamped
  to the grid's edge.
* A rotation is one u32, "smallest three": the index of the largest-magnitude
  component in bits 30-31, then the other three in x, y, z, w order (skipping
  it), 10 bits each, as ``round(c * sqrt(2) * 511) + 512``. The quaternion is
  negated first so the dropped component is positive, and the receiver gets it
  back as ``sqrt(1 - sum of squares)``. The other three are at most 1/sqrt(2)
  in magnitude, so 10 bits step 0.0014 and the angle comes back within
  0.25 degrees (0.22 measured over 100,000 random rotations; tests/unit/test_codec_v2.py checks it).
* An untracked hand is not sent at all: the receiver places it.

Every step is vectorised over a tick's records (numpy); docs/protocol.md §7.5
gives the byte offsets. The web client's copy of this codec is
clients/web/public/protocol.js; tests/browser/test_protocol_parity.py holds the
two to the same bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from realtime import protocol as p
from scenes.model import Scene

VERSION = 2

#: Grid steps in one axis: positions are u16.
GRID_STEPS = 65535
#: The finest grid step, in metres.
FINEST_STEP = 0.001
#: Margin kept around a lab's content when the grid is coarser than 1 mm (a big lab), in metres.
_MARGIN = 10.0
#: Headroom above the highest thing in a lab and below the floor, in metres.
_ABOVE, _BELOW = 4.0, 2.0

_SQRT2 = math.sqrt(2.0)
_QUAT_SCALE = _SQRT2 * 511.0
#: A client's three rotation components may add up to this much (quantization noise) before the rotation is refused.
_MAX_NORM2 = 1.01
#: For each dropped component, the three components that are sent, in order.
_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])

#: Server tick header, 14 bytes.
TICK_HEADER = np.dtype(
    [("kind", "u1"), ("flags", "u1"), ("poses", "<u2"), ("objects", "<u2"), ("tick", "<u4"), ("event_seq", "<u4")]
)
#: A head record inside a tick, 17 bytes; tracked hands follow in the hand section.
HEAD_RECORD = np.dtype([("slot", "<u2"), ("flags", "u1"), ("stamp", "<u4"), ("position", "<u2", (3,)), ("rotation", "<u4")])
#: A position and rotation block (a hand in a tick, the head or a hand in a client pose), 10 bytes.
BLOCK = np.dtype([("position", "<u2", (3,)), ("rotation", "<u4")])
#: An object record inside a tick, 14 bytes.
OBJECT_RECORD = np.dtype([("object", "<u2"), ("holder", "<u2"), ("position", "<u2", (3,)), ("rotation", "<u4")])
#: A client pose: kind, flags, stamp, then the head block and one block per tracked hand.
CLIENT_POSE_HEAD = struct.Struct("<BBI")
CLIENT_POSE_SIZES = (16, 26, 36)

_HANDS = p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED
#: Per hand (left, right), its bit in a pose's flags.
_HAND_BITS = np.array([p.FLAG_LEFT_TRACKED, p.FLAG_RIGHT_TRACKED], np.uint8)
#: TICK_HEADER as a struct, to pack one without numpy (a frame per group of recipients per tick);
#: its fields are all unsigned little-endian integers.
_TICK_HEADER = struct.Struct("<" + "".join({1: "B", 2: "H", 4: "I"}[TICK_HEADER[name].itemsize] for name in TICK_HEADER.names))
_BLOCK = struct.Struct("<3HI")


@dataclass(frozen=True)
class Grid:
    """Where quantized positions lie: ``origin + u * step`` per axis, u in 0..65535."""

    origin: tuple[float, float, float]
    step: tuple[float, float, float]

    @classmethod
    def for_scene(cls, scene: Scene) -> "Grid":
        """A grid around everything the lab holds: 1 mm steps centred on the lab while its
        content (with headroom) spans at most 65.5 m on an axis, a coarser step beyond."""
        points = [obj.transform[:3] for obj in scene.objects]
        points += [spawn[:3] for spawn in scene.spawn_points]
        points += [tuple(station["position"]) for station in scene.stations if "position" in station]
        for zone in scene.zones:
            half = zone.radius if zone.radius is not None else max(zone.size or (0.0,)) / 2
            points += [tuple(c - half for c in zone.center), tuple(c + half for c in zone.center)]
        box = np.array(points or [(0.0, 0.0, 0.0)], float)
        low = np.minimum(box.min(axis=0), 0.0) - (0.0, _BELOW, 0.0)
        high = np.maximum(box.max(axis=0), 0.0) + (0.0, _ABOVE, 0.0)
        origin, step = [], []
        for lo, hi in zip(low.tolist(), high.tolist()):
            if hi - lo <= GRID_STEPS * FINEST_STEP:
                step.append(FINEST_STEP)
                origin.append(round((lo + hi) / 2 - GRID_STEPS * FINEST_STEP / 2, 3))
            else:
                lo, hi = lo - _MARGIN, hi + _MARGIN
                step.append((hi - lo) / GRID_STEPS)
                origin.append(lo)
        return cls((origin[0], origin[1], origin[2]), (step[0], step[1], step[2]))

    @classmethod
    def from_welcome(cls, data: dict[str, Any]) -> "Grid":
        """The grid a ``welcome`` message announces."""
        origin, step = data["origin"], data["step"]
        return cls((float(origin[0]), float(origin[1]), float(origin[2])), (float(step[0]), float(step[1]), float(step[2])))

    def public(self) -> dict[str, Any]:
        """The grid as ``welcome.grid`` carries it."""
        return {"origin": list(self.origin), "step": list(self.step)}

    def quantize(self, positions: np.ndarray) -> np.ndarray:
        """(N, 3) metres -> (N, 3) u16, clamped to the grid."""
        u = np.rint((positions - np.asarray(self.origin)) / np.asarray(self.step))
        return np.clip(u, 0, GRID_STEPS).astype("<u2")

    def position(self, u: np.ndarray) -> np.ndarray:
        """(N, 3) u16 -> (N, 3) metres."""
        return np.asarray(self.origin) + u.astype(float) * np.asarray(self.step)


# --------------------------------------------------------------------------- rotations


def pack_rotations(quats: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions (x, y, z, w; normalised here) -> (N,) u32 smallest-three."""
    q = np.asarray(quats, float)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q *= np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None]
    kept = q[rows[:, None], _OTHERS[largest]]
    u = (np.rint(kept * _QUAT_SCALE) + 512).clip(1, 1023).astype(np.uint32)
    return (largest.astype(np.uint32) << 30) | (u[:, 0] << 20) | (u[:, 1] << 10) | u[:, 2]


#: Where the three sent components sit in a packed rotation.
_SHIFTS = np.array([20, 10, 0], np.uint32)


def _components(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    packed = np.asarray(packed, np.uint32)
    return packed >> 30, (packed[:, None] >> _SHIFTS) & 0x3FF


#: For each dropped component L, where each of x, y, z, w comes from in (dropped, sent...).
_PLACE = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [1, 2, 0, 3], [1, 2, 3, 0]])


def unpack_checked(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) u32 smallest-three -> (N, 4) unit quaternions (x, y, z, w), and per rotation
    whether it is valid: False if a component is the unused code 0, or the three sent add up
    to more than a unit quaternion can hold (a frame no encoder makes)."""
    largest, u = _components(packed)
    kept = (u - 512.0) / _QUAT_SCALE
    norm2 = np.einsum("ij,ij->i", kept, kept)
    dropped = np.sqrt(np.maximum(0.0, 1.0 - norm2))
    q = np.take_along_axis(np.concatenate([dropped[:, None], kept], axis=1), _PLACE[largest], axis=1)
    return q, (u != 0).all(axis=1) & (norm2 <= _MAX_NORM2)


def unpack_rotations(packed: np.ndarray) -> np.ndarray:
    """(N,) u32 smallest-three -> (N, 4) unit quaternions (x, y, z, w)."""
    return unpack_checked(packed)[0]


def rotations_valid(packed: np.ndarray) -> np.ndarray:
    """Per rotation: whether it is one an encoder makes (see unpack_checked)."""
    return unpack_checked(packed)[1]


# --------------------------------------------------------------------------- client pose


def encode_pose_v2(pose: "np.ndarray | list[float]", stamp: int, flags: int, grid: Grid) -> bytes:
    """A client's POSE_V2 frame (kind 0x03): head, then each tracked hand."""
    floats = np.asarray(pose, float).reshape(3, 7)
    tracked = [0] + [i + 1 for i, bit in enumerate((p.FLAG_LEFT_TRACKED, p.FLAG_RIGHT_TRACKED)) if flags & bit]
    blocks = np.zeros(len(tracked), BLOCK)
    blocks["position"] = grid.quantize(floats[tracked, :3])
    blocks["rotation"] = pack_rotations(floats[tracked, 3:])
    return CLIENT_POSE_HEAD.pack(p.BinaryKind.POSE_V2, flags & _HANDS, stamp & 0xFFFFFFFF) + blocks.tobytes()


def check_client_pose(data: bytes) -> None:
    """Raise ProtocolError unless ``data`` is a POSE_V2 frame of the right length for its flags.
    Its rotations are checked with the rest of a tick's poses (Staged.take): per frame, a
    numpy call costs more than the whole of a pose's path through the room."""
    if _SIZE_BY_FLAGS.get(data[1] if len(data) > 1 else -1) == len(data):
        return
    if len(data) not in CLIENT_POSE_SIZES:
        raise p.ProtocolError(p.ErrorCode.BAD_BINARY, f"A version 2 pose frame is 16, 26 or 36 bytes; this one is {len(data)}.")
    flags = data[1]
    if flags & ~_HANDS:
        raise p.ProtocolError(p.ErrorCode.BAD_BINARY, f"A version 2 pose frame's flags use bits 0 and 1 only; these are 0x{flags:02x}.")
    raise p.ProtocolError(p.ErrorCode.BAD_BINARY, f"A version 2 pose frame with flags 0x{flags:02x} is {_SIZE_BY_FLAGS[flags]} bytes; this one is {len(data)}.")


#: A POSE_V2 frame's length for each valid flags byte: a head, and a block per tracked hand.
_SIZE_BY_FLAGS = {flags: 16 + 10 * bin(flags).count("1") for flags in range(4)}

#: The sentence refusing a version 2 pose whose rotation no encoder makes.
BAD_ROTATION = "Pose refused: a rotation's three components (10 bits each, 1..1023) must add up to at most a unit quaternion."
_NONE = np.zeros(0, np.int64)
#: A staged POSE_V2: flags, stamp, then head, left and right blocks (a hand's only if its flag is set).
STAGED = np.dtype([("flags", "u1"), ("stamp", "<u4"), ("blocks", BLOCK, (3,))])


class Staged:
    """The newest POSE_V2 frame of each slot since the last tick, kept as its bytes (as the room
    keeps version 1 poses) and dequantized for all slots at once at the tick."""

    def __init__(self, capacity: int) -> None:
        self.rows = np.zeros(capacity, STAGED)
        self.pending = np.zeros(capacity, bool)
        #: a version 2 pose has been staged here (a room of version 1 clients never pays for this)
        self.used = False
        self._bytes = memoryview(self.rows.view(np.uint8).reshape(-1))

    def __getstate__(self) -> dict[str, Any]:
        """A room snapshot keeps the rows; the byte view is rebuilt."""
        return {"rows": self.rows, "pending": self.pending, "used": self.used}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.rows, self.pending, self.used = state["rows"], state["pending"], state["used"]
        self._bytes = memoryview(self.rows.view(np.uint8).reshape(-1))

    def grow(self, capacity: int) -> None:
        rows = np.zeros(capacity, STAGED)
        rows[: len(self.rows)] = self.rows
        pending = np.zeros(capacity, bool)
        pending[: len(self.pending)] = self.pending
        self.rows, self.pending = rows, pending
        self._bytes = memoryview(self.rows.view(np.uint8).reshape(-1))

    def put(self, slot: int, data: bytes) -> None:
        """Stage a checked POSE_V2 frame (check_client_pose): plain byte copies, no numpy call."""
        self.used = True
        at = slot * STAGED.itemsize
        view = self._bytes
        flags = data[1]
        if flags == _HANDS:  # both hands: the frame is the staged row, from its flags on
            view[at : at + STAGED.itemsize] = data[1:]
            self.pending[slot] = True
            return
        view[at] = flags
        view[at + 1 : at + 15] = data[2:16]  # stamp and head
        read = 16
        for i, bit in enumerate((p.FLAG_LEFT_TRACKED, p.FLAG_RIGHT_TRACKED)):
            if flags & bit:
                start = at + 5 + 10 * (i + 1)
                view[start : start + 10] = data[read : read + 10]
                read += 10
        self.pending[slot] = True

    def take(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The staged slots, their POSE_RECORD rows (an untracked hand at the head's pose), and
        which of them are valid; nothing stays staged."""
        if not self.used:  # nobody in the room has sent one: no numpy call at all
            return _NONE, np.zeros(0, p.POSE_RECORD), np.zeros(0, bool)
        slots = np.flatnonzero(self.pending)
        self.pending[slots] = False
        rows = p.records(self.rows)[slots].view(STAGED)
        n = len(slots)
        flags, blocks = rows["flags"], rows["blocks"]
        # head, left, right: a hand not tracked takes the head's block
        sent = np.concatenate([np.ones((n, 1), bool), (flags[:, None] & _HAND_BITS) != 0], axis=1)
        positions = np.where(sent[:, :, None], blocks["position"], blocks["position"][:, :1]).reshape(-1, 3)
        rotations = np.where(sent, blocks["rotation"], blocks["rotation"][:, :1]).reshape(-1)
        quats, valid = unpack_checked(rotations)
        ok = valid.reshape(n, 3).all(axis=1)
        out = np.zeros(n, p.POSE_RECORD)
        out["slot"] = slots
        out["flags"] = flags
        out["stamp"] = rows["stamp"]
        pose = out["pose"].reshape(n, 3, 7)
        pose[:, :, :3] = grid.position(positions).reshape(n, 3, 3)
        pose[:, :, 3:] = quats.reshape(n, 3, 4)
        return slots, out, ok


def decode_pose_v2(data: bytes, grid: Grid) -> tuple[int, int, np.ndarray]:
    """A POSE_V2 frame's (flags, stamp, 21 floats; an untracked hand at the head's pose), as
    the room reads it; ProtocolError if malformed."""
    check_client_pose(data)
    staged = Staged(1)
    staged.put(0, data)
    _, rows, ok = staged.take(grid)
    if not ok[0]:
        raise p.ProtocolError(p.ErrorCode.BAD_POSE, BAD_ROTATION)
    return int(rows["flags"][0]), int(rows["stamp"][0]), rows["pose"][0].astype(float)


# --------------------------------------------------------------------------- server tick


class Encoded(NamedTuple):
    """Pose records of one tick quantized once: what any number of frames are cut from."""

    heads: np.ndarray  # HEAD_RECORD per record
    hands: np.ndarray  # (N, 2) BLOCK per record
    tracked: np.ndarray  # (N, 2) bool: which hands are sent


def encode_poses(poses: np.ndarray, grid: Grid) -> Encoded:
    """Quantize POSE_RECORD rows (vectorised): heads, both hands, and which hands are tracked."""
    n = len(poses)
    floats = poses["pose"].reshape(n, 3, 7)
    heads = np.zeros(n, HEAD_RECORD)
    heads["slot"] = poses["slot"]
    heads["flags"] = poses["flags"] & _HANDS
    heads["stamp"] = poses["stamp"]
    flat = floats.reshape(n * 3, 7)
    positions = grid.quantize(flat[:, :3]).reshape(n, 3, 3)
    rotations = pack_rotations(flat[:, 3:]).reshape(n, 3) if n else np.zeros((0, 3), np.uint32)
    heads["position"] = positions[:, 0]
    heads["rotation"] = rotations[:, 0]
    hands = np.zeros((n, 2), BLOCK)
    hands["position"] = positions[:, 1:]
    hands["rotation"] = rotations[:, 1:]
    tracked = np.stack([(heads["flags"] & p.FLAG_LEFT_TRACKED) != 0, (heads["flags"] & p.FLAG_RIGHT_TRACKED) != 0], axis=1)
    return Encoded(heads, hands, tracked)


def without_hands(encoded: Encoded) -> Encoded:
    """The same records with no hand sent (the lowest detail for a weak link)."""
    heads = encoded.heads.copy()
    heads["flags"] = 0
    return Encoded(heads, encoded.hands, np.zeros_like(encoded.tracked))


def encode_objects(objects: np.ndarray, grid: Grid) -> np.ndarray:
    """OBJECT_RECORD rows -> version 2 object records."""
    out = np.zeros(len(objects), OBJECT_RECORD)
    out["object"] = objects["object"]
    out["holder"] = objects["holder"]
    if len(objects):
        out["position"] = grid.quantize(objects["transform"][:, :3])
        out["rotation"] = pack_rotations(objects["transform"][:, 3:])
    return out


def tick_frame(tick: int, event_seq: int, encoded: Encoded, rows: np.ndarray, objects: np.ndarray, full: bool = False) -> bytes:
    """One TICK_V2 frame (kind 0x11) of the encoded pose records at ``rows`` and version 2 object records."""
    header = _TICK_HEADER.pack(
        p.BinaryKind.TICK_V2, p.TICK_FULL if full else 0, len(rows), len(objects), tick & 0xFFFFFFFF, event_seq & 0xFFFFFFFF
    )
    hands = (rows[:, None] * 2 + (0, 1)).reshape(-1)  # both hands of each record, in the flat (N * 2) blocks
    hands = hands[encoded.tracked.reshape(-1)[hands]]
    return b"".join(
        (header, p.records(encoded.heads)[rows].tobytes(), p.records(encoded.hands).reshape(-1)[hands].tobytes(), objects.tobytes())
    )


def encode_tick_v2(tick: int, event_seq: int, poses: np.ndarray, objects: np.ndarray, grid: Grid, full: bool = False) -> bytes:
    """A TICK_V2 frame of every POSE_RECORD and OBJECT_RECORD row given."""
    return tick_frame(tick, event_seq, encode_poses(poses, grid), np.arange(len(poses)), encode_objects(objects, grid), full)


def decode_tick_v2(data: bytes, grid: Grid) -> p.TickFrame:
    """A TICK_V2 frame as a TickFrame of float POSE_RECORD and OBJECT_RECORD rows;
    an untracked hand comes back as the head's pose. ProtocolError if the lengths do not add up."""
    if len(data) < TICK_HEADER.itemsize or data[0] != p.BinaryKind.TICK_V2:
        raise p.ProtocolError(p.ErrorCode.BAD_BINARY, "Not a version 2 tick frame.")
    header = np.frombuffer(data, TICK_HEADER, count=1)[0]
    n, m = int(header["poses"]), int(header["objects"])
    at = TICK_HEADER.itemsize
    if len(data) < at + n * HEAD_RECORD.itemsize:
        raise p.ProtocolError(p.ErrorCode.BAD_BINARY, "Version 2 tick frame too short for its pose records.")
    heads = np.frombuffer(data, HEAD_RECORD, count=n, offset=at)
    at += n * HEAD_RECORD.itemsize
    tracked = np.stack([(heads["flags"] & p.FLAG_LEFT_TRACKED) != 0, (heads["flags"] & p.FLAG_RIGHT_TRACKED) != 0], axis=1)
    n_hands = int(tracked.sum())
    expected = at + n_hands * BLOCK.itemsize + m * OBJECT_RECORD.itemsize
    if len(data) != expected:
        raise p.ProtocolError(p.ErrorCode.BAD_BINARY, f"Version 2 tick frame should be {expected} bytes, got {len(data)}.")
    hands = np.frombuffer(data, BLOCK, count=n_hands, offset=at)
    objects_v2 = np.frombuffer(data, OBJECT_RECORD, count=m, offset=at + n_hands * BLOCK.itemsize)
    poses = np.zeros(n, p.POSE_RECORD)
    poses["slot"] = heads["slot"]
    poses["flags"] = heads["flags"]
    poses["stamp"] = heads["stamp"]
    pose = poses["pose"].reshape(n, 3, 7)
    head = np.concatenate([grid.position(heads["position"]), unpack_rotations(heads["rotation"])], axis=1) if n else np.zeros((0, 7))
    pose[:] = head[:, None, :]
    if n_hands:
        pose[:, 1:][tracked] = np.concatenate([grid.position(hands["position"]), unpack_rotations(hands["rotation"])], axis=1)
    objects = np.zeros(m, p.OBJECT_RECORD)
    objects["object"] = objects_v2["object"]
    objects["holder"] = objects_v2["holder"]
    if m:
        objects["transform"] = np.concatenate([grid.position(objects_v2["position"]), unpack_rotations(objects_v2["rotation"])], axis=1)
    return p.TickFrame(int(header["tick"]), int(header["event_seq"]), bool(header["flags"] & p.TICK_FULL), poses, objects)
