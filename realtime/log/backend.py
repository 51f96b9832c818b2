"""What a room log backend is: where a room's entries and its latest snapshot are kept.

A room's log is a sequence of entries numbered 0, 1, 2, … (realtime.log.entries)
and at most one snapshot, which covers every entry up to its ``covers`` index
(-1: none; a room's first snapshot is taken before its first input). Loading a
room is: unseal the snapshot, replay the entries after ``covers``.

Every write is one ``append``: entries ``first … first+len-1`` and, optionally,
a new snapshot, applied together or not at all. Storing a snapshot trims the
entries it covers (by index, never by a count), so a log holds what the latest
snapshot does not. An append whose ``first`` is not the log's next index is
refused (Gap): two writers, or a lost write, must never interleave silently.
An append whose snapshot covers all its entries stands on its own and is not
checked for continuity (its entries are not kept): that is how an owner that
still has the room re-seeds a log its store lost (Redis restarted empty).
A backend for several nodes also checks the writer's fence (owner and epoch of
its lease) in the same atomic step and raises Fenced when the lease is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Fence(NamedTuple):
    """Who may write a room's log: the node holding its lease, and the lease's epoch."""

    owner: str
    epoch: int


@dataclass(frozen=True)
class Stored:
    """A room's log as loaded: its snapshot (sealed), what it covers, and the entries after it."""

    snapshot: bytes
    covers: int
    #: (index, entry) in index order, every index after ``covers``
    tail: list[tuple[int, bytes]]


class LogError(Exception):
    """The log could not be written or read (the store is down, full or damaged)."""


class Gap(LogError):
    """An append that does not continue the log where it ends."""


class Fenced(LogError):
    """The writer no longer holds the room's lease: another node owns the room now."""


class RoomLogBackend(Protocol):
    """Where rooms' logs live (embedded SQLite under the data dir, or Redis Streams)."""

    async def append(
        self, room: str, first: int, entries: list[bytes], snapshot: tuple[int, bytes] | None, fence: Fence | None
    ) -> None:
        """Add entries ``first…``; with ``snapshot`` = (covers, sealed), store it and trim what it covers."""

    async def load(self, room: str) -> Stored | None:
        """The room's log, or None if it has none."""

    async def drop(self, room: str, fence: Fence | None) -> None:
        """Forget a room's log (the practical ended)."""

    async def close(self) -> None:
        """Finish pending writes and release the store."""
