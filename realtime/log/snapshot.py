"""A room's snapshot: its whole state as bytes, sealed with the deployment's key; and its state hash.

A snapshot is taken by the room's owner and read back by whichever node owns the
room next (after a restart or a failover), so it is authenticated before a byte
of it is interpreted: ``MAGIC`` + HMAC-SHA256 over the body + the body. The body
is a pickle of the Room (the room and its engines are plain objects; Room drops
its derived views in __getstate__), in which the scene is replaced by its
``(id, version)``: a scene is content-addressed and every node has it in its own
scene store, so it is looked up there, not copied into every snapshot.

Pickle runs code on load, which is why the seal comes first: only a holder of
the key (the node secret, the same on every node of a deployment) can produce a
snapshot that is unpickled. A snapshot under another key, or damaged, raises
SnapshotRefused and the room does not load.

``state_hash`` is what "the same state" means when a room is rebuilt elsewhere:
what every client would be told on joining (the JSON snapshot, canonical) plus
every pose and object (the full tick frame).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pickle
from typing import Callable

from realtime.room import Room
from scenes.model import Scene

MAGIC = b"AMS1"
_DIGEST = hashlib.sha256().digest_size


class SnapshotRefused(Exception):
    """A snapshot that is not this deployment's, is damaged, or names a scene this node lacks."""


def seal(room: Room, key: bytes) -> bytes:
    """The room as a sealed snapshot."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.persistent_id = lambda obj: ("scene", obj.id, obj.version) if isinstance(obj, Scene) else None  # type: ignore[method-assign]
    pickler.dump(room)
    body = buffer.getvalue()
    return MAGIC + hmac.digest(key, body, "sha256") + body


def unseal(blob: bytes, key: bytes, scene: Callable[[str, int], Scene]) -> Room:
    """The room a sealed snapshot holds; ``scene(id, version)`` gives this node's copy of a scene."""
    head, mac, body = blob[: len(MAGIC)], blob[len(MAGIC) : len(MAGIC) + _DIGEST], blob[len(MAGIC) + _DIGEST :]
    if head != MAGIC:
        raise SnapshotRefused("it is not a room snapshot of this version of Amaliy")
    if not hmac.compare_digest(mac, hmac.digest(key, body, "sha256")):
        raise SnapshotRefused("its seal does not match this node's key (another deployment's secret.key, or damaged)")
    unpickler = pickle.Unpickler(io.BytesIO(body))

    def load(pid: object) -> Scene:
        if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] == "scene"):
            raise SnapshotRefused(f"it refers to an unknown object {pid!r}")
        return scene(pid[1], pid[2])

    unpickler.persistent_load = load  # type: ignore[method-assign]
    try:
        room = unpickler.load()
    except SnapshotRefused:
        raise
    except Exception as exc:  # sealed by us yet unreadable: written by other code
        raise SnapshotRefused(f"it cannot be read by this version of Amaliy ({type(exc).__name__}: {exc})") from None
    if not isinstance(room, Room):
        raise SnapshotRefused(f"it holds a {type(room).__name__}, not a room")
    return room


def state_hash(room: Room) -> str:
    """sha256 of what every client would be told of the room: its snapshot and every pose and object."""
    digest = hashlib.sha256(json.dumps(room.snapshot(), sort_keys=True, separators=(",", ":")).encode())
    digest.update(room.full_frame())
    return digest.hexdigest()
