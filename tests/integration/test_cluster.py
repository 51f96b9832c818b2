"""Several nodes on one real Redis, as real server processes: students join through nodes that do not
host their practical; the hosting node is SIGKILLed, SIGSTOPped past its lease, restarted one by one,
and Redis itself is restarted empty; each time the practical goes on with nothing lost, and no two
nodes ever write the same room's log. Every wait polls a condition with a timeout."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from amaliy_client import AmaliyClient
from realtime.log.recovery import restore
from realtime.log.redis_log import RedisLog
from tests.conftest import REPO, LiveServer, free_port_pair, sample_scene, serve_again, start_redis, start_server
from tests.integration.test_challenges_live import PACKAGE, key, lab_manifest, light_and_answer, place_beaker, upload
from tests.integration.test_xapi_live import DRAIN, FakeLRS, guests_finish, lrs_env, open_lab

WAIT = 30.0


def port_of(live: LiveServer) -> int:
    return int(live.base_url.rsplit(":", 1)[1])


class Deployment:
    """Nodes of one deployment (their own name, so tests never share keys) on one Redis."""

    def __init__(self, root: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.redis_url = redis_url
        self.name = "t" + secrets.token_hex(4)
        self.secret = secrets.token_hex(32)
        self.nodes: list[LiveServer] = []
        # restarted nodes (serve_again) inherit these from the test process
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("AMALIY_DEPLOYMENT", self.name)
        monkeypatch.setenv("AMALIY_VOICE", "false")
        monkeypatch.setenv("AMALIY_RESUME_WINDOW", "120")

    def data_dir(self, n: int) -> Path:
        path = self.root / f"node{n}"
        path.mkdir(parents=True, exist_ok=True)
        key = path / "secret.key"
        if not key.exists():
            key.write_text(self.secret)
            key.chmod(0o600)
        return path

    def start(self, n: int, env: dict[str, str] | None = None) -> LiveServer:
        """Node n; the first creates the deployment's teacher, the others share it (server.replica)."""
        live = start_server(self.data_dir(n), env, teacher_key=self.nodes[0].teacher_key if self.nodes else None)
        self.nodes.append(live)
        return live

    def restart(self, old: LiveServer, n: int) -> LiveServer:
        live = serve_again(old, self.data_dir(n), port=port_of(old))
        self.nodes.append(live)
        return live

    def stop(self) -> None:
        for live in self.nodes:
            if live.proc.poll() is None:
                live.proc.send_signal(signal.SIGCONT)
            live.stop()


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, "redis://127.0.0.1:6379/0", monkeypatch)
    yield dep
    dep.stop()


def health(live: LiveServer) -> dict:
    return httpx.get(live.base_url + "/healthz", timeout=5).json()


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def hosting(nodes: list[LiveServer]) -> list[LiveServer]:
    return [n for n in nodes if n.proc.poll() is None and health(n)["room_log"]["rooms"] > 0]


async def join_and_grab(live: LiveServer, code: str, name: str, kind: str = "beaker-water") -> tuple[AmaliyClient, str]:
    """A student joined through ``live``, holding the ``kind`` of equipment at the station they were given."""
    client = await AmaliyClient.join(live.base_url, code, name, auto_reconnect=True)
    station = await client.wait_station(timeout=WAIT)
    obj = f"{kind}@{station}"
    await client.grab(obj)
    await client.expect("grabbed", object=obj, timeout=WAIT)
    return client, obj


async def test_join_through_any_node_and_the_practical_survives_its_node_being_killed(deployment: Deployment) -> None:
    a = deployment.start(0)
    b, c = deployment.start(1, {"AMALIY_DEMO": "false"}), deployment.start(2, {"AMALIY_DEMO": "false"})
    clients: list[AmaliyClient] = []
    try:
        # the demo practical is on a; Ali joins through b, Bea through c, Cem through a
        ali, ali_holds = await join_and_grab(b, a.demo_code, "Ali")
        bea, bea_holds = await join_and_grab(c, a.demo_code, "Bea", "beaker-cuso4")
        cem = await AmaliyClient.join(a.base_url, a.demo_code, "Cem", auto_reconnect=True)
        clients += [ali, bea, cem]
        room = ali.welcome["snapshot"]["room"]
        assert ali.ws_url.endswith(f":{port_of(a) + 1}/room") and len(ali.ws_urls) == 3
        assert set(ali.participants) == {ali.id, bea.id, cem.id}
        seq = ali.seq

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        killed = time.monotonic()
        await wait_for(lambda: all(x.reconnects == 1 for x in clients), WAIT, "everyone back by themselves")
        outage = time.monotonic() - killed
        host = hosting([b, c])
        assert len(host) == 1  # one node took the room, decided by its lease
        for x in clients:
            assert x.connected and x.welcome["resumed"] is True and x.ws_url.endswith(f":{port_of(host[0]) + 1}/room")
        assert ali.objects[ali_holds]["holder"] == ali.id and bea.objects[bea_holds]["holder"] == bea.id
        assert ali.seq >= seq and set(ali.participants) == {ali.id, bea.id, cem.id}
        assert health(host[0])["cluster"]["failovers"] == 1
        metrics = httpx.get(host[0].base_url + "/metrics", timeout=5).text
        assert "amaliy_failovers_total 1.0" in metrics and "amaliy_rooms 1.0" in metrics and "amaliy_participants 3.0" in metrics
        assert "amaliy_leases 1.0" in metrics and "amaliy_redis_up 1.0" in metrics and 'amaliy_tick_lag_seconds{quantile="0.99"}' in metrics
        assert outage < WAIT
        # the practical goes on: a new student joins through the node that is not the host,
        # and the teacher link works through it too
        other = b if host[0] is c else c
        token = a.teacher_url.split("#token=", 1)[1]
        described = httpx.get(f"{other.base_url}/api/sessions/{room}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert described.status_code == 200 and described.json()["status"] == "open" and f":{port_of(host[0]) + 1}/room" in " ".join(described.json()["ws_urls"])
        dan = await AmaliyClient.join(other.base_url, a.demo_code, "Dan")
        clients.append(dan)
        await ali.wait_until(lambda: dan.id in ali.participants, WAIT, "Dan's arrival")
    finally:
        for x in clients:
            await x.close()


async def test_a_paused_host_never_writes_again_after_another_node_took_its_room(deployment: Deployment) -> None:
    # no snapshots for the test's length, so the audit sees every entry of the log
    quiet = {"AMALIY_SNAPSHOT_EVERY": "600"}
    a = deployment.start(0, quiet)
    b = deployment.start(1, {**quiet, "AMALIY_DEMO": "false"})
    redis = aioredis.Redis.from_url(deployment.redis_url)
    try:
        ali, held = await join_and_grab(b, a.demo_code, "Ali")
        room = ali.welcome["snapshot"]["room"]
        a.proc.send_signal(signal.SIGSTOP)  # frozen past its lease (1 s)
        await wait_for(lambda: ali.reconnects == 1, WAIT, "Ali back on b")
        assert ali.objects[held]["holder"] == ali.id
        a.proc.send_signal(signal.SIGCONT)
        await wait_for(lambda: health(a)["room_log"]["rooms"] == 0, WAIT, "a to give the room up")
        await ali.release(held)
        await ali.wait_until(lambda: ali.objects[held]["holder"] is None, WAIT, "the release on b")
        epochs = await RedisLog(redis).epochs(room)
        # b's adoption snapshot trimmed a's entries; after it, every entry is b's: a never wrote again
        assert epochs and set(epochs) == {max(epochs)} and max(epochs) >= 2
        assert any("another node's now; stopping this copy" in line for line in a.output)
        await ali.close()
    finally:
        await redis.aclose()


async def test_redis_restarted_empty_and_the_practical_goes_on(own_redis: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, where = own_redis
    dep = Deployment(tmp_path / "nodes", url, monkeypatch)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        a = dep.start(0)
        b = dep.start(1, {"AMALIY_DEMO": "false"})
        ali, held = await join_and_grab(b, a.demo_code, "Ali")
        held_room = ali.welcome["snapshot"]["room"]
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
        await wait_for(lambda: health(a)["cluster"]["redis"] == "down", WAIT, "a to notice Redis is gone")
        assert health(a)["status"] == "degraded"
        replacement = start_redis(port, where)  # back, empty
        try:
            room = held_room

            def seeded() -> bool:
                """a took the lease again, described the room and wrote a fresh snapshot: another node could adopt it."""
                cli = ["redis-cli", "-p", str(port)]
                listed = subprocess.run([*cli, "sismember", f"{dep.name}:rooms", room], capture_output=True, text=True).stdout.strip()
                snap = subprocess.run([*cli, "exists", f"amaliy:{{{room}}}:snap"], capture_output=True, text=True).stdout.strip()
                return health(a)["cluster"]["redis"] == "ok" and listed == "1" and snap == "1"

            await wait_for(seeded, WAIT, "a to take its room again and seed its log")
            await wait_for(lambda: ali.connected, WAIT, "Ali connected")
            assert ali.objects[held]["holder"] == ali.id
            # the log was seeded again from a's memory: kill a and b brings the room back from it
            a.proc.send_signal(signal.SIGKILL)
            reconnects = ali.reconnects
            await wait_for(lambda: ali.reconnects > reconnects and ali.connected, WAIT, "Ali back on b")
            assert ali.objects[held]["holder"] == ali.id
            await ali.close()
        finally:
            replacement.kill()
            replacement.wait()
    finally:
        dep.stop()


async def test_a_rolling_restart_of_every_node_loses_nothing(deployment: Deployment) -> None:
    nodes = [deployment.start(0), deployment.start(1, {"AMALIY_DEMO": "false"}), deployment.start(2, {"AMALIY_DEMO": "false"})]
    code = nodes[0].demo_code
    joined = [await join_and_grab(nodes[i], code, name, kind) for i, (name, kind) in enumerate([("Ali", "beaker-water"), ("Bea", "beaker-cuso4")])]
    clients = [client for client, _ in joined]
    try:
        for i in range(3):
            old = nodes[i]
            old.stop()  # SIGTERM: it hands its rooms off with a final snapshot, then releases them
            nodes[i] = deployment.restart(old, i)
            await wait_for(lambda: all(x.connected for x in clients), WAIT, f"everyone back after restarting node {i}")
            await wait_for(lambda: len(hosting(nodes)) == 1, WAIT, "one host")
        for x, obj in joined:
            assert x.objects[obj]["holder"] == x.id and set(x.participants) == {c.id for c in clients}
    finally:
        for x in clients:
            await x.close()


def serve_fails(data_dir: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port_pair()), "--data-dir", str(data_dir), "--no-demo"],
        cwd=REPO, env={**os.environ, "AMALIY_VOICE": "false", **env}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    return done.stderr


def test_a_node_that_cannot_join_says_why_and_starts_nothing(deployment: Deployment, tmp_path: Path) -> None:
    a = deployment.start(0)
    # Redis does not answer
    said = serve_fails(tmp_path / "x", {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert "does not answer" in said and "unset REDIS_URL" in said
    # another secret.key than the deployment's
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "secret.key").write_text(secrets.token_hex(32))
    assert "secret.key is not the deployment's" in serve_fails(tmp_path / "y", {})
    # the id of a node that is running
    node_id = health(a)["cluster"]["node"]
    assert f"Another live node runs as {node_id!r}" in serve_fails(deployment.data_dir(5), {"AMALIY_NODE_ID": node_id})


def test_the_log_of_a_killed_node_replays_to_what_its_students_saw(deployment: Deployment) -> None:
    """The state hash: a room restored from the shared log alone (here, in the test) is the room
    its students were in, holds and all."""
    a = deployment.start(0, {"AMALIY_SNAPSHOT_EVERY": "1"})

    async def run() -> None:
        ali, held = await join_and_grab(a, a.demo_code, "Ali")
        room = ali.welcome["snapshot"]["room"]
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        redis = aioredis.Redis.from_url(deployment.redis_url)
        stored = await RedisLog(redis).load(room)
        await redis.aclose()
        assert stored is not None
        import hashlib
        import hmac

        key = hmac.digest(bytes.fromhex(deployment.secret), b"amaliy-room-snapshot", hashlib.sha256)
        scene = sample_scene()
        back = restore(stored, key, lambda pid, version: scene).room
        assert back.holder_of(held) == ali.id and back.seq == ali.seq and set(back.participants) == set(ali.participants)
        await ali.close()

    asyncio.run(run())


async def test_courses_sign_ins_and_xp_are_one_deployments_through_any_node(deployment: Deployment) -> None:
    """Nodes on data dirs of their own share the records (server.replica) and the labs
    (server.shared_scenes): a lab uploaded through one node and a course made through another
    are both nodes'; roster students sign in through a node that does not host their practical;
    the host is killed mid-challenge, the practical resumes on the other node (which never had
    the lab uploaded to it), and every node's dashboard shows the challenge's points as XP
    counted once, though the new host replayed the records the old one had stored; a node
    restarted later shows the same."""
    a = deployment.start(0, {"AMALIY_DEMO": "false"})
    b = deployment.start(1, {"AMALIY_DEMO": "false"})
    teacher = key(a.teacher_key)
    clients: list[AmaliyClient] = []
    try:
        uploaded = upload(b, lab_manifest())
        assert uploaded.status_code == 201, uploaded.text
        with a.http() as http:
            listed = http.get("/api/scenes", headers=key(a.designer_key)).json()
            assert (PACKAGE, uploaded.json()["version"]) in {(v["package_id"], v["version"]) for v in listed}
            cid = http.post("/api/courses", json={"name": "Kimyo 9A"}, headers=teacher).json()["id"]
        with b.http() as http:
            roster = http.post(f"/api/courses/{cid}/roster", content=b"name\nAli\nBea\n", headers=teacher)
            assert roster.status_code == 201, roster.text
            codes = {s["name"]: s["code"] for s in roster.json()["students"]}
            assert http.put(f"/api/courses/{cid}/settings", json={"xp_per_point": 5}, headers=teacher).status_code == 200
            session = http.post("/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 1", "course": cid}, headers=teacher).json()
        with a.http() as http:  # b hosts the practical; Ali and Bea sign in through a
            for name in ("Ali", "Bea"):
                signed = http.post("/api/signin", json={"code": codes[name]})
                assert signed.status_code == 200, signed.text
                assert signed.json()["session"] == session["id"] and signed.json()["ws_url"] == b.ws_url
                client = AmaliyClient(signed.json()["ws_url"], signed.json()["token"], auto_reconnect=True, ws_urls=signed.json()["ws_urls"])
                await client.connect(timeout=WAIT)
                clients.append(client)
        ali, bea = clients
        for client in clients:
            await client.choose_station(1)
            await client.wait_station(1, timeout=WAIT)
        await place_beaker(ali)
        with a.http() as http:  # a teacher's view of the live practical through a node that does not host it
            live = http.get(f"/api/sessions/{session['id']}/results", headers=teacher).json()
            assert live["stations"][0]["steps_done"] == 1 and sorted(m["name"] for m in live["students"]) == ["Ali", "Bea"], live

        reconnects = [c.reconnects for c in clients]
        b.proc.send_signal(signal.SIGKILL)
        await wait_for(lambda: all(c.reconnects > r and c.connected for c, r in zip(clients, reconnects)), WAIT, "Ali and Bea back, on a")
        await light_and_answer(bea, ali)
        bonus = (await ali.expect("challenge_done", station=1, timeout=WAIT))["bonus"]
        xp = (10 + 6 + 4 + bonus) * 5

        def dashboard(node: LiveServer) -> dict[str, int]:
            with node.http() as http:
                return {s["name"]: s["xp"] for s in http.get(f"/api/courses/{cid}/dashboard", headers=teacher).json()["students"]}

        await wait_for(lambda: dashboard(a) == {"Ali": xp, "Bea": xp}, WAIT, f"{xp} XP each on a")
        b = deployment.restart(b, 1)
        assert dashboard(b) == {"Ali": xp, "Bea": xp}
        await wait_for(lambda: health(b)["records"]["applied"] == health(a)["records"]["applied"] > 0, WAIT, "b's replica as far as a's")
        records = health(b)["records"]
        assert records["mode"] == "shared" and records["redis"] == "ok" and records["behind"] == 0
        scraped = httpx.get(b.base_url + "/metrics", timeout=5).text
        assert re.search(r"^amaliy_records_applied \d+\.0$", scraped, re.M) and "amaliy_records_behind 0.0" in scraped
    finally:
        for client in clients:
            await client.close()


class CountingLRS(FakeLRS):
    """An LRS that takes everything and counts every POST of every statement id (duplicates too)."""

    def __init__(self) -> None:
        super().__init__(refuse="", busy=0)
        self.posted: Counter[str] = Counter()

    def answer(self, path: str, version: str | None, body: list[dict[str, Any]]) -> tuple[int, Any]:
        self.posted.update(s["id"] for s in body)
        return super().answer(path, version, body)


async def test_one_node_at_a_time_sends_the_outbox_and_the_next_goes_on_where_it_stopped(deployment: Deployment) -> None:
    """Every node has every statement queued (shared records), but one node sends them; when it
    is killed another takes over within the claim's 10 s, and no statement is POSTed twice."""
    fake = CountingLRS()
    env = {**lrs_env(fake.url), "AMALIY_XAPI_MAX_BACKOFF": "1", "AMALIY_DEMO": "false"}
    a, b = deployment.start(0, env), deployment.start(1, env)
    clients: list[AmaliyClient] = []
    try:
        await wait_for(lambda: health(a)["xapi"]["sender"] != health(b)["xapi"]["sender"], WAIT, "one sender")
        sender, host = (a, b) if health(a)["xapi"]["sender"] else (b, a)
        session = open_lab(host)
        await guests_finish(host, session["join_code"], clients)

        def drained() -> bool:
            return bool(fake.posted) and all(health(node)["xapi"]["pending"] == 0 for node in (sender, host))

        await wait_for(drained, DRAIN, "the statements sent and marked on both nodes")
        before = len(fake.posted)
        sender.proc.send_signal(signal.SIGKILL)
        for client in clients:  # leaving: "terminated" statements, queued after the sender died
            await client.close()
        clients.clear()
        await wait_for(lambda: health(host)["xapi"]["sender"] and health(host)["xapi"]["pending"] == 0 and len(fake.posted) > before,
                       DRAIN, "the host to take over sending")
        assert set(fake.posted.values()) == {1}, fake.posted.most_common(3)
        assert fake.accepted == fake.posted
    finally:
        for client in clients:
            await client.close()
        fake.close()


async def test_a_practical_open_before_its_node_joined_a_deployment_goes_on_in_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A school's one server, with a practical under way, is restarted as the first node of a
    deployment: the practical is resumed from the log under its data dir (no other node could),
    its student comes back holding what they held, and it is listed, so a second node sends
    joins to it."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    data_dir = tmp_path / "school"
    alone = start_server(data_dir, {"AMALIY_VOICE": "false", "AMALIY_RESUME_WINDOW": "120"})
    dep: Deployment | None = None
    ali = None
    try:
        ali, held = await join_and_grab(alone, alone.demo_code, "Ali")
        alone.proc.terminate()  # a clean stop: the room's final snapshot is in rooms.sqlite3
        alone.proc.wait(30)
        dep = Deployment(tmp_path / "more", "redis://127.0.0.1:6379/0", monkeypatch)
        (dep.data_dir(1) / "secret.key").write_text((data_dir / "secret.key").read_text())
        first = serve_again(alone, data_dir, port=port_of(alone))
        dep.nodes.append(first)
        await wait_for(lambda: ali.connected, WAIT, "Ali back, in the deployment")
        assert ali.objects[held]["holder"] == ali.id
        assert health(first)["rooms"] == 1 and health(first)["records"]["mode"] == "shared"
        second = dep.start(1, {"AMALIY_DEMO": "false"})
        cem = await AmaliyClient.join(second.base_url, alone.demo_code, "Cem")
        await ali.wait_until(lambda: cem.id in ali.participants, WAIT, what="Cem, joined through the second node, in Ali's room")
        await cem.close()
    finally:
        if ali is not None:
            await ali.close()
        if dep is not None:
            dep.stop()
        alone.stop()
