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
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

#: Join-code alphabet: no 0/O, 1/I/L, so codes read aloud or copied from a board survive.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6

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
)
SCHEMA_VERSION = len(_MIGRATIONS)

_SESSION_COLUMNS = "id, teacher_id, scene_id, scene_version, title, join_code, status, created, preview"


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


class StoredRecord(NamedTuple):
    """A room record as stored: its id, kind, wall-clock time and data (realtime.room.Record)."""

    id: str
    kind: str
    at: float
    data: dict[str, Any]


def _session(row: tuple[Any, ...]) -> Session:
    return Session(*row[:8], preview=bool(row[8]))


def hash_key(key: str) -> str:
    """Keys are 256-bit random strings, so a plain digest is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "amaliy.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
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

    def open_session(self, teacher_id: str, scene_id: str, scene_version: int, title: str, preview: bool = False) -> Session:
        """Open a practical with a join code no other open practical uses. A preview's "code"
        is outside the code alphabet and length, so no join request can ever name it."""
        with self._lock:
            for _ in range(20):
                code = "preview-" + secrets.token_hex(8) if preview else new_join_code()
                session = Session(
                    "s_" + secrets.token_hex(6), teacher_id, scene_id, scene_version, title, code, "open", time.time(), preview
                )
                try:
                    self._db.execute(
                        f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (session.id, teacher_id, scene_id, scene_version, title, session.join_code, "open", session.created, int(preview)),
                    )
                    return session
                except sqlite3.IntegrityError:
                    continue
        raise RuntimeError("could not find a free join code")

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

    def sessions(self, teacher_id: str | None = None, status: str | None = None) -> list[Session]:
        query = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE 1=1"
        args: list[str] = []
        if teacher_id is not None:
            query += " AND teacher_id = ?"
            args.append(teacher_id)
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        return [_session(row) for row in self._db.execute(query + " ORDER BY created", args)]

    # results

    def add_records(self, rows: list[tuple[str, str, str, float, dict[str, Any]]]) -> int:
        """Store room records (session id, record id, kind, wall-clock time, data) in one
        transaction; a (session, record id) already stored is left as it is. Returns how many were new."""
        encoded = [(sid, rid, kind, at, json.dumps(data, separators=(",", ":"))) for sid, rid, kind, at, data in rows]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO results (session_id, record_id, kind, at, data) VALUES (?, ?, ?, ?, ?)", encoded
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

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
