"""Voice calls for the SDK: publish a tone or a file, record the room's mix.

Signaling is the room socket's documented ``rtc_offer``/``rtc_answer``: the
client gathers every ICE candidate before it offers, and the server answers
with a complete SDP, so no trickle messages are needed (a browser does the same
with ``iceGatheringState == "complete"``). Tests and benchmarks use this with
real aiortc peers.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import aioice.ice
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from amaliy_client.client import AmaliyClient

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def use_ice_addresses(*addresses: str) -> None:
    """Offer only these local addresses as ICE candidates in this process (tests: "127.0.0.1").

    aioice lists every interface but loopback and aiortc has no option to choose;
    this replaces aioice's address lister for the process.
    """
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)  # type: ignore[assignment]


class _PacedTrack(MediaStreamTrack):
    """An audio track that hands out one 20 ms frame per 20 ms of real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def _next_pts(self) -> int:
        """Wait until the next frame is due; return its pts (in samples)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pts, self._pts = self._pts, self._pts + FRAME_SAMPLES
        return pts


class ToneTrack(_PacedTrack):
    """A mono sine tone, paced in real time in 20 ms frames (a stand-in microphone)."""

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        pts = await self._next_pts()
        t = (pts + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        pcm = (self.amplitude * 32767 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = _TIME_BASE
        return frame


class OpusToneTrack(_PacedTrack):
    """A tone Opus-encoded once (one second, looped) and sent as packets: a speaker that
    costs almost nothing, so a load test's clients leave the CPU to the server."""

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        super().__init__()
        encoder = av.CodecContext.create("libopus", "w")
        encoder.bit_rate = 32_000
        encoder.format = "s16"
        encoder.layout = "mono"
        encoder.sample_rate = SAMPLE_RATE
        encoder.time_base = _TIME_BASE
        t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE  # whole cycles at any integer frequency
        pcm = (amplitude * 32767 * np.sin(2 * np.pi * round(frequency) * t)).astype(np.int16)
        packets: list[bytes] = []
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + FRAME_SAMPLES], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            packets += [bytes(packet) for packet in encoder.encode(frame)]
        self._packets = packets[len(packets) // 2 :]  # the second second: past the encoder's warm-up

    async def recv(self) -> av.Packet:  # type: ignore[override]
        pts = await self._next_pts()
        packet = av.Packet(self._packets[(pts // FRAME_SAMPLES) % len(self._packets)])
        packet.pts = pts
        packet.time_base = _TIME_BASE
        return packet


def file_track(path: str) -> MediaStreamTrack:
    """The audio of a media file (WAV, Ogg, MP3, ...), played in real time."""
    player = MediaPlayer(path)
    if player.audio is None:
        raise ValueError(f"{path} has no audio")
    return player.audio


class Recording:
    """Stereo s16 samples received from the server, with their arrival times."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, np.ndarray]] = []
        self.frames = 0

    def add(self, frame: av.AudioFrame) -> None:
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))
        if pcm.shape[1] == 1:
            pcm = np.repeat(pcm, 2, axis=1)
        self.chunks.append((time.monotonic(), pcm[:, :2].astype(np.float32) / 32768.0))
        self.frames += 1

    def clear(self) -> None:
        self.chunks.clear()

    def samples(self, since: float = 0.0) -> np.ndarray:
        """(n, 2) float samples received after ``since`` (monotonic seconds)."""
        parts = [pcm for t, pcm in self.chunks if t >= since]
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)

    def tone_energy(self, frequency: float, since: float = 0.0) -> tuple[float, float]:
        """Energy of one tone in the left and right channels (projection on sin/cos at ``frequency``)."""
        pcm = self.samples(since)
        if not len(pcm):
            return 0.0, 0.0
        t = np.arange(len(pcm)) / SAMPLE_RATE
        basis = np.stack([np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t)])
        coeffs = basis @ pcm / len(pcm)  # (2 basis, 2 channels)
        energy = (coeffs**2).sum(axis=0)
        return float(energy[0]), float(energy[1])


class VoiceCall:
    """One participant's WebRTC call to the server's mixer."""

    def __init__(self, client: AmaliyClient, pc: RTCPeerConnection, recording: Recording) -> None:
        self.client = client
        self.pc = pc
        self.recording = recording
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls, client: AmaliyClient, track: MediaStreamTrack | None = None, record: bool = True, timeout: float = 10.0
    ) -> "VoiceCall":
        """Offer a call (sending ``track``, or receive-only without one) and wait for the answer."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no public STUN server: LAN and loopback only
        call = cls(client, pc, Recording())
        if track is not None:
            pc.addTransceiver(track, direction="sendrecv")
        else:
            pc.addTransceiver("audio", direction="recvonly")

        @pc.on("track")
        def _track(remote: MediaStreamTrack) -> None:
            call._tasks.append(asyncio.create_task(call._consume(remote, record)))

        try:
            await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
            answer = await call.negotiate(pc.localDescription.sdp, timeout)
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        except BaseException:
            await pc.close()
            raise
        return call

    async def negotiate(self, sdp: str, timeout: float = 10.0) -> dict[str, Any]:
        """Send an ``rtc_offer``; return the ``rtc_answer`` (raises on an error reply)."""
        await self.client.send({"type": "rtc_offer", "sdp": sdp})
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.client._pending:
                if msg.get("type") in ("rtc_answer", "error", "rtc_closed"):
                    self.client._pending.remove(msg)
                    if msg["type"] != "rtc_answer":
                        raise VoiceRefused(msg["code"], msg["message"])
                    return msg
            await self.client._wait_arrival(deadline, what="rtc_answer")

    async def connected(self, timeout: float = 10.0) -> None:
        """Wait until the media path is up and mixed audio is arriving."""
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected" or not self.recording.frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"call not flowing (state {self.pc.connectionState})")
            await asyncio.sleep(0.05)

    async def _consume(self, remote: MediaStreamTrack, record: bool) -> None:
        try:
            while True:
                frame = await remote.recv()
                if record:
                    self.recording.add(frame)  # type: ignore[arg-type]
                else:
                    self.recording.frames += 1
        except MediaStreamError:
            pass

    async def close(self, tell_server: bool = True) -> None:
        if tell_server and self.client.close_code is None:
            await self.client.send({"type": "rtc_close"})
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


class VoiceRefused(Exception):
    """The server refused or dropped the call (``code`` from the protocol's ErrorCode)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
