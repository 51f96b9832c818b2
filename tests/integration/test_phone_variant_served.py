"""The phone variant through a real server: made at upload, served by its content hash and cached
for good, a lab stored before variants keeps working (phones are sent to its GLB), and the nodes of
a deployment share the variant like the lab's other blobs."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trimesh

from scenes import samples
from scenes.package import pack_files
from scenes.phone_variant import PhoneBudget
from scenes.store import Blobs, SceneStore
from server.package_check import ingest_package
from server.shared_scenes import SharedScenes

from tests.conftest import REDIS_URL, REPO, LiveServer, start_server
from tests.phone_labs import HEAVY_ID, heavy_package

#: the catalog as a store made before phone variants wrote it (scenes.store has added phone_sha since)
OLD_CATALOG = """
CREATE TABLE versions (
    package_id TEXT NOT NULL, version INTEGER NOT NULL, title TEXT NOT NULL, author TEXT NOT NULL,
    created REAL NOT NULL, status TEXT NOT NULL, package_sha TEXT NOT NULL, glb_sha TEXT NOT NULL,
    server_sha TEXT NOT NULL, manifest_sha TEXT NOT NULL, stats TEXT NOT NULL, PRIMARY KEY (package_id, version)
);
CREATE UNIQUE INDEX versions_content ON versions(package_id, package_sha) WHERE status = 'ready';
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose data dir holds a store from before phone variants: the demo lab without one."""
    data = tmp_path_factory.mktemp("data")
    scenes = data / "scenes"
    package = tmp_path_factory.mktemp("old") / "demo.zip"
    package.write_bytes(pack_files(samples.SAMPLES[samples.DEMO]()))
    staged = Blobs(scenes / "blobs").stage(ingest_package(package), package)
    old_stats = {key: value for key, value in staged.stats.items() if "phone" not in key}
    db = sqlite3.connect(scenes / "catalog.sqlite3")
    db.executescript(OLD_CATALOG)
    db.execute(
        "INSERT INTO versions VALUES (?, 1, ?, 'Amaliy samples', 0, 'ready', ?, ?, ?, ?, ?)",
        (samples.DEMO, staged.title, staged.package_sha, staged.glb_sha, staged.server_sha, staged.manifest_sha, json.dumps(old_stats)),
    )
    db.commit()
    db.close()
    server = start_server(data)
    yield server
    server.stop()


def test_an_upload_gets_a_phone_variant_served_by_its_hash_and_cached_for_good(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=120) as http:  # ingest of 330,000 triangles takes a few seconds
        response = http.post(
            "/api/scenes", files={"package": ("lab.zip", heavy_package(), "application/zip")}, headers={"Authorization": f"Bearer {live.designer_key}"}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["glb_phone_url"] == f"/api/scenes/{HEAVY_ID}/versions/1/scene.phone.glb"
        assert any(note["where"] == "phone variant" and "decimated" in note["what"] for note in body["notes"])
        desktop = http.get(body["glb_url"])
        phone = http.get(body["glb_phone_url"])
        assert phone.status_code == 200 and phone.headers["content-type"] == "model/gltf-binary"
        assert phone.headers["etag"] == f'"{body["phone_sha"]}"' and "immutable" in phone.headers["cache-control"]
        assert http.get(body["glb_phone_url"], headers={"If-None-Match": phone.headers["etag"]}).status_code == 304
        assert int(phone.headers["content-length"]) == len(phone.content) <= PhoneBudget().file_bytes
        assert len(desktop.content) > 8_000_000 and len(phone.content) < len(desktop.content) / 20
        lab = trimesh.load(io.BytesIO(phone.content), file_type="glb", force="scene")
        assert sum(len(mesh.faces) for mesh in lab.geometry.values()) <= PhoneBudget().triangles
        latest = http.get(f"/api/scenes/{HEAVY_ID}/scene.phone.glb")
        assert latest.status_code == 307 and latest.headers["location"] == body["glb_phone_url"]
        assert http.get(f"/api/scenes/{HEAVY_ID}", headers={"Authorization": f"Bearer {live.teacher_key}"}).json()["glb_phone_url"] == body["glb_phone_url"]


def test_a_lab_stored_before_phone_variants_sends_phones_to_its_glb(live: LiveServer) -> None:
    with live.http() as http:
        row = http.get(f"/api/scenes/{samples.DEMO}", headers={"Authorization": f"Bearer {live.teacher_key}"}).json()
        assert row["version"] == 1 and row["phone_sha"] == "" and row["glb_phone_url"] == ""
        phone = http.get(f"/api/scenes/{samples.DEMO}/versions/1/scene.phone.glb")
        assert phone.status_code == 307 and phone.headers["location"] == row["glb_url"]
        assert http.get(phone.headers["location"]).content[:4] == b"glTF"
        other = http.get("/api/scenes/circuits-table", headers={"Authorization": f"Bearer {live.teacher_key}"}).json()
        assert other["glb_phone_url"] and http.get(other["glb_phone_url"]).status_code == 200  # installed by this server: it has one
        assert http.get(f"/api/scenes/{samples.DEMO}/versions/9/scene.phone.glb").status_code == 404


def test_the_scenes_cli_lists_old_and_new_versions(live: LiveServer) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "server.cli", "scenes", "list", "--url", live.base_url, "--key", live.designer_key],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert samples.DEMO in listed.stdout and "circuits-table" in listed.stdout


def test_the_nodes_of_a_deployment_share_the_phone_variant(tmp_path: Path, redis_deployment: str) -> None:
    a, b = SceneStore(tmp_path / "a"), SceneStore(tmp_path / "b")
    shared_a, shared_b = SharedScenes(REDIS_URL, redis_deployment, a), SharedScenes(REDIS_URL, redis_deployment, b)
    package = tmp_path / "demo.zip"
    package.write_bytes(pack_files(samples.SAMPLES[samples.DEMO]()))
    row, _ = a.add(a.blobs.stage(ingest_package(package), package), "Designer", number=lambda high: shared_a.number(samples.DEMO, high))
    assert row.phone_sha
    shared_a.sync()
    assert shared_b.sync() == 1
    taken = b.get(samples.DEMO, row.version)
    assert taken is not None and taken.phone_sha == row.phone_sha
    assert b.blobs.read(row.phone_sha) == a.blobs.read(row.phone_sha)
    assert a.delete(samples.DEMO, row.version)
    assert not a.blob_path(row.phone_sha).exists()  # no other version uses it
    shared_a.unpublish(row)
    assert not shared_a.redis.exists(f"{redis_deployment}:{{scenes}}:blob:{row.phone_sha}")
    for shared in (shared_a, shared_b):
        shared.close()
