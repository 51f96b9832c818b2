"""Embedded persistence: users (teachers, designers) and sessions in SQLite under the data dir.

Small and synchronous on purpose: these are rare, tiny writes (opening a
practical, adding a teacher), never on the realtime path.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: Join-code alphabet: no 0/O, 1/I/L, so codes read aloud or copied from a board survive.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6

_SCHEMA = """
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
"""


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
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

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

    def open_session(self, teacher_id: str, scene_id: str, scene_version: int, title: str) -> Session:
        """Open a practical with a join code no other open practical uses."""
        with self._lock:
            for _ in range(20):
                session = Session(
                    "s_" + secrets.token_hex(6), teacher_id, scene_id, scene_version, title, new_join_code(), "open", time.time()
                )
                try:
                    self._db.execute(
                        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                        (session.id, teacher_id, scene_id, scene_version, title, session.join_code, "open", session.created),
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
        row = self._db.execute(
            "SELECT id, teacher_id, scene_id, scene_version, title, join_code, status, created FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        return Session(*row) if row else None

    def session_by_code(self, code: str) -> Session | None:
        row = self._db.execute(
            "SELECT id, teacher_id, scene_id, scene_version, title, join_code, status, created FROM sessions "
            "WHERE join_code = ? AND status = 'open'",
            (code.upper(),),
        ).fetchone()
        return Session(*row) if row else None

    def sessions(self, teacher_id: str | None = None, status: str | None = None) -> list[Session]:
        query = "SELECT id, teacher_id, scene_id, scene_version, title, join_code, status, created FROM sessions WHERE 1=1"
        args: list[str] = []
        if teacher_id is not None:
            query += " AND teacher_id = ?"
            args.append(teacher_id)
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        return [Session(*row) for row in self._db.execute(query + " ORDER BY created", args)]
