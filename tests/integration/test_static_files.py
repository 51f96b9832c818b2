"""The web client's files from a real server process: gzip'd when accepted, revalidated by ETag.

What a student on a slow link notices: three.js arrives in a fraction of its size, and a reload
costs a 304 with no body. What must not change: a client that does not accept gzip gets the
file as it is, and the room socket never negotiates compression (encode once, send many).
"""

from __future__ import annotations

import gzip
import json

import httpx
from websockets.asyncio.client import connect

from tests.conftest import REPO, LiveServer

THREE = "/vendor/three/build/three.module.js"
THREE_FILE = REPO / "clients" / "web" / "node_modules" / "three" / "build" / "three.module.js"


def raw(server: LiveServer, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """GET without httpx's own decoding: the answer and the bytes on the wire."""
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        with http.stream("GET", path, headers=headers) as response:
            return response, b"".join(response.iter_raw())


def test_three_js_comes_gzipped_and_a_reload_gets_304(server: LiveServer) -> None:
    plain = THREE_FILE.read_bytes()
    zipped, body = raw(server, THREE, **{"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.headers["cache-control"] == "no-cache"
    assert int(zipped.headers["content-length"]) == len(body)
    assert len(body) < len(plain) / 3, f"{len(body)} bytes gzip'd of {len(plain)}"
    assert gzip.decompress(body) == plain

    # The reload: the worker (sw.js) revalidates with the ETag it got; nothing is sent again.
    etag = zipped.headers["etag"]
    again, nothing = raw(server, THREE, **{"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304
    assert nothing == b""
    assert again.headers["etag"] == etag

    # A client without gzip gets the file itself, under another ETag, and its own 304.
    identity, as_is = raw(server, THREE, **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in identity.headers
    assert as_is == plain
    assert identity.headers["etag"] != etag
    revalidated, _ = raw(server, THREE, **{"Accept-Encoding": "identity", "If-None-Match": identity.headers["etag"]})
    assert revalidated.status_code == 304
    # gzip refused by its q-value is no gzip.
    assert "content-encoding" not in raw(server, THREE, **{"Accept-Encoding": "gzip;q=0"})[0].headers


def test_the_page_and_its_modules_are_gzipped_too(server: LiveServer) -> None:
    for path, kind in (("/", "text/html"), ("/main.js", "javascript"), ("/style.css", "text/css"), ("/dashboard.css", "text/css")):
        response, body = raw(server, path, **{"Accept-Encoding": "gzip"})
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], path
        assert response.headers["content-encoding"] == "gzip", path
        assert gzip.decompress(body), path
    head = httpx.head(f"{server.base_url}{THREE}", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert head.status_code == 200 and head.headers["content-encoding"] == "gzip" and head.content == b""
    # A missing file is still a 404, and a range request still gets its part.
    assert raw(server, "/nope.js", **{"Accept-Encoding": "gzip"})[0].status_code == 404
    part, first = raw(server, THREE, **{"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert part.status_code == 206 and first == THREE_FILE.read_bytes()[:100]


async def test_the_room_socket_is_never_compressed(server: LiveServer) -> None:
    async with connect(server.ws_url) as ws:  # the client offers permessage-deflate by default
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


def test_the_page_names_three_js_by_version_and_that_address_is_cached_for_good(server: LiveServer) -> None:
    version = json.loads((THREE_FILE.parents[1] / "package.json").read_text())["version"]
    versioned = f"/vendor/three@{version}/build/three.module.js"
    page, body = raw(server, "/", **{"Accept-Encoding": "identity"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    html = body.decode()
    assert f'"three": "{versioned}"' in html and '"/vendor/three/' not in html
    again, empty = raw(server, "/", **{"If-None-Match": page.headers["etag"], "Accept-Encoding": "identity"})
    assert again.status_code == 304 and empty == b""
    module, data = raw(server, versioned, **{"Accept-Encoding": "gzip"})
    assert module.status_code == 200
    assert module.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert gzip.decompress(data) == THREE_FILE.read_bytes()
    addon, _ = raw(server, f"/vendor/three@{version}/examples/jsm/loaders/GLTFLoader.js", **{"Accept-Encoding": "identity"})
    assert addon.status_code == 200 and "immutable" in addon.headers["cache-control"]
    wrong, _ = raw(server, "/vendor/three@0.0.1/build/three.module.js")
    assert wrong.status_code == 404  # only the installed version is served as cached for good
