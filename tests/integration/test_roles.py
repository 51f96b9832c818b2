"""Every action x role cell, exercised against a real server.

EXPECTED is the product rule written out by hand (observers watch; students act
in the lab; teachers also run the practical). The test checks the server's
behaviour against it, over the room socket and over REST.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from typing import Awaitable, Callable

import httpx
import pytest

from amaliy_client import AmaliyClient, JoinRefused, join_code
from amaliy_client.voice import VoiceCall
from realtime.protocol import CloseCode
from realtime.roles import Action, Role
from scenes.package import pack_files, read_folder, scaffold

from tests.conftest import LiveServer

T, S, O, D = Role.TEACHER, Role.STUDENT, Role.OBSERVER, Role.DESIGNER
EXPECTED: dict[Action, set[Role]] = {
    Action.JOIN: {T, S, O},
    Action.PING: {T, S, O},
    Action.LEAVE: {T, S, O},
    Action.POSE: {T, S},
    Action.GRAB: {T, S},
    Action.MOVE_OBJECT: {T, S},
    Action.RELEASE: {T, S},
    Action.KICK: {T},
    Action.UNKICK: {T},
    Action.LOCK: {T},
    Action.SUMMON: {T},
    Action.FREEZE: {T},
    Action.RESET: {T},
    Action.END: {T},
    Action.INTERACT: {T, S},
    Action.ANSWER: {S},
    Action.CHOOSE_STATION: {S},
    Action.ASSIGN_STATION: {T},
    Action.HINT: {S},
    Action.PUSH_HINT: {T},
    Action.LISTEN: {T, S, O},
    Action.SPEAK: {T, S},
    Action.MUTE_OTHERS: {T},
    Action.BROADCAST: {T},
    Action.OPEN_SESSION: {T},
    Action.VIEW_SESSION: {T},
    Action.LIST_SCENES: {T, D},
    Action.UPLOAD_SCENE: {D},
    Action.DELETE_SCENE: {D},
    Action.VIEW_RESULTS: {T},
    Action.PREVIEW_SCENE: {D},
    Action.MANAGE_COURSES: {T},
    Action.VIEW_LEARNERS: {T},
    Action.VIEW_OWN_RECORDS: {S},
}
REST_ACTIONS = {
    Action.OPEN_SESSION, Action.VIEW_SESSION, Action.LIST_SCENES, Action.UPLOAD_SCENE, Action.DELETE_SCENE,
    Action.VIEW_RESULTS, Action.PREVIEW_SCENE, Action.MANAGE_COURSES, Action.VIEW_LEARNERS, Action.VIEW_OWN_RECORDS,
}


def scaffold_files(tmp_path: Path, package_id: str) -> dict[str, bytes]:
    folder = tmp_path / package_id
    scaffold(folder, package_id)
    return read_folder(folder)


def test_expected_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action)


async def connect_as(server: LiveServer, session: dict, role: Role, name: str) -> AmaliyClient:
    if role == T:
        client = AmaliyClient(session["ws_url"], session["teacher_token"])
    else:
        info = await join_code(server.base_url, session["join_code"], name, str(role))
        client = AmaliyClient(info["ws_url"], info["token"])
    await client.connect()
    if role == S:  # the sample lab puts each student at a bench of their own
        await client.wait_station(timeout=2)
    return client


def beaker(actor: AmaliyClient, target: AmaliyClient) -> str:
    """The beaker the actor reaches for: at their own station, else (teacher, observer) at the target's."""
    return f"beaker-water@{actor.station or target.station}"


Attempt = Callable[[AmaliyClient, AmaliyClient, AmaliyClient], Awaitable[None]]


async def _pose(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    pose = actor.poses.get(actor.id)
    pose = pose.copy() if pose is not None else witness.poses[witness.id].copy()
    pose[0] += 0.75
    await actor.send_pose(pose)
    await witness.wait_until(lambda: actor.id in witness.poses and abs(witness.poses[actor.id][0] - pose[0]) < 1e-5, 2)


async def _grabbed(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    await actor.grab(beaker(actor, target))
    await witness.expect("grabbed", object=beaker(actor, target), participant=actor.id, timeout=2)


async def _move(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    held = beaker(actor, target)
    if witness.objects[held]["holder"] != actor.id:
        await actor.grab(held)
    await actor.move(held, [0.3, 1.4, -0.9, 0, 0, 0, 1])
    await witness.wait_until(lambda: abs(witness.objects[held]["transform"][1] - 1.4) < 1e-5, 2)


async def _release(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    held = beaker(actor, target)
    if witness.objects[held]["holder"] is None:
        await actor.grab(held)
        await witness.expect("grabbed", object=held, participant=actor.id, timeout=2)
    await actor.release(held)
    await witness.expect("released", object=held, timeout=2)


SOCKET: dict[Action, Attempt] = {
    Action.JOIN: lambda a, w, t: _joined(a, w),
    Action.PING: lambda a, w, t: _ping(a),
    Action.LEAVE: lambda a, w, t: _leave(a),
    Action.POSE: _pose,
    Action.GRAB: _grabbed,
    Action.MOVE_OBJECT: _move,
    Action.RELEASE: _release,
    Action.KICK: lambda a, w, t: _kick(a, t),
    Action.UNKICK: lambda a, w, t: _unkick(a, w, t),
    Action.LOCK: lambda a, w, t: _event(a, w, {"type": "lock", "locked": True}, "locked"),
    Action.SUMMON: lambda a, w, t: _event(a, w, {"type": "summon", "position": [0, 0, 1]}, "summoned"),
    Action.FREEZE: lambda a, w, t: _event(a, w, {"type": "freeze", "frozen": True}, "frozen"),
    Action.RESET: lambda a, w, t: _event(a, w, {"type": "reset"}, "reset"),
    Action.END: lambda a, w, t: _event(a, w, {"type": "end"}, "ended"),
    Action.LISTEN: lambda a, w, t: _listen(a),
    Action.SPEAK: lambda a, w, t: _speak(a, w),
    Action.MUTE_OTHERS: lambda a, w, t: _event(a, w, {"type": "mute", "participant": t.id, "muted": True}, "muted"),
    Action.BROADCAST: lambda a, w, t: _event(a, w, {"type": "broadcast", "on": True}, "broadcast"),
    Action.INTERACT: lambda a, w, t: _interact(a, w),
    Action.ANSWER: lambda a, w, t: _judged(a, {"type": "answer", "step": "read-temperature", "value": 80}, code="step_not_open"),
    # the sample places students itself: a student may ask (the role allows it), and is told why not
    Action.CHOOSE_STATION: lambda a, w, t: _judged(
        a, {"type": "choose_station", "station": 2}, code="forbidden", message="Stations are not chosen in this practical: the server assigns them."
    ),
    Action.ASSIGN_STATION: lambda a, w, t: _assign(a, w, t),
    # a student may ask (the role allows it) for a hint on a later step, and is told it is not open yet
    Action.HINT: lambda a, w, t: _judged(a, {"type": "hint", "step": "flask-in-bath"}, code="step_not_open"),
    Action.PUSH_HINT: lambda a, w, t: _pushed(a, w, t),
}


async def _interact(actor: AmaliyClient, witness: AmaliyClient) -> None:
    burner = f"burner@{actor.station or 1}"  # a student's own bench; a teacher may set any
    await actor.interact(burner, "lit", True)
    await witness.expect("property", object=burner, property="lit", value=True, timeout=2)


async def _judged(actor: AmaliyClient, sent: dict, **error: str) -> None:
    """The role may send it: the room judges the message itself (and here refuses it for its own reason)."""
    await actor.send(sent)
    await actor.expect("error", timeout=2, **error)


async def _pushed(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    await actor.send({"type": "push_hint", "to": {"participant": target.id}, "text": "Look at the burner"})
    await witness.expect("hint", to=[target.id], level=0, text="Look at the burner", timeout=2)


async def _assign(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    await actor.assign_station(target.id, 3)
    await witness.expect("station", participant=target.id, station=3, timeout=2)


async def _listen(actor: AmaliyClient) -> None:
    call = await VoiceCall.start(actor)  # receive-only: the room's mix
    await call.close()


async def _speak(actor: AmaliyClient, witness: AmaliyClient) -> None:
    await actor.mute(True)  # muting yourself is part of speaking; observers have no voice to mute
    await witness.expect("muted", participant=actor.id, timeout=2)


async def _joined(actor: AmaliyClient, witness: AmaliyClient) -> None:
    assert actor.welcome["participant"]["id"] == actor.id
    await witness.wait_until(lambda: actor.id in witness.participants, 2)


async def _ping(actor: AmaliyClient) -> None:
    await actor.send({"type": "ping", "t": 1.5, "id": "p1"})
    assert (await actor.expect("pong", timeout=2))["re"] == "p1"


async def _leave(actor: AmaliyClient) -> None:
    await actor.send({"type": "leave"})
    assert (await actor.closed())[0] == CloseCode.LEFT


async def _kick(actor: AmaliyClient, target: AmaliyClient) -> None:
    await actor.kick(target.id)
    assert (await target.closed(2))[0] == CloseCode.KICKED


async def _unkick(actor: AmaliyClient, witness: AmaliyClient, target: AmaliyClient) -> None:
    """The teacher of the pair removes the target; then the actor tries to let them back in."""
    teacher = actor if actor.welcome["participant"]["role"] == "teacher" else witness
    await teacher.kick(target.id)
    await witness.expect("left", participant=target.id, reason="kicked", timeout=2)
    await actor.unkick(target.id)
    await witness.expect("unkicked", participant=target.id, timeout=2)


async def _event(actor: AmaliyClient, witness: AmaliyClient, message: dict, event: str) -> None:
    await actor.send(message)
    await witness.expect(event, timeout=2)


@pytest.mark.parametrize("role", [T, S, O], ids=str)
@pytest.mark.parametrize("action", [a for a in Action if a not in REST_ACTIONS], ids=str)
async def test_socket_action(server: LiveServer, action: Action, role: Role) -> None:
    session = server.open_session()
    witness = await connect_as(server, session, T if role != T else S, "Witness")
    target = await connect_as(server, session, S, "Target")
    actor = await connect_as(server, session, role, "Actor")
    try:
        if role == O and action in (Action.MOVE_OBJECT, Action.RELEASE):
            # observers cannot hold anything; give the object to the target first
            await target.grab(beaker(actor, target))
            await witness.expect("grabbed", timeout=2)
        attempt = SOCKET[action](actor, witness, target)
        if role in EXPECTED[action]:
            await attempt
        else:
            with pytest.raises((TimeoutError, AssertionError)):  # the effect never shows
                await asyncio.wait_for(attempt, 0.5)
            errors = [m for m in actor.drain() if m["type"] == "error"]
            assert errors and errors[0]["code"] == "forbidden", errors
            assert f"The {role} role may not" in errors[0]["message"]
    finally:
        for client in (actor, witness, target):
            if client.close_code is None:
                await client.close()


async def test_designers_cannot_join_rooms(server: LiveServer) -> None:
    assert D not in EXPECTED[Action.JOIN]
    session = server.open_session()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post("/api/join", json={"code": session["join_code"], "name": "D", "role": "designer"})
    assert response.status_code == 422
    client = AmaliyClient(session["ws_url"], server.designer_key)  # a key is not a room token
    with pytest.raises(JoinRefused) as refused:
        await client.connect()
    assert refused.value.code == "unauthorized"


@pytest.mark.parametrize("role", [T, S, O, D], ids=str)
@pytest.mark.parametrize("action", sorted(REST_ACTIONS), ids=str)
async def test_rest_action(server: LiveServer, action: Action, role: Role, tmp_path: Path) -> None:
    session = server.open_session()
    if role in (T, D):
        credential = server.teacher_key if role == T else server.designer_key
    else:
        credential = (await join_code(server.base_url, session["join_code"], "Someone", str(role)))["token"]
    headers = {"Authorization": f"Bearer {credential}"}
    designer = {"Authorization": f"Bearer {server.designer_key}"}
    package = pack_files(scaffold_files(tmp_path, f"lab-{action.value.replace('_', '-')}-{role}"))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        if action == Action.OPEN_SESSION:
            response = await http.post("/api/sessions", json={}, headers=headers)
        elif action == Action.VIEW_SESSION:
            response = await http.get(f"/api/sessions/{session['id']}", headers=headers)
        elif action == Action.LIST_SCENES:
            response = await http.get("/api/scenes", headers=headers)
        elif action == Action.UPLOAD_SCENE:
            response = await http.post("/api/scenes", files={"package": ("p.zip", package)}, headers=headers)
        elif action == Action.VIEW_RESULTS:
            response = await http.get(f"/api/sessions/{session['id']}/results", headers=headers)
        elif action == Action.PREVIEW_SCENE:
            response = await http.post(f"/api/scenes/{session['scene']}/versions/{session['scene_version']}/preview", headers=headers)
        elif action == Action.MANAGE_COURSES:
            response = await http.post("/api/courses", json={"name": f"Course {role}"}, headers=headers)
        elif action == Action.VIEW_LEARNERS:
            course = await http.post("/api/courses", json={"name": "Dashboard"}, headers={"Authorization": f"Bearer {server.teacher_key}"})
            response = await http.get(f"/api/courses/{course.json()['id']}/dashboard", headers=headers)
        elif action == Action.VIEW_OWN_RECORDS:
            response = await http.get("/api/me", headers=headers)
        else:
            stored = await http.post("/api/scenes", files={"package": ("p.zip", package)}, headers=designer)
            assert stored.status_code == 201, stored.text
            row = stored.json()
            response = await http.delete(f"/api/scenes/{row['package_id']}/versions/{row['version']}", headers=headers)
    if role in EXPECTED[action]:
        assert response.status_code in (200, 201, 204), response.text
    else:
        assert response.status_code == 403
        assert f"The {role} role may not" in response.json()["detail"]


@pytest.mark.parametrize("role", [T, S, O, D], ids=str)
@pytest.mark.parametrize("route,action", [("lock", Action.LOCK), ("end", Action.END)], ids=["lock", "end"])
async def test_rest_teacher_powers(server: LiveServer, route: str, action: Action, role: Role) -> None:
    session = server.open_session()
    keys = {T: server.teacher_key, D: server.designer_key}
    credential = keys[role] if role in keys else (await join_code(server.base_url, session["join_code"], "X", str(role)))["token"]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        body = {"locked": True} if route == "lock" else None
        response = await http.post(f"/api/sessions/{session['id']}/{route}", json=body, headers={"Authorization": f"Bearer {credential}"})
        if role in EXPECTED[action]:
            assert response.status_code == 200, response.text
            state = response.json()
            assert state["locked"] is True if route == "lock" else state["status"] == "ended"
        else:
            assert response.status_code == 403
