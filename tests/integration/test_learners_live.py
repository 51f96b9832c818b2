"""Learners across practicals against a real server: roster students sign in with their
codes, finish a challenge over the room socket, and get XP, a level, badges and a place
on the ladder; the badge downloads as an Open Badges 3.0 credential that a third-party
verifier (openbadgeslib, with jwcrypto reading the node's published JWKS) accepts; a
student cannot read another's records, another teacher cannot read the course; and a
restart keeps everything."""

from __future__ import annotations

from pathlib import Path

import httpx
from jwcrypto import jwk
from openbadgeslib.ob3 import OB3Verifier

from amaliy_client import AmaliyClient

from tests.conftest import start_server
from tests.integration.test_challenges_live import PACKAGE, WAIT, add_user, key, lab_manifest, light_and_answer, place_beaker, serve_again, upload

BADGES = [
    {"id": "done", "name": "Beaker heated", "criteria": {"finished": True}},
    {"id": "steady-hands", "name": "Steady hands", "description": "No mistakes.", "criteria": {"finished": True, "max_mistakes": 0}},
]
#: 5 XP a point; level 2 at 120 XP (the default curve): one quick finish (about 30 points) is level 2
SETTINGS = {"xp_per_point": 5, "badges": [{"id": "level-2", "name": "Level 2", "criteria": {"level": 2}}]}


async def sign_in(http: httpx.Client, code: str) -> AmaliyClient:
    signed = http.post("/api/signin", json={"code": code})
    assert signed.status_code == 200, signed.text
    client = AmaliyClient(signed.json()["ws_url"], signed.json()["token"])
    await client.connect(timeout=WAIT)
    return client


async def finish_without_mistakes(ali: AmaliyClient, bea: AmaliyClient) -> None:
    await place_beaker(ali)
    await light_and_answer(bea, ali)


async def test_students_earn_xp_levels_and_badges_that_verify_and_last(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    clients: list[AmaliyClient] = []
    teacher = key(live.teacher_key)
    try:
        uploaded = upload(live, {**lab_manifest(), "challenge": {**lab_manifest()["challenge"], "badges": BADGES}})
        assert uploaded.status_code == 201, uploaded.text
        with live.http() as http:
            cid = http.post("/api/courses", json={"name": "Kimyo 9A"}, headers=teacher).json()["id"]
            roster = http.post(f"/api/courses/{cid}/roster", content="name\nAli\nBea\nCem\n".encode(), headers=teacher).json()["students"]
            ids = {s["name"]: s["id"] for s in roster}
            codes = {s["name"]: s["code"] for s in roster}
            assert http.put(f"/api/courses/{cid}/settings", json=SETTINGS, headers=teacher).status_code == 200
            session = http.post(
                "/api/sessions", json={"scene": PACKAGE, "version": uploaded.json()["version"], "title": "Week 1", "course": cid}, headers=teacher
            ).json()
            ali, bea, cem = [await sign_in(http, codes[name]) for name in ("Ali", "Bea", "Cem")]
        clients += [ali, bea, cem]
        assert ali.id == ids["Ali"]
        for client, station in ((ali, 1), (bea, 1), (cem, 2)):
            await client.choose_station(station)
            await client.wait_station(station, timeout=WAIT)
        await finish_without_mistakes(ali, bea)
        bonus = (await ali.expect("challenge_done", station=1, timeout=WAIT))["bonus"]
        points = 10 + 6 + 4 + bonus

        with live.http() as http:
            card = http.get("/api/me/card", headers=key(ali.token)).json()
            assert card["xp_gained"] == card["xp"] == points * 5 and card["points"] == points and card["finished"]
            assert card["level_before"] == 1 and card["level"] == 2 and card["level_up"]
            assert sorted(b["name"] for b in card["badges"]) == ["Beaker heated", "Level 2", "Steady hands"]
            ladder = card["ladder"]
            assert ladder["mode"] == "relative" and sorted((e["rank"], e["gap"], e["you"]) for e in ladder["ladder"]) == [(1, 0, False), (1, 0, True), (3, -points * 5, False)]
            assert all("name" not in e for e in ladder["ladder"])  # anonymous to students; a tie is ordered by id
            practical = card["practical_ladder"]["ladder"]
            assert [(e["station"], e["you"]) for e in practical] == [(1, True), (2, False)] and "members" not in practical[0]
            cem_card = http.get("/api/me/card", headers=key(cem.token)).json()
            assert cem_card["xp_gained"] == 0 and cem_card["badges"] == [] and cem_card["ladder"]["ladder"][-1]["you"]

            # the teacher's view: everyone, with names
            board = http.get(f"/api/courses/{cid}/dashboard", headers=teacher).json()
            rows = {s["name"]: s for s in board["students"]}
            assert rows["Ali"]["xp"] == rows["Bea"]["xp"] == points * 5 and rows["Cem"]["xp"] == 0
            assert rows["Bea"]["level"] == 2 and rows["Ali"]["finished"] == 1 and rows["Cem"]["practicals"] == 1
            assert board["practicals"][0]["id"] == session["id"] and board["practicals"][0]["finished"] == 2
            full = http.get(f"/api/courses/{cid}/ladder", headers=teacher).json()["ladder"]
            assert [e["name"] for e in full][2] == "Cem"
            term = http.get(f"/api/courses/{cid}/students/{ids['Ali']}/term", headers=teacher).json()
            assert term["practicals"][0]["steps"] == 3 and term["practicals"][0]["mistakes"] == 0
            exported = http.get(f"/api/courses/{cid}/dashboard.csv", headers=teacher).content.decode("utf-8-sig")
            assert f"{ids['Ali']},Ali,{points * 5},2," in exported

            # a student sees their own records only
            me = http.get("/api/me", headers=key(cem.token)).json()
            assert me["participant"] == ids["Cem"] and me["xp"] == 0
            for path in (f"/api/courses/{cid}/students/{ids['Ali']}/term", f"/api/courses/{cid}/dashboard"):
                refused = http.get(path, headers=key(cem.token))
                assert (refused.status_code, refused.json()["detail"]) == (403, "The student role may not view learners."), path
            steady = next(b for b in card["badges"] if b["name"] == "Steady hands")
            assert http.get(f"/api/me/badges/{steady['id']}", headers=key(cem.token)).status_code == 404
            # another teacher sees nothing of the course
            other = key(add_user(data_dir, "Other Teacher"))
            for path in (f"/api/courses/{cid}/dashboard", f"/api/courses/{cid}/ladder", f"/api/courses/{cid}/students/{ids['Ali']}/term",
                         f"/api/courses/{cid}/dashboard.csv", f"/api/courses/{cid}/settings", f"/api/sessions/{session['id']}/ladder"):
                refused = http.get(path, headers=other)
                assert refused.status_code == 403, path

            # the badge as a credential, verified by a third-party library with the node's published key
            token = http.get(f"/api/me/badges/{steady['id']}", headers=key(ali.token))
            assert token.status_code == 200 and token.headers["content-type"].startswith("application/vc+jwt")
            published = jwk.JWK(**http.get("/api/badges/jwks.json").json()["keys"][0])
            verified = OB3Verifier(published.export_to_pem()).verify(token.text, expected_recipient=f"urn:amaliy:learner:{ids['Ali']}")
            hosted = http.get(f"/api/badges/{steady['id']}").json()
            assert verified.id == hosted["id"] == f"{live.base_url}/api/badges/{steady['id']}"
            assert hosted["credentialSubject"]["achievement"]["name"] == "Steady hands"
            assert hosted["issuer"]["id"] == f"{live.base_url}/api/badges/issuer" == http.get("/api/badges/issuer").json()["id"]
            achievement = http.get(hosted["credentialSubject"]["achievement"]["id"].removeprefix(live.base_url))
            assert achievement.status_code == 200 and achievement.json()["criteria"]["narrative"].startswith("Finish every step")

        # a restart keeps XP, levels, badges and the key that signed them
        for client in clients:
            await client.close()
        clients.clear()
        live.stop()
        live = serve_again(live, data_dir)
        with live.http() as http:
            again = http.get(f"/api/courses/{cid}/dashboard", headers=teacher).json()
            assert again["students"] == board["students"]
            assert jwk.JWK(**http.get("/api/badges/jwks.json").json()["keys"][0]).thumbprint() == published.thumbprint()
    finally:
        for client in clients:
            await client.close()
        live.stop()
