"""A node's part in a deployment of several nodes that share one Redis (REDIS_URL).

What the nodes share, under keys named for the deployment (``<deployment>:…``,
``amaliy`` unless AMALIY_DEPLOYMENT says otherwise, so several deployments can
share one Redis):

- ``node:<id>``: each live node's addresses, with a TTL its heartbeat renews, so a
  dead node drops out by itself (no listing to clean up after a crash); ``nodes``
  the ids to look for (an id whose entry expired is dropped from it when read).
  A node refuses to start under an id another live node holds.
- ``secret``: a fingerprint of the deployment's secret.key. Tokens and room
  snapshots are sealed with it, so every node must have the same file; a node
  with another refuses to start and says so.
- ``rooms``: the ids of open practicals that must be hosted somewhere;
  ``session:<id>`` each one's description (scene, teacher, title, code) and
  ``code:<code>`` its join code. These are what lets any node adopt a room.
- per room, its lease and its log (realtime.log.lease, realtime.log.redis_log).

Who hosts a room is decided by its lease alone: the node that opens a
practical takes the lease; every node scans ``rooms`` a few times a second,
and the first to take a lapsed lease adopts the room from its log. There is no
vote and no leader.

While Redis does not answer, rooms keep ticking from memory (their journals hold
the entries) until their leases can no longer be trusted; ``/healthz`` says so
and new joins are refused, since no node can tell where a room is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.log.backend import Fence
from realtime.log.lease import Leases, LeaseSettings
from realtime.log.redis_log import RedisLog

log = logging.getLogger("amaliy.cluster")

#: a node's entry lives this many lease periods without a heartbeat
_NODE_TTL_LEASES = 3


class ClusterError(Exception):
    """This node cannot join the deployment (Redis down at start, a clashing id, another secret)."""


@dataclass(frozen=True)
class Addresses:
    """Where a node is reached: its HTTP base URL and its room socket URL."""

    http: str
    ws: str


class Cluster:
    """This node's membership, its room leases and the shared session directory."""

    def __init__(self, url: str, node_id: str, addresses: Addresses, secret: bytes, lease: LeaseSettings, deployment: str = "amaliy") -> None:
        self.url = url
        self.prefix = deployment + ":"
        self.node_id = node_id
        self.addresses = addresses
        self.redis = aioredis.Redis.from_url(url, socket_timeout=lease.ttl_ms / 2000, socket_connect_timeout=lease.ttl_ms / 1000)
        self.leases = Leases(self.redis, node_id, lease)
        self.log = RedisLog(self.redis)
        self._fingerprint = hashlib.sha256(b"amaliy-deployment:" + secret).hexdigest()[:32]
        self._instance = secrets.token_hex(8)
        self._tasks: list[asyncio.Task[None]] = []
        #: monotonic time Redis stopped answering, None while it answers
        self.down_since: float | None = None
        self.last_error = ""
        self.failovers = 0
        self._on_orphan: Callable[[str, Fence], Awaitable[None]] | None = None
        self._on_lost: Callable[[str], None] | None = None
        #: rooms being adopted now (a scan must not start a second adoption)
        self._adopting: set[str] = set()
        #: the live nodes as last read (every heartbeat), for the addresses joins answer
        self.known: dict[str, Addresses] = {}

    # ------------------------------------------------------------------ life cycle

    async def join(self) -> None:
        """Join the deployment (ClusterError if this node cannot); ``run`` then starts its duties."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise ClusterError(f"Redis at {self.url} does not answer ({exc}). Start it, or unset REDIS_URL to run this node on its own.") from None
        await self.redis.set(self.prefix + "secret", self._fingerprint, nx=True)
        if (await self.redis.get(self.prefix + "secret") or b"").decode() != self._fingerprint:
            raise ClusterError(
                "This node's secret.key is not the deployment's: tokens and room snapshots would not open on the other "
                "nodes. Copy secret.key from a node of this deployment into this node's data dir."
            )
        await self._claim_id()
        self.known = await self.nodes()
        self._tasks = [asyncio.create_task(self._heartbeat())]

    def run(self, on_orphan: Callable[[str, Fence], Awaitable[None]], on_lost: Callable[[str], None]) -> None:
        """Take part once the node can host rooms: ``on_orphan(room, fence)`` adopts a room this
        node just took, ``on_lost(room)`` stops a room whose lease this node lost."""
        self._on_orphan, self._on_lost = on_orphan, on_lost
        self._tasks.append(asyncio.create_task(self._scan()))

    async def _claim_id(self) -> None:
        """Register under node_id; an id held by another live node waits out its TTL once (a
        restart after a crash), then is refused."""
        key = self.prefix + "node:" + self.node_id
        value = json.dumps({"instance": self._instance, **asdict(self.addresses)})
        ttl = self.leases.settings.ttl_ms * _NODE_TTL_LEASES
        deadline = time.monotonic() + ttl / 1000 + 0.5
        while not await self.redis.set(key, value, nx=True, px=ttl):
            if time.monotonic() > deadline:
                raise ClusterError(f"Another live node runs as {self.node_id!r}; give each node its own --node-id (or AMALIY_NODE_ID).")
            await asyncio.sleep(0.1)
        await self.redis.sadd(self.prefix + "nodes", self.node_id)

    async def stop(self, handed_off: list[str]) -> None:
        """Leave: release the leases of rooms handed off (their final snapshot is written), drop our entry."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            for room in handed_off:
                await self.leases.release(room)
            await self.redis.delete(self.prefix + "node:" + self.node_id)
        except (RedisError, OSError) as exc:
            log.warning("leaving the deployment: Redis: %s", exc)
        await self.redis.aclose()

    # ------------------------------------------------------------------ background

    async def _heartbeat(self) -> None:
        """Renew this node's entry and every room lease it holds, well inside their TTLs."""
        key = self.prefix + "node:" + self.node_id
        ttl = self.leases.settings.ttl_ms * _NODE_TTL_LEASES
        value = json.dumps({"instance": self._instance, **asdict(self.addresses)})
        while True:
            await asyncio.sleep(self.leases.settings.renew_every)
            try:
                await self.redis.set(key, value, px=ttl)
                await self.redis.sadd(self.prefix + "nodes", self.node_id)  # again, should Redis have lost it
                self.known = await self.nodes()
                for room in list(self.leases.held):
                    if not await self.leases.renew(room) and self._on_lost is not None:
                        self._on_lost(room)
                self._answered()
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def _scan(self) -> None:
        """Adopt open practicals whose lease lapsed (their node died): whoever takes the lease first."""
        while True:
            await asyncio.sleep(self.leases.settings.renew_every)
            try:
                rooms = [r.decode() for r in await self.redis.smembers(self.prefix + "rooms")]
                for room in rooms:
                    if room in self.leases.held or room in self._adopting:
                        continue
                    if await self.leases.owner_of(room) is None:
                        fence = await self.leases.acquire(room)
                        if fence is not None and self._on_orphan is not None:
                            self._adopting.add(room)
                            asyncio.create_task(self._adopt(room, fence))
                self._answered()
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def _adopt(self, room: str, fence: Fence) -> None:
        """Resume a room whose lease this node took; if that fails, give the lease back so that
        another node (or this one, at its next scan) tries again rather than nobody."""
        try:
            assert self._on_orphan is not None
            await self._on_orphan(room, fence)
            self.failovers += 1
        except Exception:
            log.exception("could not resume room %s here; its lease is released for another try", room)
            with contextlib.suppress(Exception):
                await self.leases.release(room)
        finally:
            self._adopting.discard(room)

    def _answered(self) -> None:
        if self.down_since is not None:
            log.warning("Redis answers again after %.1f s", time.monotonic() - self.down_since)
        self.down_since = None

    def _failed(self, exc: Exception) -> None:
        self.last_error = str(exc)
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("Redis does not answer (%s): rooms run from memory; new joins are refused", exc)

    # ------------------------------------------------------------------ the session directory

    async def publish(self, session: dict[str, Any]) -> Fence:
        """A practical this node opened: take its lease, describe it for the others and list it."""
        fence = await self.leases.acquire(session["id"])
        if fence is None:  # a fresh random id nobody could hold
            raise ClusterError(f"room {session['id']} is already owned")
        await self.describe(session)
        return fence

    async def describe(self, session: dict[str, Any]) -> None:
        """Write a hosted practical's description and listing (again, after Redis lost them)."""
        sid = session["id"]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + "session:" + sid, json.dumps(session))
            if session.get("join_code") and not session.get("preview"):
                pipe.set(self.prefix + "code:" + session["join_code"], sid)
            pipe.sadd(self.prefix + "rooms", sid)
            await pipe.execute()

    async def unpublish(self, session_id: str, join_code: str) -> None:
        """A practical ended: nobody needs to host it any more."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(self.prefix + "rooms", session_id)
            pipe.delete(self.prefix + "code:" + join_code)
            pipe.delete(self.prefix + "session:" + session_id)
            await pipe.execute()
        await self.leases.release(session_id)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.prefix + "session:" + session_id)
        return None if raw is None else json.loads(raw)

    async def session_of_code(self, code: str) -> str | None:
        raw = await self.redis.get(self.prefix + "code:" + code)
        return None if raw is None else raw.decode()

    async def host_of(self, room: str) -> Addresses | None:
        """Where the node hosting a room is reached, if a live node holds its lease."""
        owner = await self.leases.owner_of(room)
        if owner is None:
            return None
        raw = await self.redis.get(self.prefix + "node:" + owner)
        if raw is None:
            return None
        entry = json.loads(raw)
        return Addresses(entry["http"], entry["ws"])

    async def nodes(self) -> dict[str, Addresses]:
        """Every live node, by id: the ids ever registered whose entry has not expired (those that
        have are dropped from the set, so it never grows past the nodes that come and go)."""
        ids = sorted(i.decode() for i in await self.redis.smembers(self.prefix + "nodes"))
        entries = await self.redis.mget([self.prefix + "node:" + i for i in ids]) if ids else []
        gone = [i for i, raw in zip(ids, entries) if raw is None]
        if gone:
            await self.redis.srem(self.prefix + "nodes", *gone)
        return {i: Addresses(**{k: json.loads(raw)[k] for k in ("http", "ws")}) for i, raw in zip(ids, entries) if raw is not None}

    def health(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "redis": "down" if self.down_since is not None else "ok",
            "redis_down_for": None if self.down_since is None else round(time.monotonic() - self.down_since, 1),
            "redis_error": self.last_error if self.down_since is not None else "",
            "leases": len(self.leases.held),
            "lease_renewals": self.leases.renewals,
            "leases_lost": self.leases.lost,
            "failovers": self.failovers,
        }
