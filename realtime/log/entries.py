"""The room log's entries: one room input (realtime.room.Input) as bytes, and back.

An entry is what a new owner replays, so decoding trusts nothing: a log is read
after a crash, possibly by a newer node, and a damaged or foreign entry must
stop the room from loading with a sentence naming the entry (LogCorrupt), never
be skipped or half-applied. Nothing here unpickles or evaluates.

Layout (all little-endian):

- tick:   ``b"T"`` + float64 ``now`` + the staged POSE_RECORD rows the tick accepted
- handle: ``b"H"`` + float64 ``now`` + UTF-8 JSON ``{"p": participant, "k": kind, "m": fields}``

``kind`` is ``msg`` for a client control message (validated again as the socket
edge validates it), or one of the edge's own inputs: ``enter``, ``disconnect``,
``call_ended``, ``object_move``. Floats survive exactly: ``now`` is stored as its
eight bytes, and JSON numbers are written with Python's shortest round-trip repr.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from pydantic import ValidationError

from realtime import protocol as p
from realtime.roles import Role
from realtime.room import CallEnded, Disconnect, Enter, Input

_NOW = struct.Struct("<d")
_TICK = b"T"
_HANDLE = b"H"


class LogCorrupt(Exception):
    """A log entry that cannot be decoded; the room it belongs to must not load."""


def encode(entry: Input) -> bytes:
    """One input as a log entry."""
    kind, now, pid, payload = entry
    if kind == "tick":
        return _TICK + _NOW.pack(now) + payload
    return _HANDLE + _NOW.pack(now) + json.dumps({"p": pid, **_fields(payload)}, separators=(",", ":")).encode()


def _fields(message: Any) -> dict[str, Any]:
    if isinstance(message, Enter):
        skills = None if message.skills is None else {k: list(v) for k, v in message.skills.items()}
        return {"k": "enter", "m": {"name": message.name, "role": message.role.value, "last_seq": message.last_seq,
                                    "device": message.device, "skills": skills, "protocol": message.protocol}}
    if isinstance(message, Disconnect):
        return {"k": "disconnect", "m": {}}
    if isinstance(message, CallEnded):
        return {"k": "call_ended", "m": {}}
    if isinstance(message, p.ObjectMove):
        return {"k": "object_move", "m": {"object": message.object_index, "transform": list(message.transform)}}
    if isinstance(message, p.ControlMessage):
        return {"k": "msg", "m": message.model_dump(mode="json", exclude_unset=True)}
    raise TypeError(f"the room log cannot keep a {type(message).__name__}")


def decode(data: bytes, where: str) -> Input:
    """A log entry back as an input; ``where`` names the entry in the error if it is damaged."""
    if len(data) < 1 + _NOW.size:
        raise LogCorrupt(f"{where}: {len(data)} bytes is too short for a room log entry.")
    head, (now,) = data[:1], _NOW.unpack_from(data, 1)
    if not math.isfinite(now):
        raise LogCorrupt(f"{where}: its time is not a finite number.")
    body = data[1 + _NOW.size :]
    if head == _TICK:
        if len(body) % p.POSE_RECORD.itemsize:
            raise LogCorrupt(f"{where}: a tick's poses are not whole {p.POSE_RECORD.itemsize}-byte records.")
        return ("tick", now, None, body)
    if head != _HANDLE:
        raise LogCorrupt(f"{where}: unknown entry kind {head!r}.")
    try:
        doc = json.loads(body)
        pid, kind, fields = doc["p"], doc["k"], doc["m"]
        if not isinstance(pid, str) or not isinstance(fields, dict):
            raise TypeError("participant or fields of the wrong type")
        return ("handle", now, pid, _message(kind, fields))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        raise LogCorrupt(f"{where}: not a valid room input ({problems[:300]})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise LogCorrupt(f"{where}: {' '.join(str(exc).split())[:200]}") from None


def _message(kind: str, m: dict[str, Any]) -> Any:
    if kind == "msg":
        message = p.control_from_fields(m)
        if isinstance(message, (p.Join, p.Ping, p.Ack)):
            raise TypeError(f"a {message.type!r} is never a room input")
        return message
    if kind == "enter":
        skills = m["skills"]
        return Enter(
            _str(m["name"]),
            Role(m["role"]),
            m["last_seq"] if m["last_seq"] is None else int(m["last_seq"]),
            None if m["device"] is None else _str(m["device"]),
            None if skills is None else {_str(k): (float(v[0]), int(v[1])) for k, v in skills.items()},
            int(m.get("protocol", 1)),  # logs written before protocol 2 have none
        )
    if kind == "disconnect":
        return Disconnect()
    if kind == "call_ended":
        return CallEnded()
    if kind == "object_move":
        transform = tuple(float(v) for v in m["transform"])
        if len(transform) != p.TRANSFORM_FLOATS:
            raise TypeError(f"an object move has {p.TRANSFORM_FLOATS} numbers")
        return p.ObjectMove(int(m["object"]), transform)
    raise TypeError(f"unknown input kind {kind!r}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value
