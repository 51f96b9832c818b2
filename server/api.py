"""The HTTP edge: FastAPI app factory, REST routes, and the web client's static files.

Every route that acts checks the caller's role against the one role table
(realtime.roles) through ``server.auth.require``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from realtime.limits import TokenBucket
from realtime.protocol import Lock
from realtime.roles import Action, Role
from realtime.room import SYSTEM
from scenes import catalog
from server.auth import Claims, TokenError, bearer, issue_token, require, verify_token
from server.node import Node, NodeError
from server.store import CODE_ALPHABET, CODE_LENGTH, Session, Teacher

WEB_ROOT = Path(__file__).resolve().parents[1] / "clients" / "web"
_MAX_TRACKED_ADDRESSES = 10_000

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenSession(_In):
    scene: str = Field(default="demo-lab", max_length=100)
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None


class JoinRequest(_In):
    code: Annotated[str, StringConstraints(pattern=f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")]
    name: Name
    role: Literal["student", "observer"] = "student"

    @field_validator("code", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        """Codes are read off a board: accept lower case and stray spaces."""
        return value.strip().upper() if isinstance(value, str) else value


class LockRequest(_In):
    locked: bool


@dataclass(frozen=True)
class Principal:
    """Who is calling: a teacher by key, or a participant by token."""

    role: Role
    teacher: Teacher | None = None
    claims: Claims | None = None


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="Amaliy",
        version="0.1.0",
        description="Realtime server for live virtual practicals. The room socket protocol is in docs/protocol.md.",
    )
    join_buckets: dict[str, TokenBucket] = {}

    def principal(key: str = Depends(bearer)) -> Principal:
        teacher = node.store.teacher_by_key(key)
        if teacher is not None:
            return Principal(Role.TEACHER, teacher=teacher)
        try:
            claims = verify_token(node.secret, key)
        except TokenError as exc:
            raise HTTPException(401, f"Unknown key or token: {exc}") from None
        return Principal(claims.role, claims=claims)

    def teacher_by_key(who: Principal, action: Action) -> Teacher:
        require(who.role, action)
        if who.teacher is None:
            raise HTTPException(403, "Use your teacher key for this, not a participant token.")
        return who.teacher

    def own_session(session_id: str, who: Principal, action: Action) -> Session:
        require(who.role, action)
        session = node.store.session(session_id)
        if session is None:
            raise HTTPException(404, f"No practical {session_id!r}.")
        if who.teacher is not None and session.teacher_id != who.teacher.id:
            raise HTTPException(403, "This practical belongs to another teacher.")
        if who.claims is not None and who.claims.session_id != session_id:
            raise HTTPException(403, "Your token is for another practical.")
        return session

    def describe(session: Session, request: Request) -> dict[str, object]:
        runner = node.runners.get(session.id)
        base = node.base_url()
        out: dict[str, object] = {
            "id": session.id,
            "title": session.title,
            "scene": session.scene_id,
            "join_code": session.join_code,
            "status": session.status,
            "created": session.created,
            "join_url": f"{base}/?code={session.join_code}",
            "ws_url": node.ws_url(request.headers.get("host")),
        }
        if runner is not None:
            room = runner.room
            out["locked"] = room.locked
            out["frozen"] = room.frozen
            out["participants"] = [part.public() for part in room.participants.values()]
        return out

    @app.exception_handler(NodeError)
    async def node_error(request: Request, exc: NodeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok",
            "rooms": len(node.runners),
            "connections": len(node.sockets),
            "participants": sum(len(r.room.participants) for r in node.runners.values()),
        }

    @app.get("/api/scenes", tags=["scenes"])
    async def list_scenes() -> list[dict[str, str]]:
        return [{"id": sid, "title": catalog.load(sid).title} for sid in catalog.scene_ids()]

    @app.get("/api/scenes/{scene_id}/scene.glb", tags=["scenes"])
    async def scene_glb(scene_id: str, request: Request) -> Response:
        if scene_id not in catalog.scene_ids():
            raise HTTPException(404, f"No scene {scene_id!r}.")
        glb = catalog.load(scene_id).glb
        etag = '"' + hashlib.sha256(glb).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(glb, media_type="model/gltf-binary", headers={"ETag": etag, "Cache-Control": "no-cache"})

    @app.post("/api/sessions", status_code=201, tags=["sessions"])
    async def open_session(body: OpenSession, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        teacher = teacher_by_key(who, Action.OPEN_SESSION)
        session = node.open_session(teacher, body.scene, body.title)
        out = describe(session, request)
        token = node.teacher_token(teacher, session)
        out["teacher_token"] = token
        out["teacher_url"] = f"{node.base_url()}/#token={token}"
        return out

    @app.get("/api/sessions", tags=["sessions"])
    async def list_sessions(request: Request, who: Principal = Depends(principal)) -> list[dict[str, object]]:
        teacher = teacher_by_key(who, Action.VIEW_SESSION)
        return [describe(s, request) for s in node.store.sessions(teacher.id)]

    @app.get("/api/sessions/{session_id}", tags=["sessions"])
    async def get_session(session_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        return describe(own_session(session_id, who, Action.VIEW_SESSION), request)

    @app.post("/api/sessions/{session_id}/token", tags=["sessions"])
    async def teacher_token(session_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, str]:
        session = own_session(session_id, who, Action.VIEW_SESSION)
        return {"token": node.teacher_token(teacher_by_key(who, Action.VIEW_SESSION), session), "ws_url": node.ws_url(request.headers.get("host"))}

    @app.post("/api/sessions/{session_id}/lock", tags=["sessions"])
    async def lock_session(session_id: str, body: LockRequest, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        session = own_session(session_id, who, Action.LOCK)
        runner = node.runners.get(session_id)
        if runner is None:
            raise HTTPException(409, "This practical has ended.")
        runner.handle(SYSTEM, Lock(type="lock", locked=body.locked))
        return describe(session, request)

    @app.post("/api/sessions/{session_id}/end", tags=["sessions"])
    async def end_session(session_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        own_session(session_id, who, Action.END)
        node.end_session(session_id)
        session = node.store.session(session_id)
        assert session is not None
        return describe(session, request)

    @app.post("/api/join", tags=["sessions"])
    async def join(body: JoinRequest, request: Request) -> dict[str, object]:
        address = request.client.host if request.client else "?"
        now = time.monotonic()
        bucket = join_buckets.get(address)
        if bucket is None:
            if len(join_buckets) > _MAX_TRACKED_ADDRESSES:
                join_buckets.clear()
            rate = node.config.join_rate_per_min / 60.0
            bucket = join_buckets[address] = TokenBucket(rate, max(1.0, node.config.join_rate_per_min / 3), now)
        if not bucket.take(now):
            raise HTTPException(429, "Too many join attempts from this address; wait a minute.")
        session = node.store.session_by_code(body.code)
        if session is None or session.id not in node.runners:
            raise HTTPException(404, f"No open practical has the join code {body.code}. Check the code with your teacher.")
        role = Role(body.role)
        require(role, Action.JOIN)
        claims = Claims("p_" + secrets.token_hex(6), session.id, role, body.name)
        return {
            "token": issue_token(node.secret, claims, node.config.token_ttl),
            "participant_id": claims.participant_id,
            "session": session.id,
            "title": session.title,
            "scene": session.scene_id,
            "ws_url": node.ws_url(request.headers.get("host")),
        }

    three = WEB_ROOT / "node_modules" / "three"
    if three.is_dir():
        app.mount("/vendor/three", StaticFiles(directory=three), name="three")
    if (WEB_ROOT / "public").is_dir():
        app.mount("/", StaticFiles(directory=WEB_ROOT / "public", html=True), name="web")
    return app

