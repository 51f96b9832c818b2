"""The hint ladder and the learner model against a real server: an idle group gets nudge,
then specific, then bottom-out at the configured times; asking costs the documented points
and is refused inside the cooldown; a teacher's push names only its target; the skill a
student mastered comes back in the next practical of the course, and fades the hints."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from amaliy_client import AmaliyClient

from tests.conftest import start_server
from tests.integration.test_challenges_live import PACKAGE, WAIT, key, lab_manifest, light_and_answer, place_beaker, upload

#: seconds: short so the test is quick, long enough that a busy machine keeps the order
IDLE, COOLDOWN = 2.0, 3.0
HINTS = {
    "nudge": "Where does a beaker go to be heated?",
    "specific": {"text": "The tripod has a place on top for the beaker.", "highlight": ["beaker", "tripod"]},
    "bottom_out": {"text": "Put the beaker on top of the tripod.", "demo": {"object": "beaker", "target": "tripod", "snap": "top"}},
}


def hinted_lab() -> dict[str, Any]:
    data = lab_manifest()
    challenge = data["challenge"]
    challenge["steps"][0]["hints"] = HINTS
    challenge["hints"] = {"idle_seconds": IDLE, "cooldown_seconds": COOLDOWN, "specific_cost": 2, "bottom_out_cost": 5}
    # one right first attempt masters "setup": 0.5 * 0.95 / (0.5 * 0.95 + 0.5 * 0.1) = 0.905, then 0.905 + 0.095 * 0.5 = 0.952
    challenge["skills"] = {"setup": {"prior": 0.5, "learn": 0.5, "guess": 0.1, "slip": 0.05}}
    return data


async def sign_in(http: httpx.Client, code: str) -> AmaliyClient:
    signed = http.post("/api/signin", json={"code": code})
    assert signed.status_code == 200, signed.text
    client = AmaliyClient(signed.json()["ws_url"], signed.json()["token"])
    await client.connect(timeout=WAIT)
    return client


async def hints_for(client: AmaliyClient, station: int, levels: list[int]) -> list[dict[str, Any]]:
    return [await client.expect("hint", station=station, level=level, timeout=WAIT) for level in levels]


async def test_the_ladder_climbs_costs_points_and_mastery_carries_to_the_next_practical(tmp_path: Path) -> None:
    live = start_server(tmp_path / "data")
    clients: list[AmaliyClient] = []
    teacher = key(live.teacher_key)
    try:
        uploaded = upload(live, hinted_lab())
        assert uploaded.status_code == 201, uploaded.text
        with live.http() as http:
            cid = http.post("/api/courses", json={"name": "Kimyo 9A"}, headers=teacher).json()["id"]
            codes = {s["name"]: s["code"] for s in http.post(f"/api/courses/{cid}/roster", content=b"name\nAli\nBea\n", headers=teacher).json()["students"]}
            opened = http.post("/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 1", "course": cid}, headers=teacher).json()
            ali, bea = await sign_in(http, codes["Ali"]), await sign_in(http, codes["Bea"])
        lead = AmaliyClient(opened["ws_url"], opened["teacher_token"])
        await lead.connect(timeout=WAIT)
        clients += [ali, bea, lead]
        await bea.choose_station(2)
        await bea.wait_station(2, timeout=WAIT)
        # Bea asks at once: a nudge (free); again inside the cooldown: refused, costs nothing
        await bea.hint("place")
        [nudge] = await hints_for(bea, 2, [1])
        assert (nudge["reason"], nudge["cost"], nudge["text"], nudge["to"]) == ("requested", 0, HINTS["nudge"], [bea.id])
        await bea.hint("place")
        refused = await bea.expect("error", timeout=WAIT)
        assert refused["code"] == "hint_cooldown" and 0 < refused["retry_after"] <= COOLDOWN
        # Ali comes to station 1 and does nothing: the room climbs the ladder by itself
        await ali.choose_station(1)
        await ali.wait_station(1, timeout=WAIT)
        nudge, specific, bottom = await hints_for(ali, 1, [1, 2, 3])
        assert nudge["reason"] == specific["reason"] == bottom["reason"] == "idle"
        assert specific["t"] - nudge["t"] >= COOLDOWN - 0.05 and bottom["t"] - specific["t"] >= COOLDOWN - 0.05
        assert specific["highlight"] == ["beaker@1", "tripod@1"] and specific["cost"] == 2
        assert bottom["demo"]["object"] == "beaker@1" and len(bottom["demo"]["to"]) == 7 and bottom["cost"] == 5
        stuck = await lead.expect("stuck", station=1, timeout=WAIT)
        assert stuck["level"] == "amber" and stuck["signals"][0]["signal"] == "idle" and "step 1" in stuck["signals"][0]["reason"]
        # the teacher's own words to Bea alone
        await lead.push_hint({"participant": bea.id}, text="Five minutes left")
        pushed = await lead.expect("hint", reason="teacher", timeout=WAIT)
        assert pushed["to"] == [bea.id] and pushed["level"] == 0 and pushed["cost"] == 0 and pushed["station"] == 2
        # Ali finishes with 7 points of hints taken off: 10 - 2 - 5 + 6 + 4 + bonus
        await place_beaker(ali)
        done = await light_and_answer(ali, ali)
        assert done["score"] == 10 - 2 - 5 + 6 + 4 + done["bonus"]
        with live.http() as http:
            results = http.get(f"/api/sessions/{opened['id']}/results", headers=teacher).json()
            ali_row = next(s for s in results["students"] if s["participant"] == ali.id)
            assert [(h["level"], h["cost"]) for h in ali_row["hints"]] == [(1, 0), (2, 2), (3, 5)]
            heat = http.get(f"/api/courses/{cid}/skills", headers=teacher).json()
            ali_skills = next(s for s in heat["students"] if s["id"] == ali.id)["skills"]
            # hinted before success: an incorrect first attempt at "place" (setup); "light" right first time (heating)
            assert ali_skills["setup"]["opportunities"] == 1 and not ali_skills["setup"]["mastered"]
            http.post(f"/api/sessions/{opened['id']}/end", headers=teacher)
        for client in clients:
            await client.close()
        clients.clear()

        # week 2: Bea mastered nothing yet; a right first attempt at "setup" masters it for her
        with live.http() as http:
            week2 = http.post("/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 2", "course": cid}, headers=teacher).json()
            bea = await sign_in(http, codes["Bea"])
        clients.append(bea)
        await bea.choose_station(1)
        await bea.wait_station(1, timeout=WAIT)
        await place_beaker(bea)
        with live.http() as http:
            heat = http.get(f"/api/courses/{cid}/skills", headers=teacher).json()
            assert next(s for s in heat["students"] if s["id"] == bea.id)["skills"]["setup"]["mastered"] is True
            http.post(f"/api/sessions/{week2['id']}/end", headers=teacher)
        await bea.closed(timeout=WAIT)
        clients.clear()

        # week 3: Bea comes back having mastered "setup": the idle nudge waits twice as long, and nothing climbs past it
        with live.http() as http:
            http.post("/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 3", "course": cid}, headers=teacher)
            bea = await sign_in(http, codes["Bea"])
        clients.append(bea)
        await bea.choose_station(1)
        placed = await bea.wait_station(1, timeout=WAIT)
        assert placed == 1
        [faded] = await hints_for(bea, 1, [1])
        opened_at = bea.lab.progress(1)["opened"]["place"]
        assert faded["t"] - opened_at >= 2 * IDLE - 0.05
        # an absence can only be watched for a while: two cooldowns, in which an unfaded ladder would climb twice
        # (a slow machine can only make this weaker, never make it fail)
        await asyncio.sleep(2 * COOLDOWN + 0.5)
        assert not [e for e in bea.drain() if e.get("type") == "hint" and e.get("level", 0) > 1]
    finally:
        for client in clients:
            await client.close()
        live.stop()
