"""Unpack an uploaded zip without trusting anything in it.

Every entry is checked before a byte is written: entry count, declared sizes,
compression ratio, names (no absolute paths, '..', backslashes, control
characters or duplicates, even differing only in case) and types (regular files
and folders only: no links, devices or pipes). Then each file is streamed out
while counting real bytes, so an entry that lies about its size is caught too.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scenes.report import PackageRejected, Problem

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 2000
    max_total_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = 256 * 1024 * 1024
    #: uncompressed / compressed, checked for entries over ``ratio_floor_bytes``
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1024 * 1024


def _name_problem(name: str) -> str | None:
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in the path"
    if any(ord(c) < 32 for c in name):
        return "control character in the name"
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts) or "//" in name:
        return "'..' or '.' in the path"
    if len(name) > 255:
        return "path longer than 255 characters"
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
    total = 0
    for info in infos:
        name = info.filename
        reason = _name_problem(name)
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
        total += info.file_size
        if info.file_size > limits.max_file_bytes:
            problems.append(
                Problem(name, f"{info.file_size} bytes uncompressed, over the {limits.max_file_bytes} byte limit per file", "reduce the asset or split it")
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            problems.append(
                Problem(name, f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 is over {limits.max_ratio:g}:1 (a zip bomb?)", "pack real asset files")
            )
    if total > limits.max_total_bytes:
        problems.append(
            Problem("package", f"{total} bytes uncompressed in all, over {limits.max_total_bytes}", "reduce the assets")
        )
    return problems


def unpack(zip_path: Path, dest: Path, limits: ZipLimits) -> list[str]:
    """Check then extract into ``dest``; returns the file names. Raises PackageRejected."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageRejected([Problem("package", f"not a readable zip file: {exc}", "upload a .zip made with 'amaliy scenes pack'")]) from None
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
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise PackageRejected([Problem(info.filename, f"cannot be read: {exc}", "re-create the zip")]) from None
            names.append(info.filename)
        return names
