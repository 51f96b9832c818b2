"""The web client's files (clients/web/public, three.js under /vendor/three), compressed.

three.js alone is about 2 MB of JavaScript that gzip brings to about a fifth; on a school's
shared Wi-Fi or a phone's data plan that is most of the wait before the lab appears. So a
client that accepts gzip gets the file gzip'd, and every answer carries an ETag that a
reload revalidates (the service worker, sw.js, asks with ``cache: 'no-cache'`` every time),
so a second load costs a 304 and no body.

What is distrusted, in order: the path (Starlette's StaticFiles resolves it inside the
directory, or 404), then ``Accept-Encoding`` (parsed by its q-values; a malformed one means
identity). A range request is answered whole and uncompressed by StaticFiles as before.

Each file is compressed once, on its first request (in a worker thread, not on the event
loop), and kept in memory keyed by its path, size and mtime, so an edited file is compressed
again. Memory is bounded: only text types, only files up to ``max_file_bytes``, and the
compressed copies together at most ``max_total_bytes`` (the least recently used go first).

Caching: three.js is served under an address that names its version,
/vendor/three@<version>/ (``three_prefix``), and index.html's import map is rewritten to it
as the page is served (``rewrite``). What such an address serves never changes, so it is
cached for a year without asking (``IMMUTABLE``): a reload fetches none of three.js's modules,
not even for a 304, which on a weak link is a round trip each. Everything else (the page, the
client's own modules) says ``Cache-Control: no-cache``: keep it, but ask (with the ETag)
before using it, so an update shows on the next load. /vendor/three/ stays, no-cache, for a
page loaded before. The lab's model, whose address is per version, is cached for a year by
its own route.

The room socket is not served here and is never compressed (permessage-deflate stays off:
DESIGN.md, the room socket).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

#: Types worth compressing: text. Images, GLB and fonts are compressed already or barely shrink.
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/manifest+json")
#: What answers here say by default: the copy may be kept, but is revalidated by its ETag before use.
CACHE_CONTROL = "no-cache"
#: What an address that names its content's version says: keep it a year, never ask again.
IMMUTABLE = "public, max-age=31536000, immutable"


def three_prefix(three: Path) -> str:
    """The versioned address three.js is served under, from its installed package.json."""
    version = json.loads((three / "package.json").read_text())["version"]
    if not isinstance(version, str) or not version.replace(".", "").replace("-", "").isalnum():
        raise ValueError(f"three.js's package.json names an odd version {version!r}")
    return f"/vendor/three@{version}/"


@dataclass(frozen=True)
class CompressionLimits:
    """Bounds on the memory the compressed copies take."""

    #: A file larger than this is served as it is (it would be read whole to compress it).
    max_file_bytes: int = 8 * 1024 * 1024
    #: A file smaller than this is served as it is: gzip's header would eat the saving.
    min_file_bytes: int = 1024
    #: All compressed copies together; past it the least recently used are dropped.
    max_total_bytes: int = 32 * 1024 * 1024
    #: gzip's level: 9, since each file is compressed once.
    level: int = 9


def accepts_gzip(accept_encoding: str) -> bool:
    """Does an Accept-Encoding header allow gzip (``gzip`` or ``*`` with a q-value above 0)?"""
    allowed: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    return False  # malformed: identity is always acceptable
        allowed[coding.strip().lower()] = q
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", 0.0))) > 0


class GzipCache:
    """Compressed copies of files, keyed by (path, size, mtime), at most ``max_total_bytes`` in all."""

    def __init__(self, limits: CompressionLimits = CompressionLimits()) -> None:
        self.limits = limits
        self._copies: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def wants(self, size: int, media_type: str) -> bool:
        """Is a file of this size and type one to compress?"""
        return self.limits.min_file_bytes <= size <= self.limits.max_file_bytes and media_type.startswith(COMPRESSIBLE)

    def get(self, path: str, stat: os.stat_result) -> bytes:
        """The file's gzip'd bytes, compressed now if not kept (blocking: run it in a thread)."""
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            body = self._copies.get(key)
            if body is not None:
                self._copies.move_to_end(key)
                return body
        with open(path, "rb") as file:
            # mtime=0: the same file always compresses to the same bytes
            body = gzip.compress(file.read(), self.limits.level, mtime=0)
        with self._lock:
            if key not in self._copies and len(body) <= self.limits.max_total_bytes:
                self._copies[key] = body
                self._total += len(body)
                for stale in [k for k in self._copies if k[0] == path and k != key]:  # an edited file's old copy
                    self._total -= len(self._copies.pop(stale))
                while self._total > self.limits.max_total_bytes:
                    self._total -= len(self._copies.popitem(last=False)[1])
        return body

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total


class CompressedStaticFiles(StaticFiles):
    """StaticFiles that answers gzip to a client that accepts it, with its own ETag, and says
    ``cache_control``; its HTML pages have ``rewrite`` (old, new) applied as they are served."""

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str],
        html: bool = False,
        cache: GzipCache,
        cache_control: str = CACHE_CONTROL,
        rewrite: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(directory=directory, html=html)
        self.cache = cache
        self.cache_control = cache_control
        self.rewrite = rewrite

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        headers = Headers(scope=scope)
        if self.rewrite is not None and isinstance(response, FileResponse) and response.status_code == 200 and str(response.path).endswith(".html"):
            return await self._rewritten(response, headers)
        if (
            isinstance(response, FileResponse)
            and response.status_code == 200
            and response.stat_result is not None
            and "range" not in headers
        ):
            media_type = response.media_type or ""
            if self.cache.wants(response.stat_result.st_size, media_type):
                response.headers["vary"] = "Accept-Encoding"
                if accepts_gzip(headers.get("accept-encoding", "")):
                    response = await self._gzipped(response, media_type, headers)
        response.headers.setdefault("cache-control", self.cache_control)
        return response

    async def _rewritten(self, plain: FileResponse, request_headers: Headers) -> Response:
        """A page with ``rewrite`` applied: small, so read each time, its ETag from what it now says."""
        assert self.rewrite is not None
        text = await anyio.Path(plain.path).read_text()
        body = text.replace(*self.rewrite).encode()
        etag = hashlib.sha256(body).hexdigest()[:32]
        headers = {"cache-control": CACHE_CONTROL, "vary": "Accept-Encoding"}
        if accepts_gzip(request_headers.get("accept-encoding", "")):
            body = gzip.compress(body, self.cache.limits.level, mtime=0)
            headers.update({"content-encoding": "gzip", "etag": f'"{etag}-gzip"'})
        else:
            headers["etag"] = f'"{etag}"'
        if self.is_not_modified(Headers(headers), request_headers):
            return NotModifiedResponse(Headers(headers))
        return Response(body, media_type=plain.media_type, headers=headers)

    async def _gzipped(self, plain: FileResponse, media_type: str, request_headers: Headers) -> Response:
        """The gzip'd representation: its own ETag (a different body), the same Last-Modified."""
        assert plain.stat_result is not None
        body = await anyio.to_thread.run_sync(self.cache.get, str(plain.path), plain.stat_result)
        etag = plain.headers["etag"]
        headers = {
            "etag": f'{etag[:-1]}-gzip"' if etag.endswith('"') else f"{etag}-gzip",
            "last-modified": plain.headers["last-modified"],
            "content-encoding": "gzip",
            "vary": "Accept-Encoding",
            "cache-control": self.cache_control,
        }
        if self.is_not_modified(Headers(headers), request_headers):
            return NotModifiedResponse(Headers(headers))
        return Response(body, media_type=media_type, headers=headers)
