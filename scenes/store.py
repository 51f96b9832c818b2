"""The scene store: content-addressed blobs and a versioned catalog.

Blobs (the uploaded zip, the client GLB, the server's processed JSON, the
manifest, and the client GLB's phone variant) are files named by their sha256,
written atomically, so the same bytes are kept once however often they are
uploaded. A version catalogued before phone variants were made has none
(``phone_sha`` empty): phones load its client GLB. The catalog (SQLite next
to the blobs) maps (package id, version) to those blobs. Versions are immutable
and numbered from 1 per package; ``latest`` is the highest. Uploading a package
identical to a stored version returns that version instead of adding one. A
deleted version keeps its catalog row (status ``deleted``, blobs removed), so its
number is never given to other content: a cached GLB address stays truthful.

Storing is split in two so that nothing whose cost grows with the upload runs
where rooms tick: ``stage`` (hash the package, serialise and write the blobs)
runs in the ingest worker process and returns a small ``Staged`` record;
``SceneStore.add`` then only writes the catalog row.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Callable

from scenes.ingest import Processed
from scenes.report import Problem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    package_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    author TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    package_sha TEXT NOT NULL,
    glb_sha TEXT NOT NULL,
    server_sha TEXT NOT NULL,
    manifest_sha TEXT NOT NULL,
    stats TEXT NOT NULL,
    phone_sha TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (package_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_content ON versions(package_id, package_sha) WHERE status = 'ready';
"""
#: highest version number: what SQLite's integers hold, far past any real package's history
MAX_VERSION = 2**31 - 1
_COLUMNS = "package_id, version, title, author, created, status, package_sha, glb_sha, server_sha, manifest_sha, stats, phone_sha"
_INSERT = f"INSERT INTO versions ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"
#: a catalog made before phone variants gains their column (its versions have none)
_ADD_PHONE = "ALTER TABLE versions ADD COLUMN phone_sha TEXT NOT NULL DEFAULT ''"


@dataclass(frozen=True)
class SceneVersion:
    package_id: str
    version: int
    title: str
    author: str
    created: float
    status: str
    package_sha: str
    glb_sha: str
    server_sha: str
    manifest_sha: str
    stats: dict[str, int]
    #: the client GLB's phone variant; "" for a version stored before variants were made
    phone_sha: str = ""

    def public(self) -> dict[str, Any]:
        return asdict(self)

    def blobs(self) -> tuple[str, ...]:
        """Every blob the version needs."""
        return (self.package_sha, self.glb_sha, self.server_sha, self.manifest_sha, *((self.phone_sha,) if self.phone_sha else ()))

    def _values(self) -> tuple[Any, ...]:
        values = asdict(self)
        values["stats"] = json.dumps(self.stats)
        return tuple(values.values())


@dataclass(frozen=True)
class Staged:
    """A processed package whose blobs are written: what the catalog row needs, and the notes."""

    package_id: str
    title: str
    package_sha: str
    glb_sha: str
    server_sha: str
    manifest_sha: str
    stats: dict[str, int]
    notes: list[Problem]
    phone_sha: str = ""

    def blobs(self) -> tuple[str, ...]:
        return (self.package_sha, self.glb_sha, self.server_sha, self.manifest_sha, *((self.phone_sha,) if self.phone_sha else ()))


class StaleStage(Exception):
    """A staged blob vanished before its row was written (a version sharing it was deleted meanwhile)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Blobs:
    """Files named by the sha256 of their bytes, under one folder; safe to write from several processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.folder / sha[:2] / sha

    def _put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self._write(sha, lambda out: out.write(data))
        return sha

    def _put_file(self, path: Path, sha: str) -> None:
        def copy(out: IO[bytes]) -> None:
            with open(path, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)

        self._write(sha, copy)

    def _write(self, sha: str, fill: Callable[[IO[bytes]], Any]) -> None:
        """Write a blob under a temporary name, then rename: readers never see half a blob."""
        target = self.path(sha)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def read(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def stage(self, processed: Processed, package_path: Path) -> Staged:
        """Write a processed package's blobs (the zip, the GLB, the server data, the manifest, the phone variant)."""
        package_sha = sha256_file(package_path)
        self._put_file(package_path, package_sha)
        return Staged(
            processed.manifest.id,
            processed.manifest.title,
            package_sha,
            self._put(processed.glb),
            self._put(json.dumps(processed.server, separators=(",", ":")).encode()),
            self._put(processed.manifest.model_dump_json().encode()),
            processed.stats,
            processed.notes,
            self._put(processed.glb_phone) if processed.glb_phone is not None else "",
        )


class SceneStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = Blobs(root / "blobs")
        self._db = sqlite3.connect(root / "catalog.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        if "phone_sha" not in {column[1] for column in self._db.execute("PRAGMA table_info(versions)")}:
            self._db.execute(_ADD_PHONE)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def blob_path(self, sha: str) -> Path:
        return self.blobs.path(sha)

    # ------------------------------------------------------------------ catalog

    def add(self, staged: Staged, author: str, number: Callable[[int], int] | None = None) -> tuple[SceneVersion, bool]:
        """Catalog a staged package; returns its version and whether it is new.

        A new version is numbered after the highest here, or by ``number`` (given that
        highest: a deployment's numbering, server.shared_scenes, so two nodes never give
        one number to two contents). Raises StaleStage if a blob it shares was removed
        after staging (by a concurrent delete): the upload is to be tried again.
        """
        package_id = staged.package_id
        with self._lock:
            existing = self._row("WHERE package_id = ? AND package_sha = ? AND status = 'ready'", (package_id, staged.package_sha))
            if existing is not None:
                return existing, False
            if not all(self.blob_path(sha).is_file() for sha in staged.blobs()):
                raise StaleStage(package_id)
            (latest,) = self._db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM versions WHERE package_id = ?", (package_id,)
            ).fetchone()
            row = SceneVersion(
                package_id, number(latest) if number else latest + 1, staged.title, author, time.time(), "ready",
                staged.package_sha, staged.glb_sha, staged.server_sha, staged.manifest_sha, staged.stats, staged.phone_sha,
            )
            self._db.execute(_INSERT, row._values())
        return row, True

    def import_version(self, row: SceneVersion, blobs: dict[str, bytes]) -> bool:
        """Keep a version another node catalogued (server.shared_scenes), under its number and with
        its blobs; False, changing nothing, if this catalog has that number already."""
        if self._db.execute("SELECT 1 FROM versions WHERE package_id = ? AND version = ?", (row.package_id, row.version)).fetchone():
            return False
        for sha, data in blobs.items():
            if hashlib.sha256(data).hexdigest() != sha:
                raise ValueError(f"blob {sha} of {row.package_id} version {row.version} does not match its hash")
            self.blobs._write(sha, lambda out, data=data: out.write(data))
        with self._lock:
            if self._db.execute("SELECT 1 FROM versions WHERE package_id = ? AND version = ?", (row.package_id, row.version)).fetchone():
                return False
            try:
                self._db.execute(_INSERT, row._values())
            except sqlite3.IntegrityError:  # the same content is here under another number: keep that one
                return False
        return True

    def get(self, package_id: str, version: int | None = None) -> SceneVersion | None:
        """A version, or the latest when ``version`` is None."""
        if version is None:
            return self._row("WHERE package_id = ? AND status = 'ready' ORDER BY version DESC LIMIT 1", (package_id,))
        return self._row("WHERE package_id = ? AND version = ? AND status = 'ready'", (package_id, version))

    def versions(self, package_id: str) -> list[SceneVersion]:
        return self._rows("WHERE package_id = ? AND status = 'ready' ORDER BY version", (package_id,))

    def all_ready(self) -> list[SceneVersion]:
        """Every version that can be opened, of every package."""
        return self._rows("WHERE status = 'ready' ORDER BY package_id, version", ())

    def latest_all(self) -> list[SceneVersion]:
        return self._rows(
            "WHERE status = 'ready' AND version = (SELECT MAX(version) FROM versions v "
            "WHERE v.package_id = versions.package_id AND v.status = 'ready') ORDER BY package_id",
            (),
        )

    def delete(self, package_id: str, version: int) -> bool:
        """Retire a version and remove the blobs no other stored version uses."""
        with self._lock:
            row = self.get(package_id, version)
            if row is None:
                return False
            self._db.execute("UPDATE versions SET status = 'deleted' WHERE package_id = ? AND version = ?", (package_id, version))
            for sha in row.blobs():
                used = self._db.execute(
                    "SELECT 1 FROM versions WHERE status = 'ready' AND ? IN (package_sha, glb_sha, server_sha, manifest_sha, phone_sha) LIMIT 1",
                    (sha,),
                ).fetchone()
                if used is None:
                    self.blob_path(sha).unlink(missing_ok=True)
        return True

    def server_data(self, row: SceneVersion) -> dict[str, Any]:
        return json.loads(self.blobs.read(row.server_sha))

    def _row(self, where: str, args: tuple[Any, ...]) -> SceneVersion | None:
        rows = self._rows(where, args)
        return rows[0] if rows else None

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[SceneVersion]:
        out = []
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM versions {where}", args):
            *head, stats, phone_sha = row
            out.append(SceneVersion(*head, stats=json.loads(stats), phone_sha=phone_sha))
        return out
