"""Scene versions every node of a deployment can host (with REDIS_URL).

A lab is uploaded through one node, but any node may have to run it: the teacher
opens the practical through another, or the host dies and another node adopts the
room. So a new version is copied into Redis when it is catalogued, and a node that
lacks a version takes it from there into its own scene store (scenes.store) under
the same number, with the same blobs:

- ``<deployment>:{scenes}:index``: one hash field ``<package>/<version>`` per version,
  its catalog row (JSON);
- ``<deployment>:{scenes}:blob:<sha256>``: the version's blobs (the package, the
  client GLB, the server's processed data, the manifest, and the GLB's phone variant
  unless the version predates them), each stored once by its hash however many
  versions share it, checked against it when taken;
- ``<deployment>:{scenes}:next:<package>``: the deployment's version numbering (a Lua
  script: one more than both the highest number handed out and the uploading node's own
  highest), so two nodes never give one number to two contents.

``sync`` takes what this node lacks and publishes what it has that the deployment
lacks (its own uploads, those from before it joined, the sample labs); a node runs it
at start, after an upload, before it lists or opens scenes, and before it adopts a
room. Two nodes that hold different contents under one number (uploaded before they
joined) keep their own; the clash is logged once. Redis holds every published lab (its memory must hold them:
docs/operations.md). A version deleted through a node leaves the index (its blobs
too, unless another version uses them); other nodes keep their copies.
"""

from __future__ import annotations

import json
import logging

import redis

from scenes.store import SceneStore, SceneVersion

log = logging.getLogger("amaliy.scenes")

_NEXT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local here = tonumber(ARGV[1])
if here > cur then cur = here end
redis.call('SET', KEYS[1], cur + 1)
return cur + 1
"""


class SharedScenes:
    """This node's link to the deployment's labs in Redis (module docstring)."""

    def __init__(self, url: str, deployment: str, scenes: SceneStore, timeout: float = 5.0) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.scenes = scenes
        self._prefix = f"{deployment}:{{scenes}}:"
        self._index = self._prefix + "index"
        self._next = self.redis.register_script(_NEXT)
        #: versions of the deployment not taken here (a clash, a missing blob): logged once each
        self._refused: set[str] = set()

    def close(self) -> None:
        self.redis.close()

    def number(self, package_id: str, highest_here: int) -> int:
        """The number of a new version of ``package_id`` (scenes.store.SceneStore.add's ``number``)."""
        return int(self._next(keys=[self._prefix + "next:" + package_id], args=[highest_here]))

    def publish(self, row: SceneVersion) -> None:
        """Copy a version catalogued here into Redis, blobs first, so any node can take it."""
        for sha in row.blobs():
            key = self._prefix + "blob:" + sha
            if not self.redis.exists(key):
                self.redis.set(key, self.scenes.blobs.read(sha))
        self.redis.hset(self._index, f"{row.package_id}/{row.version}", json.dumps(row.public()))

    def unpublish(self, row: SceneVersion) -> None:
        """A version deleted here leaves the index, and its blobs unless another version uses them."""
        self.redis.hdel(self._index, f"{row.package_id}/{row.version}")
        used = {sha for raw in self.redis.hvals(self._index) for sha in SceneVersion(**json.loads(raw)).blobs()}
        for sha in set(row.blobs()) - used:
            self.redis.delete(self._prefix + "blob:" + sha)

    def sync(self) -> int:
        """Take every published version this node lacks, and publish each of its own the
        deployment lacks; returns how many it took."""
        index = {field.decode(): SceneVersion(**json.loads(raw)) for field, raw in self.redis.hgetall(self._index).items()}
        taken = 0
        for field, row in index.items():
            if field in self._refused or self.scenes.get(row.package_id, row.version) is not None:
                continue
            blobs = {sha: self.redis.get(self._prefix + "blob:" + sha) for sha in row.blobs()}
            if any(data is None for data in blobs.values()):
                why = "a blob of it is missing in Redis"
            elif self.scenes.import_version(row, blobs):  # type: ignore[arg-type]
                taken += 1
                log.info("scene %s version %d taken from the deployment", row.package_id, row.version)
                continue
            else:
                why = "this node holds other content under that number; upload it again to have it everywhere"
            self._refused.add(field)
            log.warning("scene %s version %d of the deployment is not taken here: %s", row.package_id, row.version, why)
        for row in self.scenes.all_ready():
            if f"{row.package_id}/{row.version}" not in index:
                self.publish(row)
        return taken
