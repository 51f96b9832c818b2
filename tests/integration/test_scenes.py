"""Scene packages through a real server: upload, catalog, GLB serving, sessions, refusals, CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from amaliy_client import AmaliyClient

from tests.conftest import LiveServer, start_server
from tests.scene_packages import BAD, good_package


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    """A server whose temporary files go to a folder the tests can inspect."""
    tmp = tmp_path_factory.mktemp("server-tmp")
    server = start_server(tmp_path_factory.mktemp("data"), env={"TMPDIR": str(tmp), "AMALIY_UPLOAD_MAX_BYTES": str(8 * 1024 * 1024)})
    server.tmp = tmp  # type: ignore[attr-defined]
    yield server
    server.stop()


def designer(live: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.designer_key}"}


def teacher(live: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.teacher_key}"}


def upload(http: httpx.Client, live: LiveServer, data: bytes) -> httpx.Response:
    return http.post("/api/scenes", files={"package": ("lab.zip", data, "application/zip")}, headers=designer(live))


def blob_count(live: LiveServer) -> int:
    data_dir = Path(live.proc.args[live.proc.args.index("--data-dir") + 1])  # type: ignore[union-attr]
    return sum(1 for path in (data_dir / "scenes" / "blobs").rglob("*") if path.is_file())


def test_samples_are_in_the_catalog_and_serve_their_glb(live: LiveServer) -> None:
    with live.http() as http:
        rows = {row["package_id"]: row for row in http.get("/api/scenes", headers=teacher(live)).json()}
        assert {"chemistry-bench", "circuits-table"} <= set(rows)
        url = http.get("/api/scenes/circuits-table", headers=teacher(live)).json()["glb_url"]
        glb = http.get(url)
        assert glb.status_code == 200 and glb.content[:4] == b"glTF"
        assert "immutable" in glb.headers["cache-control"]
        etag = glb.headers["etag"]
        assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert http.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
        assert http.head(url).status_code == 200
        part = http.get(url, headers={"Range": "bytes=0-11"})
        assert part.status_code == 206 and part.content == glb.content[:12]
        latest = http.get("/api/scenes/circuits-table/scene.glb", follow_redirects=False)
        assert latest.status_code == 307 and latest.headers["location"] == url
        assert http.get("/api/scenes/schema").json()["properties"]["schema_version"]


@pytest.mark.parametrize("kind", ["glb", "obj", "stl", "ply", "gltf"])
def test_upload_each_format_then_versions(live: LiveServer, kind: str) -> None:
    with live.http() as http:
        first = upload(http, live, good_package(kind, f"upload-{kind}"))
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["version"] == 1 and body["author"] == "Designer" and body["stats"]["triangles"] == 12
        again = upload(http, live, good_package(kind, f"upload-{kind}"))
        assert again.status_code == 200 and again.json()["version"] == 1 and not again.json()["created_new_version"]
        versions = http.get(f"/api/scenes/upload-{kind}/versions", headers=designer(live)).json()
        assert [v["version"] for v in versions] == [1]


def test_same_package_twice_is_stored_once(live: LiveServer) -> None:
    with live.http() as http:
        upload(http, live, good_package("glb", "twice"))
        before = blob_count(live)
        assert upload(http, live, good_package("glb", "twice")).status_code == 200
        assert blob_count(live) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_packages_refused_store_unchanged_server_fine(live: LiveServer, name: str) -> None:
    build, fragment = BAD[name]
    with live.http() as http:
        before = (http.get("/api/scenes", headers=designer(live)).json(), blob_count(live))
        response = upload(http, live, build())
        assert response.status_code in (413, 422), response.text
        if response.status_code == 422:
            problems = response.json()["problems"]
            assert response.json()["detail"].startswith(f"{len(problems)} problem")
            assert problems and all(p["where"] and p["what"] and p["fix"] for p in problems)
            assert any(fragment in p["what"] or fragment in p["where"] for p in problems), problems
        after = (http.get("/api/scenes", headers=designer(live)).json(), blob_count(live))
        assert after == before
        assert http.get("/healthz").json()["status"] == "ok"
    leftovers = [p.name for p in live.tmp.iterdir()]  # type: ignore[attr-defined]
    assert not [n for n in leftovers if n.startswith("amaliy-")], leftovers


def test_upload_over_the_size_limit_is_413(live: LiveServer) -> None:
    with live.http() as http:
        response = upload(http, live, os.urandom(9 * 1024 * 1024))
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_upload_needs_a_package_field(live: LiveServer) -> None:
    with live.http() as http:
        wrong = http.post("/api/scenes", files={"file": ("x.zip", b"x")}, headers=designer(live))
        assert wrong.status_code == 422 and "package" in wrong.json()["detail"]
        raw = http.post("/api/scenes", content=b"x", headers={**designer(live), "Content-Type": "application/zip"})
        assert raw.status_code == 415


async def test_concurrent_uploads_get_distinct_versions(live: LiveServer) -> None:
    packages = [good_package(kind, "concurrent") for kind in ("glb", "stl", "ply", "obj")]
    async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
        responses = await asyncio.gather(
            *(http.post("/api/scenes", files={"package": ("p.zip", data)}, headers=designer(live)) for data in packages)
        )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == [1, 2, 3, 4]


async def test_practical_from_an_uploaded_scene(live: LiveServer) -> None:
    with live.http() as http:
        row = upload(http, live, good_package("stl", "my-bench")).json()
        opened = http.post("/api/sessions", json={"scene": "my-bench", "version": row["version"]}, headers=teacher(live))
        assert opened.status_code == 201, opened.text
        session = opened.json()
        assert session["scene"] == "my-bench" and session["scene_version"] == row["version"]
        in_use = http.delete(f"/api/scenes/my-bench/versions/{row['version']}", headers=designer(live))
        assert in_use.status_code == 409 and "live practical" in in_use.json()["detail"]
    student = await AmaliyClient.join(live.base_url, session["join_code"], "Ali")
    try:
        scene = student.welcome["snapshot"]["scene"]
        assert scene["id"] == "my-bench" and scene["zones"][0]["id"] == "z"
        assert set(student.objects) == {"obj-item"}
        spawn = student.poses[student.id][:3]
        assert spawn.tolist() == pytest.approx([0, 1.6, 1])  # the package's spawn point, at eye height
        glb = httpx.get(live.base_url + scene["glb_url"])
        assert glb.status_code == 200 and glb.content[:4] == b"glTF"
        await student.grab("obj-item")
        await student.expect("grabbed", object="obj-item")
    finally:
        await student.close()
    with live.http() as http:
        http.post(f"/api/sessions/{session['id']}/end", headers=teacher(live))
        assert http.delete(f"/api/scenes/my-bench/versions/{row['version']}", headers=designer(live)).status_code == 204
        assert http.get("/api/scenes/my-bench/versions", headers=designer(live)).status_code == 404
        missing = http.post("/api/sessions", json={"scene": "my-bench"}, headers=teacher(live))
        assert missing.status_code == 404
        # a retired version number is never given to other content
        again = upload(http, live, good_package("ply", "my-bench")).json()
        assert again["version"] == row["version"] + 1


def test_designer_cli_new_validate_pack_upload_list(live: LiveServer, tmp_path: Path) -> None:
    def amaliy(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AMALIY_URL": live.base_url, "AMALIY_KEY": live.designer_key}
        return subprocess.run([sys.executable, "-m", "server.cli", "scenes", *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert amaliy("new", "optics-lab").returncode == 0
    checked = amaliy("validate", "optics-lab")
    assert checked.returncode == 0 and "OK: optics-lab" in checked.stdout
    packed = amaliy("pack", "optics-lab")
    assert packed.returncode == 0 and (tmp_path / "optics-lab.zip").is_file()
    uploaded = amaliy("upload", "optics-lab.zip")
    assert uploaded.returncode == 0 and "stored as version 1" in uploaded.stdout, uploaded.stdout + uploaded.stderr
    assert "optics-lab" in amaliy("list").stdout

    (tmp_path / "optics-lab" / "scene.json").write_text('{"schema_version": 1, "id": "Optics!"}')
    broken = amaliy("validate", "optics-lab")
    assert broken.returncode == 1 and "Refused" in broken.stdout and "fix:" in broken.stdout
    refused = amaliy("upload", "optics-lab")
    assert refused.returncode == 1 and "$.id" in refused.stdout


async def test_a_scene_at_the_edge_of_the_room_bounds_opens_and_is_joined(live: LiveServer) -> None:
    """Accepted means usable: values at the limits the manifest allows survive into the live room."""
    import json as _json

    import trimesh

    from scenes.package import pack_files
    from tests.scene_packages import manifest

    data = manifest("edge-lab", {"item": "assets/item.stl"})
    data["objects"][0]["transform"] = {"position": [9_999.5, -9_999.5, 9_999.5], "rotation": [0, 0.7071, 0, 0.7071]}
    data["spawn_points"] = [{"position": [-10_000, 0, 10_000], "yaw_degrees": -360}]
    data["zones"] = [{"id": "far", "shape": "box", "center": [10_000, 0, -10_000], "size": [10_000, 0.001, 10_000]}]
    data["environment"] = {"lights": [{"kind": "point", "position": [10_000, 10_000, 10_000], "intensity": 100}]}
    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1)).export(file_type="stl")
    with live.http() as http:
        stored = upload(http, live, pack_files({"scene.json": _json.dumps(data).encode(), "assets/item.stl": box}))
        assert stored.status_code == 201, stored.text
        opened = http.post("/api/sessions", json={"scene": "edge-lab"}, headers=teacher(live))
        assert opened.status_code == 201, opened.text
    student = await AmaliyClient.join(live.base_url, opened.json()["join_code"], "Edge")
    try:
        assert student.welcome["snapshot"]["scene"]["zones"][0]["center"] == [10_000.0, 0.0, -10_000.0]
        assert student.poses[student.id][:3].tolist() == pytest.approx([-10_000, 1.6, 10_000])
        assert student.objects["obj-item"]["transform"][:3] == pytest.approx([9_999.5, -9_999.5, 9_999.5])
    finally:
        await student.close()
        with live.http() as http:
            http.post(f"/api/sessions/{opened.json()['id']}/end", headers=teacher(live))


def test_a_multipart_body_that_cannot_be_read_is_a_400(live: LiveServer) -> None:
    with live.http() as http:
        for content_type, body in (
            ("multipart/form-data; boundary=" + "b" * 300, b"--" + b"b" * 300 + b"\r\n"),  # longer than any parser takes
            ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"package\"; filename=\""
             + b"a" * 20000 + b"\"\r\n\r\nPK\r\n--xyz--\r\n"),  # a part header of 20 kB
        ):
            refused = http.post("/api/scenes", content=body, headers={**designer(live), "Content-Type": content_type})
            assert refused.status_code == 400 and refused.json()["detail"].startswith("Could not read the multipart body"), refused.text
