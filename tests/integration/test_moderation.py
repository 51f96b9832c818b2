"""Moderation that holds, against a real server: a removed student stays out until the teacher
lets them back in; a name is one person's in a practical; nobody joins as "Teacher"."""

from __future__ import annotations

import httpx
import pytest

from amaliy_client import AmaliyClient, JoinRefused, join_code
from realtime.protocol import CloseCode

from tests.conftest import LiveServer

REMOVED = "The teacher removed you from this practical; ask them to let you back in, then try again."


async def post_join(server: LiveServer, code: str, name: str, **extra: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.post("/api/join", json={"code": code, "name": name, **extra})


async def test_a_removed_student_stays_out_until_let_back_in(server: LiveServer) -> None:
    session = server.open_session("Kick")
    teacher = AmaliyClient(session["ws_url"], session["teacher_token"])
    await teacher.connect()
    first = await join_code(server.base_url, session["join_code"], "Bobur")
    device = first["device"]
    bobur = AmaliyClient(first["ws_url"], first["token"])
    await bobur.connect()
    try:
        await teacher.kick(bobur.id)
        assert (await bobur.closed(2))[0] == CloseCode.KICKED
        removed = (await teacher.expect("left", participant=bobur.id, reason="kicked", timeout=2))

        # the reload: the same token is refused at the socket ...
        again = AmaliyClient(first["ws_url"], first["token"])
        with pytest.raises(JoinRefused) as refused:
            await again.connect()
        assert refused.value.code == "forbidden" and refused.value.message == REMOVED
        # ... and a fresh join from the same device, under any name, is refused with the sentence
        for name in ("Bobur", "Bobur 2", "Someone else"):
            response = await post_join(server, session["join_code"], name, device=device)
            assert response.status_code == 403, response.text
            assert response.json()["detail"] == REMOVED
        assert removed["seq"] > 0

        # whoever comes in later (here an observer) learns who is out, without their device key
        watcher = await join_code(server.base_url, session["join_code"], "Watcher", "observer")
        late = AmaliyClient(watcher["ws_url"], watcher["token"])
        await late.connect()
        assert late.welcome["snapshot"]["removed"] == [{"id": bobur.id, "name": "Bobur", "role": "student"}]
        await late.close()

        await teacher.unkick(bobur.id)
        await teacher.expect("unkicked", participant=bobur.id, name="Bobur", timeout=2)
        # let back in: the old token enters again, and the device may join again
        back = AmaliyClient(first["ws_url"], first["token"])
        await back.connect()
        assert back.id == bobur.id
        await back.close()
        response = await post_join(server, session["join_code"], "Bobur", device=device)
        assert response.status_code == 200, response.text

        # letting back in someone who is not out is an error with a sentence
        await teacher.unkick(bobur.id)
        error = await teacher.expect("error", timeout=2)
        assert error["code"] == "unknown_participant" and "was removed" in error["message"]
    finally:
        await teacher.close()


async def test_a_name_is_one_persons_in_a_practical(server: LiveServer) -> None:
    session = server.open_session("Names")
    first = await join_code(server.base_url, session["join_code"], "Aziz")
    aziz = AmaliyClient(first["ws_url"], first["token"])
    await aziz.connect()
    try:
        # case, accents, full-width letters, a joiner, a Cyrillic look-alike: all the same name
        for same in ("Aziz", "aziz", "AZÍZ", "Ａｚｉｚ", "Az\u200diz", "Аziz", "  Aziz  "):
            response = await post_join(server, session["join_code"], same)
            assert response.status_code == 409, (same, response.text)
            assert response.json()["detail"] == (
                "Someone in this practical is already called \u201cAziz\u201d; add your surname or an initial "
                "(such as \u201cAziz K.\u201d) so your teacher can tell you apart."
            )
        assert (await post_join(server, session["join_code"], "Aziz K.")).status_code == 200
        # the same device asking again (a second tab) gets its own place back, not a second Aziz
        again = await post_join(server, session["join_code"], "aziz", device=first["device"])
        assert again.status_code == 200 and again.json()["participant_id"] == aziz.id
        # a name handed out but not yet in the room is taken too
        held = await post_join(server, session["join_code"], "Madina")
        assert held.status_code == 200
        assert (await post_join(server, session["join_code"], "madina")).status_code == 409
    finally:
        await aziz.close()


@pytest.mark.parametrize("name", ["Teacher", "teacher", "O'qituvchi", "Oʻqituvchi", "Ўқитувчи", "Учитель", "Admin", "Server", "Observer", "Teacher Aziz", "T.E.A.C.H.E.R", "ТЕАСНЕR"])
@pytest.mark.parametrize("role", ["student", "observer"])
async def test_role_words_are_not_names(server: LiveServer, name: str, role: str) -> None:
    response = await post_join(server, server.demo_code, name, role=role)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["type"] == "display_name" and problem["loc"] == ["body", "name"]
    assert problem["msg"] == f"\u201c{name.strip()}\u201d names a role in the practical, so it cannot be your name; use your own name."


@pytest.mark.parametrize("name", ["\u200b", "\u2060", "\u200d", "\u303f", "\U0001d159", "\u3164\u3164", "\u00a0"])
async def test_invisible_names_are_refused(server: LiveServer, name: str) -> None:
    response = await post_join(server, server.demo_code, name)
    assert response.status_code == 422, response.text


async def test_a_device_key_the_server_did_not_sign_is_replaced(server: LiveServer) -> None:
    response = await post_join(server, server.demo_code, "Nodira", device="d1.made-up.0000")
    assert response.status_code == 200
    assert response.json()["device"] != "d1.made-up.0000" and response.json()["device"].startswith("d1.")
