"""A listener's mix bit rate: the bounds, the encoder changing rate mid-stream, what libopus
keeps of the panning at each level of the ladder, and the node's side of the command
(checked, remembered, sent with the call's offer) with no worker process."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest

from realtime.audio import ipc, opus
from realtime.audio.mixer import FRAME_SAMPLES, SAMPLE_RATE
from realtime.audio.pool import MediaPool
from realtime.room import Media
from tests.unit.test_room import enter, make_room

SENDRECV = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"


def panned_voices(seconds: float = 2.0) -> np.ndarray:
    """Two harmonic voices, one 9.5 dB to the left and one 9.5 dB to the right (gains 0.9 / 0.3)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    low = sum(np.sin(2 * np.pi * k * 120 * t) / k for k in range(1, 20))
    high = sum(np.sin(2 * np.pi * k * 210 * t) / k for k in range(1, 20))
    low, high = 0.1 * low / np.abs(low).max(), 0.1 * high / np.abs(high).max()
    half = len(t) // 2
    left = np.concatenate([0.9 * low[:half], 0.3 * high[half:]])
    right = np.concatenate([0.3 * low[:half], 0.9 * high[half:]])
    return np.ascontiguousarray(np.stack([left, right], axis=1).astype(np.float32))


def encode(pcm: np.ndarray, encoder: opus.Encoder) -> list[bytes]:
    return [encoder.encode(pcm[i : i + FRAME_SAMPLES]) for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def decode_stereo(packets: list[bytes]) -> np.ndarray:
    """What a browser plays: the packets through a stereo Opus decoder (FFmpeg's libopus)."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "stereo"
    out = []
    for payload in packets:
        for frame in decoder.decode(av.Packet(payload)):
            samples = frame.to_ndarray().astype(np.float64)
            if frame.format.name.startswith("s16"):
                samples /= 32768.0
            out.append(samples.reshape(-1, 2) if frame.format.is_packed else samples.T)
    return np.concatenate(out)


def level_difference_db(pcm: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(pcm[:, 0] ** 2) / np.sum(pcm[:, 1] ** 2)))


def test_listener_bit_rates_out_of_bounds_or_not_whole_are_refused_with_the_bounds() -> None:
    assert ipc.check_listener_bitrate(ipc.MIN_LISTENER_BITRATE) == 12_000
    assert ipc.check_listener_bitrate(ipc.MAX_LISTENER_BITRATE) == 64_000
    for bad in (11_999, 64_001, 0, -24_000):
        with pytest.raises(ValueError, match="must be 12000 to 64000 bit/s, not"):
            ipc.check_listener_bitrate(bad)
    for bad in (24_000.0, "24000", None, True):
        with pytest.raises(ValueError, match="whole number of bit/s"):
            ipc.check_listener_bitrate(bad)
    assert all(ipc.check_listener_bitrate(b) for b in ipc.VOICE_BITRATE_BY_LEVEL if b is not None)


def test_the_encoder_changes_rate_between_two_frames_and_the_stream_decodes_on() -> None:
    pcm = panned_voices()
    half = len(pcm) // 2 // FRAME_SAMPLES * FRAME_SAMPLES
    encoder = opus.Encoder(48_000, 3)
    first = encode(pcm[:half], encoder)
    encoder.set_bitrate(16_000)
    second = encode(pcm[half:], encoder)
    assert 110 < np.mean([len(p) for p in first[5:]]) < 130  # 48 kbit/s: 120 bytes a 20 ms frame
    assert 35 < np.mean([len(p) for p in second[1:]]) < 45  # 16 kbit/s from the very next frame: 40 bytes
    decoded = decode_stereo(first + second)
    assert len(decoded) == len(first + second) * FRAME_SAMPLES
    tail = decoded[-len(second) * FRAME_SAMPLES // 2 :]
    assert np.sqrt(np.mean(tail**2)) > 0.3 * np.sqrt(np.mean(pcm[-len(tail) :] ** 2))  # still the voice, not silence
    with pytest.raises(opus.OpusError, match="bitrate"):
        encoder.set_bitrate(-5)


@pytest.mark.parametrize("bitrate, least_db", [(48_000, 8.5), (32_000, 8.0), (24_000, 6.0)])
def test_the_default_and_the_reduced_level_keep_the_panning(bitrate: int, least_db: float) -> None:
    pcm = panned_voices()
    decoded = decode_stereo(encode(pcm, opus.Encoder(bitrate, 3)))
    half = len(decoded) // 2
    assert level_difference_db(pcm[: len(pcm) // 2]) == pytest.approx(9.54, abs=0.01)
    assert level_difference_db(decoded[FRAME_SAMPLES * 5 : half]) > least_db  # the left voice stays left
    assert level_difference_db(decoded[half + FRAME_SAMPLES * 5 :]) < -least_db  # the right one right


def test_at_the_low_level_libopus_codes_the_mix_as_mono() -> None:
    """What the ladder's low level gives up (docs/audio.md, "Bit rate"): below about 18
    kbit/s libopus sends one channel, so both ears hear the same."""
    packets = encode(panned_voices(), opus.Encoder(ipc.VOICE_BITRATE_BY_LEVEL[-1], 3))
    assert not any(packet[0] & 0x04 for packet in packets)  # RFC 6716 TOC byte: the stereo flag
    decoded = decode_stereo(packets)
    assert np.array_equal(decoded[:, 0], decoded[:, 1])


# ------------------------------------------------------------------ the node's side


class Socket:
    """The supervisor's end of the worker socket: what was written, decoded."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.transport = SimpleNamespace(get_write_buffer_size=lambda: 0)

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        length, kind = struct.unpack_from("<IB", data)
        self.frames.append(ipc.decode(kind, data[5 : 4 + length]))

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.frames if isinstance(m, dict) and m["type"] == kind]


def pool_with_a_room() -> tuple[MediaPool, Any, Socket]:
    room = make_room()
    enter(room, "weak")
    enter(room, "strong")
    runner = SimpleNamespace(room=room)
    pool = MediaPool(lambda: {room.id: runner}, ipc.WorkerSettings(), workers=1)  # type: ignore[dict-item]
    socket = Socket()
    pool.workers[0]._writer = socket  # type: ignore[assignment]
    return pool, runner, socket


def offer(pool: MediaPool, runner: Any, pid: str) -> None:
    pool.media(runner, Media(pid, runner.room.participants[pid].slot, "offer", SENDRECV, True, "o"))


def test_a_chosen_rate_goes_to_the_call_now_and_with_every_later_offer_until_reset() -> None:
    pool, runner, socket = pool_with_a_room()
    pool.set_listener_bitrate(runner.room.id, "weak", 24_000)  # before any call: remembered only
    assert socket.frames == []
    offer(pool, runner, "weak")
    offer(pool, runner, "strong")
    assert [(m["participant"], m["bitrate"]) for m in socket.sent("offer")] == [("weak", 24_000), ("strong", None)]
    pool.set_listener_bitrate(runner.room.id, "weak", 16_000)
    assert socket.sent("bitrate")[-1] == {"type": "bitrate", "room": runner.room.id, "participant": "weak", "bitrate": 16_000}
    offer(pool, runner, "weak")  # a renegotiation keeps it
    assert socket.sent("offer")[-1]["bitrate"] == 16_000
    pool.set_listener_bitrate(runner.room.id, "weak", None)  # back to the configured rate
    assert socket.sent("bitrate")[-1]["bitrate"] is None
    assert pool.listener_bitrate(runner.room.id, "weak") is None
    pool.set_listener_bitrate(runner.room.id, "weak", 16_000)
    pool.room_closed(runner.room.id)
    assert pool.listener_bitrates == {}


def test_a_refused_rate_changes_nothing_and_sends_nothing() -> None:
    pool, runner, socket = pool_with_a_room()
    offer(pool, runner, "weak")
    pool.set_listener_bitrate(runner.room.id, "weak", 24_000)
    before = list(socket.frames)
    for room_id, pid, bitrate, why in (
        (runner.room.id, "weak", 8_000, "12000 to 64000"),
        (runner.room.id, "weak", "16k", "whole number"),
        (runner.room.id, "nobody", 16_000, "no participant 'nobody'"),
        ("elsewhere", "weak", 16_000, "no live practical 'elsewhere'"),
    ):
        with pytest.raises(ValueError, match=why):
            pool.set_listener_bitrate(room_id, pid, bitrate)  # type: ignore[arg-type]
    assert socket.frames == before
    assert pool.listener_bitrate(runner.room.id, "weak") == 24_000
