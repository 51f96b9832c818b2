"""The room socket: a bare asyncio.Protocol driving the websockets sans-I/O parser.

HTTP stays on FastAPI; the room socket takes the lean path because it is the
hot path. Measured on this hardware, an ASGI WebSocket endpoint tops out near
500 participants per room while a protocol like this one holds about twice as
many: no task, queue or coroutine per client or per message. Incoming pose
frames go straight from ``data_received`` into the room's numpy table, and
outgoing tick frames are pre-serialised once by the fan-out and written to the
transport as they are. permessage-deflate is not offered: it would give every
client its own compressor and undo encode-once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, cast

from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode, apply_mask
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from realtime import protocol as p
from realtime.fanout import RoomRunner, ws_frame
from realtime.limits import TokenBucket
from realtime.room import Enter
from server.auth import TokenError, verify_token

if TYPE_CHECKING:
    from server.node import Node

log = logging.getLogger("amaliy.socket")

ROOM_PATH = "/room"
_CLOSE_GRACE = 5.0

#: The first byte of a frame the lean path takes: FIN, no extension bits, text or binary.
_WHOLE_MESSAGE = {0x80 | Opcode.TEXT, 0x80 | Opcode.BINARY}
#: The largest payload a 7-bit length can give: such a frame is its 2-byte header, the
#: 4-byte mask, then the payload.
_SMALL = 125
_AT_EOF = StreamReader.at_eof.__code__
#: A plain ``ack`` (protocol 2) as clients write it, with or without spaces; anything else
#: (an ``id``, another order, a number out of range) goes through decode_control.
_ACK = re.compile(rb'\{\s*"type"\s*:\s*"ack"\s*,\s*"tick"\s*:\s*(\d{1,10})\s*\}')


def _brief(exc: Exception, limit: int = 200) -> str:
    """An exception's message on one line, cut to ``limit`` characters, for a one-line log."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RoomSocket(asyncio.Protocol):
    """One participant's WebSocket connection."""

    def __init__(self, node: "Node") -> None:
        self.node = node
        self.limits = node.config.limits
        self.loop = asyncio.get_running_loop()
        self.ws = ServerProtocol(max_size=max(self.limits.max_message_bytes, p.MAX_OFFER_MESSAGE_BYTES))
        self.transport: asyncio.Transport | None = None
        self.runner: RoomRunner | None = None
        self.participant_id: str | None = None
        self.stale = False
        self.closed = False
        self.last_seen = self.loop.time()
        self.bucket = TokenBucket(self.limits.msg_rate, self.limits.msg_burst, self.last_seen)
        #: the parser waits for a new frame and may be bypassed (see _small_frames)
        self._lean = False
        self._flood_since: float | None = None
        self._last_drop = 0.0
        self._timers: list[asyncio.TimerHandle] = []
        #: a join being looked up in the room directory (several nodes)
        self._pending: asyncio.Future[None] | None = None

    # ------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
        if len(self.node.sockets) >= self.node.config.max_connections:
            log.warning("refusing a connection: %d sockets open", len(self.node.sockets))
            self.closed = True
            transport.abort()
            return
        self.node.sockets.add(self)
        self._timers.append(self.loop.call_later(self.limits.join_timeout, self._join_timeout))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._lean:
            data = self._small_frames(data)
            if not data:
                return
        self._lean = False
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            try:
                if isinstance(event, Request):
                    self._handshake(event)
                elif not self.closed:
                    self._frame(event)
            except Exception as exc:
                self._unexpected(exc)
        self._flush()
        self._lean = not self.closed and self._between_frames()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self.node.sockets.discard(self)
        if self.runner is not None and self.participant_id is not None:
            self.runner.connection_lost(self.participant_id, self)

    # ------------------------------------------------------- Connection (fan-out)

    def write(self, frame: bytes) -> None:
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def backlog(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def close(self, code: int, reason: str) -> None:
        """Close with a code and a reason the client can show; abort if it never reads."""
        if self.closed:
            return
        self.closed = True
        try:
            self.ws.send_close(code, reason)
        except Exception:  # already closing on the protocol level
            pass
        self._flush()
        if self.transport is not None:
            self.transport.close()
            self._timers.append(self.loop.call_later(_CLOSE_GRACE, self.transport.abort))

    # ------------------------------------------------------- internals

    def _small_frames(self, data: bytes) -> bytes:
        """Handle the whole small messages at the start of a read without the websockets parser;
        return what is left for it (b"" when nothing is).

        The hot path: nearly every read is one pose frame, or a pose and an ``ack``, and parsing
        them through websockets costs more than the rest of their way into the room. A frame
        taken here is final, unextended, text or binary, masked, with a 7-bit length, and whole
        in this read: unmasking it yields the very payload the parser would have produced, and
        the parser, which waits for a new frame (``_lean``), is left waiting for the next one.
        Anything else (a longer frame, a control frame, a fragment, a partial frame) and all
        after it go to the parser."""
        at, end = 0, len(data)
        while end - at >= 6 and data[at] in _WHOLE_MESSAGE and 0x80 <= data[at + 1] <= 0x80 | _SMALL:
            start = at + 6
            at = start + (data[at + 1] & 0x7F)
            if at > end:
                return data[start - 6 :]
            try:
                self._message(data[start - 6] & 0x0F, apply_mask(data[start:at], data[start - 4 : start]))
            except Exception as exc:  # free in CPython 3.11 until something raises
                self._unexpected(exc)
            if self.closed:
                return b""
        return data[at:]

    def _between_frames(self) -> bool:
        """True when the websockets parser has consumed every byte it was given and waits
        for the first byte of a new frame, on an open connection, outside a fragmented
        message, with no extension, no debug logging, and size limits a small frame fits in:
        then whole small frames may bypass the parser (see _small_frames)."""
        ws = self.ws
        if ws.state is not State.OPEN or ws.current_size is not None or ws.reader.buffer or ws.extensions or ws.debug:
            return False
        for limit in (ws.max_message_size, ws.max_fragment_size):
            if limit is not None and limit < _SMALL:
                return False
        gen = ws.parser  # the parse() generator, suspended in StreamReader.at_eof() between frames
        while gen.gi_yieldfrom is not None:
            gen = gen.gi_yieldfrom
        return gen.gi_code is _AT_EOF

    def _flush(self) -> None:
        if self.transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:  # the protocol is done: half-close, and write nothing more
                self.closed = True
                if self.transport.can_write_eof():
                    self.transport.write_eof()
        if self.ws.close_expected() and self.transport is not None and not self.transport.is_closing():
            self.closed = True
            self._timers.append(self.loop.call_later(_CLOSE_GRACE, self.transport.abort))

    def _unexpected(self, exc: Exception) -> None:
        """A bug met while handling one client message. Never let it reach asyncio, which drops
        the connection with no close frame and logs a traceback for each such message: log one
        line, tell the client its message was dropped, and go on with the next one."""
        log.error("message from %s failed: %s: %s", self.participant_id or "a socket not joined", type(exc).__name__, _brief(exc))
        if self.closed:
            return
        if self.ws.state is State.OPEN:
            self._send(p.error(p.ErrorCode.SERVER_ERROR, "The server failed to handle that message; it was dropped."))
        elif self.transport is not None:  # failed in the handshake: there is no WebSocket to answer on
            self.closed = True
            self.transport.abort()

    def _handshake(self, request: Request) -> None:
        if request.path.split("?", 1)[0] != ROOM_PATH:
            response = self.ws.reject(404, f"The room socket is at {ROOM_PATH}.\n")
        else:
            response = self.ws.accept(request)
        self.ws.send_response(response)

    def _send(self, message: dict[str, object]) -> None:
        self.write(ws_frame(p.dumps(message)))

    def _join_timeout(self) -> None:
        if self.participant_id is None:
            self.close(p.CloseCode.JOIN_TIMEOUT, "send 'join' first")

    def _throttled(self, now: float) -> bool:
        """Token bucket per connection: drop over-rate messages, close a sustained flood."""
        self.last_seen = now
        if self.bucket.take(now):
            if self._flood_since is not None and now - self._last_drop > 1.0:
                self._flood_since = None
            return False
        self._last_drop = now
        if self._flood_since is None:
            self._flood_since = now
            self._send(p.error(p.ErrorCode.RATE_LIMITED, f"Slow down: at most {self.limits.msg_rate:g} messages per second."))
        elif now - self._flood_since > self.limits.flood_grace:
            self.close(p.CloseCode.RATE_LIMITED, "message rate limit exceeded")
        return True

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode not in (Opcode.TEXT, Opcode.BINARY):
            if opcode == Opcode.CONT:
                self.close(p.CloseCode.POLICY, "fragmented messages are not supported")
            elif opcode in (Opcode.PING, Opcode.PONG):
                # the protocol has answered a ping already, but pings are frames like any other:
                # they keep the socket alive and spend a token, so a ping flood closes 4008
                self._throttled(self.loop.time())
            return  # ping, pong and close are answered by the protocol itself
        if not frame.fin:
            self.close(p.CloseCode.POLICY, "fragmented messages are not supported")
            return
        self._message(opcode, frame.data)

    def _message(self, opcode: int, data: bytes) -> None:
        """One whole text or binary message, from the parser or the lean path."""
        if self._throttled(self.loop.time()):
            return
        oversized = len(data) > self.limits.max_message_bytes
        if oversized and opcode == Opcode.BINARY:
            self._too_big(len(data))
            return
        try:
            if opcode == Opcode.BINARY:
                if self.runner is None or self.participant_id is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_JOINED, "Send 'join' before any other message.")
                self.runner.handle(self.participant_id, p.decode_binary(data))
            else:
                ack = _ACK.fullmatch(data)
                if ack is not None and self.runner is not None and self.participant_id is not None and int(ack[1]) <= 0xFFFFFFFF:
                    # protocol 2's ack, four a second from every client: what decode_control would
                    # make of it, without building a message for it
                    self.runner.ack(self.participant_id, int(ack[1]))
                    return
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    self.close(p.CloseCode.INVALID_DATA, "text frame is not valid UTF-8")
                    return
                message = p.decode_control(text)
                if oversized and not isinstance(message, p.RtcOffer):
                    self._too_big(len(data))
                    return
                self._control(message)
        except p.ProtocolError as exc:
            if oversized:
                self._too_big(len(data))
            else:
                self._send(p.error(exc.code, exc.message, exc.re))

    def _too_big(self, size: int) -> None:
        """Close 1009 for a message over ``max_message_bytes`` (only an ``rtc_offer`` may be larger),
        with the reason websockets gives a frame over the parser's own limit, so a client sees
        one reason text whichever limit the message broke."""
        self.close(p.CloseCode.TOO_BIG, str(PayloadTooBig(size, self.limits.max_message_bytes)))

    async def _join_elsewhere(self, session_id: str, re: str | int | None) -> None:
        """A join on a node that does not host the practical (several nodes): say where it is,
        or that it is between nodes and to try again in a moment. Never hosts it here."""
        cluster = self.node.cluster
        assert cluster is not None
        try:
            if cluster.down_since is not None:
                raise OSError("this server cannot reach Redis")
            host = await cluster.host_of(session_id)
            listed = host is not None or await cluster.session(session_id) is not None
        except Exception as exc:  # Redis down: nobody can tell where the room is
            self._send(p.error(p.ErrorCode.ROOM_MOVING, f"This server cannot tell where the practical is now ({exc}); trying again.", re))
            self.close(p.CloseCode.TRY_AGAIN, "room directory unavailable")
            return
        if self.closed:
            return
        if host is not None and host.ws != self.node.ws_url():
            error = p.error(p.ErrorCode.ROOM_ELSEWHERE, "This practical is on another server; reconnect there.", re)
            self._send({**error, "ws_url": host.ws})
            self.close(p.CloseCode.MOVED, "practical on another server")
        elif listed:
            self._send(p.error(p.ErrorCode.ROOM_MOVING, "This practical is moving to another server; trying again.", re))
            self.close(p.CloseCode.TRY_AGAIN, "practical between servers")
        else:
            self._send(p.error(p.ErrorCode.SESSION_ENDED, "This practical is not running.", re))
            self.close(p.CloseCode.SESSION_ENDED, "practical not running")

    def _control(self, message: p._Msg) -> None:
        if isinstance(message, p.Join):
            if self.participant_id is not None:
                raise p.ProtocolError(p.ErrorCode.ALREADY_JOINED, "This socket has already joined.", message.id)
            self._join(message)
        elif self.runner is None or self.participant_id is None:
            raise p.ProtocolError(p.ErrorCode.NOT_JOINED, "Send 'join' before any other message.", message.id)
        elif isinstance(message, p.Ack):
            self.runner.ack(self.participant_id, message.tick)
        elif isinstance(message, p.Ping):
            reply: dict[str, object] = {"type": "pong", "t": message.t}
            if message.id is not None:
                reply["re"] = message.id
            self._send(reply)
        else:
            self.runner.handle(self.participant_id, message)

    def _join(self, message: p.Join) -> None:
        try:
            claims = verify_token(self.node.secret, message.token)
        except TokenError as exc:
            self._send(p.error(p.ErrorCode.UNAUTHORIZED, str(exc), message.id))
            self.close(p.CloseCode.UNAUTHORIZED, "invalid token")
            return
        runner = self.node.runners.get(claims.session_id)
        if runner is None and self.node.cluster is not None:
            self._pending = asyncio.ensure_future(self._join_elsewhere(claims.session_id, message.id))
            return
        if runner is None:
            self._send(p.error(p.ErrorCode.SESSION_ENDED, "This practical is not running.", message.id))
            self.close(p.CloseCode.SESSION_ENDED, "practical not running")
            return
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.runner = runner
        self.participant_id = claims.participant_id
        runner.attach(claims.participant_id, self)
        # a roster student's learner model comes in with them (one indexed read), so this
        # practical starts from what earlier ones learned; a guest starts from the priors
        skills = self.node.store.skills(claims.participant_id) if claims.course_id is not None else None
        runner.handle(claims.participant_id, Enter(claims.name, claims.role, message.last_seq, claims.device, skills, message.protocol))
