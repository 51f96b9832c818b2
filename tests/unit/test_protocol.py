"""Codecs: the binary layouts are the documented sizes and round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime import protocol as p


def test_layout_sizes_match_the_documented_offsets() -> None:
    assert p.CLIENT_POSE.itemsize == 92
    assert p.CLIENT_OBJECT_MOVE.itemsize == 36
    assert p.TICK_HEADER.itemsize == 16
    assert p.POSE_RECORD.itemsize == 92
    assert p.OBJECT_RECORD.itemsize == 32
    # the room copies bytes 4..92 of a client pose straight into its record
    assert p.CLIENT_POSE.fields["stamp"][1] == p.POSE_RECORD.fields["stamp"][1] == 4
    assert p.CLIENT_POSE.fields["pose"][1] == p.POSE_RECORD.fields["pose"][1] == 8


def test_pose_frame_bytes_are_little_endian_as_documented() -> None:
    data = p.encode_pose([float(i) for i in range(21)], stamp=0x01020304, flags=3)
    assert data[:8] == bytes([0x01, 0x03, 0, 0, 0x04, 0x03, 0x02, 0x01])
    assert np.frombuffer(data, "<f4", 21, 8).tolist() == [float(i) for i in range(21)]


def test_object_move_round_trip() -> None:
    data = p.encode_object_move(3, [1, 2, 3, 0, 0, 0, 1], stamp=77)
    move = p.decode_binary(data)
    assert isinstance(move, p.ObjectMove)
    assert (move.object_index, move.transform) == (3, (1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0))


def test_tick_round_trip_and_length_check() -> None:
    poses = np.zeros(2, p.POSE_RECORD)
    poses["slot"] = [4, 9]
    poses["pose"][1, 0] = 2.5
    objects = np.zeros(1, p.OBJECT_RECORD)
    objects["holder"] = p.NO_HOLDER
    data = p.encode_tick(12, 34, poses, objects, full=True)
    frame = p.decode_tick(data)
    assert (frame.tick, frame.event_seq, frame.full) == (12, 34, True)
    assert frame.poses["slot"].tolist() == [4, 9] and frame.poses["pose"][1, 0] == 2.5
    assert frame.objects["holder"].tolist() == [p.NO_HOLDER]
    with pytest.raises(p.ProtocolError):
        p.decode_tick(data[:-1])


@pytest.mark.parametrize(
    "text,code",
    [
        ("nope", p.ErrorCode.INVALID_JSON),
        ('"string"', p.ErrorCode.INVALID_MESSAGE),
        ('{"type": "fly"}', p.ErrorCode.UNKNOWN_TYPE),
        ('{"type": "lock", "locked": "yes please"}', p.ErrorCode.INVALID_MESSAGE),
        ('{"type": "summon", "position": [1, 2, NaN]}', p.ErrorCode.INVALID_MESSAGE),
        ('{"type": "kick", "participant": ""}', p.ErrorCode.INVALID_MESSAGE),
    ],
)
def test_control_validation_errors(text: str, code: p.ErrorCode) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.decode_control(text)
    assert err.value.code == code and err.value.message


def test_control_messages_parse() -> None:
    msg = p.decode_control('{"type": "grab", "object": "beaker-water@1", "id": "r1"}')
    assert isinstance(msg, p.Grab) and msg.object == "beaker-water@1" and msg.id == "r1"


@pytest.mark.parametrize("kind", ["[]", "{}", "[1, [2]]", '{"a": 1}', "1.5", "null", "true"])
def test_a_type_that_is_not_a_string_is_an_unknown_type(kind: str) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.decode_control(f'{{"type": {kind}, "id": "r"}}')
    assert err.value.code == p.ErrorCode.UNKNOWN_TYPE and err.value.re == "r"


def nested_ping(depth: int) -> str:
    """A ping whose ``t`` nests arrays so that the whole message is ``depth`` levels deep."""
    return '{"type": "ping", "t": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_nesting_is_refused_past_the_limit_whatever_the_depth() -> None:
    with pytest.raises(p.ProtocolError) as at_limit:
        p.decode_control(nested_ping(p.MAX_JSON_DEPTH))
    assert at_limit.value.code == p.ErrorCode.INVALID_MESSAGE  # t is not a number: judged on its fields
    for depth in (p.MAX_JSON_DEPTH + 1, 1_000, 100_000):  # past the limit, then past the parser's recursion
        for text in (nested_ping(depth), '{"a":' * depth + "1" + "}" * depth, "[" * depth + "]" * depth):
            with pytest.raises(p.ProtocolError) as err:
                p.decode_control(text)
            assert err.value.code == p.ErrorCode.INVALID_JSON
            assert f"limit of {p.MAX_JSON_DEPTH} levels" in err.value.message


def test_errors_quote_the_message_briefly() -> None:
    with pytest.raises(p.ProtocolError) as unknown:
        p.decode_control('{"type": "' + "x" * 10_000 + '"}')
    assert len(unknown.value.message) < 100
    many = '{"type": "ping", ' + ", ".join(f'"k{i}": 0' for i in range(2_000)) + "}"
    with pytest.raises(p.ProtocolError) as stray:
        p.decode_control(many)
    assert len(stray.value.message) < 300 and "(and 1995 more)" in stray.value.message


@pytest.mark.parametrize("value", ["true", '"3"', '"abc"', "3", "2.5"])
def test_an_answer_reaches_the_engine_as_sent(value: str) -> None:
    """The engine refuses what is no number (``bad_value``, costing nothing): the parser must not
    have turned ``true`` into 1 or ``"3"`` into 3 on the way."""
    msg = p.decode_control(f'{{"type": "answer", "step": "q", "value": {value}}}')
    assert isinstance(msg, p.Answer)
    sent = json.loads(value)
    assert type(msg.value) is type(sent) and msg.value == sent
