"""The browser's codec (clients/web/public/protocol.js) speaks realtime/protocol.py byte for byte.

The JavaScript module is imported in a real page served by a real server, fed
the same inputs as the Python codec, and the bytes compared both ways: frames
the page encodes must be the bytes Python encodes, tick frames Python encodes
must decode in the page to the same values, and every control message the page
builds must pass the server's validation.
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page

from realtime import protocol as p

pytestmark = pytest.mark.browser

POSE = [0.5 * i - 3.25 for i in range(p.POSE_FLOATS)]
TRANSFORM = [1.25, 0.9, -0.75, 0.0, 0.3826834, 0.0, 0.9238795]
STAMP = 0xFEDCBA98  # high bit set: must survive as an unsigned u32


@pytest.fixture
def page(server, open_page) -> Page:
    page = open_page(f"{server.base_url}/", "codec")
    page.wait_for_function("document.readyState === 'complete'")
    return page


def js(page: Page, body: str, arg: object = None) -> object:
    """Run ``body`` with the page's protocol module bound to ``P``."""
    return page.evaluate(f"async (arg) => {{ const P = await import('/protocol.js'); {body} }}", arg)


def test_layout_constants_match(page: Page) -> None:
    sizes = js(
        page,
        "return [P.CLIENT_POSE_BYTES, P.CLIENT_OBJECT_MOVE_BYTES, P.TICK_HEADER_BYTES, P.POSE_RECORD_BYTES,"
        " P.OBJECT_RECORD_BYTES, P.POSE_FLOATS, P.TRANSFORM_FLOATS, P.NO_HOLDER, P.TICK_FULL,"
        " P.FLAG_LEFT_TRACKED, P.FLAG_RIGHT_TRACKED, P.PROTOCOL_VERSION];",
    )
    assert sizes == [
        p.CLIENT_POSE.itemsize,
        p.CLIENT_OBJECT_MOVE.itemsize,
        p.TICK_HEADER.itemsize,
        p.POSE_RECORD.itemsize,
        p.OBJECT_RECORD.itemsize,
        p.POSE_FLOATS,
        p.TRANSFORM_FLOATS,
        p.NO_HOLDER,
        p.TICK_FULL,
        p.FLAG_LEFT_TRACKED,
        p.FLAG_RIGHT_TRACKED,
        p.PROTOCOL_VERSION,
    ]
    assert js(page, "return {...P.BinaryKind};") == {kind.name: int(kind) for kind in p.BinaryKind}
    assert js(page, "return {...P.CloseCode};") == {code.name: int(code) for code in p.CloseCode}


def test_pose_frame_bytes_match(page: Page) -> None:
    flags = p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED
    sent = bytes(js(page, "return [...new Uint8Array(P.encodePose(arg.pose, arg.stamp, arg.flags))];", {"pose": POSE, "stamp": STAMP, "flags": flags}))
    assert sent == p.encode_pose(POSE, STAMP, flags)
    assert isinstance(p.decode_binary(sent), p.PoseFrame)


def test_object_move_bytes_match(page: Page) -> None:
    sent = bytes(js(page, "return [...new Uint8Array(P.encodeObjectMove(3, arg.t, arg.stamp))];", {"t": TRANSFORM, "stamp": STAMP}))
    assert sent == p.encode_object_move(3, TRANSFORM, STAMP)
    move = p.decode_binary(sent)
    assert isinstance(move, p.ObjectMove) and move.object_index == 3


def test_tick_frames_from_python_decode_in_the_page(page: Page) -> None:
    poses = np.zeros(2, p.POSE_RECORD)
    poses["slot"] = [0, 513]
    poses["flags"] = [p.FLAG_LEFT_TRACKED, 0]
    poses["stamp"] = [STAMP, 7]
    poses["pose"][0] = POSE
    objects = np.zeros(2, p.OBJECT_RECORD)
    objects["object"] = [4, 1]
    objects["holder"] = [p.NO_HOLDER, 513]
    objects["transform"][1] = TRANSFORM
    data = p.encode_tick(0x89ABCDEF, 4242, poses, objects, full=True)
    decoded = js(
        page,
        """const f = P.decodeTick(new Uint8Array(arg).buffer);
           return {tick: f.tick, eventSeq: f.eventSeq, full: f.full,
                   poses: f.poses.map(r => ({...r, pose: [...r.pose]})),
                   objects: f.objects.map(r => ({...r, transform: [...r.transform]}))};""",
        list(data),
    )
    assert (decoded["tick"], decoded["eventSeq"], decoded["full"]) == (0x89ABCDEF, 4242, True)
    for got, want in zip(decoded["poses"], poses):
        assert (got["slot"], got["flags"], got["stamp"]) == (want["slot"], want["flags"], want["stamp"])
        assert np.array_equal(np.float32(got["pose"]), want["pose"])
    for got, want in zip(decoded["objects"], objects):
        assert (got["index"], got["holder"]) == (want["object"], want["holder"])
        assert np.array_equal(np.float32(got["transform"]), want["transform"])
    # A frame whose length does not add up is refused, as decode_tick refuses it.
    error = js(page, "try { P.decodeTick(new Uint8Array(arg).buffer); return null; } catch (e) { return e.message; }", list(data[:-1]))
    assert error and "bytes" in error


def test_control_messages_pass_server_validation(page: Page) -> None:
    built = js(
        page,
        """const m = P.messages;
           return [m.join('tok', null), m.join('tok', 12), m.ping(), m.leave(), m.grab('beaker-water@1'),
                   m.release('beaker-water@1'), m.kick('p_1'), m.unkick('p_1'), m.lock(true), m.freeze(false),
                   m.summon([1, 0, -2]), m.reset(), m.end(), m.rtcOffer('v=0'), m.rtcClose(),
                   m.mute(true), m.mute(false, 'p_2'), m.broadcast(true), m.interact('burner@1', 'lit', true),
                   m.answer('read-temperature', 80), m.chooseStation(2), m.assignStation('p_3', null),
                   m.hint('fill-flask'), m.pushHint({all: true}, null, 'Five minutes left')]
                  .map(msg => JSON.stringify(msg));""",
    )
    decoded = [p.decode_control(text) for text in built]
    assert {msg.type for msg in decoded} == p.CLIENT_TYPES
    assert decoded[7].type == "unkick" and decoded[7].participant == "p_1"
    assert decoded[1].last_seq == 12 and decoded[0].last_seq is None
    decoded.pop(7)  # unkick, checked here so the indexes below stay put
    own, forced = decoded[14], decoded[15]
    assert (own.muted, own.participant) == (True, None) and (forced.muted, forced.participant) == (False, "p_2")
    assert decoded[12].sdp == "v=0" and decoded[16].on is True
