"""One Amaliy node: the store, the live rooms, the room socket server and the HTTP app.

Rooms live in this process. Each room's inputs and snapshots go to the room log
(realtime.log): under the data dir on its own, so a node that restarts after a
crash or a power cut resumes its open practicals where their logs end; in Redis
with REDIS_URL, where several nodes share rooms under leases (server.cluster)
and a room whose node died is adopted by another (``_adopt``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import socket
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from realtime.audio.pool import MediaPool, default_workers
from realtime.fanout import RoomRunner
from realtime.log.backend import Fence, RoomLogBackend
from realtime.log.embedded import EmbeddedLog
from realtime.log.entries import LogCorrupt
from realtime.log.journal import Journal, JournalSettings
from realtime.log.lease import LeaseSettings
from realtime.log.recovery import Restored, restore
from realtime.log.snapshot import SnapshotRefused
from realtime.audio.ipc import VOICE_BITRATE_BY_LEVEL
from realtime.protocol import CloseCode, End
from realtime.roles import Role
from realtime.room import SYSTEM, Disconnect, Record, Room
from scenes import samples
from scenes.addresses import glb_phone_url, glb_url
from scenes.ingest import IngestLimits
from scenes.model import Scene, SceneError
from scenes.package import pack_files
from scenes.store import SceneStore, SceneVersion, Staged
from server.auth import Claims, issue_token, load_secret
from server.cluster import Addresses, Cluster
from server.config import Config
from server.ingest_pool import IngestPool
from server.package_check import ingest_package
from server.results import ResultsWriter
from server.shared_scenes import SharedScenes
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
        #: the records: this node's SQLite file, or with REDIS_URL its replica of the deployment's (server.replica)
        self.store = Store(config.data_dir, config.shared_records())
        #: challenge records from the rooms, written off the event loop (server.results)
        self.results = ResultsWriter(self.store)
        #: learning events as xAPI statements, queued with the records and sent to the LRS if one is set
        #: (server.xapi_outbox); in a deployment, by one node at a time
        replica = self.store.replica
        self.xapi = Outbox(self.store, config.xapi(), may_send=(lambda: replica.claim("xapi-sender")) if replica else lambda: True)
        self.secret = load_secret(config.data_dir)
        #: with REDIS_URL, this node's part in a deployment of several (server.cluster); None: on its own
        self.cluster: Cluster | None = None
        if config.redis_url:
            node_id = config.node_id or f"{socket.gethostname()}:{config.port}"
            addresses = Addresses(self.base_url(), self.ws_url())
            self.cluster = Cluster(config.redis_url, node_id, addresses, self.secret, LeaseSettings(config.lease_ttl_ms), config.deployment)
        #: the room log (realtime.log): Redis Streams shared by the nodes, or a file under the data dir;
        #: and the key its snapshots are sealed with
        self.room_log: RoomLogBackend = self.cluster.log if self.cluster else EmbeddedLog(config.data_dir)
        self.journal_settings = JournalSettings(snapshot_every=config.snapshot_every)
        self.snapshot_key = hmac.digest(self.secret, b"amaliy-room-snapshot", hashlib.sha256)
        #: rooms whose log could not be loaded at start, with the reason (for /healthz)
        self.unloadable: dict[str, str] = {}
        #: rooms whose lease this node is trying to take again (server.cluster)
        self._reclaiming: set[str] = set()
        self.scenes = SceneStore(config.data_dir / "scenes")
        #: with REDIS_URL, the deployment's labs in Redis, so any node can run a lab uploaded through another
        self.shared_scenes = SharedScenes(config.redis_url, config.deployment, self.scenes) if config.redis_url else None
        self._scenes_syncing = asyncio.Lock()
        self.ingest_limits: IngestLimits = config.ingest_limits()
        self.runners: dict[str, RoomRunner] = {}
        self.sockets: set[RoomSocket] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loaded: dict[tuple[str, int], Scene] = {}
        #: per room, wall-clock time minus the room's clock, read at its first record (see _record)
        self._wall_offset: dict[str, float] = {}
        # Ingest is CPU-heavy (trimesh) and its input untrusted: it runs in short-lived
        # processes under limits, so rooms keep ticking whatever is uploaded.
        self.ingest_pool = IngestPool(config.ingest_pool(), self.ingest_limits, self.scenes.blobs.folder)
        # Voice runs in its own process: aiortc would cost the room ticker ~1 ms per caller per 20 ms.
        # Voice capacity grows with cores: one worker per core (--media-workers), rooms on the least loaded.
        workers = config.media_workers or default_workers()
        self.media: MediaPool | None = MediaPool(lambda: self.runners, config.media_settings(), workers) if config.voice else None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.cluster is not None:  # first: a node that cannot join its deployment starts nothing
            await self.cluster.join()
        self.install_samples()
        await self.sync_scenes()
        await self.xapi.start(self.base_url())  # before any room can store a record
        if self.media is not None:
            self.media.start()
        self._server = await loop.create_server(
            lambda: RoomSocket(self), self.config.host, self.config.room_port, reuse_address=True, backlog=2048
        )
        # practicals this data dir ran on its own before it joined a deployment have their logs here, not in Redis
        earlier = EmbeddedLog(self.config.data_dir) if self.cluster is not None and (self.config.data_dir / "rooms.sqlite3").exists() else None
        for session in self.store.sessions(status="open"):
            if self.cluster is not None:  # in a deployment, whoever takes its lease first resumes it (_adopt),
                if earlier is not None and not session.preview:  # and a preview may be another node's
                    await self._bring_in(session, earlier)
                continue
            if session.preview:  # a designer's previews are throwaway: they end with the process
                self.store.end_session(session.id)
                continue
            try:
                self._start_room(session, await self._restore(session))
            except NodeError as exc:
                log.warning("ending practical %s: %s", session.id, exc)
                self.store.end_session(session.id)
        if earlier is not None:
            await earlier.close()
        if self.cluster is not None:
            self.cluster.run(self._adopt, self._lease_trouble)
        self._sweeper = loop.call_later(_SWEEP_PERIOD, self._sweep)

    async def _bring_in(self, session: Session, earlier: RoomLogBackend) -> None:
        """Resume here a practical that was open when this data dir ran on its own: its room log is
        under the data dir and no node of the deployment lists it, so nobody else could. Listed
        now, it is the deployment's like any other (another node adopts it if this one dies)."""
        assert self.cluster is not None
        try:
            if await self.cluster.session(session.id) is not None:
                return  # listed: whoever takes its lease resumes it
            restored = await self._restore(session, earlier)
            if restored is None:
                return  # no log of it here: another node's
            fence = await self.cluster.publish(asdict(session))
            self._start_room(session, restored, fence)
        except Exception as exc:  # listed meanwhile by another node, an unreadable log, Redis away
            log.warning("practical %s from before this node joined the deployment is not resumed here: %s", session.id, exc)
            return
        log.warning("practical %s, open before this node joined the deployment, resumed here from its log", session.id)

    async def _restore(self, session: Session, room_log: RoomLogBackend | None = None) -> Restored | None:
        """An open practical's room as its log left it, or None if it has no log (a fresh room).

        A log that cannot be read is never skipped past: the practical ends, its log is kept for
        the operator to look at, and the reason is logged and shown in /healthz."""
        stored = await (room_log or self.room_log).load(session.id)
        if stored is None:
            return None
        try:
            return restore(stored, self.snapshot_key, self._scene)
        except (SnapshotRefused, LogCorrupt) as exc:
            self.unloadable[session.id] = str(exc)
            raise NodeError(500, f"its room log cannot be loaded ({exc}); the log is kept for you to look at") from None

    def _scene(self, package_id: str, version: int) -> Scene:
        stored = self.scenes.get(package_id, version)
        if stored is None:
            raise SnapshotRefused(f"its scene {package_id} version {version} is not stored on this node")
        return self.load_scene(stored)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.ingest_pool.close()
        if self._server is not None:
            self._server.close()
        for sock in list(self.sockets):
            sock.close(CloseCode.GOING_AWAY, "server shutting down")
        handed_off = []
        for runner in self.runners.values():
            runner.stop()
            if runner.journal is not None:  # the open practicals resume from here (at the next start, or on another node)
                runner.journal.final()
                await runner.journal.drained()
                handed_off.append(runner.room.id)
        if self.cluster is not None:
            await self.cluster.stop(handed_off)
        if self.media is not None:
            await self.media.stop()
        await asyncio.sleep(0)
        await self.results.close()
        await self.xapi.stop()
        await self.room_log.close()
        self.store.close()
        self.scenes.close()
        if self.shared_scenes is not None:
            self.shared_scenes.close()

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
            try:
                self._loaded[key] = Scene.from_processed(self.scenes.server_data(version), version.version, glb_url(version), glb_phone_url(version))
            except SceneError as exc:
                raise NodeError(422, f"{version.package_id} version {version.version} cannot be opened: {exc}. Upload a corrected version.") from None
        return self._loaded[key]

    def scenes_in_use(self) -> set[tuple[str, int]]:
        """(package id, version) of every live practical: this node's, and in a deployment every
        open one (another node may be running it)."""
        used = {(r.room.scene.id, r.room.scene.version) for r in self.runners.values()}
        if self.cluster is not None:
            used |= {(s.scene_id, s.scene_version) for s in self.store.sessions(status="open") if not s.preview}
        return used

    async def sync_scenes(self) -> int:
        """Take the deployment's labs this node lacks, and publish its own (server.shared_scenes); returns
        how many it took. With Redis away this node goes on with the labs it has."""
        if self.shared_scenes is None:
            return 0
        async with self._scenes_syncing:
            try:
                return await asyncio.to_thread(self.shared_scenes.sync)
            except RedisError as exc:
                log.warning("cannot share scene packages with the deployment just now: %s", exc)
                return 0

    def scene_number(self, package_id: str) -> Callable[[int], int] | None:
        """How a new version of ``package_id`` is numbered: by the deployment, with several nodes."""
        if self.shared_scenes is None:
            return None
        shared = self.shared_scenes
        return lambda highest: shared.number(package_id, highest)

    def delete_scene(self, package_id: str, version: int) -> None:
        for session in self.store.sessions(status="open"):
            if session.preview and (session.scene_id, session.scene_version) == (package_id, version):
                self.end_session(session.id)  # a preview never keeps a version from being deleted
        if (package_id, version) in self.scenes_in_use():
            raise NodeError(409, f"{package_id} version {version} is used by a live practical; end it first.")
        row = self.scenes.get(package_id, version)
        if row is None or not self.scenes.delete(package_id, version):
            raise NodeError(404, f"No scene {package_id!r} version {version}.")
        self._loaded.pop((package_id, version), None)
        if self.shared_scenes is not None:
            try:
                self.shared_scenes.unpublish(row)
            except RedisError as exc:
                log.warning("%s version %d is deleted here but still listed for the deployment: %s", package_id, version, exc)

    # ------------------------------------------------------------------ sessions

    def _start_room(self, session: Session, restored: Restored | None = None, fence: Fence | None = None) -> RoomRunner:
        """Run a practical's room: a new one, or one restored from its log (then everyone in it
        was cut off by the restart or failover, and waits in their resume window from now).
        In a deployment, ``fence`` is this node's lease on the room: every log write carries it,
        and the room ticks only while the lease can be trusted."""
        if restored is None:
            version = self.scenes.get(session.scene_id, session.scene_version)
            if version is None:
                raise NodeError(410, f"Scene {session.scene_id} version {session.scene_version} is no longer stored.")
            room = Room(session.id, self.load_scene(version), self.config.limits, record=not session.preview, run=secrets.token_hex(4))
        else:
            room = restored.room
        loop = asyncio.get_running_loop()
        runner = RoomRunner(room, loop, on_end=self._room_ended)
        if restored is not None:
            runner.clock_offset = room.now - loop.time()
        if not session.preview:  # a preview's progress is the designer's to see (preview_debug), not a result
            runner.record = self._record
            # a preview is throwaway, so it keeps no log either
            runner.journal = Journal(
                room, self.room_log, self.snapshot_key, runner.deliver, next_index=0 if restored is None else restored.next_index,
                fence=fence, settings=self.journal_settings, on_fenced=lambda: self._lease_trouble(session.id),
            )
            if self.cluster is not None:
                leases = self.cluster.leases
                runner.may_tick = lambda: leases.valid(session.id)
            challenge = room.challenges.public_challenge()
            if challenge is not None and self.store.challenge(session.id) is None:  # kept once, at its first start
                self.store.set_challenge(session.id, challenge)
        if self.media is not None:
            runner.media = self.media.media
            runner.after_tick = self.media.after_tick
            runner.on_quality = self._link_level
            full = self.config.voice_opus_bitrate
            runner.voice_kbps = tuple((rate or full) // 1000 for rate in VOICE_BITRATE_BY_LEVEL)
        self.runners[session.id] = runner
        if restored is not None:
            for record in restored.records:
                self._record(runner, record)
            for part in [q for q in room.participants.values() if q.connected]:
                runner.handle(part.id, Disconnect())
        if runner.journal is not None:
            runner.journal.begin()
        runner.start()
        return runner

    def set_voice_bitrate(self, room_id: str, participant_id: str, bitrate: int | None) -> None:
        """A weak downstream: that participant's voice mix at ``bitrate`` bit/s (None: the
        configured one), realtime.audio.pool.MediaPool.set_listener_bitrate; nothing without voice.
        Raises ValueError for a bit rate out of bounds or an unknown room or participant."""
        if self.media is not None:
            self.media.set_listener_bitrate(room_id, participant_id, bitrate)

    def _link_level(self, runner: RoomRunner, participant_id: str, level: int) -> None:
        """A participant's downstream moved to ``level`` (realtime.downstream): their voice mix follows."""
        try:
            self.set_voice_bitrate(runner.room.id, participant_id, VOICE_BITRATE_BY_LEVEL[level])
        except ValueError as exc:  # the participant left in the same dispatch (a call is not needed: the rate is kept for one)
            log.debug("voice bit rate for %s not set: %s", participant_id, exc)

    def _record(self, runner: RoomRunner, record: Record) -> None:
        """A room's record, stored with its room-clock ``t`` turned into wall-clock time.

        The two clocks' offset is read once per node: reading both clocks for every record
        lets a pause between the two reads (another thread holding the GIL) put two records
        a few milliseconds apart in the wrong order."""
        t = record.data.get("t")
        offset = self._wall_offset.setdefault(runner.room.id, time.time() - runner.now())
        at = (t if isinstance(t, (int, float)) else runner.now()) + offset
        self.results.add(runner.room.id, record, at)

    def _room_ended(self, runner: RoomRunner) -> None:
        self.runners.pop(runner.room.id, None)
        self._wall_offset.pop(runner.room.id, None)
        if self.media is not None:
            self.media.room_closed(runner.room.id)
        self.store.end_session(runner.room.id)
        if runner.journal is not None:
            asyncio.ensure_future(self._forget(runner))

    async def _forget(self, runner: RoomRunner) -> None:
        """An ended practical's log is of no more use; in a deployment, nobody needs to host it."""
        assert runner.journal is not None
        try:
            await self.room_log.drop(runner.room.id, runner.journal.fence)
            if self.cluster is not None:
                session = self.store.session(runner.room.id)
                await self.cluster.unpublish(runner.room.id, session.join_code if session else "")
        except Exception as exc:  # the store is down: the log stays, the practical is ended anyway
            log.warning("practical %s ended; its log could not be dropped: %s", runner.room.id, exc)

    # ------------------------------------------------------------------ several nodes

    async def _adopt(self, room_id: str, fence: Fence) -> None:
        """A practical whose node died (its lease lapsed and this node took it): bring its room back
        from the shared log, here. Everyone reconnects through any node and is sent here."""
        assert self.cluster is not None
        runner = self.runners.get(room_id)
        if runner is not None and runner.journal is not None:  # our own room, its lease lapsed and taken again
            runner.journal.refence(fence)
            return
        described = await self.cluster.session(room_id)
        if described is None:
            log.warning("room %s is listed but not described; leaving it", room_id)
            await self.cluster.leases.release(room_id)
            return
        session = Session(**described)
        self.store.adopt_session(session)
        try:
            if self.scenes.get(session.scene_id, session.scene_version) is None:
                await self.sync_scenes()  # a lab uploaded through another node
            self._start_room(session, await self._restore(session), fence)
        except NodeError as exc:
            log.error("practical %s cannot be resumed here: %s", room_id, exc)
            self.store.end_session(room_id)
            await self.cluster.unpublish(room_id, session.join_code)
            return
        log.warning("practical %s resumed here (epoch %d)", room_id, fence.epoch)

    async def learn_session(self, session_id: str) -> None:
        """Know a practical another node of the deployment opened (from the shared directory), so
        this node can describe it; nothing to do on one node, or if it is known already."""
        if self.cluster is None or self.store.session(session_id) is not None:
            return
        try:
            described = await self.cluster.session(session_id)
        except Exception:  # Redis away: it stays unknown here (404), the client tries again
            return
        if described is not None:
            self.store.adopt_session(Session(**described))

    def _lease_trouble(self, room_id: str) -> None:
        """A room's lease could not be renewed, or a log write was fenced: take it again if nobody
        else has (a pause, or a Redis restart, that no other node used), else give the room up."""
        if room_id not in self._reclaiming and room_id in self.runners:
            self._reclaiming.add(room_id)
            asyncio.ensure_future(self._reclaim(room_id))

    async def _reclaim(self, room_id: str) -> None:
        assert self.cluster is not None
        try:
            fence = await self.cluster.leases.acquire(room_id)
            runner = self.runners.get(room_id)
            session = self.store.session(room_id)
            if fence is None and runner is not None and runner.journal is not None and self.cluster.leases.valid(room_id):
                # taken again already (a write refused under the old lease came back late): go on under it
                runner.journal.refence(self.cluster.leases.held[room_id][0])
                return
            if fence is None or runner is None or runner.journal is None or session is None:
                log.warning("room %s: its lease is another node's now; stopping this copy", room_id)
                self._lose(room_id)
                return
            await self.cluster.describe(asdict(session))
            runner.journal.refence(fence)
            log.warning("room %s: lease taken again (epoch %d); the room goes on here", room_id, fence.epoch)
        except Exception as exc:  # Redis still away: the room stays frozen (may_tick) and the heartbeat tries again
            log.warning("room %s: could not take its lease again: %s", room_id, exc)
        finally:
            self._reclaiming.discard(room_id)

    def _lose(self, room_id: str) -> None:
        """This node lost a room's lease (it was paused, or cut off from Redis, for too long): stop
        its copy at once and send everyone to reconnect; the new owner has the room from its log."""
        runner = self.runners.pop(room_id, None)
        if runner is None:
            return
        runner.stop()
        if runner.journal is not None:
            runner.journal.lost = True
        for conn in list(runner.conns.values()):
            conn.close(CloseCode.MOVED, "this practical moved to another server; reconnect")
        runner.conns.clear()
        if self.media is not None:
            self.media.room_closed(room_id)
        if self.cluster is not None:
            self.cluster.leases.forget(room_id)

    async def open_session(
        self, teacher: User, scene_id: str, version: int | None = None, title: str | None = None, course_id: str | None = None
    ) -> Session:
        """Open a practical from a stored scene version (the latest when ``version`` is None)."""
        stored = self.scenes.get(scene_id, version)
        if stored is None and await self.sync_scenes():
            stored = self.scenes.get(scene_id, version)
        if stored is None:
            available = ", ".join(v.package_id for v in self.scenes.latest_all())
            which = f"{scene_id!r}" if version is None else f"{scene_id!r} version {version}"
            raise NodeError(404, f"There is no scene {which}; available: {available}.")
        if len(self.store.sessions(teacher.id, "open")) >= self.config.max_sessions_per_teacher:
            raise NodeError(429, f"You already have {self.config.max_sessions_per_teacher} open practicals; end one first.")
        session = self.store.open_session(teacher.id, scene_id, stored.version, title or stored.title, course_id=course_id)
        fence = await self.cluster.publish(asdict(session)) if self.cluster is not None else None
        self._start_room(session, fence=fence)
        return session

    def end_session(self, session_id: str) -> None:
        """End a practical. A journaled room ends once the end is in its log: await ``settled``."""
        runner = self.runners.get(session_id)
        if runner is not None:
            runner.handle(SYSTEM, End(type="end"))
        else:
            self.store.end_session(session_id)

    async def settled(self, session_id: str) -> None:
        """Wait until what a teacher just did over REST is in the room's log and its answers are out,
        so the reply tells the state the room is in (an ended practical is ended in the store)."""
        runner = self.runners.get(session_id)
        if runner is not None and runner.journal is not None:
            await runner.journal.drained()

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

    def log_health(self) -> dict[str, Any]:
        """The rooms' logs for /healthz: where they are, which rooms run from memory because their
        log cannot be written (and why), and which could not be loaded at start."""
        journals = {rid: r.journal for rid, r in self.runners.items() if r.journal is not None}
        degraded = {rid: {"pending": j.pending_entries, "lost": j.lost, "error": j.last_error} for rid, j in journals.items() if j.degraded}
        return {
            "backend": "redis" if self.cluster is not None else "embedded",
            "rooms": len(journals),
            "degraded": degraded,
            "unloadable": self.unloadable,
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

    def ws_urls(self, first: str) -> list[str]:
        """Room socket addresses a client may try, ``first`` first: on a deployment of several nodes,
        every live node's (a client whose node dies reconnects through another, which sends it on)."""
        if self.cluster is None:
            return [first]
        return [first, *sorted(a.ws for a in self.cluster.known.values() if a.ws != first)]

    def ws_url(self, http_host: str | None = None) -> str:
        """The room socket address as seen by a client that reached us at ``http_host``."""
        if self.config.public_url:
            parsed = urlsplit(self.config.public_url)
            scheme = "wss" if parsed.scheme == "https" else "ws"
            hostname = parsed.hostname
        else:
            scheme = "ws"
            hostname = _hostname("//" + http_host) if http_host else None
            # no Host, or one that is no address (``[::1``, ``[zz]``): the address we are configured at
            hostname = hostname or _hostname(self.base_url())
        hostname = hostname or "127.0.0.1"
        if ":" in hostname:
            hostname = f"[{hostname}]"
        return f"{scheme}://{hostname}:{self.config.room_port}{ROOM_PATH}"


def _hostname(address: str) -> str | None:
    """The host of a URL, or None when it has none or is malformed (a client's Host header is
    whatever the client sent)."""
    try:
        return urlsplit(address).hostname
    except ValueError:
        return None


def lan_address() -> str:
    """This machine's address on the school network, for links students can open."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
