"""Hostile room-socket frames as hypothesis strategies.

Shared by the property tests of the codecs (tests/unit/test_protocol_fuzz.py) and the
fuzz of a live server (tests/integration/test_socket_fuzz.py), so both throw the same
kinds of input: text that is not JSON, or not an object; JSON nested from just under
MAX_JSON_DEPTH to far past the parser's recursion limit; every message type with
arbitrary values (wrong types, huge and non-finite numbers, escaped lone surrogates) in
any of its fields, ``type`` included; binary frames of every kind byte and length, and
well-formed ones carrying non-finite or out-of-range floats.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from hypothesis import strategies as st

from realtime import protocol as p

#: Every control message model by its ``type``.
MODELS: dict[str, Any] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(p.ClientMessage)[0])
}

#: Any string Python can hold, lone surrogates included (json.dumps escapes them to ASCII).
strings = st.text(st.characters(codec=None, categories=["L", "M", "N", "P", "S", "Z", "C"]), max_size=20)
#: Integers far past 64 bits, and JSON numbers past Python's 4300-digit conversion limit.
_huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
_long_number = st.integers(4000, 5000).map(lambda digits: "9" * digits)

json_values = st.recursive(
    st.none() | st.booleans() | _huge_ints | st.floats() | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message of a known type with arbitrary values in some of its fields (and maybe a stray one)."""
    kind = draw(st.sampled_from(sorted(MODELS)))
    names = draw(st.lists(st.sampled_from(sorted(MODELS[kind].model_fields)), unique=True))
    message: dict[str, Any] = {"type": kind, **{name: draw(json_values) for name in names}}
    if draw(st.booleans()):
        message[draw(strings)] = draw(json_values)
    return message


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Arrays or objects nested around MAX_JSON_DEPTH or far past it, alone or inside a message."""
    depth = draw(st.integers(p.MAX_JSON_DEPTH - 2, p.MAX_JSON_DEPTH + 2) | st.integers(0, 3000))
    if draw(st.booleans()):
        inner = "[" * depth + "]" * depth
    else:
        inner = '{"a":' * depth + "1" + "}" * depth
    return '{"type":"ping","t":' + inner + "}" if draw(st.booleans()) else inner


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity literals too


#: Text frames: JSON of anything, messages with wrong fields, deep nesting, huge numbers,
#: JSON cut short, and text that is not JSON at all.
texts = st.one_of(
    json_values.map(_dumps),
    json_values.map(lambda kind: _dumps({"type": kind})),
    messages().map(_dumps),
    nested(),
    _long_number.map(lambda number: '{"type":"ping","t":' + number + "}"),
    st.tuples(messages().map(_dumps), st.integers(1, 40)).map(lambda cut: cut[0][: -cut[1]]),
    st.text(max_size=40),
)

_floats32 = st.floats(width=32)
#: Pose frames of the right length carrying any float (NaN, infinities, 3e38).
poses = st.lists(_floats32, min_size=p.POSE_FLOATS, max_size=p.POSE_FLOATS).map(p.encode_pose)
#: Binary frames other than poses (which the room judges at the tick, not on arrival):
#: arbitrary bytes after any or a known kind byte, and object moves of the right length
#: with any index and any float.
non_poses = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.sampled_from(list(p.BinaryKind)), st.binary(max_size=120)).map(lambda kr: bytes([kr[0]]) + kr[1]),
    st.tuples(st.integers(0, 0xFFFF), st.lists(_floats32, min_size=7, max_size=7)).map(
        lambda it: p.encode_object_move(it[0], it[1])
    ),
)
binaries = non_poses | poses
