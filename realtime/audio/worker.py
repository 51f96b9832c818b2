"""The media worker: a separate process that terminates WebRTC voice and mixes it.

Voice costs about 0.3 ms of CPU per talking participant per 20 ms frame (stock
aiortc about 1 ms; docs/benchmarks.md), far too much to share an event loop with
the room ticker, so the node spawns this process
(realtime.audio.supervisor) and talks to it over one socket (realtime.audio.ipc).

Per room there is one 20 ms timer with drift correction. Each tick it decodes
the next 20 ms of every speaker (the Opus payloads realtime.audio.inbound takes
off SRTP), computes every listener's stereo mix in one numpy step
(realtime.audio.mixer), Opus-encodes each mix (realtime.audio.opus) and sends
every listener's RTP packet in one task (realtime.audio.outbound). Nothing runs
outside the event loop's thread and nothing wakes per packet: no decoder
threads, no sender task per call, no resampler, no audio level in Python.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

import aioice.ice
import numpy as np
import uvloop
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription, sdp
from aiortc.mediastreams import MediaStreamTrack

from realtime.audio import ipc, opus
from realtime.audio.inbound import Inbound
from realtime.audio.ipc import WorkerSettings
from realtime.audio.outbound import IdleTrack, Outbound, send_all
from realtime.audio.mixer import FRAME_SAMPLES, MAY_SPEAK, MUTED, SAMPLE_RATE, gains, levels, mix

log = logging.getLogger("amaliy.media")

TICK = FRAME_SAMPLES / SAMPLE_RATE  # 20 ms
#: mix ticks between two voice-level reports (5 per second)
LEVEL_EVERY = 10
#: the only codec the worker answers with, both ways
OPUS = [codec for codec in RTCRtpReceiver.getCapabilities("audio").codecs if codec.mimeType == "audio/opus"]


@dataclass(eq=False)
class Peer:
    """One participant's call: its peer connection, outgoing mix and incoming audio."""

    participant: str
    slot: int
    pc: RTCPeerConnection
    track: IdleTrack
    may_send: bool
    encoder: opus.Encoder
    incoming: Inbound | None = None
    #: the offer sends audio (aiortc raised "track"); only then is there anything to receive
    sends: bool = False
    outbound: Outbound | None = None
    connected: bool = False
    #: a listener's liveness: packets its transport had received when last counted, and when that changed
    packets_received: int = 0
    heard_at: float = 0.0
    timer: asyncio.TimerHandle | None = None


class RoomMix:
    """One room's calls, its voice table and its 20 ms mix timer."""

    def __init__(self, worker: "Worker", room_id: str) -> None:
        self.worker = worker
        self.id = room_id
        self.loop = asyncio.get_running_loop()
        self.peers: dict[str, Peer] = {}
        capacity = 64
        self.positions = np.zeros((capacity, 3), np.float32)
        self.quats = np.tile(np.array([0, 0, 0, 1], np.float32), (capacity, 1))
        self.flags = np.zeros(capacity, np.uint8)
        self.zones = np.full(capacity, -1, np.int16)
        self._gains: np.ndarray | None = None
        self._listeners: list[Peer] = []
        self._speakers: list[Peer] = []
        self._speaker_slots = np.zeros(0, np.intp)
        self._frames = np.zeros((0, FRAME_SAMPLES), np.float32)
        self._levels = np.zeros(0, np.float32)
        self._ticks = 0
        self._next = self.loop.time() + TICK
        self._timer: asyncio.TimerHandle | None = self.loop.call_at(self._next, self._tick)

    # ------------------------------------------------------------ membership

    def changed(self) -> None:
        """Peers came, went or connected: rebuild the listener and speaker lists."""
        self._listeners = [peer for peer in self.peers.values() if peer.connected]
        self._speakers = [peer for peer in self._listeners if peer.incoming is not None]
        self._speaker_slots = np.array([peer.slot for peer in self._speakers], np.intp)
        self._frames = np.zeros((len(self._speakers), FRAME_SAMPLES), np.float32)
        self._levels = np.zeros(len(self._speakers), np.float32)
        self._gains = None

    def set_poses(self, table: np.ndarray) -> None:
        slots = table["slot"].astype(np.intp)
        if len(slots) and slots.max() >= len(self.flags):
            self._grow(int(slots.max()) + 1)
        self.positions[slots] = table["head"][:, 0:3]
        self.quats[slots] = table["head"][:, 3:7]
        self.flags[slots] = table["flags"]
        self.zones[slots] = table["zone"]
        self._gains = None

    def _grow(self, need: int) -> None:
        size = max(need, 2 * len(self.flags))
        for name, fill in (("positions", 0.0), ("quats", None), ("flags", 0), ("zones", -1)):
            old = getattr(self, name)
            new = np.zeros((size, *old.shape[1:]), old.dtype)
            if fill is None:
                new[:, 3] = 1.0
            else:
                new[:] = fill
            new[: len(old)] = old
            setattr(self, name, new)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------ the mix tick

    def _tick(self) -> None:
        started = self.loop.time()
        t0 = time.perf_counter()
        late = started - self._next > TICK
        try:
            self._mix()
        except Exception:
            log.exception("mix tick failed in room %s", self.id)
        duration = time.perf_counter() - t0
        self.worker.record_tick(duration, late or duration > TICK)
        self._next += TICK
        if self._next < started:  # stalled: skip ahead, never burst
            self._next = started + TICK
        self._timer = self.loop.call_at(self._next, self._tick)

    def _mix(self) -> None:
        listeners, speakers = self._listeners, self._speakers
        if not listeners:
            return
        frames = self._frames
        now = time.monotonic()
        silent: list[Peer] = []
        for row, peer in enumerate(speakers):
            assert peer.incoming is not None
            self.worker.frames_in += peer.incoming.take(frames[row])
            if now - peer.incoming.last > self.worker.settings.media_timeout:
                silent.append(peer)
        if self._gains is None:
            self._gains = gains(
                self.positions,
                self.quats,
                self.flags,
                self.zones,
                np.array([peer.slot for peer in listeners], np.intp),
                self._speaker_slots,
                self.worker.settings.attenuation,
            )
        pcm = mix(self._gains, frames)
        batch = []
        for index, peer in enumerate(listeners):
            assert peer.outbound is not None
            batch.append((peer.outbound.transport, peer.outbound.packet(peer.encoder.encode(pcm[index]))))
        self.worker.background(send_all(batch))
        self._ticks += 1
        if speakers:
            flags = self.flags[self._speaker_slots]
            voiced = ((flags & MAY_SPEAK) != 0) & ((flags & MUTED) == 0)  # a muted speaker shows no activity
            np.maximum(self._levels, levels(frames) * voiced, out=self._levels)
        if self._ticks % LEVEL_EVERY == 0 and speakers:
            self._levels *= voiced  # muted since the last report: no activity left over from before
            self.worker.send(
                {
                    "type": "levels",
                    "room": self.id,
                    "participants": [peer.participant for peer in speakers],
                    "levels": [round(float(v), 3) for v in self._levels],
                }
            )
            self._levels[:] = 0.0
        for peer in silent:  # last: dropping replaces the lists and arrays used above
            self.worker.drop(self, peer, "peer_failed", "No audio arrived from your call; offer again.")


class Worker:
    """The media process: rooms of calls, driven by messages from the node."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: WorkerSettings) -> None:
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.rooms: dict[str, RoomMix] = {}
        self._durations: list[float] = []
        self._late = 0
        #: 20 ms frames of speaker audio mixed since start (benchmarks check the input rate)
        self.frames_in = 0
        #: the Opus complexity every mix is encoded at now (lower while crowded)
        self.complexity = settings.opus_complexity
        #: offers being answered, peer connections being closed, packets being sent
        self._closing: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(ipc.encode_json(message))

    def record_tick(self, duration: float, late: bool) -> None:
        self._durations.append(duration)
        self._late += late

    async def run(self) -> None:
        reporter = asyncio.create_task(self._report())
        watchdog = asyncio.create_task(self._watch_listeners())
        try:
            while True:
                try:
                    message = await ipc.read(self.reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the node is gone: so are we
                if isinstance(message, ipc.Poses):
                    room = self.rooms.get(message.room)
                    if room is not None:
                        room.set_poses(message.table)
                else:
                    self._control(message)
        finally:
            reporter.cancel()
            watchdog.cancel()
            for room in list(self.rooms.values()):
                for peer in list(room.peers.values()):
                    self.drop(room, peer, None, "")
            await asyncio.sleep(0)

    async def _report(self) -> None:
        """Once a second: the tick durations and late ticks since the last report."""
        while True:
            await asyncio.sleep(1.0)
            durations, self._durations = self._durations, []
            late, self._late = self._late, 0
            self.send(
                {
                    "type": "stats",
                    "pid": os.getpid(),
                    "durations_ms": [round(d * 1000, 3) for d in durations],
                    "late": late,
                    "frames_in": self.frames_in,
                    "opus": opus.LIBRARY,
                    "opus_complexity": self.complexity,
                    "rooms": len(self.rooms),
                    "peers": self._calls(),
                }
            )

    async def _watch_listeners(self) -> None:
        """Once a second: drop listen-only calls from which nothing has arrived for
        ``listener_timeout``. A speaker's silence is caught in the mix tick; a listener
        sends only RTCP, counted by its transport (``getStats``). Without this, a listener
        whose network vanished would hold its call until ICE consent expires (~30 s)."""
        while True:
            await asyncio.sleep(1.0)
            for room in list(self.rooms.values()):
                for peer in list(room.peers.values()):
                    if not peer.connected or peer.incoming is not None:
                        continue
                    try:
                        report = await peer.pc.getStats()
                    except Exception:  # closed while we asked: drop() has run or will
                        log.debug("getStats failed for %s", peer.participant, exc_info=True)
                        continue
                    received = sum(s.packetsReceived for s in report.values() if s.type == "transport")
                    now = time.monotonic()
                    if received != peer.packets_received:
                        peer.packets_received, peer.heard_at = received, now
                    elif now - peer.heard_at > self.settings.listener_timeout:
                        self.drop(room, peer, "peer_failed", "Nothing arrived from your call; offer again.")

    def background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._closing.add(task)  # keep a reference until it is done
        task.add_done_callback(self._closing.discard)

    def _control(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "offer":
            room = self.rooms.get(message["room"])
            if room is None:
                room = self.rooms[message["room"]] = RoomMix(self, message["room"])
            # Answering takes tens of ms (ICE gathering): pose tables and other offers must
            # not wait behind it. _offer claims the participant's place before its first await.
            self.background(self._offer(room, message))
        elif kind == "bitrate":
            self._bitrate(message)
        elif kind == "close":
            room = self.rooms.get(message["room"])
            peer = room.peers.get(message["participant"]) if room is not None else None
            if room is not None and peer is not None:
                self.drop(room, peer, None, "")
        elif kind == "room_closed":
            room = self.rooms.get(message["room"])
            if room is not None:
                for peer in list(room.peers.values()):
                    self.drop(room, peer, None, "")
                self._forget_if_empty(room)
        else:
            log.warning("unknown IPC message %r", kind)

    def _bitrate(self, message: dict[str, Any]) -> None:
        """A listener's mix at another bit rate from its next frame, the call going on. No
        call (not yet offered, or ended): nothing to do, the node sends the rate with the
        next offer."""
        room = self.rooms.get(message["room"])
        peer = room.peers.get(message["participant"]) if room is not None else None
        if peer is None:
            return
        try:
            peer.encoder.set_bitrate(self._listener_bitrate(message.get("bitrate")))
        except ValueError as exc:  # the node checks first (MediaPool.set_listener_bitrate): a bug, not a crash
            log.warning("bitrate for %s refused: %s", peer.participant, exc)

    def _listener_bitrate(self, chosen: object) -> int:
        """The bit rate the node chose for a listener, or with None the configured one."""
        return self.settings.opus_bitrate if chosen is None else ipc.check_listener_bitrate(chosen)

    async def _offer(self, room: RoomMix, message: dict[str, Any]) -> None:
        pid = message["participant"]
        old = room.peers.get(pid)
        if old is not None:  # a renegotiation replaces the call
            self.drop(room, old, None, "")
        elif self._calls() >= self.settings.max_calls:
            self.send(
                {"type": "error", "room": room.id, "participant": pid, "re": message.get("re"), "code": "media_unavailable",
                 "message": f"Voice is at capacity ({self.settings.max_calls} calls); try again later."}
            )
            self._forget_if_empty(room)
            return
        # No STUN/TURN servers: a school LAN has no internet, and aiortc's default is a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        encoder = opus.Encoder(self._listener_bitrate(message.get("bitrate")), self.complexity)
        peer = Peer(pid, int(message["slot"]), pc, IdleTrack(), bool(message["send"]), encoder)
        room.peers[pid] = peer
        self._calls_changed()
        reply = {"room": room.id, "participant": pid, "re": message.get("re")}

        @pc.on("connectionstatechange")
        def _state() -> None:
            if room.peers.get(pid) is not peer:
                return
            if pc.connectionState == "connected" and not peer.connected:
                peer.connected = True
                peer.heard_at = time.monotonic()
                if peer.timer is not None:
                    peer.timer.cancel()
                room.changed()
            elif pc.connectionState in ("failed", "closed"):
                self.drop(room, peer, "peer_failed", "The voice connection was lost; offer again.")

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            peer.sends = peer.sends or track.kind == "audio"

        try:
            await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if len(audio) != 1:
                raise ValueError(f"the offer needs exactly one audio section, it has {len(audio)}")
            audio[0].setCodecPreferences(OPUS)  # the mix is Opus-encoded; a speaker must send Opus too
            audio[0].sender.replaceTrack(peer.track)
            audio[0].direction = "sendrecv" if peer.may_send else "sendonly"
            await pc.setLocalDescription(await pc.createAnswer())
            answer = sdp.SessionDescription.parse(pc.localDescription.sdp).media[0]
            peer.outbound = Outbound(audio[0].sender.transport, answer)
            if peer.may_send and peer.sends:
                peer.incoming = Inbound(answer.rtp.codecs[0].payloadType)
                peer.incoming.attach(audio[0].receiver)
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on malformed SDP
            if room.peers.get(pid) is peer:
                self.drop(room, peer, None, "")
            reason = str(exc) or type(exc).__name__
            self.send({"type": "error", **reply, "code": "bad_sdp", "message": f"The offer was refused: {reason}."})
            return
        if room.peers.get(pid) is not peer:  # replaced or closed while answering
            return
        peer.timer = asyncio.get_running_loop().call_later(self.settings.ice_timeout, self._ice_timeout, room, peer)
        self.send({"type": "answer", **reply, "sdp": pc.localDescription.sdp})

    def _ice_timeout(self, room: RoomMix, peer: Peer) -> None:
        if room.peers.get(peer.participant) is peer and not peer.connected:
            self.drop(
                room, peer, "ice_timeout", f"The voice connection did not complete within {self.settings.ice_timeout:g} s."
            )

    def drop(self, room: RoomMix, peer: Peer, code: str | None, message: str) -> None:
        """End a call now and free it; tell the node why if the node did not ask for it."""
        if room.peers.get(peer.participant) is not peer:
            return
        del room.peers[peer.participant]
        if peer.timer is not None:
            peer.timer.cancel()
        peer.track.stop()
        self.background(peer.pc.close())
        room.changed()
        self._calls_changed()
        if code is not None:
            self.send({"type": "closed", "room": room.id, "participant": peer.participant, "code": code, "message": message})
        self._forget_if_empty(room)

    def _calls(self) -> int:
        """Calls in this worker, every room together: what capacity and crowding count."""
        return sum(len(room.peers) for room in self.rooms.values())

    def _calls_changed(self) -> None:
        """Encode at a lower complexity while the worker holds more than ``crowded_calls``."""
        complexity = 0 if self._calls() > self.settings.crowded_calls else self.settings.opus_complexity
        if complexity != self.complexity:
            self.complexity = complexity
            for room in self.rooms.values():
                for peer in room.peers.values():
                    peer.encoder.set_complexity(complexity)

    def _forget_if_empty(self, room: RoomMix) -> None:
        if not room.peers and self.rooms.get(room.id) is room:
            room.stop()
            del self.rooms[room.id]


def restrict_ice_addresses(addresses: tuple[str, ...]) -> None:
    """Offer only these addresses as ICE host candidates (e.g. 127.0.0.1 for loopback tests).

    aiortc has no option for this, and aioice skips 127.0.0.1 when it lists the
    interfaces; replacing aioice's address lister for this process is the one place
    we reach into the library.
    """
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)  # type: ignore[assignment]


def main(sock: socket.socket, settings: WorkerSettings) -> None:
    """Process entry point (multiprocessing "spawn"): serve the node on ``sock`` until it closes."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s media[%(process)d] %(levelname)s %(message)s")
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the node
    # decides when we stop (it closes the socket), so its shutdown is not a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if settings.ice_addresses:
        restrict_ice_addresses(settings.ice_addresses)
    # Everything imported so far lives as long as the process: out of the collector's
    # sight, a full collection with 50 calls takes ~35 ms instead of ~130 ms, and a
    # stall that long makes the mix late for everyone.
    gc.freeze()

    async def serve() -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        await Worker(reader, writer, settings).run()

    # uvloop: aiortc's per-packet path is mostly event-loop work (datagram callbacks,
    # futures, task wake-ups), which uvloop does in C
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
