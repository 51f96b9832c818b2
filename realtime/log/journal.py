"""A live room's journal: its inputs into the room log, and its answers held until they are in it.

The room records each input (Room.inputs); the journal encodes them, appends
them in batches, and every so often adds a sealed snapshot to a batch, which
trims the log behind it. What the room answered to an input (a grab granted, a
step done, a score) is held until the append carrying that input has returned,
then delivered in order: a client is never told of a state the log could lose.
A tick that only moved poses acknowledges nothing: its frame goes out at once
(when nothing is held before it) and its entry joins the next append, at most
``flush_every`` later. At most one append per room is in flight; inputs that
arrive meanwhile wait for the next one, so a slow store makes batches bigger,
not more numerous.

When an append fails (the store is down or full) the journal keeps the entries
to try again and delivers what it held anyway: the class goes on, from memory,
for up to ``max_pending`` entries, and ``degraded`` says so (/healthz). Past that
the room's log is given up (``lost``), never left half-written. A Fenced append
means this node's lease is gone: the entries are kept and ``on_fenced`` tells
the node, which either takes the lease again (``refence``: nobody else had the
room, so this copy is still the room) or stops this copy (another node owns it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Callable

from realtime.log import entries as codec
from realtime.log.backend import Fence, Fenced, LogError, RoomLogBackend
from realtime.log.snapshot import seal
from realtime.room import Outgoing, Room, Send

log = logging.getLogger("amaliy.log")


@dataclass(frozen=True)
class JournalSettings:
    """How often a room is snapshotted, and how long it may run on when its log cannot be written."""

    #: seconds of room time between snapshots (a new owner replays at most this much log)
    snapshot_every: float = 5.0
    #: entries kept in memory while appends fail (about 100 s of a room at 30 Hz) before the log is given up
    max_pending: int = 3000
    #: seconds between retries of a failed append
    retry_after: float = 0.5
    #: longest a batch of entries nothing waits on (ticks that only moved poses) stays unwritten:
    #: they go out together, a few ticks per append, instead of one append per tick
    flush_every: float = 0.1


class Journal:
    """The room log of one live room, written by its owner."""

    def __init__(
        self,
        room: Room,
        backend: RoomLogBackend,
        key: bytes,
        deliver: Callable[[list[Outgoing]], None],
        *,
        next_index: int = 0,
        fence: Fence | None = None,
        settings: JournalSettings = JournalSettings(),
        on_fenced: Callable[[], None] = lambda: None,
    ) -> None:
        assert room.inputs is not None, "a journaled room records its inputs"
        self.room = room
        self.backend = backend
        self.key = key
        self.fence = fence
        self.settings = settings
        self._deliver = deliver
        self._on_fenced = on_fenced
        #: index the next encoded entry gets
        self.next_index = next_index
        self._batch: list[bytes] = []
        self._snapshot: tuple[int, bytes] | None = None
        self._snapshot_at = room.now
        #: outputs waiting for the append of the batch numbered with them
        self._held: deque[tuple[int, list[Outgoing]]] = deque()
        self._filling = 1
        self._inflight: asyncio.Future[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: appends that failed since the last that succeeded (0: healthy)
        self.failures = 0
        self.last_error = ""
        self.lost = False
        #: an append was refused for want of the lease; nothing is written until ``refence``
        self.fenced = False
        self.appends = 0
        #: entries appended since the latest snapshot (what a new owner would replay)
        self.since_snapshot = 0

    @property
    def degraded(self) -> bool:
        """The room runs from memory: its latest inputs are not in the log yet."""
        return self.failures > 0 or self.lost

    @property
    def pending_entries(self) -> int:
        """Entries captured but not yet confirmed in the log."""
        return len(self._batch)

    @property
    def settled(self) -> bool:
        """Nothing waits: every captured input is in the log and every held output delivered."""
        return not self._batch and not self._held and self._inflight is None

    def begin(self) -> None:
        """Snapshot the room as it is now (a new room, or one just restored) so the log starts there."""
        self._capture()
        self._take_snapshot()
        self._flush()

    def capture(self, out: list[Outgoing]) -> list[Outgoing]:
        """Take the room's new inputs; return what may be delivered now (the rest is held).

        Pose frames acknowledge nothing (a pose lost in a crash is sent again by its client a tick
        later), so with nothing held before them they go out at once, and their ticks' entries
        wait up to ``flush_every`` to share an append with whatever comes next."""
        self._capture()
        if self.lost or self.failures or (not self._batch and not self._held and self._inflight is None):
            return out
        if not self._held and all(isinstance(item, Send) and item.replaceable for item in out):
            if self._inflight is None and self._retry is None and self._timer is None and not self.fenced:
                self._timer = asyncio.get_running_loop().call_later(self.settings.flush_every, self._flush)
            return out
        if out:
            self._held.append((self._filling, out))
        if self._inflight is None and self._retry is None and not self.fenced:
            self._flush()
        return []

    def tick(self) -> None:
        """After a room tick: snapshot when one is due."""
        if not self.lost and self.room.now - self._snapshot_at >= self.settings.snapshot_every:
            self._take_snapshot()
            if self._inflight is None and self._retry is None and not self.fenced:
                self._flush()

    def final(self) -> None:
        """Snapshot now (a hand-off to another node, a clean shutdown)."""
        self._capture()
        self._take_snapshot()
        if self._inflight is None and self._retry is None and not self.fenced:
            self._flush()

    def refence(self, fence: Fence) -> None:
        """Write on under a lease taken again: a snapshot of the room as it is stands for all
        that was not written (the store may have lost the log meanwhile)."""
        self.fence = fence
        self.fenced = False
        self.failures = 0
        self._capture()
        self._take_snapshot()
        if self._inflight is None:
            if self._retry is not None:
                self._retry.cancel()
            self._flush()

    async def drained(self) -> None:
        """Wait until everything captured is in the log (or the log was given up)."""
        while not self.lost and not self.fenced and (self._batch or self._snapshot or self._inflight is not None):
            if self._inflight is not None:
                await asyncio.wait([self._inflight])
            elif self._retry is None:
                self._flush()
            else:
                await asyncio.sleep(self.settings.retry_after / 4)

    # ------------------------------------------------------------------ internals

    def _capture(self) -> None:
        inputs = self.room.inputs
        if inputs and not self.lost:
            self._batch.extend(codec.encode(entry) for entry in inputs)
        if inputs:
            inputs.clear()

    def _take_snapshot(self) -> None:
        self._snapshot = (self.next_index + len(self._batch) - 1, seal(self.room, self.key))
        self._snapshot_at = self.room.now

    def _flush(self) -> None:
        self._retry = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lost:  # given up, or this copy was stopped: nothing more is written
            return
        if not self._batch and self._snapshot is None:
            self._release(self._filling)
            return
        batch, snapshot, number = self._batch, self._snapshot, self._filling
        self._batch, self._snapshot = [], None
        self._filling += 1
        first = self.next_index
        self.next_index += len(batch)
        fence = self.fence
        future = asyncio.ensure_future(self.backend.append(self.room.id, first, batch, snapshot, fence))
        self._inflight = future
        future.add_done_callback(lambda done: self._appended(done, first, batch, snapshot, number, fence))

    def _appended(
        self, done: asyncio.Future[None], first: int, batch: list[bytes], snapshot: tuple[int, bytes] | None, number: int,
        fence: Fence | None = None,
    ) -> None:
        self._inflight = None
        error = None if done.cancelled() else done.exception()
        if done.cancelled():
            return
        if isinstance(error, Fenced) and fence == self.fence:  # (sent under a lease since taken again: just retry)
            log.warning("room %s: %s", self.room.id, error)
            self._failed(error, first, batch, snapshot)
            self.fenced = True
            self._release(number)
            self._on_fenced()
            return
        if error is not None:
            self._failed(error, first, batch, snapshot)
        else:
            self.appends += 1
            self.failures = 0
            # a batch's snapshot covers all of the batch (it is taken after its entries are captured)
            self.since_snapshot = 0 if snapshot is not None else self.since_snapshot + len(batch)
        self._release(number)
        if self.lost:
            return
        loop = asyncio.get_running_loop()
        if self.failures and (self._batch or self._snapshot is not None or self._held):
            self._retry = loop.call_later(self.settings.retry_after, self._flush)
        elif self._snapshot is not None or self._held:
            self._flush()
        elif self._batch and self._timer is None:  # only pose ticks wait: let them gather
            self._timer = loop.call_later(self.settings.flush_every, self._flush)

    def _failed(self, error: BaseException, first: int, batch: list[bytes], snapshot: tuple[int, bytes] | None) -> None:
        """Keep a failed batch for the next try (in front of what came since), within the bound."""
        self.failures += 1
        self.last_error = str(error) if isinstance(error, LogError) else f"{type(error).__name__}: {error}"
        if self.failures == 1:
            log.error("room %s: its log cannot be written (%s); running from memory", self.room.id, self.last_error)
        self.next_index = first
        self._batch = batch + self._batch
        if self._snapshot is None and snapshot is not None:
            self._snapshot = snapshot
        if len(self._batch) > self.settings.max_pending:
            log.error("room %s: %d entries could not be logged; the room's log is given up", self.room.id, len(self._batch))
            self.lost = True
            self._batch, self._snapshot = [], None

    def _release(self, number: int) -> None:
        """Deliver, in order, every held output whose batch is in the log (all of them once failing)."""
        ready: list[Outgoing] = []
        while self._held and (self._held[0][0] <= number or self.failures or self.lost):
            ready += self._held.popleft()[1]
        if ready:
            self._deliver(ready)
