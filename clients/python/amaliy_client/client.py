"""An asyncio client for the Amaliy room socket, used by tests, bots and benchmarks.

It speaks only the documented protocol (realtime.protocol and docs/protocol.md):
join over REST with a join code, then one WebSocket carrying JSON control
messages and binary pose frames. It mirrors the room's state from the snapshot,
the sequenced events and the tick frames, and can resume after a drop. The lab's
stations, challenge progress, scores and properties are mirrored in ``lab``
(amaliy_client.lab).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from amaliy_client.lab import LabState
from realtime import codec_v2
from realtime import protocol as p

KEEPALIVE_SECONDS = 10.0
#: protocol 2: seconds between acknowledgements of the newest tick (docs/protocol.md §7.5)
ACK_SECONDS = 0.25
#: with auto_reconnect: ping after this long without a word from the server, and give the socket up
#: after SILENCE_SECONDS (a node that froze keeps its TCP connections open but says nothing)
PROBE_SECONDS = 1.0
SILENCE_SECONDS = 3.0
#: longest wait for one reconnect attempt's socket (a frozen node accepts TCP but never answers)
ATTEMPT_SECONDS = 3.0
#: first and longest wait between reconnect attempts (doubling), as the web client does
RECONNECT_FIRST_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 4.0
#: close codes after which reconnecting cannot help (docs/protocol.md §10): left, unauthorized,
#: replaced, kicked, session ended, room full, room locked
FINAL_CLOSES = frozenset({
    p.CloseCode.LEFT, p.CloseCode.UNAUTHORIZED, p.CloseCode.REPLACED, p.CloseCode.KICKED,
    p.CloseCode.SESSION_ENDED, p.CloseCode.ROOM_FULL, p.CloseCode.ROOM_LOCKED,
})


class JoinRefused(Exception):
    """The server refused the join (error code and the close code it sent)."""

    def __init__(self, code: str, message: str, close_code: int | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.close_code = close_code


def now_stamp() -> int:
    """Milliseconds on this machine's monotonic clock, as the u32 stamp poses carry."""
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


async def join_code(base_url: str, code: str, name: str, role: str = "student", device: str | None = None) -> dict[str, Any]:
    """POST /api/join: trade a join code and a name for a token and the socket address.

    ``device``: the ``device`` key an earlier join answered, to join again as the same device
    (a teacher's removal holds per device; the same device gets its own name back)."""
    body: dict[str, Any] = {"code": code, "name": name, "role": role}
    if device is not None:
        body["device"] = device
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post("/api/join", json=body)
        response.raise_for_status()
        return response.json()


def _frame_bytes(data: str | bytes) -> int:
    """Bytes a server's unmasked WebSocket frame of this message takes on the wire."""
    size = len(data) if isinstance(data, bytes) else len(data.encode())
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


class AmaliyClient:
    """One participant's connection and its mirror of the room."""

    def __init__(
        self, ws_url: str, token: str, auto_reconnect: bool = False, ws_urls: list[str] | None = None, protocol: int = 1, acks: bool = True
    ) -> None:
        self.ws_url = ws_url
        #: the protocol version to ask for at join, and the one the welcome put in force
        self.asked_protocol = protocol
        self.protocol = 1
        #: protocol 2: the room's position grid (from welcome), and whether to acknowledge ticks
        self.grid: codec_v2.Grid | None = None
        self.acks = acks
        self._acked_at = 0.0
        #: the newest ``quality`` message (protocol 2): what the server now sends this client
        self.quality: dict[str, Any] = {"level": 0}
        #: every node's room socket the join answered (several nodes): tried in turn when ours is gone
        self.ws_urls = ws_urls or [ws_url]
        self.token = token
        #: after a drop that is not final, resume by itself with backoff (see reconnect)
        self.auto_reconnect = auto_reconnect
        #: resumes done after a drop, and how long the last one took from the drop (seconds)
        self.reconnects = 0
        self.last_outage = 0.0
        self._reconnector: asyncio.Task[None] | None = None
        self._leaving = False
        self.ws: ClientConnection | None = None
        self.participant: dict[str, Any] = {}
        self.participants: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.poses: dict[str, np.ndarray] = {}
        self.pose_stamps: dict[str, int] = {}
        self.seq = 0
        self.tick = 0
        self.locked = False
        self.frozen = False
        self.ended = False
        #: teachers broadcasting to every zone; the newest voice levels by participant
        self.broadcasting: set[str] = set()
        self.voice_levels: dict[str, float] = {}
        self.limits: dict[str, Any] = {}
        self.welcome: dict[str, Any] = {}
        #: stations, the challenge, progress, scores and properties (amaliy_client.lab)
        self.lab = LabState()
        self.close_code: int | None = None
        self.close_reason = ""
        self.full_refreshes = 0
        #: called with each decoded tick frame (benchmarks time it)
        self.on_tick: Callable[[p.TickFrame], None] | None = None
        #: bytes received on the room socket as WebSocket frames (header included), binary and text
        self.received_bytes = {"binary": 0, "text": 0}
        self._pending: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._last_sent = 0.0
        self._last_received = 0.0
        self._slot_owner: dict[int, str] = {}
        self._object_ids: dict[int, str] = {}

    # ------------------------------------------------------------------ connect

    @classmethod
    async def join(cls, base_url: str, code: str, name: str, role: str = "student", **kw: Any) -> "AmaliyClient":
        info = await join_code(base_url, code, name, role)
        client = cls(
            info["ws_url"], info["token"], auto_reconnect=kw.pop("auto_reconnect", False), ws_urls=info.get("ws_urls"),
            protocol=kw.pop("protocol", 1), acks=kw.pop("acks", True),
        )
        await client.connect(**kw)
        return client

    @property
    def id(self) -> str:
        return str(self.participant.get("id", ""))

    @property
    def station(self) -> int | None:
        """The lab station this participant works at (None: at none yet)."""
        return self.lab.station

    @property
    def score(self) -> int:
        """This participant's own score at their station."""
        return self.lab.score()

    async def connect(self, last_seq: int | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Open the socket, send ``join``, and wait for ``welcome`` and the full frame after it
        (JoinRefused if the server says no)."""
        self.close_code = None
        self.welcome = {}
        self.ws = await connect(self.ws_url, compression=None, max_size=None, ping_interval=None, open_timeout=timeout)
        join: dict[str, Any] = {"type": "join", "token": self.token}
        if last_seq is not None:
            join["last_seq"] = last_seq
        if self.asked_protocol != 1:
            join["protocol"] = self.asked_protocol
        await self.ws.send(json.dumps(join))
        self._reader = asyncio.create_task(self._read(self.ws))
        self._last_sent = self._last_received = time.monotonic()
        if self._keepalive is None:
            self._keepalive = asyncio.create_task(self._keep_alive())
        deadline = time.monotonic() + timeout
        refreshes = self.full_refreshes
        while True:
            for msg in self._pending:
                if msg["type"] == "welcome":
                    self._pending.remove(msg)
                    # the full pose frame follows the welcome: return with the room complete
                    await self.wait_until(lambda: self.full_refreshes > refreshes, deadline - time.monotonic(), "first frame")
                    return msg
                if msg["type"] == "error":
                    self._pending.remove(msg)
                    if msg.get("code") == "room_elsewhere" and isinstance(msg.get("ws_url"), str):
                        self.ws_url = msg["ws_url"]  # the node hosting the room: the next try goes there
                    await asyncio.wait_for(asyncio.shield(self._reader), timeout)
                    raise JoinRefused(msg["code"], msg["message"], self.close_code)
            if self._reader.done():
                raise JoinRefused("closed", self.close_reason, self.close_code)
            await self._wait_arrival(deadline)

    @property
    def connected(self) -> bool:
        """The socket is open and the room's welcome has been applied."""
        return self.ws is not None and self.close_code is None and bool(self.welcome)

    async def reconnect(self, within: float = 60.0) -> dict[str, Any]:
        """Resume after a drop, trying again with backoff while the server is away (restarting, or
        its room moving to another node) for up to ``within`` seconds; JoinRefused once a close
        is final (docs/protocol.md §10). A node that does not answer is passed over for the next
        of ``ws_urls``; one that says the room is elsewhere (close 4011) is left for that node at once."""
        dropped = time.monotonic()
        deadline = dropped + within
        wait = RECONNECT_FIRST_SECONDS
        passed_over = 0  # nodes tried in a row without an answer: one round of them before waiting
        moved = False
        while True:
            try:
                welcome = await self.connect(last_seq=self.seq, timeout=max(1.0, min(ATTEMPT_SECONDS, deadline - time.monotonic())))
            except JoinRefused as refused:
                if refused.close_code in FINAL_CLOSES or time.monotonic() + wait > deadline:
                    raise
                passed_over = 0
                if refused.close_code == p.CloseCode.MOVED and not moved:
                    moved = True
                    continue
            except (OSError, TimeoutError, InvalidHandshake):
                if time.monotonic() + wait > deadline:
                    raise
                if self.ws_url in self.ws_urls and len(self.ws_urls) > 1:
                    self.ws_url = self.ws_urls[(self.ws_urls.index(self.ws_url) + 1) % len(self.ws_urls)]
                    passed_over += 1
                    if passed_over % len(self.ws_urls):
                        continue
            else:
                self.reconnects += 1
                self.last_outage = time.monotonic() - dropped
                return welcome
            moved = False
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_MAX_SECONDS)

    async def resume(self, timeout: float = 10.0) -> dict[str, Any]:
        """Reconnect with the same token, asking for the events missed since the last one seen."""
        await self.drop()
        return await self.connect(last_seq=self.seq, timeout=timeout)

    async def drop(self) -> None:
        """Close the socket without leaving (like a network drop): the room keeps our place."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def close(self) -> None:
        """Leave politely and stop background tasks."""
        self._leaving = True
        if self._reconnector is not None:
            self._reconnector.cancel()
            await asyncio.gather(self._reconnector, return_exceptions=True)
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self.ws is not None and self.close_code is None:
            try:
                await self.send({"type": "leave"})
            except ConnectionClosed:
                pass
        await self.drop()

    # ------------------------------------------------------------------ sending

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        self._last_sent = time.monotonic()
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        """Send arbitrary bytes or text (for tests of malformed input)."""
        assert self.ws is not None
        await self.ws.send(data)

    async def send_pose(
        self, pose: "np.ndarray | list[float]", stamp: int | None = None, flags: int = p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED
    ) -> None:
        """Send a pose (21 floats) in the protocol in force: version 2 quantizes it on the room's grid."""
        assert self.ws is not None
        self._last_sent = time.monotonic()
        stamp = now_stamp() if stamp is None else stamp
        if self.protocol >= 2 and self.grid is not None:
            await self.ws.send(codec_v2.encode_pose_v2(pose, stamp, flags, self.grid))
        else:
            await self.ws.send(p.encode_pose(pose, stamp, flags))

    async def move(self, object_id: str, transform: "list[float] | tuple[float, ...]") -> None:
        assert self.ws is not None
        self._last_sent = time.monotonic()
        await self.ws.send(p.encode_object_move(self.objects[object_id]["index"], transform, now_stamp()))

    async def grab(self, object_id: str) -> None:
        await self.send({"type": "grab", "object": object_id})

    async def release(self, object_id: str) -> None:
        await self.send({"type": "release", "object": object_id})

    async def kick(self, participant_id: str) -> None:
        await self.send({"type": "kick", "participant": participant_id})

    async def unkick(self, participant_id: str) -> None:
        """Teacher: let someone removed with ``kick`` back into the practical."""
        await self.send({"type": "unkick", "participant": participant_id})

    async def lock(self, locked: bool = True) -> None:
        await self.send({"type": "lock", "locked": locked})

    async def freeze(self, frozen: bool = True) -> None:
        await self.send({"type": "freeze", "frozen": frozen})

    async def summon(self, position: list[float]) -> None:
        await self.send({"type": "summon", "position": position})

    async def reset(self) -> None:
        await self.send({"type": "reset"})

    async def end(self) -> None:
        await self.send({"type": "end"})

    async def mute(self, muted: bool = True, participant: str | None = None) -> None:
        """Mute yourself, or (teacher) force another participant's mute."""
        message: dict[str, Any] = {"type": "mute", "muted": muted}
        if participant is not None:
            message["participant"] = participant
        await self.send(message)

    async def broadcast(self, on: bool = True) -> None:
        """Teacher: speak to every zone at full level."""
        await self.send({"type": "broadcast", "on": on})

    # challenges

    async def interact(self, object_id: str, property: str, value: bool | float | str) -> None:
        """Set an interactive property of an object (a burner on, a dial to 7)."""
        await self.send({"type": "interact", "object": object_id, "property": property, "value": value})

    async def answer(self, step: str, value: int | float) -> None:
        """Answer a checkpoint step: a choice's index from 0, or a number."""
        await self.send({"type": "answer", "step": step, "value": value})

    async def hint(self, step: str) -> None:
        """Student: ask for the next hint of the hint ladder on an open step (it costs the
        rung's points; refused with ``hint_cooldown`` inside the cooldown)."""
        await self.send({"type": "hint", "step": step})

    async def push_hint(self, to: dict[str, Any], level: int | None = None, text: str | None = None) -> None:
        """Teacher: send a rung of the ladder (``level`` 1-3) or your own words (``text``) to
        ``{"participant": id}``, ``{"station": n}`` or ``{"all": True}``."""
        await self.send({"type": "push_hint", "to": to, "level": level, "text": text})

    async def choose_station(self, station: int) -> None:
        """Student, where the scene lets students choose: work at this station."""
        await self.send({"type": "choose_station", "station": station})

    async def assign_station(self, participant: str, station: int | None) -> None:
        """Teacher: put a student at a station (None: at none)."""
        await self.send({"type": "assign_station", "participant": participant, "station": station})

    # ------------------------------------------------------------------ receiving

    async def expect(self, type: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Wait for (and consume) the first message of this type whose fields match."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self._pending:
                if msg.get("type") == type and all(msg.get(k) == v for k, v in fields.items()):
                    self._pending.remove(msg)
                    return msg
            if self.ws is None or (self._reader is not None and self._reader.done() and not self._pending_has(type)):
                raise ConnectionError(f"socket closed ({self.close_code} {self.close_reason}) before {type!r}")
            await self._wait_arrival(deadline, what=type)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Wait until the mirrored state satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            await self._wait_arrival(deadline, what=what)

    async def wait_station(self, station: int | None = None, timeout: float = 5.0) -> int:
        """Wait until this participant is at a station (``station``, or any); returns its number."""
        await self.wait_until(lambda: self.station is not None and station in (None, self.station), timeout, f"station {station or ''}".strip())
        assert self.station is not None
        return self.station

    async def wait_step(self, step: str, station: int | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a station's step (default: ours) is done; returns its {"by", "t", "points"}."""
        await self.wait_until(lambda: self.lab.done(step, station), timeout, f"step {step!r} done")
        return self.lab.progress(station)["done"][step]

    async def wait_finished(self, station: int | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a station (default: ours) finished the challenge; returns its progress."""
        await self.wait_until(lambda: self.lab.finished(station), timeout, "challenge done")
        return self.lab.progress(station)

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the server to close the socket; returns its close code and reason."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code, self.close_reason

    def drain(self) -> list[dict[str, Any]]:
        pending, self._pending = self._pending, []
        return pending

    def _pending_has(self, type: str) -> bool:
        return any(msg.get("type") == type for msg in self._pending)

    async def _wait_arrival(self, deadline: float, what: str = "welcome") -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out waiting for {what}")
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out waiting for {what}") from None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                self._last_received = time.monotonic()
                self.received_bytes["binary" if isinstance(data, bytes) else "text"] += _frame_bytes(data)
                if isinstance(data, bytes):
                    if data[:1] == bytes((p.BinaryKind.TICK_V2,)) and self.grid is not None:
                        self._apply_tick(codec_v2.decode_tick_v2(data, self.grid))
                        await self._ack(ws)
                    else:
                        self._apply_tick(p.decode_tick(data))
                else:
                    self._apply_message(json.loads(data))
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            received = ws.protocol.close_rcvd
            if received is not None:
                self.close_code, self.close_reason = received.code, received.reason
            else:
                self.close_code, self.close_reason = 1006, "connection lost"
            self._arrived.set()
            if self.auto_reconnect and not self._leaving and self.welcome and self.close_code not in FINAL_CLOSES:
                self._reconnector = asyncio.get_running_loop().create_task(self._reconnect_quietly())

    async def _ack(self, ws: ClientConnection) -> None:
        """Protocol 2: acknowledge the newest tick, at most every ACK_SECONDS."""
        now = time.monotonic()
        if self.acks and now - self._acked_at >= ACK_SECONDS:
            self._acked_at = now
            await ws.send(json.dumps({"type": "ack", "tick": self.tick}))

    async def _reconnect_quietly(self) -> None:
        """auto_reconnect's background resume: a final refusal stays in close_code for the owner to see."""
        try:
            await self.reconnect()
        except (JoinRefused, OSError, TimeoutError, InvalidHandshake):
            pass

    async def _keep_alive(self) -> None:
        """The server drops silent sockets: ping when nothing else was sent for a while. With
        auto_reconnect, also probe a server that has said nothing for PROBE_SECONDS, and give up a
        socket silent for SILENCE_SECONDS, so a frozen node is left for another."""
        while True:
            await asyncio.sleep(PROBE_SECONDS / 2 if self.auto_reconnect else KEEPALIVE_SECONDS / 2)
            if self.ws is None or self.close_code is not None:
                continue
            now = time.monotonic()
            quiet = now - self._last_received
            if self.auto_reconnect and self.welcome and quiet > SILENCE_SECONDS:
                self.ws.transport.abort()
                continue
            if now - self._last_sent > KEEPALIVE_SECONDS or (self.auto_reconnect and quiet > PROBE_SECONDS and now - self._last_sent > PROBE_SECONDS):
                try:
                    await self.send({"type": "ping"})
                except ConnectionClosed:
                    pass

    # ------------------------------------------------------------------ mirror

    def _apply_snapshot(self, snap: dict[str, Any]) -> None:
        self.participants = {part["id"]: part for part in snap["participants"]}
        self._slot_owner = {part["slot"]: part["id"] for part in snap["participants"]}
        self.objects = {obj["id"]: obj for obj in snap["objects"]}
        self._object_ids = {obj["index"]: obj["id"] for obj in snap["objects"]}
        self.poses = {pid: pose for pid, pose in self.poses.items() if pid in self.participants}
        self.locked, self.frozen = snap["locked"], snap["frozen"]
        self.broadcasting = set(snap.get("broadcast", ()))
        self.tick = snap["tick"]
        self.lab.apply_snapshot(self.id, snap)

    def _apply_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "welcome":
            self.welcome = msg
            self.participant = msg["participant"]
            self.limits = msg["limits"]
            self.protocol = int(msg.get("protocol", 1))
            self.grid = codec_v2.Grid.from_welcome(msg["grid"]) if "grid" in msg else None
            if "snapshot" in msg:
                self._apply_snapshot(msg["snapshot"])
                self.seq = msg["seq"]
        elif kind == "voice_levels":
            self.voice_levels = msg["levels"]
            return  # a few per second: kept as state, not queued
        elif kind == "quality":
            self.quality = msg
        elif "seq" in msg:
            if msg["seq"] <= self.seq:
                return  # already reflected in the snapshot
            self.seq = msg["seq"]
            self._apply_event(msg)
        self._pending.append(msg)

    def _apply_event(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "joined":
            part = msg["participant"]
            self.participants[part["id"]] = part
            self._slot_owner[part["slot"]] = part["id"]
        elif kind == "left":
            part = self.participants.pop(msg["participant"], None)
            self.poses.pop(msg["participant"], None)
            if part is not None:
                self._slot_owner.pop(part["slot"], None)
        elif kind == "presence" and msg["participant"] in self.participants:
            self.participants[msg["participant"]]["connected"] = msg["connected"]
        elif kind == "grabbed":
            self.objects[msg["object"]]["holder"] = msg["participant"]
        elif kind == "released":
            self.objects[msg["object"]]["holder"] = None
            self.objects[msg["object"]]["transform"] = msg["transform"]
        elif kind == "muted" and msg["participant"] in self.participants:
            self.participants[msg["participant"]].update(muted=msg["muted"], forced_muted=msg["forced"])
        elif kind == "broadcast":
            (self.broadcasting.add if msg["on"] else self.broadcasting.discard)(msg["by"])
        elif kind == "locked":
            self.locked = msg["locked"]
        elif kind == "frozen":
            self.frozen = msg["frozen"]
        elif kind == "reset":
            self.objects = {obj["id"]: obj for obj in msg["objects"]}
        elif kind == "ended":
            self.ended = True
        else:
            self.lab.apply_event(msg)

    def _apply_tick(self, frame: p.TickFrame) -> None:
        self.tick = frame.tick
        if frame.full:
            self.full_refreshes += 1
        for rec in frame.poses:
            pid = self._slot_owner.get(int(rec["slot"]))
            if pid is not None:
                self.poses[pid] = rec["pose"].copy()
                self.pose_stamps[pid] = int(rec["stamp"])
        for rec in frame.objects:
            oid = self._object_ids.get(int(rec["object"]))
            if oid is not None:
                self.objects[oid]["transform"] = [float(v) for v in rec["transform"]]
                holder = int(rec["holder"])
                self.objects[oid]["holder"] = None if holder == p.NO_HOLDER else self._slot_owner.get(holder)
        if self.on_tick is not None:
            self.on_tick(frame)
