"""A cap on every request body the HTTP edge reads whole.

FastAPI reads a JSON body into memory before validating it, so without a cap one
request could hold gigabytes. Every route's body is small JSON (a name, settings, a
code) except the two that stream a file with a limit of their own: a scene package
(server.scene_routes) and a roster CSV (server.course_routes). Those are exempt here;
everything else is refused with 413 past ``limit`` bytes, by its Content-Length before
anything is read, or as the bytes of a chunked body arrive.
"""

from __future__ import annotations

import json
import re
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

#: JSON bodies: the largest is a course's settings with 16 badges, a few kB
DEFAULT_LIMIT = 64 * 1024
#: routes that stream a file under their own limit
_STREAMED = re.compile(r"^/api/scenes/?$|^/api/courses/[^/]+/roster/?$")


class BodyLimit:
    """ASGI middleware: 413 with a JSON ``detail`` for a body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or _STREAMED.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = over = False

        async def counted() -> Message:
            # past the limit the app is told the client went away, so it stops reading
            # (an exception here would reach FastAPI's body parser and become a 400)
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not finish (FastAPI says 400): ours is the 413
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send)

    async def _refuse(self, send: Callable[[Message], Awaitable[None]]) -> None:
        body = json.dumps({"detail": f"The request body is over {self.limit} bytes; this route takes a small JSON body."}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
