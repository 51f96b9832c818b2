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
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple, TypeVar

from server import learners, xapi_outbox

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


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "amaliy.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._code_key = _code_key(data_dir)
        self._migrate()

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
    def _transaction(self) -> Iterator[None]:
        """Hold the lock and run the block in one transaction: committed, or rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    # users

    def add_user(self, name: str, role: str = "teacher") -> tuple[User, str]:
        """Create a teacher or designer; returns it with its key (shown once, stored only hashed)."""
        key = "ak_" + secrets.token_urlsafe(32)
        user = User(role[0] + "_" + secrets.token_hex(6), name, role)
        with self._lock:
            self._db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?)", (user.id, name, role, hash_key(key), time.time())
            )
        return user, key

    def user_by_key(self, key: str) -> User | None:
        row = self._db.execute("SELECT id, name, role FROM users WHERE key_hash = ?", (hash_key(key),)).fetchone()
        return User(*row) if row else None

    def users(self, role: str | None = None) -> list[User]:
        rows = self._db.execute("SELECT id, name, role FROM users WHERE ? IS NULL OR role = ? ORDER BY created", (role, role))
        return [User(*row) for row in rows]

    # sessions

    def open_session(
        self, teacher_id: str, scene_id: str, scene_version: int, title: str, preview: bool = False, course_id: str | None = None
    ) -> Session:
        """Open a practical with a join code no other open practical uses. A preview's "code"
        is outside the code alphabet and length, so no join request can ever name it."""
        with self._lock:
            for _ in range(20):
                code = "preview-" + secrets.token_hex(8) if preview else new_join_code()
                session = Session(
                    "s_" + secrets.token_hex(6), teacher_id, scene_id, scene_version, title, code, "open", time.time(), preview, course_id
                )
                try:
                    self._db.execute(
                        f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (session.id, teacher_id, scene_id, scene_version, title, session.join_code, "open", session.created, int(preview), course_id),
                    )
                    return session
                except sqlite3.IntegrityError:
                    continue
        raise RuntimeError("could not find a free join code")

    def adopt_session(self, session: Session) -> None:
        """Keep a practical another node of the deployment opened, now hosted here (server.cluster);
        known already, it is left as it is."""
        with self._lock:
            self._db.execute(
                f"INSERT OR IGNORE INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.id, session.teacher_id, session.scene_id, session.scene_version, session.title,
                 session.join_code, "open", session.created, int(session.preview), session.course_id),
            )

    def end_session(self, session_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET status = 'ended', ended = ? WHERE id = ? AND status = 'open'",
                (time.time(), session_id),
            )

    def session(self, session_id: str) -> Session | None:
        row = self._db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _session(row) if row else None

    def session_by_code(self, code: str) -> Session | None:
        row = self._db.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE join_code = ? AND status = 'open' AND preview = 0",
            (code.upper(),),
        ).fetchone()
        return _session(row) if row else None

    def sessions(self, teacher_id: str | None = None, status: str | None = None, course_id: str | None = None) -> list[Session]:
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
        with self._transaction():
            ledger = learners.Ledger(self._db)
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
        rows = self._db.execute("SELECT record_id, kind, at, data FROM results WHERE session_id = ? ORDER BY seq", (session_id,))
        return [StoredRecord(rid, kind, at, json.loads(data)) for rid, kind, at, data in rows]

    def set_challenge(self, session_id: str, challenge: dict[str, Any]) -> None:
        """Keep the challenge a session runs (the first one given), so its results read the same
        after the scene version is deleted."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO result_challenges VALUES (?, ?)", (session_id, json.dumps(challenge, separators=(",", ":")))
            )

    def challenge(self, session_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT challenge FROM result_challenges WHERE session_id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # courses and rosters

    def add_course(self, teacher_id: str, name: str) -> Course:
        course = Course("c_" + secrets.token_hex(6), teacher_id, name, time.time())
        with self._lock:
            self._db.execute("INSERT INTO courses (id, teacher_id, name, created) VALUES (?, ?, ?, ?)", (course.id, teacher_id, name, course.created))
        return course

    def course(self, course_id: str) -> Course | None:
        row = self._db.execute("SELECT id, teacher_id, name, created FROM courses WHERE id = ?", (course_id,)).fetchone()
        return Course(*row) if row else None

    def courses(self, teacher_id: str | None = None) -> list[Course]:
        rows = self._db.execute(
            "SELECT id, teacher_id, name, created FROM courses WHERE ? IS NULL OR teacher_id = ? ORDER BY created", (teacher_id, teacher_id)
        )
        return [Course(*row) for row in rows]

    def rename_course(self, course_id: str, name: str) -> None:
        with self._lock:
            self._db.execute("UPDATE courses SET name = ? WHERE id = ?", (name, course_id))

    def delete_course(self, course_id: str) -> None:
        """Delete a course that has no students and no practicals (CourseNotEmpty otherwise)."""
        with self._lock:
            students = self._db.execute("SELECT COUNT(*) FROM students WHERE course_id = ?", (course_id,)).fetchone()[0]
            practicals = self._db.execute("SELECT COUNT(*) FROM sessions WHERE course_id = ?", (course_id,)).fetchone()[0]
            if students or practicals:
                raise CourseNotEmpty(
                    f"The course still has {students} student(s) and {practicals} practical(s); only an empty course is deleted."
                )
            self._db.execute("DELETE FROM courses WHERE id = ?", (course_id,))

    def _hash_code(self, code: str) -> str:
        """Sign-in codes are short, so a plain digest could be reversed by trying every code:
        the hash is keyed with a secret kept beside the database, not in it."""
        return hmac.new(self._code_key, code.encode(), hashlib.sha256).hexdigest()

    def add_students(self, course_id: str, rows: list[tuple[str, str | None, str | None]]) -> list[tuple[Student, str]]:
        """Add (name, email, student number) rows to a course's roster in one transaction, all
        or none; returns each student with their new sign-in code (shown once, stored hashed)."""
        added: list[tuple[Student, str]] = []
        now = time.time()
        with self._transaction():
            for name, email, number in rows:
                student = Student("st_" + secrets.token_hex(6), course_id, name, email, number)
                code = self._insert_code(
                    "INSERT INTO students (id, course_id, name, email, student_number, code_hash, created) VALUES (?, ?, ?, ?, ?, ?, ?)", lambda h: (student.id, course_id, name, email, number, h, now)
                )
                added.append((student, code))
        return added

    def _insert_code(self, sql: str, args: Any) -> str:
        """Run ``sql`` with a fresh code's hash, trying another code if one is taken (caller holds the lock)."""
        for _ in range(20):
            code = new_signin_code()
            try:
                self._db.execute(sql, args(self._hash_code(code)))
                return code
            except sqlite3.IntegrityError as exc:
                if "code_hash" not in str(exc):
                    raise
        raise RuntimeError("could not find a free sign-in code")

    def rotate_code(self, student_id: str) -> str:
        """A new sign-in code for a student; the old one stops working at once."""
        with self._lock:
            return self._insert_code("UPDATE students SET code_hash = ? WHERE id = ?", lambda h: (h, student_id))

    def students(self, course_id: str) -> list[Student]:
        rows = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE course_id = ? ORDER BY created, rowid", (course_id,))
        return [Student(*row) for row in rows]

    def student(self, student_id: str) -> Student | None:
        row = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE id = ?", (student_id,)).fetchone()
        return Student(*row) if row else None

    def student_by_code(self, typed: str) -> Student | None:
        code = normalise_signin_code(typed)
        if code is None:
            return None
        row = self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE code_hash = ?", (self._hash_code(code),)).fetchone()
        return Student(*row) if row else None


    def update_student(self, student_id: str, name: str, email: str | None, number: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE students SET name = ?, email = ?, student_number = ? WHERE id = ?", (name, email, number, student_id))

    def remove_student(self, student_id: str) -> None:
        """Take a student off their course's roster: their code stops working, and their XP and
        badges and learner model in the course go with them. Practicals' results keep what they did."""
        with self._transaction():
            for table, column in (("learner_practicals", "student_id"), ("learner_steps", "student_id"), ("badge_awards", "student_id"), ("learner_skills", "student_id"), ("students", "id")):
                self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (student_id,))

    def rotate_codes(self, course_id: str) -> list[tuple[Student, str]]:
        """New sign-in codes for every student of a course, in one transaction (for a printed sheet)."""
        with self._transaction():
            out = []
            for row in self._db.execute(f"SELECT {_STUDENT_COLUMNS} FROM students WHERE course_id = ? ORDER BY created, rowid", (course_id,)).fetchall():
                student = Student(*row)
                out.append((student, self._insert_code("UPDATE students SET code_hash = ? WHERE id = ?", lambda h, i=student.id: (h, i))))
        return out

    # learners: XP, levels, badges (server.learners writes, server.learner_views reads)

    def course_settings(self, course_id: str) -> learners.CourseSettings:
        row = self._db.execute("SELECT settings FROM courses WHERE id = ?", (course_id,)).fetchone()
        return learners.settings_of(row[0] if row else "{}")

    def set_course_settings(self, course_id: str, settings: learners.CourseSettings) -> None:
        """Keep new settings and re-scale the course's XP to them in one transaction."""
        with self._transaction():
            self._db.execute("UPDATE courses SET settings = ? WHERE id = ?", (settings.model_dump_json(), course_id))
            learners.rescale(self._db, course_id, settings, time.time())

    def award(self, award_id: str) -> learners.Award | None:
        found = learners.awards(self._db, "id = ?", (award_id,))
        return found[0] if found else None

    def award_of_badge(self, badge_key: str) -> learners.Award | None:
        """Any one award of a badge: what its achievement says (the same for every student)."""
        found = learners.awards(self._db, "badge_key = ?", (badge_key,), limit=1)
        return found[0] if found else None

    def skills(self, student_id: str) -> dict[str, tuple[float, int]]:
        """A roster student's learner model, per skill (p_known, opportunities): what a room's
        ``Enter`` brings in, so a practical starts from what earlier ones learned."""
        rows = self._db.execute("SELECT skill, p_known, opportunities FROM learner_skills WHERE student_id = ?", (student_id,))
        return {skill: (p, n) for skill, p, n in rows}

    def read(self, view: Callable[..., T], *args: Any) -> T:
        """Run a read-only view (server.learner_views) on the database, between writes, so a
        view of several queries never sees half a batch of records."""
        with self._lock:
            return view(self._db, *args)


def _code_key(data_dir: Path) -> bytes:
    """The key sign-in codes are hashed with, created on first use (owner-readable only)."""
    path = data_dir / "codes.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())
