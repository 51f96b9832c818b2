"""The browser's codec (clients/web/public/protocol.js) speaks realtime/protocol.py and
realtime/codec_v2.py byte for byte.

The JavaScript module is imported in a real page served by a real server, fed
the same inputs as the Python codec, and the bytes compared both ways: frames
the page encodes must be the bytes Python encodes, tick frames Python encodes
must decode in the page to the same values, and every control message the page
builds must pass the server's validation. For version 2 the inputs are the hard
cases of quantization: rotations on and near every axis with both signs (where
smallest-three changes the component it drops), positions on the grid's edges
and outside it (clamped), untracked hands (not sent: the page rests them below
the head), and frames cut or padded (refused on both sides).
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page

from realtime import codec_v2 as v2
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
        " P.FLAG_LEFT_TRACKED, P.FLAG_RIGHT_TRACKED, P.PROTOCOL_VERSION,"
        " P.POSE_V2_BYTES, P.BLOCK_BYTES, P.TICK_V2_HEADER_BYTES, P.HEAD_RECORD_BYTES, P.OBJECT_RECORD_V2_BYTES, P.GRID_MAX];",
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
        v2.CLIENT_POSE_SIZES[0],
        v2.BLOCK.itemsize,
        v2.TICK_HEADER.itemsize,
        v2.HEAD_RECORD.itemsize,
        v2.OBJECT_RECORD.itemsize,
        v2.GRID_STEPS,
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
           return [m.join('tok', null), m.join('tok', 12, null), m.ack(0xFFFFFFFF), m.ping(), m.leave(), m.grab('beaker-water@1'),
                   m.release('beaker-water@1'), m.kick('p_1'), m.unkick('p_1'), m.lock(true), m.freeze(false),
                   m.summon([1, 0, -2]), m.reset(), m.end(), m.rtcOffer('v=0'), m.rtcClose(),
                   m.mute(true), m.mute(false, 'p_2'), m.broadcast(true), m.interact('burner@1', 'lit', true),
                   m.answer('read-temperature', 80), m.chooseStation(2), m.assignStation('p_3', null),
                   m.hint('fill-flask'), m.pushHint({all: true}, null, 'Five minutes left')]
                  .map(msg => JSON.stringify(msg));""",
    )
    decoded = [p.decode_control(text) for text in built]
    assert {msg.type for msg in decoded} == p.CLIENT_TYPES
    # The page asks for version 2; without the field (an older server refused it) the server reads 1.
    assert (decoded[0].last_seq, decoded[0].protocol) == (None, p.PROTOCOL_VERSION)
    assert (decoded[1].last_seq, decoded[1].protocol) == (12, 1)
    assert decoded[2].type == "ack" and decoded[2].tick == 0xFFFFFFFF
    assert decoded[8].type == "unkick" and decoded[8].participant == "p_1"
    del decoded[8], decoded[2]  # unkick and ack, checked here so the indexes below stay put
    own, forced = decoded[14], decoded[15]
    assert (own.muted, own.participant) == (True, None) and (forced.muted, forced.participant) == (False, "p_2")
    assert decoded[12].sdp == "v=0" and decoded[16].on is True


# --------------------------------------------------------------------------- version 2

#: A lab's 1 mm grid, and a big lab's coarser one with an origin that is not round.
GRIDS = [v2.Grid((-32.767, -2.0, -32.767), (0.001, 0.001, 0.001)), v2.Grid((-5012.5, -2.0, -40.25), (0.15297, 0.001, 0.0012345))]
rng = np.random.default_rng(13)


def unit(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def hard_rotations() -> np.ndarray:
    """On and near every axis, both signs; two and four components tied for largest (the first
    one is dropped); just either side of the tie; and random ones."""
    out = []
    for i in range(4):
        for sign in (1.0, -1.0):
            for tilt in (0.0, 1e-4, -1e-4, 0.3, -0.3, 0.70710, 0.70711, -0.70711):
                q = np.zeros(4)
                q[i] = sign
                q[(i + 1) % 4] = tilt
                out.append(q)
    out += [[0.5, 0.5, 0.5, 0.5], [-0.5, 0.5, -0.5, 0.5], [0.5, -0.5, -0.5, -0.5], [0.0, -1.0, 1.0, 0.0], [-1.0, 0.0, 0.0, -1.0]]
    return np.vstack([unit(np.array(out)), unit(rng.normal(size=(200, 4)))]).astype(np.float32)


def hard_positions(grid: v2.Grid) -> np.ndarray:
    """Inside the grid at random, on its two edges, just inside them, and outside (clamped)."""
    low = np.array(grid.origin)
    high = low + v2.GRID_STEPS * np.array(grid.step)
    edges = [low, high, low + np.array(grid.step), high - np.array(grid.step), low - 1.0, high + 1.0, low - 1e4, high + 1e4]
    mixed = [[high[0] + 3.0, low[1], (low[2] + high[2]) / 2], [low[0] - 0.2, high[1] + 0.0004, low[2] + 0.0004]]
    inside = rng.uniform(low, high, size=(200, 3))
    return np.vstack([edges, mixed, inside]).astype(np.float32)


def hard_poses(grid: v2.Grid) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21) float32 poses whose 3N blocks walk through every hard position and rotation, and each one's flags."""
    rotations, positions = hard_rotations(), hard_positions(grid)
    n = max(len(rotations), len(positions)) // 3 + 1
    blocks = np.zeros((3 * n, 7), np.float32)
    blocks[:, :3] = np.resize(positions, (3 * n, 3))
    blocks[:, 3:] = np.resize(rotations, (3 * n, 4))
    return blocks.reshape(n, 21), np.arange(n) % 4  # every combination of tracked hands


def within_quantization(got: np.ndarray, want: np.ndarray, grid: v2.Grid) -> None:
    """Blocks (…, 7) ``got`` are ``want`` as the grid and smallest-three carry it: positions clamped
    to the grid then within half a step, rotations within the codec's 0.25 degrees (either sign)."""
    got, want = got.reshape(-1, 7).astype(float), want.reshape(-1, 7).astype(float)
    low = np.array(grid.origin)
    high = low + v2.GRID_STEPS * np.array(grid.step)
    clamped = want[:, :3].clip(low, high)
    assert np.all(np.abs(got[:, :3] - clamped) <= np.array(grid.step) / 2 + 1e-5)
    dot = np.abs(np.einsum("ij,ij->i", unit(got[:, 3:]), unit(want[:, 3:]))).clip(0, 1)
    assert np.degrees(2 * np.arccos(dot)).max() <= 0.25


def test_v2_poses_from_the_page_are_the_bytes_python_encodes_and_decode_within_the_step(page: Page) -> None:
    for grid in GRIDS:
        poses, flags = hard_poses(grid)
        sent = js(
            page,
            """const grid = P.readGrid(arg.grid);
               return arg.poses.map((pose, i) =>
                 [...new Uint8Array(P.encodePoseV2(Float32Array.from(pose), arg.stamp, arg.flags[i], grid))]);""",
            {"grid": grid.public(), "poses": poses.tolist(), "flags": flags.tolist(), "stamp": STAMP},
        )
        for pose, bits, frame in zip(poses, flags, sent):
            data = bytes(frame)
            assert data == v2.encode_pose_v2(pose, STAMP, int(bits), grid)
            assert len(data) == 16 + 10 * bin(int(bits)).count("1")  # untracked hands are not sent
            assert isinstance(p.decode_binary(data), p.PoseFrameV2)  # the server's check passes it
            got_flags, stamp, floats = v2.decode_pose_v2(data, grid)
            assert (got_flags, stamp) == (bits, STAMP)
            sent_blocks = [0] + [1 + i for i in range(2) if bits & (1 << i)]
            within_quantization(floats.reshape(3, 7)[sent_blocks], pose.reshape(3, 7)[sent_blocks], grid)


def forward_on_floor(q: np.ndarray) -> tuple[np.ndarray, float]:
    """Where a head with rotation ``q`` looks (-z) flattened onto the floor, made unit length,
    and how long it was before (near 0: the head looks straight up or down)."""
    x, y, z, w = q
    flat = -np.array([2 * (x * z + w * y), 0.0, 1 - 2 * (x * x + y * y)])
    length = float(np.linalg.norm(flat))
    return flat / length, length


def assert_resting(hand: np.ndarray, head: np.ndarray, side: int) -> bool:
    """An untracked hand rests where the sending page put it (rig.js): 0.5 m below the head,
    0.3 m ahead of it along its heading, 0.22 m to its side, turned with the heading only.
    False (nothing checked) for a head looking nearly straight up or down, which has no heading."""
    forward, length = forward_on_floor(head[3:])
    if length < 0.1:
        return False
    right = np.array([-forward[2], 0.0, forward[0]])
    expected = head[:3] + np.array([0.0, -0.5, 0.0]) + 0.3 * forward + (0.22 if side else -0.22) * right
    assert np.allclose(hand[:3], expected, atol=1e-4)
    assert hand[3] == 0 and hand[5] == 0  # a turn about the vertical alone
    assert np.allclose(forward_on_floor(hand[3:])[0], forward, atol=1e-5)
    return True


def decode_in_page(page: Page, frame: bytes, grid: v2.Grid) -> dict:
    return js(
        page,
        """const f = P.decodeTickFrame(new Uint8Array(arg.frame).buffer, P.readGrid(arg.grid));
           return {tick: f.tick, eventSeq: f.eventSeq, full: f.full,
                   poses: f.poses.map(r => ({...r, pose: [...r.pose]})),
                   objects: f.objects.map(r => ({...r, transform: [...r.transform]}))};""",
        {"frame": list(frame), "grid": grid.public()},
    )


def test_v2_tick_frames_from_python_decode_in_the_page_to_the_same_values(page: Page) -> None:
    for grid in GRIDS:
        floats, flags = hard_poses(grid)
        poses = np.zeros(len(floats), p.POSE_RECORD)
        poses["slot"] = np.arange(len(floats)) * 37 % 1000
        poses["flags"] = flags
        poses["stamp"] = rng.integers(0, 2**32, len(floats), dtype=np.uint64)
        poses["pose"] = floats
        blocks = floats.reshape(-1, 7)
        objects = np.zeros(len(blocks), p.OBJECT_RECORD)
        objects["object"] = np.arange(len(blocks))
        objects["holder"] = np.where(np.arange(len(blocks)) % 3, p.NO_HOLDER, 513)
        objects["transform"] = blocks
        rested = 0
        for full in (True, False):
            data = v2.encode_tick_v2(0x89ABCDEF, 4242, poses, objects, grid, full=full)
            want = v2.decode_tick_v2(data, grid)
            got = decode_in_page(page, data, grid)
            assert (got["tick"], got["eventSeq"], got["full"]) == (0x89ABCDEF, 4242, full)
            assert len(got["poses"]) == len(poses) and len(got["objects"]) == len(objects)
            for record, expected, sent in zip(got["poses"], want.poses, poses):
                assert (record["slot"], record["flags"], record["stamp"]) == (expected["slot"], expected["flags"], expected["stamp"])
                pose = np.float32(record["pose"]).reshape(3, 7)
                assert np.allclose(pose[0], expected["pose"][:7], atol=1e-6)  # the same head as Python's
                within_quantization(pose[0], sent["pose"][:7], grid)
                for side in range(2):
                    if sent["flags"] & (1 << side):
                        assert np.allclose(pose[1 + side], expected["pose"][7 + 7 * side : 14 + 7 * side], atol=1e-6)
                        within_quantization(pose[1 + side], sent["pose"][7 + 7 * side : 14 + 7 * side], grid)
                    else:
                        rested += assert_resting(pose[1 + side].astype(float), pose[0].astype(float), side)
            for record, expected, sent in zip(got["objects"], want.objects, objects):
                assert (record["index"], record["holder"]) == (expected["object"], expected["holder"])
                assert np.allclose(record["transform"], expected["transform"], atol=1e-6)
                within_quantization(np.float32(record["transform"]), sent["transform"], grid)
        assert rested > 100
    # An empty frame, and a version 1 frame through the same entry point.
    grid = GRIDS[0]
    assert decode_in_page(page, v2.encode_tick_v2(1, 2, np.zeros(0, p.POSE_RECORD), np.zeros(0, p.OBJECT_RECORD), grid), grid) == {
        "tick": 1, "eventSeq": 2, "full": False, "poses": [], "objects": []}
    v1 = decode_in_page(page, p.encode_tick(3, 4, np.zeros(0, p.POSE_RECORD), np.zeros(0, p.OBJECT_RECORD)), grid)
    assert (v1["tick"], v1["eventSeq"]) == (3, 4)


def raises_in_python(decode, data: bytes) -> bool:
    try:
        decode(data)
    except p.ProtocolError:
        return True
    return False


def test_malformed_v2_frames_throw_in_the_page_where_python_raises(page: Page) -> None:
    grid = GRIDS[0]
    floats, flags = hard_poses(grid)
    poses = np.zeros(3, p.POSE_RECORD)
    poses["flags"] = [p.FLAG_LEFT_TRACKED | p.FLAG_RIGHT_TRACKED, p.FLAG_RIGHT_TRACKED, 0]
    poses["pose"] = floats[:3]
    objects = np.zeros(2, p.OBJECT_RECORD)
    objects["transform"] = floats[:2, :7]
    good = v2.encode_tick_v2(7, 8, poses, objects, grid)
    more_hands = bytearray(good)
    more_hands[14 + 17 * 2 + 2] = p.FLAG_LEFT_TRACKED  # a head claims a hand the frame does not hold
    fewer_hands = bytearray(good)
    fewer_hands[14 + 2] = 0  # the frame holds a hand no head claims
    more_poses = bytearray(good)
    more_poses[2] = 4
    frames = {
        "whole": good,
        "cut by a byte": good[:-1],
        "a byte too many": good + b"\0",
        "a hand missing": bytes(more_hands),
        "a hand too many": bytes(fewer_hands),
        "more records than bytes": bytes(more_poses),
        "header only": good[:14],
        "shorter than a header": good[:13],
        "empty": b"",
        "a version 1 kind": bytes([p.BinaryKind.TICK]) + good[1:],
    }
    thrown = js(
        page,
        """const grid = P.readGrid(arg.grid);
           return Object.fromEntries(Object.entries(arg.frames).map(([name, bytes]) => {
             try { P.decodeTickV2(new Uint8Array(bytes).buffer, grid); return [name, null]; }
             catch (e) { return [name, e.message]; }
           }));""",
        {"grid": grid.public(), "frames": {name: list(data) for name, data in frames.items()}},
    )
    for name, data in frames.items():
        assert (thrown[name] is not None) == raises_in_python(lambda d: v2.decode_tick_v2(d, grid), data), name
    assert thrown["whole"] is None and "bytes" in thrown["cut by a byte"]


def test_rotations_the_server_refuses_do_not_unpack_in_the_page(page: Page) -> None:
    """A u of 0, or three components no unit quaternion has, make a rotation the server refuses
    (bad_pose); the page will not unpack one either."""
    valid = v2.pack_rotations(hard_rotations().astype(float))
    broken = [int(i) << 30 | a << 20 | b << 10 | c for i in range(4) for a, b, c in ((0, 512, 512), (512, 0, 512), (512, 512, 0), (1023, 1023, 1023), (1, 1, 1), (1023, 1, 900))]
    packed = [*map(int, valid), *broken]
    thrown = js(
        page,
        "return arg.map(u => { try { P.unpackRotation(u, [0, 0, 0, 0]); return false; } catch { return true; } });",
        packed,
    )
    assert thrown == [not ok for ok in v2.rotations_valid(np.array(packed, np.uint32))]
    assert not any(thrown[: len(valid)]) and all(thrown[len(valid) :])
    # Unpacked, the page's quaternions are Python's.
    back = js(page, "return arg.map(u => P.unpackRotation(u, [0, 0, 0, 0]));", packed[: len(valid)])
    assert np.allclose(back, v2.unpack_rotations(valid), atol=1e-12)
