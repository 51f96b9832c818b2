"""Limits on every size and rate in a live room, and the token bucket that enforces rates.

One dataclass holds every number so that config, the room engine, the socket edge
and docs/protocol.md agree; the welcome message tells each client the values in force.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RoomLimits:
    """Bounds a room and its connections live within. All times in seconds."""

    tick_rate: float = 30.0
    #: interest management (realtime.interest): participants within this many metres (or at
    #: the same station, teachers, speakers) come at the tick rate, the others at ``far_rate`` Hz
    near_radius: float = 2.0
    far_rate: float = 5.0
    room_cap: int = 40
    resume_window: float = 30.0
    grab_lease: float = 15.0
    #: largest WebSocket message a client may send, in bytes (binary or text)
    max_message_bytes: int = 16 * 1024
    #: sustained messages per second per connection (poses included), and burst
    msg_rate: float = 120.0
    msg_burst: float = 240.0
    #: seconds of sustained flooding (messages dropped) before the connection is closed
    flood_grace: float = 2.0
    #: bytes waiting in one connection's send buffer before pose frames are skipped
    pose_backlog_bytes: int = 256 * 1024
    #: bytes waiting before a stalled client is disconnected (with its resume token)
    event_backlog_bytes: int = 2 * 1024 * 1024
    #: events kept for resuming clients
    resume_log_events: int = 2048
    #: seconds a socket may stay silent (clients send poses or pings) before it is dropped
    idle_timeout: float = 30.0
    #: seconds to send ``join`` after the socket opens
    join_timeout: float = 10.0
    #: voice call offers (new calls and renegotiations) per second per participant, and burst
    rtc_offer_rate: float = 0.2
    rtc_offer_burst: float = 4.0
    #: checkpoint answers per second per participant, and burst: every wrong one costs points,
    #: and the rate keeps a script from trying every choice at once
    answer_rate: float = 0.5
    answer_burst: float = 3.0
    #: ``interact`` messages per second per participant, and burst (each is an event to everyone)
    interact_rate: float = 10.0
    interact_burst: float = 20.0

    def public(self) -> dict[str, Any]:
        """The limits as sent to clients in ``welcome``."""
        return asdict(self)


class TokenBucket:
    """Classic token bucket, clock passed in (sans-I/O, like the room).

    ``take(now)`` spends one token if there is one. Tokens refill at ``rate``
    per second up to ``burst``.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
