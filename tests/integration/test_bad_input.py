"""Malformed, oversized, unauthorised and flooding clients against a real server.

Each gets a clear error or close reason, and the room goes on unchanged for
everyone else.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from amaliy_client import AmaliyClient
from realtime import protocol as p

from tests.conftest import REPO, LiveServer


async def pair(server: LiveServer) -> tuple[dict, AmaliyClient, AmaliyClient]:
    session = server.open_session()
    good = await AmaliyClient.join(server.base_url, session["join_code"], "Good")
    bad = await AmaliyClient.join(server.base_url, session["join_code"], "Bad")
    await good.wait_until(lambda: bad.id in good.poses, what="Bad's avatar")
    return session, good, bad


async def assert_room_still_works(sender: AmaliyClient, watcher: AmaliyClient) -> None:
    pose = watcher.poses[sender.id].copy()
    pose[2] += 0.4
    await sender.send_pose(pose)
    await watcher.wait_until(lambda: abs(watcher.poses[sender.id][2] - pose[2]) < 1e-5, what="pose after bad input")


@pytest.mark.parametrize(
    "payload,code",
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"no_type": 1}', "unknown_type"),
        ('{"type": []}', "unknown_type"),
        ('{"type": {}}', "unknown_type"),
        ('{"type": "ping", "t": ' + "[" * 1000 + "]" * 1000 + "}", "invalid_json"),  # past the parser's recursion
        ('{"a":' * 40 + "1" + "}" * 40, "invalid_json"),  # past MAX_JSON_DEPTH
        ('{"type": "grab", "object": 5}', "invalid_message"),
        ('{"type": "grab"}', "invalid_message"),
        ('{"type": "grab", "object": "beaker-water@1", "extra": true}', "invalid_message"),
        ('{"type": "summon", "position": [1, 2]}', "invalid_message"),
        ('{"type": "grab", "object": "unicorn"}', "unknown_object"),
        ('{"type": "join", "token": "x"}', "already_joined"),
        (b"\x01" + b"\x00" * 10, "bad_binary"),
        (b"\x7f" + b"\x00" * 91, "bad_binary"),
        (b"", "bad_binary"),
        (p.encode_object_move(0, [math.inf, 0, 0, 0, 0, 0, 1]), "bad_pose"),
        (p.encode_object_move(0, [0, 1, 0, 0, 0, 0, 5]), "bad_pose"),
        (p.encode_object_move(0, [0, 0, 0, 0, 0, 0, 1]), "not_holder"),
        (p.encode_pose([float("nan")] * 21), "bad_pose"),
        (p.encode_pose([1e9] + [0.0] * 5 + [1.0] * 15), "bad_pose"),
    ],
    ids=lambda v: repr(v)[:40],
)
async def test_bad_message_gets_error_and_room_goes_on(server: LiveServer, payload: str | bytes, code: str) -> None:
    _, good, bad = await pair(server)
    try:
        before = good.poses[bad.id].copy()
        await bad.send_raw(payload)
        error = await bad.expect("error")
        assert error["code"] == code and error["message"]
        assert bad.close_code is None  # not disconnected for it
        await assert_room_still_works(bad, good)
        assert not np.allclose(good.poses[bad.id], before)
    finally:
        await good.close()
        await bad.close()


async def test_request_id_is_echoed_on_errors(server: LiveServer) -> None:
    _, good, bad = await pair(server)
    await bad.send({"type": "grab", "object": "nothing-here", "id": "req-7"})
    assert (await bad.expect("error"))["re"] == "req-7"
    await bad.send({"type": "grab", "id": 42})
    assert (await bad.expect("error"))["re"] == 42
    await good.close()
    await bad.close()


async def test_oversized_message_closes_with_1009(server: LiveServer) -> None:
    _, good, bad = await pair(server)
    await bad.send_raw("x" * (p.CLIENT_POSE.itemsize + 64 * 1024))
    code, _ = await bad.closed()
    assert code == 1009
    await good.expect("presence", participant=bad.id, connected=False)
    await good.close()


async def test_flood_is_throttled_then_closed(server: LiveServer) -> None:
    session, good, bad = await pair(server)
    frame = p.encode_pose(good.poses[bad.id])
    with pytest.raises(ConnectionClosed):
        for _ in range(4000):  # far over 120/s for more than the 2 s grace
            await bad.send_raw(frame)
            await asyncio.sleep(0.0008)
    code, reason = await bad.closed()
    assert code == p.CloseCode.RATE_LIMITED and "rate" in reason
    assert any(m["type"] == "error" and m["code"] == "rate_limited" for m in bad.drain())
    other = await AmaliyClient.join(server.base_url, session["join_code"], "Other")
    await good.wait_until(lambda: other.id in good.poses, what="Other's avatar")
    await assert_room_still_works(other, good)
    await good.close()
    await other.close()


async def test_a_flood_of_websocket_pings_is_closed_like_any_flood(server: LiveServer) -> None:
    session, good, bad = await pair(server)
    assert bad.ws is not None
    with pytest.raises(ConnectionClosed):
        for _ in range(4000):  # far over 120/s for more than the 2 s grace
            await bad.ws.ping()
            await asyncio.sleep(0.0008)
    code, reason = await bad.closed()
    assert code == p.CloseCode.RATE_LIMITED and "rate" in reason
    await good.expect("presence", participant=bad.id, connected=False)
    other = await AmaliyClient.join(server.base_url, session["join_code"], "Other")
    await good.wait_until(lambda: other.id in good.poses, what="Other's avatar")
    await assert_room_still_works(other, good)
    await good.close()
    await other.close()


async def test_messages_before_join_are_refused(server: LiveServer) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(p.encode_pose([0.0] * 21))
        assert json.loads(await ws.recv())["code"] == "not_joined"
        await ws.send(json.dumps({"type": "grab", "object": "beaker-water@1"}))
        assert json.loads(await ws.recv())["code"] == "not_joined"


async def test_forged_token_is_refused_with_4001(server: LiveServer) -> None:
    session = server.open_session()
    forged = session["teacher_token"][:-4] + "AAAA"
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "join", "token": forged}))
        error = json.loads(await ws.recv())
        assert error["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == p.CloseCode.UNAUTHORIZED


async def test_wrong_path_is_404(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url.replace("/room", "/elsewhere")):
            pass
    assert refused.value.response.status_code == 404


async def test_silent_sockets_are_dropped(server_factory) -> None:
    live = server_factory(env={"AMALIY_JOIN_TIMEOUT": "1", "AMALIY_IDLE_TIMEOUT": "2"})
    async with connect(live.ws_url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == p.CloseCode.JOIN_TIMEOUT
    client = AmaliyClient(live.ws_url, (await _join(live))["token"])
    await client.connect()
    client._keepalive.cancel()  # type: ignore[union-attr]  # go silent
    code, _ = await client.closed(timeout=6)
    assert code == p.CloseCode.IDLE


async def _join(live: LiveServer, name: str = "S") -> dict:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/join", json={"code": live.demo_code, "name": name})
        response.raise_for_status()
        return response.json()


async def test_room_cap_enforced_on_the_server(server_factory) -> None:
    live = server_factory(args=["--room-cap", "2"])
    first = await AmaliyClient.join(live.base_url, live.demo_code, "One")
    second = await AmaliyClient.join(live.base_url, live.demo_code, "Two")
    third = AmaliyClient(live.ws_url, (await _join(live, "Three"))["token"])
    with pytest.raises(Exception) as refused:
        await third.connect()
    assert getattr(refused.value, "code", None) == "room_full"
    assert third.close_code == p.CloseCode.ROOM_FULL
    await second.close()
    await first.expect("left", participant=second.id)
    await third.connect()  # a place came free
    await first.wait_until(lambda: set(first.participants) == {first.id, third.id}, what="Three in the roster")
    for client in (first, third):
        await client.close()


def test_rest_refuses_bad_input_clearly(server: LiveServer) -> None:
    with server.http() as http:
        bad_code = http.post("/api/join", json={"code": "O0I1L!", "name": "x"})
        assert bad_code.status_code == 422
        unknown = http.post("/api/join", json={"code": "ZZZZZZ", "name": "x"})
        assert unknown.status_code == 404 and "ZZZZZZ" in unknown.json()["detail"]
        long_name = http.post("/api/join", json={"code": server.demo_code, "name": "x" * 41})
        assert long_name.status_code == 422
        assert http.post("/api/sessions", json={}).status_code == 401
        wrong_key = http.post("/api/sessions", json={}, headers={"Authorization": "Bearer ak_wrong"})
        assert wrong_key.status_code == 401
        auth = {"Authorization": f"Bearer {server.teacher_key}"}
        no_scene = http.post("/api/sessions", json={"scene": "moon-base"}, headers=auth)
        assert no_scene.status_code == 404 and "chemistry-bench" in no_scene.json()["detail"]
        assert http.get("/api/sessions/s_nothing", headers=auth).status_code == 404
        assert http.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    "name,because",
    [
        ("nul\x00", "control character"),
        ("bell\x07", "control character"),
        ("\x1b[2Jwiped", "control character"),
        ("two\nlines", "control character"),
        ("gnp.\u202eexe", "RIGHT-TO-LEFT OVERRIDE"),
        ("\u200b\u200b", "ZERO WIDTH SPACE"),
        ("\u3164", "visible character"),
        ("   ", "visible character"),
        ("x" * 41, "at most 40 characters"),
    ],
)
def test_join_refuses_names_that_would_not_show_honestly(server: LiveServer, name: str, because: str) -> None:
    with server.http() as http:
        response = http.post("/api/join", json={"code": server.demo_code, "name": name})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "name"] and because in problem["msg"]


def test_join_refuses_a_lone_surrogate_with_422_not_500(server: LiveServer) -> None:
    body = b'{"code": "%s", "name": "Ali\\ud800"}' % server.demo_code.encode()  # the JSON escape: httpx cannot send the character
    with server.http() as http:
        response = http.post("/api/join", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert "U+D800" in problem["msg"] and problem["input"] == "Ali\ud800"  # echoed as it came, escaped


def test_users_add_refuses_the_same_names(tmp_path: Path) -> None:
    def users(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "server.cli", "users", *args, "--data-dir", str(tmp_path)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True)

    refused = users("add", "Ms\u202e Karimova")
    assert refused.returncode == 1 and "RIGHT-TO-LEFT OVERRIDE" in refused.stderr and not refused.stdout
    assert users("add", "  Ms   Karimova ").returncode == 0
    assert [line.split(None, 2)[2] for line in users("list").stdout.splitlines()] == ["Ms Karimova"]


async def test_names_are_normalised_before_anyone_sees_them(server: LiveServer) -> None:
    session = server.open_session()
    client = await AmaliyClient.join(server.base_url, session["join_code"], "  Oʻtkir   Gʻulomov ")
    try:
        assert client.participant["name"] == "Oʻtkir Gʻulomov"
    finally:
        await client.close()


def test_join_attempts_are_rate_limited_per_address(server_factory) -> None:
    live = server_factory(env={"AMALIY_JOIN_RATE_PER_MIN": "6"})
    with live.http() as http:
        statuses = [http.post("/api/join", json={"code": "ZZZZZZ", "name": "guess"}).status_code for _ in range(6)]
    assert statuses[0] == 404 and statuses[-1] == 429


async def test_connections_beyond_the_node_limit_are_refused(server_factory) -> None:
    live = server_factory(env={"AMALIY_MAX_CONNECTIONS": "2"})
    async with connect(live.ws_url), connect(live.ws_url):
        with pytest.raises(InvalidMessage):  # dropped before the handshake
            async with connect(live.ws_url, open_timeout=3):
                pass
    async with connect(live.ws_url) as ws:  # places free again once those closed
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["code"] == "not_joined"


async def test_join_codes_are_case_insensitive_and_tokens_are_not_keys(server: LiveServer) -> None:
    session = server.open_session()
    info = await _join_with(server, f"  {session['join_code'].lower()} ")
    assert info["session"] == session["id"]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post("/api/sessions", json={}, headers={"Authorization": f"Bearer {session['teacher_token']}"})
    assert response.status_code == 403 and "your key" in response.json()["detail"]


async def _join_with(live: LiveServer, code: str) -> dict:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/join", json={"code": code, "name": "S"})
        response.raise_for_status()
        return response.json()


async def test_websocket_pings_keep_a_socket_alive(server_factory) -> None:
    live = server_factory(env={"AMALIY_IDLE_TIMEOUT": "2"})
    info = await _join(live)
    async with connect(info["ws_url"], ping_interval=0.5) as ws:
        await ws.send(json.dumps({"type": "join", "token": info["token"]}))
        await asyncio.sleep(4)  # twice the idle timeout, with only protocol pings
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        while True:
            message = await asyncio.wait_for(ws.recv(), 2)
            if isinstance(message, str) and json.loads(message)["type"] == "pong":
                break


async def test_sigterm_closes_sockets_with_going_away(server_factory) -> None:
    live = server_factory()
    client = await AmaliyClient.join(live.base_url, live.demo_code, "S")
    live.proc.terminate()
    code, _ = await client.closed(timeout=10)
    assert code == p.CloseCode.GOING_AWAY
    assert live.proc.wait(10) == 0


async def test_text_that_is_not_utf8_closes_with_1007(server: LiveServer) -> None:
    _, good, bad = await pair(server)
    assert bad.ws is not None
    await bad.ws.send(b'{"type": "ping", "x": "\xff"}', text=True)
    code, reason = await bad.closed()
    assert code == 1007 and "UTF-8" in reason
    await good.close()


def test_a_huge_json_body_is_refused_before_it_is_read(server: LiveServer) -> None:
    teacher = {"Authorization": f"Bearer {server.teacher_key}"}
    huge = b'{"name": "' + b"x" * 5_000_000 + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 65536):
            yield huge[start:start + 65536]

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for body in (huge, chunks()):
            refused = http.post("/api/courses", content=body, headers={**teacher, "Content-Type": "application/json"})
            assert refused.status_code == 413 and "over 65536 bytes" in refused.json()["detail"]
        assert not any(c["name"].startswith("xxx") for c in http.get("/api/courses", headers=teacher).json())
        assert http.post("/api/courses", json={"name": "Small"}, headers=teacher).status_code == 201


@pytest.mark.parametrize("host,name", [("[::1", "Hostless A"), ("[zz]", "Hostless B"), ("[1.2.3.4", "Hostless C")])
def test_a_host_header_that_is_no_address_gets_the_configured_one(server: LiveServer, host: str, name: str) -> None:
    teacher = {"Authorization": f"Bearer {server.teacher_key}"}
    with server.http() as http:
        joined = http.post("/api/join", json={"code": server.demo_code, "name": name}, headers={"Host": host})
        assert joined.status_code == 200, joined.text
        assert joined.json()["ws_url"] == server.ws_url  # where the server is, not where the header said
        listed = http.get("/api/sessions", headers={**teacher, "Host": host})
        assert listed.status_code == 200 and all(s["ws_url"] == server.ws_url for s in listed.json())


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_json_number_json_cannot_carry_is_a_422(server: LiveServer, number: str) -> None:
    teacher = {"Authorization": f"Bearer {server.teacher_key}", "Content-Type": "application/json"}
    with server.http() as http:
        for path, body, headers in (
            ("/api/join", '{"code": "%s", "name": %s}' % (server.demo_code, number), {"Content-Type": "application/json"}),
            ("/api/courses", '{"name": %s}' % number, teacher),
            ("/api/sessions", '{"title": "t", "version": %s}' % number, teacher),
        ):
            refused = http.post(path, content=body.encode(), headers=headers)
            assert refused.status_code == 422, (path, refused.text)
            [problem] = refused.json()["detail"]
            assert problem["loc"][0] == "body" and problem["msg"] and "input" not in problem
        assert http.post("/api/join", json={"code": server.demo_code, "name": f"Finite {len(number)}"}).status_code == 200


def test_a_body_that_is_not_utf8_is_a_422(server: LiveServer) -> None:
    with server.http() as http:
        for content_type in ("text/plain", "application/octet-stream", "application/json"):
            refused = http.post("/api/join", content=b"\xff\xfe\x80 not text", headers={"Content-Type": content_type})
            assert refused.status_code == 422, (content_type, refused.text)
            assert refused.json()["detail"][0]["msg"]
