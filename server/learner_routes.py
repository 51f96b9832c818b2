"""REST routes for learners across practicals: course settings (XP rate, level curve,
ladder mode, badges), the teacher's dashboard data, a student's own records and card,
ladders, and badges as Open Badges 3.0 credentials.

Who sees what: a teacher sees every student of their own courses (``VIEW_LEARNERS``);
a student sees only their own records and the ladder as the course's mode allows
(``VIEW_OWN_RECORDS``), with the token of the practical they are in. A credential, once
issued, is public at its id (as Open Badges hosts them), under an unguessable award id.
docs/operations.md, "XP, levels and badges", is the user-facing account.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import unquote

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from realtime.roles import Action, Role
from server import learner_views as views
from server import results
from server.auth import Claims, Principal, require
from server.course_routes import own_course_of
from server.credentials import BadgeAward, BadgeIssuer
from server.learners import Award, CourseSettings
from server.node import Node
from server.store import Session, Student


def learner_routes(node: Node, principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["learners"])
    issuer = BadgeIssuer(node.config.data_dir)
    own_course = own_course_of(node)

    def base_url(request: Request) -> str:
        return node.base_url(request.headers.get("host") or request.url.netloc, request.url.scheme)

    def roster_student(course_id: str, student_id: str) -> Student:
        student = node.store.student(student_id)
        if student is None or student.course_id != course_id:
            raise HTTPException(404, f"No student {student_id!r} on this course.")
        return student

    def learner(who: Principal) -> Claims:
        """The calling student's claims (403 for other roles, keys included)."""
        require(who.role, Action.VIEW_OWN_RECORDS)
        if who.claims is None:
            raise HTTPException(403, "Use the token of your practical for this.")
        return who.claims

    def course_student(claims: Claims) -> Student | None:
        """The roster entry behind a student's token; None for a guest."""
        if claims.course_id is None:
            return None
        student = node.store.student(claims.participant_id)
        if student is None or student.course_id != claims.course_id:
            raise HTTPException(403, "You are no longer on this course's roster; ask your teacher.")
        return student

    def credential_award(award: Award) -> BadgeAward:
        course = node.store.course(award.course_id)
        student = node.store.student(award.student_id)
        return BadgeAward(
            award.id, award.badge_key, award.name, award.description, award.criteria, award.course_id,
            course.name if course else "", award.student_id, student.name if student else "", award.awarded_at,
        )

    # ------------------------------------------------------------------ teacher

    @router.get("/courses/{course_id}/settings")
    async def get_settings(course_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        _, course = own_course(course_id, who)
        settings = node.store.course_settings(course.id)
        return {**settings.model_dump(), "thresholds": list(settings.curve.thresholds())}

    @router.put("/courses/{course_id}/settings")
    async def put_settings(course_id: str, body: CourseSettings, who: Principal = Depends(principal)) -> dict[str, Any]:
        """Replace the course's settings; every practical's XP is re-scaled to the new rate
        and level badges newly reached are awarded (badges are never taken back)."""
        _, course = own_course(course_id, who)
        await node.results.flush()
        node.store.set_course_settings(course.id, body)
        return {**body.model_dump(), "thresholds": list(body.curve.thresholds())}

    def teachers_course(course_id: str, who: Principal) -> tuple[Any, CourseSettings]:
        _, course = own_course(course_id, who, Action.VIEW_LEARNERS)
        return course, node.store.course_settings(course.id)

    @router.get("/courses/{course_id}/dashboard")
    async def dashboard(course_id: str, who: Principal = Depends(principal)) -> JSONResponse:
        """The course over the term: practicals, and every student's XP, level and badges.
        Answered as plain JSON, skipping FastAPI's per-value encoder: the view is already
        plain data, and for 2,000 students that encoder would take longer than the queries."""
        course, settings = teachers_course(course_id, who)
        await node.results.flush()
        view = node.store.read(views.course_view, course.id, settings)
        return JSONResponse({"course": {"id": course.id, "name": course.name}, "settings": settings.model_dump(), **view})

    @router.get("/courses/{course_id}/dashboard.csv")
    async def dashboard_csv(course_id: str, who: Principal = Depends(principal)) -> Response:
        course, settings = teachers_course(course_id, who)
        await node.results.flush()
        return Response(
            node.store.read(views.course_csv, course.id, settings).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="amaliy-{course.id}-term.csv"', "Cache-Control": "no-store"},
        )

    @router.get("/courses/{course_id}/students/{student_id}/term")
    async def term(course_id: str, student_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """One student over the term: XP, level, badges and each practical's steps, mistakes and time."""
        course, settings = teachers_course(course_id, who)
        student = roster_student(course.id, student_id)
        await node.results.flush()
        return {"student": {"id": student.id, "name": student.name}, **node.store.read(views.term_view, course.id, student.id, settings)}

    @router.get("/courses/{course_id}/skills")
    async def course_skills(course_id: str, who: Principal = Depends(principal)) -> JSONResponse:
        """Mastery per skill per student, as the learner model has it now (the heat map)."""
        course, _ = teachers_course(course_id, who)
        await node.results.flush()
        return JSONResponse(node.store.read(views.skills_view, course.id))

    @router.get("/courses/{course_id}/ladder")
    async def course_ladder(course_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """The teacher gets the whole ladder; a student of the course their view of it."""
        await node.results.flush()
        if who.role == Role.STUDENT:
            student = course_student(learner(who))
            if student is None or student.course_id != course_id:
                raise HTTPException(403, "You may see the ladder of your own course only.")
            return node.store.read(views.ladder, course_id, node.store.course_settings(course_id), student.id)
        course, settings = teachers_course(course_id, who)
        return node.store.read(views.ladder, course.id, settings, None)

    @router.get("/sessions/{session_id}/ladder", tags=["results"])
    async def practical_ladder(session_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        """Stations ranked by score in one practical: all of it for its teacher; for a
        student in it, as the course's ladder mode allows."""
        session = node.store.session(session_id)
        if session is None:
            raise HTTPException(404, f"No session {session_id!r}.")
        if who.role == Role.STUDENT:
            claims = learner(who)
            if claims.session_id != session.id:
                raise HTTPException(403, "You may see the ladder of your own practical only.")
            return await station_ladder(session, claims.participant_id)
        require(who.role, Action.VIEW_RESULTS)
        teacher = who.keyed(Action.VIEW_RESULTS)
        if session.teacher_id != teacher.id:
            raise HTTPException(403, "This practical belongs to another teacher.")
        return await station_ladder(session, None)

    async def station_ladder(session: Session, participant: str | None) -> dict[str, Any]:
        await node.results.flush()
        built = results.build(session, node.store.challenge(session.id), node.store.records(session.id))
        mode = "full" if participant is None else (node.store.course_settings(session.course_id).ladder if session.course_id else "relative")
        return views.station_ladder(built, participant, mode)

    # ------------------------------------------------------------------ student

    @router.get("/me")
    async def me(who: Principal = Depends(principal)) -> dict[str, Any]:
        """A student's own records: for a course student their term (XP, level, badges,
        practicals); for a guest, only the practical they are in."""
        claims = learner(who)
        student = course_student(claims)
        await node.results.flush()
        if student is None:
            return {"participant": claims.participant_id, "name": claims.name, "course": None, "session": claims.session_id}
        course = node.store.course(student.course_id)
        assert course is not None
        settings = node.store.course_settings(course.id)
        return {
            "participant": student.id, "name": student.name, "course": {"id": course.id, "name": course.name}, "session": claims.session_id,
            **node.store.read(views.term_view, course.id, student.id, settings),
        }

    @router.get("/me/card")
    async def my_card(who: Principal = Depends(principal)) -> dict[str, Any]:
        """The card after a practical: points, and for a course student XP gained, level,
        badges earned in it and their place on the course ladder; the practical's ladder."""
        claims = learner(who)
        student = course_student(claims)
        session = node.store.session(claims.session_id)
        if session is None:
            raise HTTPException(404, "That practical is gone.")
        practical = await station_ladder(session, claims.participant_id)
        if student is None:
            return {"course": None, "session": session.id, "practical_ladder": practical}
        settings = node.store.course_settings(student.course_id)
        return {
            "course": {"id": student.course_id},
            **node.store.read(views.card, student.course_id, student.id, session.id, settings),
            "practical_ladder": practical,
        }

    @router.get("/me/badges/{award_id}")
    async def my_badge(award_id: str, request: Request, who: Principal = Depends(principal)) -> Response:
        """Download one of your badges as a signed Open Badges 3.0 credential (a VC-JWT)."""
        claims = learner(who)
        student = course_student(claims)
        award = node.store.award(award_id)
        if student is None or award is None or award.student_id != student.id:
            raise HTTPException(404, "You have no badge with that id.")
        token = issuer.sign(issuer.credential(credential_award(award), base_url(request)))
        return Response(
            token, media_type="application/vc+jwt",
            headers={"Content-Disposition": f'attachment; filename="amaliy-badge-{award.id}.jwt"', "Cache-Control": "no-store"},
        )

    # ------------------------------------------------------------------ public: what a verifier fetches

    @router.get("/badges/issuer", tags=["badges"])
    async def issuer_profile(request: Request) -> JSONResponse:
        return JSONResponse(issuer.profile(base_url(request)), media_type="application/ld+json")

    @router.get("/badges/jwks.json", tags=["badges"])
    async def issuer_keys() -> dict[str, Any]:
        """The issuer's public key, to verify the credentials' signatures."""
        return issuer.jwks()

    @router.get("/badges/achievements/{badge_key:path}", tags=["badges"])
    async def achievement(badge_key: str, request: Request) -> JSONResponse:
        award = node.store.award_of_badge(unquote(badge_key))
        if award is None:
            raise HTTPException(404, "No badge with that key has been awarded here.")
        return JSONResponse(issuer.credential(credential_award(award), base_url(request))["credentialSubject"]["achievement"], media_type="application/ld+json")

    @router.get("/badges/{award_id}", tags=["badges"])
    async def hosted_credential(award_id: str, request: Request) -> JSONResponse:
        """A credential at its id: the JSON-LD document (the signed form is the student's download)."""
        award = node.store.award(award_id)
        if award is None:
            raise HTTPException(404, "No credential with that id.")
        return JSONResponse(issuer.credential(credential_award(award), base_url(request)), media_type="application/ld+json")

    return router
