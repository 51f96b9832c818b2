"""The embedded room log: one SQLite file under the data dir (``rooms.sqlite3``), for one node.

A node that is killed, restarted or loses power comes back with its practicals:
every entry the room acknowledged to a client is in this file (the runner holds
a room's answers until their append returns; realtime.log.journal). WAL with
``synchronous=NORMAL`` survives a killed process whole; a power cut can lose the
last transactions since the OS last flushed, never corrupt the file.

Writes run on one thread of their own, in the order they were asked for, so a
room's ticker never waits on the disk and a room's appends never reorder. The
schema is tiny and versioned with ``PRAGMA user_version``; a file from a newer
version is refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

from realtime.log.backend import Fence, Gap, LogError, Stored

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (room TEXT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
                                    PRIMARY KEY (room, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (room TEXT PRIMARY KEY, covers INTEGER NOT NULL, data BLOB NOT NULL);
"""

T = TypeVar("T")


class EmbeddedLog:
    """Rooms' logs in ``<data dir>/rooms.sqlite3`` (realtime.log.backend.RoomLogBackend)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "rooms.sqlite3"
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amaliy-room-log")
        self._db = self._thread.submit(self._open).result()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise LogError(f"{self.path} was written by a newer Amaliy (room log schema {version}); upgrade this node.")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            try:
                return work(self._db)
            except sqlite3.Error as exc:
                raise LogError(f"room log {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._thread, guarded)

    async def append(
        self, room: str, first: int, entries: list[bytes], snapshot: tuple[int, bytes] | None, fence: Fence | None = None
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                if entries and not (snapshot is not None and snapshot[0] >= first + len(entries) - 1):
                    (last,) = db.execute("SELECT max(n) FROM entries WHERE room = ?", (room,)).fetchone()
                    if last is None:
                        row = db.execute("SELECT covers FROM snapshots WHERE room = ?", (room,)).fetchone()
                        last = -1 if row is None else row[0]
                    if first == last + 1:
                        db.executemany("INSERT INTO entries VALUES (?, ?, ?)", [(room, first + i, e) for i, e in enumerate(entries)])
                    elif not _already_there(db, room, first, entries):
                        raise Gap(f"room {room}: an append of entries {first}… where the log ends at {last}")
                if snapshot is not None:
                    covers, blob = snapshot
                    db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (room, covers, blob))
                    db.execute("DELETE FROM entries WHERE room = ? AND n <= ?", (room, covers))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(write)

    async def load(self, room: str) -> Stored | None:
        def read(db: sqlite3.Connection) -> Stored | None:
            row = db.execute("SELECT covers, data FROM snapshots WHERE room = ?", (room,)).fetchone()
            if row is None:
                return None
            tail = db.execute("SELECT n, data FROM entries WHERE room = ? AND n > ? ORDER BY n", (room, row[0])).fetchall()
            # a value that is not a blob (a hand-edited file) stays for the decoder to refuse, naming it
            return Stored(_blob(row[1]), row[0], [(n, _blob(data)) for n, data in tail])

        return await self._run(read)

    async def rooms(self) -> list[str]:
        """Every room with a log here."""
        return await self._run(lambda db: [r for (r,) in db.execute("SELECT room FROM snapshots ORDER BY room")])

    async def drop(self, room: str, fence: Fence | None = None) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM entries WHERE room = ?", (room,))
            db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
            db.execute("COMMIT")

        await self._run(delete)

    async def size(self, room: str) -> int:
        """Entries kept for a room (what its snapshot does not cover yet)."""
        return await self._run(lambda db: db.execute("SELECT count(*) FROM entries WHERE room = ?", (room,)).fetchone()[0])

    async def close(self) -> None:
        await self._run(lambda db: db.close())
        self._thread.shutdown(wait=True)


def _already_there(db: sqlite3.Connection, room: str, first: int, entries: list[bytes]) -> bool:
    """Whether an append is a retry of one that did land (its reply was lost): the same entries, in place."""
    kept = db.execute("SELECT data FROM entries WHERE room = ? AND n >= ? AND n < ? ORDER BY n", (room, first, first + len(entries)))
    return [_blob(data) for (data,) in kept] == entries


def _blob(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
