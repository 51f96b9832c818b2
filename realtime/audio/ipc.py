"""Messages between the node and its media worker process (documented in docs/audio.md).

One Unix stream socket (a socketpair made by the supervisor) carries frames in
both directions: a 4-byte little-endian length, one kind byte, then the body.

* ``JSON``: a control message, a JSON object with a ``type`` (offer, bitrate, close,
  room_closed; answer, error, closed, levels, stats).
* ``POSES``: a room's voice table after a room tick, one compact binary message
  per room instead of one per participant: the room id, then one VOICE_POSE
  record per participant in a call (slot, voice flags, zone index, head
  position and quaternion), made with one numpy ``tobytes()``.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

from realtime.audio.mixer import BROADCAST, MAY_SPEAK, MUTED, Attenuation, zone_of
from realtime.roles import Action, allowed
from realtime.room import Room

_HEADER = struct.Struct("<IB")

#: bounds of one listener's mix bit rate (bit/s) when the node lowers or raises it: below 12
#: kbit/s the ~14 kbit/s of RTP/SRTP headers are most of the stream, so a lower rate saves
#: little; RFC 7587 puts fullband speech at 28-40 kbit/s, so past 64 kbit/s only the cost grows
MIN_LISTENER_BITRATE = 12_000
MAX_LISTENER_BITRATE = 64_000
#: refuse frames past this size (an SDP is at most 60 KiB)
MAX_FRAME = 1 << 20

#: One participant's row in a POSES message: 36 bytes.
VOICE_POSE = np.dtype(
    [("slot", "<u2"), ("flags", "u1"), ("reserved", "u1"), ("zone", "<i2"), ("reserved2", "<u2"), ("head", "<f4", (7,))]
)


@dataclass(frozen=True)
class WorkerSettings:
    """Timeouts and mix parameters: the worker's spawn argument, from the node's config."""

    attenuation: Attenuation = Attenuation()
    #: seconds an answered call may take to connect before it is dropped
    ice_timeout: float = 10.0
    #: seconds without audio from a connected speaker before its call is dropped
    media_timeout: float = 5.0
    #: seconds without any packet from a listen-only call before it is dropped: a
    #: listener sends only RTCP reports (Chromium: one every 2.5-7.5 s for audio)
    listener_timeout: float = 15.0
    #: Opus bit rate of each listener's mix (bit/s), unless the node chose another for that
    #: listener (``bitrate``). 32 kbit/s keeps the panning (libopus narrows the stereo image
    #: below it) in about 47 kbit/s a listener with the RTP/SRTP headers: docs/audio.md, "Bit rate"
    opus_bitrate: int = 32_000
    #: libopus complexity 0..10: encoding every listener's mix is the worker's largest own
    #: cost (CELT stereo, callgrind: 3 -> 540k instructions a frame, 0 -> 383k)
    opus_complexity: int = 3
    #: above this many calls in the worker every mix is encoded at complexity 0: quality
    #: where the CPU allows, about a third less encoding cost where it does not
    crowded_calls: int = 32
    #: calls one worker accepts; past it offers get ``media_unavailable`` instead of
    #: overloading every call (docs/benchmarks.md: one core holds ~50 talking calls)
    max_calls: int = 60
    #: addresses offered as ICE host candidates; empty: every interface (aioice's default)
    ice_addresses: tuple[str, ...] = ()


#: a listener's mix bit rate (bit/s) by downstream level: full (None: the node's configured
#: ``opus_bitrate``), reduced, low. At 24 kbit/s libopus keeps most of the panning; below
#: about 19 kbit/s it keeps none (forcing stereo does not help) and codes the mix as mono, so
#: the weakest link keeps distance, zones and broadcast but loses left and right:
#: docs/audio.md, "Bit rate"
VOICE_BITRATE_BY_LEVEL: tuple[int | None, int, int] = (None, 24_000, 16_000)


def check_listener_bitrate(bitrate: object) -> int:
    """``bitrate`` if it is a whole number of bit/s within the listener bounds, else ValueError."""
    if isinstance(bitrate, bool) or not isinstance(bitrate, int):
        raise ValueError(f"a listener's voice bit rate is a whole number of bit/s, not {bitrate!r}")
    if not MIN_LISTENER_BITRATE <= bitrate <= MAX_LISTENER_BITRATE:
        raise ValueError(
            f"a listener's voice bit rate must be {MIN_LISTENER_BITRATE} to {MAX_LISTENER_BITRATE} bit/s, not {bitrate}"
        )
    return bitrate


class Kind(IntEnum):
    JSON = 1
    POSES = 2


class Poses(NamedTuple):
    room: str
    table: np.ndarray  # VOICE_POSE records


def frame(kind: Kind, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 1, kind) + body


def encode_json(message: dict[str, Any]) -> bytes:
    return frame(Kind.JSON, json.dumps(message, separators=(",", ":")).encode())


def encode_poses(room: Room) -> bytes | None:
    """The voice table of a room's participants in a call, or None if nobody is in one."""
    callers = [part for part in room.participants.values() if part.in_call]
    if not callers:
        return None
    table = np.zeros(len(callers), VOICE_POSE)
    slots = [part.slot for part in callers]
    table["slot"] = slots
    table["head"] = room.head_poses(slots)
    table["zone"] = zone_of(table["head"][:, 0:3], room.scene.zones)
    table["flags"] = [
        (MUTED if part.muted else 0)
        | (BROADCAST if part.id in room.broadcasting else 0)
        | (MAY_SPEAK if allowed(part.role, Action.SPEAK) else 0)
        for part in callers
    ]
    name = room.id.encode()
    return frame(Kind.POSES, struct.pack("<B", len(name)) + name + table.tobytes())


def decode(kind: int, body: bytes) -> dict[str, Any] | Poses:
    if kind == Kind.JSON:
        message = json.loads(body)
        if not isinstance(message, dict):
            raise ValueError("IPC JSON message is not an object")
        return message
    if kind == Kind.POSES:
        n = body[0]
        return Poses(body[1 : 1 + n].decode(), np.frombuffer(body, VOICE_POSE, offset=1 + n))
    raise ValueError(f"unknown IPC frame kind {kind}")


async def read(reader: asyncio.StreamReader) -> dict[str, Any] | Poses:
    """Read one message; raises asyncio.IncompleteReadError when the other side is gone."""
    length, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if not 1 <= length <= MAX_FRAME:
        raise ValueError(f"IPC frame of {length} bytes")
    return decode(kind, await reader.readexactly(length - 1))
