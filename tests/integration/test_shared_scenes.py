"""Labs shared by the nodes of a deployment on a real Redis (server.shared_scenes): two nodes' scene
stores, on data dirs of their own. A version uploaded through one is taken by the other with the
same number and the same bytes; two uploads of one package through two nodes get two numbers, never
one; a deleted version leaves the deployment; a version the other node holds under that number with
other content is not overwritten."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import redis

from scenes import samples
from scenes.package import pack_files
from scenes.store import SceneStore, SceneVersion
from server.package_check import ingest_package
from server.shared_scenes import SharedScenes
from tests.conftest import REDIS_URL



def node(root: Path, deployment: str) -> tuple[SceneStore, SharedScenes]:
    store = SceneStore(root)
    return store, SharedScenes(REDIS_URL, deployment, store)


def upload(store: SceneStore, shared: SharedScenes, tmp: Path, title: str) -> SceneVersion:
    """The demo lab under another title (other content), catalogued as an upload through this node is."""
    files = samples.SAMPLES[samples.DEMO]()
    manifest = json.loads(files["scene.json"])
    files["scene.json"] = json.dumps({**manifest, "title": title}).encode()
    path = tmp / f"{secrets.token_hex(4)}.zip"
    path.write_bytes(pack_files(files))
    row, created = store.add(store.blobs.stage(ingest_package(path), path), "Designer", number=lambda high: shared.number(samples.DEMO, high))
    assert created
    shared.sync()
    return row


def test_a_version_uploaded_through_one_node_is_the_others_under_its_number(tmp_path: Path, redis_deployment: str) -> None:
    a, shared_a = node(tmp_path / "a", redis_deployment)
    b, shared_b = node(tmp_path / "b", redis_deployment)
    first = upload(a, shared_a, tmp_path, "Through a")
    second = upload(b, shared_b, tmp_path, "Through b")  # b has never seen version 1, and still numbers after it
    assert (first.version, second.version) == (1, 2)
    assert shared_a.sync() == 1 and shared_b.sync() == 0  # b took version 1 when its upload was shared
    for store in (a, b):
        assert [(v.version, v.title) for v in store.versions(samples.DEMO)] == [(1, "Through a"), (2, "Through b")]
    assert b.blobs.read(first.glb_sha) == a.blobs.read(first.glb_sha)
    assert shared_a.sync() == 0  # nothing new

    assert a.delete(samples.DEMO, 2)
    shared_a.unpublish(second)
    client = redis.Redis.from_url(REDIS_URL)
    assert client.hkeys(f"{redis_deployment}:{{scenes}}:index") == [f"{samples.DEMO}/1".encode()]
    assert not client.exists(f"{redis_deployment}:{{scenes}}:blob:{second.manifest_sha}")  # its own blobs went with it
    assert client.exists(f"{redis_deployment}:{{scenes}}:blob:{first.manifest_sha}")
    client.close()
    c, shared_c = node(tmp_path / "c", redis_deployment)
    assert shared_c.sync() == 1 and [v.version for v in c.versions(samples.DEMO)] == [1]


def test_a_clashing_version_is_not_overwritten(tmp_path: Path, redis_deployment: str) -> None:
    """Two nodes that each had a version 1 before they joined: each keeps its own."""
    a, shared_a = node(tmp_path / "a", redis_deployment)
    b = SceneStore(tmp_path / "b")
    mine = upload(b, SharedScenes(REDIS_URL, "elsewhere" + secrets.token_hex(3), b), tmp_path, "b's own")
    theirs = upload(a, shared_a, tmp_path, "a's")
    assert mine.version == theirs.version == 1
    shared_b = SharedScenes(REDIS_URL, redis_deployment, b)
    assert shared_b.sync() == 0
    assert [v.title for v in b.versions(samples.DEMO)] == ["b's own"]
