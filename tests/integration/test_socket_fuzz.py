"""Hostile frames from one joined client against a real server process.

Every frame that is refused on arrival gets its own ``error`` with the code the pure
decoder gives it, in order; hostile poses are judged at the tick; the sender is never
disconnected for any of it, the room goes on for the others, and the server logs no
traceback. The frames come from tests/hostile_frames.py, as in the decoders' property
tests; none is oversized and every text is UTF-8, so no frame earns one of the
documented closes (1009, 1007), which tests/integration/test_bad_input.py covers.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import protocol as p
from realtime.limits import RoomLimits
from tests.conftest import LiveServer, start_server
from tests.hostile_frames import non_poses, poses, texts
from tests.integration.test_bad_input import assert_room_still_works, pair


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose message rate limit a batch of frames sent at once stays under."""
    live = start_server(tmp_path_factory.mktemp("fuzz"), env={"AMALIY_MSG_RATE": "100000", "AMALIY_MSG_BURST": "100000"})
    yield live
    live.stop()


def refusal(frame: str | bytes) -> frozenset[str] | None:
    """The codes the server may answer this frame with on arrival; None if it is not refused on arrival."""
    try:
        decoded = p.decode_control(frame) if isinstance(frame, str) else p.decode_binary(frame)
    except p.ProtocolError as exc:
        return frozenset((str(exc.code),))
    if isinstance(decoded, p.ObjectMove):  # well formed: the room refuses it, as nobody holds anything
        return frozenset((str(p.ErrorCode.UNKNOWN_OBJECT), str(p.ErrorCode.NOT_HOLDER)))
    return None  # a valid control message


def _fits(text: str) -> bool:
    return len(text.encode()) <= RoomLimits().max_message_bytes


refused_frames = (texts.filter(_fits) | non_poses).filter(lambda frame: refusal(frame) is not None)


async def sync(client: Any, mark: str) -> list[dict[str, Any]]:
    """Everything the client got up to the pong for a ping sent now: the server answers in order."""
    await client.send({"type": "ping", "id": mark})
    await client.expect("pong", re=mark, timeout=10)
    return [m for m in client.drain() if m["type"] == "error"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(frames=st.lists(refused_frames, min_size=20, max_size=50), hostile_poses=st.lists(poses, min_size=5, max_size=20))
async def test_hostile_frames_are_refused_one_by_one_and_the_room_goes_on(
    server: LiveServer, frames: list[str | bytes], hostile_poses: list[bytes]
) -> None:
    _, good, bad = await pair(server)
    try:
        await sync(bad, "start")
        for frame in frames:
            await bad.send_raw(frame)
        errors = await sync(bad, "frames")
        assert len(errors) == len(frames), [e["code"] for e in errors]
        for frame, error in zip(frames, errors):
            assert error["code"] in refusal(frame) and error["message"], (frame[:80], error)  # type: ignore[operator]
        for pose in hostile_poses:
            await bad.send_raw(pose)
        errors = await sync(bad, "poses")
        assert {e["code"] for e in errors} <= {"bad_pose"}, errors
        assert bad.close_code is None
        await assert_room_still_works(bad, good)
    finally:
        await good.close()
        await bad.close()
    assert not [line for line in server.output if "Traceback" in line]
