"""The HTTP edge: FastAPI app factory, REST routes, and the web client's static files.

Every route that acts checks the caller's role against the one role table
(realtime.roles) through ``server.auth.require``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from realtime.fanout import RoomRunner
from realtime.limits import TokenBucket
from realtime.names import NameRefused, display_name
from realtime.protocol import Lock, Unkick
from realtime.roles import Action, Role
from realtime.tick_lateness import summary as tick_summary
from realtime.room import SYSTEM
from scenes import samples
from scenes.store import MAX_VERSION
from prometheus_client import CONTENT_TYPE_LATEST

from server import metrics, results
from server.admission import Admission
from server.auth import Claims, Principal, issue_token, principal_dependency, require
from server.body_limit import BodyLimit
from server.course_routes import course_routes
from server.forwarding import CLIENT_HEADER, client_address, forward_join, to_host
from server.learner_routes import learner_routes
from server.node import Node, NodeError
from server.replica import RecordsUnavailable
from server.scene_routes import scene_routes
from server.static_files import IMMUTABLE, CompressedStaticFiles, GzipCache, three_prefix
from server.store import CODE_ALPHABET, CODE_LENGTH, Session

WEB_ROOT = Path(__file__).resolve().parents[1] / "clients" / "web"
_MAX_TRACKED_ADDRESSES = 10_000


def _display_name(value: str) -> str:
    """realtime.names' rules, refused as a validation error whose ``msg`` is the sentence itself."""
    try:
        return display_name(value)
    except NameRefused as exc:
        raise PydanticCustomError("display_name", "{reason}", {"reason": str(exc)}) from None


Name = Annotated[str, AfterValidator(_display_name)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenSession(_In):
    scene: str = Field(default=samples.DEMO, max_length=100)
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    #: a course of the teacher's: its roster's students sign in to this practical with their own codes
    course: Annotated[str, Field(max_length=40)] | None = None


class JoinRequest(_In):
    code: Annotated[str, StringConstraints(pattern=f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")]
    name: Name
    role: Literal["student", "observer"] = "student"
    #: the device key an earlier join answered (server.admission); absent or unknown: a new one
    device: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        """Codes are read off a board: accept lower case and stray spaces."""
        return value.strip().upper() if isinstance(value, str) else value


class LockRequest(_In):
    locked: bool


class _EscapedJSON(JSONResponse):
    """JSON with every non-ASCII character escaped. A 422 echoes the client's input, which may
    hold a lone surrogate (sent as the JSON escape ``\\ud800``) that UTF-8 cannot encode: the
    default response would fail to render and answer 500; escaped, it goes back as it came."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _sendable(problem: dict[str, Any]) -> Any:
    """One validation problem as JSON, with the client's ``input`` (and the ``ctx`` built from it)
    left out when JSON cannot carry it: NaN, Infinity or 1e999 in the body (which Python's JSON
    parser reads as floats), or a body that is not UTF-8. The problem itself is still told."""
    try:
        encoded = jsonable_encoder(problem)
        json.dumps(encoded, allow_nan=False)
    except ValueError:  # a non-finite number, or bytes that do not decode (UnicodeDecodeError)
        encoded = jsonable_encoder({k: v for k, v in problem.items() if k not in ("input", "ctx")})
    return encoded


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="Amaliy",
        version="0.1.0",
        description="Realtime server for live virtual practicals. The room socket protocol is in docs/protocol.md.",
    )
    app.add_middleware(BodyLimit)
    join_buckets: dict[str, TokenBucket] = {}
    admission = Admission(node.secret)

    principal = principal_dependency(node.store, node.secret)

    def own_session(session_id: str, who: Principal, action: Action) -> Session:
        require(who.role, action)
        session = node.store.session(session_id)
        if session is None:
            raise HTTPException(404, f"No practical {session_id!r}.")
        if who.user is not None and session.teacher_id != who.user.id:
            raise HTTPException(403, "This practical belongs to another teacher.")
        if who.claims is not None and who.claims.session_id != session_id:
            raise HTTPException(403, "Your token is for another practical.")
        return session

    async def hosted_elsewhere(session_id: str, request: Request) -> Response | None:
        """The host's answer to a request about a live practical another node hosts (server.forwarding);
        None when this node answers it."""
        if node.cluster is None or session_id in node.runners:
            return None
        return await to_host(node.cluster, node.secret, session_id, request, client_address(request, node.secret))

    def running(session_id: str) -> RoomRunner:
        """The live room of a practical, for a teacher's action that goes through it (409 once ended)."""
        runner = node.runners.get(session_id)
        if runner is None:
            raise HTTPException(409, "This practical has ended.")
        return runner

    def token_preview(session_id: str, who: Principal) -> Session | None:
        """Preview ``session_id`` when ``who`` holds that preview's own room token, else None.
        Only node.preview_token mints tokens for a preview (it has no join code and no teacher
        owns it), so such a token is its designer's: the one the page at ``preview_url`` holds."""
        if who.claims is None or who.claims.session_id != session_id:
            return None
        session = node.store.session(session_id)
        return session if session is not None and session.preview else None

    def own_preview(session_id: str, who: Principal) -> Session:
        """A designer's own preview (404 for any other practical, which designers never see)."""
        designer = who.keyed(Action.PREVIEW_SCENE)
        session = node.store.session(session_id)
        if session is None or not session.preview:
            raise HTTPException(404, f"No preview {session_id!r}.")
        if session.teacher_id != designer.id:
            raise HTTPException(403, "This preview belongs to another designer.")
        return session

    def describe(session: Session, request: Request) -> dict[str, object]:
        runner = node.runners.get(session.id)
        base = node.base_url()
        out: dict[str, object] = {
            "id": session.id,
            "title": session.title,
            "scene": session.scene_id,
            "scene_version": session.scene_version,
            "join_code": None if session.preview else session.join_code,
            "status": session.status,
            "created": session.created,
            "join_url": None if session.preview else f"{base}/?code={session.join_code}",
            "ws_url": node.ws_url(request.headers.get("host")),
            "ws_urls": node.ws_urls(node.ws_url(request.headers.get("host"))),
            "preview": session.preview,
            "course": session.course_id,
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

    @app.exception_handler(RecordsUnavailable)
    async def records_unavailable(request: Request, exc: RecordsUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _EscapedJSON({"detail": [_sendable(problem) for problem in exc.errors()]}, status_code=422)

    @app.get("/healthz", tags=["operations"])
    async def healthz(
        media_window: float = Query(10.0, gt=0, le=120), tick_window: float = Query(10.0, gt=0, le=60)
    ) -> dict[str, object]:
        """Liveness and load. ``ticks``: how late room ticks started over the last ``tick_window`` seconds
        (the event loop's stall), ``media`` the voice worker's mix tick figures over ``media_window`` seconds,
        ``ingest`` the scene package workers' state, ``xapi`` the outbox of learning events (server.xapi_outbox),
        ``room_log`` the rooms' logs (server.node.Node.log_health), ``cluster`` this node's part in a deployment of
        several (server.cluster.Cluster.health; null on its own), ``records`` this node's replica of the
        deployment's shared records (server.replica.Replica.health; ``{"mode": "embedded"}`` on its own).
        ``status`` is ``degraded`` while ingest workers fail to start, a room runs from memory because its log
        cannot be written, or Redis does not answer (an LRS that fails shows in ``xapi`` only)."""
        since = asyncio.get_running_loop().time() - tick_window
        room_log = node.log_health()
        cluster = node.cluster.health() if node.cluster is not None else None
        records = node.store.replica.health() if node.store.replica is not None else {"mode": "embedded"}
        healthy = (
            node.ingest_pool.healthy() and not room_log["degraded"] and (cluster is None or cluster["redis"] == "ok")
            and records.get("redis", "ok") == "ok"
        )
        return {
            "status": "ok" if healthy else "degraded",
            "cluster": cluster,
            "records": records,
            "ticks": tick_summary([r.lateness.since(since) for r in node.runners.values()]),
            "ingest": node.ingest_pool.stats(),
            "rooms": len(node.runners),
            "connections": len(node.sockets),
            "participants": sum(len(r.room.participants) for r in node.runners.values()),
            "media": node.media.stats(media_window) if node.media is not None else None,
            "xapi": await node.xapi.health(),
            "room_log": room_log,
        }

    metrics_registry = metrics.registry(node)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format: rooms, participants, tick lag, room logs, leases, failovers, media load (server.metrics)."""
        return Response(metrics.render(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/sessions", status_code=201, tags=["sessions"])
    async def open_session(body: OpenSession, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        teacher = who.keyed(Action.OPEN_SESSION)
        if body.course is not None:
            course = node.store.course(body.course)
            if course is None:
                raise HTTPException(404, f"No course {body.course!r}.")
            if course.teacher_id != teacher.id:
                raise HTTPException(403, "This course belongs to another teacher.")
        session = await node.open_session(teacher, body.scene, body.version, body.title, body.course)
        out = describe(session, request)
        token = node.teacher_token(teacher, session)
        out["teacher_token"] = token
        out["teacher_url"] = f"{node.base_url()}/#token={token}"
        return out

    @app.get("/api/sessions", tags=["sessions"])
    async def list_sessions(request: Request, who: Principal = Depends(principal)) -> list[dict[str, object]]:
        teacher = who.keyed(Action.VIEW_SESSION)
        return [describe(s, request) for s in node.store.sessions(teacher.id)]

    @app.get("/api/sessions/{session_id}", tags=["sessions"])
    async def get_session(session_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        """A practical's description: a teacher's own (key or teacher token), or a preview by its own token."""
        if who.claims is not None and who.claims.session_id == session_id:
            await node.learn_session(session_id)  # a teacher link opened through a node that does not host it
        return describe(token_preview(session_id, who) or own_session(session_id, who, Action.VIEW_SESSION), request)

    @app.post("/api/sessions/{session_id}/token", tags=["sessions"])
    async def teacher_token(session_id: str, request: Request, who: Principal = Depends(principal)) -> Any:
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        session = own_session(session_id, who, Action.VIEW_SESSION)
        return {"token": node.teacher_token(who.keyed(Action.VIEW_SESSION), session), "ws_url": node.ws_url(request.headers.get("host"))}

    @app.post("/api/sessions/{session_id}/lock", tags=["sessions"])
    async def lock_session(session_id: str, body: LockRequest, request: Request, who: Principal = Depends(principal)) -> Any:
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        session = own_session(session_id, who, Action.LOCK)
        running(session_id).handle(SYSTEM, Lock(type="lock", locked=body.locked))
        await node.settled(session_id)
        return describe(session, request)

    @app.get("/api/sessions/{session_id}/removed", tags=["sessions"])
    async def removed(session_id: str, request: Request, who: Principal = Depends(principal)) -> Any:
        """Who a teacher removed (``kick``) and has not let back in, oldest first: the snapshot's ``removed``."""
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        own_session(session_id, who, Action.VIEW_SESSION)
        return [gone.public() for gone in running(session_id).room.removed.values()]

    @app.delete("/api/sessions/{session_id}/removed/{participant_id}", status_code=204, tags=["sessions"])
    async def unkick(session_id: str, participant_id: str, request: Request, who: Principal = Depends(principal)) -> Response:
        """Let someone removed back in. The room keeps the list, so this is the socket's ``unkick`` fed to
        the room as the server's input (as ``/lock`` is): its input log records every change of the list."""
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        own_session(session_id, who, Action.UNKICK)
        runner = running(session_id)
        if participant_id not in runner.room.removed:
            raise HTTPException(404, f"Nobody {participant_id!r} was removed from this practical.")
        runner.handle(SYSTEM, Unkick(type="unkick", participant=participant_id))
        await node.settled(session_id)
        return Response(status_code=204)

    @app.post("/api/sessions/{session_id}/end", tags=["sessions"])
    async def end_session(session_id: str, request: Request, who: Principal = Depends(principal)) -> Any:
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        own_session(session_id, who, Action.END)
        node.end_session(session_id)
        await node.settled(session_id)
        session = node.store.session(session_id)
        assert session is not None
        return describe(session, request)

    @app.get("/api/sessions/{session_id}/results", tags=["results"])
    async def session_results(session_id: str, request: Request, who: Principal = Depends(principal)) -> Any:
        """The challenge results of a practical, per station and per student (docs/operations.md, Results)."""
        if (answer := await hosted_elsewhere(session_id, request)) is not None:  # its newest records are the host's to flush
            return answer
        session = own_session(session_id, who, Action.VIEW_RESULTS)
        await node.results.flush()
        return results.build(session, node.store.challenge(session.id), node.store.records(session.id))

    @app.get("/api/sessions/{session_id}/results.csv", tags=["results"])
    async def session_results_csv(session_id: str, request: Request, who: Principal = Depends(principal)) -> Response:
        """The same results as a spreadsheet: one row a student, one column a step."""
        if (answer := await hosted_elsewhere(session_id, request)) is not None:
            return answer
        session = own_session(session_id, who, Action.VIEW_RESULTS)
        await node.results.flush()
        table = results.to_csv(results.build(session, node.store.challenge(session.id), node.store.records(session.id)))
        filename = f"amaliy-{session.scene_id}-{session.id}-results.csv"
        return Response(
            table.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )

    @app.post("/api/scenes/{scene_id}/versions/{version}/preview", status_code=201, tags=["previews"])
    async def open_preview(
        scene_id: str, version: Annotated[int, PathParam(ge=1, le=MAX_VERSION)], request: Request, who: Principal = Depends(principal)
    ) -> dict[str, object]:
        """Designer: open a private practical of this version and get a student's token for it."""
        designer = who.keyed(Action.PREVIEW_SCENE)
        session = node.open_preview(designer, scene_id, version)
        token, participant = node.preview_token(designer, session)
        return {
            **describe(session, request),
            "token": token,
            "participant_id": participant,
            "role": str(Role.STUDENT),
            "preview_url": f"{node.base_url()}/#token={token}&preview=1",  # preview=1: the page shows the debug overlay
            "debug_url": f"/api/sessions/{session.id}/debug",
        }

    @app.get("/api/sessions/{session_id}/debug", tags=["previews"])
    async def preview_debug(session_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """Designer (your key, or the preview's own room token): what the challenge engine sees in
        your running preview, step by step."""
        token_preview(session_id, who) or own_preview(session_id, who)
        return node.preview_debug(session_id)

    @app.delete("/api/sessions/{session_id}/preview", tags=["previews"])
    async def end_preview(session_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, object]:
        """Designer: end your preview (it also ends when the server restarts)."""
        own_preview(session_id, who)
        node.end_session(session_id)
        session = node.store.session(session_id)
        assert session is not None
        return describe(session, request)

    app.include_router(scene_routes(node, principal))
    app.include_router(course_routes(node, principal))
    app.include_router(learner_routes(node, principal))

    @app.post("/api/join", tags=["sessions"])
    async def join(body: JoinRequest, request: Request) -> Any:
        address = client_address(request, node.secret)
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
        if (session is None or session.id not in node.runners) and node.cluster is not None:
            return await forward_join(node.cluster, node.secret, body.code, request, address)
        if session is None or session.id not in node.runners:
            raise HTTPException(404, f"No open practical has the join code {body.code}. Check the code with your teacher.")
        role = Role(body.role)
        require(role, Action.JOIN)
        device = admission.device(body.device)
        # a forwarded join came through another node: answer the address this node is reached at
        ws_url = node.ws_url() if CLIENT_HEADER in request.headers and node.cluster is not None else node.ws_url(request.headers.get("host"))
        participant = admission.admit(node.runners[session.id].room, body.name, role, device, now)
        claims = Claims(participant, session.id, role, body.name, device=device)
        return {
            "token": issue_token(node.secret, claims, node.config.token_ttl),
            "participant_id": claims.participant_id,
            "device": device,
            "session": session.id,
            "title": session.title,
            "scene": session.scene_id,
            "scene_version": session.scene_version,
            "ws_url": ws_url,
            "ws_urls": node.ws_urls(ws_url),
        }

    three = WEB_ROOT / "node_modules" / "three"
    gzipped = GzipCache()  # one memory bound for the client's files and three.js together
    rewrite = None
    if three.is_dir():
        versioned = three_prefix(three)
        rewrite = ("/vendor/three/", versioned)  # index.html's import map, to the address that is cached for good
        app.mount(versioned.rstrip("/"), CompressedStaticFiles(directory=three, cache=gzipped, cache_control=IMMUTABLE), name="three-versioned")
        app.mount("/vendor/three", CompressedStaticFiles(directory=three, cache=gzipped), name="three")
    if (WEB_ROOT / "public").is_dir():
        app.mount("/", CompressedStaticFiles(directory=WEB_ROOT / "public", html=True, cache=gzipped, rewrite=rewrite), name="web")
    return app

