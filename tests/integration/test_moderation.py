"""Moderation that holds, against a real server: a removed student stays out until the teacher
lets them back in (over the socket or REST); a name is one person's in a practical, at the join
and again at the room's door; nobody joins as "Teacher"."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from amaliy_client import AmaliyClient, JoinRefused, join_code
from realtime.names import taken_refusal
from realtime.protocol import CloseCode

from tests.conftest import LiveServer, start_server
from tests.integration.test_challenges_live import add_user

REMOVED = "The teacher removed you from this practical; ask them to let you back in, then try again."


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


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


async def test_a_teacher_lets_someone_back_in_over_rest(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    live = start_server(data_dir)  # its own data dir, to add another teacher
    session = live.open_session("Unkick over REST")
    teacher = AmaliyClient(session["ws_url"], session["teacher_token"])
    await teacher.connect()
    first = await join_code(live.base_url, session["join_code"], "Bobur")
    bobur = AmaliyClient(first["ws_url"], first["token"])
    await bobur.connect()
    removed = f"/api/sessions/{session['id']}/removed"
    try:
        await teacher.kick(bobur.id)
        await teacher.expect("left", participant=bobur.id, reason="kicked", timeout=2)
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            listed = await http.get(removed, headers=bearer(live.teacher_key))
            assert listed.status_code == 200 and listed.json() == [{"id": bobur.id, "name": "Bobur", "role": "student"}]

            student = (await join_code(live.base_url, session["join_code"], "Dilnoza"))["token"]
            observer = (await join_code(live.base_url, session["join_code"], "Watcher", "observer"))["token"]
            refused = {
                student: "The student role may not unkick.",
                first["token"]: "The student role may not unkick.",  # not even for oneself
                observer: "The observer role may not unkick.",
                live.designer_key: "The designer role may not unkick.",
                add_user(data_dir, "Other Teacher"): "This practical belongs to another teacher.",
            }
            for credential, detail in refused.items():
                response = await http.delete(f"{removed}/{bobur.id}", headers=bearer(credential))
                assert (response.status_code, response.json()["detail"]) == (403, detail)
            assert (await http.get(removed, headers=bearer(student))).status_code == 403
            unknown = await http.delete(f"{removed}/p_nobody", headers=bearer(live.teacher_key))
            assert (unknown.status_code, unknown.json()["detail"]) == (404, "Nobody 'p_nobody' was removed from this practical.")
            assert (await http.delete(f"/api/sessions/s_nope/removed/{bobur.id}", headers=bearer(live.teacher_key))).status_code == 404
            assert (await http.get(removed, headers=bearer(live.teacher_key))).json() != []  # all that changed nothing

            # the session's teacher token may do it, as for /lock; the room announces it as the server's act
            response = await http.delete(f"{removed}/{bobur.id}", headers=bearer(session["teacher_token"]))
            assert response.status_code == 204, response.text
            event = await teacher.expect("unkicked", participant=bobur.id, name="Bobur", timeout=2)
            assert event["by"] == "@server"
            assert (await http.get(removed, headers=bearer(live.teacher_key))).json() == []
            assert (await http.delete(f"{removed}/{bobur.id}", headers=bearer(live.teacher_key))).status_code == 404

            back = AmaliyClient(first["ws_url"], first["token"])  # let back in: the old token enters again
            await back.connect()
            assert back.id == bobur.id
            await back.close()

            await http.post(f"/api/sessions/{session['id']}/end", headers=bearer(live.teacher_key))
            ended = await http.get(removed, headers=bearer(live.teacher_key))
            assert (ended.status_code, ended.json()["detail"]) == (409, "This practical has ended.")
    finally:
        if teacher.close_code is None:
            await teacher.close()
        live.stop()


async def test_a_token_does_not_enter_under_a_name_someone_has_now(server: LiveServer) -> None:
    session = server.open_session("Names at the door")
    code = session["join_code"]
    first = await join_code(server.base_url, code, "Madina")
    madina = AmaliyClient(first["ws_url"], first["token"])
    await madina.connect()
    assert (await post_join(server, code, "madina")).status_code == 409  # hers while she is in
    await madina.close()  # she leaves; her token stays signed and unexpired
    second = await post_join(server, code, "MADINA")  # another device takes the freed name
    assert second.status_code == 200, second.text
    other = AmaliyClient(second.json()["ws_url"], second.json()["token"])
    await other.connect()
    try:
        again = AmaliyClient(first["ws_url"], first["token"])
        with pytest.raises(JoinRefused) as refused:
            await again.connect()
        assert (refused.value.code, refused.value.close_code) == ("unauthorized", CloseCode.UNAUTHORIZED)
        assert refused.value.message == f"{taken_refusal('MADINA')} Join again with the join code and the new name."
        # the one whose name it is comes back after a drop under its own id
        await other.drop()
        resumed = AmaliyClient(second.json()["ws_url"], second.json()["token"])
        await resumed.connect()
        assert resumed.id == other.id and resumed.welcome["resumed"] is True
        await resumed.close()
    finally:
        if other.close_code is None:
            await other.close()


async def test_a_name_is_free_as_soon_as_its_holder_leaves(server: LiveServer) -> None:
    session = server.open_session("Names after a leave")
    code = session["join_code"]
    first = await join_code(server.base_url, code, "Nodira")
    nodira = AmaliyClient(first["ws_url"], first["token"])
    await nodira.connect()
    # no join in between: she enters and leaves within her join's 60 s hold on the name
    await nodira.close()
    second = await post_join(server, code, "NODIRA")
    assert second.status_code == 200, second.text
    assert second.json()["participant_id"] != first["participant_id"]


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
