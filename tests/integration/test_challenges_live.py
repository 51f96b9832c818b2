"""A lab challenge end to end against real server processes: a designer uploads a schema_version 2
package, a teacher opens it, students do it through the SDK, and the teacher reads the results;
a designer previews a version privately. Every wait polls a condition with a timeout."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from amaliy_client import AmaliyClient, JoinRefused
from realtime.protocol import CloseCode

from tests.conftest import REPO, LiveServer, serve_again, start_server
from tests.scene_packages import _manifest_only

PACKAGE = "heat-a-beaker"
#: station 1 stands at the origin: the tripod's snap point "top" is 0.2 m above it
ON_TRIPOD = [0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 1.0]
#: a quarter turn about x: the beaker on its side
TIPPED = [0.4, 1.2, -1.0, 0.7071068, 0.0, 0.0, 0.7071068]
#: seconds to wait for an event or a state (generous: a shared test machine may be busy)
WAIT = 20.0
UPLOAD_TIMEOUT = 120.0


def lab_manifest(package_id: str = PACKAGE) -> dict[str, Any]:
    """Two benches; put the beaker on the tripod (an at_snap step, with a mistake for tipping it),
    light the burner (an interact step), then answer a question (a checkpoint)."""
    return {
        "schema_version": 2,
        "id": package_id,
        "title": "Heating a beaker",
        "assets": [{"id": "item", "path": "assets/item.glb"}],
        "objects": [{"id": "board", "asset": "item", "transform": {"position": [0, 2, -3]}}],
        "spawn_points": [{"position": [0, 0, 2]}],
        "stations": {
            "template": {
                "objects": [
                    {"id": "tripod", "asset": "item", "transform": {"position": [0, 0.8, -1]}, "snap_points": [{"id": "top", "position": [0, 0.2, 0]}]},
                    {"id": "beaker", "asset": "item", "interactable": True, "transform": {"position": [0.4, 0.9, -1]}},
                    {"id": "burner", "asset": "item", "transform": {"position": [-0.4, 0.9, -1]}, "properties": [{"id": "lit", "kind": "switch", "initial": False}]},
                ],
                "spawn_points": [{"position": [0, 0, 0]}],
            },
            "placements": [{"position": [0, 0, 0], "title": "Bench A"}, {"position": [3, 0, 0], "title": "Bench B"}],
            "group_size": 2,
            "assignment": "choose",
        },
        "challenge": {
            "id": "heat-beaker",
            "title": "Heat the beaker",
            "steps": [
                {
                    "id": "place", "text": "Put the beaker on the tripod.", "points": 10, "skill": "setup",
                    "condition": {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}},
                    "mistakes": [{"id": "tipped", "condition": {"tilted": {"object": "beaker", "past_degrees": 45}}, "explanation": "Keep the beaker upright or it spills.", "penalty": 3}],
                },
                {"id": "light", "text": "Light the burner.", "points": 6, "skill": "heating", "condition": {"property": {"object": "burner", "property": "lit", "equals": True}}},
                {
                    "id": "flame", "text": "Which flame heats best?", "points": 4, "skill": "heating",
                    "checkpoint": {"question": "Which flame is hottest?", "choice": {"choices": ["blue", "yellow"], "answer": 0}, "wrong": "Look at the colour again."},
                },
            ],
            "mistake_penalty": 2,
            "time_bonus": {"target_seconds": 600, "points": 10},
        },
    }


async def place_beaker(client: AmaliyClient, station: int = 1, tip_first: bool = False) -> None:
    """Step 1 of ``lab_manifest``'s challenge: carry the station's beaker onto its tripod
    (tipping it on the way first, a mistake, when ``tip_first``)."""
    beaker = f"beaker@{station}"
    await client.grab(beaker)
    await client.expect("grabbed", object=beaker, timeout=WAIT)
    if tip_first:
        await client.move(beaker, TIPPED)
        await client.expect("mistake", mistake="tipped", timeout=WAIT)
    await client.move(beaker, [ON_TRIPOD[0] + 3.0 * (station - 1), *ON_TRIPOD[1:]])
    await client.release(beaker)
    await client.wait_step("place", timeout=WAIT)


async def light_and_answer(lighter: AmaliyClient, answerer: AmaliyClient, station: int = 1, wrong_first: bool = False) -> dict[str, Any]:
    """Steps 2 and 3: ``lighter`` lights the burner, ``answerer`` answers the question
    (wrongly first, a mistake, when ``wrong_first``); returns the station's finished progress."""
    await lighter.interact(f"burner@{station}", "lit", True)
    await lighter.wait_step("light", timeout=WAIT)
    await answerer.wait_until(lambda: answerer.lab.open_steps() == ["flame"], WAIT, what="the question")
    if wrong_first:
        await answerer.answer("flame", 1)
        await answerer.expect("mistake", mistake="wrong_answer", timeout=WAIT)
    await answerer.answer("flame", 0)
    return await answerer.wait_finished(timeout=WAIT)


def key(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def upload(live: LiveServer, data: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=live.base_url, timeout=UPLOAD_TIMEOUT) as http:  # ingest runs in a worker: slow on a busy machine
        return http.post("/api/scenes", files={"package": ("lab.zip", _manifest_only(data), "application/zip")}, headers=key(live.designer_key))


def add_user(data_dir: Path, name: str, role: str = "teacher") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "users", "add", name, "--role", role, "--data-dir", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    return done.stdout.split()[-1]


def results_of(live: LiveServer, session_id: str, bearer: str) -> httpx.Response:
    with live.http() as http:
        return http.get(f"/api/sessions/{session_id}/results", headers=key(bearer))


def csv_of(live: LiveServer, session_id: str, bearer: str) -> httpx.Response:
    with live.http() as http:
        return http.get(f"/api/sessions/{session_id}/results.csv", headers=key(bearer))


async def error_code(client: AmaliyClient) -> str:
    return (await client.expect("error", timeout=WAIT))["code"]


# ------------------------------------------------------------------ bad definitions


def test_a_bad_challenge_is_refused_with_json_paths_and_the_store_is_unchanged(server: LiveServer) -> None:
    data = lab_manifest("bad-challenge")
    steps = data["challenge"]["steps"]
    steps[0]["condition"]["at_snap"]["object"] = "flask"  # no such object
    steps[0]["requires"] = ["light"]  # place -> light -> place
    with server.http() as http:
        before = http.get("/api/scenes", headers=key(server.designer_key)).json()
    refused = upload(server, data)
    assert refused.status_code == 422, refused.text
    paths = {problem["where"]: problem for problem in refused.json()["problems"]}
    assert "scene.json $.challenge.steps[0].condition.at_snap.object" in paths
    assert "'flask'" in paths["scene.json $.challenge.steps[0].condition.at_snap.object"]["what"]
    cycle = paths["scene.json $.challenge.steps[0].requires"]
    assert "place -> light -> place" in cycle["what"]
    with server.http() as http:
        assert http.get("/api/scenes", headers=key(server.designer_key)).json() == before
        assert http.get("/api/scenes/bad-challenge", headers=key(server.designer_key)).status_code == 404


# ------------------------------------------------------------------ a practical, start to finish


async def test_a_group_finishes_the_challenge_and_the_results_say_what_happened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    clients: list[AmaliyClient] = []
    began = time.time()
    try:
        uploaded = upload(live, lab_manifest())
        assert uploaded.status_code == 201, uploaded.text
        version = uploaded.json()["version"]
        with live.http() as http:
            opened = http.post("/api/sessions", json={"scene": PACKAGE, "version": version, "title": "Heating"}, headers=key(live.teacher_key))
        assert opened.status_code == 201, opened.text
        session = opened.json()
        assert session["preview"] is False
        teacher = AmaliyClient(session["ws_url"], session["teacher_token"])
        await teacher.connect()
        clients.append(teacher)
        ali, bea, cem = [await AmaliyClient.join(live.base_url, session["join_code"], name) for name in ("Ali", "Bea", "Cem")]
        clients += [ali, bea, cem]

        # the snapshot tells a client the stations and the challenge; nobody is placed under "choose"
        assert ali.lab.rules["assignment"] == "choose" and sorted(ali.lab.stations) == [1, 2]
        assert [step["id"] for step in ali.lab.challenge["steps"]] == ["place", "light", "flame"]
        assert ali.station is None and ali.lab.value("burner@1", "lit") is False

        await ali.choose_station(1)
        await ali.wait_station(1, timeout=WAIT)
        await bea.choose_station(1)
        await bea.wait_station(1, timeout=WAIT)
        await teacher.wait_until(lambda: cem.id in teacher.participants, WAIT, what="Cem in the roster")
        await teacher.assign_station(cem.id, 2)
        assert await cem.wait_station(timeout=WAIT) == 2
        await ali.wait_until(lambda: set(ali.lab.stations[1]["members"]) == {ali.id, bea.id}, WAIT, what="the group")
        for client in (ali, cem):
            await client.wait_until(lambda c=client: c.lab.open_steps() == ["place"], WAIT, what="the challenge started")

        # another station's equipment is not Cem's to touch
        await cem.grab("beaker@1")
        assert await error_code(cem) == "wrong_station"
        await cem.interact("burner@1", "lit", True)
        assert await error_code(cem) == "wrong_station"
        assert ali.lab.value("burner@1", "lit") is False

        # step 1, with a mistake on the way: Ali tips the beaker, then sets it on the tripod
        await ali.grab("beaker@1")
        await ali.expect("grabbed", object="beaker@1", timeout=WAIT)
        await ali.move("beaker@1", TIPPED)
        tipped = await ali.expect("mistake", mistake="tipped", timeout=WAIT)
        assert tipped["penalty"] == 3 and tipped["by"] == ali.id
        await ali.move("beaker@1", ON_TRIPOD)
        await ali.release("beaker@1")
        placed = await ali.wait_step("place", timeout=WAIT)
        assert placed["by"] == ali.id and placed["points"] == 10
        await ali.wait_until(lambda: ali.score == 7, WAIT, what="10 - 3")
        assert ali.lab.open_steps() == ["light"]

        # Bea drops mid-challenge and resumes with her token and last_seq: the missed events replay
        await bea.drop()
        await ali.expect("presence", participant=bea.id, connected=False, timeout=WAIT)
        welcome = await bea.resume(timeout=WAIT)
        assert welcome["resumed"] is True and "snapshot" not in welcome
        assert bea.station == 1 and bea.lab.done("place") and bea.score == 7
        # and a client starting afresh on the same token gets it all from the snapshot
        again = AmaliyClient(bea.ws_url, bea.token)
        welcome = await again.connect(timeout=WAIT)
        clients.append(again)
        assert welcome["resumed"] is True and "snapshot" in welcome
        assert (await bea.closed(timeout=WAIT))[0] == CloseCode.REPLACED
        bea = again
        assert bea.station == 1 and bea.lab.done("place") and bea.lab.open_steps() == ["light"] and bea.score == 7

        # step 2: Bea lights the burner
        await bea.interact("burner@1", "lit", True)
        lit = await bea.wait_step("light", timeout=WAIT)
        assert lit["by"] == bea.id and lit["points"] == 6
        await ali.wait_until(lambda: ali.lab.value("burner@1", "lit") is True, WAIT, what="the flame")
        await ali.wait_until(lambda: ali.lab.open_steps() == ["flame"], WAIT, what="the question")

        # step 3: what is no answer costs nothing; then a wrong answer (a mistake), then the right one
        for no_answer in (True, "0", "blue"):
            await ali.send({"type": "answer", "step": "flame", "value": no_answer, "id": f"no-{no_answer}"})
            refused = await ali.expect("error", re=f"no-{no_answer}", timeout=WAIT)
            assert (refused["code"], refused["message"]) == ("bad_value", "Answer with the number of a choice, from 0 to 1."), no_answer
        await ali.answer("flame", 1)
        assert (await ali.expect("checkpoint_answer", timeout=WAIT))["correct"] is False
        wrong = await ali.expect("mistake", mistake="wrong_answer", timeout=WAIT)
        assert wrong["penalty"] == 2 and wrong["explanation"] == "Look at the colour again."
        await ali.answer("flame", 0)
        assert (await ali.expect("checkpoint_answer", timeout=WAIT))["correct"] is True
        finished = await ali.wait_finished(timeout=WAIT)
        done = await ali.expect("challenge_done", station=1, timeout=WAIT)
        expected = 10 - 3 + 6 - 2 + 4 + done["bonus"]
        assert done["bonus"] > 0 and done["score"] == expected == finished["score"]
        for client in (ali, bea):
            await client.wait_until(lambda c=client: c.score == expected, WAIT, what="the final score")
        assert cem.score == 0 and not cem.lab.finished()
        steps_done = {event["step"]: event for event in ali.drain() if event.get("type") == "step_done"}
        assert set(steps_done) == {"place", "light", "flame"}

        # the teacher reads the results (while the practical runs, and after it ended)
        live_results = results_of(live, session["id"], live.teacher_key)
        assert live_results.status_code == 200, live_results.text
        with live.http() as http:
            assert http.post(f"/api/sessions/{session['id']}/end", headers=key(live.teacher_key)).status_code == 200
        await ali.closed(timeout=WAIT)
        response = results_of(live, session["id"], live.teacher_key)
        assert response.status_code == 200
        results = response.json()
        assert results == live_results.json() | {"session": {**live_results.json()["session"], "status": "ended"}}
        check_results(results, session, ali.id, bea.id, cem.id, expected, done, steps_done, began)
        check_csv(csv_of(live, session["id"], live.teacher_key), session, results)

        # only the teacher who owns the practical may read them
        other = add_user(data_dir, "Other Teacher")
        assert results_of(live, session["id"], other).status_code == 403
        assert csv_of(live, session["id"], other).status_code == 403
        assert results_of(live, session["id"], live.designer_key).status_code == 403
        assert results_of(live, session["id"], ali.token).status_code == 403
        assert results_of(live, session["id"], session["teacher_token"]).status_code == 200
        assert results_of(live, "s_000000000000", live.teacher_key).status_code == 404

        # and they are kept across a restart
        for client in clients:
            await client.close()
        clients.clear()
        live.stop()
        live = serve_again(live, data_dir)
        after = results_of(live, session["id"], live.teacher_key)
        assert after.status_code == 200 and after.json() == results
        assert csv_of(live, session["id"], live.teacher_key).content == csv_of(live, session["id"], live.teacher_key).content
    finally:
        for client in clients:
            await client.close()
        live.stop()


def check_results(
    results: dict[str, Any], session: dict[str, Any], ali: str, bea: str, cem: str, expected: int,
    done: dict[str, Any], steps_done: dict[str, dict[str, Any]], began: float,
) -> None:
    assert results["session"]["id"] == session["id"] and results["session"]["status"] == "ended"
    challenge = results["challenge"]
    assert challenge["id"] == "heat-beaker" and challenge["title"] == "Heat the beaker"
    assert challenge["steps"] == [
        {"id": "place", "text": "Put the beaker on the tripod.", "points": 10, "skill": "setup"},
        {"id": "light", "text": "Light the burner.", "points": 6, "skill": "heating"},
        {"id": "flame", "text": "Which flame heats best?", "points": 4, "skill": "heating"},
    ]
    one, two = results["stations"]
    assert one["station"] == 1 and sorted(one["members"]) == sorted([ali, bea])
    assert (one["steps_done"], one["mistakes"], one["score"], one["bonus"]) == (3, 2, expected, done["bonus"])
    assert one["elapsed"] == done["elapsed"] and one["finished"] >= one["started"] >= began
    assert two["station"] == 2 and two["members"] == [cem] and (two["steps_done"], two["score"], two["finished"]) == (0, 0, None)

    students = {s["participant"]: s for s in results["students"]}
    assert set(students) == {ali, bea, cem}
    for pid, name in ((ali, "Ali"), (bea, "Bea")):
        student = students[pid]
        assert student["name"] == name and student["stations"] == [1] and student["station"] == 1
        assert student["score"] == expected and student["done"] is True and student["elapsed"] == done["elapsed"]
        assert student["started"] == one["started"] and student["finished"] == one["finished"]
        steps = {entry["step"]: entry for entry in student["steps"]}
        assert list(steps) == ["place", "light", "flame"]
        assert [steps[s]["by"] for s in steps] == [ali, bea, ali] and [steps[s]["by_name"] for s in steps] == ["Ali", "Bea", "Ali"]
        assert [steps[s]["points"] for s in steps] == [10, 6, 4]
        assert all(steps[s]["seconds"] == steps_done[s]["elapsed"] for s in steps)
        assert all(began <= steps[s]["at"] <= time.time() for s in steps)
        assert [(m["step"], m["mistake"], m["by"], m["penalty"]) for m in student["mistakes"]] == [
            ("place", "tipped", ali, 3), ("flame", "wrong_answer", ali, 2)
        ]
        assert student["mistakes"][0]["explanation"] == "Keep the beaker upright or it spills."
    assert [(a["step"], a["correct"], a["value"]) for a in students[ali]["answers"]] == [("flame", False, 1), ("flame", True, 0)]
    assert students[bea]["answers"] == []
    cem_row = students[cem]
    assert (cem_row["station"], cem_row["score"], cem_row["steps"], cem_row["mistakes"], cem_row["done"]) == (2, 0, [], [], False)
    assert cem_row["started"] == two["started"] and cem_row["finished"] is None


def check_csv(response: httpx.Response, session: dict[str, Any], results: dict[str, Any]) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f'filename="amaliy-{PACKAGE}-{session["id"]}-results.csv"' in disposition
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert list(rows[0])[-3:] == ["step:place", "step:light", "step:flame"]
    by_id = {row["participant"]: row for row in rows}
    assert len(rows) == len(results["students"]) == 3
    for student in results["students"]:
        row = by_id[student["participant"]]
        assert row["name"] == student["name"] and row["station"] == str(student["station"])
        assert int(row["score"]) == student["score"]
        assert int(row["steps_done"]) == len(student["steps"]) and int(row["mistakes"]) == len(student["mistakes"])
        assert row["finished"] == ("yes" if student["done"] else "no")
        assert row["elapsed_seconds"] == ("" if student["elapsed"] is None else str(student["elapsed"]))
        seconds = {entry["step"]: entry["seconds"] for entry in student["steps"]}
        for step in ("place", "light", "flame"):
            assert row[f"step:{step}"] == ("" if step not in seconds else str(seconds[step]))


# ------------------------------------------------------------------ designer previews


async def test_a_designer_previews_a_version_privately_and_sees_what_the_engine_sees(server: LiveServer) -> None:
    uploaded = upload(server, lab_manifest("preview-lab"))
    assert uploaded.status_code == 201, uploaded.text
    version = uploaded.json()["version"]
    with server.http() as http:
        assert http.post(f"/api/scenes/preview-lab/versions/{version}/preview", headers=key(server.teacher_key)).status_code == 403
        assert http.post(f"/api/scenes/preview-lab/versions/{version + 1}/preview", headers=key(server.designer_key)).status_code == 404
        opened = http.post(f"/api/scenes/preview-lab/versions/{version}/preview", headers=key(server.designer_key))
        assert opened.status_code == 201, opened.text
        preview = opened.json()
        assert preview["preview"] is True and preview["join_code"] is None and preview["join_url"] is None
        assert preview["role"] == "student" and preview["scene"] == "preview-lab" and preview["status"] == "open"
        # nobody else finds it: not in a teacher's list, not by the teacher, no join code to use
        listed = http.get("/api/sessions", headers=key(server.teacher_key)).json()
        assert preview["id"] not in {s["id"] for s in listed}
        assert http.get(f"/api/sessions/{preview['id']}", headers=key(server.teacher_key)).status_code == 403
        assert http.get(f"/api/sessions/{preview['id']}/results", headers=key(server.teacher_key)).status_code == 403
        assert http.post("/api/join", json={"code": "preview", "name": "Eve"}).status_code == 422
        assert http.get(f"/api/sessions/{preview['id']}/debug", headers=key(server.teacher_key)).status_code == 403
        # a designer's debug view covers previews only
        demo = server.open_session()
        assert http.get(f"/api/sessions/{demo['id']}/debug", headers=key(server.designer_key)).status_code == 404

    designer = AmaliyClient(preview["ws_url"], preview["token"])
    welcome = await designer.connect(timeout=WAIT)
    try:
        assert welcome["participant"]["role"] == "student" and designer.id == preview["participant_id"]
        await designer.choose_station(2)
        await designer.wait_station(2, timeout=WAIT)

        def debug() -> dict[str, Any]:
            with server.http() as http:
                response = http.get(preview["debug_url"], headers=key(server.designer_key))
            assert response.status_code == 200, response.text
            return response.json()

        def steps(view: dict[str, Any], station: int) -> dict[str, dict[str, Any]]:
            return {step["id"]: step for step in view["stations"][station - 1]["steps"]}

        view = debug()
        assert view["preview"] is True and view["challenge"] == "heat-beaker" and view["properties"]["burner@2"] == {"lit": False}
        place = steps(view, 2)["place"]
        assert (place["open"], place["done"], place["holds"]) == (True, False, False)
        # a step not open yet (or at a station nobody works at) is tried as the room is now
        assert steps(view, 2)["light"]["open"] is False and steps(view, 1)["place"]["open"] is False
        assert steps(view, 1)["place"]["holds"] is False and steps(view, 2)["place"]["condition"] == {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
        assert view["stations"][1]["members"] == [designer.id]

        # holding the beaker over the snap point: close, but "placed" needs it put down
        await designer.grab("beaker@2")
        await designer.expect("grabbed", timeout=WAIT)
        await designer.move("beaker@2", [3.0, 1.0, -1.0, 0, 0, 0, 1])
        await designer.wait_until(lambda: abs(designer.objects["beaker@2"]["transform"][0] - 3.0) < 1e-5, WAIT, what="the move")
        assert steps(debug(), 2)["place"]["holds"] is False
        await designer.release("beaker@2")
        await designer.wait_step("place", timeout=WAIT)
        view = debug()
        assert steps(view, 2)["place"]["done"] is True and steps(view, 2)["place"]["holds"] is True
        assert steps(view, 2)["light"]["open"] is True and view["stations"][1]["score"] == 10

        # the designer's own previews are theirs to end; ending makes the token useless
        with server.http() as http:
            ended = http.delete(f"/api/sessions/{preview['id']}/preview", headers=key(server.designer_key))
            assert ended.status_code == 200 and ended.json()["status"] == "ended"
            assert http.get(preview["debug_url"], headers=key(server.designer_key)).status_code == 409
        assert (await designer.closed(timeout=WAIT))[0] == CloseCode.SESSION_ENDED
        with pytest.raises(JoinRefused):
            await AmaliyClient(preview["ws_url"], preview["token"]).connect()
    finally:
        await designer.close()


def test_a_new_preview_of_a_version_replaces_the_old_and_deleting_the_version_ends_it(server: LiveServer) -> None:
    uploaded = upload(server, lab_manifest("preview-twice"))
    assert uploaded.status_code == 201, uploaded.text
    version = uploaded.json()["version"]
    other_designer = add_user(Path(server.proc.args[server.proc.args.index("--data-dir") + 1]), "Other Designer", "designer")  # type: ignore[union-attr]
    with server.http() as http:
        first = http.post(f"/api/scenes/preview-twice/versions/{version}/preview", headers=key(server.designer_key)).json()
        second = http.post(f"/api/scenes/preview-twice/versions/{version}/preview", headers=key(server.designer_key)).json()
        assert http.get(first["debug_url"], headers=key(server.designer_key)).status_code == 409
        assert http.get(second["debug_url"], headers=key(server.designer_key)).status_code == 200
        assert http.get(second["debug_url"], headers=key(other_designer)).status_code == 403
        assert http.delete(f"/api/sessions/{second['id']}/preview", headers=key(other_designer)).status_code == 403
        assert http.delete(f"/api/scenes/preview-twice/versions/{version}", headers=key(server.designer_key)).status_code == 204
        assert http.get(second["debug_url"], headers=key(server.designer_key)).status_code == 409
