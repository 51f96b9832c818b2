"""One Amaliy node: the store, the live rooms, the room socket server and the HTTP app.

Rooms live in this process (embedded default). The Node is the seam where a
shared room directory and bus will plug in for several nodes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from realtime.audio.supervisor import MediaSupervisor
from realtime.fanout import RoomRunner
from realtime.protocol import CloseCode, End
from realtime.roles import Role
from realtime.room import SYSTEM, Record, Room
from scenes import samples
from scenes.ingest import IngestLimits
from scenes.model import Scene, SceneError
from scenes.package import pack_files
from scenes.store import SceneStore, SceneVersion, Staged
from server.auth import Claims, issue_token, load_secret
from server.config import Config
from server.ingest_pool import IngestPool
from server.package_check import ingest_package
from server.results import ResultsWriter
from server.room_socket import ROOM_PATH, RoomSocket
from server.store import Session, Store, User
from server.xapi_outbox import Outbox

log = logging.getLogger("amaliy.node")

_SWEEP_PERIOD = 1.0


class NodeError(Exception):
    """A request the node refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        #: challenge records from the rooms, written off the event loop (server.results)
        self.results = ResultsWriter(self.store)
        #: learning events as xAPI statements, queued with the records and sent to the LRS if one is set (server.xapi_outbox)
        self.xapi = Outbox(self.store.read(lambda db: Path(db.execute("PRAGMA database_list").fetchone()[2])), config.xapi())
        self.secret = load_secret(config.data_dir)
        self.scenes = SceneStore(config.data_dir / "scenes")
        self.ingest_limits: IngestLimits = config.ingest_limits()
        self.runners: dict[str, RoomRunner] = {}
        self.sockets: set[RoomSocket] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loaded: dict[tuple[str, int], Scene] = {}
        #: wall-clock time minus the event loop's clock, read at the first record (see _record)
        self._wall_offset: float | None = None
        # Ingest is CPU-heavy (trimesh) and its input untrusted: it runs in short-lived
        # processes under limits, so rooms keep ticking whatever is uploaded.
        self.ingest_pool = IngestPool(config.ingest_pool(), self.ingest_limits, self.scenes.blobs.folder)
        # Voice runs in its own process: aiortc would cost the room ticker ~1 ms per caller per 20 ms.
        self.media: MediaSupervisor | None = MediaSupervisor(lambda: self.runners, config.media_settings()) if config.voice else None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.install_samples()
        await self.xapi.start(self.base_url())  # before any room can store a record
        if self.media is not None:
            self.media.start()
        self._server = await loop.create_server(
            lambda: RoomSocket(self), self.config.host, self.config.room_port, reuse_address=True, backlog=2048
        )
        for session in self.store.sessions(status="open"):
            if session.preview:  # a designer's previews are throwaway: they end with the process
                self.store.end_session(session.id)
                continue
            try:
                self._start_room(session)
            except NodeError as exc:
                log.warning("ending practical %s: %s", session.id, exc)
                self.store.end_session(session.id)
        self._sweeper = loop.call_later(_SWEEP_PERIOD, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.ingest_pool.close()
        if self._server is not None:
            self._server.close()
        for sock in list(self.sockets):
            sock.close(CloseCode.GOING_AWAY, "server shutting down")
        for runner in self.runners.values():
            runner.stop()
        if self.media is not None:
            await self.media.stop()
        await asyncio.sleep(0)
        await self.results.close()
        await self.xapi.stop()
        self.store.close()
        self.scenes.close()

    def _sweep(self) -> None:
        """Drop sockets that went silent (a vanished client keeps no TCP alive)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for sock in list(self.sockets):
            if now - sock.last_seen > self.config.limits.idle_timeout:
                sock.close(CloseCode.IDLE, f"silent for {self.config.limits.idle_timeout:g} s; send a ping when idle")
        self._sweeper = loop.call_later(_SWEEP_PERIOD, self._sweep)

    # ------------------------------------------------------------------ sessions

    # ------------------------------------------------------------------ scenes

    def install_samples(self) -> None:
        """Put the sample labs into the store through the same ingest as uploads (idempotent).

        They are checked against the default limits: an operator's tighter upload
        budgets are for designers' packages, not for the labs shipped with the server.
        """
        for package_id, files in samples.SAMPLES.items():
            with tempfile.TemporaryDirectory(prefix="amaliy-sample-") as tmp:
                path = Path(tmp) / f"{package_id}.zip"
                path.write_bytes(pack_files(files()))
                self.scenes.add(self.scenes.blobs.stage(ingest_package(path), path), author="Amaliy samples")

    async def ingest(self, package: Path) -> Staged:
        """Validate, convert and stage an uploaded package in an ingest worker (server.ingest_pool)."""
        return await self.ingest_pool.ingest(package)

    def load_scene(self, version: SceneVersion) -> Scene:
        key = (version.package_id, version.version)
        if key not in self._loaded:
            glb_url = f"/api/scenes/{version.package_id}/versions/{version.version}/scene.glb"
            try:
                self._loaded[key] = Scene.from_processed(self.scenes.server_data(version), version.version, glb_url)
            except SceneError as exc:
                raise NodeError(422, f"{version.package_id} version {version.version} cannot be opened: {exc}. Upload a corrected version.") from None
        return self._loaded[key]

    def scenes_in_use(self) -> set[tuple[str, int]]:
        """(package id, version) of every live practical."""
        return {(r.room.scene.id, r.room.scene.version) for r in self.runners.values()}

    def delete_scene(self, package_id: str, version: int) -> None:
        for session in self.store.sessions(status="open"):
            if session.preview and (session.scene_id, session.scene_version) == (package_id, version):
                self.end_session(session.id)  # a preview never keeps a version from being deleted
        if (package_id, version) in self.scenes_in_use():
            raise NodeError(409, f"{package_id} version {version} is used by a live practical; end it first.")
        if not self.scenes.delete(package_id, version):
            raise NodeError(404, f"No scene {package_id!r} version {version}.")
        self._loaded.pop((package_id, version), None)

    # ------------------------------------------------------------------ sessions

    def _start_room(self, session: Session) -> RoomRunner:
        version = self.scenes.get(session.scene_id, session.scene_version)
        if version is None:
            raise NodeError(410, f"Scene {session.scene_id} version {session.scene_version} is no longer stored.")
        room = Room(session.id, self.load_scene(version), self.config.limits, run=secrets.token_hex(4))
        runner = RoomRunner(room, asyncio.get_running_loop(), on_end=self._room_ended)
        if not session.preview:  # a preview's progress is the designer's to see (preview_debug), not a result
            runner.record = self._record
            challenge = room.challenges.public_challenge()
            if challenge is not None:
                self.store.set_challenge(session.id, challenge)
        if self.media is not None:
            runner.media = self.media.media
            runner.after_tick = self.media.after_tick
        self.runners[session.id] = runner
        runner.start()
        return runner

    def _record(self, runner: RoomRunner, record: Record) -> None:
        """A room's record, stored with its room-clock ``t`` turned into wall-clock time.

        The two clocks' offset is read once per node: reading both clocks for every record
        lets a pause between the two reads (another thread holding the GIL) put two records
        a few milliseconds apart in the wrong order."""
        t = record.data.get("t")
        if self._wall_offset is None:
            self._wall_offset = time.time() - runner.loop.time()
        at = t + self._wall_offset if isinstance(t, (int, float)) else runner.loop.time() + self._wall_offset
        self.results.add(runner.room.id, record, at)

    def _room_ended(self, runner: RoomRunner) -> None:
        self.runners.pop(runner.room.id, None)
        if self.media is not None:
            self.media.room_closed(runner.room.id)
        self.store.end_session(runner.room.id)

    def open_session(
        self, teacher: User, scene_id: str, version: int | None = None, title: str | None = None, course_id: str | None = None
    ) -> Session:
        """Open a practical from a stored scene version (the latest when ``version`` is None)."""
        stored = self.scenes.get(scene_id, version)
        if stored is None:
            available = ", ".join(v.package_id for v in self.scenes.latest_all())
            which = f"{scene_id!r}" if version is None else f"{scene_id!r} version {version}"
            raise NodeError(404, f"There is no scene {which}; available: {available}.")
        if len(self.store.sessions(teacher.id, "open")) >= self.config.max_sessions_per_teacher:
            raise NodeError(429, f"You already have {self.config.max_sessions_per_teacher} open practicals; end one first.")
        session = self.store.open_session(teacher.id, scene_id, stored.version, title or stored.title, course_id=course_id)
        self._start_room(session)
        return session

    def end_session(self, session_id: str) -> None:
        runner = self.runners.get(session_id)
        if runner is not None:
            runner.handle(SYSTEM, End(type="end"))
        else:
            self.store.end_session(session_id)

    def teacher_token(self, teacher: User, session: Session) -> str:
        claims = Claims(f"{teacher.id}-{session.id[2:]}", session.id, Role.TEACHER, teacher.name)
        return issue_token(self.secret, claims, self.config.token_ttl)

    # ------------------------------------------------------------------ designer previews

    def open_preview(self, designer: User, scene_id: str, version: int) -> Session:
        """A private practical of one scene version for its designer to try: no join code,
        listed to nobody, its records not kept as results. A designer's earlier preview of
        the same version ends (versions never change, so a new preview is a fresh start)."""
        stored = self.scenes.get(scene_id, version)
        if stored is None:
            raise NodeError(404, f"No scene {scene_id} version {version}.")
        mine = [s for s in self.store.sessions(designer.id, "open") if s.preview]
        for old in list(mine):
            if (old.scene_id, old.scene_version) == (scene_id, stored.version):
                self.end_session(old.id)
                mine.remove(old)
        if len(mine) >= self.config.max_sessions_per_teacher:
            raise NodeError(429, f"You already have {len(mine)} open previews; end one first.")
        session = self.store.open_session(designer.id, scene_id, stored.version, f"Preview: {stored.title}", preview=True)
        try:
            self._start_room(session)
        except NodeError:
            self.store.end_session(session.id)
            raise
        return session

    def preview_token(self, designer: User, session: Session) -> tuple[str, str]:
        """The designer's way into their preview: a student's token, so they can do the challenge;
        returns it with the participant id it carries (fixed per designer and preview)."""
        claims = Claims(f"{designer.id}-{session.id[2:]}", session.id, Role.STUDENT, designer.name)
        return issue_token(self.secret, claims, self.config.token_ttl), claims.participant_id

    def preview_debug(self, session_id: str) -> dict[str, Any]:
        """What the challenge engine sees now in a running preview: per station, each step's
        state (open, done, whether its condition holds now) and every property's value."""
        runner = self.runners.get(session_id)
        if runner is None:
            raise NodeError(409, "This preview has ended; open a new one.")
        engine = runner.room.challenges
        stations = []
        for station in engine.stations.public():
            number = station["number"]
            progress = engine.progress[number]
            steps = engine.debug(number) if engine.challenge is not None else []
            stations.append(
                {
                    **station,
                    "started": progress.started is not None,
                    "finished": progress.finished is not None,
                    "score": progress.public()["score"],
                    "steps": steps,
                }
            )
        return {
            "session": session_id,
            "preview": True,
            "challenge": None if engine.challenge is None else engine.challenge.id,
            "stations": stations,
            "properties": engine.properties.public(engine.names),
        }

    # ------------------------------------------------------------------ addresses

    def base_url(self, http_host: str | None = None, scheme: str = "http") -> str:
        """The server's address: ``public_url`` if set, else as seen by a client that reached
        us at ``http_host`` (a request's Host), else the configured host and port."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        if http_host:
            return f"{scheme}://{http_host}"
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = lan_address()
        return f"http://{host}:{self.config.port}"

    def ws_url(self, http_host: str | None = None) -> str:
        """The room socket address as seen by a client that reached us at ``http_host``."""
        if self.config.public_url:
            parsed = urlsplit(self.config.public_url)
            scheme = "wss" if parsed.scheme == "https" else "ws"
        else:
            parsed = urlsplit("//" + http_host if http_host else self.base_url())
            scheme = "ws"
        hostname = parsed.hostname or "127.0.0.1"
        if ":" in hostname:
            hostname = f"[{hostname}]"
        return f"{scheme}://{hostname}:{self.config.room_port}{ROOM_PATH}"


def lan_address() -> str:
    """This machine's address on the school network, for links students can open."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
