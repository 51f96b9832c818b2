"""One Amaliy node: the store, the live rooms, the room socket server and the HTTP app.

Rooms live in this process (embedded default). The Node is the seam where a
shared room directory and bus will plug in for several nodes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

from realtime.fanout import RoomRunner
from realtime.protocol import CloseCode, End
from realtime.roles import Role
from realtime.room import SYSTEM, Room
from scenes import catalog
from server.auth import Claims, issue_token, load_secret
from server.config import Config
from server.room_socket import ROOM_PATH, RoomSocket
from server.store import Session, Store, Teacher

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
        self.secret = load_secret(config.data_dir)
        self.runners: dict[str, RoomRunner] = {}
        self.sockets: set[RoomSocket] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: RoomSocket(self), self.config.host, self.config.room_port, reuse_address=True, backlog=2048
        )
        for session in self.store.sessions(status="open"):
            self._start_room(session)
        self._sweeper = loop.call_later(_SWEEP_PERIOD, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for sock in list(self.sockets):
            sock.close(CloseCode.GOING_AWAY, "server shutting down")
        for runner in self.runners.values():
            runner.stop()
        await asyncio.sleep(0)
        self.store.close()

    def _sweep(self) -> None:
        """Drop sockets that went silent (a vanished client keeps no TCP alive)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for sock in list(self.sockets):
            if now - sock.last_seen > self.config.limits.idle_timeout:
                sock.close(CloseCode.IDLE, f"silent for {self.config.limits.idle_timeout:g} s; send a ping when idle")
        self._sweeper = loop.call_later(_SWEEP_PERIOD, self._sweep)

    # ------------------------------------------------------------------ sessions

    def _start_room(self, session: Session) -> RoomRunner:
        room = Room(session.id, catalog.load(session.scene_id), self.config.limits)
        runner = RoomRunner(room, asyncio.get_running_loop(), on_end=self._room_ended)
        self.runners[session.id] = runner
        runner.start()
        return runner

    def _room_ended(self, runner: RoomRunner) -> None:
        self.runners.pop(runner.room.id, None)
        self.store.end_session(runner.room.id)

    def open_session(self, teacher: Teacher, scene_id: str, title: str | None = None) -> Session:
        if scene_id not in catalog.scene_ids():
            raise NodeError(404, f"There is no scene {scene_id!r}; available: {', '.join(catalog.scene_ids())}.")
        if len(self.store.sessions(teacher.id, "open")) >= self.config.max_sessions_per_teacher:
            raise NodeError(429, f"You already have {self.config.max_sessions_per_teacher} open practicals; end one first.")
        scene = catalog.load(scene_id)
        session = self.store.open_session(teacher.id, scene_id, title or scene.title)
        self._start_room(session)
        return session

    def end_session(self, session_id: str) -> None:
        runner = self.runners.get(session_id)
        if runner is not None:
            runner.handle(SYSTEM, End(type="end"))
        else:
            self.store.end_session(session_id)

    def teacher_token(self, teacher: Teacher, session: Session) -> str:
        claims = Claims(f"{teacher.id}-{session.id[2:]}", session.id, Role.TEACHER, teacher.name)
        return issue_token(self.secret, claims, self.config.token_ttl)

    # ------------------------------------------------------------------ addresses

    def base_url(self) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
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
