"""A speaker's incoming voice: Opus payloads taken straight off SRTP, decoded in the mix tick.

aiortc's receiver pushes every packet through a jitter buffer, NACK bookkeeping and
a decoder thread per call, then back to the event loop through two queues. With 50
callers those 50 threads fight the mix loop for the GIL every 20 ms, and that
convoy, not the decoding, is what saturated the media worker. Here the receiver's
packet handler is replaced per call (``attach``): the payload goes into a short
queue, and the room's mix tick decodes it in the worker's own thread, where libopus
costs a few tens of microseconds per frame (realtime.audio.opus).

The queue is the jitter buffer: at most ``MAX_QUEUED`` payloads wait (oldest
dropped first, which bounds latency when a sender's clock runs fast), a tick with
no payload plays silence and the next packets then wait one tick longer.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from realtime.audio import opus
from realtime.audio.mixer import FRAME_SAMPLES

#: payloads that may wait for the mix (60 ms of 20 ms packets)
MAX_QUEUED = 3


class Inbound:
    """One speaker's voice: queued Opus payloads and the mono samples decoded from them."""

    __slots__ = ("payload_type", "payloads", "decoder", "samples", "filled", "last", "undecodable")

    def __init__(self, payload_type: int) -> None:
        #: the negotiated Opus payload type; packets of any other type are ignored
        self.payload_type = payload_type
        self.payloads: deque[bytes] = deque(maxlen=MAX_QUEUED)
        self.decoder = opus.Decoder()
        #: decoded, not yet mixed: less than a frame, plus room for the longest packet
        self.samples = np.zeros(FRAME_SAMPLES + opus.MAX_FRAME_SAMPLES, np.float32)
        self.filled = 0
        #: monotonic time of the last packet (a call whose audio stops is dropped)
        self.last = time.monotonic()
        #: payloads libopus refused (played as silence)
        self.undecodable = 0

    def attach(self, receiver: RTCRtpReceiver) -> None:
        """Take over ``receiver``'s incoming RTP packets for this call.

        aiortc's DTLS transport hands each decrypted packet to the receiver's
        ``_handle_rtp_packet`` coroutine; an attribute on this one receiver instance
        replaces it, so aiortc's own path stays untouched for everything else.
        """
        receiver._handle_rtp_packet = self._on_rtp  # type: ignore[method-assign]

    async def _on_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type == self.payload_type and packet.payload:
            self.payloads.append(packet.payload)
            self.last = time.monotonic()

    def take(self, out: np.ndarray) -> bool:
        """Write the next 20 ms into ``out``, decoding queued payloads as needed;
        silence (and False) while fewer than 20 ms are at hand."""
        while self.filled < FRAME_SAMPLES and self.payloads:
            self._decode(self.payloads.popleft())
        if self.filled < FRAME_SAMPLES:
            out[:] = 0.0
            return False
        out[:] = self.samples[:FRAME_SAMPLES]
        self.filled -= FRAME_SAMPLES
        self.samples[: self.filled] = self.samples[FRAME_SAMPLES : FRAME_SAMPLES + self.filled]
        return True

    def _decode(self, payload: bytes) -> None:
        try:
            self.filled += self.decoder.decode(payload, self.samples[self.filled :])
        except opus.OpusError:
            self.undecodable += 1
