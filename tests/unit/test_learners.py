"""XP, the cheat guard, badges and ladders, credited from room records in a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from scenes.badge_format import Badge, BadgeCriteria
from server import learner_views as views
from server.learners import CourseSettings
from server.store import Store

CHALLENGE = {
    "id": "heat", "title": "Heat", "steps": [{"id": "a", "text": "A", "points": 10}, {"id": "b", "text": "B", "points": 6}],
    "badges": [
        {"id": "done", "name": "Done", "criteria": {"finished": True}},
        {"id": "steady", "name": "Steady hands", "criteria": {"finished": True, "max_mistakes": 0}},
        {"id": "quick", "name": "Quick", "criteria": {"finished": True, "under_seconds": 60}},
    ],
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path)
    yield store
    store.close()


class Practical:
    """A course practical fed records as the room would write them."""

    def __init__(self, store: Store, course_id: str, challenge: dict[str, Any] = CHALLENGE) -> None:
        self.store = store
        self.session = store.open_session("t_1", "lab", 1, "Week 1", course_id=course_id)
        store.set_challenge(self.session.id, challenge)
        self.n = 0

    def add(self, rid: str, kind: str, **data: Any) -> int:
        self.n += 1
        return self.store.add_records([(self.session.id, rid, kind, 1000.0 + self.n, data)])

    def join(self, pid: str, station: int) -> None:
        self.add(f"member:{pid}:{station}", "station", participant=pid, station=station, name=pid)

    def step(self, station: int, step: str, points: int, members: list[str]) -> int:
        return self.add(f"step:{station}:{step}", "step_done", station=station, step=step, points=points, members=members)

    def mistake(self, station: int, n: int, penalty: int, members: list[str]) -> None:
        self.add(f"mistake:r:{station}:{n}", "mistake", station=station, step="a", mistake="m", explanation="", penalty=penalty, members=members)

    def done(self, station: int, elapsed: float, bonus: int, members: list[str]) -> None:
        self.add(f"done:{station}", "challenge_done", station=station, elapsed=elapsed, bonus=bonus, members=members)


def course_with(store: Store, *names: str) -> tuple[str, list[str]]:
    course = store.add_course("t_1", "Chemistry 9A")
    return course.id, [s.id for s, _ in store.add_students(course.id, [(n, None, None) for n in names])]


def xp_of(store: Store, student_id: str) -> int:
    cid = store.student(student_id).course_id  # type: ignore[union-attr]
    return store.read(views.term_view, cid, student_id, store.course_settings(cid))["xp"]


def test_a_group_earns_its_score_as_xp_once_and_badges_by_how_it_went(store: Store) -> None:
    cid, (ali, bea, cem) = course_with(store, "Ali", "Bea", "Cem")
    week = Practical(store, cid)
    week.join(ali, 1), week.join(bea, 1), week.join(cem, 2), week.join("guest-1", 2)
    week.step(1, "a", 10, [ali, bea])
    week.mistake(1, 1, 3, [ali, bea])
    week.step(2, "a", 10, [cem, "guest-1"])
    week.step(1, "b", 6, [ali, bea])
    week.step(2, "b", 6, [cem, "guest-1"])
    week.done(1, 120.0, 5, [ali, bea])
    week.done(2, 50.0, 9, [cem, "guest-1"])
    assert [xp_of(store, s) for s in (ali, bea, cem)] == [18, 18, 25]
    # a replayed batch (a retry, a failover) changes nothing
    assert week.step(1, "a", 10, [ali, bea]) == 0
    assert xp_of(store, ali) == 18
    settings = store.course_settings(cid)
    card_ali = store.read(views.card, cid, ali, week.session.id, settings)
    assert card_ali["xp_gained"] == 18 and card_ali["mistakes"] == 1 and card_ali["finished"]
    assert [b["name"] for b in card_ali["badges"]] == ["Done"]
    card_cem = store.read(views.card, cid, cem, week.session.id, settings)
    assert sorted(b["name"] for b in card_cem["badges"]) == ["Done", "Quick", "Steady hands"]
    assert card_cem["badges"][0]["criteria"].startswith("Finish every step")


def test_the_same_step_counts_once_for_a_student_who_moves_to_another_station(store: Store) -> None:
    cid, (ali,) = course_with(store, "Ali")
    week = Practical(store, cid)
    week.join(ali, 1)
    week.step(1, "a", 10, [ali])
    week.join(ali, 2)
    week.step(2, "a", 10, [ali])
    assert xp_of(store, ali) == 10
    term = store.read(views.term_view, cid, ali, store.course_settings(cid))
    assert term["practicals"][0]["steps"] == 1 and term["practicals"][0]["station"] == 2


def test_xp_never_goes_below_zero_for_a_practical_and_sums_over_practicals(store: Store) -> None:
    cid, (ali,) = course_with(store, "Ali")
    one, two = Practical(store, cid), Practical(store, cid)
    one.join(ali, 1), two.join(ali, 1)
    one.mistake(1, 1, 5, [ali])
    two.step(1, "a", 10, [ali])
    assert xp_of(store, ali) == 10
    one.step(1, "a", 10, [ali])  # 10 - 5 in week one
    assert xp_of(store, ali) == 15


def test_a_new_rate_rescales_xp_and_level_badges_come_when_the_level_is_reached(store: Store) -> None:
    cid, (ali, bea) = course_with(store, "Ali", "Bea")
    week = Practical(store, cid)
    week.join(ali, 1), week.join(bea, 2)
    week.step(1, "a", 10, [ali]), week.step(2, "a", 10, [bea])
    level2 = Badge(id="level-2", name="Level 2", criteria=BadgeCriteria(level=2))
    store.set_course_settings(cid, CourseSettings(xp_per_point=12.5, badges=[level2]))  # 125 XP: past 120
    assert xp_of(store, ali) == 125
    term = store.read(views.term_view, cid, ali, store.course_settings(cid))
    assert term["level"] == 2 and [b["name"] for b in term["badges"]] == ["Level 2"]
    week.step(1, "b", 6, [ali])
    assert xp_of(store, ali) == 200
    store.set_course_settings(cid, CourseSettings(xp_per_point=1, badges=[level2]))
    term = store.read(views.term_view, cid, ali, store.course_settings(cid))
    assert term["xp"] == 16 and term["level"] == 1 and [b["name"] for b in term["badges"]] == ["Level 2"]  # never taken back


def test_previews_and_practicals_without_a_course_credit_nobody(store: Store) -> None:
    cid, (ali,) = course_with(store, "Ali")
    session = store.open_session("t_1", "lab", 1, "No course")
    store.add_records([(session.id, "step:1:a", "step_done", 1.0, {"station": 1, "step": "a", "points": 10, "members": [ali]})])
    preview = store.open_session("t_1", "lab", 1, "Preview", preview=True, course_id=cid)
    store.add_records([(preview.id, "step:1:a", "step_done", 1.0, {"station": 1, "step": "a", "points": 10, "members": [ali]})])
    assert xp_of(store, ali) == 0


def test_a_relative_ladder_shows_neighbours_without_names_and_the_teacher_sees_all(store: Store) -> None:
    names = [f"S{i}" for i in range(9)]
    cid, ids = course_with(store, *names)
    week = Practical(store, cid)
    for i, sid in enumerate(ids):
        week.join(sid, i + 1)
        week.step(i + 1, "a", 10 * i, [sid])  # S8 has 80 XP, ..., S0 has 0
    settings = store.course_settings(cid)
    mine = store.read(views.ladder, cid, settings, ids[4])
    assert mine["mode"] == "relative" and mine["students"] == 9
    assert [(e["rank"], e["xp"], e["gap"], e["you"]) for e in mine["ladder"]] == [
        (3, 60, 20, False), (4, 50, 10, False), (5, 40, 0, True), (6, 30, -10, False), (7, 20, -20, False)]
    assert all("name" not in e and "student" not in e for e in mine["ladder"])
    top = store.read(views.ladder, cid, settings, ids[8])["ladder"]
    assert [e["rank"] for e in top] == [1, 2, 3]
    teacher = store.read(views.ladder, cid, settings, None)
    assert [e["name"] for e in teacher["ladder"]] == names[::-1] and teacher["ladder"][0]["student"] == ids[8]
    off = CourseSettings(ladder="off")
    assert store.read(views.ladder, cid, off, ids[4]) == {"mode": "off", "students": 9}
    full = store.read(views.ladder, cid, CourseSettings(ladder="full"), ids[4])["ladder"]
    assert len(full) == 9 and full[4]["name"] == "S4" and full[4]["you"]


def test_ties_share_a_rank(store: Store) -> None:
    cid, ids = course_with(store, "A", "B", "C")
    week = Practical(store, cid)
    for i, sid in enumerate(ids):
        week.join(sid, i + 1)
    week.step(1, "a", 10, [ids[0]]), week.step(2, "a", 10, [ids[1]])
    assert [e["rank"] for e in store.read(views.ladder, cid, store.course_settings(cid), None)["ladder"]] == [1, 1, 3]


def test_removing_a_student_takes_their_course_records_and_keeps_the_practicals_results(store: Store) -> None:
    cid, (ali, bea) = course_with(store, "Ali", "Bea")
    week = Practical(store, cid)
    week.join(ali, 1), week.step(1, "a", 10, [ali, bea]), week.done(1, 10, 0, [ali, bea])
    week.add(f"skill:{ali}:a", "skill_attempt", participant=ali, skill="heating", step="a", correct=True, p_known=0.4, opportunities=1, mastered=False)
    assert store.skills(ali) == {"heating": (0.4, 1)}
    store.remove_student(ali)
    assert store.student(ali) is None and store.skills(ali) == {}
    view = store.read(views.course_view, cid, store.course_settings(cid))
    assert [s["name"] for s in view["students"]] == ["Bea"] and sorted(view["students"][0]["badges"]) == ["Done", "Quick", "Steady hands"]
    assert len(store.records(week.session.id)) == 4


@pytest.mark.parametrize("bad", [
    {"badges": [{"id": "x", "name": "X", "criteria": {}}]},
    {"badges": [{"id": "x", "name": "X", "criteria": {"level": 3, "finished": True}}]},
    {"badges": [{"id": "x", "name": "X", "criteria": {"level": 12}}]},
    {"badges": [{"id": "x", "name": "X", "criteria": {"finished": True}}, {"id": "x", "name": "Y", "criteria": {"finished": True}}]},
    {"xp_per_point": -1}, {"ladder": "shame"}, {"neighbours": 0}, {"unknown": 1},
])
def test_settings_that_cannot_work_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        CourseSettings.model_validate(bad)


def test_a_hint_costs_its_points_and_a_no_hint_badge_needs_none(store: Store) -> None:
    challenge = {**CHALLENGE, "badges": [{"id": "alone", "name": "On my own", "criteria": {"finished": True, "max_hints": 0}}]}
    cid, (ali, bea) = course_with(store, "Ali", "Bea")
    week = Practical(store, cid, challenge)
    week.join(ali, 1), week.join(bea, 2)
    week.add("hint:r:1:1", "hint", station=1, step="a", level=2, cost=2, reason="idle", members=[ali])
    for station, pid in ((1, ali), (2, bea)):
        week.step(station, "a", 10, [pid]), week.step(station, "b", 6, [pid]), week.done(station, 100, 0, [pid])
    assert xp_of(store, ali) == 14 and xp_of(store, bea) == 16
    settings = store.course_settings(cid)
    assert store.read(views.card, cid, ali, week.session.id, settings)["badges"] == []
    assert [b["name"] for b in store.read(views.card, cid, bea, week.session.id, settings)["badges"]] == ["On my own"]


def test_the_learner_model_keeps_each_skill_for_the_next_practical(store: Store) -> None:
    cid, (ali,) = course_with(store, "Ali")
    week = Practical(store, cid)
    attempt = {"participant": ali, "skill": "heating", "step": "a", "correct": True, "mastered": False}
    week.add(f"skill:{ali}:a", "skill_attempt", **attempt, p_known=0.4, opportunities=1)
    week.add(f"skill:{ali}:b", "skill_attempt", **attempt, p_known=0.7, opportunities=2)
    week.add("skill:p_guest:a", "skill_attempt", **{**attempt, "participant": "p_guest"}, p_known=0.9, opportunities=1)
    assert store.skills(ali) == {"heating": (0.7, 2)}
    assert store.skills("p_guest") == {}


def test_the_skills_view_is_a_heat_map_of_mastery(store: Store) -> None:
    cid, (ali, bea) = course_with(store, "Ali", "Bea")
    week = Practical(store, cid)
    week.add(f"skill:{ali}:a", "skill_attempt", participant=ali, skill="heating", step="a", correct=True, p_known=0.96, opportunities=4, mastered=True)
    week.add(f"skill:{bea}:a", "skill_attempt", participant=bea, skill="pouring", step="a", correct=False, p_known=0.2, opportunities=1, mastered=False)
    view = store.read(views.skills_view, cid)
    assert view["skills"] == ["heating", "pouring"]
    assert view["students"] == [
        {"id": ali, "name": "Ali", "skills": {"heating": {"p_known": 0.96, "opportunities": 4, "mastered": True}}},
        {"id": bea, "name": "Bea", "skills": {"pouring": {"p_known": 0.2, "opportunities": 1, "mastered": False}}},
    ]
