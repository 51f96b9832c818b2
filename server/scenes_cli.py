"""`amaliy scenes new | validate | pack | upload | list` for course designers.

Talking to a server, every way it can go wrong (nothing listening, an unknown
host, no answer in time, a refused key, a path that is not Amaliy's API, an
answer that is not Amaliy's JSON) ends in one line on stderr, `amaliy: ...`,
naming the address and what to check, and exit status 1: never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import httpx
from tqdm import tqdm

from scenes.manifest import UNIT_METRES
from scenes.package import pack_files, read_folder, scaffold
from scenes.report import PackageRejected
from server.config import from_env
from server.package_check import ingest_package

#: the units of scenes.manifest.UNIT_METRES in words, for what `scenes new` prints
_UNIT_NAMES = {"m": "metres", "cm": "centimetres", "mm": "millimetres", "in": "inches", "ft": "feet"}


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


#: seconds to wait for a connection, for an answer to a listing, and for an upload to be checked and stored
CONNECT_TIMEOUT = 10.0
ANSWER_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 600.0
_CHECK_URL = "check --url / AMALIY_URL"
_CHECK_KEY = "check --key / AMALIY_KEY"


class ServerTrouble(Exception):
    """The server could not be used; the message is the one line the designer sees."""


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ServerTrouble as exc:
        print(f"amaliy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while waiting for the server
        print("amaliy: interrupted", file=sys.stderr)
        return 130


def _request(method: str, url: str, path: str, key: str, timeout: float, **kwargs: Any) -> httpx.Response:
    """One request to the server at ``url``; a failure to get an answer becomes ServerTrouble."""
    try:
        return httpx.request(
            method, url + path, headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT), **kwargs
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ServerTrouble(_no_answer(url, exc, timeout)) from None


def _no_answer(url: str, exc: Exception, timeout: float) -> str:
    """Why no answer came from ``url``, in one sentence with what to check."""
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"{url!r} is not a server address like http://10.0.0.5:8000 ({exc}); {_CHECK_URL}"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot reach {url} (no answer within {CONNECT_TIMEOUT:g} s); is the address right and the server running? {_CHECK_URL}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer within {timeout:g} s; the server may be busy: try again, or ask its administrator"
    if isinstance(exc, httpx.ConnectError):
        cause = _os_error(exc)
        if isinstance(cause, socket.gaierror):
            return f"cannot reach {url} (unknown host {httpx.URL(url).host!r}); {_CHECK_URL}"
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot reach {url} (connection refused); is the server running? {_CHECK_URL}"
        if isinstance(cause, ssl.SSLError):
            return f"cannot reach {url} (the secure connection failed: {cause.reason or cause}); if the server has no https, use http://; {_CHECK_URL}"
        reason = cause.strerror if cause is not None and cause.strerror else str(exc) or type(exc).__name__
        return f"cannot reach {url} ({reason[:200]}); is the server running? {_CHECK_URL}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{url} did not answer like a web server ({str(exc)[:200] or 'the connection closed'}); {_CHECK_URL} (the server's HTTP port, not its room socket)"
    return f"the connection to {url} failed ({str(exc)[:200] or type(exc).__name__}); try again, and {_CHECK_URL}"


def _os_error(exc: BaseException) -> OSError | None:
    """The operating system's error under an httpx error (its cause, or its cause's cause ...)."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if isinstance(cause, OSError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _detail(response: httpx.Response) -> str:
    """The server's sentence for a refusal, or the start of whatever else answered."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text.splitlines()[0][:200] if text else response.reason_phrase or str(response.status_code)
    return str(body.get("detail", body))[:300] if isinstance(body, dict) else str(body)[:200]


def _json(response: httpx.Response, url: str) -> Any:
    """The body of an Amaliy answer; anything else (a web page, a proxy's error) is ServerTrouble."""
    try:
        return response.json()
    except ValueError:
        raise _not_ours(response, url) from None


def _not_ours(response: httpx.Response, url: str) -> ServerTrouble:
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return ServerTrouble(f"{url} answered {response.status_code} with {kind}, not the JSON an Amaliy server sends; is it an Amaliy server? {_CHECK_URL}")


def _refused(response: httpx.Response, url: str, path: str, role: str) -> ServerTrouble:
    """ServerTrouble for an answer that is not a success (the caller handles its own expected codes)."""
    status = response.status_code
    if status == 401:
        return ServerTrouble(f"the server refused the key (401: {_detail(response)}); {_CHECK_KEY}")
    if status == 403:
        return ServerTrouble(f"the server refused the key (403: {_detail(response)}); {_CHECK_KEY} (this needs a {role} key)")
    if status == 404:
        return ServerTrouble(f"{url} has no Amaliy API at {path} (404); {_CHECK_URL} (the server's base address, e.g. http://10.0.0.5:8000)")
    try:
        response.json()
    except ValueError:
        return _not_ours(response, url)
    return ServerTrouble(f"the server answered {status}: {_detail(response)}")


def _run(args: argparse.Namespace) -> int:
    command = args.scenes_command
    if command == "new":
        folder = Path(args.folder)
        package_id = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-_") or "my-lab"
        try:
            written = scaffold(folder, package_id)
        except FileExistsError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"Created {folder}/ with scene.json and two assets. Next: amaliy scenes validate {folder}")
        print(
            f"  units: {written['units']!r}: scene.json says its model files are in {_UNIT_NAMES.get(written['units'], written['units'])}. "
            f"Set 'units' to the unit your own models were made in: one of {', '.join(repr(u) for u in UNIT_METRES)}."
        )
        return 0
    if command == "pack":
        output = Path(args.output or f"{Path(args.folder).resolve().name}.zip")
        output.write_bytes(_pack(Path(args.folder)))
        print(f"Wrote {output} ({output.stat().st_size} bytes)")
        return 0
    if command == "validate":
        return _validate(Path(args.package))
    key = (args.key or "").strip()
    if not key:
        print("Give your designer key with --key or AMALIY_KEY.", file=sys.stderr)
        return 2
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        print(f"amaliy: that is not a key (keys look like ak_… in letters, digits, '-' and '_'); {_CHECK_KEY}", file=sys.stderr)
        return 2
    url = args.url.strip().rstrip("/")
    if command == "list":
        return _list(url, key)
    return _upload(Path(args.package), url, key)


def _list(url: str, key: str) -> int:
    response = _request("GET", url, "/api/scenes", key, ANSWER_TIMEOUT)
    if response.status_code != 200:
        raise _refused(response, url, "/api/scenes", "designer or teacher")
    rows = _json(response, url)
    try:
        lines = [f"{row['package_id']:<24} v{row['version']:<4} {row['title']}  ({row['stats']['triangles']} triangles, by {row['author']})" for row in rows]
    except (TypeError, KeyError):
        raise ServerTrouble(f"{url} answered /api/scenes with JSON that is not a list of scenes; is it an Amaliy server? {_CHECK_URL}") from None
    for line in lines:
        print(line)
    return 0


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
                processed = ingest_package(_as_zip(package, Path(tmp)), from_env().ingest_limits())
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
    _print_notes([note._asdict() for note in processed.notes])
    return 0


def _print_notes(notes: list[dict[str, str]]) -> None:
    """Notes: what ingest repaired or found odd but accepted, with the fix when one helps."""
    for note in notes:
        print(f"  note: {note['where']}: {note['what']}")
        if not note["fix"].startswith("none needed"):
            print(f"      fix: {note['fix']}")


class _Progress:
    """A file wrapper that advances a progress bar as httpx reads it."""

    def __init__(self, f: IO[bytes], bar: tqdm) -> None:
        self._f = f
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._bar.update(len(data))
        return data


def _upload(package: Path, url: str, key: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = _as_zip(package, Path(tmp))
        with open(path, "rb") as f, tqdm(total=path.stat().st_size, desc="uploading", unit="B", unit_scale=True, leave=False) as bar:
            files = {"package": (path.name, _Progress(f, bar), "application/zip")}
            response = _request("POST", url, "/api/scenes", key, UPLOAD_TIMEOUT, files=files)
    if response.status_code not in (200, 201):
        body = _json(response, url) if response.status_code == 422 else None
        problems = body.get("problems") if isinstance(body, dict) else None
        if problems:
            _print_problems(problems)
            return 1
        raise _refused(response, url, "/api/scenes", "designer")
    body = _json(response, url)
    try:
        state = "stored as" if body["created_new_version"] else "identical to stored"
        print(f"{body['package_id']} {state} version {body['version']}: {url}{body['glb_url']}")
    except (TypeError, KeyError):
        raise ServerTrouble(f"{url} answered the upload with JSON that is not Amaliy's; is it an Amaliy server? {_CHECK_URL}") from None
    _print_notes([note for note in body.get("notes", []) if isinstance(note, dict) and {"where", "what", "fix"} <= set(note)])
    return 0
