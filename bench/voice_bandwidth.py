"""Benchmark: one listener's voice downstream in kbit/s, with people talking, as a real aiortc peer.

What is counted: everything the listener's DTLS transport receives over the window
(aiortc's ``RTCTransportStats.bytesReceived``), which for a listen-only call is its
mix as SRTP packets (RTP header with the MID extension, the Opus payload, the SRTP
authentication tag) and the server's RTCP sender reports. Not counted: the IPv4 and
UDP headers (28 bytes a packet; ``ip_udp_kbps`` adds them, for a link budget) and ICE
consent checks (STUN, a few bytes a second, answered below DTLS).

The mix sends one packet every 20 ms, but on a loaded machine the worker skips ticks
it cannot make, and fewer packets arrive. So the figures are given at the mix's own
pace, 50 packets a second of the bytes a packet measured (``kbps``, what a listener
receives from a server that keeps up), beside what arrived (``measured_kbps``,
``packets_per_s``): a ``packets_per_s`` well below 50 says the machine was busy.

``measure_voice_kbps`` measures a server that is already running (another benchmark's);
run as a script, it starts one server per bit rate and reports each:

    .venv/bin/python bench/voice_bandwidth.py --bitrates 48000,32000,24000 --talkers 3 --seconds 20

The last line is one JSON object: {"talkers", "seconds", "by_bitrate": {bit/s:
{"kbps", "ip_udp_kbps", "packet_bytes", "measured_kbps", "packets_per_s"}}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aiortc import RTCPeerConnection

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amaliy_client import AmaliyClient  # noqa: E402
from amaliy_client.voice import OpusToneTrack, VoiceCall, use_ice_addresses  # noqa: E402
from realtime.audio.mixer import FRAME_SAMPLES, SAMPLE_RATE  # noqa: E402
from tests.conftest import LOOPBACK_VOICE, start_server  # noqa: E402

#: IPv4 (20 bytes) and UDP (8 bytes) headers around each datagram
IP_UDP_BYTES = 28
#: the mix's packets a second: one a 20 ms mix tick
PACKETS_PER_S = SAMPLE_RATE // FRAME_SAMPLES
#: a talker is in the mix once the room reports its voice level above this
SPEAKING = 0.05


@dataclass(frozen=True)
class Received:
    """A peer connection's transport counters at one moment."""

    bytes: int
    packets: int
    at: float


async def received(pc: RTCPeerConnection) -> Received:
    """What the peer's transports have received so far (SRTP and SRTCP, as they arrived)."""
    report = await pc.getStats()
    transports = [s for s in report.values() if s.type == "transport"]
    return Received(sum(s.bytesReceived for s in transports), sum(s.packetsReceived for s in transports), time.monotonic())


def kbps(before: Received, after: Received) -> float:
    """kbit/s received between two readings, without IP and UDP headers."""
    return (after.bytes - before.bytes) * 8 / 1000 / (after.at - before.at)


@dataclass(frozen=True)
class VoiceDownstream:
    #: kbit/s at the mix's pace (50 packets a second), without IP/UDP headers
    kbps: float
    #: the same with 28 bytes of IPv4 and UDP headers a packet
    ip_udp_kbps: float
    #: bytes a packet received, on average (RTCP included)
    packet_bytes: float
    #: kbit/s that arrived over the window, and packets a second
    measured_kbps: float
    packets_per_s: float


async def measure_voice(base_url: str, join_code: str, talkers: int = 3, seconds: float = 20.0) -> VoiceDownstream:
    """Join ``talkers`` speakers (each its own tone, 1.5 m around) and one listener to the
    practical with ``join_code``, wait until every talker is heard in the mix, then count
    what the listener receives for ``seconds``. The server must offer loopback for voice
    (AMALIY_VOICE_ADDRESSES=127.0.0.1, as tests.conftest.start_server does)."""
    use_ice_addresses(LOOPBACK_VOICE)
    people: list[AmaliyClient] = []
    calls: list[VoiceCall] = []
    try:
        for i in range(talkers + 1):
            client = await AmaliyClient.join(base_url, join_code, f"Voice{i}")
            pose = client.poses[client.id].copy()
            angle = 2 * math.pi * i / max(1, talkers)
            pose[0:3] = (0.0, 1.6, 0.0) if i == 0 else (1.5 * math.sin(angle), 1.6, -1.5 * math.cos(angle))
            await client.send_pose(pose)
            people.append(client)
        listener, speakers = people[0], people[1:]
        calls.append(await VoiceCall.start(listener, None, record=False, timeout=30))
        for n, client in enumerate(speakers):
            calls.append(await VoiceCall.start(client, OpusToneTrack(300 + 110 * n), record=False, timeout=30))
        for call in calls:
            await call.connected(timeout=30)
        await listener.wait_until(
            lambda: all(listener.voice_levels.get(s.id, 0) > SPEAKING for s in speakers), 30, "every talker in the mix"
        )
        before = await received(calls[0].pc)
        await asyncio.sleep(seconds)
        after = await received(calls[0].pc)
        packets = after.packets - before.packets
        size = (after.bytes - before.bytes) / max(1, packets)
        return VoiceDownstream(
            kbps=round(size * PACKETS_PER_S * 8 / 1000, 2),
            ip_udp_kbps=round((size + IP_UDP_BYTES) * PACKETS_PER_S * 8 / 1000, 2),
            packet_bytes=round(size, 1),
            measured_kbps=round(kbps(before, after), 2),
            packets_per_s=round(packets / (after.at - before.at), 1),
        )
    finally:
        for call in calls:
            await call.close(tell_server=False)
        for client in people:
            await client.close()


async def measure_voice_kbps(base_url: str, join_code: str, talkers: int = 3, seconds: float = 20.0) -> float:
    """One listener's voice downstream, kbit/s at the mix's pace without IP/UDP headers
    (``measure_voice``'s ``kbps``)."""
    return (await measure_voice(base_url, join_code, talkers, seconds)).kbps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bitrates", default="48000,32000,24000", help="comma-separated Opus bit rates (bit/s) of the mix")
    parser.add_argument("--talkers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results = {}
    for bitrate in [int(b) for b in args.bitrates.split(",")]:
        server = start_server(Path(tempfile.mkdtemp(prefix="amaliy-bench-voice-")), env={"AMALIY_VOICE_OPUS_BITRATE": str(bitrate)})
        try:
            session = server.open_session("Voice bandwidth")
            result = asyncio.run(measure_voice(server.base_url, session["join_code"], args.talkers, args.seconds))
        finally:
            server.stop()
        print(f"{bitrate} bit/s: {result}", file=sys.stderr, flush=True)
        results[bitrate] = result.__dict__
    print(json.dumps({"talkers": args.talkers, "seconds": args.seconds, "by_bitrate": results}))


if __name__ == "__main__":
    main()
