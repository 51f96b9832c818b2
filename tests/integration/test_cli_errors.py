"""`amaliy scenes list|upload` against wrong addresses and keys: one line on stderr, exit 1, no traceback."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from server import cli, scenes_cli
from tests.conftest import REPO, LiveServer


def amaliy(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", "scenes", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the CLI printed for a failure (progress bars aside), after checking it is one."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("amaliy: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "my-lab"
    made = amaliy("new", str(folder))
    assert made.returncode == 0 and "units: 'm'" in made.stdout, made.stdout
    return folder


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", ["list", "upload"])
def test_connection_refused(command: str, lab: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    args = [command, *([str(lab)] if command == "upload" else []), "--url", url, "--key", "ak_x"]
    assert one_line_error(amaliy(*args)) == f"amaliy: cannot reach {url} (connection refused); is the server running? check --url / AMALIY_URL"


def test_unknown_host() -> None:
    line = one_line_error(amaliy("list", "--url", "http://no-such-host.invalid:8000", "--key", "ak_x"))
    assert line == "amaliy: cannot reach http://no-such-host.invalid:8000 (unknown host 'no-such-host.invalid'); check --url / AMALIY_URL"


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http://[::1"])
def test_not_an_address(url: str) -> None:
    line = one_line_error(amaliy("list", "--url", url, "--key", "ak_x"))
    assert line.startswith(f"amaliy: {url!r} is not a server address like http://10.0.0.5:8000") and line.endswith("check --url / AMALIY_URL")


def test_a_wrong_key_on_a_real_server(server: LiveServer, lab: Path) -> None:
    for args in (["list"], ["upload", str(lab)]):
        line = one_line_error(amaliy(*args, "--url", server.base_url, "--key", "ak_not-a-key"))
        assert line.startswith("amaliy: the server refused the key (401: Unknown key or token") and line.endswith("check --key / AMALIY_KEY")


def test_a_key_of_the_wrong_role(server: LiveServer, lab: Path) -> None:
    line = one_line_error(amaliy("upload", str(lab), "--url", server.base_url, "--key", server.teacher_key))
    assert line == "amaliy: the server refused the key (403: The teacher role may not upload scene.); check --key / AMALIY_KEY (this needs a designer key)"


@pytest.mark.parametrize("where", ["path", "room socket"])
def test_a_wrong_path_or_port(where: str, server: LiveServer) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    url = f"{server.base_url}/amaliy" if where == "path" else f"http://127.0.0.1:{port + 1}"
    line = one_line_error(amaliy("list", "--url", url, "--key", server.designer_key))
    assert line.startswith(f"amaliy: {url} has no Amaliy API at /api/scenes (404); check --url / AMALIY_URL")


def test_the_right_server_with_a_trailing_slash_works(server: LiveServer) -> None:
    listed = amaliy("list", "--url", server.base_url + "/", "--key", server.designer_key)
    assert listed.returncode == 0 and "circuits-table" in listed.stdout, listed.stderr


class _NotAmaliy(http.server.BaseHTTPRequestHandler):
    """A web server that is not Amaliy: a captive portal's page, or JSON of another API."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        json_api = self.server.json_api  # type: ignore[attr-defined]
        body = b'{"hello": "world"}' if json_api else b"<html><body>Welcome to the school network</body></html>"
        self.send_response(200)
        self.send_header("content-type", "application/json" if json_api else "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["html", "other-json"])
def not_amaliy(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAmaliy)
    httpd.json_api = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", request.param
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("command", ["list", "upload"])
def test_an_answer_that_is_not_amaliys(command: str, not_amaliy: tuple[str, bool], lab: Path) -> None:
    url, json_api = not_amaliy
    args = [command, *([str(lab)] if command == "upload" else []), "--url", url, "--key", "ak_x"]
    line = one_line_error(amaliy(*args))
    if json_api:
        assert line.startswith(f"amaliy: {url} answered the upload with JSON that is not Amaliy's" if command == "upload" else f"amaliy: {url} answered /api/scenes with JSON that is not a list of scenes")
    else:
        assert line == f"amaliy: {url} answered 200 with text/html, not the JSON an Amaliy server sends; is it an Amaliy server? check --url / AMALIY_URL"


def test_no_answer_in_time(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A server that accepts the connection and never answers (in process, with a short timeout)."""
    monkeypatch.setattr(scenes_cli, "ANSWER_TIMEOUT", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(SystemExit) as ended:
            cli.main(["scenes", "list", "--url", url, "--key", "ak_x"])
    assert ended.value.code == 1
    assert capsys.readouterr().err == f"amaliy: {url} did not answer within 0.3 s; the server may be busy: try again, or ask its administrator\n"
