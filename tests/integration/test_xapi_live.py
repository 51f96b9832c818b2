"""Learning events as xAPI statements, against real `amaliy serve` processes and a real LRS:
Ralph (ralph-malph from PyPI), started by these tests. A course's students finish a lab and
every statement arrives once with the right actor, verb, object, result and registration;
an LRS that is down while a practical runs and comes back only after the node restarted
gets every statement once; an LRS that refuses one kind of statement and answers 503 at
first gets the rest, the refused ones set aside with the reason; and a URL that is no LRS
is a clear error in the log and /healthz while the room goes on. Every wait polls.

Ralph's ``lrs`` extra pins FastAPI 0.114 and uvicorn 0.30, which our own FastAPI cannot
share a virtualenv with, so Ralph runs from a virtualenv of its own, made with pip on the
first run (``lrs_python``) and kept in .venv/lrs."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from amaliy_client import AmaliyClient
from server import xapi

from tests.conftest import REPO, LiveServer, start_server
from tests.integration.test_challenges_live import PACKAGE, WAIT, key, lab_manifest, light_and_answer, place_beaker, results_of, serve_again, upload
from tests.integration.test_learners_live import finish_without_mistakes, sign_in

#: Ralph as the LRS; ``requests``: ralph.api imports it (for OIDC) though no extra of Ralph's lists it
RALPH = ("ralph-malph[cli,lrs]==5.1.0", "requests>=2.31")
LRS_VENV = REPO / ".venv" / "lrs"
LRS_USER, LRS_PASSWORD = "amaliy", "lrs-secret"
#: a slow test machine may take this long for the outbox to drain
DRAIN = 90.0

ADL = "http://adlnet.gov/expapi/verbs/"
INITIALIZED, COMPLETED, ANSWERED, TERMINATED = ADL + "initialized", ADL + "completed", ADL + "answered", ADL + "terminated"
MISTAKE, EARNED = xapi.VERBS["mistake"].id, xapi.VERBS["badge"].id

# Ralph's file backend opens its one statements file for "create" on every write, so as an LRS
# it stores the first POST and answers 500 to every later one; a file LRS must append.
_LAUNCH_RALPH = """
import sys
import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend
FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


# ------------------------------------------------------------------ the LRS


def lrs_python() -> Path:
    """The Python of Ralph's own virtualenv, made with pip when missing (once per machine)."""
    python = LRS_VENV / "bin" / "python"
    ready = LRS_VENV / "amaliy-ready"
    LRS_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(LRS_VENV.parent / "lrs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs on one machine build it once
        if ready.exists() and ready.read_text() == " ".join(RALPH) and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LRS_VENV)], check=True, timeout=300)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *RALPH], capture_output=True, text=True, timeout=900
        )
        if installed.returncode:
            raise RuntimeError(f"pip could not install {' '.join(RALPH)} for the test LRS:\n{installed.stdout}{installed.stderr}")
        ready.write_text(" ".join(RALPH))
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Ralph:
    """A Ralph LRS process on a port of its own, storing statements in ``folder``."""

    python: Path
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xAPI"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RALPH_APP_DIR": str(self.folder / "app"),
            "RALPH_AUTH_FILE": str(self.folder / "app" / "auth.json"),
            "RALPH_RUNSERVER_BACKEND": "fs",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.folder / "statements"),
            "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "1000",
        }

    def add_user(self) -> None:
        """Ralph's own CLI writes the basic-auth user Amaliy signs in as."""
        (self.folder / "app").mkdir(parents=True, exist_ok=True)
        (self.folder / "statements").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(self.python), "-m", "ralph", "auth", "-u", LRS_USER, "-p", LRS_PASSWORD, "-s", "all", "-A", "amaliy-node", "http://amaliy.test", "-w"],
            env=self.env(), cwd=self.folder, check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        log = open(self.folder / "ralph.log", "ab")
        self.proc = subprocess.Popen([str(self.python), "-c", _LAUNCH_RALPH, str(self.port)], env=self.env(), cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Ralph exited:\n" + (self.folder / "ralph.log").read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/__heartbeat__", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Ralph did not answer:\n" + (self.folder / "ralph.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def statements(self) -> list[dict[str, Any]]:
        """Every statement the LRS holds, through its xAPI GET (following ``more``)."""
        out: list[dict[str, Any]] = []
        path = "/xAPI/statements?limit=1000"
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=(LRS_USER, LRS_PASSWORD), headers={"X-Experience-API-Version": "1.0.3"}, timeout=10) as http:
            while path:
                answer = http.get(path)
                answer.raise_for_status()
                out += answer.json()["statements"]
                path = answer.json().get("more") or ""
        return out


@pytest.fixture(scope="session")
def ralph_python() -> Path:
    return lrs_python()


@pytest.fixture
def ralph(ralph_python: Path, tmp_path: Path) -> Iterator[Ralph]:
    lrs = Ralph(ralph_python, tmp_path / "ralph")
    lrs.add_user()
    yield lrs
    lrs.stop()


def lrs_env(url: str) -> dict[str, str]:
    return {"AMALIY_XAPI_URL": url, "AMALIY_XAPI_USERNAME": LRS_USER, "AMALIY_XAPI_PASSWORD": LRS_PASSWORD, "AMALIY_XAPI_MAX_BACKOFF": "2"}


# ------------------------------------------------------------------ helpers


def outbox(live: LiveServer) -> dict[str, Any]:
    with live.http() as http:
        health = http.get("/healthz")
        assert health.status_code == 200, health.text
        return health.json()["xapi"]


async def until(check: Callable[[], Any], what: str, live: LiveServer, timeout: float = DRAIN) -> Any:
    """Poll ``check`` until it returns something true; return it (on a timeout, say what the outbox is at)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; outbox {outbox(live)}; log:\n" + "".join(live.output[-40:]))
        await asyncio.sleep(0.2)


def what(statement: dict[str, Any], base: str) -> tuple[str, str, str]:
    """(verb, object without the node's address, actor account name): a statement's identity here."""
    return statement["verb"]["id"], statement["object"]["id"].removeprefix(base), statement["actor"]["account"]["name"]


LAB = f"/xapi/activities/scene/{PACKAGE}"


def step(name: str) -> str:
    return f"{LAB}/steps/{name}"


async def guests_finish(live: LiveServer, code: str, clients: list[AmaliyClient], wrong_first: bool = False) -> tuple[AmaliyClient, AmaliyClient]:
    """Two guests at station 1 do the lab; with ``wrong_first`` Ali answers wrong once (a mistake)."""
    ali, bea = [await AmaliyClient.join(live.base_url, code, name) for name in ("Ali", "Bea")]
    clients += [ali, bea]
    for client in (ali, bea):
        await client.choose_station(1)
        await client.wait_station(1, timeout=WAIT)
    await ali.wait_until(lambda: set(ali.lab.stations[1]["members"]) == {ali.id, bea.id}, WAIT, what="the group")
    if not wrong_first:
        await finish_without_mistakes(ali, bea)
        return ali, bea
    await place_beaker(ali)
    await light_and_answer(bea, ali, wrong_first=True)
    return ali, bea


def open_lab(live: LiveServer, course: str | None = None) -> dict[str, Any]:
    uploaded = upload(live, lab_manifest_with_badges())
    assert uploaded.status_code == 201, uploaded.text
    with live.http() as http:
        body: dict[str, Any] = {"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 1"}
        if course:
            body["course"] = course
        opened = http.post("/api/sessions", json=body, headers=key(live.teacher_key))
    assert opened.status_code == 201, opened.text
    return opened.json()


def lab_manifest_with_badges() -> dict[str, Any]:
    data = lab_manifest()
    data["challenge"]["badges"] = [{"id": "done", "name": "Beaker heated", "description": "Finished the lab.", "criteria": {"finished": True}}]
    return data


def guest_statements(ali: str, bea: str, wrong_first: bool) -> Counter[tuple[str, str, str]]:
    """What two guests finishing the lab at one station make (no course: no badges)."""
    expected: Counter[tuple[str, str, str]] = Counter()
    for pid in (ali, bea):
        expected[(INITIALIZED, LAB, pid)] += 1
        for name in ("place", "light", "flame"):
            expected[(COMPLETED, step(name), pid)] += 1
        expected[(COMPLETED, LAB, pid)] += 1
        if wrong_first:
            expected[(MISTAKE, step("flame"), pid)] += 1
    expected[(ANSWERED, step("flame"), ali)] += 2 if wrong_first else 1
    return expected


async def closing(clients: list[AmaliyClient]) -> None:
    for client in clients:
        await client.close()
    clients.clear()


# ------------------------------------------------------------------ (a) the LRS is up


async def test_a_course_practical_arrives_at_the_lrs_once_per_event_with_actor_verb_object_result_and_registration(ralph: Ralph, tmp_path: Path) -> None:
    ralph.start()
    live = start_server(tmp_path / "data", env=lrs_env(ralph.url))
    clients: list[AmaliyClient] = []
    teacher = key(live.teacher_key)
    try:
        initial = outbox(live)
        assert initial["enabled"] is True and initial["status"] == "ok" and initial["pending"] == initial["sent"] == 0
        with live.http() as http:
            cid = http.post("/api/courses", json={"name": "Kimyo 9A"}, headers=teacher).json()["id"]
            roster = http.post(f"/api/courses/{cid}/roster", content="name\nAli\nBea\n".encode(), headers=teacher).json()["students"]
            ids = {s["name"]: s["id"] for s in roster}
            settings = {"xp_per_point": 10, "badges": [{"id": "level-2", "name": "Level 2", "criteria": {"level": 2}}]}
            assert http.put(f"/api/courses/{cid}/settings", json=settings, headers=teacher).status_code == 200
        session = open_lab(live, cid)
        with live.http() as http:
            ali, bea = [await sign_in(http, s["code"]) for s in roster]
        cem = await AmaliyClient.join(live.base_url, session["join_code"], "Cem")  # a guest, at the other bench
        clients += [ali, bea, cem]
        for client, station in ((ali, 1), (bea, 1), (cem, 2)):
            await client.choose_station(station)
            await client.wait_station(station, timeout=WAIT)
        await ali.wait_until(lambda: set(ali.lab.stations[1]["members"]) == {ali.id, bea.id}, WAIT, what="the group")
        # Ali tips the beaker (a mistake for the group), sets it right, Bea lights the burner, Ali answers wrong, then right
        await place_beaker(ali, tip_first=True)
        await light_and_answer(bea, ali, wrong_first=True)
        done = await ali.expect("challenge_done", station=1, timeout=WAIT)

        expected: Counter[tuple[str, str, str]] = Counter({(INITIALIZED, LAB, cem.id): 1, (ANSWERED, step("flame"), ids["Ali"]): 2})
        for pid in (ids["Ali"], ids["Bea"]):
            expected[(INITIALIZED, LAB, pid)] += 1
            for name in ("place", "light", "flame"):
                expected[(COMPLETED, step(name), pid)] += 1
            expected[(MISTAKE, step("place"), pid)] += 1
            expected[(MISTAKE, step("flame"), pid)] += 1
            expected[(COMPLETED, LAB, pid)] += 1
            expected[(EARNED, f"/api/badges/achievements/{PACKAGE}/done", pid)] += 1
            expected[(EARNED, "/api/badges/achievements/course/level-2", pid)] += 1
        total = sum(expected.values())
        await until(lambda: (lambda o: o["pending"] == 0 and o["sent"] == total)(outbox(live)), f"{total} statements sent", live)
        stored = ralph.statements()
        assert Counter(what(s, live.base_url) for s in stored) == expected
        assert len({s["id"] for s in stored}) == total

        health = outbox(live)
        assert health["status"] == "ok" and health["set_aside"] == 0 and health["last_error"] is None and health["last_success"]
        assert health["url"] == ralph.url and LRS_PASSWORD not in json.dumps(health)

        registration = xapi.registration(session["id"])
        by = {what(s, live.base_url): s for s in stored if expected[what(s, live.base_url)] == 1}
        answers = sorted((s for s in stored if s["verb"]["id"] == ANSWERED), key=lambda s: s["timestamp"])
        for statement in stored:
            context = statement["context"]
            assert context["registration"] == registration and context["platform"] == "Amaliy"
            assert context["contextActivities"]["grouping"][0]["id"] == f"{live.base_url}/xapi/activities/course/{cid}"
            assert context["instructor"]["account"]["homePage"] == live.base_url
            assert statement["actor"]["account"]["homePage"] == live.base_url
        joined = by[(INITIALIZED, LAB, ids["Ali"])]
        assert joined["actor"] == {"objectType": "Agent", "name": "Ali", "account": {"homePage": live.base_url, "name": ids["Ali"]}}
        assert joined["object"]["definition"]["name"] == {"und": "Heat the beaker"}
        assert by[(INITIALIZED, LAB, cem.id)]["actor"]["name"] == "Cem" and cem.id.startswith("p_")
        placed = by[(COMPLETED, step("place"), ids["Bea"])]
        assert placed["result"]["score"] == {"raw": 10, "min": 0, "max": 10, "scaled": 1.0} and placed["result"]["success"] is True
        assert placed["result"]["duration"].startswith("PT") and placed["result"]["duration"].endswith("S")
        assert placed["context"]["contextActivities"]["parent"][0]["id"] == f"{live.base_url}{LAB}"
        assert placed["context"]["extensions"][xapi.extension("by")] == ids["Ali"]
        finished = by[(COMPLETED, LAB, ids["Ali"])]
        assert finished["result"]["score"]["raw"] == done["score"] and finished["result"]["score"]["max"] == 30
        assert finished["result"]["success"] is True and finished["result"]["completion"] is True
        assert finished["result"]["duration"] == xapi.duration(done["elapsed"])
        tipped = by[(MISTAKE, step("place"), ids["Bea"])]
        assert tipped["result"]["success"] is False and tipped["result"]["extensions"][xapi.extension("mistake")] == "tipped"
        assert [(a["result"]["success"], a["result"]["response"]) for a in answers] == [(False, "1"), (True, "0")]
        assert answers[0]["object"]["definition"]["interactionType"] == "choice"
        badge = by[(EARNED, f"/api/badges/achievements/{PACKAGE}/done", ids["Bea"])]
        assert badge["object"]["definition"]["name"] == {"und": "Beaker heated"} and badge["context"]["registration"] == registration
        with live.http() as http:  # the achievement the statement names is the node's own
            assert http.get(badge["object"]["id"].removeprefix(live.base_url)).status_code == 200
    finally:
        await closing(clients)
        live.stop()


# ------------------------------------------------------------------ (b) the LRS is down, the node restarts


async def test_statements_queued_while_the_lrs_is_down_survive_a_restart_and_arrive_once(ralph: Ralph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lrs_env(ralph.url).items():  # serve_again starts the node with the environment
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    clients: list[AmaliyClient] = []
    try:
        session = open_lab(live)
        ali, bea = await guests_finish(live, session["join_code"], clients, wrong_first=True)
        expected = guest_statements(ali.id, bea.id, wrong_first=True)
        total = sum(expected.values())
        down = await until(lambda: (lambda o: o if o["pending"] == total and o["last_error"] else None)(outbox(live)), f"{total} statements pending", live)
        assert down["status"] == "retrying" and down["sent"] == 0 and "cannot reach the LRS" in down["last_error"]
        assert any("cannot reach the LRS" in line for line in live.output)
        first_base = live.base_url

        await closing(clients)  # the two leave: a "terminated" each
        expected.update({(TERMINATED, LAB, ali.id): 1, (TERMINATED, LAB, bea.id): 1})
        total += 2
        live.stop()
        live = serve_again(live, data_dir)
        assert outbox(live)["pending"] == total  # kept across the restart
        ralph.start()
        await until(lambda: (lambda o: o["pending"] == 0 and o["sent"] == total)(outbox(live)), "the outbox to drain", live)
        stored = ralph.statements()
        assert Counter(what(s, first_base) for s in stored) == expected
        assert len({s["id"] for s in stored}) == total
        assert all(s["context"]["registration"] == xapi.registration(session["id"]) for s in stored)
        after = outbox(live)  # the last error stays in view, with its time, until a newer one
        assert after["status"] == "ok" and after["failures"] == 0 and after["last_success"] > after["last_error_at"]
    finally:
        await closing(clients)
        live.stop()


# ------------------------------------------------------------------ (c) an LRS that refuses some statements, and is busy at first


class FakeLRS:
    """A small LRS double for what a real one will not do on demand: answer 503 to the first
    ``busy`` POSTs, and 400 to any batch holding a statement with the verb ``refuse`` (as a
    strict LRS refuses a whole batch for one bad statement). It keeps what it accepts by id."""

    def __init__(self, refuse: str, busy: int) -> None:
        self.refuse, self.busy = refuse, busy
        self.posts: list[int] = []
        self.accepted: Counter[str] = Counter()
        self.statements: dict[str, dict[str, Any]] = {}
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = lrs.answer(self.path, self.headers.get("X-Experience-API-Version"), body)
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("X-Experience-API-Version", "1.0.3")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/xAPI"

    def answer(self, path: str, version: str | None, body: list[dict[str, Any]]) -> tuple[int, Any]:
        self.posts.append(len(body))
        if path != "/xAPI/statements" or version != "1.0.3":
            return 400, {"detail": f"bad request to {path} (version {version})"}
        if len(self.posts) <= self.busy:
            return 503, {"detail": "warming up"}
        refused = [s["id"] for s in body if s["verb"]["id"] == self.refuse]
        if refused:
            return 400, {"detail": f"verb {self.refuse} is not accepted here ({len(refused)} statement(s))"}
        new = [s for s in body if s["id"] not in self.statements]
        for statement in new:
            self.statements[statement["id"]] = statement
            self.accepted[statement["id"]] += 1
        return (200, [s["id"] for s in new]) if new else (204, None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_statements_the_lrs_refuses_are_set_aside_with_the_reason_and_the_rest_arrive_after_503s(tmp_path: Path) -> None:
    fake = FakeLRS(refuse=MISTAKE, busy=3)
    live = start_server(tmp_path / "data", env={**lrs_env(fake.url), "AMALIY_XAPI_MAX_BACKOFF": "1"})
    clients: list[AmaliyClient] = []
    try:
        session = open_lab(live)
        ali, bea = await guests_finish(live, session["join_code"], clients, wrong_first=True)
        expected = guest_statements(ali.id, bea.id, wrong_first=True)
        refused = expected[(MISTAKE, step("flame"), ali.id)] + expected[(MISTAKE, step("flame"), bea.id)]
        delivered = sum(expected.values()) - refused
        health = await until(
            lambda: (lambda o: o if o["pending"] == 0 and o["sent"] == delivered and o["set_aside"] == refused else None)(outbox(live)),
            "the outbox to drain", live,
        )
        assert fake.posts[:3] and len(fake.posts) > 3  # the three 503s were retried
        assert all(count == 1 for count in fake.accepted.values()) and len(fake.accepted) == delivered
        got = Counter(what(s, live.base_url) for s in fake.statements.values())
        assert got == Counter({k: n for k, n in expected.items() if k[0] != MISTAKE})
        assert health["status"] == "ok" and len(health["set_aside_recent"]) == refused
        for aside in health["set_aside_recent"]:
            assert aside["verb"] == MISTAKE and "400" in aside["reason"] and f"verb {MISTAKE} is not accepted here" in aside["reason"]
        log = "".join(live.output)
        assert "set aside, not sent again" in log and "503" in log
        # the room did not notice: the results have every step
        students = results_of(live, session["id"], live.teacher_key).json()["students"]
        assert [len(s["steps"]) for s in students] == [3, 3]
    finally:
        await closing(clients)
        live.stop()
        fake.close()


# ------------------------------------------------------------------ (d) a URL that is no LRS


async def test_an_xapi_url_that_is_no_lrs_is_a_clear_error_in_the_log_and_healthz_and_the_room_goes_on(server: LiveServer, tmp_path: Path) -> None:
    not_an_lrs = f"{server.base_url}/healthz"  # another Amaliy node's health page
    live = start_server(tmp_path / "data", env=lrs_env(not_an_lrs))
    clients: list[AmaliyClient] = []
    try:
        session = open_lab(live)
        ali, bea = await guests_finish(live, session["join_code"], clients)
        health = await until(lambda: (lambda o: o if o["last_error"] else None)(outbox(live)), "the error", live)
        assert re.search(r"/healthz/statements answered 40[45] .*: this is not an xAPI LRS; AMALIY_XAPI_URL must be", health["last_error"]), health
        assert health["status"] == "retrying" and health["set_aside"] == 0 and health["sent"] == 0 and health["pending"] >= 1
        await until(lambda: any("not an xAPI LRS" in line for line in live.output), "the error in the log", live)
        with live.http() as http:
            assert http.get("/healthz").json()["status"] == "ok"
        students = results_of(live, session["id"], live.teacher_key).json()["students"]
        assert [s["done"] for s in students] == [True, True]
        # and statements keep waiting for a real LRS: nothing was dropped
        assert outbox(live)["pending"] == sum(guest_statements(ali.id, bea.id, wrong_first=False).values())
    finally:
        await closing(clients)
        live.stop()
