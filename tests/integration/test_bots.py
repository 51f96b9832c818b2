"""`amaliy bots` puts simulated students into a practical who walk and grab."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from amaliy_client import AmaliyClient

from tests.conftest import REPO, LiveServer


async def test_bots_join_walk_and_leave(server: LiveServer) -> None:
    session = server.open_session()
    watcher = AmaliyClient(session["ws_url"], session["teacher_token"])
    await watcher.connect()
    bots = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "bots", "--url", server.base_url, "--code", session["join_code"],
         "--count", "3", "--rate", "20", "--seconds", "6"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await watcher.wait_until(lambda: len([p for p in watcher.participants.values() if p["name"].startswith("Bot")]) == 3, 10, "3 bots")
        bot_ids = [pid for pid, part in watcher.participants.items() if part["name"].startswith("Bot")]
        await watcher.wait_until(lambda: all(pid in watcher.poses for pid in bot_ids), 5, "bot poses")
        first = {pid: watcher.poses[pid][:3].copy() for pid in bot_ids}
        await watcher.wait_until(
            lambda: all(not np.allclose(watcher.poses[pid][:3], first[pid]) for pid in bot_ids), 5, "bots walking"
        )
        await watcher.expect("grabbed", timeout=10)  # someone picks up equipment
        output, _ = bots.communicate(timeout=20)
        assert bots.returncode == 0, output
        assert "failed" not in output and "refused" not in output
        await watcher.wait_until(lambda: not any(p["name"].startswith("Bot") for p in watcher.participants.values()), 5, "bots gone")
    finally:
        bots.kill()
        await watcher.close()
