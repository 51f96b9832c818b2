"""REST routes for courses, their rosters and students' sign-in with a personal code.

A teacher owns courses; each has a roster of students, and each student a personal
sign-in code (server.store: 8 characters, stored as a keyed hash, shown only when made).
``POST /api/signin`` trades a code for a student's room token in the course's open
practical, under the participant id of the roster student, the same in every practical
of the course. docs/operations.md, "Courses and sign-in", is the user-facing account.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Callable

import segno
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from realtime.limits import TokenBucket
from realtime.names import NameRefused, display_name
from realtime.roles import Action, Role
from server import roster
from server.auth import Claims, Principal, issue_token, require
from server.forwarding import client_address, to_live_host
from server.node import Node
from server.store import Course, CourseNotEmpty, Student, User

#: longest course name, in characters
MAX_COURSE_NAME = 120
_MAX_TRACKED_ADDRESSES = 10_000
WRONG_CODE = "That sign-in code is not valid: check it with your teacher, who can give you a new one."


def _course_name(value: str) -> str:
    try:
        return display_name(value, MAX_COURSE_NAME)
    except NameRefused as exc:
        raise ValueError(str(exc).replace("A name", "A course name", 1)) from None


def _student_name(value: str) -> str:
    try:
        return display_name(value)
    except NameRefused as exc:
        raise ValueError(str(exc)) from None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CourseIn(_In):
    name: Annotated[str, AfterValidator(_course_name)]


class StudentIn(_In):
    name: Annotated[str, AfterValidator(_student_name)]
    email: Annotated[str, Field(max_length=roster.MAX_EMAIL_LENGTH)] | None = None
    student_number: Annotated[str, Field(min_length=1, max_length=roster.MAX_NUMBER_LENGTH)] | None = None


class SignIn(_In):
    code: Annotated[str, Field(max_length=64)]


class AddressLimiter:
    """One token bucket per client address (as /api/join limits join attempts)."""

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.buckets: dict[str, TokenBucket] = {}

    def allow(self, address: str, now: float) -> bool:
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) > _MAX_TRACKED_ADDRESSES:
                self.buckets.clear()
            bucket = self.buckets[address] = TokenBucket(self.per_minute / 60.0, max(1.0, self.per_minute / 3), now)
        return bucket.take(now)


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an inline SVG element (medium error correction survives a
    crumpled printout; segno draws it, no image files)."""
    return segno.make(text, error="m").svg_inline(scale=4, border=2)


def student_public(student: Student, code: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": student.id, "name": student.name, "email": student.email, "student_number": student.student_number}
    if code is not None:
        out["code"] = code
    return out


def own_course_of(node: Node) -> Callable[..., tuple[User, Course]]:
    """The check every teacher's course route makes: the caller's key allows ``action``,
    the course exists (404) and is theirs (403)."""

    def own_course(course_id: str, who: Principal, action: Action = Action.MANAGE_COURSES) -> tuple[User, Course]:
        teacher = who.keyed(action)
        course = node.store.course(course_id)
        if course is None:
            raise HTTPException(404, f"No course {course_id!r}.")
        if course.teacher_id != teacher.id:
            raise HTTPException(403, "This course belongs to another teacher.")
        return teacher, course

    return own_course


def course_routes(node: Node, principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["courses"])
    signins = AddressLimiter(node.config.join_rate_per_min)
    own_course = own_course_of(node)

    def describe(course: Course) -> dict[str, Any]:
        open_now = [s for s in node.store.sessions(status="open", course_id=course.id) if s.id in node.runners]
        return {
            "id": course.id,
            "name": course.name,
            "created": course.created,
            "students": len(node.store.students(course.id)),
            "open_practicals": [s.id for s in sorted(open_now, key=lambda s: s.created, reverse=True)],
        }

    @router.post("/courses", status_code=201)
    async def add_course(body: CourseIn, who: Principal = Depends(principal)) -> dict[str, Any]:
        teacher = who.keyed(Action.MANAGE_COURSES)
        return describe(node.store.add_course(teacher.id, body.name))

    @router.get("/courses")
    async def list_courses(who: Principal = Depends(principal)) -> list[dict[str, Any]]:
        teacher = who.keyed(Action.MANAGE_COURSES)
        return [describe(course) for course in node.store.courses(teacher.id)]

    @router.get("/courses/{course_id}")
    async def get_course(course_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """The course and its roster (without codes: those are shown only when made)."""
        _, course = own_course(course_id, who)
        return {**describe(course), "roster": [student_public(s) for s in node.store.students(course.id)]}

    @router.patch("/courses/{course_id}")
    async def rename_course(course_id: str, body: CourseIn, who: Principal = Depends(principal)) -> dict[str, Any]:
        _, course = own_course(course_id, who)
        node.store.rename_course(course.id, body.name)
        renamed = node.store.course(course.id)
        assert renamed is not None
        return describe(renamed)

    @router.delete("/courses/{course_id}", status_code=204)
    async def delete_course(course_id: str, who: Principal = Depends(principal)) -> Response:
        _, course = own_course(course_id, who)
        try:
            node.store.delete_course(course.id)
        except CourseNotEmpty as exc:
            raise HTTPException(409, str(exc)) from None
        return Response(status_code=204)

    @router.post("/courses/{course_id}/students", status_code=201)
    async def add_student(course_id: str, body: StudentIn, who: Principal = Depends(principal)) -> Any:
        """Add one student; the answer carries their sign-in code (shown this once)."""
        _, course = own_course(course_id, who)
        line = roster.RosterRow(0, body.name, body.email, body.student_number)
        try:
            checked = roster.check_rows([line], node.store.students(course.id))
        except roster.RosterRejected as exc:
            raise HTTPException(422, exc.problems[0][1] if exc.problems else exc.summary) from None
        [(student, code)] = node.store.add_students(course.id, [(r.name, r.email, r.student_number) for r in checked])
        return student_public(student, code)

    @router.post("/courses/{course_id}/roster", status_code=201)
    async def import_roster(course_id: str, request: Request, who: Principal = Depends(principal)) -> Any:
        """Import a roster CSV sent as the request body: all rows or, with a 422 naming each bad
        line, none. The answer lists the new students with their sign-in codes (shown this once)."""
        _, course = own_course(course_id, who)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > roster.MAX_BYTES:
                raise HTTPException(413, f"A roster file may have at most {roster.MAX_BYTES} bytes (1 MiB); split it.")
        try:
            rows = roster.read_roster(bytes(data), node.store.students(course.id))
        except roster.RosterRejected as exc:
            return JSONResponse(exc.report(), status_code=422)
        added = node.store.add_students(course.id, [(r.name, r.email, r.student_number) for r in rows])
        return {"imported": len(added), "students": [student_public(s, code) for s, code in added]}

    @router.get("/courses/{course_id}/roster.csv")
    async def export_roster(course_id: str, who: Principal = Depends(principal)) -> Response:
        _, course = own_course(course_id, who)
        return Response(
            roster.to_csv(node.store.students(course.id)).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="amaliy-{course.id}-roster.csv"', "Cache-Control": "no-store"},
        )

    @router.post("/courses/{course_id}/students/{student_id}/code")
    async def rotate_code(course_id: str, student_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """A new sign-in code for one student; their old code stops working at once."""
        _, course = own_course(course_id, who)
        student = node.store.student(student_id)
        if student is None or student.course_id != course.id:
            raise HTTPException(404, f"No student {student_id!r} on this course.")
        return student_public(student, node.store.rotate_code(student.id))

    @router.patch("/courses/{course_id}/students/{student_id}")
    async def edit_student(course_id: str, student_id: str, body: StudentIn, who: Principal = Depends(principal)) -> dict[str, Any]:
        """Correct a student's name, email or number (the whole entry is sent, as when adding),
        checked as an imported row is, against the rest of the roster. Their code, XP and
        badges stay; practicals already run keep the name they were run under."""
        _, course = own_course(course_id, who)
        student = node.store.student(student_id)
        if student is None or student.course_id != course.id:
            raise HTTPException(404, f"No student {student_id!r} on this course.")
        others = [s for s in node.store.students(course.id) if s.id != student.id]
        try:
            [row] = roster.check_rows([roster.RosterRow(0, body.name, body.email, body.student_number)], others)
        except roster.RosterRejected as exc:
            raise HTTPException(422, exc.problems[0][1] if exc.problems else exc.summary) from None
        node.store.update_student(student.id, row.name, row.email, row.student_number)
        changed = node.store.student(student.id)
        assert changed is not None
        return student_public(changed)

    @router.delete("/courses/{course_id}/students/{student_id}", status_code=204)
    async def remove_student(course_id: str, student_id: str, who: Principal = Depends(principal)) -> Response:
        """Take a student off the roster: their code stops working and their XP and badges in
        the course go; what they did in past practicals stays in those practicals' results."""
        _, course = own_course(course_id, who)
        student = node.store.student(student_id)
        if student is None or student.course_id != course.id:
            raise HTTPException(404, f"No student {student_id!r} on this course.")
        await node.results.flush()
        node.store.remove_student(student.id)
        return Response(status_code=204)

    @router.post("/courses/{course_id}/codes")
    async def rotate_all_codes(course_id: str, request: Request, qr: bool = False, who: Principal = Depends(principal)) -> dict[str, Any]:
        """New sign-in codes for the whole roster at once (the old ones stop working), each with
        the link that signs in with it and, with ``?qr=true``, that link as an SVG QR code: what
        the printable sign-in sheet shows."""
        _, course = own_course(course_id, who)
        base = node.base_url(request.headers.get("host") or request.url.netloc, request.url.scheme)
        students = []
        for student, code in node.store.rotate_codes(course.id):
            entry = {**student_public(student, code), "signin_url": f"{base}/?signin={code}"}
            if qr:
                entry["qr_svg"] = qr_svg(entry["signin_url"])
            students.append(entry)
        return {"course": {"id": course.id, "name": course.name}, "students": students}

    @router.post("/signin", tags=["sessions"])
    async def signin(body: SignIn, request: Request) -> Any:
        """A student's personal code → a student token for their course's open practical (the
        newest, if several), under the participant id of their roster entry."""
        address = client_address(request, node.secret)
        if not signins.allow(address, time.monotonic()):
            raise HTTPException(429, "Too many sign-in attempts from this address; wait a minute.")
        student = node.store.student_by_code(body.code)
        if student is None:
            raise HTTPException(401, WRONG_CODE)
        course = node.store.course(student.course_id)
        assert course is not None
        # in a deployment, a practical hosted by another node is open too: the sign-in goes to its host
        live = [s for s in node.store.sessions(status="open", course_id=course.id) if not s.preview and (s.id in node.runners or node.cluster)]
        if not live:
            raise HTTPException(409, f"No practical is open in {course.name} now; wait for your teacher to open one.")
        session = max(live, key=lambda s: s.created)
        if session.id not in node.runners:
            assert node.cluster is not None
            return await to_live_host(node.cluster, node.secret, session.id, request, address, body.model_dump_json().encode())
        removed = node.runners[session.id].room.refusal(student.id, None)
        if removed is not None:  # the teacher removed them: the room says so at sign-in, not only at its socket
            raise HTTPException(403, removed)
        require(Role.STUDENT, Action.JOIN)
        claims = Claims(student.id, session.id, Role.STUDENT, student.name, course_id=course.id)
        return {
            "token": issue_token(node.secret, claims, node.config.token_ttl),
            "participant_id": claims.participant_id,
            "session": session.id,
            "title": session.title,
            "scene": session.scene_id,
            "scene_version": session.scene_version,
            "ws_url": node.ws_url(request.headers.get("host")),
            "ws_urls": node.ws_urls(node.ws_url(request.headers.get("host"))),
            "course": {"id": course.id, "name": course.name},
            "student": student_public(student),
        }

    return router
