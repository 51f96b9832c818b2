"""`amaliy scenes new | validate | pack | upload | list` for course designers."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import httpx
from tqdm import tqdm

from scenes.ingest import ingest_zip
from scenes.package import pack_files, read_folder, scaffold
from scenes.report import PackageRejected
from server.config import from_env


def add_parser(sub: Any) -> None:
    scenes = sub.add_parser("scenes", help="create, check and upload scene packages")
    cmds = scenes.add_subparsers(dest="scenes_command", required=True)
    new = cmds.add_parser("new", help="scaffold a package folder to start from")
    new.add_argument("folder")
    validate = cmds.add_parser("validate", help="check a package folder or zip and print a report")
    validate.add_argument("package")
    pack = cmds.add_parser("pack", help="zip a package folder for upload")
    pack.add_argument("folder")
    pack.add_argument("-o", "--output", help="zip to write (default FOLDER.zip)")
    for name, help_text in (("upload", "send a package to a server"), ("list", "list a server's scenes")):
        cmd = cmds.add_parser(name, help=help_text)
        if name == "upload":
            cmd.add_argument("package", help="package folder or zip")
        cmd.add_argument("--url", default=os.environ.get("AMALIY_URL", "http://127.0.0.1:8000"), help="server base URL (env AMALIY_URL)")
        cmd.add_argument("--key", default=os.environ.get("AMALIY_KEY"), help="your designer key (env AMALIY_KEY)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except httpx.HTTPError as exc:  # the server is down, unreachable, or answered something that is not ours
        print(f"Could not reach the server at {getattr(args, 'url', '?')}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


def _detail(response: httpx.Response) -> str:
    """The server's sentence for a refusal, or the start of whatever else answered."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    return str(body.get("detail")) if isinstance(body, dict) else str(body)[:200]


def _run(args: argparse.Namespace) -> int:
    command = args.scenes_command
    if command == "new":
        folder = Path(args.folder)
        package_id = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-_") or "my-lab"
        try:
            scaffold(folder, package_id)
        except FileExistsError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"Created {folder}/ with scene.json and two assets. Next: amaliy scenes validate {folder}")
        return 0
    if command == "pack":
        output = Path(args.output or f"{Path(args.folder).resolve().name}.zip")
        output.write_bytes(_pack(Path(args.folder)))
        print(f"Wrote {output} ({output.stat().st_size} bytes)")
        return 0
    if command == "validate":
        return _validate(Path(args.package))
    if not args.key:
        print("Give your designer key with --key or AMALIY_KEY.", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.key}"}
    if command == "list":
        response = httpx.get(f"{args.url}/api/scenes", headers=headers, timeout=30)
        if response.status_code != 200:
            print(f"{response.status_code}: {_detail(response)}", file=sys.stderr)
            return 1
        for row in response.json():
            print(f"{row['package_id']:<24} v{row['version']:<4} {row['title']}  ({row['stats']['triangles']} triangles, by {row['author']})")
        return 0
    return _upload(Path(args.package), args.url, headers)


def _pack(folder: Path) -> bytes:
    if not (folder / "scene.json").is_file():
        raise SystemExit(f"{folder} has no scene.json (create one with 'amaliy scenes new').")
    files = {}
    for name, data in tqdm(read_folder(folder).items(), desc="packing", unit="file", leave=False):
        files[name] = data
    return pack_files(files)


def _as_zip(package: Path, tmp: Path) -> Path:
    if package.is_dir():
        path = tmp / "package.zip"
        path.write_bytes(_pack(package))
        return path
    if not package.is_file():
        raise SystemExit(f"{package} is neither a package folder nor a zip.")
    return package


def _print_problems(problems: list[dict[str, str]]) -> None:
    print(f"Refused: {len(problems)} problem(s).")
    for problem in problems:
        print(f"  - {problem['where']}: {problem['what']}\n      fix: {problem['fix']}")


def _validate(package: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tqdm(total=1, desc="validating", leave=False, bar_format="{desc} {elapsed}") as bar:
                processed = ingest_zip(_as_zip(package, Path(tmp)), from_env().ingest_limits())
                bar.update()
        except PackageRejected as exc:
            _print_problems(exc.report())
            return 1
        except MemoryError:  # the one error ingest lets through besides its refusals
            print("Could not check the package: it needs more memory than this machine could give.", file=sys.stderr)
            return 2
    stats = processed.stats
    print(f"OK: {processed.manifest.id} '{processed.manifest.title}': {stats['objects']} objects, "
          f"{stats['triangles']} triangles, {stats['materials']} materials, GLB {stats['glb_bytes']} bytes, "
          f"targets {', '.join(processed.manifest.targets)}")
    for note in processed.notes:
        print(f"  note: {note.where}: {note.what}")
    return 0


class _Progress:
    """A file wrapper that advances a progress bar as httpx reads it."""

    def __init__(self, f: IO[bytes], bar: tqdm) -> None:
        self._f = f
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._bar.update(len(data))
        return data


def _upload(package: Path, url: str, headers: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = _as_zip(package, Path(tmp))
        with open(path, "rb") as f, tqdm(total=path.stat().st_size, desc="uploading", unit="B", unit_scale=True, leave=False) as bar:
            files = {"package": (path.name, _Progress(f, bar), "application/zip")}
            response = httpx.post(f"{url}/api/scenes", files=files, headers=headers, timeout=600)
    if response.status_code not in (200, 201):
        problems = response.json().get("problems") if response.status_code == 422 else None
        if problems:
            _print_problems(problems)
        else:
            print(f"{response.status_code}: {_detail(response)}", file=sys.stderr)
        return 1
    body = response.json()
    state = "stored as" if body["created_new_version"] else "identical to stored"
    print(f"{body['package_id']} {state} version {body['version']}: {url}{body['glb_url']}")
    return 0
