"""Bringing a room back from its log: unseal the snapshot, replay the entries after it.

The room that comes back is the room that was, as of the last entry the log
holds: the same participants (each now waiting in its resume window), the same
holds, challenge progress, scores and event sequence. What replay answers is
dropped except the room's records, which the node stores again by id (a record
is stored once however often it is replayed), since the crash may have come
between an entry and its record reaching the store.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from realtime.log import entries as codec
from realtime.log.backend import Stored
from realtime.log.snapshot import unseal
from realtime.room import Record, Room, apply
from scenes.model import Scene


class Restored(NamedTuple):
    room: Room
    #: index the room's next log entry gets
    next_index: int
    #: records the replayed tail produced, to store again (idempotent by id)
    records: list[Record]


def restore(stored: Stored, key: bytes, scene: Callable[[str, int], Scene]) -> Restored:
    """The room a log holds. Raises SnapshotRefused or LogCorrupt (naming the entry); never skips one."""
    room = unseal(stored.snapshot, key, scene)
    expected = stored.covers + 1
    inputs = []
    for index, data in stored.tail:
        if index != expected:
            raise codec.LogCorrupt(f"room {room.id}: entry {expected} is missing from its log (the next kept is {index}).")
        inputs.append(codec.decode(data, f"room {room.id}, log entry {index}"))
        expected += 1
    room.inputs = None  # replayed inputs are in the log already
    out = apply(room, inputs)
    room.inputs = []
    return Restored(room, expected, [item for item in out if isinstance(item, Record)])
