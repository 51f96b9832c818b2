"""xAPI statements from room records and badge awards: their shape (checked with Ralph's xAPI
models, not our own), deterministic ids, durations; the outbox queueing them in the store's
transaction, once; what an LRS answer means; the backoff; the settings."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from ralph.models.xapi.base.statements import BaseXapiStatement

from server import xapi, xapi_outbox
from server.config import Config, from_env
from server.learners import CourseSettings
from server.store import Store

HOME = "http://lab.school.uz:8000"
CHALLENGE = {
    "id": "heat", "title": "Heat the beaker", "description": "Heat water safely.",
    "steps": [
        {"id": "place", "text": "Put the beaker on the tripod.", "points": 10},
        {"id": "flame", "text": "Which flame?", "points": 4, "checkpoint": {"question": "Which flame is hottest?", "choices": ["blue", "yellow"]}},
        {"id": "temp", "text": "Read the thermometer.", "points": 6, "checkpoint": {"question": "How hot?", "number": {"unit": "°C"}}},
    ],
    "time_bonus": {"target_seconds": 600, "points": 10},
    "badges": [{"id": "done", "name": "Beaker heated", "description": "Finished.", "criteria": {"finished": True}}],
}
PRACTICAL = xapi.Practical("s_1a2b3c4d5e6f", "heat-a-beaker", CHALLENGE, "c_9", "Kimyo 9A", "t_1", "Ustoz")
NAMES = {"st_ali": "Ali", "p_bea": "Bea"}
LAB = f"{HOME}/xapi/activities/scene/heat-a-beaker"


def build(kind: str, record_id: str = "r", at: float = 1796140800.25, practical: xapi.Practical = PRACTICAL, **data: Any) -> list[dict[str, Any]]:
    return xapi.Statements(HOME + "/").record(practical, record_id, kind, at, data, NAMES)


def valid(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement, after Ralph's xAPI model accepted it (as JSON, as it goes on the wire)."""
    BaseXapiStatement.model_validate(json.loads(json.dumps(statement)))
    return statement


# ------------------------------------------------------------------ the statements


def test_joining_is_initialized_the_lab_with_the_course_account_and_the_practical_as_registration() -> None:
    [joined] = build("station", "member:st_ali:1", participant="st_ali", station=1, name="Ali", t=3.0)
    assert valid(joined) == {
        "id": xapi.statement_id(PRACTICAL.session_id, "joined", "st_ali"),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": "st_ali"}, "name": "Ali"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/initialized", "display": {"en-US": "initialized"}},
        "object": {
            "objectType": "Activity", "id": LAB,
            "definition": {"name": {"und": "Heat the beaker"}, "type": "http://adlnet.gov/expapi/activities/simulation",
                           "description": {"und": "Heat water safely."}},
        },
        "context": {
            "registration": xapi.registration(PRACTICAL.session_id),
            "platform": "Amaliy",
            "contextActivities": {"grouping": [{
                "objectType": "Activity", "id": f"{HOME}/xapi/activities/course/c_9",
                "definition": {"name": {"und": "Kimyo 9A"}, "type": "http://adlnet.gov/expapi/activities/course"},
            }]},
            "instructor": {"objectType": "Agent", "account": {"homePage": HOME, "name": "t_1"}, "name": "Ustoz"},
            "extensions": {"https://amaliy.uz/xapi/extensions/session": PRACTICAL.session_id, "https://amaliy.uz/xapi/extensions/station": 1},
        },
        "timestamp": "2026-12-01T16:00:00.250Z",
    }
    # placed at another station later: the same statement id, so the outbox keeps the first only
    [again] = build("station", "member:st_ali:2", participant="st_ali", station=2, name="Ali", t=9.0)
    assert again["id"] == joined["id"]


def test_a_step_done_is_completed_by_every_member_credited_with_score_and_duration() -> None:
    done = build("step_done", "step:1:place", station=1, step="place", by="st_ali", points=10, t=5.0, elapsed=31.2, members=["st_ali", "p_bea", "st_ali"])
    assert [s["actor"]["account"]["name"] for s in done] == ["st_ali", "p_bea"] and [s["actor"]["name"] for s in done] == ["Ali", "Bea"]
    assert len({s["id"] for s in done}) == 2
    for statement in done:
        valid(statement)
        assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed"
        assert statement["object"]["id"] == f"{LAB}/steps/place"
        assert statement["object"]["definition"] == {"name": {"und": "Put the beaker on the tripod."}, "type": "http://adlnet.gov/expapi/activities/interaction"}
        assert statement["result"] == {"score": {"raw": 10, "min": 0, "max": 10, "scaled": 1.0}, "success": True, "completion": True, "duration": "PT31.2S"}
        assert statement["context"]["contextActivities"]["parent"][0]["id"] == LAB
        assert statement["context"]["extensions"]["https://amaliy.uz/xapi/extensions/by"] == "st_ali"
    late = build("step_done", "step:1:place", station=1, step="place", by=None, points=5, t=5.0, elapsed=700, members=["st_ali"])[0]
    assert valid(late)["result"]["score"] == {"raw": 5, "min": 0, "max": 10, "scaled": 0.5} and late["result"]["duration"] == "PT11M40S"
    assert "https://amaliy.uz/xapi/extensions/by" not in late["context"]["extensions"]


def test_a_mistake_a_checkpoint_answer_and_a_finish() -> None:
    [mistake] = build("mistake", "mistake:r:1:1", station=1, step="place", mistake="tipped", explanation="Keep it upright.", penalty=3, by="p_bea", t=4.0, members=["st_ali"])
    assert valid(mistake)["verb"] == {"id": "https://amaliy.uz/xapi/verbs/made-mistake", "display": {"en-US": "made a mistake in"}}
    assert mistake["result"] == {"success": False, "extensions": {
        "https://amaliy.uz/xapi/extensions/mistake": "tipped", "https://amaliy.uz/xapi/extensions/explanation": "Keep it upright.",
        "https://amaliy.uz/xapi/extensions/penalty": 3}}

    [answer] = build("checkpoint_answer", "answer:r:1:2", station=1, step="flame", by="st_ali", correct=False, value=1, t=6.0)
    assert valid(answer)["verb"]["id"] == "http://adlnet.gov/expapi/verbs/answered"
    assert answer["result"] == {"success": False, "response": "1"}
    assert answer["object"]["definition"] == {
        "name": {"und": "Which flame?"}, "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
        "description": {"und": "Which flame is hottest?"}, "interactionType": "choice",
        "choices": [{"id": "0", "description": {"und": "blue"}}, {"id": "1", "description": {"und": "yellow"}}],
    }
    [number] = build("checkpoint_answer", "answer:r:1:3", station=1, step="temp", by="p_bea", correct=True, value=98.5, t=7.0)
    assert valid(number)["result"] == {"success": True, "response": "98.5"} and number["object"]["definition"]["interactionType"] == "numeric"

    [done] = build("challenge_done", "done:1", station=1, t=8.0, elapsed=3725.5, bonus=4, score=21, members=["st_ali"])
    assert valid(done)["object"]["id"] == LAB and "parent" not in done["context"]["contextActivities"]
    assert done["result"] == {
        "score": {"raw": 21, "min": 0, "max": 30, "scaled": 0.7}, "success": True, "completion": True, "duration": "PT1H2M5.5S",
        "extensions": {"https://amaliy.uz/xapi/extensions/bonus": 4},
    }


def test_a_hint_is_received_by_its_group_and_a_requested_one_also_asked_by_its_student() -> None:
    group = build("hint", "hint:r:1:2", station=1, step="place", level=1, reason="idle", cost=1, members=["st_ali", "p_bea"], t=4.0)
    assert [s["actor"]["account"]["name"] for s in group] == ["st_ali", "p_bea"]
    assert valid(group[0])["verb"] == {"id": "https://amaliy.uz/xapi/verbs/received-hint", "display": {"en-US": "received a hint for"}}
    assert group[0]["result"]["extensions"] == {
        "https://amaliy.uz/xapi/extensions/hint-level": 1, "https://amaliy.uz/xapi/extensions/hint-reason": "idle", "https://amaliy.uz/xapi/extensions/hint-cost": 1}
    received, asked = build("hint", "hint:r:1:3", station=1, step="place", level=2, reason="requested", cost=2, by="st_ali", members=["st_ali"], t=5.0)
    assert received["verb"]["id"].endswith("/received-hint") and valid(asked)["verb"]["id"] == "https://amaliy.uz/xapi/verbs/requested-hint"
    assert asked["actor"]["account"]["name"] == "st_ali" and asked["id"] != received["id"] and "result" not in asked


def test_leaving_is_terminated_for_the_one_who_left() -> None:
    [left] = build("left", "left:r:st_ali:9", participant="st_ali", reason="left", t=6.0)
    assert valid(left)["verb"]["id"] == "http://adlnet.gov/expapi/verbs/terminated" and left["actor"]["account"]["name"] == "st_ali"


def test_records_that_are_no_learning_event_make_no_statement() -> None:
    assert build("challenge_started", "started:1", station=1, challenge="heat", t=1.0) == []
    assert build("step_done", "step:1:x", station=1, step="x", points=1, members=[]) == []
    assert build("unknown_kind", "x", members=["st_ali"]) == []


def test_without_a_challenge_or_a_course_the_statements_say_less_and_stay_valid() -> None:
    bare = xapi.Practical("s_2", "free-lab")
    [joined] = build("station", "member:p_bea:1", practical=bare, participant="p_bea", station=1)
    assert valid(joined)["object"]["definition"]["name"] == {"und": "free-lab"}
    assert "contextActivities" not in joined["context"] and "instructor" not in joined["context"]
    [step] = build("step_done", "step:1:a", practical=bare, station=1, step="a b/c", points=3, members=["p_bea"], elapsed=0)
    assert valid(step)["object"]["id"] == f"{HOME}/xapi/activities/scene/free-lab/steps/a%20b%2Fc"
    assert step["result"]["score"] == {"raw": 3} and step["result"]["duration"] == "PT0S"


def test_a_badge_is_earned_once_per_student_and_badge() -> None:
    build_badge = xapi.Statements(HOME).badge
    earned = build_badge("aw_1", "st_ali", "Ali", "heat-a-beaker/done", "Beaker heated", "Finished.", 1796140800.0, PRACTICAL, "c_9", "Kimyo 9A")
    assert valid(earned)["verb"] == {"id": "http://id.tincanapi.com/verb/earned", "display": {"en-US": "earned"}}
    assert earned["object"] == {
        "objectType": "Activity", "id": f"{HOME}/api/badges/achievements/heat-a-beaker/done",
        "definition": {"name": {"und": "Beaker heated"}, "type": "http://activitystrea.ms/schema/1.0/badge", "description": {"und": "Finished."},
                       "moreInfo": f"{HOME}/api/badges/achievements/heat-a-beaker/done"},
    }
    assert earned["context"]["registration"] == xapi.registration(PRACTICAL.session_id)
    assert earned["context"]["extensions"]["https://amaliy.uz/xapi/extensions/credential"] == f"{HOME}/api/badges/aw_1"
    # a level badge reached when a course's settings changed belongs to no practical
    level = build_badge("aw_2", "st_ali", None, "course/level-5", "Level 5", "", 1796140900.0, None, "c_9", "Kimyo 9A")
    assert "registration" not in valid(level)["context"] and level["context"]["contextActivities"]["grouping"][0]["id"].endswith("/course/c_9")
    assert "name" not in level["actor"]
    again = build_badge("aw_3", "st_ali", "Ali", "heat-a-beaker/done", "Beaker heated", "Finished.", 1796149999.0, PRACTICAL, "c_9", "Kimyo 9A")
    assert again["id"] == earned["id"] != level["id"]


def test_ids_and_registrations_are_deterministic_version_5_uuids() -> None:
    one = xapi.statement_id("s_1", "step:1:a", "st_ali")
    assert one == xapi.statement_id("s_1", "step:1:a", "st_ali") and uuid.UUID(one).version == 5
    assert len({one, xapi.statement_id("s_1", "step:1:a", "p_bea"), xapi.statement_id("s_2", "step:1:a", "st_ali"), xapi.statement_id("s_1", "step:2:a", "st_ali")}) == 4
    assert xapi.registration("s_1") == xapi.registration("s_1") != xapi.registration("s_2") and uuid.UUID(xapi.registration("s_1")).version == 5
    # one record, built twice (a replay), is the same statements
    record = {"station": 1, "step": "place", "by": "st_ali", "points": 10, "t": 5.0, "elapsed": 31.2, "members": ["st_ali", "p_bea"]}
    assert build("step_done", "step:1:place", **record) == build("step_done", "step:1:place", **record)


@pytest.mark.parametrize(
    ("seconds", "iso"),
    [(0, "PT0S"), (0.004, "PT0S"), (0.006, "PT0.01S"), (12.5, "PT12.5S"), (59.999, "PT1M"), (60, "PT1M"), (65.25, "PT1M5.25S"),
     (3600, "PT1H"), (3725.5, "PT1H2M5.5S"), (90061.1, "PT25H1M1.1S"), (-3, "PT0S")],
)
def test_durations_are_iso_8601_to_a_hundredth_of_a_second(seconds: float, iso: str) -> None:
    assert xapi.duration(seconds) == iso


def test_timestamps_are_utc_to_the_millisecond() -> None:
    assert xapi.timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert xapi.timestamp(1796140855.5) == "2026-12-01T16:00:55.500Z"


# ------------------------------------------------------------------ queueing with the records


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path)
    yield store
    store.close()


def queued(store: Store) -> list[dict[str, Any]]:
    return [json.loads(row[0]) for row in store.read(lambda db: db.execute("SELECT statement FROM xapi_outbox ORDER BY seq").fetchall())]


def switch(tmp_path: Path, home: str | None) -> None:
    with sqlite3.connect(tmp_path / "amaliy.sqlite3", isolation_level=None) as db:
        xapi_outbox.set_home(db, home)


def test_statements_are_queued_with_new_records_only_once_and_only_when_on(store: Store, tmp_path: Path) -> None:
    session = store.open_session("t_1", "lab", 1, "Week 1")
    store.set_challenge(session.id, CHALLENGE)
    rows = [
        (session.id, "member:p_1:1", "station", 100.0, {"participant": "p_1", "station": 1, "name": "Ali", "t": 1.0}),
        (session.id, "step:1:place", "step_done", 101.0, {"station": 1, "step": "place", "by": "p_1", "points": 10, "t": 2.0, "elapsed": 1.0, "members": ["p_1"]}),
    ]
    assert store.add_records(rows[:1]) == 1
    assert queued(store) == []  # off: no LRS configured, nothing is kept
    switch(tmp_path, HOME)
    assert store.add_records(rows) == 1  # the station record is stored already: only the step is new
    assert [(s["verb"]["display"]["en-US"], s["actor"]["name"]) for s in queued(store)] == [("completed", "Ali")]  # the guest's name from their placement
    assert store.add_records(rows) == 0 and len(queued(store)) == 1  # a replay queues nothing
    store.add_records([(session.id, "member:p_2:1", "station", 103.0, {"participant": "p_2", "station": 1, "name": "Bea"}),
                       (session.id, "member:p_2:2", "station", 104.0, {"participant": "p_2", "station": 2, "name": "Bea"})])
    assert [s["verb"]["display"]["en-US"] for s in queued(store)] == ["completed", "initialized"]  # joined once
    assert all(s["actor"]["account"]["homePage"] == HOME for s in queued(store))
    preview = store.open_session("d_1", "lab", 1, "Preview", preview=True)
    store.add_records([(preview.id, "member:p_3:1", "station", 105.0, {"participant": "p_3", "station": 1})])
    assert len(queued(store)) == 2  # a designer's preview exports nothing
    switch(tmp_path, None)
    store.add_records([(session.id, "done:1", "challenge_done", 106.0, {"station": 1, "elapsed": 5.0, "bonus": 0, "score": 10, "members": ["p_1"]})])
    assert len(queued(store)) == 2


def test_a_new_badge_award_is_queued_in_the_transaction_and_a_second_earning_is_not(store: Store, tmp_path: Path) -> None:
    switch(tmp_path, HOME)
    course = store.add_course("t_1", "Kimyo 9A")
    [(ali, _)] = store.add_students(course.id, [("Ali", None, None)])
    session = store.open_session("t_1", "heat-a-beaker", 1, "Week 1", course_id=course.id)
    store.set_challenge(session.id, CHALLENGE)
    records = [
        (session.id, f"member:{ali.id}:1", "station", 100.0, {"participant": ali.id, "station": 1, "name": "Ali"}),
        (session.id, "step:1:place", "step_done", 100.5, {"station": 1, "step": "place", "points": 10, "members": [ali.id]}),
        (session.id, "done:1", "challenge_done", 101.0, {"station": 1, "elapsed": 5.0, "bonus": 0, "score": 10, "members": [ali.id]}),
    ]
    store.add_records(records)
    verbs = [(s["verb"]["display"]["en-US"], s["object"]["id"].removeprefix(HOME)) for s in queued(store)]
    assert verbs == [("initialized", "/xapi/activities/scene/heat-a-beaker"), ("completed", "/xapi/activities/scene/heat-a-beaker/steps/place"),
                     ("completed", "/xapi/activities/scene/heat-a-beaker"), ("earned", "/api/badges/achievements/heat-a-beaker/done")]
    award = store.award_of_badge("heat-a-beaker/done")
    assert award is not None and queued(store)[-1]["context"]["extensions"]["https://amaliy.uz/xapi/extensions/credential"] == f"{HOME}/api/badges/{award.id}"
    # a second practical finishing earns the same badge again: no new award, no new statement
    second = store.open_session("t_1", "heat-a-beaker", 1, "Week 2", course_id=course.id)
    store.set_challenge(second.id, CHALLENGE)
    store.add_records([(second.id, "done:1", "challenge_done", 201.0, {"station": 1, "elapsed": 5.0, "bonus": 0, "score": 0, "members": [ali.id]})])
    assert [s["verb"]["display"]["en-US"] for s in queued(store)].count("earned") == 1
    # a level badge reached by new settings (no practical) is queued too
    store.set_course_settings(course.id, CourseSettings.model_validate({"xp_per_point": 20, "badges": [{"id": "level-2", "name": "Level 2", "criteria": {"level": 2}}]}))
    level = queued(store)[-1]
    assert level["object"]["id"] == f"{HOME}/api/badges/achievements/course/level-2" and "registration" not in valid(level)["context"]


# ------------------------------------------------------------------ what the LRS says, and waiting


@pytest.mark.parametrize(
    ("status", "body", "kind", "says"),
    [
        (200, b'["a", "b"]', "sent", ""),
        (204, b"", "sent", ""),
        (200, b"<html>hello</html>", "retry", "not with the list of statement ids"),
        (200, b'{"status": "ok"}', "retry", "AMALIY_XAPI_URL"),
        (409, b'{"detail": "Differing statements already exist"}', "conflict", "Differing statements"),
        (400, b'{"detail": "bad verb"}', "rejected", "400 Bad Request: bad verb"),
        (422, b'{"detail": [{"loc": ["body", 0, "actor"], "msg": "Field required"}]}', "rejected", "Field required"),
        (413, b"too big", "rejected", "413"),
        (401, b"", "retry", "AMALIY_XAPI_USERNAME and AMALIY_XAPI_PASSWORD"),
        (403, b"", "retry", "refused the credentials"),
        (404, b'{"detail": "Not Found"}', "retry", "not an xAPI LRS"),
        (405, b"", "retry", "not an xAPI LRS"),
        (302, b"", "retry", "not an xAPI LRS"),
        (429, b"", "retry", "429 Too Many Requests"),
        (500, b'{"detail": "Statements bulk indexation failed"}', "retry", "500 Internal Server Error: Statements bulk indexation failed"),
        (503, b"", "retry", "503 Service Unavailable"),
    ],
)
def test_what_an_lrs_answer_means(status: int, body: bytes, kind: str, says: str) -> None:
    verdict = xapi_outbox.verdict(status, body, "http://lrs/xAPI/statements")
    assert verdict.kind == kind and says in verdict.reason


def test_waits_double_from_one_second_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    for failures, most in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (50, 300)]:
        waits = [xapi_outbox.backoff(failures, 300, rng) for _ in range(200)]
        assert all(most / 2 <= w < most for w in waits) and max(waits) > most * 0.9
    assert xapi_outbox.backoff(3, 300, random.Random(1)) == xapi_outbox.backoff(3, 300, random.Random(1))


def test_the_settings_are_off_by_default_and_checked() -> None:
    assert Config().xapi() is None and from_env({}).xapi() is None
    settings = from_env({"AMALIY_XAPI_URL": "https://lrs.school.uz/xAPI/", "AMALIY_XAPI_USERNAME": "amaliy", "AMALIY_XAPI_PASSWORD": "s3cret",
                         "AMALIY_XAPI_BATCH": "20", "AMALIY_XAPI_MAX_BACKOFF": "60"}).xapi()
    assert settings == xapi_outbox.SenderSettings("https://lrs.school.uz/xAPI/", "amaliy", "s3cret", 20, 10.0, 60.0)
    assert settings.endpoint == "https://lrs.school.uz/xAPI/statements"
    assert xapi_outbox.SenderSettings("https://amaliy:s3cret@lrs.school.uz:8443/xAPI").shown_url == "https://lrs.school.uz:8443/xAPI"
    for env, says in [({"AMALIY_XAPI_URL": "lrs.school.uz/xAPI"}, "http:// or https://"), ({"AMALIY_XAPI_URL": "ftp://lrs/xAPI"}, "http:// or https://"),
                      ({"AMALIY_XAPI_URL": "http://lrs/xAPI", "AMALIY_XAPI_BATCH": "0"}, "AMALIY_XAPI_BATCH"),
                      ({"AMALIY_XAPI_URL": "http://lrs/xAPI", "AMALIY_XAPI_TIMEOUT": "0"}, "AMALIY_XAPI_TIMEOUT")]:
        with pytest.raises(SystemExit, match=says):
            from_env(env).xapi()
