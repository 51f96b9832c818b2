"""Several SDK clients against a real server process: sync, ownership, resume, teacher powers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from amaliy_client import AmaliyClient, JoinRefused, join_code
from realtime.protocol import CloseCode

from tests.conftest import LiveServer


async def students(server: LiveServer, code: str, *names: str) -> list[AmaliyClient]:
    return [await AmaliyClient.join(server.base_url, code, name) for name in names]


async def teacher_of(server: LiveServer, session: dict) -> AmaliyClient:
    client = AmaliyClient(session["ws_url"], session["teacher_token"])
    await client.connect()
    return client


async def test_two_students_see_each_other_move(server: LiveServer) -> None:
    session = server.open_session()
    ali, bea = await students(server, session["join_code"], "Ali", "Bea")
    try:
        await bea.wait_until(lambda: ali.id in bea.poses, what="Ali's avatar")
        pose = bea.poses[ali.id].copy()
        pose[0:3] += (0.5, 0.0, -0.25)
        await ali.send_pose(pose)
        await bea.wait_until(lambda: np.allclose(bea.poses[ali.id][0:3], pose[0:3]), what="Ali's new position")
        assert bea.participants[ali.id]["name"] == "Ali"
    finally:
        await ali.close()
        await bea.close()


async def test_grab_is_exclusive_and_moves_reach_others(server: LiveServer) -> None:
    session = server.open_session()
    teacher = await teacher_of(server, session)
    ali, bea = await students(server, session["join_code"], "Ali", "Bea")
    try:
        station = await ali.wait_station()
        await teacher.assign_station(bea.id, station)  # Bea works at Ali's bench
        await bea.wait_station(station)
        beaker = f"beaker-water@{station}"
        await ali.grab(beaker)
        await bea.expect("grabbed", object=beaker, participant=ali.id)
        await bea.grab(beaker)
        assert (await bea.expect("error"))["code"] == "object_held"
        await ali.move(beaker, [0.1, 1.2, -0.8, 0, 0, 0, 1])
        await bea.wait_until(lambda: abs(bea.objects[beaker]["transform"][1] - 1.2) < 1e-5, what="beaker moved")
        await bea.move(beaker, [5, 5, 5, 0, 0, 0, 1])
        assert (await bea.expect("error"))["code"] == "not_holder"
        await ali.release(beaker)
        released = await bea.expect("released", object=beaker)
        assert released["transform"][1] == pytest.approx(1.2)
        await bea.grab(beaker)
        await ali.expect("grabbed", object=beaker, participant=bea.id)
    finally:
        await ali.close()
        await bea.close()
        await teacher.close()


async def test_holder_leaving_releases_the_object(server: LiveServer) -> None:
    session = server.open_session()
    ali, bea = await students(server, session["join_code"], "Ali", "Bea")
    burner = f"burner@{await ali.wait_station()}"
    await ali.grab(burner)
    await bea.expect("grabbed", object=burner)
    await ali.close()
    released = await bea.expect("released", object=burner)
    assert released["reason"] == "left"
    assert (await bea.expect("left", participant=ali.id))["reason"] == "left"
    await bea.close()


async def test_reconnect_within_window_keeps_identity_holds_and_missed_events(server: LiveServer) -> None:
    session = server.open_session()
    ali, bea = await students(server, session["join_code"], "Ali", "Bea")
    try:
        beaker, burner = f"beaker-cuso4@{await ali.wait_station()}", f"burner@{await bea.wait_station()}"
        await ali.grab(beaker)
        await ali.expect("grabbed")
        ali_id = ali.id
        await ali.drop()
        await bea.expect("presence", participant=ali_id, connected=False)
        await bea.grab(burner)  # an event Ali misses while away
        await bea.expect("grabbed", object=burner)
        welcome = await ali.connect(last_seq=ali.seq)
        assert welcome["resumed"] is True and welcome["participant"]["id"] == ali_id
        assert welcome["held"] == [beaker]
        assert welcome["replayed"] >= 2  # presence(False) and Bea's grab
        await ali.wait_until(lambda: ali.objects[burner]["holder"] == bea.id, what="missed grab replayed")
        await bea.expect("presence", participant=ali_id, connected=True)
        await ali.move(beaker, [0.0, 1.3, -1.0, 0, 0, 0, 1])  # still the holder
        await bea.wait_until(lambda: abs(bea.objects[beaker]["transform"][1] - 1.3) < 1e-5, what="move after resume")
    finally:
        await ali.close()
        await bea.close()


async def test_reconnect_after_window_is_a_new_arrival(server_factory) -> None:
    live = server_factory(env={"AMALIY_RESUME_WINDOW": "1"})
    ali, bea = await students(live, live.demo_code, "Ali", "Bea")
    await ali.grab(f"flask@{await ali.wait_station()}")
    await ali.expect("grabbed")
    await ali.drop()
    left = await bea.expect("left", participant=ali.id, timeout=5)
    assert left["reason"] == "timeout"
    welcome = await ali.connect(last_seq=ali.seq)
    assert welcome["resumed"] is False and welcome["held"] == []
    await ali.close()
    await bea.close()


async def test_teacher_powers_end_to_end(server: LiveServer) -> None:
    session = server.open_session()
    teacher = await teacher_of(server, session)
    ali, bea = await students(server, session["join_code"], "Ali", "Bea")
    assert teacher.welcome["participant"]["role"] == "teacher"
    await teacher.wait_until(lambda: {ali.id, bea.id} <= set(teacher.participants), what="roster")

    await teacher.summon([1.0, 0.0, 2.0])
    assert (await ali.expect("summoned"))["position"] == [1.0, 0.0, 2.0]

    ali_beaker, bea_beaker = f"beaker-water@{await ali.wait_station()}", f"beaker-cuso4@{await bea.wait_station()}"
    await ali.grab(ali_beaker)
    await ali.expect("grabbed")
    await teacher.freeze(True)
    assert (await ali.expect("released", object=ali_beaker))["reason"] == "frozen"
    await ali.expect("frozen", frozen=True)
    await bea.grab(bea_beaker)
    assert (await bea.expect("error"))["code"] == "frozen"
    await teacher.freeze(False)
    await bea.expect("frozen", frozen=False)

    where = bea.objects[bea_beaker]["transform"][0]
    await bea.grab(bea_beaker)
    await bea.expect("grabbed")
    await bea.move(bea_beaker, [2.0, 1.0, 2.0, 0, 0, 0, 1])
    await teacher.reset()
    reset = await ali.expect("reset")
    beaker = next(o for o in reset["objects"] if o["id"] == bea_beaker)
    assert beaker["holder"] is None and beaker["transform"][0] == pytest.approx(where)

    await teacher.lock(True)
    await ali.expect("locked", locked=True)
    info = await join_code(server.base_url, session["join_code"], "Late")  # a token is issued while locked
    with pytest.raises(JoinRefused) as refused:
        await AmaliyClient(info["ws_url"], info["token"]).connect()
    assert refused.value.code == "room_locked" and refused.value.close_code == CloseCode.ROOM_LOCKED
    await teacher.lock(False)
    # trying again: the same token (as the web client's "Try again"), or the same device's join for its name
    again = await join_code(server.base_url, session["join_code"], "Late", device=info["device"])
    assert again["participant_id"] == info["participant_id"]
    late = AmaliyClient(again["ws_url"], again["token"])
    await late.connect()

    await teacher.kick(bea.id)
    assert await bea.closed() == (CloseCode.KICKED, "removed by the teacher")
    assert (await ali.expect("left", participant=bea.id))["reason"] == "kicked"
    with pytest.raises(JoinRefused) as refused:
        await bea.connect()
    assert refused.value.close_code == CloseCode.KICKED

    await teacher.end()
    await ali.expect("ended")
    assert (await ali.closed())[0] == CloseCode.SESSION_ENDED
    assert (await late.closed())[0] == CloseCode.SESSION_ENDED
    with server.http() as http:
        status = http.get(f"/api/sessions/{session['id']}", headers={"Authorization": f"Bearer {server.teacher_key}"}).json()
    assert status["status"] == "ended"
    with pytest.raises(Exception):
        await AmaliyClient.join(server.base_url, session["join_code"], "After")
    await teacher.close()


async def test_rooms_are_isolated(server: LiveServer) -> None:
    one, two = server.open_session(), server.open_session()
    ali = (await students(server, one["join_code"], "Ali"))[0]
    bea = (await students(server, two["join_code"], "Bea"))[0]
    assert await ali.wait_station() == await bea.wait_station() == 1  # the first student of each
    await ali.grab("beaker-water@1")
    await ali.expect("grabbed")
    await bea.grab("beaker-water@1")  # same object id, different room
    await bea.expect("grabbed")
    assert ali.id not in bea.participants and bea.id not in ali.participants
    await ali.close()
    await bea.close()


async def test_many_clients_converge(server: LiveServer) -> None:
    session = server.open_session()
    clients = await asyncio.gather(*(AmaliyClient.join(server.base_url, session["join_code"], f"S{i}") for i in range(12)))
    try:
        for i, client in enumerate(clients):
            pose = client.poses[client.id].copy()
            pose[1] = 1.0 + i / 100
            await client.send_pose(pose)
        for observer in clients:
            await observer.wait_until(
                lambda o=observer: all(c.id in o.poses and abs(o.poses[c.id][1] - (1.0 + i / 100)) < 1e-5 for i, c in enumerate(clients)),
                what="every pose",
            )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
