"""Room leases on Redis: which node owns a live room, fenced by an epoch.

A room is owned by one node at a time. Taking it is one script: ``SET lease
owner NX PX ttl`` and, if that won, ``INCR epoch``, stored with the lease as
``owner:epoch``. Every write of the room's log carries that ``owner:epoch`` and
is checked against the lease in the same script that writes (realtime.log.
redis_log), so a node that was paused (SIGSTOP, a VM freeze, a long GC) and
lost its lease meanwhile can never write again: another node took the room and
the epoch moved on.

The owner also stops itself. It renews well inside the TTL (every ``ttl/4``),
and counts its lease as valid only until ``sent + ttl * (1 - margin)``, where
``sent`` is its monotonic clock read *before* the command that set or renewed
the lease went out: Redis starts the TTL later than that, so the owner's idea
of the deadline always comes first, by at least the margin, even if the
network or the scheduler delayed the reply. A room whose lease is not valid by
that reckoning does not tick (RoomRunner.may_tick).

Keys share the room's hash tag, ``{<room>}``, so they live on one Redis Cluster
slot and a script may touch them all. Nothing needs cleaning after a crash: a
lease that is not renewed expires by itself, and that is how the others learn
the room needs a new owner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from realtime.log.backend import Fence

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
  return epoch
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def room_key(room: str, part: str) -> str:
    """A room's key in Redis: every key of one room shares its hash tag."""
    return f"amaliy:{{{room}}}:{part}"


def fence_value(fence: Fence) -> str:
    return f"{fence.owner}:{fence.epoch}"


@dataclass(frozen=True)
class LeaseSettings:
    """How long a lease lasts and how much of it the owner trusts."""

    #: milliseconds a lease lasts without renewal: the longest a dead owner's room waits for a new one
    ttl_ms: int = 1000
    #: part of the TTL the owner gives up: it stops ticking at ``ttl * (1 - margin)`` after the last renewal it sent
    margin: float = 0.25

    @property
    def renew_every(self) -> float:
        return self.ttl_ms / 4000


class Leases:
    """Taking, renewing and releasing room leases for one node (``owner``)."""

    def __init__(self, redis: Any, owner: str, settings: LeaseSettings = LeaseSettings()) -> None:
        self.redis = redis
        self.owner = owner
        self.settings = settings
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        #: per room this node owns: its fence and until when (monotonic) the lease is surely ours
        self.held: dict[str, tuple[Fence, float]] = {}
        self.renewals = 0
        self.lost = 0

    def _trusted_until(self, sent: float) -> float:
        return sent + self.settings.ttl_ms / 1000 * (1 - self.settings.margin)

    async def acquire(self, room: str) -> Fence | None:
        """Take the room's lease if nobody holds it; its fence, or None."""
        sent = time.monotonic()
        epoch = await self._acquire(keys=[room_key(room, "lease"), room_key(room, "epoch")], args=[self.owner, self.settings.ttl_ms])
        if not epoch:
            return None
        fence = Fence(self.owner, int(epoch))
        self.held[room] = (fence, self._trusted_until(sent))
        return fence

    async def renew(self, room: str) -> bool:
        """Extend a lease this node holds; False (and forgotten) if it was lost."""
        fence, _ = self.held[room]
        sent = time.monotonic()
        if await self._renew(keys=[room_key(room, "lease")], args=[fence_value(fence), self.settings.ttl_ms]):
            if room in self.held:
                self.held[room] = (fence, self._trusted_until(sent))
            self.renewals += 1
            return True
        self.forget(room)
        return False

    def valid(self, room: str) -> bool:
        """Whether this node may still act as the room's owner, by its own clock."""
        held = self.held.get(room)
        return held is not None and time.monotonic() < held[1]

    def forget(self, room: str) -> None:
        if self.held.pop(room, None) is not None:
            self.lost += 1

    async def release(self, room: str) -> None:
        """Give the lease up (the practical ended, or was handed off) so another may take it at once."""
        held = self.held.pop(room, None)
        if held is not None:
            await self._release(keys=[room_key(room, "lease")], args=[fence_value(held[0])])

    async def owner_of(self, room: str) -> str | None:
        """The node holding the room's lease now, if any."""
        value = await self.redis.get(room_key(room, "lease"))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.rsplit(":", 1)[0]
