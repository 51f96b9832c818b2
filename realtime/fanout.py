"""Drives one room on the event loop: the fixed-rate ticker and the fan-out.

The room itself is sans-I/O; this is the thin asyncio layer around it. There is
one timer per room and no task or queue per client or per message: a tick's
frame is serialised as a WebSocket frame once and the same bytes are written to
every connection's transport.

A tick's poses come as a PoseTick (realtime.interest): each recipient gets the
frame for its protocol version, link level and group, built once per group and
serialised once per distinct frame.

A slow client never slows the room. Each connection's link is judged after
every few ticks (realtime.downstream): a client falling behind moves to a lower
level, fewer and smaller frames, and is told so with a private ``quality``
message. Pose frames are replaceable: while a client's send buffer is still
over ``pose_backlog_bytes`` it is skipped and marked stale, and once it drains
it gets one full refresh instead of the deltas it missed. Events are not
replaceable: a client whose backlog passes ``event_backlog_bytes`` is
disconnected and may resume within the window.

With a journal (realtime.log.journal) every output goes through it first: what
the room answers is delivered once the inputs behind it are in the room log.
The room's clock is the loop's plus ``clock_offset``, so a room restored on
another process or node goes on from the time its log ends.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Protocol

from websockets.frames import Frame, Opcode

from realtime import protocol as p
from realtime.downstream import Link
from realtime.interest import LEVELS, PoseTick
from realtime.log.journal import Journal
from realtime.room import CallEnded, Close, Disconnect, Media, Outgoing, Record, Room, Send
from realtime.tick_lateness import TickLateness


def ws_frame(data: str | bytes) -> bytes:
    """One unmasked server-to-client WebSocket frame (text for str, binary for bytes)."""
    if isinstance(data, str):
        return Frame(Opcode.TEXT, data.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, data).serialize(mask=False)


class Connection(Protocol):
    """What the fan-out needs from a participant's socket (implemented at the edge)."""

    stale: bool

    def write(self, frame: bytes) -> None:
        """Write a serialised WebSocket frame to the transport."""

    def backlog(self) -> int:
        """Bytes written but not yet sent."""

    def close(self, code: int, reason: str) -> None:
        """Send a close frame and drop the connection."""


#: Ticks between judgements of every connection's link (realtime.downstream).
JUDGE_EVERY = 3


class RoomRunner:
    """Owns a Room, its connections and its tick timer."""

    def __init__(
        self,
        room: Room,
        loop: asyncio.AbstractEventLoop,
        on_end: Callable[[RoomRunner], None] = lambda runner: None,
    ) -> None:
        self.room = room
        self.loop = loop
        self.conns: dict[str, Connection] = {}
        #: each connected participant's link: bytes sent, acks, quality level
        self.links: dict[str, Link] = {}
        #: called when a participant's link level changes (the node sets their voice bit rate)
        self.on_quality: Callable[[RoomRunner, str, int], None] | None = None
        #: the voice bit rate a listener gets at each link level, in kbit/s (None: no voice here)
        self.voice_kbps: tuple[int, ...] | None = None
        self._on_end = on_end
        #: where the room's voice requests go (the node's media supervisor); None: no voice here
        self.media: Callable[[RoomRunner, Media], None] | None = None
        #: called after every tick (the node sends the room's voice table to the media worker)
        self.after_tick: Callable[[RoomRunner], None] | None = None
        #: where the room's records go (the node stores challenge results); None: dropped
        self.record: Callable[[RoomRunner, Record], None] | None = None
        #: the room log's writer; None: the room is not journaled (a preview, a test)
        self.journal: Journal | None = None
        #: room time minus loop time (0 for a new room; a restored room's clock goes on from its log)
        self.clock_offset = 0.0
        #: asked before each tick; False stops the room ticking (an owner that could not renew its lease)
        self.may_tick: Callable[[], bool] = lambda: True
        self._ended = False
        #: participants cut off for being too slow during the current dispatch
        self._too_slow: list[str] = []
        self._period = 1.0 / room.limits.tick_rate
        self._next = 0.0
        self._timer: asyncio.TimerHandle | None = None
        #: counters for /metrics and benchmarks
        self.frames_out = 0
        self.bytes_out = 0
        self.skipped = 0
        self.lateness = TickLateness()

    def now(self) -> float:
        """The room's clock."""
        return self.loop.time() + self.clock_offset

    def start(self) -> None:
        self._next = self.loop.time() + self._period
        self._timer = self.loop.call_at(self._next, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ inputs

    def attach(self, participant_id: str, conn: Connection) -> None:
        """Bind a socket to a participant, closing any older socket of the same participant."""
        old = self.conns.get(participant_id)
        if old is not None and old is not conn:
            old.close(p.CloseCode.REPLACED, "replaced by a newer connection")
        self.conns[participant_id] = conn
        self.links[participant_id] = Link(self.loop.time())

    def handle(self, participant_id: str, message: Any) -> list[Outgoing]:
        """Feed one input to the room and deliver what it returns. An input that got no answer
        and was not logged (a pose frame, thirty a second from everyone) has nothing to deliver."""
        out = self.room.handle(participant_id, message, self.now())
        if out or self.room.inputs:
            self.dispatch(out)
        return out

    def connection_lost(self, participant_id: str, conn: Connection) -> None:
        """The socket closed; if it was the participant's current one, start its resume window."""
        if self.conns.get(participant_id) is conn:
            del self.conns[participant_id]
            self.links.pop(participant_id, None)
            self.handle(participant_id, Disconnect())

    def ack(self, participant_id: str, tick: int) -> None:
        """The participant's client has processed the tick frames up to ``tick``."""
        link = self.links.get(participant_id)
        if link is not None:
            link.ack(tick, self.loop.time())

    # ------------------------------------------------------------------ output

    def dispatch(self, out: list[Outgoing]) -> None:
        """Deliver a room's outputs in order, once the room log has what they answer."""
        if self.journal is not None:
            out = self.journal.capture(out)
        if self.room.ended:
            self.stop()
        self.deliver(out)

    def deliver(self, out: list[Outgoing]) -> None:
        """Deliver outputs now (the journal's hook for what it held).

        A client cut off for being too slow is reported to the room only after
        the whole batch went out, so its ``presence`` event can never overtake
        an event the others have not received yet.
        """
        for item in out:
            if isinstance(item, Close):
                conn = self.conns.pop(item.to, None)
                self.links.pop(item.to, None)
                if conn is not None:
                    conn.close(item.code, item.reason)
            elif isinstance(item, Media):
                self._media(item)
            elif isinstance(item, Record):
                if self.record is not None:
                    self.record(self, item)
            elif isinstance(item.data, PoseTick):
                self._poses(item.data)
            elif item.to is None:
                self._broadcast(item)
            else:
                conn = self.conns.get(item.to)
                if conn is not None:
                    self._deliver(item.to, conn, ws_frame(item.data), item.replaceable)
        while self._too_slow:
            pid = self._too_slow.pop(0)
            self.dispatch(self.room.handle(pid, Disconnect(), self.now()))
        if self.room.ended and not self._ended and (self.journal is None or self.journal.settled):
            self._ended = True
            self.stop()
            self._on_end(self)

    def _media(self, item: Media) -> None:
        if self.media is not None:
            self.media(self, item)
        elif item.kind == "offer":
            self.dispatch(self.room.handle(item.participant, CallEnded(), self.now()))
            text = p.dumps(p.error(p.ErrorCode.MEDIA_UNAVAILABLE, "Voice is not available on this server.", item.re))
            self.dispatch([Send(item.participant, text)])

    def _broadcast(self, item: Send) -> None:
        assert not isinstance(item.data, PoseTick)
        frame = ws_frame(item.data)
        for pid, conn in list(self.conns.items()):
            self._deliver(pid, conn, frame, item.replaceable)

    def _poses(self, tick: PoseTick) -> None:
        """Each recipient's frame of a tick: the same bytes object for everyone in a group,
        one WebSocket serialisation per distinct frame, a full refresh for a client that
        was skipped and has drained. The hot path of the fan-out: one pass, no per-recipient
        allocation but the link's note of what it was sent."""
        participants, links = self.room.participants, self.links
        framed: dict[int, bytes] = {}
        refresh: dict[int, bytes] = {}
        limit = self.room.limits.pose_backlog_bytes
        now, number = self.loop.time(), tick.tick
        sent = 0
        for pid, conn in list(self.conns.items()):
            part = participants.get(pid)
            link = links.get(pid)
            if part is None or link is None:
                continue
            backlog = conn.backlog()
            if conn.stale:
                if backlog > limit:
                    self.skipped += 1
                    continue
                if part.protocol not in refresh:
                    refresh[part.protocol] = ws_frame(self.room.full_frame(part.protocol))
                conn.stale = False
                frame = refresh[part.protocol]
            else:
                data = tick.frame_for(part.slot, part.protocol, link.level)
                if data is None:
                    continue
                if backlog > limit:
                    conn.stale = True
                    self.skipped += 1
                    continue
                frame = framed.get(id(data))  # type: ignore[assignment]
                if frame is None:
                    frame = framed[id(data)] = ws_frame(data)
            conn.write(frame)
            link.wrote(len(frame), number, now)
            self.frames_out += 1
            sent += len(frame)
        self.bytes_out += sent
        if number % JUDGE_EVERY == 0:
            self._judge()

    def _judge(self) -> None:
        """Move any link whose client falls behind (or has recovered) to its new level, and tell it."""
        now = self.loop.time()
        for pid, link in list(self.links.items()):
            conn = self.conns.get(pid)
            if conn is None:
                continue
            reason = link.judge(conn.backlog(), now)
            if reason is None:
                continue
            self._write(pid, conn, ws_frame(p.dumps(self.quality(link.level, reason))))
            if self.on_quality is not None:
                self.on_quality(self, pid, link.level)

    def quality(self, level: int, reason: str) -> dict[str, object]:
        """The private ``quality`` message for a link ``level`` (docs/protocol.md §7.6)."""
        limits = self.room.limits
        near = LEVELS[level].near_every
        far = self.room.interest.far_every * LEVELS[level].far_factor
        return {
            "type": "quality",
            "level": level,
            "pose_hz": round(limits.tick_rate / near, 2),
            "far_hz": round(limits.tick_rate / far, 2),
            "hands": LEVELS[level].hands,
            **({"voice_kbps": self.voice_kbps[level]} if self.voice_kbps is not None else {}),
            "reason": reason,
        }

    def _deliver(self, pid: str, conn: Connection, frame: bytes, replaceable: bool) -> None:
        backlog = conn.backlog()
        limits = self.room.limits
        if replaceable:
            if backlog > limits.pose_backlog_bytes:
                conn.stale = True
                self.skipped += 1
                return
        elif backlog > limits.event_backlog_bytes:
            del self.conns[pid]
            self.links.pop(pid, None)
            conn.close(p.CloseCode.TOO_SLOW, "too slow to keep up; reconnect with your token to resume")
            self._too_slow.append(pid)
            return
        self._write(pid, conn, frame)

    def _write(self, pid: str, conn: Connection, frame: bytes) -> None:
        """Write one event or message (tick frames go out in _poses, which notes their tick)."""
        conn.write(frame)
        self.frames_out += 1
        self.bytes_out += len(frame)
        link = self.links.get(pid)
        if link is not None:
            link.wrote(len(frame), None, self.loop.time())

    # ------------------------------------------------------------------ ticker

    def _tick(self) -> None:
        now = self.loop.time()
        self.lateness.record(now, now - self._next)
        if self.may_tick():
            self.dispatch(self.room.tick(now + self.clock_offset))
            if self.journal is not None:
                self.journal.tick()
        if self._timer is None:  # stopped while dispatching (the room ended)
            return
        if self.after_tick is not None:
            self.after_tick(self)
        self._next += self._period
        if self._next < now:  # fell behind (machine stalled): skip, don't burst
            self._next = now + self._period
        self._timer = self.loop.call_at(self._next, self._tick)
