"""The media worker's own hot path, with no network: libopus calls, the incoming payload
queue, and the RTP packets written for each listener."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from aiortc import sdp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpReceiveParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from realtime.audio import inbound, opus
from realtime.audio.mixer import FRAME_SAMPLES, SAMPLE_RATE
from realtime.audio.outbound import MID_EXTENSION, Outbound

OPUS_PT = 111
REPO = Path(__file__).resolve().parents[2]


def stereo_tone(frequency: float, frames: int, left: float = 0.5, right: float = 0.0) -> np.ndarray:
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    wave = np.sin(2 * np.pi * frequency * t)
    return np.ascontiguousarray(np.stack([left * wave, right * wave], axis=1).astype(np.float32))


def encoded_tone(frequency: float, frames: int) -> list[bytes]:
    encoder = opus.Encoder(48_000, 3)
    pcm = stereo_tone(frequency, frames)
    return [encoder.encode(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(frames)]


def energy_at(samples: np.ndarray, frequency: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(freqs - frequency) < 30].sum() / spectrum.sum())


def test_a_stereo_tone_survives_encode_and_mono_decode() -> None:
    decoder = opus.Decoder()
    out = np.zeros(opus.MAX_FRAME_SAMPLES, np.float32)
    decoded = []
    for payload in encoded_tone(440.0, 25):
        assert 10 < len(payload) < 400  # 48 kb/s is ~120 bytes a frame
        n = decoder.decode(payload, out)
        assert n == FRAME_SAMPLES
        decoded.append(out[:n].copy())
    pcm = np.concatenate(decoded[5:])  # past the codec's warm-up
    assert energy_at(pcm, 440.0) > 0.5 and energy_at(pcm, 660.0) < 0.02
    assert 0.15 < np.sqrt(np.mean(pcm**2)) < 0.25  # the left channel's 0.5 peak, halved by the downmix


def test_libopus_refusals_are_errors_not_crashes() -> None:
    with pytest.raises(opus.OpusError, match="corrupted|invalid"):
        opus.Decoder().decode(b"\x03\x00", np.zeros(opus.MAX_FRAME_SAMPLES, np.float32))  # code 3, zero frames
    with pytest.raises(ValueError):
        opus.Decoder().decode(b"\xf8", np.zeros(FRAME_SAMPLES, np.float32))  # too small for the longest packet
    with pytest.raises(ValueError):
        opus.Encoder(48_000, 3).encode(np.zeros((FRAME_SAMPLES, 2), np.float64))
    with pytest.raises(opus.OpusError):
        opus.Encoder(48_000, 3).encode(np.zeros((123, 2), np.float32))  # not an Opus frame size


def rtp(payload: bytes, payload_type: int = OPUS_PT) -> RtpPacket:
    return RtpPacket(payload_type=payload_type, payload=payload)


def test_incoming_payloads_wait_in_a_short_queue_and_decode_at_the_tick() -> None:
    speaker = inbound.Inbound(OPUS_PT)
    payloads = encoded_tone(440.0, inbound.MAX_QUEUED + 2)

    async def arrive() -> None:
        for payload in payloads:
            await speaker._on_rtp(rtp(payload), 0)
        await speaker._on_rtp(rtp(payloads[0], payload_type=0), 0)  # another codec: ignored

    asyncio.run(arrive())
    assert list(speaker.payloads) == payloads[-inbound.MAX_QUEUED :]  # the oldest dropped, the other codec ignored
    frame = np.ones(FRAME_SAMPLES, np.float32)
    assert [speaker.take(frame) for _ in range(inbound.MAX_QUEUED)] == [True] * inbound.MAX_QUEUED
    assert np.abs(frame).max() > 0.1
    assert speaker.take(frame) is False and not frame.any()  # nothing left: silence


def test_an_undecodable_payload_is_counted_and_played_as_silence() -> None:
    speaker = inbound.Inbound(OPUS_PT)
    asyncio.run(speaker._on_rtp(rtp(b"\x03\x00"), 0))
    frame = np.ones(FRAME_SAMPLES, np.float32)
    assert speaker.take(frame) is False and not frame.any()
    assert speaker.undecodable == 1


ANSWER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    f"a=extmap:4 {MID_EXTENSION}\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:305419896 cname:mix\r\n"
)


def test_listener_packets_carry_the_answered_ssrc_payload_type_and_mid() -> None:
    media = sdp.SessionDescription.parse(ANSWER).media[0]
    out = Outbound(transport=None, answer=media)  # type: ignore[arg-type]
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpReceiveParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=4, uri=MID_EXTENSION)]))
    first, second = (RtpPacket.parse(out.packet(payload), extensions) for payload in (b"\x01\x02", b"\x03"))
    assert (first.version, first.payload_type, first.ssrc, first.payload) == (2, 111, 0x12345678, b"\x01\x02")
    assert first.extensions.mid == "0"
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert second.timestamp == (first.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF


def test_an_answer_without_ssrc_cannot_carry_a_mix() -> None:
    media = sdp.SessionDescription.parse(ANSWER.replace("a=ssrc:305419896 cname:mix\r\n", "")).media[0]
    with pytest.raises(ValueError, match="SSRC"):
        Outbound(transport=None, answer=media)  # type: ignore[arg-type]


def test_without_a_system_libopus_the_copy_inside_pyav_is_used() -> None:
    probe = (
        "import ctypes.util, numpy as np\n"
        "ctypes.util.find_library = lambda name: None  # as on a machine without libopus0\n"
        "from realtime.audio import opus\n"
        "packet = opus.Encoder(48_000, 3).encode(np.zeros((960, 2), np.float32))\n"
        "print(opus.LIBRARY, opus.Decoder().decode(packet, np.zeros(opus.MAX_FRAME_SAMPLES, np.float32)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    library, samples = done.stdout.split()
    assert "av.libs" in library and "libopus" in library and samples == "960"
