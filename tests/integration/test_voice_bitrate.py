"""A listener's voice bit rate lowered mid-call, measured where it lands: at real aiortc peers.

No client message asks for another bit rate (the node chooses it when a listener's
link is weak), so the node runs in this process, on real ports, with its real media
worker process, and the test calls ``Node.set_voice_bitrate`` as the node itself
would. What each listener receives is read from its own peer connection's transport
counters (bench/voice_bandwidth.py counts the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np
import pytest
import uvicorn

from bench.voice_bandwidth import kbps, received
from realtime.audio import ipc
from realtime.audio.mixer import SAMPLE_RATE
from scenes import samples
from server.api import create_app
from server.config import from_env
from server.node import Node
from tests.conftest import LOOPBACK_VOICE, free_port_pair
from tests.integration.test_voice import Person, close_all, room_of

#: seconds of received bytes per reading (100 packets of the mix)
WINDOW = 2.0
#: seconds a lowered rate may take to show over a window (it applies from the next 20 ms frame)
SETTLE_TIMEOUT = 10.0


class InProcess:
    """What tests.integration.test_voice.room_of needs of a server, for a node in this process:
    its address, and one practical, opened when the node started."""

    def __init__(self, node: Node, base_url: str, session: dict[str, Any]) -> None:
        self.node = node
        self.base_url = base_url
        self.session = session

    def open_session(self) -> dict[str, Any]:
        return self.session


@contextlib.asynccontextmanager
async def serving(data_dir: Path) -> AsyncIterator[InProcess]:
    """`amaliy serve`'s node and HTTP app on free loopback ports, voice on loopback."""
    port = free_port_pair()
    env = {**os.environ, "AMALIY_VOICE_ADDRESSES": LOOPBACK_VOICE, "AMALIY_JOIN_RATE_PER_MIN": "100000"}
    config = from_env(env).with_overrides(host="127.0.0.1", port=port, data_dir=data_dir, demo=False, media_workers=1)
    node = Node(config)
    await node.start()
    http = uvicorn.Server(uvicorn.Config(create_app(node), host="127.0.0.1", port=port, ws="none", lifespan="off", log_level="warning"))
    task = asyncio.create_task(http.serve())
    try:
        while not http.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        session = await node.open_session(node.store.add_user("Teacher", "teacher")[0], samples.DEMO, title="Bit rate")
        yield InProcess(node, f"http://127.0.0.1:{port}", {"id": session.id, "join_code": session.join_code})
    finally:
        http.should_exit = True
        await task
        await node.stop()


@dataclass(frozen=True)
class Rate:
    """What one listener received over a window."""

    kbps: float
    #: bytes a packet: the mix's bit rate whatever the machine's load does to the packet rate
    packet_bytes: float


async def rates(*people: Person, window: float = WINDOW) -> list[Rate]:
    """Each listener's received rate over the same window: a mix tick a busy machine skips
    is skipped for every listener of the room, so their rates compare."""
    calls = [person.call for person in people]
    assert all(calls)
    before = [await received(call.pc) for call in calls]  # type: ignore[union-attr]
    await asyncio.sleep(window)
    after = [await received(call.pc) for call in calls]  # type: ignore[union-attr]
    return [Rate(kbps(b, a), (a.bytes - b.bytes) / max(1, a.packets - b.packets)) for b, a in zip(before, after)]


async def until(condition: Any, *people: Person, what: str) -> list[Rate]:
    """Rates over successive windows, until ``condition(rates)`` holds for one."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        now = await rates(*people)
        if condition(now):
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {now} after {SETTLE_TIMEOUT:g} s")


def tone_share(person: Person, frequency: float, since: float) -> float:
    """The share of the listener's received power within 25 Hz of ``frequency``: a tone shows
    through codec noise and through the phase jumps of a late packet."""
    assert person.call is not None
    pcm = person.call.recording.samples(since).mean(axis=1)
    power = np.abs(np.fft.rfft(pcm)) ** 2
    near = np.abs(np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE) - frequency) < 25
    return float(power[near].sum() / max(power.sum(), 1e-12))


LAYOUT = (
    ("Weak", (0.0, 1.6, 0.0), None),
    ("Strong", (0.0, 1.6, 1.0), None),
    ("A", (-1.5, 1.6, 0.0), 440.0),
    ("B", (1.5, 1.6, 0.0), 660.0),
)


async def test_one_listeners_bit_rate_falls_mid_call_and_the_others_stays(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        room, people = server.session["id"], await room_of(server, *LAYOUT)  # type: ignore[arg-type]
        weak, strong = people[0], people[1]
        try:
            weak_before, strong_before = await rates(weak, strong)
            assert 0.85 < weak_before.kbps / strong_before.kbps < 1.15, (weak_before, strong_before)
            pc = weak.call.pc  # type: ignore[union-attr]

            server.node.set_voice_bitrate(room, weak.id, ipc.MIN_LISTENER_BITRATE)
            since = time.monotonic()
            weak_after, strong_after = await until(
                lambda r: r[0].kbps < 0.7 * r[1].kbps, weak, strong, what="the weak listener's rate did not fall"
            )
            assert weak_after.packet_bytes < 0.7 * weak_before.packet_bytes, (weak_before, weak_after)
            assert abs(strong_after.packet_bytes - strong_before.packet_bytes) < 0.1 * strong_before.packet_bytes
            # the same call, never renegotiated, still carrying both voices
            assert weak.call.pc is pc and pc.connectionState == "connected"  # type: ignore[union-attr]
            assert tone_share(weak, 440.0, since) > 0.1 and tone_share(weak, 660.0, since) > 0.1

            server.node.set_voice_bitrate(room, weak.id, None)  # back to the configured rate
            await until(lambda r: r[0].kbps > 0.85 * r[1].kbps, weak, strong, what="the weak listener's rate did not come back")
        finally:
            await close_all(people)


async def test_bad_bit_rates_are_refused_and_a_chosen_rate_holds_for_a_later_call(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        room, people = server.session["id"], await room_of(server, *LAYOUT)  # type: ignore[arg-type]
        weak, strong = people[0], people[1]
        try:
            for bad, why in (
                (ipc.MIN_LISTENER_BITRATE - 1, "12000 to 64000 bit/s"),
                (ipc.MAX_LISTENER_BITRATE + 1, "12000 to 64000 bit/s"),
                ("16000", "whole number"),
                (16000.0, "whole number"),
                (True, "whole number"),
            ):
                with pytest.raises(ValueError, match=why):
                    server.node.set_voice_bitrate(room, weak.id, bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="no participant"):
                server.node.set_voice_bitrate(room, "nobody", 16_000)
            with pytest.raises(ValueError, match="no live practical"):
                server.node.set_voice_bitrate("no-such-room", weak.id, 16_000)
            weak_now, strong_now = await rates(weak, strong)  # nothing refused changed the mix
            assert 0.85 < weak_now.kbps / strong_now.kbps < 1.15, (weak_now, strong_now)

            server.node.set_voice_bitrate(room, weak.id, ipc.VOICE_BITRATE_BY_LEVEL[-1])
            lowered, _ = await until(lambda r: r[0].kbps < 0.8 * r[1].kbps, weak, strong, what="the low level did not apply")
            # the listener offers again (a new peer connection replaces the call): its mix keeps the chosen rate
            old = weak.call
            await weak.dial(None)
            await weak.call.connected()  # type: ignore[union-attr]
            await old.close(tell_server=False)  # type: ignore[union-attr]
            again, other = await rates(weak, strong)
            assert again.kbps < 0.8 * other.kbps, (again, other)
            assert abs(again.packet_bytes - lowered.packet_bytes) < 0.1 * lowered.packet_bytes, (lowered, again)
        finally:
            await close_all(people)
