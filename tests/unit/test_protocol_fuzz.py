"""Property tests of the socket's two decoders: whatever a client sends, they answer with a
valid message or a ProtocolError, never another exception (which would reach asyncio).

Bounded so the suite stays fast: a few hundred examples each, no per-example deadline
(deep nesting is slow to build, not to decode).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime import protocol as p
from tests.hostile_frames import binaries, texts

FUZZ = settings(max_examples=300, deadline=None)


def _refusal_is_sendable(exc: p.ProtocolError) -> None:
    """The error the socket would send for it encodes, and says something."""
    assert isinstance(exc.code, p.ErrorCode) and exc.message
    assert p.dumps(p.error(exc.code, exc.message, exc.re))


@FUZZ
@given(text=texts)
def test_decode_control_answers_any_text_with_a_message_or_a_protocol_error(text: str) -> None:
    try:
        message = p.decode_control(text)
    except p.ProtocolError as exc:
        _refusal_is_sendable(exc)
        return
    assert message.type in p.CLIENT_TYPES  # type: ignore[attr-defined]
    assert type(message).model_validate(message.model_dump()) == message


@FUZZ
@given(data=st.binary(max_size=300) | texts.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_decode_control_answers_any_bytes_too(data: bytes) -> None:
    try:
        p.decode_control(data)
    except p.ProtocolError as exc:
        _refusal_is_sendable(exc)


@FUZZ
@given(data=binaries)
def test_decode_binary_answers_any_bytes_with_a_valid_frame_or_a_protocol_error(data: bytes) -> None:
    try:
        frame = p.decode_binary(data)
    except p.ProtocolError as exc:
        _refusal_is_sendable(exc)
        assert exc.code in (p.ErrorCode.BAD_BINARY, p.ErrorCode.BAD_POSE) and exc.re is None
        return
    if isinstance(frame, p.PoseFrame):  # its floats are checked at the tick, with every pose at once
        assert frame.data == data and len(data) == p.CLIENT_POSE.itemsize and data[0] == p.BinaryKind.POSE
    else:
        assert len(data) == p.CLIENT_OBJECT_MOVE.itemsize and 0 <= frame.object_index <= 0xFFFF
        assert all(math.isfinite(v) and abs(v) <= p.MAX_COORDINATE for v in frame.transform)
        assert p.QUAT_NORM2_RANGE[0] < sum(v * v for v in frame.transform[3:]) < p.QUAT_NORM2_RANGE[1]
