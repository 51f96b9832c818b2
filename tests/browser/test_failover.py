"""The node hosting a practical dies: the page gets back in through another node, by itself.

Two real nodes of one deployment share Redis (a deployment name of the test's own, so no
keys are shared with anything else) and one secret.key. The first opens the demo practical;
a student opens the SECOND node's landing page with the join code. Their join is forwarded
to the first node (which hosts the room) and answers its socket first in ``ws_urls``, the
second node's after it. The student picks up a beaker; then the test SIGKILLs the first node.

The page shows the reconnecting banner, finds the dead node refusing connections and moves
on to the second one at once (no backoff), and is back in: connected, banner gone, on the
second node's socket, the same participant still holding the beaker. The second node adopts
the room from the shared log once the lease lapses (about a second); a page that gets there
first is told ``room_moving`` (close 1013) and tries again. Nothing but ``join`` goes out while
it is away. Voice stays on: the killed node's media worker goes with it, and the call comes
back on the second node.

Screenshots: /tmp/failover-reconnecting.png (banner up) and /tmp/failover-back.png (back in).
"""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.tabs import START_TIMEOUT_MS, TIMEOUT_MS, join_as, nearest, record_sent
from tests.conftest import LiveServer, serve_again, start_server

pytestmark = pytest.mark.browser

REDIS_URL = "redis://127.0.0.1:6379/0"
#: How long the page waits on a silent socket before giving it up (connection.js SILENCE_MS)
SILENCE_MS = 6_000
#: Longest wait for the page to be back after the kill: the lease lapses (1 s), the second node's scan
#: adopts the room, and the page's backoff (0.5 s, 1 s, 2 s... between tries) comes round to it.
BACK_TIMEOUT_MS = 15_000 + START_TIMEOUT_MS


@pytest.fixture
def deployment() -> Iterator[str]:
    """A deployment name of this test's own; its keys (and its rooms' logs) are deleted afterwards."""
    name = "failover-" + secrets.token_hex(4)
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # like tests/integration/test_redis_log.py: no Redis fails here, it does not skip
    yield name
    rooms = [r.decode() for r in client.smembers(f"{name}:rooms")]
    for pattern in [f"{name}:*", *(f"amaliy:{{{room}}}:*" for room in rooms)]:
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


def node_env(deployment: str, node_id: str) -> dict[str, str]:
    return {
        "REDIS_URL": REDIS_URL,
        "AMALIY_DEPLOYMENT": deployment,
        "AMALIY_NODE_ID": node_id,
        "AMALIY_RESUME_WINDOW": "120",  # the student keeps their place (and the beaker) across the failover
        "AMALIY_JOIN_RATE_PER_MIN": "100000",
    }


def data_dir(root: Path, secret: str) -> Path:
    """A node's data dir holding the deployment's secret.key (every node must have the same one)."""
    root.mkdir(parents=True)
    key = root / "secret.key"
    key.write_text(secret)
    key.chmod(0o600)
    return root


def banner_log(page: Page) -> None:
    """From now on keep, in window.bannerLog, every time the banner is shown or hidden, with its text:
    what the page showed between two polls of the test is not lost however quickly it came back."""
    page.evaluate(
        """() => {
            const banner = document.getElementById('reconnecting');
            window.bannerLog = [];
            new MutationObserver(() => window.bannerLog.push({ shown: !banner.hidden, text: banner.textContent }))
                .observe(banner, { attributes: true, childList: true, subtree: true, characterData: true });
        }"""
    )


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_the_page_comes_back_through_another_node_when_its_host_dies(
    student: Page, servers: list[LiveServer], deployment: str, tmp_path: Path, how: str
) -> None:
    """``killed``: SIGKILL, the sockets drop at once. ``frozen``: SIGSTOP, the host keeps its TCP
    connections open and says nothing; the page gives its socket up for the silence."""
    page, secret = student, secrets.token_hex(32)
    host = start_server(data_dir(tmp_path / "a", secret), node_env(deployment, "a"))
    servers.append(host)
    other = serve_again(host, data_dir(tmp_path / "b", secret), env=node_env(deployment, "b"))
    servers.append(other)

    sockets: list[str] = []
    phase = ["in"]
    sent: list[tuple[str, Any]] = []

    def opened(ws: WebSocket) -> None:
        sockets.append(ws.url)
        record_sent(ws, sent, phase)

    page.on("websocket", opened)
    page.goto(f"{other.base_url}/?code={host.demo_code}")
    with page.expect_response(lambda r: r.url.endswith("/api/join")) as joined:
        me = join_as(page, "Dilnoza")
    answer = joined.value.json()
    # forwarded to the host, which answers its own socket first, then every other live node's
    assert answer["ws_url"] == host.ws_url, answer
    assert answer["ws_urls"] == [host.ws_url, other.ws_url], answer
    assert sockets == [host.ws_url], sockets
    title = page.locator("#hud-title").text_content()
    beaker = nearest(page, "beaker-water@")
    page.evaluate("id => window.amaliy.grab(id)", beaker)
    page.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[beaker, me], timeout=TIMEOUT_MS)
    banner = page.locator("#reconnecting")
    expect(banner).to_be_hidden()
    banner_log(page)

    # The host dies (or freezes) without a word.
    if how == "killed":
        host.proc.kill()
        host.proc.wait()
    else:
        host.proc.send_signal(signal.SIGSTOP)
    page.wait_for_function("window.amaliy.reconnecting === true", timeout=TIMEOUT_MS + SILENCE_MS)
    phase[0] = "down"
    page.screenshot(path="/tmp/failover-reconnecting.png")

    # Back by itself, on the other node, as the same participant, still holding the beaker.
    page.wait_for_function("window.amaliy.state === 'connected' && !window.amaliy.reconnecting", timeout=BACK_TIMEOUT_MS)
    phase[0] = "back"
    expect(banner).to_be_hidden()
    expect(page.locator(".toast", has_text="Back in the practical.")).to_be_visible()
    expect(page.locator("#hud-state")).to_have_text("connected")
    assert not page.evaluate("document.getElementById('side').inert")
    expect(page.locator("#hud-title")).to_have_text(title or "")
    assert page.evaluate("window.amaliy.me.id") == me
    page.wait_for_function("([o, id]) => window.amaliy.objects[o].holder === id", arg=[beaker, me], timeout=TIMEOUT_MS)
    assert page.evaluate("window.amaliy.held") == [beaker]
    page.screenshot(path="/tmp/failover-back.png")

    # The banner was up in between, saying what it says for any drop.
    shown = [entry["text"] for entry in page.evaluate("window.bannerLog") if entry["shown"]]
    assert shown and all("Reconnecting to the practical…" in text for text in shown), shown
    # The dead host was tried (a frozen one was given up for its silence), and passed over for the
    # other node, where the page is now.
    assert sockets[-1] == other.ws_url and (how == "frozen" or host.ws_url in sockets[1:]), sockets
    assert httpx.get(other.base_url + "/healthz", timeout=5).json()["cluster"]["failovers"] == 1
    # Nothing but tries to join went out while away.
    assert {kind for when, kind in sent if when == "down"} <= {"join"}, sent
    if how == "frozen":
        # woken, the old host finds its lease taken and gives its copy of the room up
        host.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while httpx.get(host.base_url + "/healthz", timeout=5).json()["rooms"] != 0:
            assert time.monotonic() < deadline, "the woken host still runs the room"
            time.sleep(0.1)
