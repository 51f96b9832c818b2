"""A Python SDK participant beside a browser tab: on an event loop of its own thread,
because sync Playwright owns the test's. Tests use it to watch the room as the server
says it is, or to act as a partner at the bench."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from typing import Any, Callable, Coroutine

from amaliy_client import AmaliyClient
from tests.browser.tabs import TIMEOUT_MS


class ThreadedClient:
    def __init__(self, base_url: str, code: str, name: str, role: str = "student") -> None:
        self._start()
        self.client: AmaliyClient = self.call(AmaliyClient.join(base_url, code, name, role=role))

    @classmethod
    def with_token(cls, ws_url: str, token: str) -> "ThreadedClient":
        """A participant from a token already issued (a teacher's, from open_session)."""
        self = cls.__new__(cls)
        self._start()
        self.client = AmaliyClient(ws_url, token)
        self.call(self.client.connect())
        return self

    def _start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    @property
    def id(self) -> str:
        return self.client.id

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT_MS / 1000)

    def read(self, what: Callable[[AmaliyClient], Any]) -> Any:
        """A copy of something from the client's mirror, read on its own loop."""

        async def take() -> Any:
            return copy.deepcopy(what(self.client))

        return self.call(take())

    def objects(self) -> dict[str, dict[str, Any]]:
        return self.read(lambda client: client.objects)

    def wait_for(self, what: str, check: Callable[[AmaliyClient], bool]) -> None:
        """Poll the mirror until ``check`` holds, or fail saying ``what`` did not happen."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not self.read(check):
            if time.monotonic() > deadline:
                raise AssertionError(f"the room never showed that {what}: {self.objects()}")
            time.sleep(0.05)

    def close(self) -> None:
        self.call(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
