"""`amaliy backup` of a running server and `amaliy restore` into a new data dir: a course, its
roster, a student's sign-in code (HMACed with codes.key), the teacher key and tokens (secret.key)
and an uploaded scene all work on a server started on the restored dir. Refusals: a non-empty
target, a changed archive, a foreign one, and an output that cannot be written, each one line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import REPO, LiveServer, start_server
from tests.integration.test_challenges_live import serve_again
from tests.integration.test_cli_errors import one_line_error
from tests.integration.test_courses import NAMES, bearer, roster_csv, signin
from tests.scene_packages import good_package


def amaliy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@dataclass
class BackedUp:
    """A server's data dir, backed up while it ran and added students, then stopped."""

    live: LiveServer
    data_dir: Path
    archive: Path
    course_id: str
    kept_code: str
    kept_id: str
    late: list[str]
    glb: bytes
    printed: str


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackedUp]:
    root = tmp_path_factory.mktemp("backup")
    data_dir = root / "data"
    live = start_server(data_dir)
    teacher = bearer(live.teacher_key)
    try:
        with live.http() as http:
            uploaded = http.post("/api/scenes", files={"package": ("lab.zip", good_package("ply", "backup-lab"))}, headers=bearer(live.designer_key))
            assert uploaded.status_code == 201, uploaded.text
            glb = http.get("/api/scenes/backup-lab/versions/1/scene.glb").content
            course = http.post("/api/courses", json={"name": "Fizika 8B"}, headers=teacher).json()
            imported = http.post(f"/api/courses/{course['id']}/roster", content=roster_csv(bad=False), headers=teacher)
            assert imported.status_code == 201, imported.text
            kept = imported.json()["students"][1]

        # students keep being added over REST while the backup runs
        late: list[str] = []
        refused: list[str] = []
        done = threading.Event()

        def add_students() -> None:
            with live.http() as http:
                while not done.is_set() and len(late) < 500 and not refused:
                    name = f"Late {len(late)}"
                    added = http.post(f"/api/courses/{course['id']}/students", json={"name": name}, headers=teacher)
                    if added.status_code != 201:
                        refused.append(added.text)
                    late.append(name)

        writer = threading.Thread(target=add_students)
        writer.start()
        try:
            made = amaliy("backup", str(root / "amaliy.tar.gz"), "--data-dir", str(data_dir))
        finally:
            done.set()
            writer.join()
        assert made.returncode == 0 and made.stderr == "", made
        assert not refused and late, refused
    finally:
        live.stop()
    yield BackedUp(live, data_dir, root / "amaliy.tar.gz", course["id"], kept["code"], kept["id"], late, glb, made.stdout)


def test_the_archive_holds_a_manifest_the_databases_keys_and_blobs(backed_up: BackedUp) -> None:
    [line] = backed_up.printed.splitlines()
    assert line.startswith(f"Wrote {backed_up.archive} (") and "codes.key" in line and "secret.key" in line, line
    assert backed_up.archive.stat().st_mode & 0o777 == 0o600  # it holds the keys
    assert [p.name for p in backed_up.archive.parent.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    with tarfile.open(backed_up.archive) as tar:
        members = tar.getmembers()
        assert members[0].name == "manifest.json" and all(m.isreg() for m in members)
        manifest = json.load(tar.extractfile(members[0]))  # type: ignore[arg-type]
    names = [f["name"] for f in manifest["files"]]
    assert [m.name for m in members[1:]] == names
    assert manifest["format"] == "amaliy-backup" and manifest["format_version"] == 1 and manifest["schema_version"] >= 3
    assert {"amaliy.sqlite3", "scenes/catalog.sqlite3", "secret.key", "codes.key"} <= set(names)
    assert not [n for n in names if n.endswith(("-wal", "-shm")) or "/." in n or n.startswith(".")]
    blobs = sorted(n for n in names if n.startswith("scenes/blobs/"))
    on_disk = sorted(p.relative_to(backed_up.data_dir).as_posix() for p in (backed_up.data_dir / "scenes" / "blobs").rglob("*") if p.is_file())
    assert blobs and blobs == on_disk
    assert f"{len(blobs)} scene blob(s)" in line


def test_a_restored_data_dir_serves_the_course_codes_keys_and_scenes(backed_up: BackedUp, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    done = amaliy("restore", str(backed_up.archive), "--data", str(target))
    assert done.returncode == 0 and done.stderr == "", done
    assert done.stdout.startswith(f"Restored {backed_up.archive} (made ") and f"into {target}" in done.stdout
    for key in ("secret.key", "codes.key"):
        assert (target / key).stat().st_mode & 0o777 == 0o600
        assert (target / key).read_bytes() == (backed_up.data_dir / key).read_bytes()
    assert not [p for p in target.iterdir() if p.name.startswith(".")]

    live = serve_again(backed_up.live, target)
    try:
        teacher = bearer(backed_up.live.teacher_key)
        with live.http() as http:
            courses = http.get("/api/courses", headers=teacher)
            assert courses.status_code == 200 and [c["id"] for c in courses.json()] == [backed_up.course_id]
            roster = [s["name"] for s in http.get(f"/api/courses/{backed_up.course_id}", headers=teacher).json()["roster"]]
            # one consistent moment: the whole import, then the students added before the backup's moment, in order
            late = roster[len(NAMES) + 1:]
            assert roster[: len(NAMES) + 1] == [*NAMES, '=CMD("calc")'] and late == backed_up.late[: len(late)]

            # the sign-in code still matches its HMAC (codes.key), first with no practical open, then with one
            none_open = signin(live, backed_up.kept_code)
            assert none_open.status_code == 409, none_open.text
            opened = http.post("/api/sessions", json={"title": "After restore", "course": backed_up.course_id, "scene": "backup-lab"}, headers=teacher)
            assert opened.status_code == 201, opened.text
            signed = signin(live, backed_up.kept_code)
            assert signed.status_code == 200, signed.text
            assert signed.json()["participant_id"] == backed_up.kept_id and signed.json()["session"] == opened.json()["id"]
            assert signin(live, "AAAAAAAA").status_code == 401

            # a token signed before the backup still verifies (secret.key): refused only as a token, not as unknown
            token = backed_up.live.teacher_url.split("#token=", 1)[1]
            as_token = http.get("/api/courses", headers=bearer(token))
            assert (as_token.status_code, as_token.json()["detail"]) == (403, "Use your key for this, not a participant token.")

            # the uploaded scene's blobs came back byte for byte
            assert http.get("/api/scenes/backup-lab/versions/1/scene.glb").content == backed_up.glb
    finally:
        live.stop()


def test_restore_refuses_a_data_dir_that_is_not_empty(backed_up: BackedUp, tmp_path: Path) -> None:
    target = tmp_path / "in-use"
    target.mkdir()
    (target / "amaliy.sqlite3").write_bytes(b"someone's data")
    line = one_line_error(amaliy("restore", str(backed_up.archive), "--data", str(target)))
    assert line == f"amaliy: {target} is not empty; restore only into an empty or new folder, so no data dir is mixed with another or overwritten"
    assert [p.name for p in target.iterdir()] == ["amaliy.sqlite3"] and (target / "amaliy.sqlite3").read_bytes() == b"someone's data"


def rewritten(archive: Path, out: Path, change: dict[str, bytes | None], extra: list[tuple[tarfile.TarInfo, bytes]] = []) -> Path:
    """A copy of a backup with members' bytes replaced (None: left out) and members added; manifest unchanged."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            data = change.get(member.name, data)
            if data is None:
                continue
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        for member, data in extra:
            dst.addfile(member, io.BytesIO(data))
    return out


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, b""


@pytest.mark.parametrize(
    "case, why",
    [
        ("codes.key changed", "codes.key does not match its sha256 in the manifest (the file was damaged or changed)"),
        ("codes.key left out", "1 file(s) its manifest lists are missing, codes.key first (is it cut short?)"),
        ("a link added", "it holds '../outside', which its manifest does not list"),
        ("cut short", "it is damaged"),
        ("not an archive", "it is not a tar.gz archive"),
        ("a foreign tar.gz", "it does not start with manifest.json (is it a backup made by 'amaliy backup'?)"),
    ],
)
def test_restore_refuses_a_changed_damaged_or_foreign_archive(backed_up: BackedUp, tmp_path: Path, case: str, why: str) -> None:
    with tarfile.open(backed_up.archive) as tar:
        codes = tar.extractfile("codes.key").read()  # type: ignore[union-attr]
    bad = tmp_path / "bad.tar.gz"
    if case == "codes.key changed":
        rewritten(backed_up.archive, bad, {"codes.key": bytes(reversed(codes))})
    elif case == "codes.key left out":
        rewritten(backed_up.archive, bad, {"codes.key": None})
    elif case == "a link added":
        rewritten(backed_up.archive, bad, {}, [_link("../outside", "/etc/passwd")])
    elif case == "cut short":
        whole = backed_up.archive.read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    elif case == "not an archive":
        bad.write_bytes(b"amaliy.sqlite3\n" * 100)
    else:
        with tarfile.open(bad, "w:gz") as tar:
            info = tarfile.TarInfo("notes.txt")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    target = tmp_path / "target"
    line = one_line_error(amaliy("restore", str(bad), "--data", str(target)))
    assert line.startswith(f"amaliy: {bad} is not a usable Amaliy backup: {why}"), line
    assert not target.exists() and not (tmp_path / "outside").exists()


def test_backup_to_a_path_that_cannot_be_written_fails_in_one_line(backed_up: BackedUp, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "amaliy.tar.gz"
    line = one_line_error(amaliy("backup", str(missing), "--data-dir", str(backed_up.data_dir)))
    assert line == f"amaliy: cannot write {missing}: the folder {missing.parent} does not exist"
    if Path("/sys").is_dir():  # read-only even for root
        line = one_line_error(amaliy("backup", "/sys/amaliy.tar.gz", "--data-dir", str(backed_up.data_dir)))
        assert line.startswith("amaliy: cannot write /sys/amaliy.tar.gz: "), line
    inside = backed_up.data_dir / "amaliy.tar.gz"
    line = one_line_error(amaliy("backup", str(inside), "--data-dir", str(backed_up.data_dir)))
    assert line == f"amaliy: {inside} is inside the data dir {backed_up.data_dir}; write the backup somewhere else"
    line = one_line_error(amaliy("backup", str(tmp_path / "x.tar.gz"), "--data-dir", str(tmp_path / "nothing-here")))
    assert "is no Amaliy data dir (it has no amaliy.sqlite3)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []
