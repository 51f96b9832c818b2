"""The designer CLI's sentences for a server it cannot use (the real cases run in tests/integration/test_cli_errors.py)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import httpx
import pytest

from server import scenes_cli

URL = "http://10.0.0.5:8000"


def _caused(exc: httpx.HTTPError, cause: BaseException) -> httpx.HTTPError:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (httpx.ConnectTimeout("timed out"), f"cannot reach {URL} (no answer within 10 s); is the address right and the server running? check --url / AMALIY_URL"),
        (httpx.ReadTimeout("timed out"), f"{URL} did not answer within 30 s; the server may be busy: try again, or ask its administrator"),
        (
            _caused(httpx.ConnectError("x"), OSError(errno.ENETUNREACH, "Network is unreachable")),
            f"cannot reach {URL} (Network is unreachable); is the server running? check --url / AMALIY_URL",
        ),
        (_caused(httpx.ConnectError("x"), ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), f"cannot reach {URL} (connection refused); is the server running? check --url / AMALIY_URL"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), f"{URL} did not answer like a web server (Server disconnected without sending a response.); check --url / AMALIY_URL (the server's HTTP port, not its room socket)"),
        (httpx.ReadError(""), f"the connection to {URL} failed (ReadError); try again, and check --url / AMALIY_URL"),
    ],
)
def test_every_way_of_getting_no_answer_is_one_sentence(exc: httpx.HTTPError, sentence: str) -> None:
    assert scenes_cli._no_answer(URL, exc, 30.0) == sentence


@pytest.mark.parametrize(
    ("status", "body", "sentence"),
    [
        (401, {"detail": "Send your key as 'Authorization: Bearer <key>'."}, "the server refused the key (401: Send your key as 'Authorization: Bearer <key>'.); check --key / AMALIY_KEY"),
        (403, {"detail": "The teacher role may not upload scene."}, "the server refused the key (403: The teacher role may not upload scene.); check --key / AMALIY_KEY (this needs a designer key)"),
        (404, "<h1>Not Found</h1>", f"{URL} has no Amaliy API at /api/scenes (404); check --url / AMALIY_URL (the server's base address, e.g. http://10.0.0.5:8000)"),
        (413, {"detail": "The package is 300000000 bytes; the limit is 268435456."}, "the server answered 413: The package is 300000000 bytes; the limit is 268435456."),
        (503, {"detail": "Scene packages cannot be checked right now."}, "the server answered 503: Scene packages cannot be checked right now."),
        (502, "<html>Bad Gateway</html>", f"{URL} answered 502 with text/html, not the JSON an Amaliy server sends; is it an Amaliy server? check --url / AMALIY_URL"),
    ],
)
def test_every_refusal_is_one_sentence(status: int, body: object, sentence: str) -> None:
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers={"content-type": "text/html"})
    else:
        response = httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert str(scenes_cli._refused(response, URL, "/api/scenes", "designer")) == sentence


def test_scenes_new_says_which_units_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    assert scenes_cli.run(argparse.Namespace(scenes_command="new", folder=str(tmp_path / "my-lab"))) == 0
    out = capsys.readouterr().out
    assert "units: 'm': scene.json says its model files are in metres" in out and "'mm'" in out
    assert json.loads((tmp_path / "my-lab" / "scene.json").read_text())["units"] == "m"


@pytest.mark.parametrize("key", ["ключ", "ak_x\nak_y", "ak x"])
def test_a_key_that_cannot_be_one_is_refused_before_sending(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    assert scenes_cli.run(argparse.Namespace(scenes_command="list", url="http://127.0.0.1:9", key=key)) == 2
    assert capsys.readouterr().err == "amaliy: that is not a key (keys look like ak_… in letters, digits, '-' and '_'); check --key / AMALIY_KEY\n"
