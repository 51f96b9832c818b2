"""Challenge results: the store's schema steps and idempotent records, how results are read from
records (credit, scores, CSV), and who may read them over REST. The whole path through a live
practical is in test_challenges_live.py."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from realtime.challenges import scoring
from realtime.roles import Action, Role, allowed
from realtime.room import Record
from server.results import ResultsWriter, build, to_csv
from server.store import SCHEMA_VERSION, Session, Store, StoredRecord

from tests.conftest import LiveServer

#: the schema as it was before numbered steps (user_version 0)
_LEGACY = """
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('teacher', 'designer')),
    key_hash TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE sessions (id TEXT PRIMARY KEY, teacher_id TEXT NOT NULL REFERENCES users(id), scene_id TEXT NOT NULL,
    scene_version INTEGER NOT NULL, title TEXT NOT NULL, join_code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'ended')), created REAL NOT NULL, ended REAL);
CREATE UNIQUE INDEX sessions_open_code ON sessions(join_code) WHERE status = 'open';
INSERT INTO users VALUES ('t_1', 'Teacher', 'teacher', 'hash', 1.0);
INSERT INTO sessions VALUES ('s_old', 't_1', 'chemistry-bench', 1, 'Before', 'ABCDEF', 'ended', 1.0, 2.0);
"""

CHALLENGE = {
    "id": "c",
    "title": "Challenge",
    "steps": [
        {"id": "one", "text": "First", "points": 10, "skill": "a", "requires": []},
        {"id": "two", "text": "Second", "points": 5, "skill": None, "requires": ["one"]},
    ],
}
SESSION = Session("s_1", "t_1", "lab", 1, "Lab", "ABCDEF", "ended", 100.0)


def record(rid: str, kind: str, at: float, **data: Any) -> StoredRecord:
    return StoredRecord(rid, kind, at, data)


def member(n: int, pid: str, name: str, station: int, at: float) -> StoredRecord:
    return record(f"member:{pid}:{station}", "station", at, participant=pid, station=station, spawn=None, name=name, t=at)


def test_an_old_database_gets_the_new_steps_and_keeps_its_rows(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "amaliy.sqlite3")
    db.executescript(_LEGACY)
    db.close()
    store = Store(tmp_path)
    assert store.schema_version() == SCHEMA_VERSION == 7
    old = store.session("s_old")
    assert old is not None and old.title == "Before" and old.preview is False
    store.close()
    again = Store(tmp_path)  # a second start runs no step twice
    assert again.schema_version() == SCHEMA_VERSION and again.session("s_old") == old
    again.close()


def test_records_are_stored_once_by_session_and_id(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        assert store.add_records([("s_1", "step:1:one", "step_done", 5.0, {"points": 10}), ("s_2", "step:1:one", "step_done", 6.0, {"points": 3})]) == 2
        assert store.add_records([("s_1", "step:1:one", "step_done", 9.0, {"points": 99}), ("s_1", "done:1", "challenge_done", 9.0, {})]) == 1
        assert store.records("s_1") == [StoredRecord("step:1:one", "step_done", 5.0, {"points": 10}), StoredRecord("done:1", "challenge_done", 9.0, {})]
        store.set_challenge("s_1", CHALLENGE)
        store.set_challenge("s_1", {"id": "other"})
        assert store.challenge("s_1") == CHALLENGE and store.challenge("s_2") is None
    finally:
        store.close()


async def test_the_writer_batches_off_the_loop_and_counts_a_replay_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    writer = ResultsWriter(store)
    records = [Record(f"mistake:1:{n}", "mistake", {"penalty": 2, "t": n}) for n in range(50)]
    for item in records + records:  # a replay after failover brings the same ids again
        writer.add("s_1", item, 1000.0)
    await writer.flush()
    assert len(store.records("s_1")) == 50
    assert writer.stats() == {"stored": 50, "duplicates": 50, "dropped": 0, "queued": 0}
    for item in records[:3]:
        writer.add("s_1", item, 1000.0)
    await writer.close()  # what is queued is written before the thread stops
    assert writer.stats()["duplicates"] == 53
    store.close()


async def test_a_failed_write_is_tried_again(tmp_path: Path) -> None:
    store = Store(tmp_path)
    writer = ResultsWriter(store)
    real = store.add_records
    calls = []

    def flaky(rows: list[Any]) -> int:
        calls.append(len(rows))
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(rows)

    store.add_records = flaky  # type: ignore[method-assign]
    writer.add("s_1", Record("done:1", "challenge_done", {"t": 1}), 5.0)
    await writer.flush()
    assert writer.stats()["queued"] == 1  # put back, a retry is due
    await writer.close()
    assert calls == [1, 1] and store.records("s_1")[0].id == "done:1" and writer.stats()["dropped"] == 0
    store.close()


def test_credit_follows_the_group_at_the_time_and_scores_use_the_one_formula() -> None:
    records = [
        member(1, "p_a", "Ali", 1, 10.0),
        record("started:1", "challenge_started", 10.0, station=1, challenge="c", t=10.0),
        record("mistake:1:2", "mistake", 11.0, station=1, step="one", mistake="m", explanation="Oops", penalty=4, by="p_a", t=11.0, members=["p_a"], skill="a"),
        record("step:1:one", "step_done", 12.0, station=1, step="one", by="p_a", points=10, t=12.0, elapsed=2.0, members=["p_a"], skill="a", opened=10.0),
        member(3, "p_b", "Bea", 1, 13.0),  # joins after the first step
        record("answer:1:4", "checkpoint_answer", 13.5, station=1, step="two", by="p_b", correct=False, t=13.5, value=3),
        record("mistake:1:5", "mistake", 13.5, station=1, step="two", mistake="wrong_answer", explanation="No", penalty=2, by="p_b", t=13.5, members=["p_a", "p_b"], skill=None),
        record("step:1:two", "step_done", 14.0, station=1, step="two", by="p_b", points=5, t=14.0, elapsed=2.0, members=["p_a", "p_b"], skill=None, opened=12.0),
        record("done:1", "challenge_done", 14.0, station=1, t=14.0, elapsed=4.0, bonus=3, score=12, members=["p_a", "p_b"]),
        member(1, "p_c", "=cmd|' /C calc'!A0", 2, 15.0),
        record("started:2", "challenge_started", 15.0, station=2, challenge="c", t=15.0),
        record("mistake:2:2", "mistake", 16.0, station=2, step="one", mistake="m", explanation="Oops", penalty=4, by="p_c", t=16.0, members=["p_c"], skill="a"),
    ]
    results = build(SESSION, CHALLENGE, list(reversed(records)))  # order comes from the times
    students = {s["participant"]: s for s in results["students"]}
    assert students["p_a"]["score"] == scoring.total([-4, 10, -2, 5, 3]) == 12
    assert students["p_b"]["score"] == scoring.total([-2, 5, 3]) == 6  # only what came after they joined
    assert students["p_c"]["score"] == 0  # never below zero
    assert [e["step"] for e in students["p_b"]["steps"]] == ["two"] and students["p_b"]["steps"][0]["by_name"] == "Bea"
    assert [a["correct"] for a in students["p_b"]["answers"]] == [False] and students["p_a"]["answers"] == []
    assert students["p_a"]["done"] and students["p_b"]["done"] and not students["p_c"]["done"]
    assert students["p_b"]["started"] == 10.0 and students["p_b"]["joined"] == 13.0 and students["p_b"]["elapsed"] == 4.0
    one, two = results["stations"]
    assert (one["score"], one["bonus"], one["steps_done"], one["mistakes"], one["members"]) == (12, 3, 2, 2, ["p_a", "p_b"])
    assert (two["score"], two["finished"], two["mistakes"]) == (0, None, 1)
    assert results["challenge"]["steps"] == [
        {"id": "one", "text": "First", "points": 10, "skill": "a"},
        {"id": "two", "text": "Second", "points": 5, "skill": None},
    ]

    text = to_csv(results)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["participant", "name", "station", "score", "steps_done", "mistakes", "hints", "elapsed_seconds", "finished", "finished_at", "step:one", "step:two"]
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id["p_a"][1:10] == ["Ali", "1", "12", "2", "2", "0", "4.0", "yes", "1970-01-01T00:00:14+00:00"]
    assert by_id["p_a"][10:] == ["2.0", "2.0"] and by_id["p_b"][10:] == ["", "2.0"]
    assert by_id["p_c"][1] == "'=cmd|' /C calc'!A0"  # a name is never run as a spreadsheet formula
    assert by_id["p_c"][8:] == ["no", "", "", ""]


def test_a_station_started_again_reads_from_its_later_start() -> None:
    records = [
        member(1, "p_a", "Ali", 1, 10.0),  # looked around and left: nothing done
        record("started:1", "challenge_started", 10.0, station=1, challenge="c", t=10.0, members=["p_a"]),
        record("left::p_a:3", "left", 40.0, participant="p_a", reason="left", t=40.0),
        member(2, "p_b", "Bea", 1, 800.0),
        record("started::1:2", "challenge_started", 800.0, station=1, challenge="c", t=800.0, members=["p_b"]),
        member(3, "p_c", "Cem", 1, 805.0),  # Bea's partner, a little late
        record("step:1:one", "step_done", 812.0, station=1, step="one", by="p_b", points=10, t=812.0, elapsed=12.0, members=["p_b", "p_c"], skill="a", opened=800.0),
    ]
    results = build(SESSION, CHALLENGE, list(reversed(records)))
    assert results["stations"][0]["started"] == 800.0
    started = {s["participant"]: s["started"] for s in results["students"]}
    assert started == {"p_a": 10.0, "p_b": 800.0, "p_c": 800.0}  # Ali's time there began at 10, not at Bea's start
    bea = next(s for s in results["students"] if s["participant"] == "p_b")
    assert bea["steps"][0]["seconds"] == 12.0


def test_a_start_stored_without_its_members_counts_for_who_is_placed_there() -> None:
    records = [
        member(1, "p_a", "Ali", 1, 10.0),
        record("started:1", "challenge_started", 10.0, station=1, challenge="c", t=10.0),
        member(2, "p_b", "Bea", 2, 20.0),
        record("started:2", "challenge_started", 20.0, station=2, challenge="c", t=20.0),
    ]
    assert {s["participant"]: s["started"] for s in build(SESSION, CHALLENGE, records)["students"]} == {"p_a": 10.0, "p_b": 20.0}


def test_without_the_challenge_the_columns_come_from_the_records() -> None:
    records = [
        member(1, "p_a", "Ali", 1, 10.0),
        record("step:1:x", "step_done", 12.0, station=1, step="x", by="p_a", points=1, t=12.0, elapsed=2.5, members=["p_a"], skill=None, opened=9.5),
    ]
    results = build(SESSION, None, records)
    assert results["challenge"] is None
    assert to_csv(results).splitlines()[0].endswith(",step:x")


# ------------------------------------------------------------------ REST


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_a_practical_nobody_joined_has_empty_results(server: LiveServer) -> None:
    session = server.open_session()
    with server.http() as http:
        body = http.get(f"/api/sessions/{session['id']}/results", headers=bearer(server.teacher_key)).json()
        assert body["session"]["id"] == session["id"] and body["session"]["status"] == "open"
        assert body["stations"] == [] and body["students"] == []
        steps = [f"step:{step['id']}" for step in (body["challenge"] or {"steps": []})["steps"]]
        table = http.get(f"/api/sessions/{session['id']}/results.csv", headers=bearer(server.teacher_key))
        assert table.status_code == 200 and table.content.decode("utf-8-sig").splitlines() == [
            ",".join(["participant", "name", "station", "score", "steps_done", "mistakes", "hints", "elapsed_seconds", "finished", "finished_at", *steps])
        ]


def test_results_are_for_the_owning_teacher_only(server: LiveServer) -> None:
    one, two = server.open_session(), server.open_session()
    with server.http() as http:
        student = http.post("/api/join", json={"code": one["join_code"], "name": "Ali"}).json()["token"]
        for path in (f"/api/sessions/{one['id']}/results", f"/api/sessions/{one['id']}/results.csv"):
            assert http.get(path, headers=bearer(server.teacher_key)).status_code == 200
            assert http.get(path, headers=bearer(one["teacher_token"])).status_code == 200
            refused = http.get(path, headers=bearer(two["teacher_token"]))
            assert (refused.status_code, refused.json()["detail"]) == (403, "Your token is for another practical.")
            refused = http.get(path, headers=bearer(student))
            assert (refused.status_code, refused.json()["detail"]) == (403, "The student role may not view results.")
            assert http.get(path, headers=bearer(server.designer_key)).status_code == 403
            assert http.get(path).status_code == 401
        assert http.get("/api/sessions/s_nope/results", headers=bearer(server.teacher_key)).status_code == 404


def test_an_http_client_can_save_the_csv_under_its_name(server: LiveServer, tmp_path: Path) -> None:
    session = server.open_session()
    response = httpx.get(f"{server.base_url}/api/sessions/{session['id']}/results.csv", headers=bearer(server.teacher_key))
    disposition = response.headers["content-disposition"]
    name = disposition.split("filename=", 1)[1].strip('"')
    assert name == f"amaliy-chemistry-bench-{session['id']}-results.csv" and "/" not in name
    (tmp_path / name).write_bytes(response.content)
    assert (tmp_path / name).read_text("utf-8-sig").startswith("participant,")


@pytest.mark.parametrize("role", ["teacher", "student", "observer", "designer"])
@pytest.mark.parametrize("action", [Action.VIEW_RESULTS, Action.PREVIEW_SCENE], ids=str)
def test_every_role_against_the_results_and_preview_routes(server: LiveServer, action: Action, role: str) -> None:
    """The cells of realtime.roles for the two REST actions added with results and previews."""
    session = server.open_session()
    with server.http() as http:
        if role in ("teacher", "designer"):
            credential = server.teacher_key if role == "teacher" else server.designer_key
        else:
            credential = http.post("/api/join", json={"code": session["join_code"], "name": "Someone", "role": role}).json()["token"]
        if action == Action.VIEW_RESULTS:
            response = http.get(f"/api/sessions/{session['id']}/results", headers=bearer(credential))
        else:
            version = http.get(f"/api/scenes/{session['scene']}", headers=bearer(server.designer_key)).json()["version"]
            response = http.post(f"/api/scenes/{session['scene']}/versions/{version}/preview", headers=bearer(credential))
    if allowed(Role(role), action):
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == 403
        assert response.json()["detail"].startswith(f"The {role} role may not")
    assert allowed(Role(role), action) == (role == ("teacher" if action == Action.VIEW_RESULTS else "designer"))
