"""Courses, rosters and sign-in with a personal code, against a real server: the all-or-nothing
CSV import, a student signing in to the course's practical over the room socket with the SDK,
the same participant in every practical of the course, rotated codes, other teachers, the CLI,
and a restart."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from amaliy_client import AmaliyClient
from server.course_routes import WRONG_CODE
from server.store import SCHEMA_VERSION, Store

from tests.conftest import REPO, LiveServer, start_server
from tests.integration.test_challenges_live import add_user, serve_again
from tests.integration.test_results import _LEGACY

NAMES = [f"Oʻquvchi Gʻulom {i}" if i % 3 == 0 else f"Ученик {i}" if i % 3 == 1 else f"Student {i}" for i in range(30)]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def roster_csv(bad: bool) -> bytes:
    lines = ["Name,Email,Student_Number"]
    for i, name in enumerate(NAMES):
        email, number = f"s{i}@maktab.uz", f"9A-{i:02d}"
        if bad and i == 4:
            name = ""  # line 6
        if bad and i == 11:
            number = "9A-03"  # line 13: the number of line 5
        if bad and i == 20:
            email = "s20(at)maktab.uz"  # line 22
        lines.append(f"{name},{email},{number}")
    lines.append("=CMD(\"calc\"),,9A-99")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", "courses", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, capture_output=True, text=True)


def signin(live: LiveServer, code: str) -> httpx.Response:
    with live.http() as http:
        return http.post("/api/signin", json={"code": code})


def test_an_old_database_gets_courses_and_its_practicals_belong_to_none(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "amaliy.sqlite3")
    db.executescript(_LEGACY)
    db.close()
    store = Store(tmp_path)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 7
        old = store.session("s_old")
        assert old is not None and old.course_id is None and old.title == "Before"
        course = store.add_course("t_1", "Chemistry 9A")
        [(student, code)] = store.add_students(course.id, [("Ali", None, None)])
        assert store.student_by_code(code.lower()) == student
        new = store.rotate_code(student.id)
        assert store.student_by_code(code) is None and store.student_by_code(new[:4] + "-" + new[4:]) == student
        assert code not in (tmp_path / "amaliy.sqlite3").read_bytes().decode("latin-1")
    finally:
        store.close()


async def test_a_course_from_roster_to_room_and_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    clients: list[AmaliyClient] = []
    try:
        teacher = bearer(live.teacher_key)
        with live.http() as http:
            made = http.post("/api/courses", json={"name": "  Kimyo 9A  "}, headers=teacher)
            assert made.status_code == 201, made.text
            course = made.json()
            assert course["name"] == "Kimyo 9A" and course["students"] == 0
            cid = course["id"]

            # 30 students, 3 bad rows: a 422 naming each line, and nothing imported
            refused = http.post(f"/api/courses/{cid}/roster", content=roster_csv(bad=True), headers={**teacher, "Content-Type": "text/csv"})
            assert refused.status_code == 422, refused.text
            report = refused.json()
            assert [p["line"] for p in report["problems"]] == [6, 13, 22]
            assert report["detail"].startswith("Nothing was imported: 3 of 31 rows")
            assert "'9A-03' is already on line 5" in report["problems"][1]["problem"]
            assert http.get(f"/api/courses/{cid}", headers=teacher).json()["roster"] == []

            imported = http.post(f"/api/courses/{cid}/roster", content=roster_csv(bad=False), headers=teacher)
            assert imported.status_code == 201, imported.text
            students = imported.json()["students"]
            assert imported.json()["imported"] == 31 and [s["name"] for s in students] == [*NAMES, '=CMD("calc")']
            codes = {s["name"]: s["code"] for s in students}
            assert all(len(c) == 8 and not set(c) & set("01OIL") for c in codes.values())
            roster = http.get(f"/api/courses/{cid}", headers=teacher).json()["roster"]
            assert [s["name"] for s in roster] == [s["name"] for s in students] and "code" not in roster[0]
            exported = http.get(f"/api/courses/{cid}/roster.csv", headers=teacher).content.decode("utf-8-sig")
            assert "'=CMD(\"\"calc\"\")" in exported and NAMES[0] in exported

            # no practical open in the course yet
            ali = students[0]
            none_open = http.post("/api/signin", json={"code": ali["code"]})
            assert (none_open.status_code, none_open.json()["detail"]) == (409, "No practical is open in Kimyo 9A now; wait for your teacher to open one.")

            first = http.post("/api/sessions", json={"title": "Practical 1", "course": cid}, headers=teacher).json()
            assert first["course"] == cid
            signed = http.post("/api/signin", json={"code": " " + ali["code"][:4].lower() + "-" + ali["code"][4:] + " "})
            assert signed.status_code == 200, signed.text
            one = signed.json()
            assert one["session"] == first["id"] and one["participant_id"] == ali["id"] and one["course"] == {"id": cid, "name": "Kimyo 9A"}

        student = AmaliyClient(one["ws_url"], one["token"])
        await student.connect()
        clients.append(student)
        assert student.id == ali["id"] and student.welcome["participant"]["name"] == ali["name"]
        guest = await AmaliyClient.join(live.base_url, first["join_code"], "Guest")  # guests with the join code still come in
        clients.append(guest)
        await guest.wait_until(lambda: ali["id"] in guest.participants, 2)

        with live.http() as http:
            second = http.post("/api/sessions", json={"title": "Practical 2", "course": cid}, headers=teacher).json()
            two = http.post("/api/signin", json={"code": ali["code"]}).json()
            assert two["session"] == second["id"] and two["participant_id"] == one["participant_id"]  # the newest, the same participant
        again = AmaliyClient(two["ws_url"], two["token"])
        await again.connect()
        clients.append(again)
        assert again.id == student.id

        with live.http() as http:
            # a rotated code: the old one is refused at once, the new one works
            rotated = http.post(f"/api/courses/{cid}/students/{ali['id']}/code", headers=teacher).json()
            assert rotated["code"] != ali["code"]
            old = http.post("/api/signin", json={"code": ali["code"]})
            assert (old.status_code, old.json()["detail"]) == (401, WRONG_CODE)
            assert http.post("/api/signin", json={"code": "not a code"}).status_code == 401
            assert http.post("/api/signin", json={"code": rotated["code"]}).json()["participant_id"] == ali["id"]

            # another teacher sees none of it and changes nothing
            other = bearer(add_user(data_dir, "Other Teacher"))
            assert http.get("/api/courses", headers=other).json() == []
            for method, path, body in [("GET", f"/api/courses/{cid}", None), ("PATCH", f"/api/courses/{cid}", {"name": "Mine"}),
                                       ("DELETE", f"/api/courses/{cid}", None), ("GET", f"/api/courses/{cid}/roster.csv", None),
                                       ("POST", f"/api/courses/{cid}/students/{ali['id']}/code", None),
                                       ("POST", f"/api/courses/{cid}/students", {"name": "Intruder"})]:
                response = http.request(method, path, json=body, headers=other)
                assert (response.status_code, response.json()["detail"]) == (403, "This course belongs to another teacher."), path
            response = http.post("/api/sessions", json={"course": cid}, headers=other)
            assert (response.status_code, response.json()["detail"]) == (403, "This course belongs to another teacher.")
            response = http.get("/api/courses", headers=bearer(one["token"]))
            assert (response.status_code, response.json()["detail"]) == (403, "The student role may not manage courses.")
            assert http.get("/api/courses/c_nope", headers=teacher).status_code == 404

            # rename; one student by hand; delete only when empty
            assert http.patch(f"/api/courses/{cid}", json={"name": "Kimyo 9-A"}, headers=teacher).json()["name"] == "Kimyo 9-A"
            added = http.post(f"/api/courses/{cid}/students", json={"name": "Zafar", "email": "z@maktab.uz"}, headers=teacher)
            assert added.status_code == 201 and len(added.json()["code"]) == 8
            dup = http.post(f"/api/courses/{cid}/students", json={"name": "Zafar"}, headers=teacher)
            assert dup.status_code == 422 and "already on the roster" in dup.json()["detail"]
            assert http.delete(f"/api/courses/{cid}", headers=teacher).status_code == 409
            empty = http.post("/api/courses", json={"name": "Empty"}, headers=teacher).json()
            assert http.delete(f"/api/courses/{empty['id']}", headers=teacher).status_code == 204

        # the CLI on the same data dir: new codes for everyone, the old ones stop working
        listed = cli(data_dir, "list")
        assert listed.returncode == 0 and cid in listed.stdout and "32 students" in listed.stdout
        printed = cli(data_dir, "codes", cid)
        assert printed.returncode == 0 and "stored only hashed" in printed.stdout
        fresh = {line.split(maxsplit=1)[1]: line.split()[0] for line in printed.stdout.splitlines()[1:]}
        assert len(fresh) == 32 and signin(live, rotated["code"]).status_code == 401

        # a restart keeps courses, rosters, codes and the open practical
        for client in clients:
            await client.close()
        clients.clear()
        live.stop()
        live = serve_again(live, data_dir)
        with live.http() as http:
            assert [c["id"] for c in http.get("/api/courses", headers=teacher).json()] == [cid]
        back = signin(live, fresh[ali["name"]])
        assert back.status_code == 200, back.text
        assert back.json()["participant_id"] == ali["id"] and back.json()["session"] == second["id"]
        returned = AmaliyClient(back.json()["ws_url"], back.json()["token"])
        await returned.connect()
        clients.append(returned)
        assert returned.id == ali["id"]
    finally:
        for client in clients:
            if client.close_code is None:
                await client.close()
        live.stop()


def test_cli_import_refuses_a_bad_file_and_imports_a_good_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    add_user(data_dir, "Teacher")
    made = cli(data_dir, "add", "Chemistry 9A")
    assert made.returncode == 0, made.stderr
    (tmp_path / "bad.csv").write_bytes(roster_csv(bad=True))
    bad = cli(data_dir, "import", "Chemistry 9A", str(tmp_path / "bad.csv"))
    assert bad.returncode != 0 and "line 6: The name is empty." in bad.stderr and "line 22:" in bad.stderr
    (tmp_path / "good.csv").write_bytes("ФИО;Почта\r\nИван Петров;ivan@mail.ru\r\n".encode("cp1251"))
    good = cli(data_dir, "import", "Chemistry 9A", str(tmp_path / "good.csv"))
    assert good.returncode == 0 and "Иван Петров" in good.stdout and "shown once" in good.stdout
    assert "no course" in cli(data_dir, "import", "Physics", str(tmp_path / "good.csv")).stderr


def test_sign_in_guessing_is_rate_limited_per_address(server_factory: Any) -> None:
    live = server_factory(env={"AMALIY_JOIN_RATE_PER_MIN": "6"})
    answers = [signin(live, "AAAAAAAA").status_code for _ in range(4)]
    assert answers[:2] == [401, 401] and answers[-1] == 429


async def test_a_removed_roster_student_is_told_so_at_sign_in_until_let_back_in(server: LiveServer) -> None:
    teacher = bearer(server.teacher_key)
    with server.http() as http:
        cid = http.post("/api/courses", json={"name": "Fizika 8B"}, headers=teacher).json()["id"]
        code = http.post(f"/api/courses/{cid}/students", json={"name": "Aziz"}, headers=teacher).json()["code"]
        session = http.post("/api/sessions", json={"title": "Week 1", "course": cid}, headers=teacher).json()
        signed = http.post("/api/signin", json={"code": code}).json()
    aziz = AmaliyClient(signed["ws_url"], signed["token"])
    lead = AmaliyClient(session["ws_url"], session["teacher_token"])
    await aziz.connect()
    await lead.connect()
    try:
        await lead.kick(aziz.id)
        await aziz.closed(timeout=20)
        with server.http() as http:
            refused = http.post("/api/signin", json={"code": code})
            assert refused.status_code == 403 and refused.json()["detail"].startswith("The teacher removed you from this practical")
            assert http.delete(f"/api/sessions/{session['id']}/removed/{aziz.id}", headers=teacher).status_code == 204
            assert http.post("/api/signin", json={"code": code}).json()["participant_id"] == aziz.id
    finally:
        await lead.close()


def test_a_100000_row_roster_is_refused_whole_with_a_sentence(server: LiveServer) -> None:
    teacher = bearer(server.teacher_key)
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        cid = http.post("/api/courses", json={"name": "Huge"}, headers=teacher).json()["id"]
        rows = ("name\n" + "".join(f"S{i:05d}\n" for i in range(100_000))).encode()
        assert len(rows) < 1024 * 1024  # under the byte limit: the row limit is what answers
        refused = http.post(f"/api/courses/{cid}/roster", content=rows, headers=teacher)
        assert refused.status_code == 422
        assert refused.json()["detail"] == "The file has 100000 students; one file may have at most 5000. Split it."
        bigger = ("name,email\n" + "".join(f"Student {i:06d},s{i:06d}@maktab.uz\n" for i in range(100_000))).encode()
        assert http.post(f"/api/courses/{cid}/roster", content=bigger, headers=teacher).status_code == 413
        assert http.get(f"/api/courses/{cid}", headers=teacher).json()["roster"] == []


def test_a_teacher_corrects_a_student_and_removes_one_and_rotates_every_code(server: LiveServer) -> None:
    teacher = bearer(server.teacher_key)
    with server.http() as http:
        cid = http.post("/api/courses", json={"name": "Biologiya 7"}, headers=teacher).json()["id"]
        added = http.post(f"/api/courses/{cid}/roster", content="name,student_number\nAziz,7-01\nAziz,7-02\nLola,7-03\n".encode(), headers=teacher)
        aziz, other, lola = added.json()["students"]
        fixed = http.patch(f"/api/courses/{cid}/students/{aziz['id']}", json={"name": "Aziz Karimov", "student_number": "7-01"}, headers=teacher)
        assert fixed.status_code == 200 and fixed.json()["name"] == "Aziz Karimov"
        clash = http.patch(f"/api/courses/{cid}/students/{lola['id']}", json={"name": "Lola", "student_number": "7-02"}, headers=teacher)
        assert clash.status_code == 422 and "'7-02' is already on the roster" in clash.json()["detail"]
        assert http.delete(f"/api/courses/{cid}/students/{other['id']}", headers=teacher).status_code == 204
        assert http.delete(f"/api/courses/{cid}/students/{other['id']}", headers=teacher).status_code == 404
        assert http.post("/api/signin", json={"code": other["code"]}).status_code == 401
        sheet = http.post(f"/api/courses/{cid}/codes?qr=true", headers={**teacher, "Host": "maktab.local:8000"}).json()
        assert [s["name"] for s in sheet["students"]] == ["Aziz Karimov", "Lola"]
        first = sheet["students"][0]
        assert first["signin_url"] == f"http://maktab.local:8000/?signin={first['code']}" and first["qr_svg"].startswith("<svg")
        assert http.post("/api/signin", json={"code": aziz["code"]}).status_code == 401  # the old code stopped working
        http.post("/api/sessions", json={"title": "Week 1", "course": cid}, headers=teacher)
        assert http.post("/api/signin", json={"code": first["code"]}).json()["participant_id"] == aziz["id"]


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbfname\nAziz\xff\xfe\n",  # a UTF-8 byte order mark, then bytes that are not UTF-8
    b"\xff\xfe" + "name\nAziz\n".encode("utf-16-le") + b"\x00",  # UTF-16 of an odd length
    b"\xff\xfe" + "name\nAziz".encode("utf-16-le") + b"\x00\xd8" + "\n".encode("utf-16-le"),  # a lone surrogate
])
def test_a_roster_that_is_not_the_text_it_claims_is_refused_with_a_sentence(server: LiveServer, data: bytes) -> None:
    teacher = bearer(server.teacher_key)
    with server.http() as http:
        cid = http.post("/api/courses", json={"name": "Encodings"}, headers=teacher).json()["id"]
        refused = http.post(f"/api/courses/{cid}/roster", content=data, headers={**teacher, "Content-Type": "text/csv"})
        assert refused.status_code == 422 and "save it from the spreadsheet as CSV UTF-8" in refused.json()["detail"]
        assert http.get(f"/api/courses/{cid}", headers=teacher).json()["roster"] == []


@pytest.mark.parametrize("email", ["aziz\u200b@maktab.uz", "aziz@mak\u202etab.uz", "aziz@maktab.uz\x00", "az\tiz@maktab.uz"])
def test_an_email_with_an_invisible_character_is_refused_naming_the_line(server: LiveServer, email: str) -> None:
    teacher = bearer(server.teacher_key)
    with server.http() as http:
        cid = http.post("/api/courses", json={"name": "Emails"}, headers=teacher).json()["id"]
        data = f"name,email\nLola,lola@maktab.uz\nAziz,{email}\n".encode()
        refused = http.post(f"/api/courses/{cid}/roster", content=data, headers={**teacher, "Content-Type": "text/csv"})
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["problems"]
        assert problem["line"] == 3 and "invisible character" in problem["problem"]
        one = http.post(f"/api/courses/{cid}/students", json={"name": "Aziz", "email": email}, headers=teacher)
        assert one.status_code == 422 and "invisible character" in one.json()["detail"]
        assert http.get(f"/api/courses/{cid}", headers=teacher).json()["roster"] == []
