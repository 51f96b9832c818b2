"""Shared records on a real Redis (server.replica): stores on separate data dirs, as separate nodes
have, are one set of records. What one writes the next read of another sees; a replayed record
counts once everywhere; a new node, a node behind a trimmed log and a node whose data dir held
records of its own all end up with the deployment's; Redis lost mid-term and seeded again from a
replica loses nothing. Waits poll a condition with a timeout."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from server import learner_views
from server.replica import RecordsError, RecordsUnavailable, SharedSettings
from server.store import CourseNotEmpty, Store
from tests.conftest import start_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
WAIT = 20.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Deployment:
    """Data dirs of one deployment (its own name, so tests never share keys), one secret.key."""

    def __init__(self, root: Path, url: str = REDIS_URL, snapshot_every: int = 10_000) -> None:
        self.root = root
        self.name = "t" + secrets.token_hex(4)
        self.settings = SharedSettings(url, self.name, snapshot_every)
        self.secret = secrets.token_hex(32)
        self.stores: list[Store] = []

    def data_dir(self, n: int, secret: str | None = None) -> Path:
        path = self.root / f"node{n}"
        path.mkdir(parents=True, exist_ok=True)
        if not (path / "secret.key").exists():
            (path / "secret.key").write_text(secret or self.secret)
        return path

    def store(self, n: int) -> Store:
        store = Store(self.data_dir(n), self.settings)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()
        client = redis.Redis.from_url(self.settings.url)
        for key in client.scan_iter(f"{self.name}:*"):
            client.delete(key)
        client.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path)
    yield dep
    dep.close()


def step(session_id: str, station: int, step_id: str, student: str, points: int) -> tuple[str, str, str, float, dict[str, object]]:
    return (session_id, f"step:{station}:{step_id}", "step_done", time.time(), {"station": station, "step": step_id, "points": points, "members": [student]})


def test_what_one_node_writes_the_next_read_of_another_sees(deployment: Deployment) -> None:
    a, b = deployment.store(0), deployment.store(1)
    teacher, key = a.add_user("Nilufar Karimova")
    assert b.user_by_key(key) == teacher
    course = b.add_course(teacher.id, "Chemistry 9A")
    assert a.courses(teacher.id) == [course]
    [(aziz, code)] = a.add_students(course.id, [("Aziz", None, "9A-01")])
    assert b.student_by_code(code) == aziz  # hashed with the same codes.key everywhere
    assert not list(deployment.data_dir(1).glob("codes.before-shared-*")), "a new data dir has no key of its own to keep"
    new_code = b.rotate_code(aziz.id)
    assert a.student_by_code(code) is None and a.student_by_code(new_code) == aziz
    with pytest.raises(CourseNotEmpty, match="1 student"):
        a.delete_course(course.id)
    assert b.course(course.id) == course  # the refused delete changed nothing anywhere
    b.remove_student(aziz.id)
    assert a.student_by_code(new_code) is None
    a.delete_course(course.id)
    assert b.courses() == []


def test_a_replayed_record_counts_once_on_every_node(deployment: Deployment) -> None:
    """A failover replays records the old host may have stored already: XP, the ladder and the
    badges are the same on every node, counted once."""
    a, b = deployment.store(0), deployment.store(1)
    teacher, _ = a.add_user("Teacher")
    course = a.add_course(teacher.id, "Physics")
    [(aziz, _)] = a.add_students(course.id, [("Aziz", None, None)])
    session = b.open_session(teacher.id, "chemistry-bench", 1, "Week 1", course_id=course.id)
    rows = [step(session.id, 1, "s1", aziz.id, 50), step(session.id, 1, "s2", aziz.id, 70)]
    assert a.add_records(rows) == 2
    assert b.add_records(rows) == 0  # the new host stores the same records again
    assert a.add_records([*rows, step(session.id, 1, "s3", aziz.id, 30)]) == 1
    for store in (a, b):
        view = store.read(learner_views.course_view, course.id, store.course_settings(course.id))
        [row] = view["students"]
        assert row["xp"] == a.course_settings(course.id).xp(150), row
    assert [r.id for r in a.records(session.id)] == [r.id for r in b.records(session.id)]
    assert sqlite_rows(a) == sqlite_rows(b)


def sqlite_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the replica's own position: what two replicas must agree on."""
    store.replica.catch_up()  # type: ignore[union-attr]
    db = sqlite3.connect(store.path)
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'replica'")]
    rows = {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}
    db.close()
    return rows


def test_the_first_node_brings_its_records_and_a_later_one_keeps_its_own_aside(deployment: Deployment) -> None:
    """A school that outgrows one machine keeps what it had: the first node seeds the deployment
    with its file. A data dir with records of its own that joins later takes the deployment's,
    its own copied aside with its codes.key, never lost."""
    first = Store(deployment.data_dir(0))
    teacher, key = first.add_user("From the school server")
    [(kamola, code)] = first.add_students(first.add_course(teacher.id, "Biology").id, [("Kamola", None, None)])
    first.close()
    other = Store(deployment.data_dir(1))
    other.add_user("Somewhere else")
    other.close()

    seeded = deployment.store(0)
    assert seeded.user_by_key(key) == teacher and seeded.student_by_code(code) == kamola
    joined = deployment.store(1)
    assert joined.user_by_key(key) == teacher and [u.name for u in joined.users()] == ["From the school server"]
    assert joined.student_by_code(code) == kamola  # with the deployment's codes.key
    [aside] = deployment.data_dir(1).glob("amaliy.before-shared-*.sqlite3")
    kept = sqlite3.connect(aside)
    assert kept.execute("SELECT name FROM users").fetchall() == [("Somewhere else",)]
    kept.close()
    assert len(list(deployment.data_dir(1).glob("codes.before-shared-*.key"))) == 1


def test_a_node_behind_the_trimmed_log_loads_the_snapshot(tmp_path: Path) -> None:
    dep = Deployment(tmp_path, snapshot_every=5)
    try:
        a = dep.store(0)
        teacher, _ = a.add_user("Teacher")
        courses = {a.add_course(teacher.id, f"Course {i}").id for i in range(30)}
        client = redis.Redis.from_url(dep.settings.url)
        log = f"{dep.name}:{{records}}:log"
        wait_for(lambda: int(client.hget(f"{dep.name}:{{records}}:snapshot", "n") or 0) >= 25, "a snapshot near the end of the log")
        assert client.xlen(log) < 10  # trimmed by MINID to just after the snapshot
        late = dep.store(1)  # a new node: the snapshot, then the tail
        assert {c.id for c in late.courses()} == courses
        late.close()
        dep.stores.remove(late)
        more = {a.add_course(teacher.id, f"Later {i}").id for i in range(30)}
        wait_for(lambda: client.xlen(log) < 10 and int(client.hget(f"{dep.name}:{{records}}:snapshot", "n") or 0) > 55, "the log trimmed past the late node")
        again = dep.store(1)  # its file is behind what the log still holds
        assert {c.id for c in again.courses()} == courses | more
        client.close()
    finally:
        dep.close()


def test_a_node_with_another_secret_refuses_to_start(deployment: Deployment, tmp_path: Path) -> None:
    deployment.store(0).add_user("Teacher")
    stranger = deployment.data_dir(9, secret=secrets.token_hex(32))
    with pytest.raises(RecordsError, match="secret.key is not the deployment's"):
        Store(stranger, deployment.settings)
    with pytest.raises(RecordsError, match="does not answer.*unset REDIS_URL"):
        Store(tmp_path / "nowhere", SharedSettings("redis://127.0.0.1:1/0", deployment.name))


def test_redis_lost_and_seeded_again_from_a_replica(tmp_path: Path) -> None:
    """Redis down: reads go on from the replica, writes are refused at once and change nothing.
    Redis back empty: a node seeds it again from its replica, and the others follow."""
    port = int(subprocess.run(["python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"],
                              capture_output=True, text=True, check=True).stdout)
    proc = start_redis(port, tmp_path)
    dep = Deployment(tmp_path / "nodes", f"redis://127.0.0.1:{port}/0")
    try:
        a, b = dep.store(0), dep.store(1)
        teacher, key = a.add_user("Teacher")
        course = a.add_course(teacher.id, "Chemistry")
        assert b.course(course.id) == course
        proc.kill()
        proc.wait()
        assert b.user_by_key(key) == teacher  # served from the replica
        started = time.monotonic()
        with pytest.raises(RecordsUnavailable, match="nothing was changed"):
            b.add_course(teacher.id, "Lost?")
        with pytest.raises(RecordsUnavailable):  # refused at once while Redis is known to be down
            b.add_course(teacher.id, "Lost?")
        assert time.monotonic() - started < 5
        assert [c.name for c in b.courses()] == ["Chemistry"]
        proc = start_redis(port, tmp_path)  # back, empty
        wait_for(lambda: _writes(b, teacher.id), "a write through b once Redis is seeded again")
        wait_for(lambda: len(a.courses()) == 2, "a to follow the new log")
        assert sqlite_rows(a) == sqlite_rows(b)
        assert a.user_by_key(key) == teacher
    finally:
        dep.close()
        proc.kill()
        proc.wait()


def _writes(store: Store, teacher_id: str) -> bool:
    try:
        store.add_course(teacher_id, "After the outage")
        return True
    except RecordsUnavailable:
        return False
