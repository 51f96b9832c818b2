"""A practical outlives its server process: kill -9 the embedded node mid-challenge, start it again
on the same data dir and address, and every student is back in the same lab by themselves (the SDK's
auto_reconnect), holding what they held, with the same progress and score; then they finish, and
the results count each step once. Every wait polls a condition with a timeout."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from amaliy_client import AmaliyClient
from tests.conftest import LiveServer, serve_again, start_server
from tests.integration.test_challenges_live import PACKAGE, WAIT, key, lab_manifest, light_and_answer, place_beaker, results_of, upload

pytestmark = pytest.mark.asyncio


def port_of(live: LiveServer) -> int:
    return int(live.base_url.rsplit(":", 1)[1])


async def test_kill_9_mid_challenge_and_the_class_goes_on_after_the_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    clients: list[AmaliyClient] = []
    try:
        assert upload(live, lab_manifest()).status_code in (200, 201)
        with live.http() as http:
            opened = http.post("/api/sessions", json={"scene": PACKAGE, "title": "Heating"}, headers=key(live.teacher_key))
            opened.raise_for_status()
            session = opened.json()
        ali = await AmaliyClient.join(live.base_url, session["join_code"], "Ali", auto_reconnect=True)
        bea = await AmaliyClient.join(live.base_url, session["join_code"], "Bea", auto_reconnect=True)
        clients += [ali, bea]
        for client in (ali, bea):
            await client.choose_station(1)
            await client.wait_station(1, timeout=WAIT)
        await place_beaker(ali)
        await ali.wait_until(lambda: ali.score > 0, WAIT, "the step's points")
        score = ali.score
        # Ali picks the beaker up again and is carrying it when the server dies
        await ali.grab("beaker@1")
        await ali.expect("grabbed", object="beaker@1", timeout=WAIT)
        seq_before = ali.seq

        live.proc.send_signal(signal.SIGKILL)
        live.proc.wait(10)
        await ali.wait_until(lambda: not ali.connected and not bea.connected, WAIT, "both to see the drop")
        live = serve_again(live, data_dir, port=port_of(live))

        await ali.wait_until(lambda: ali.reconnects == bea.reconnects == 1, 60, "both students back by themselves")
        assert ali.welcome["resumed"] is True and bea.welcome["resumed"] is True
        assert ali.connected and bea.connected and ali.seq >= seq_before
        assert ali.objects["beaker@1"]["holder"] == ali.id  # still in Ali's hand
        assert "place" in ali.lab.progress(1)["done"] and ali.score == score
        assert set(ali.participants) >= {ali.id, bea.id}

        # the practical goes on where it was
        await ali.release("beaker@1")
        await ali.wait_until(lambda: ali.objects["beaker@1"]["holder"] is None, WAIT, "the release")
        done = await light_and_answer(bea, ali)
        assert done["finished"] is not None

        with live.http() as http:
            http.post(f"/api/sessions/{session['id']}/end", headers=key(live.teacher_key)).raise_for_status()
        results = results_of(live, session["id"], live.teacher_key).json()
        station = results["stations"][0]
        assert station["steps_done"] == 3 and station["score"] == done["score"]
        students = {s["participant"]: s for s in results["students"]}
        assert [e["step"] for e in students[ali.id]["steps"]].count("place") == 1  # counted once across the crash
    finally:
        for client in clients:
            await client.close()
        live.stop()


async def test_a_damaged_room_log_ends_that_practical_and_says_why(tmp_path: Path) -> None:
    """A log that cannot be read is never skipped past: the practical ends, /healthz names it."""
    import sqlite3

    data_dir = tmp_path / "data"
    live = start_server(data_dir)
    try:
        session = live.open_session("Doomed")
        client = await AmaliyClient.join(live.base_url, session["join_code"], "Ali")
        await client.close()
        with httpx.Client(base_url=live.base_url) as http:
            assert http.get("/healthz").json()["room_log"]["rooms"] >= 1
        live.proc.send_signal(signal.SIGKILL)
        live.proc.wait(10)
        with sqlite3.connect(data_dir / "rooms.sqlite3") as db:
            db.execute("UPDATE snapshots SET data = ? WHERE room = ?", (b"AMS1" + bytes(40), session["id"]))
        live = serve_again(live, data_dir)
        with httpx.Client(base_url=live.base_url) as http:
            health = http.get("/healthz").json()
            assert session["id"] in health["room_log"]["unloadable"]
            assert "seal" in health["room_log"]["unloadable"][session["id"]]
            status = http.get(f"/api/sessions/{session['id']}", headers=key(live.teacher_key)).json()["status"]
            assert status == "ended"
        assert any("room log cannot be loaded" in line for line in live.output)
    finally:
        live.stop()
