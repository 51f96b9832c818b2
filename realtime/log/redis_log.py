"""Rooms' logs in Redis Streams, for several nodes (realtime.log.backend.RoomLogBackend).

Per room, under its hash tag (realtime.log.lease.room_key):

- ``log``: a stream with one entry per room input. Entry ``n`` has the stream id
  ``0-(n+1)``, so ids are the log's own numbering and trimming by index is exact;
  its fields are ``e`` (the entry) and ``o`` (the epoch of the lease it was
  written under, for audits: epochs never go down along a log).
- ``snap``: a hash with the latest sealed snapshot (``data``), the index it
  covers (``covers``) and the epoch that wrote it.

An append is one script: check the fence against the lease, check the entries
continue the log (or are exactly a retry of entries already there), XADD them,
and with a snapshot, store it and ``XTRIM MINID`` up to the first entry it does
not cover. Never a blind MAXLEN: a trimmed entry is always one a snapshot holds.
A snapshot covering every entry of its append needs no continuity (an owner
re-seeding the log after Redis lost it, realtime.log.backend).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError, ResponseError

from realtime.log.backend import Fence, Fenced, Gap, LogError, Stored
from realtime.log.lease import fence_value, room_key

_APPEND = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED the lease is no longer ' .. ARGV[1])
end
local first = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local last
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #top > 0 then
  last = tonumber(string.sub(top[1][1], 3)) - 1
else
  last = tonumber(redis.call('HGET', KEYS[3], 'covers') or '-1')
end
-- a snapshot that covers every entry of the append stands on its own (an owner re-seeding a
-- log Redis lost): its entries need not continue anything, and are not kept
local covering = ARGV[5] ~= '' and tonumber(ARGV[5]) >= first + count - 1
if count > 0 and not covering then
  if first == last + 1 then
    for i = 0, count - 1 do
      redis.call('XADD', KEYS[2], '0-' .. (first + i + 1), 'e', ARGV[6 + i], 'o', ARGV[4])
    end
  else
    local kept = redis.call('XRANGE', KEYS[2], '0-' .. (first + 1), '0-' .. (first + count))
    local same = #kept == count
    for i = 1, #kept do
      if not same then break end
      same = kept[i][2][2] == ARGV[5 + i]
    end
    if not same then
      return redis.error_reply('GAP an append of entries ' .. first .. ' where the log ends at ' .. last)
    end
  end
end
if ARGV[5] ~= '' then
  local covers = tonumber(ARGV[5])
  redis.call('HSET', KEYS[3], 'covers', covers, 'data', ARGV[6 + count], 'epoch', ARGV[4])
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (covers + 2))
end
return 1
"""

_DROP = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED the lease is no longer ' .. ARGV[1])
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""


class RedisLog:
    """Rooms' logs on a Redis server (or cluster) shared by the nodes."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._append = redis.register_script(_APPEND)
        self._drop = redis.register_script(_DROP)

    @staticmethod
    def _keys(room: str) -> list[str]:
        return [room_key(room, "lease"), room_key(room, "log"), room_key(room, "snap")]

    async def append(
        self, room: str, first: int, entries: list[bytes], snapshot: tuple[int, bytes] | None, fence: Fence | None
    ) -> None:
        args: list[Any] = [
            fence_value(fence) if fence else "",
            first,
            len(entries),
            fence.epoch if fence else 0,
            "" if snapshot is None else snapshot[0],
            *entries,
        ]
        if snapshot is not None:
            args.append(snapshot[1])
        try:
            await self._append(keys=self._keys(room), args=args)
        except ResponseError as exc:
            _raise(exc)
        except RedisError as exc:
            raise LogError(f"Redis: {exc}") from exc

    async def load(self, room: str) -> Stored | None:
        try:
            snap = await self.redis.hgetall(room_key(room, "snap"))
            if not snap:
                return None
            covers = int(snap[b"covers"])
            kept = await self.redis.xrange(room_key(room, "log"), f"0-{covers + 2}", "+")
        except RedisError as exc:
            raise LogError(f"Redis: {exc}") from exc
        tail = [(int(sid.split(b"-")[1]) - 1, fields.get(b"e", b"")) for sid, fields in kept]
        return Stored(snap[b"data"], covers, tail)

    async def drop(self, room: str, fence: Fence | None) -> None:
        try:
            await self._drop(keys=self._keys(room), args=[fence_value(fence) if fence else ""])
        except ResponseError as exc:
            _raise(exc)
        except RedisError as exc:
            raise LogError(f"Redis: {exc}") from exc

    async def size(self, room: str) -> int:
        """Entries kept for a room (what its snapshot does not cover yet)."""
        return int(await self.redis.xlen(room_key(room, "log")))

    async def epochs(self, room: str) -> list[int]:
        """The epoch each kept entry was written under, in log order (the double-owner audit)."""
        return [int(fields[b"o"]) for _, fields in await self.redis.xrange(room_key(room, "log"))]

    async def close(self) -> None:
        """Nothing of its own to close: the Redis client belongs to the node."""


def _raise(exc: ResponseError) -> None:
    text = str(exc)
    if text.startswith("FENCED"):
        raise Fenced(text[len("FENCED ") :]) from None
    if text.startswith("GAP"):
        raise Gap(text[len("GAP ") :]) from None
    raise LogError(f"Redis: {text}") from exc
