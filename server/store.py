"""Embedded persistence: users (teachers, designers), sessions and their results in SQLite
under the data dir.

Small and synchronous on purpose: these are rare, tiny writes (opening a
practical, adding a teacher). Results are the one write a live room causes; the
node batches them and writes them off the event loop (server.results), each
idempotent by (session, record id), so a replayed record is stored once.

The schema grows in numbered steps (``_MIGRATIONS``); ``PRAGMA user_version``
says how many a database has had, and each new step runs once, in a transaction.
A step is never edited once released: a change is a new step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, TypeVar

from server import learners, xapi_outbox
from server.replica import Replica, SharedSettings

#: Join-code alphabet: no 0/O, 1/I/L, so codes read aloud or copied from a board survive.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
#: A student's personal sign-in code: same alphabet, 31**8 (about 8.5e11) codes, so guessing
#: one under the sign-in rate limit is hopeless. Stored only as a keyed hash (``_code_key``).
SIGNIN_CODE_LENGTH = 8

#: Schema steps, in order; a database that has had n of them has ``user_version`` n.
_MIGRATIONS: tuple[str, ...] = (
    # 1: users and sessions (databases from before numbered steps have these tables already)
    """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('teacher', 'designer')),
    key_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    teacher_id TEXT NOT NULL REFERENCES users(id),
    scene_id TEXT NOT NULL,
    scene_version INTEGER NOT NULL,
    title TEXT NOT NULL,
    join_code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'ended')),
    created REAL NOT NULL,
    ended REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS sessions_open_code ON sessions(join_code) WHERE status = 'open';
""",
    # 2: designer previews, and the results of challenges
    """
ALTER TABLE sessions ADD COLUMN preview INTEGER NOT NULL DEFAULT 0;
CREATE TABLE results (
    seq INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (session_id, record_id)
);
CREATE TABLE result_challenges (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    challenge TEXT NOT NULL
);
""",
    # 3: courses, their rosters of students with personal sign-in codes, and practicals of a course
    """
CREATE TABLE courses (
    id TEXT PRIMARY KEY,
    teacher_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX courses_teacher ON courses(teacher_id);
CREATE TABLE students (
    id TEXT PRIMARY KEY,
    course_id TEXT NOT NULL REFERENCES courses(id),
    name TEXT NOT NULL,
    email TEXT,
    student_number TEXT,
    code_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE INDEX students_course ON students(course_id);
ALTER TABLE sessions ADD COLUMN course_id TEXT REFERENCES courses(id);
""",
    # 4: learners across practicals: XP per practical, the cheat guard's steps, badges earned
    learners.MIGRATION,
    # 5: the xAPI outbox: learning events as statements until the LRS has them, and whether they are queued
    xapi_outbox.MIGRATION,
    # 6: hints shown per practical, and each student's skills as the room's learner model left them
    learners.MIGRATION_SKILLS,
    # 7: which deployment's shared records this file replicates, and how far (server.replica)
    """
CREATE TABLE replica (
    deployment TEXT NOT NULL,
    applied INTEGER NOT NULL
);
""",
)
SCHEMA_VERSION = len(_MIGRATIONS)

T = TypeVar("T")

_SESSION_COLUMNS = "id, teacher_id, scene_id, scene_version, title, join_code, status, created, preview, course_id"
_STUDENT_COLUMNS = "id, course_id, name, email, student_number"


@dataclass(frozen=True)
class User:
    """Someone with a key: a teacher or a course designer."""

    id: str
    name: str
    role: str


@dataclass(frozen=True)
class Session:
    id: str
    teacher_id: str
    scene_id: str
    scene_version: int
    title: str
    join_code: str
    status: str
    created: float
    #: a designer's private preview: no join code, never listed to teachers
    preview: bool = False
    #: the course this practical belongs to (students of its roster sign in to it), if any
    course_id: str | None = None


@dataclass(frozen=True)
class Course:
    """A teacher's course: a roster of students who sign in with personal codes."""

    id: str
    teacher_id: str
    name: str
    created: float


@dataclass(frozen=True)
class Student:
    """One student on a course's roster. ``id`` is also their participant id in every
    practical of the course, so records of the same student line up across practicals."""

    id: str
    course_id: str
    name: str
    email: str | None = None
    student_number: str | None = None


class StoredRecord(NamedTuple):
    """A room record as stored: its id, kind, wall-clock time and data (realtime.room.Record)."""

    id: str
    kind: str
    at: float
    data: dict[str, Any]


def _session(row: tuple[Any, ...]) -> Session:
    return Session(*row[:8], preview=bool(row[8]), course_id=row[9])


def hash_key(key: str) -> str:
    """Keys are 256-bit random strings, so a plain digest is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_signin_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(SIGNIN_CODE_LENGTH))


def normalise_signin_code(typed: str) -> str | None:
    """The code as stored for what a student typed (any case, spaces or dashes anywhere);
    None when it cannot be a sign-in code at all."""
    code = "".join(ch for ch in typed.upper() if ch not in " -\t")
    if len(code) != SIGNIN_CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


class CourseNotEmpty(Exception):
    """A course with students or practicals is not deleted; the message says what is left."""


class _CodeTaken(Exception):
    """A fresh sign-in or join code is already in use (one in about 10^11): the caller draws another."""


#: errors a write may end with that are the same on every replica (its answer, not a fault of
#: this node's disk): a replica that meets one still counts the entry as applied
_ANSWERS = (CourseNotEmpty, _CodeTaken)

#: the writes, by name: each runs inside one transaction and decides nothing by chance or by
#: the clock (ids, codes and times are chosen by its caller), so every replica of the shared
#: records (server.replica) that applies the same writes in the same order holds the same rows
_WRITES: dict[str, Callable[..., Any]] = {}


def _write_op(fn: Callable[..., T]) -> Callable[..., T]:
    _WRITES[fn.__name__.removeprefix("_w_")] = fn
    return fn


def _draw(attempt: Callable[[], T]) -> T:
    """Run a write that takes a fresh code, drawing again while the code is taken."""
    for _ in range(20):
        try:
            return attempt()
        except _CodeTaken:
            continue
    raise RuntimeError("could not find a free code")


class Store:
    """Users, courses, rosters, practicals and their records (module docstring).

    Embedded (``shared`` None), every write is a transaction on the node's SQLite file. With
    ``shared`` (REDIS_URL), the file is this node's replica of the deployment's records:
    writes go through the shared log in Redis and are applied in its order by every node,
    and reads first catch up with the log (server.replica)."""

    def __init__(self, data_dir: Path, shared: SharedSettings | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "amaliy.sqlite3"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.RLock()
        #: the key sign-in codes are hashed with (``_hash_code``)
        self.code_key = _code_key(data_dir)
        self._migrate()
        self.replica: Replica | None = None
        if shared is not None:
            self.replica = Replica(self, shared)
            try:
                self.replica.start()
            except BaseException:
                self._db.close()
                raise

    def _migrate(self) -> None:
        """Run the schema steps this database has not had yet, each in one transaction."""
        done = self._db.execute("PRAGMA user_version").fetchone()[0]
        if done > SCHEMA_VERSION:
            raise RuntimeError(f"the database has schema version {done}, newer than this server's {SCHEMA_VERSION}; upgrade the server")
        for number, step in enumerate(_MIGRATIONS[done:], start=done + 1):
            try:
                self._db.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {number};\nCOMMIT;")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[None]:
        """Hold the lock and run the block in one transaction: committed, or rolled back if it raises."""
        with self._lock:
            self._db.execute(begin)
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, write: str, /, **args: Any) -> Any:
        """Run one write: here, in one transaction, or through the deployment's shared log."""
        if self.replica is not None:
            return self.replica.submit(write, args)
        with self._transaction():
            return _WRITES[write](self, **args)

    def _fresh(self) -> None:
        """Before a read: catch up with writes other nodes made (shared records only)."""
        if self.replica is not None:
            self.replica.catch_up()

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        if self.replica is not None:
            self.replica.stop()
        self._db.close()

    # ------------------------------------------------------------------ the replica's side (server.replica)

    def apply(self, n: int, name: str, args: dict[str, Any]) -> tuple[bool, Any]:
        """Apply entry ``n`` of the shared log unless this file has it already (another process
        on the same data dir may have applied it): returns (applied, its result, or the
        exception that is its answer, such as CourseNotEmpty). The entry and the replica's
        position commit together, so a crash between two entries applies neither twice nor
        never. A write this server does not know, or a fault of this node (a full disk),
        raises and applies nothing: the replica stops there rather than skip an entry."""
        write = _WRITES.get(name)
        if write is None:
            raise LookupError(f"entry {n} of the shared records is a write this server does not know ({name!r}); upgrade this node")
        with self._transaction("BEGIN IMMEDIATE"):
            if self.replica_state()[1] >= n:
                return False, None
            self._db.execute("SAVEPOINT entry")
            try:
                outcome = write(self, **args)
            except _ANSWERS as exc:
                outcome = exc
                self._db.execute("ROLLBACK TO entry")
            self._db.execute("RELEASE entry")
            self._db.execute("UPDATE replica SET applied = ?", (n,))
            return True, outcome

    def replica_state(self) -> tuple[str | None, int]:
        """(deployment, last entry applied) of the shared log this file replicates; (None, 0) embedded."""
        row = self._db.execute("SELECT deployment, applied FROM replica").fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def set_replica(self, deployment: str, applied: int) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM replica")
            self._db.execute("INSERT INTO replica VALUES (?, ?)", (deployment, applied))

    def has_records(self) -> bool:
        """Whether this file holds anything of its own (a user, a course, a practical)."""
        return any(self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in ("users", "courses", "sessions"))

    def dump(self) -> bytes:
        """The whole database as one SQLite file's bytes, read between writes (a snapshot)."""
        with tempfile.TemporaryDirectory() as folder:
            copy = sqlite3.connect(Path(folder) / "copy.sqlite3")
            with self._lock:
                self._db.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.close()
            return (Path(folder) / "copy.sqlite3").read_bytes()

    def load(self, data: bytes, keep_aside: bool) -> Path | None:
        """Replace the database with a snapshot's bytes; with ``keep_aside``, first copy what was
        here to a file beside it (returned), so nothing this data dir held is lost."""
        aside = None
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "snapshot.sqlite3").write_bytes(data)
            source = sqlite3.connect(Path(folder) / "snapshot.sqlite3")
            with self._lock:
                if keep_aside:
                    aside = self.path.with_name(f"amaliy.before-shared-{time.strftime('%Y%m%d-%H%M%S')}.sqlite3")
                    target = sqlite3.connect(aside)
                    self._db.backup(target)
                    target.close()
                source.backup(self._db)
                source.close()
                self._migrate()
        return aside

    def take_code_key(self, key: bytes, keep_aside: bool = True) -> Path | None:
        """Hash sign-in codes with ``key`` from now on (a deployment's: server.replica); with
        ``keep_aside`` the file's old key is first copied beside it, and that path returned."""
        path = self.path.with_name("codes.key")
        aside = None
        if keep_aside:
            aside = path.with_name(f"codes.before-shared-{time.strftime('%Y%m%d-%H%M%S')}.key")
            shutil.copy2(path, aside)
        fresh = path.with_name("codes.key.new")
        fresh.write_text(key.hex())
        fresh.chmod(0o600)
        os.replace(fresh, path)
        self.code_key = key
        return aside

    # users

    def add_user(self, name: str, role: str = "teacher") -> tuple[User, str]:
        """Create a teacher or designer; returns it with its key (shown once, stored only hashed)."""
        key = "ak_" + secrets.token_urlsafe(32)
        user = User(role[0] + "_" + secrets.token_hex(6), name, role)
        self._write("add_user", id=user.id, name=name, role=role, key_hash=hash_key(key), created=time.time())
        return user, key

    @_write_op
    def _w_add_user(self, id: str, name: str, role: str, key_hash: str, created: float) -> None:
        self._db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)", (id, name, role, key_hash, created))

    def user_by_key(self, key: str) -> User | None:
        self._fresh()
        row = self._db.execute("SELECT id, name, role FROM users WHERE key_hash = ?", (hash_key(key),)).fetchone()
        return User(*row) if row else None

    def users(self, role: str | None = None) -> list[User]:
        self._fresh()
        rows = self._db.execute("SELECT id, name, role FROM users WHERE ? IS NULL OR role = ? ORDER BY created", (role, role))
        return [User(*row) for row in rows]

    # sessions

    def open_session(
        self, teacher_id: str, scene_id: str, scene_version: int, title: str, preview: bool = False, course_id: str | None = None
    ) -> Session:
        """Open a practical with a join code no other open practical uses. A preview's "code"
        is outside the code alphabet and length, so no join request can ever name it."""

        def attempt() -> Session:
            code = "preview-" + secrets.token_hex(8) if preview else new_join_code()
            session = Session("s_" + secrets.token_hex(6), teacher_id, scene_id, scene_version, title, code, "open", time.time(), preview, course_id)
            self._write("open_session", session=asdict(session))
            return session

        return _draw(attempt)

    @_write_op
    def _w_open_session(self, session: dict[str, Any], if_new: bool = False) -> None:
        s = Session(**session)
        try:
            self._db.execute(
                f"INSERT {'OR IGNORE ' if if_new else ''}INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, s.teacher_id, s.scene_id, s.scene_version, s.title, s.join_code, "open", s.created, int(s.preview), s.course_id),
            )
        except sqlite3.IntegrityError as exc:
            if "join_code" not in str(exc):
                raise
            raise _CodeTaken() from None

    def adopt_session(self, session: Session) -> None:
        """Keep a practical another node of the deployment opened, now hosted here (server.cluster);
        known already, it is left as it is."""
        if self.session(session.id) is None:
            self._write("open_session", session=asdict(session), if_new=True)

    def end_session(self, session_id: str) -> None:
        self._write("end_session", id=session_id, at=time.time())

    @_write_op
    def _w_end_session(self, id: str, at: float) -> None:
        self._db.execute("UPDATE sessions SET status = 'ended', ended = ? WHERE id = ? AND status = 'open'", (at, id))

    def session(self, session_id: str) -> Session | None:
        self._fresh()
        row = self._db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _session(row) if row else None

    def session_by_code(self, code: str) -> Session | None:
        self._fresh()
        row = self._db.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE join_code = ? AND status = 'open' AND preview = 0",
            (code.upper(),),
        ).fetchone()
        return _session(row) if row else None

    def sessions(self, teacher_id: str | None = None, status: str | None = None, course_id: str | None = None) -> list[Session]:
        self._fresh()
        query = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE 1=1"
        args: list[str] = []
        if teacher_id is not None:
            query += " AND teacher_id = ?"
            args.append(teacher_id)
        if course_id is not None:
            query += " AND course_id = ?"
            args.append(course_id)
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        return [_session(row) for row in self._db.execute(query + " ORDER BY created", args)]

    # results

    def add_records(self, rows: list[tuple[str, str, str, float, dict[str, Any]]]) -> int:
        """Store room records (session id, record id, kind, wall-clock time, data) in one
        transaction; a (session, record id) already stored is left as it is. Each new record
        is credited to the learners it names in the same transaction (server.learners), so
        XP and badges can never disagree with the stored records, and its xAPI statements are
        queued in it too (server.xapi_outbox). Returns how many were new."""
        return self._write("add_records", rows=[list(row) for row in rows], nonce=secrets.token_hex(16))

    @_write_op
    def _w_add_records(self, rows: list[list[Any]], nonce: str) -> int:
        ledger = learners.Ledger(self._db, nonce)
        new = 0
        for sid, rid, kind, at, data in rows:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO results (session_id, record_id, kind, at, data) VALUES (?, ?, ?, ?, ?)",
                (sid, rid, kind, at, json.dumps(data, separators=(",", ":"))),
            ).rowcount
            if inserted:
                new += 1
                xapi_outbox.enqueue_record(self._db, sid, rid, kind, at, data)
                ledger.credit(sid, kind, at, data)
        return new

    def records(self, session_id: str) -> list[StoredRecord]:
        """A session's records in the order they were stored."""
        self._fresh()
        rows = self._db.execute("SELECT record_id, kind, at, data FROM results WHERE session_id = ? ORDER BY seq", (session_id,))
        return [StoredRecord(rid, kind, at, json.loads(data)) for rid, kind, at, data in rows]

    def set_challenge(self, session_id: str, challenge: dict[str, Any]) -> None:
        """Keep the challenge a session runs (the first one given), so its results read the same
        after the scene version is deleted."""
        self._write("set_challenge", session_id=session_id, challenge=json.dumps(challenge, separators=(",", ":")))

    @_write_op
    def _w_set_challenge(self, session_id: str, challenge: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO result_challenges VALUES (?, ?)", (session_id, challenge))

    def challenge(self, session_id: str) -> dict[str, Any] | None:
        self._fresh()
        row = self._db.execute("SELECT challenge FROM result_challenges WHERE session_id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # courses and rosters

    def add_course(self, teacher_id: str, name: str) -> Course:
        course = Course("c_" + secrets.token_hex(6), teacher_id, name, time.time())
        self._write("add_course", **asdict(course))
        return course

    @_write_op
    def _w_add_course(self, id: str, teacher_id: str, name: str, created: float) -> None:
        self._db.execute("INSERT INTO courses (id, teacher_id, name, created) VALUES (?, ?, ?, ?)", (id, teacher_id, name, created))

    def course(self, course_id: str) -> Course | None:
        self._fresh()
        row = self._db.execute("SELECT id, teacher_id, name, created FROM courses WHERE id = ?", (course_id,)).fetchone()
        return Course(*row) if row else None

    def courses(self, teacher_id: str | None = None) -> list[Course]:
        self._fresh()
        rows = self._db.execute(
            "SELECT id, teacher_id, name, created FROM courses WHERE ? IS NULL OR teacher_id = ? ORDER BY created", (teacher_id, teacher_id)
        )
        return [Course(*row) for row in rows]

    def rename_course(self, course_id: str, name: str) -> None:
        self._write("rename_course", id=course_id, name=name)

    @_write_op
    def _w_rename_course(self, id: str, name: str) -> None:
        self._db.execute("UPDATE courses SET name = ? WHERE id = ?", (name, id))

    def delete_course(self, course_id: str) -> None:
        """Delete a course that has no students and no practicals (CourseNotEmpty otherwise)."""
        self._write("delete_course", id=course_id)

    @_write_op
    def _w_delete_course(self, id: str) -> None:
        students = self._db.execute("SELECT COUNT(*) FROM students WHERE course_id = ?", (id,)).fetchone()[0]
        practicals = self._db.execute("SELECT COUNT(*) FROM sessions WHERE course_id = ?", (id,)).fetchone()[0]
        if students or practicals:
            raise CourseNotEmpty(f"The course still has {students} student(s) and {practicals} practical(s); only an empty course is deleted.")
        self._db.execute("DELETE FROM courses WHERE id = ?", (id,))

    def _hash_code(self, code: str) -> str:
        """Sign-in codes are short, so a plain digest could be reversed by trying every code:
        the hash is keyed with a secret kept beside the database, not in it."""
        return hmac.new(self.code_key, code.encode(), hashlib.sha256).hexdigest()

    def _fresh_code(self) -> tuple[str, str]:
        code = new_signin_code()
        return code, self._hash_code(code)

    def add_students(self, course_id: str, rows: list[tuple[str, str | None, str | None]]) -> list[tuple[Student, str]]:
        """Add (name, email, student number) rows to a course's roster in one transaction, all
        or none; returns each student with their new sign-in code (shown once, stored hashed)."""

        def attempt() -> list[tuple[Student, str]]:
            added = [(Student("st_" + secrets.token_hex(6), course_id, name, email, number), self._fresh_code()) for name, email, number in rows]
            self._write(
                "add_students", course_id=course_id, created=time.time(),
                rows=[[s.id, s.name, s.email, s.student_number, code_hash] for s, (_, code_hash) in added],
            )
            return [(student, code) for student, (code, _) in added]

        return _draw(attempt)

    @_write_op
    def _w_add_students(self, course_id: str, created: float, rows: list[list[Any]]) -> None:
        for sid, name, email, number, code_hash in rows:
            self._code_insert(
                "INSERT INTO students (id, course_id, name, email, student_number, code_hash, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sid, course_id, name, email, number, code_hash, created),
            )

    def _code_insert(self, sql: str, args: tuple[Any, ...]) -> None:
        """Run ``sql`` that stores a code's hash; _CodeTaken if another student has that code."""
        try:
            self._db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            if "code_hash" not in str(exc):
                raise
            raise _CodeTaken() from None

    def rotate_code(self, student_id: str) -> str:
        """A new sign-in code for a student; the old one stops working at once."""

        def attempt() -> str:
            code, code_hash = self._fresh_code()
            self._write("set_codes", codes=[[student_id, code_hash]])
            return code

        return _draw(attempt)

    @_write_op
    def _w_set_codes(self, codes: list[list[str]]) -> None:
        for student_id, code_hash in codes:
            self._code_insert("UPDATE students SET code_hash = ? WHERE id = ?", (code_hash, student_id))

    def students(self, course_id: str) -> list[Student]:
        self._fresh()
        rows = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE course_id = ? ORDER BY created, rowid", (course_id,))
        return [Student(*row) for row in rows]

    def student(self, student_id: str) -> Student | None:
        self._fresh()
        row = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE id = ?", (student_id,)).fetchone()
        return Student(*row) if row else None

    def student_by_code(self, typed: str) -> Student | None:
        code = normalise_signin_code(typed)
        if code is None:
            return None
        self._fresh()
        row = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE code_hash = ?", (self._hash_code(code),)).fetchone()
        return Student(*row) if row else None

    def update_student(self, student_id: str, name: str, email: str | None, number: str | None) -> None:
        self._write("update_student", id=student_id, name=name, email=email, number=number)

    @_write_op
    def _w_update_student(self, id: str, name: str, email: str | None, number: str | None) -> None:
        self._db.execute("UPDATE students SET name = ?, email = ?, student_number = ? WHERE id = ?", (name, email, number, id))

    def remove_student(self, student_id: str) -> None:
        """Take a student off their course's roster: their code stops working, and their XP and
        badges and learner model in the course go with them. Practicals' results keep what they did."""
        self._write("remove_student", id=student_id)

    @_write_op
    def _w_remove_student(self, id: str) -> None:
        for table, column in (("learner_practicals", "student_id"), ("learner_steps", "student_id"), ("badge_awards", "student_id"), ("learner_skills", "student_id"), ("students", "id")):
            self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (id,))

    def rotate_codes(self, course_id: str) -> list[tuple[Student, str]]:
        """New sign-in codes for every student of a course, in one transaction (for a printed sheet)."""

        def attempt() -> list[tuple[Student, str]]:
            fresh = [(student, self._fresh_code()) for student in self.students(course_id)]
            self._write("set_codes", codes=[[student.id, code_hash] for student, (_, code_hash) in fresh])
            return [(student, code) for student, (code, _) in fresh]

        return _draw(attempt)

    # learners: XP, levels, badges (server.learners writes, server.learner_views reads)

    def course_settings(self, course_id: str) -> learners.CourseSettings:
        self._fresh()
        row = self._db.execute("SELECT settings FROM courses WHERE id = ?", (course_id,)).fetchone()
        return learners.settings_of(row[0] if row else "{}")

    def set_course_settings(self, course_id: str, settings: learners.CourseSettings) -> None:
        """Keep new settings and re-scale the course's XP to them in one transaction."""
        self._write("set_course_settings", course_id=course_id, settings=settings.model_dump_json(), at=time.time(), nonce=secrets.token_hex(16))

    @_write_op
    def _w_set_course_settings(self, course_id: str, settings: str, at: float, nonce: str) -> None:
        self._db.execute("UPDATE courses SET settings = ? WHERE id = ?", (settings, course_id))
        learners.rescale(self._db, course_id, learners.settings_of(settings), at, nonce)

    def award(self, award_id: str) -> learners.Award | None:
        self._fresh()
        found = learners.awards(self._db, "id = ?", (award_id,))
        return found[0] if found else None

    def award_of_badge(self, badge_key: str) -> learners.Award | None:
        """Any one award of a badge: what its achievement says (the same for every student)."""
        self._fresh()
        found = learners.awards(self._db, "badge_key = ?", (badge_key,), limit=1)
        return found[0] if found else None

    def skills(self, student_id: str) -> dict[str, tuple[float, int]]:
        """A roster student's learner model, per skill (p_known, opportunities): what a room's
        ``Enter`` brings in, so a practical starts from what earlier ones learned."""
        self._fresh()
        rows = self._db.execute("SELECT skill, p_known, opportunities FROM learner_skills WHERE student_id = ?", (student_id,))
        return {skill: (p, n) for skill, p, n in rows}

    def read(self, view: Callable[..., T], *args: Any) -> T:
        """Run a read-only view (server.learner_views) on the database, between writes, so a
        view of several queries never sees half a batch of records."""
        self._fresh()
        with self._lock:
            return view(self._db, *args)

    # the xAPI outbox's bookkeeping (server.xapi_outbox.Outbox; read there on its own connection)

    def xapi_home(self, home: str | None) -> None:
        """Queue statements under accounts of ``home`` from now on, or (None) queue none. With
        shared records the deployment keeps the first home a node set, and a node without an
        LRS of its own changes nothing, so accounts read the same whichever node queued them."""
        if self.replica is not None and (home is None or self.read(xapi_outbox.home_of) is not None):
            return
        self._write("xapi_home", home=home)

    @_write_op
    def _w_xapi_home(self, home: str | None) -> None:
        xapi_outbox.set_home(self._db, home)

    def xapi_sent(self, seqs: list[int], at: float) -> None:
        self._write("xapi_mark", seqs=seqs, state="sent", at=at, reason=None)

    def xapi_set_aside(self, seq: int, reason: str, at: float) -> None:
        self._write("xapi_mark", seqs=[seq], state="set_aside", at=at, reason=reason)

    @_write_op
    def _w_xapi_mark(self, seqs: list[int], state: str, at: float, reason: str | None) -> None:
        xapi_outbox.mark(self._db, seqs, state, at, reason)

    def xapi_failed(self, seqs: list[int], reason: str, next_try: float) -> None:
        self._write("xapi_failed", seqs=seqs, reason=reason, next_try=next_try)

    @_write_op
    def _w_xapi_failed(self, seqs: list[int], reason: str, next_try: float) -> None:
        xapi_outbox.note_failure(self._db, seqs, reason, next_try)

    def xapi_prune(self, before: float) -> None:
        self._write("xapi_prune", before=before)

    @_write_op
    def _w_xapi_prune(self, before: float) -> None:
        self._db.execute("DELETE FROM xapi_outbox WHERE state = 'sent' AND done < ?", (before,))


def _code_key(data_dir: Path) -> bytes:
    """The key sign-in codes are hashed with, created on first use (owner-readable only)."""
    path = data_dir / "codes.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())
