"""Shared records: a deployment's store as one log in Redis that every node replicates.

With REDIS_URL, the records every node must see alike (teachers and their keys, courses
and rosters, practicals, results, XP, badges, the learner model, the xAPI outbox) are
not written to a node's SQLite file directly. Each write of server.store is an entry of
one Redis stream, ``<deployment>:{records}:log``, entry n at id ``0-n``: one Lua script
INCRs ``…:n`` and XADDs, so the numbers have no gaps. Every node, and every ``amaliy``
command run with REDIS_URL, applies the entries in order to its own file, which is a
replica of the deployment's records: the writes decide nothing by chance or by the clock
(their callers choose ids, codes and times), so every replica holds the same rows. So:

- a write returns once this node has applied it, and a read first applies whatever the
  log holds beyond this replica (``GET …:n``, then ``XRANGE``): what one node wrote, the
  next request to any node reads;
- writes a replay can repeat are idempotent by id: a record by (practical, record id), so
  XP is credited once whichever node stores a record, however often;
- reads are local, so a course view or a ladder costs what it costs on one machine;
- Redis holds the log (run it with AOF, docs/operations.md). Every ``snapshot_every``
  entries one node (``…:snapping``, SET NX) writes ``…:snapshot``: a whole SQLite file,
  zlib-compressed, with the entry it covers; the log is then trimmed by MINID to just
  after it. A node that is new, or behind the trimmed part, or the replica of another
  deployment, loads the snapshot and applies the tail; a file that held records of its own
  is first copied aside (``amaliy.before-shared-<time>.sqlite3``), never lost;
- the first node of a new deployment seeds it with its own file, atomically (two first
  nodes cannot both seed), so a school that outgrows one machine keeps what it had. The
  seed draws an ``epoch``: if Redis loses its data, a node seeds it again from its replica
  under a new epoch, and a replica of another epoch reloads rather than miss entries;
- sign-in codes are hashed with codes.key, so every replica needs the same key: the seed
  puts its node's in ``…:codes``, masked with secret.key (which every node of a deployment
  shares), and a node whose file is replaced by the deployment's takes that key with it
  (its own is kept aside beside its old file). A node with another secret.key cannot
  unmask it and refuses to start.

Redis down: reads are served from the replica as it is (``health`` says since when);
writes fail with RecordsUnavailable (HTTP 503, nothing written). Once one command has
failed, reads and writes do not try Redis again until the applier thread, which keeps
trying off the event loop, has seen it answer: an outage holds the event loop (where
REST handlers read and write) for one timeout at most, not one per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from server.store import Store

log = logging.getLogger("amaliy.records")

#: while Redis does not answer, the applier thread tries it again this often (seconds)
_RETRY = 0.25
#: entries read from the log per round trip
_BATCH = 500
#: the applier thread waits this long for new entries per round (milliseconds)
_BLOCK_MS = 1000
#: a snapshot being written keeps other nodes from writing one for at most this long (ms)
_SNAPPING_MS = 60_000

_APPEND = """
if redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('NOSEED the shared records are not seeded yet')
end
local n = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], '0-' .. n, 'op', ARGV[1], 'args', ARGV[2], 'origin', ARGV[3])
return n
"""

_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'data', ARGV[2], 'epoch', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[4], ARGV[4])
return 1
"""

_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

_SNAPSHOT = """
local cur = redis.call('HMGET', KEYS[1], 'n', 'epoch')
if cur[2] ~= ARGV[3] or tonumber(cur[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'data', ARGV[2])
redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (tonumber(ARGV[1]) + 1))
return 1
"""


class RecordsError(Exception):
    """This node cannot replicate the deployment's records (Redis down at start, another codes.key)."""


class RecordsUnavailable(Exception):
    """A write could not reach the shared records; the message says what to do."""


@dataclass(frozen=True)
class SharedSettings:
    """Where the deployment's records are shared, and how often a snapshot is written."""

    url: str
    deployment: str = "amaliy"
    snapshot_every: int = 10_000
    #: seconds a Redis command may take before Redis counts as down
    timeout: float = 0.5


class Replica:
    """This process's replica of the shared records, kept by ``store`` (module docstring)."""

    def __init__(self, store: Store, settings: SharedSettings) -> None:
        self.store = store
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.url, socket_timeout=settings.timeout, socket_connect_timeout=settings.timeout)
        #: the applier thread's blocking reads wait longer than other commands may
        self._reader = redis.Redis.from_url(settings.url, socket_timeout=settings.timeout + _BLOCK_MS / 1000, socket_connect_timeout=settings.timeout)
        prefix = f"{settings.deployment}:{{records}}:"
        self._log, self._counter, self._snapshot = prefix + "log", prefix + "n", prefix + "snapshot"
        self._codes, self._snapping = prefix + "codes", prefix + "snapping"
        self._append = self.redis.register_script(_APPEND)
        self._seed = self.redis.register_script(_SEED)
        self._write_snapshot = self.redis.register_script(_SNAPSHOT)
        self._claim = self.redis.register_script(_CLAIM)
        self._origin = secrets.token_hex(8)
        #: serialises applying (the applier thread, writes and reads of this process)
        self._applying = threading.RLock()
        #: outcomes of this process's own writes, by entry, until their caller takes them
        self._outcomes: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.epoch = ""
        self.snapshot_n = 0
        #: the log's last entry when last seen; monotonic time Redis stopped answering (None: it answers)
        self.log_end = 0
        self.down_since: float | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Join the shared records (RecordsError if this node cannot), catch up, and keep up."""
        try:
            self._bootstrap()
            self._advance(None)
        except RedisError as exc:
            raise RecordsError(f"Redis at {self.settings.url} does not answer ({exc}). Start it, or unset REDIS_URL to run this node on its own.") from None
        self._thread = threading.Thread(target=self._follow, name="amaliy-records", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=_BLOCK_MS / 1000 + self.settings.timeout + 1)
        self.redis.close()
        self._reader.close()

    # ------------------------------------------------------------------ what the store calls

    def submit(self, name: str, args: dict[str, Any]) -> Any:
        """Append one write to the shared log and apply the log up to it; returns the write's
        result, or raises the exception that is its answer (CourseNotEmpty, …)."""
        if self.down_since is not None:
            raise RecordsUnavailable(f"The shared records (Redis at {self.settings.url}) do not answer; nothing was changed. Try again in a moment.")
        entry = [name, json.dumps(args, separators=(",", ":")), self._origin]
        try:
            try:
                n = int(self._append(keys=[self._counter, self._log, self._snapshot], args=entry))
            except ResponseError as exc:
                if "NOSEED" not in str(exc):
                    raise
                self._bootstrap()  # Redis lost its data: seed it again from this replica, then write
                n = int(self._append(keys=[self._counter, self._log, self._snapshot], args=entry))
        except RedisError as exc:
            self._went_down(exc)
            raise RecordsUnavailable(f"The shared records (Redis at {self.settings.url}) do not answer; nothing was changed. Try again in a moment.") from None
        try:
            self._advance(n)
        except RedisError as exc:
            self._went_down(exc)
            raise RecordsUnavailable("The change reached the shared records, but this node could not confirm it; reload to see it.") from None
        with self._applying:
            outcome = self._outcomes.pop(n, None)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def catch_up(self) -> None:
        """Apply what other nodes wrote since this replica last looked (before a read). With
        Redis down the read is served from the replica as it is."""
        if self.down_since is not None:
            return
        try:
            end = int(self.redis.get(self._counter) or 0)
            self.log_end = end
            if end > self.store.replica_state()[1]:
                self._advance(end)
        except RedisError as exc:
            self._went_down(exc)
        except RecordsUnavailable as exc:  # the log lost entries this replica needs; the applier thread seeds again
            self.last_error = str(exc)

    def claim(self, duty: str, ttl_ms: int = 10_000) -> bool:
        """Whether this process holds, or now takes, the deployment's one ``duty`` (``xapi-sender``:
        the node that sends the outbox, so a statement is not POSTed by every node). Held while
        renewed within ``ttl_ms``; a dead holder's duty passes to the next node that asks."""
        if self.down_since is not None:
            return False
        try:
            return bool(self._claim(keys=[f"{self.settings.deployment}:{{records}}:{duty}"], args=[self._origin, ttl_ms]))
        except RedisError as exc:
            self._went_down(exc)
            return False

    def health(self) -> dict[str, Any]:
        applied = self.store.replica_state()[1]
        return {
            "mode": "shared",
            "deployment": self.settings.deployment,
            "applied": applied,
            "behind": max(0, self.log_end - applied),
            "snapshot": self.snapshot_n,
            "redis": "ok" if self.down_since is None else "down",
            "down_for_s": None if self.down_since is None else round(time.monotonic() - self.down_since, 1),
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ applying

    def _advance(self, to: int | None) -> None:
        """Apply the log's entries after this replica's position, up to ``to`` (None: to its end)."""
        with self._applying:
            reloads = 0
            applied = self.store.replica_state()[1]
            while to is None or applied < to:
                end = "+" if to is None else f"0-{to}"
                entries = self.redis.xrange(self._log, f"0-{applied + 1}", end, count=_BATCH)
                if entries and _number(entries[0][0]) == applied + 1:
                    for entry_id, fields in entries:
                        self._apply(_number(entry_id), fields)
                    applied = _number(entries[-1][0])
                    continue
                if not entries and to is None:
                    return
                # the next entry is not in the log: trimmed after a snapshot this replica is behind,
                # or lost with Redis's data; the snapshot is the way back
                if reloads:
                    raise RecordsUnavailable(f"entry {applied + 1} of the shared records is neither in the log nor in its snapshot")
                reloads += 1
                self._bootstrap()
                applied = self.store.replica_state()[1]

    def _apply(self, n: int, fields: dict[bytes, bytes]) -> None:
        name = fields[b"op"].decode()
        done, outcome = self.store.apply(n, name, json.loads(fields[b"args"]))
        if done and fields.get(b"origin") == self._origin.encode():
            self._outcomes[n] = outcome
            while len(self._outcomes) > 1000:  # a writer that gave up waiting never takes its outcome
                del self._outcomes[min(self._outcomes)]

    def _bootstrap(self) -> None:
        """Make this file a replica the log can be applied to: seed a new deployment with it,
        or load the snapshot when the log alone cannot bring it up to date."""
        with self._applying:
            replicates, applied = self.store.replica_state()
            ours = replicates is not None and replicates.startswith(self.settings.deployment + "/")
            head = self.redis.hmget(self._snapshot, "n", "epoch")
            if head[0] is None:
                epoch = secrets.token_hex(8)
                base = applied if ours else 0
                seed = [base, zlib.compress(self.store.dump()), epoch, self._masked(self.store.code_key)]
                if self._seed(keys=[self._snapshot, self._counter, self._log, self._codes], args=seed):
                    self.store.set_replica(f"{self.settings.deployment}/{epoch}", base)
                    self.epoch, self.snapshot_n = epoch, base
                    log.info("shared records: deployment %r seeded from %s (entry %d)", self.settings.deployment, self.store.path, base)
                    return
                head = self.redis.hmget(self._snapshot, "n", "epoch")
            self._take_code_key(ours)
            n, self.epoch = int(head[0]), head[1].decode()
            self.snapshot_n = n
            if replicates == f"{self.settings.deployment}/{self.epoch}" and (
                applied >= n or self.redis.xrange(self._log, f"0-{applied + 1}", f"0-{applied + 1}")
            ):
                return
            n_again, data = self.redis.hmget(self._snapshot, "n", "data")
            n = int(n_again)
            aside = self.store.load(zlib.decompress(data), keep_aside=not ours and self.store.has_records())
            self.store.set_replica(f"{self.settings.deployment}/{self.epoch}", n)
            self.snapshot_n = n
            if aside is not None:
                log.warning("shared records: this data dir held records of its own; they are kept in %s, and the deployment's are used", aside)
            log.info("shared records: loaded the snapshot at entry %d of deployment %r", n, self.settings.deployment)

    def _pad(self) -> bytes:
        from server.auth import load_secret  # server.auth reads the store, so not at import

        return hmac.digest(load_secret(self.store.path.parent), b"amaliy-codes-key:" + self.settings.deployment.encode(), hashlib.sha256)

    def _masked(self, key: bytes) -> bytes:
        """codes.key as the deployment keeps it: masked with secret.key, then its fingerprint."""
        return bytes(a ^ b for a, b in zip(key, self._pad())) + _fingerprint(key)

    def _take_code_key(self, ours: bool) -> None:
        """Hash sign-in codes with the deployment's key; a file about to be replaced by the
        deployment's takes it (its own kept aside), one that replicates it must have it already."""
        held = self.redis.get(self._codes)
        if held is None:
            raise RecordsUnavailable("the shared records have a snapshot but no codes key; Redis lost part of its data")
        key = bytes(a ^ b for a, b in zip(held[:32], self._pad()))
        if _fingerprint(key) != held[32:]:
            raise RecordsError(
                f"this node's secret.key is not the deployment's ({self.settings.deployment!r}): copy "
                f"{self.store.path.parent / 'secret.key'} from a node of the deployment"
            )
        if key == self.store.code_key:
            return
        if ours and self.store.has_records():
            raise RecordsError(
                f"this node's codes.key ({self.store.path.parent / 'codes.key'}) is not the one deployment "
                f"{self.settings.deployment!r} uses, though its file replicates it; copy codes.key from a node of the deployment"
            )
        if not self.store.has_records():  # a new data dir: nothing was hashed with its own key
            self.store.take_code_key(key, keep_aside=False)
            return
        aside = self.store.take_code_key(key)
        log.warning("shared records: sign-in codes are hashed with the deployment's key; this node's own is kept in %s", aside)

    # ------------------------------------------------------------------ the applier thread

    def _follow(self) -> None:
        """Apply new entries as they come, seed Redis again if it lost its data, write snapshots."""
        while not self._stopping.is_set():
            try:
                if self.down_since is not None:  # is it back (perhaps empty)? then reads and writes may try again
                    self.redis.ping()
                    if not self.redis.exists(self._snapshot):
                        self._bootstrap()
                    self._came_back()
                applied = self.store.replica_state()[1]
                if self._reader.xread({self._log: f"0-{applied}"}, count=1, block=_BLOCK_MS):
                    self._advance(None)
                elif not self.redis.exists(self._snapshot):
                    self._bootstrap()
                self.log_end = max(self.log_end, self.store.replica_state()[1])
                self._maybe_snapshot()
            except RedisError as exc:
                self._went_down(exc)
                self._stopping.wait(_RETRY)
            except Exception as exc:  # a fault of this node (disk, a write it does not know): say so, keep trying
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("shared records: cannot apply the log")
                self._stopping.wait(1.0)

    def _maybe_snapshot(self) -> None:
        applied = self.store.replica_state()[1]
        if applied - self.snapshot_n < self.settings.snapshot_every:
            return
        current = self.redis.hget(self._snapshot, "n")
        self.snapshot_n = int(current or 0)
        if applied - self.snapshot_n < self.settings.snapshot_every or not self.redis.set(self._snapping, self._origin, nx=True, px=_SNAPPING_MS):
            return
        try:
            with self._applying:  # the file and the entry it covers, read together
                n, data = self.store.replica_state()[1], self.store.dump()
            if self._write_snapshot(keys=[self._snapshot, self._log], args=[n, zlib.compress(data), self.epoch]):
                self.snapshot_n = n
                log.info("shared records: snapshot at entry %d (%d bytes); the log is trimmed to after it", n, len(data))
        finally:
            self.redis.delete(self._snapping)

    def _went_down(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("shared records: Redis at %s does not answer (%s); reads are served from this node's replica, writes refused", self.settings.url, exc)
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _came_back(self) -> None:
        if self.down_since is not None:
            log.info("shared records: Redis at %s answers again after %.1f s", self.settings.url, time.monotonic() - self.down_since)
            self.down_since = None


def _fingerprint(key: bytes) -> bytes:
    return hashlib.sha256(b"amaliy-codes:" + key).digest()[:16]


def _number(entry_id: bytes) -> int:
    """Entry n of the log has the stream id ``0-n``."""
    return int(entry_id.split(b"-", 1)[1])
