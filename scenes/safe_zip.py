"""Unpack an uploaded zip without trusting anything in it.

Every entry is checked before a byte is written, in this order: entry count;
names (no absolute paths, '..', '.', empty folder names, backslashes, control
characters, a part over 255 bytes of UTF-8, which no file system can hold, or
duplicates, even differing only in case; no name that is both a file and a
folder); types (regular files and folders only: no links, devices or pipes);
declared sizes per file and in all; and the compression ratio, per entry and
for the whole archive, so a thousand small entries of zeros cannot expand under
the per-entry floor. Then each file is streamed out while counting real bytes,
so an entry that lies about its size is caught too. No message names the
folder it is unpacked into, or an errno: the designer sees the entry's name.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scenes.plain_words import plain_words
from scenes.report import PackageRejected, Problem

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 2000
    #: bytes written to disk in all, however well the archive compresses
    max_total_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = 256 * 1024 * 1024
    #: uncompressed / compressed, checked for entries over ``ratio_floor_bytes``
    #: and for the whole archive once it holds more than that in all
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1024 * 1024
    #: a path inside the package, and one folder or file name in it, in bytes of UTF-8
    max_path_bytes: int = 1024
    max_part_bytes: int = 255


def path_problem(name: str, max_path_bytes: int, max_part_bytes: int) -> str | None:
    """Why an archive member's name is unsafe to extract under a folder (absolute, a drive,
    backslashes, control characters, empty, '.' or '..' parts, too long), or None. The one
    such check, shared by scene packages and server.backup's restore."""
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in the path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "control character in the name"
    if "//" in name:
        return "empty folder name ('//') in the path"
    if any(part in ("..", ".") for part in PurePosixPath(name).parts):
        return "'..' or '.' in the path"
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > max_path_bytes:
        return f"path longer than {max_path_bytes} bytes"
    if any(len(part) > max_part_bytes for part in encoded.rstrip(b"/").split(b"/")):
        return f"a folder or file name longer than {max_part_bytes} bytes (UTF-8)"
    return None


def check(archive: zipfile.ZipFile, limits: ZipLimits) -> list[Problem]:
    """Every problem with the archive's entries, before anything is extracted."""
    problems: list[Problem] = []
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        problems.append(
            Problem("package", f"{len(infos)} entries, more than {limits.max_entries}", "pack only the files the lab needs")
        )
        return problems
    seen: set[str] = set()
    files: dict[str, str] = {}
    total = 0
    compressed = 0
    for info in infos:
        name = info.filename
        reason = path_problem(name, limits.max_path_bytes, limits.max_part_bytes)
        if reason:
            problems.append(Problem(name or "(empty name)", f"unsafe entry name: {reason}", "use relative paths inside the package folder"))
            continue
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file (device, pipe or socket)"
            problems.append(Problem(name, f"entry is {what}", "replace it with the real file"))
            continue
        if info.flag_bits & 0x1:
            problems.append(Problem(name, "entry is encrypted", "pack without a password"))
            continue
        key = name.rstrip("/").lower()
        if key in seen:
            problems.append(Problem(name, "duplicate entry name (names are compared ignoring case)", "keep one file per name"))
            continue
        seen.add(key)
        if info.is_dir():
            continue
        files[key] = name
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > limits.max_file_bytes:
            problems.append(
                Problem(name, f"{info.file_size} bytes uncompressed, over the {limits.max_file_bytes} byte limit per file", "reduce the asset or split it")
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            problems.append(
                Problem(name, f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 is over {limits.max_ratio:g}:1 (a zip bomb?)", "pack real asset files")
            )
    problems += _file_folder_clashes(files)
    if total > limits.max_total_bytes:
        problems.append(
            Problem("package", f"{total} bytes uncompressed in all, over {limits.max_total_bytes}", "reduce the assets")
        )
    elif total > limits.ratio_floor_bytes and total > limits.max_ratio * max(compressed, 1):
        problems.append(
            Problem(
                "package",
                f"{total} bytes uncompressed from {compressed} compressed, a ratio of {total / max(compressed, 1):.0f}:1 "
                f"over {limits.max_ratio:g}:1 (a zip bomb?)",
                "pack real asset files",
            )
        )
    return problems


def _file_folder_clashes(files: dict[str, str]) -> list[Problem]:
    """Names used both as a file and as a folder ('a' and 'a/b'): one of them cannot be written."""
    problems = []
    for key, name in files.items():
        parts = key.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in files:
                problems.append(Problem(name, f"is inside {files[folder]!r}, which is also a file", "rename the file or the folder"))
                break
    return problems


def unpack(zip_path: Path, dest: Path, limits: ZipLimits) -> list[str]:
    """Check then extract into ``dest``; returns the file names. Raises PackageRejected."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        reason = plain_words(exc, zip_path.parent)
        raise PackageRejected([Problem("package", f"not a readable zip file: {reason}", "upload a .zip made with 'amaliy scenes pack'")]) from None
    with archive:
        problems = check(archive, limits)
        if problems:
            raise PackageRejected(problems)
        names: list[str] = []
        total = 0
        for info in archive.infolist():
            target = dest / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with archive.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size or written > limits.max_file_bytes or total > limits.max_total_bytes:
                            raise PackageRejected([Problem(info.filename, "entry holds more data than its header declares", "re-create the zip")])
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
                raise PackageRejected([Problem(info.filename, f"cannot be read: {exc}", "re-create the zip")]) from None
            except OSError as exc:  # the message would name our folder: say what it means instead
                raise PackageRejected([Problem(info.filename, f"cannot be unpacked ({plain_words(exc, dest)})", "re-create the zip")]) from None
            names.append(info.filename)
        return names
