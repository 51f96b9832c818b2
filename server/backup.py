"""`amaliy backup` and `amaliy restore`: a whole data dir in one file, taken while the server runs.

What a data dir holds (every file the server writes there):

    amaliy.sqlite3            users, practicals, courses, rosters, results (server.store)
    rooms.sqlite3             the live practicals' room logs and snapshots (realtime.log.embedded)
    secret.key                the token signing secret (server.auth.load_secret)
    codes.key                 the key students' sign-in codes are HMACed with (server.store);
                              without it every code on every roster is useless
    *.key                     any other key kept beside them (issuer.key ...)
    scenes/catalog.sqlite3    the scene versions (scenes.store.SceneStore)
    scenes/blobs/xx/<sha256>  the content-addressed scene blobs, immutable once written

Backup. Every SQLite database (any file that starts with SQLite's header, so a
database added later is covered too) is copied with sqlite3's online backup
API: one read transaction, which a WAL database keeps giving while the server
writes, so the copy is one consistent moment of it. The main database goes
first, then the others, then the blobs, so whatever a snapshot refers to was
still stored when it was copied; a scene version deleted during the backup,
whose blobs are gone, fails the backup ("run it again") rather than leaving a
catalog row without its files. Keys and blobs are copied as they are; every
other regular file too (SQLite's -wal/-shm/-journal files and hidden
temporaries such as a blob being written are left out: the snapshots hold
their content). The archive is a tar.gz with ``manifest.json`` first (format,
time, schema version, each file's name, size and sha256), written under a
temporary name beside the output, owner-readable only, and renamed when
complete, so a failed backup never leaves half a file.

Restore distrusts the archive and checks, in this order: the target is absent
or an empty folder; the archive is a tar.gz whose first member is a
``manifest.json`` of this format, not too large, from a schema no newer than
this server's; each name the manifest lists is a plain relative path (no
absolute path, '..', '.', empty part, backslash or control character, no
duplicates); then each member, before it is written, is a regular file (no
links, devices or folders), named in the manifest, once, of the size the
manifest says; it is extracted with tarfile's ``data`` filter into a hidden
folder inside the target and its sha256 compared with the manifest's; every
file listed must have come. Only then are the files moved into place (keys mode
0600); on any failure the hidden folder is removed and the target is as it was.

Every failure is a BackupError whose message is the one line the operator sees.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterator

from scenes.safe_zip import path_problem
from server.store import SCHEMA_VERSION

FORMAT = "amaliy-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: the main database, and the scene store's blob folder, relative to the data dir
#: (server.store.Store, and scenes.store.SceneStore under ``scenes/``)
MAIN_DB = "amaliy.sqlite3"
BLOBS = "scenes/blobs/"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: SQLite's side files, whose content a snapshot already holds
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is the one line the operator sees."""


@dataclass(frozen=True)
class RestoreLimits:
    #: bytes of manifest.json (about 150 per file listed)
    max_manifest_bytes: int = 32 * 1024 * 1024
    #: a path inside the archive, and one folder or file name in it, in bytes of UTF-8
    max_path_bytes: int = 1024
    max_part_bytes: int = 255


@dataclass(frozen=True)
class Entry:
    """One file of a backup: its name in the archive, where its bytes are read from, size, sha256."""

    name: str
    source: Path
    size: int
    sha256: str


def kind(name: str) -> str:
    """What a file of a data dir is, from its name: database, key, blob or file."""
    if name.endswith(".key"):
        return "key"
    if name.startswith(BLOBS):
        return "blob"
    if name.endswith(".sqlite3"):
        return "database"
    return "file"


def summary(names: list[str]) -> str:
    counts = {k: 0 for k in ("database", "key", "blob", "file")}
    for name in names:
        counts[kind(name)] += 1
    keys = sorted(PurePosixPath(n).name for n in names if kind(n) == "key")
    words = [
        f"{counts['database']} database(s)",
        f"{counts['key']} key(s)" + (f" ({', '.join(keys)})" if keys else ""),
        f"{counts['blob']} scene blob(s)",
    ]
    if counts["file"]:
        words.append(f"{counts['file']} other file(s)")
    return ", ".join(words)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError


# ---------------------------------------------------------------------- backup


def backup(data_dir: Path, out: Path) -> str:
    """Write a backup of ``data_dir`` to ``out`` (a folder: a dated file in it); returns the line to print."""
    data_dir = data_dir.absolute()
    if not (data_dir / MAIN_DB).is_file():
        raise BackupError(f"{data_dir} is no Amaliy data dir (it has no {MAIN_DB}); name the server's with --data-dir or AMALIY_DATA_DIR")
    out = out.absolute()
    if out.is_dir():
        out = out / time.strftime("amaliy-backup-%Y%m%d-%H%M%S.tar.gz")
    if out.parent.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(f"{out} is inside the data dir {data_dir}; write the backup somewhere else")
    if not out.parent.is_dir():
        raise BackupError(f"cannot write {out}: the folder {out.parent} does not exist")
    try:
        fd, part = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    except OSError as exc:
        raise BackupError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as raw, tempfile.TemporaryDirectory(dir=out.parent, prefix=".amaliy-backup-") as tmp:
            entries, schema = _collect(data_dir, Path(tmp))
            _write_archive(raw, entries, schema)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, out)
    except BaseException as exc:
        Path(part).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BackupError(f"cannot write {out}: {exc.strerror or exc}") from None
        raise
    _sync_folder(out.parent)
    names = [e.name for e in entries]
    return f"Wrote {out} ({human_size(out.stat().st_size)}): {summary(names)}; schema version {schema}."


def _collect(data_dir: Path, tmp: Path) -> tuple[list[Entry], int]:
    """Snapshot the databases into ``tmp`` and list every file of the backup, hashed."""
    files = sorted(_data_files(data_dir))
    databases = [n for n, p in files if kind(n) != "blob" and _is_sqlite(p)]  # a blob is bytes, whatever they are
    databases.sort(key=lambda n: (n != MAIN_DB, n))  # the main database first, then the others
    sides = {d + s for d in databases for s in _SIDE_SUFFIXES}
    entries: list[Entry] = []
    schema = 0
    snapshots: dict[str, Path] = {}
    for number, name in enumerate(databases):
        copy = tmp / f"{number}.sqlite3"
        version = _snapshot(data_dir / name, copy, name)
        if name == MAIN_DB:
            schema = version
        snapshots[name] = copy
        entries.append(Entry(name, copy, copy.stat().st_size, _sha256(copy)))
    for name, path in files:
        if name in snapshots or name in sides:
            continue
        try:
            entries.append(Entry(name, path, path.stat().st_size, _sha256(path)))
        except FileNotFoundError:
            continue  # removed meanwhile (an unused blob of a deleted version): not part of this moment
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    catalog = snapshots.get("scenes/catalog.sqlite3")
    if catalog is not None:
        stored = {PurePosixPath(e.name).name for e in entries if kind(e.name) == "blob"}
        missing = _catalog_blobs(catalog) - stored
        if missing:
            raise BackupError(
                f"{len(missing)} blob(s) of stored scene versions vanished during the backup (a version was deleted meanwhile); run the backup again"
            )
    return entries, schema


def _data_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """(name, path) of each regular file under the data dir, hidden temporaries and links aside."""
    def fail(exc: OSError) -> None:
        raise BackupError(f"cannot read {exc.filename}: {exc.strerror or exc}")

    for folder, subfolders, names in os.walk(data_dir, onerror=fail):
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]
        for file_name in names:
            path = Path(folder, file_name)
            try:
                if file_name.startswith(".") or not stat.S_ISREG(path.lstat().st_mode):
                    continue
            except FileNotFoundError:
                continue
            yield path.relative_to(data_dir).as_posix(), path


def _is_sqlite(path: Path) -> bool:
    if path.name.endswith(_SIDE_SUFFIXES):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def _snapshot(source: Path, copy: Path, name: str) -> int:
    """A consistent copy of a live database (online backup API), self-contained; returns its user_version."""
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)  # all pages in one step: one read transaction, one moment
                dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
                return int(dst.execute("PRAGMA user_version").fetchone()[0])
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {name}: {exc}") from None


def _catalog_blobs(catalog: Path) -> set[str]:
    """The blobs the stored scene versions of a catalog snapshot need."""
    db = sqlite3.connect(catalog)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(versions)")}
        # the phone variant's column came later: a catalog from before it has none to check
        phone = ", phone_sha" if "phone_sha" in columns else ""
        rows = db.execute(f"SELECT package_sha, glb_sha, server_sha, manifest_sha{phone} FROM versions WHERE status = 'ready'").fetchall()
    except sqlite3.Error:
        return set()  # no catalog table yet: no scene stored
    finally:
        db.close()
    return {sha for row in rows for sha in row if sha}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Hashing(io.RawIOBase):
    """A file read through a sha256, for checking that it did not change since it was listed."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, 0o600, int(time.time()), tarfile.REGTYPE
    return info


def _write_archive(raw: IO[bytes], entries: list[Entry], schema: int) -> None:
    now = time.time()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "schema_version": schema,
        "files": [{"name": e.name, "kind": kind(e.name), "size": e.size, "sha256": e.sha256} for e in entries],
    }
    encoded = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
    with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member(MANIFEST, len(encoded)), io.BytesIO(encoded))
        for entry in entries:
            try:
                f = open(entry.source, "rb")
            except FileNotFoundError:
                raise BackupError(f"{entry.name} was removed during the backup; run the backup again") from None
            with f:
                hashing = _Hashing(f)
                try:
                    tar.addfile(_member(entry.name, entry.size), hashing)
                except OSError:
                    if hashing.count < entry.size:  # it shrank under us
                        raise BackupError(f"{entry.name} changed during the backup; run the backup again") from None
                    raise
            if hashing.digest.hexdigest() != entry.sha256:
                raise BackupError(f"{entry.name} changed during the backup; run the backup again")


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- restore


def restore(archive: Path, data_dir: Path, limits: RestoreLimits = RestoreLimits()) -> str:
    """Restore a backup into an absent or empty ``data_dir``; returns the line to print."""
    data_dir = data_dir.absolute()
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a folder; restore into an empty or new folder")
    try:
        if data_dir.is_dir() and any(data_dir.iterdir()):
            raise BackupError(f"{data_dir} is not empty; restore only into an empty or new folder, so no data dir is mixed with another or overwritten")
        if not archive.is_file():
            raise BackupError(f"no backup at {archive}")
        with open(archive, "rb"):
            pass
    except OSError as exc:
        raise BackupError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=".amaliy-restore-"))
    except OSError as exc:
        raise BackupError(f"cannot write {data_dir}: {exc.strerror or exc}") from None
    try:
        manifest = _unpack(archive, staging, limits)
        for name in manifest["names"]:
            if kind(name) == "key":
                os.chmod(staging / name, 0o600)
        _check_database(staging / MAIN_DB, manifest["schema_version"])
        for child in staging.iterdir():
            os.rename(child, data_dir / child.name)
        staging.rmdir()
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
            raise BackupError(f"cannot write {data_dir}: {exc.strerror or exc}") from None
        raise
    return (
        f"Restored {archive} (made {manifest['created']}, schema version {manifest['schema_version']}) into {data_dir}: "
        f"{summary(manifest['names'])}. Start the server with --data-dir {data_dir}."
    )


def _damaged(archive: Path, why: str) -> BackupError:
    return BackupError(f"{archive} is not a usable Amaliy backup: {why}")


def _unpack(archive: Path, staging: Path, limits: RestoreLimits) -> dict[str, Any]:
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error):
        raise _damaged(archive, "it is not a tar.gz archive") from None
    try:
        with tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isreg():
                raise _damaged(archive, f"it does not start with {MANIFEST} (is it a backup made by 'amaliy backup'?)")
            if first.size > limits.max_manifest_bytes:
                raise _damaged(archive, f"its {MANIFEST} is larger than {limits.max_manifest_bytes} bytes")
            manifest = _read_manifest(archive, tar.extractfile(first), limits)  # type: ignore[arg-type]
            expected: dict[str, dict[str, Any]] = {f["name"]: f for f in manifest["files"]}
            seen: set[str] = set()
            while (member := tar.next()) is not None:
                listed = expected.get(member.name)
                if listed is None:
                    raise _damaged(archive, f"it holds {member.name!r}, which its manifest does not list")
                if member.name in seen:
                    raise _damaged(archive, f"it holds {member.name!r} twice")
                if not member.isreg():
                    raise _damaged(archive, f"{member.name!r} is not a regular file (links, devices and folders are refused)")
                if member.size != listed["size"]:
                    raise _damaged(archive, f"{member.name} has {member.size} bytes, its manifest says {listed['size']}")
                tar.extract(member, staging, set_attrs=False, filter="data")
                if _sha256(staging / member.name) != listed["sha256"]:
                    raise _damaged(archive, f"{member.name} does not match its sha256 in the manifest (the file was damaged or changed)")
                seen.add(member.name)
            missing = sorted(set(expected) - seen)
            if missing:
                raise _damaged(archive, f"{len(missing)} file(s) its manifest lists are missing, {missing[0]} first (is it cut short?)")
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _damaged(archive, f"it is damaged ({exc or type(exc).__name__})") from None
    return {**manifest, "names": [f["name"] for f in manifest["files"]]}


def _read_manifest(archive: Path, f: IO[bytes], limits: RestoreLimits) -> dict[str, Any]:
    try:
        manifest = json.loads(f.read(limits.max_manifest_bytes + 1))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _damaged(archive, f"its {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _damaged(archive, f"its {MANIFEST} is not that of an Amaliy backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _damaged(archive, f"it has backup format {manifest.get('format_version')!r}; this server reads format {FORMAT_VERSION}")
    schema = manifest.get("schema_version")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
        raise _damaged(archive, "its manifest has no schema version")
    if schema > SCHEMA_VERSION:
        raise BackupError(f"{archive} holds schema version {schema}, newer than this server's {SCHEMA_VERSION}; restore it with a newer Amaliy")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise _damaged(archive, "its manifest has no file list")
    names: set[str] = set()
    for item in files:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("size"), int) and not isinstance(item["size"], bool) and item["size"] >= 0
            and isinstance(item.get("sha256"), str) and len(item["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in item["sha256"])
        ):
            raise _damaged(archive, "its manifest lists a file without a name, size and sha256")
        problem = _name_problem(item["name"], limits)
        if problem is not None:
            raise _damaged(archive, f"its manifest lists {item['name']!r} ({problem})")
        if item["name"].casefold() in names:
            raise _damaged(archive, f"its manifest lists {item['name']!r} twice")
        names.add(item["name"].casefold())
    listed = {item["name"] for item in files}
    clash = next((n for n in listed if any("/".join(n.split("/")[:i]) in listed for i in range(1, n.count("/") + 1))), None)
    if clash is not None:
        raise _damaged(archive, f"its manifest lists {clash!r} and a file where one of its folders would be")
    if MAIN_DB not in listed:
        raise _damaged(archive, f"it has no {MAIN_DB}")
    if not isinstance(manifest.get("created"), str):
        manifest["created"] = "at an unknown time"
    return manifest


def _name_problem(name: str, limits: RestoreLimits) -> str | None:
    """scenes.safe_zip's path check, plus what only a backup refuses: a folder entry, the manifest's name."""
    if name.endswith("/"):
        return "a folder, not a file"
    if name == MANIFEST:
        return "the manifest's own name"
    return path_problem(name, limits.max_path_bytes, limits.max_part_bytes)


def _check_database(path: Path, schema: int) -> None:
    """The restored main database opens and has the schema version its manifest says."""
    try:
        db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        try:
            found = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the restored {MAIN_DB} does not open as a database ({exc})") from None
    if found != schema:
        raise BackupError(f"the restored {MAIN_DB} has schema version {found}, its manifest says {schema}")
