"""Voice against a real server process, with real aiortc peers sending distinct tones.

Each speaker publishes its own sine tone; a listener records its one mixed stereo
stream and measures each tone's energy per channel, so the spatial mix (direction,
distance, mute, zones, broadcast) is checked on the audio that actually arrives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import numpy as np
import pytest

from amaliy_client import AmaliyClient
from amaliy_client.voice import ToneTrack, VoiceCall, VoiceRefused
from tests.conftest import LOOPBACK_VOICE, REPO, LiveServer, start_server

FACING_FORWARD = (0.0, 0.0, 0.0, 1.0)  # WebXR: -z ahead, +x right
#: seconds of audio measured per check, once the mix has settled and the tones flow
WINDOW = 1.2
QUIET = 1e-5
#: a tone is flowing once its energy over the last FLOW_PROBE seconds passes AUDIBLE (a
#: speaker 1.5 m away arrives at about 5e-3); FLOW_TIMEOUT bounds the wait on a busy machine
AUDIBLE = 1e-4
FLOW_PROBE = 0.2
FLOW_TIMEOUT = 10.0


#: seconds a listen-only call may send nothing (the default is 15)
LISTENER_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = start_server(
        tmp_path_factory.mktemp("voice"),
        env={"AMALIY_VOICE_ICE_TIMEOUT": "2", "AMALIY_VOICE_MEDIA_TIMEOUT": "2", "AMALIY_VOICE_LISTENER_TIMEOUT": str(LISTENER_TIMEOUT)},
    )
    yield live
    live.stop()


class Person:
    """A participant with a pose and a call."""

    def __init__(self, client: AmaliyClient) -> None:
        self.client = client
        self.call: VoiceCall | None = None

    @property
    def id(self) -> str:
        return self.client.id

    async def stand(self, x: float, y: float, z: float, quat: tuple[float, ...] = FACING_FORWARD) -> None:
        pose = np.zeros(21, np.float32)
        pose[0:3] = (x, y, z)
        pose[3:7] = quat
        pose[7:10], pose[10:14] = (x - 0.2, y - 0.5, z - 0.2), FACING_FORWARD
        pose[14:17], pose[17:21] = (x + 0.2, y - 0.5, z - 0.2), FACING_FORWARD
        await self.client.send_pose(pose)

    async def dial(self, tone: float | None = None) -> VoiceCall:
        self.call = await VoiceCall.start(self.client, ToneTrack(tone) if tone else None)
        return self.call

    async def close(self) -> None:
        if self.call is not None:
            await self.call.close(tell_server=False)
        if self.client.close_code is None:
            await self.client.close()


async def join(server: LiveServer, session: dict[str, Any], name: str, role: str = "student") -> Person:
    if role == "teacher":
        client = AmaliyClient(session["ws_url"], session["teacher_token"])
        await client.connect()
    else:
        client = await AmaliyClient.join(server.base_url, session["join_code"], name, role)
    return Person(client)


async def measure(
    listener: Person, *tones: float, silent: tuple[float, ...] = (), settle: float = 0.4
) -> dict[float, tuple[float, float]]:
    """Each tone's (left, right) energy in the listener's mix over WINDOW seconds.

    The window opens ``settle`` seconds from now (for a pose, mute or zone change to reach
    the mix) and only once every tone not in ``silent`` flows: under load a call's audio
    can start late, and a window half of silence would fail a check whose direction is
    right. If a tone never flows within FLOW_TIMEOUT, the window opens anyway and the
    caller's checks say what is wrong.
    """
    assert listener.call is not None
    recording = listener.call.recording
    settled = time.monotonic() + settle
    await asyncio.sleep(settle)
    expected = [tone for tone in tones if tone not in silent]

    def flowing() -> bool:
        now = time.monotonic()
        if now - settled < FLOW_PROBE:
            return False
        return all(sum(recording.tone_energy(tone, now - FLOW_PROBE)) > AUDIBLE for tone in expected)

    deadline = time.monotonic() + FLOW_TIMEOUT
    while expected and not flowing() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    since = time.monotonic()
    await asyncio.sleep(WINDOW)
    return {tone: recording.tone_energy(tone, since) for tone in tones}


def total(energy: tuple[float, float]) -> float:
    return energy[0] + energy[1]


def media(server: LiveServer, window: float = 10.0) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/healthz", params={"media_window": window}, timeout=5).json()["media"]


async def reported_media(server: LiveServer) -> dict[str, Any]:
    """The media figures of a report made from now on (the worker reports once a second, with
    the mix ticks since its last report: ``ticks_total`` grows with each report while a room mixes)."""
    before = media(server)["ticks_total"]
    figures: dict[str, Any] = {}

    def fresh() -> bool:
        figures.update(media(server))
        return bool(figures["ticks_total"] > before)

    await wait_for(fresh, 10, "a new report from the media worker")
    return figures


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def room_of(server: LiveServer, *layout: tuple[str, tuple[float, float, float], float | None], teacher: bool = False) -> list[Person]:
    """Join, place and call: (name, head position, tone or None to only listen); 'T' joins as the teacher."""
    session = server.open_session()
    people = []
    for name, position, tone in layout:
        person = await join(server, session, name, "teacher" if name == "T" else "student")
        await person.stand(*position)
        people.append(person)
    await asyncio.sleep(0.1)  # poses reach the room before the calls
    for person, (_, _, tone) in zip(people, layout):
        await person.dial(tone)
    for person in people:
        assert person.call is not None
        await person.call.connected()
    return people


async def close_all(people: list[Person]) -> None:
    for person in people:
        await person.close()


async def test_speaker_on_the_left_is_heard_in_the_left_ear(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1.5, 1.6, 0), 440.0), ("B", (1.5, 1.6, 0), 660.0))
    try:
        energy = await measure(people[0], 440.0, 660.0)
        left_a, right_a = energy[440.0]
        left_b, right_b = energy[660.0]
        assert left_a > 1e-4 and left_a >= 2 * right_a, energy
        assert right_b > 1e-4 and right_b >= 2 * left_b, energy
        # turning around swaps the ears
        await people[0].stand(0, 1.6, 0, quat=(0.0, 1.0, 0.0, 0.0))
        energy = await measure(people[0], 440.0)
        assert energy[440.0][1] >= 2 * energy[440.0][0], energy
    finally:
        await close_all(people)


async def test_a_nearer_speaker_is_louder(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("Near", (0, 1.6, -1), 440.0), ("Far", (0, 1.6, -6), 660.0))
    try:
        energy = await measure(people[0], 440.0, 660.0)
        assert total(energy[440.0]) > 4 * total(energy[660.0]) > 0, energy  # gains 1 vs 1/6: energy ratio ~36
    finally:
        await close_all(people)


async def test_self_mute_and_teacher_mute_silence_a_speaker(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0), ("B", (1, 1.6, 0), 660.0), ("T", (0, 1.6, 3), None))
    listener, a, b, teacher = people
    try:
        before = await measure(listener, 440.0, 660.0)
        assert total(before[440.0]) > 1e-4 and total(before[660.0]) > 1e-4, before
        await a.client.mute(True)
        await listener.client.expect("muted", participant=a.id, muted=True)
        await teacher.client.mute(True, participant=b.id)
        event = await listener.client.expect("muted", participant=b.id, muted=True)
        assert event["forced"] is True and event["by"] == teacher.id
        after = await measure(listener, 440.0, 660.0, silent=(440.0, 660.0))
        assert total(after[440.0]) < total(before[440.0]) / 1000, (before, after)
        assert total(after[660.0]) < total(before[660.0]) / 1000, (before, after)
        # a forced mute cannot be lifted by the student; the teacher can lift it
        await b.client.mute(False)
        assert (await b.client.expect("error"))["code"] == "forbidden"
        await teacher.client.mute(False, participant=b.id)
        await listener.client.expect("muted", participant=b.id, muted=False)
        assert listener.client.participants[b.id]["muted"] is False
        again = await measure(listener, 660.0)
        assert total(again[660.0]) > total(before[660.0]) / 4, (before, again)
    finally:
        await close_all(people)


async def test_zones_isolate_and_the_teacher_broadcast_reaches_every_zone(server: LiveServer) -> None:
    # chemistry-bench: every station has a zone "bench" over its worktop, 1.6 x 0.3 x 0.7 m from y = 0.9;
    # station 1's is centred at (-4.5, 1.05, -1.5), station 2's at (-1.5, 1.05, -1.5)
    people = await room_of(
        server,
        ("Bench1", (-4.9, 1.0, -1.5), 440.0),
        ("Bench2", (-4.1, 1.0, -1.5), None),
        ("NextBench", (-1.5, 1.0, -1.5), 660.0),
        ("Out", (0.0, 1.6, 0.5), 550.0),
        ("T", (0.0, 1.6, 2.0), 880.0),
    )
    bench1, bench2, next_bench, out, teacher = people
    try:
        heard = await measure(bench2, 440.0, 660.0, 550.0, 880.0, silent=(660.0, 550.0, 880.0))
        assert total(heard[440.0]) > 1e-4, heard  # same zone
        assert total(heard[660.0]) < QUIET and total(heard[550.0]) < QUIET, heard  # other zone, outside
        assert total(heard[880.0]) < QUIET, heard  # the teacher is outside every zone
        heard_out = await measure(out, 440.0, 880.0, silent=(440.0,), settle=0)
        assert total(heard_out[440.0]) < QUIET and total(heard_out[880.0]) > 1e-4, heard_out  # common space

        await teacher.client.broadcast(True)
        await bench2.client.expect("broadcast", on=True, by=teacher.id)
        for listener in (bench2, next_bench, out):
            energy = (await measure(listener, 880.0, settle=0.2))[880.0]
            # full level: a speaker 1.5 m away arrives at about 5e-3, a zone away below QUIET; a packet
            # lost on a busy machine breaks the tone's phase and takes some off the projection
            assert total(energy) > 5e-4, (listener.client.participant["name"], energy)
            assert 0.5 < energy[0] / energy[1] < 2, energy  # centred
        heard = await measure(next_bench, 440.0, silent=(440.0,), settle=0)
        assert total(heard[440.0]) < QUIET, heard  # the zones stay isolated from each other
    finally:
        await close_all(people)


async def test_voice_levels_reach_clients(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    try:
        listener, speaker = people
        await listener.client.wait_until(lambda: listener.client.voice_levels.get(speaker.id, 0) > 0.05, 3, "levels")
        await speaker.client.mute(True)
        await listener.client.wait_until(lambda: listener.client.voice_levels.get(speaker.id) == 0, 3, "no level while muted")
    finally:
        await close_all(people)


async def test_observers_may_listen_but_not_speak(server: LiveServer) -> None:
    session = server.open_session()
    observer = await join(server, session, "Obs", "observer")
    try:
        with pytest.raises(VoiceRefused) as refused:
            await observer.dial(440.0)
        assert refused.value.code == "forbidden" and "may not speak" in refused.value.message
        call = await observer.dial(None)
        await call.connected()
    finally:
        await observer.close()


# ------------------------------------------------------------------ bad input


async def test_bad_sdp_gets_a_clear_error_and_the_call_can_start_again(server: LiveServer) -> None:
    session = server.open_session()
    person = await join(server, session, "Bad")
    try:
        await person.client.send({"type": "rtc_offer", "sdp": "v=0\r\nthis is not sdp\r\n", "id": "o1"})
        error = await person.client.expect("error", timeout=5)
        assert error["code"] == "bad_sdp" and error["re"] == "o1", error
        await person.client.send({"type": "rtc_offer", "sdp": "x" * 70_000})  # past 64 KiB: closed 1009
        code, _ = await person.client.closed()
        assert code == 1009
        again = await join(server, session, "Good")
        call = await again.dial(440.0)
        await call.connected()
        await again.close()
    finally:
        await person.close()


async def test_a_peer_that_never_completes_ice_is_dropped(server: LiveServer) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    ghost = await join(server, server.open_session(), "Ghost")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await wait_for(lambda: media(server)["peers"] == 2, 3, "the two calls counted")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await ghost.client.send({"type": "rtc_offer", "sdp": pc.localDescription.sdp})
        await ghost.client.expect("rtc_answer", timeout=5)  # ... and never applied: no ICE checks
        await wait_for(lambda: media(server)["peers"] == 3, 2, "the ghost's call counted")
        closed = await ghost.client.expect("rtc_closed", timeout=6)
        assert closed["code"] == "ice_timeout", closed
        await wait_for(lambda: media(server)["peers"] == 2, 3, "the ghost's call freed")
        energy = await measure(people[0], 440.0, settle=0)
        assert total(energy[440.0]) > 1e-4  # the others never noticed
    finally:
        await pc.close()
        await ghost.close()
        await close_all(people)


GHOST = """
import asyncio, sys
from amaliy_client import AmaliyClient
from amaliy_client.voice import ToneTrack, VoiceCall, use_ice_addresses

async def main() -> None:
    use_ice_addresses(sys.argv[3])
    client = await AmaliyClient.join(sys.argv[1], sys.argv[2], "Vanishing")
    call = await VoiceCall.start(client, ToneTrack(660.0) if sys.argv[4] == "speak" else None)
    await call.connected()
    print(client.id, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def ghost_process(server: LiveServer, listener: Person, mode: str) -> subprocess.Popen[str]:
    """A participant in its own process, in a call as a speaker or listen-only, that prints its id."""
    session = listener.client.welcome["snapshot"]["room"]
    sessions = httpx.get(f"{server.base_url}/api/sessions", headers={"Authorization": f"Bearer {server.teacher_key}"}).json()
    code = next(s["join_code"] for s in sessions if s["id"] == session)
    return subprocess.Popen(
        [sys.executable, "-c", GHOST, server.base_url, code, LOOPBACK_VOICE, mode],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'clients' / 'python'}"},
    )


async def ghost_connected(ghost: subprocess.Popen[str]) -> str:
    assert ghost.stdout is not None
    ghost_id = (await asyncio.get_running_loop().run_in_executor(None, ghost.stdout.readline)).strip()
    assert ghost_id, "the vanishing participant did not connect"
    return ghost_id


async def test_a_peer_that_vanishes_mid_call_is_freed_and_the_others_keep_hearing(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    listener = people[0]
    ghost = ghost_process(server, listener, "speak")
    try:
        await ghost_connected(ghost)
        heard = await measure(listener, 440.0, 660.0)
        assert total(heard[660.0]) > 1e-5, heard
        peers = media(server)["peers"]
        ghost.send_signal(signal.SIGKILL)  # no BYE, no DTLS close, no socket close handshake
        ghost.wait()
        started = time.monotonic()
        await wait_for(lambda: media(server)["peers"] < peers, 8, "the vanished call freed")
        assert time.monotonic() - started < 8
        # A stays audible: a window at A's level comes within seconds (on a busy machine one window may stall)
        deadline = time.monotonic() + 10
        during = await measure(listener, 440.0, settle=0)
        while total(during[440.0]) <= total(heard[440.0]) / 4 and time.monotonic() < deadline:
            during = await measure(listener, 440.0, settle=0)
        assert total(during[440.0]) > total(heard[440.0]) / 4, (heard, during)
    finally:
        if ghost.poll() is None:
            ghost.kill()
        await close_all(people)


async def test_a_listener_whose_network_vanishes_is_freed_within_the_listener_timeout(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    ghost = ghost_process(server, people[0], "listen")
    try:
        await ghost_connected(ghost)
        await wait_for(lambda: media(server)["peers"] == 3, 5, "the listener's call counted")
        # Frozen, not killed: its room socket stays open (the kernel keeps it), so only
        # the media worker can notice that its RTCP reports stopped.
        ghost.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        await wait_for(lambda: media(server)["peers"] == 2, LISTENER_TIMEOUT + 4, "the frozen listener's call freed")
        assert time.monotonic() - started >= LISTENER_TIMEOUT - 1  # not before it had a chance to report
        assert total((await measure(people[0], 440.0, settle=0))[440.0]) > 1e-4  # the others never noticed
    finally:
        ghost.kill()
        ghost.wait()
        await close_all(people)


async def test_a_flood_of_renegotiations_is_rate_limited_and_bounded(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    listener, speaker = people
    try:
        # the worker reports once a second: count the calls once a report includes both
        await wait_for(lambda: media(server)["peers"] >= 2, 10, "the media worker to report both calls")
        baseline = (await reported_media(server))["peers"]
        assert speaker.call is not None
        since = time.monotonic()
        for _ in range(12):
            await speaker.client.send({"type": "rtc_offer", "sdp": speaker.call.pc.localDescription.sdp})
        replies = []
        deadline = time.monotonic() + 15
        while len(replies) < 12 and time.monotonic() < deadline:
            replies += [m for m in speaker.client.drain() if m["type"] in ("rtc_answer", "error")]
            await asyncio.sleep(0.05)
        limited = [m for m in replies if m["type"] == "error" and m["code"] == "rate_limited"]
        assert len(limited) >= 12 - 4, replies  # burst of 4 (one is the original call's offer)
        assert (await reported_media(server))["peers"] <= baseline
        # the listener's stream never stopped while the speaker renegotiated
        chunks = [t for t, _ in listener.call.recording.chunks if t >= since]  # type: ignore[union-attr]
        assert chunks and max(np.diff(chunks)) < 0.5
    finally:
        await close_all(people)


async def test_offers_past_the_workers_capacity_are_refused(server_factory: Any) -> None:
    small = server_factory(env={"AMALIY_VOICE_MAX_CALLS": "1"})
    people = await room_of(small, ("A", (0, 1.6, 0), 440.0))
    late = await join(small, small.open_session(), "Late")
    try:
        with pytest.raises(VoiceRefused) as refused:
            await late.dial(None)
        assert refused.value.code == "media_unavailable" and "capacity" in refused.value.message
        await people[0].call.close()  # type: ignore[union-attr]
        await wait_for(lambda: media(small)["peers"] == 0, 3, "the call freed")
        call = await late.dial(None)
        await call.connected()
    finally:
        await late.close()
        await close_all(people)


async def test_a_crowded_worker_encodes_cheaper_and_the_mix_still_pans(server_factory: Any) -> None:
    crowded = server_factory(env={"AMALIY_VOICE_CROWDED_CALLS": "1"})
    people = await room_of(crowded, ("L", (0, 1.6, 0), None), ("A", (-1.5, 1.6, 0), 440.0))
    try:
        await wait_for(lambda: media(crowded)["opus_complexity"] == 0, 3, "complexity 0 with two calls")
        left, right = (await measure(people[0], 440.0))[440.0]
        assert left > 1e-4 and left >= 2 * right
        await people[1].call.close()  # type: ignore[union-attr]
        await wait_for(lambda: media(crowded)["opus_complexity"] == 3, 3, "full complexity with one call")
    finally:
        await close_all(people)


async def test_the_node_restarts_a_dead_media_worker_and_rooms_keep_ticking(server: LiveServer) -> None:
    people = await room_of(server, ("L", (0, 1.6, 0), None), ("A", (-1, 1.6, 0), 440.0))
    listener, speaker = people
    try:
        before = media(server)
        os.kill(before["workers"][0]["pid"], signal.SIGKILL)
        closed = await listener.client.expect("rtc_closed", timeout=5)
        assert closed["code"] == "media_unavailable"
        await speaker.stand(-1.0, 1.6, 0.5)  # the room still ticks: the pose reaches the listener
        await listener.client.wait_until(lambda: abs(listener.client.poses[speaker.id][2] - 0.5) < 1e-5, 2, "pose")
        await wait_for(lambda: media(server)["alive"] and media(server)["workers"][0]["pid"] != before["workers"][0]["pid"], 10, "a new worker")
        assert media(server)["restarts"] == before["restarts"] + 1
        await speaker.client.expect("rtc_closed", timeout=2)
        for person, tone in ((speaker, 440.0), (listener, None)):
            await person.call.close(tell_server=False)  # type: ignore[union-attr]
            await person.dial(tone)
        await listener.call.connected()  # type: ignore[union-attr]
        heard = await measure(listener, 440.0)
        assert total(heard[440.0]) > 1e-4, heard
    finally:
        await close_all(people)


async def test_two_media_workers_each_mix_their_own_rooms(server_factory: Any) -> None:
    """--media-workers 2: a second room with calls goes to the idle worker, and each room's
    listener hears its own speaker and not the other room's."""
    two = server_factory(args=["--media-workers", "2"])
    first = await room_of(two, ("L", (0, 1.6, 0), None), ("A", (-1.5, 1.6, 0), 440.0))
    second = await room_of(two, ("M", (0, 1.6, 0), None), ("B", (1.5, 1.6, 0), 660.0))
    try:
        workers = media(two)["workers"]
        assert len(workers) == 2 and [w["rooms"] for w in workers] == [1, 1]
        await wait_for(lambda: [w["peers"] for w in media(two)["workers"]] == [2, 2], 5, "two calls on each worker")
        assert len({w["pid"] for w in workers}) == 2
        heard = await measure(first[0], 440.0, 660.0, silent=(660.0,))
        assert heard[440.0][0] > AUDIBLE and total(heard[660.0]) < QUIET, heard
        heard = await measure(second[0], 660.0, 440.0, silent=(440.0,))
        assert heard[660.0][1] > AUDIBLE and total(heard[440.0]) < QUIET, heard
        metrics = httpx.get(two.base_url + "/metrics", timeout=5).text
        assert 'amaliy_media_rooms{worker="0"} 1.0' in metrics and 'amaliy_media_rooms{worker="1"} 1.0' in metrics
    finally:
        await close_all(first + second)
