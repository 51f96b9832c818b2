"""Adaptive downstream: judge each client's link and choose what quality it can take.

A phone on a weak link must get fewer, smaller pose frames before its socket
backs up so far that the fan-out has to skip it (pose frames) or drop it
(events). Two signals say a link cannot keep up, both measured here without
any clock but the one passed in (sans-I/O):

* the socket backlog: bytes written to the transport and not yet taken by the
  kernel, which grows once the kernel's own send buffer is full;
* acknowledgements (protocol 2's ``ack``): the client names the newest tick it
  has processed. The age of the oldest tick written after it is how long this
  client's frames now wait in buffers and on the wire, which grows long before
  the backlog does. The bytes acknowledged per second are its throughput.

A client that never acknowledges (version 1, or a client that does not bother)
is judged on its backlog alone; one that stops acknowledging for
``ACK_STALE`` seconds is treated the same, so a missing ack never makes a link
look worse than its backlog says.

The level (realtime.interest.LEVELS) goes down one step at a time, at most once
a ``STEP_DOWN_AFTER`` seconds so each step can show its effect, and back up one
step after ``STEP_UP_AFTER`` seconds of a clear link.
"""

from __future__ import annotations

from collections import deque

from realtime.interest import LEVELS

#: A backlog past this many bytes, or frames waiting this long, mean the link is falling behind.
WEAK_BACKLOG = 32 * 1024
WEAK_DELAY = 1.0
#: A link is clear when its backlog is under this and its frames wait less than this.
CLEAR_BACKLOG = 4 * 1024
CLEAR_DELAY = 0.4
#: Seconds between steps down, and of a clear link before a step up.
STEP_DOWN_AFTER = 1.0
STEP_UP_AFTER = 5.0
#: Seconds without an ack after which a client is judged on its backlog alone.
ACK_STALE = 5.0
#: Tick frames remembered per link for matching acks (about 8 s at 30 Hz).
REMEMBERED_TICKS = 256
LOWEST = len(LEVELS) - 1


class Link:
    """What was sent on one connection, what its client acknowledged, and its level."""

    __slots__ = ("level", "sent", "throughput", "_ticks", "_acked_at", "_acked_bytes", "_changed_at", "_clear_since")

    def __init__(self, now: float) -> None:
        self.level = 0
        #: bytes written to this connection so far
        self.sent = 0
        #: bytes per second the client acknowledged, smoothed; None until two acks
        self.throughput: float | None = None
        self._ticks: deque[tuple[int, int, float]] = deque(maxlen=REMEMBERED_TICKS)
        self._acked_at: float | None = None
        self._acked_bytes = 0
        self._changed_at = now
        self._clear_since: float | None = now

    def wrote(self, nbytes: int, tick: int | None, now: float) -> None:
        """``nbytes`` went to the transport; ``tick`` if they were that tick's frame."""
        self.sent += nbytes
        if tick is not None:
            self._ticks.append((tick, self.sent, now))

    def ack(self, tick: int, now: float) -> None:
        """The client has processed every frame up to tick ``tick``; unknown or old ticks are ignored."""
        ticks = self._ticks
        if not ticks or tick > ticks[-1][0]:  # a tick never sent here: not evidence of anything
            return
        while ticks and ticks[0][0] < tick:
            ticks.popleft()
        if not ticks or ticks[0][0] != tick:
            return
        _, sent, _ = ticks.popleft()
        if self._acked_at is not None and now > self._acked_at:
            rate = (sent - self._acked_bytes) / (now - self._acked_at)
            self.throughput = rate if self.throughput is None else 0.7 * self.throughput + 0.3 * rate
        self._acked_at, self._acked_bytes = now, sent

    def waiting(self, now: float) -> float | None:
        """Seconds the oldest unacknowledged tick frame has waited, or None if acks do not count."""
        if self._acked_at is None or now - self._acked_at > ACK_STALE:
            return None
        return now - self._ticks[0][2] if self._ticks else 0.0

    def judge(self, backlog: int, now: float) -> str | None:
        """Move the level if the link calls for it; returns why it moved, or None."""
        waited = self.waiting(now)
        weak = backlog > WEAK_BACKLOG or (waited is not None and waited > WEAK_DELAY)
        clear = backlog < CLEAR_BACKLOG and (waited is None or waited < CLEAR_DELAY)
        if weak:
            self._clear_since = None
            if self.level < LOWEST and now - self._changed_at >= STEP_DOWN_AFTER:
                self.level += 1
                self._changed_at = now
                return "Your connection is slow: sending less detail so you stay in the practical."
            return None
        if not clear:
            self._clear_since = None
            return None
        if self._clear_since is None:
            self._clear_since = now
        if self.level > 0 and now - self._clear_since >= STEP_UP_AFTER and now - self._changed_at >= STEP_UP_AFTER:
            self.level -= 1
            self._changed_at = now
            self._clear_since = now
            return "Your connection has recovered: sending more detail again."
        return None
