"""Protocol 2's pose codec: the error bounds it promises, and what it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime import codec_v2 as v2
from realtime import protocol as p
from scenes.model import Scene
from tests.unit.test_samples import processed

GRID = v2.Grid((-32.767, -2.0, -32.767), (0.001, 0.001, 0.001))
rng = np.random.default_rng(7)


def random_quats(n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dot = np.abs(np.einsum("ij,ij->i", a, b)).clip(0, 1)
    return np.degrees(2 * np.arccos(dot))


def axis_quats() -> np.ndarray:
    """Rotations on and near every axis, both signs: where smallest-three switches component."""
    out = []
    for i in range(4):
        for sign in (1, -1):
            for tilt in (0.0, 1e-4, 0.3, 0.7071, 0.70715):
                q = np.zeros(4)
                q[i] = sign
                q[(i + 1) % 4] = tilt
                out.append(q / np.linalg.norm(q))
    return np.array(out)


def test_rotation_error_is_within_half_a_degree_and_the_stated_bound():
    quats = np.vstack([random_quats(100_000), axis_quats()])
    back = v2.unpack_rotations(v2.pack_rotations(quats))
    err = angle_deg(quats, back)
    assert err.max() <= 0.5
    assert err.max() <= 0.25  # the bound codec_v2's docstring and docs/protocol.md state
    assert np.allclose(np.linalg.norm(back, axis=1), 1.0)


def test_position_error_is_within_a_millimetre_inside_the_grid_and_clamped_outside():
    low = np.array(GRID.origin)
    inside = rng.uniform(low, low + 65.535, size=(100_000, 3))
    back = GRID.position(GRID.quantize(inside))
    assert np.abs(back - inside).max() <= 0.0005 + 1e-9
    outside = np.array([[100.0, 80.0, -100.0]])
    clamped = GRID.position(GRID.quantize(outside))
    assert clamped[0].tolist() == pytest.approx([GRID.origin[0] + 65.535, GRID.origin[1] + 65.535, GRID.origin[2]])


def test_a_sample_lab_gets_a_millimetre_grid_around_all_its_content():
    scene = Scene.from_processed(processed("chemistry-bench").server, 1, "")
    grid = v2.Grid.for_scene(scene)
    assert grid.step == (0.001, 0.001, 0.001)
    for obj in scene.objects:
        for axis in range(3):
            assert grid.origin[axis] < obj.transform[axis] < grid.origin[axis] + 65.535


def test_a_huge_lab_gets_a_coarser_grid_that_still_covers_it():
    from dataclasses import replace

    scene = Scene.from_processed(processed("chemistry-bench").server, 1, "")
    far = replace(scene, spawn_points=(*scene.spawn_points, (5000.0, 0.0, -3000.0, 0.0)))
    grid = v2.Grid.for_scene(far)
    assert grid.step[0] > 0.001 and grid.step[1] == 0.001
    assert grid.origin[0] < 0 and grid.origin[0] + 65535 * grid.step[0] > 5000
    back = grid.position(grid.quantize(np.array([[5000.0, 1.0, -3000.0]])))
    assert np.abs(back - [5000.0, 1.0, -3000.0]).max() <= max(grid.step) / 2 + 1e-9


def pose21(head: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.concatenate([head, left, right])


def test_client_pose_round_trip_with_and_without_hands():
    head = np.array([1.0, 1.6, -2.0, *random_quats(1)[0]])
    left = np.array([0.8, 1.1, -1.8, *random_quats(1)[0]])
    right = np.array([1.2, 1.1, -1.8, *random_quats(1)[0]])
    for flags, size in ((0, 16), (p.FLAG_LEFT_TRACKED, 26), (p.FLAG_RIGHT_TRACKED, 26), (3, 36)):
        data = v2.encode_pose_v2(pose21(head, left, right), 1234, flags, GRID)
        assert len(data) == size
        assert isinstance(p.decode_binary(data), p.PoseFrameV2)
        got_flags, stamp, pose = v2.decode_pose_v2(data, GRID)
        assert (got_flags, stamp) == (flags, 1234)
        assert np.abs(pose[:3] - head[:3]).max() <= 0.0005 + 1e-9
        for i, (hand, bit) in enumerate(((left, 1), (right, 2))):
            expect = hand if flags & bit else head
            assert np.abs(pose[7 * (i + 1) : 7 * (i + 1) + 3] - expect[:3]).max() <= 0.0005 + 1e-9


def test_tick_round_trip_keeps_records_and_omits_untracked_hands():
    n = 30
    poses = np.zeros(n, p.POSE_RECORD)
    poses["slot"] = np.arange(n) * 3
    poses["flags"] = np.arange(n) % 4
    poses["stamp"] = np.arange(n) * 1000
    floats = poses["pose"].reshape(n, 3, 7)
    floats[:, :, :3] = rng.uniform((-10, -1.5, -10), (10, 10, 10), size=(n, 3, 3))
    floats[:, :, 3:] = random_quats(3 * n).reshape(n, 3, 4)
    objects = np.zeros(4, p.OBJECT_RECORD)
    objects["object"] = np.arange(4)
    objects["holder"] = [p.NO_HOLDER, 3, p.NO_HOLDER, 6]
    objects["transform"][:, :3] = rng.uniform(-5, 5, size=(4, 3))
    objects["transform"][:, 3:] = random_quats(4)
    data = v2.encode_tick_v2(77, 12, poses, objects, GRID)
    hands = int(sum(bin(f).count("1") for f in poses["flags"]))
    assert len(data) == 14 + 17 * n + 10 * hands + 14 * 4
    frame = v2.decode_tick_v2(data, GRID)
    assert (frame.tick, frame.event_seq, frame.full) == (77, 12, False)
    assert frame.poses["slot"].tolist() == poses["slot"].tolist()
    assert frame.poses["stamp"].tolist() == poses["stamp"].tolist()
    got = frame.poses["pose"].reshape(n, 3, 7)
    for i in range(n):
        for part in range(3):
            tracked = part == 0 or poses["flags"][i] & (1 << (part - 1))
            expect = floats[i, part] if tracked else floats[i, 0]
            assert np.abs(got[i, part, :3] - expect[:3]).max() <= 0.0005 + 1e-6
            assert angle_deg(got[i, part, 3:][None], expect[3:][None].astype(float))[0] <= 0.5
    assert frame.objects["holder"].tolist() == objects["holder"].tolist()
    with pytest.raises(p.ProtocolError):
        v2.decode_tick_v2(data[:-1], GRID)
    with pytest.raises(p.ProtocolError):
        v2.decode_tick_v2(data + b"\0", GRID)


def block(position: tuple[int, int, int], rotation: int) -> bytes:
    return np.array([(position, rotation)], v2.BLOCK).tobytes()


@pytest.mark.parametrize(
    "frame, code",
    [
        (b"\x03\x01" + b"\0" * 4 + block((1, 2, 3), (3 << 30) | (512 << 20) | (512 << 10) | 512), p.ErrorCode.BAD_BINARY),  # says left, has none
        (b"\x03\x04" + b"\0" * 4 + block((1, 2, 3), (3 << 30) | (512 << 20) | (512 << 10) | 512), p.ErrorCode.BAD_BINARY),  # unknown flag
        (b"\x03\x00" + b"\0" * 4 + b"\0" * 9, p.ErrorCode.BAD_BINARY),
    ],
)
def test_malformed_client_frames_are_refused_with_a_reason(frame, code):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_binary(frame)
    assert info.value.code == code
    assert info.value.message


BAD_ROTATIONS = [0, (3 << 30) | (1023 << 20) | (1023 << 10) | 1023]  # a component code 0; three that overflow a unit


def test_rotations_no_encoder_makes_are_refused_at_the_tick_with_the_rest_staged():
    staged = v2.Staged(4)
    good = v2.encode_pose_v2(np.array([0.0, 1.6, 0.0, 0, 0, 0, 1] * 3), 5, 2, GRID)
    for slot, rotation in ((1, BAD_ROTATIONS[0]), (2, BAD_ROTATIONS[1])):
        frame = b"\x03\x00" + b"\0" * 4 + block((1, 2, 3), rotation)
        assert isinstance(p.decode_binary(frame), p.PoseFrameV2)  # well formed: its values are judged at the tick
        staged.put(slot, frame)
    staged.put(3, good)
    slots, rows, ok = staged.take(GRID)
    assert slots.tolist() == [1, 2, 3] and ok.tolist() == [False, False, True]
    assert rows["stamp"][2] == 5 and rows["flags"][2] == 2
    assert np.abs(rows["pose"][2][[0, 1, 2, 14, 15, 16]] - [0, 1.6, 0, 0, 1.6, 0]).max() <= 0.0005 + 1e-6
    assert rows["pose"][2][7:10].tolist() == rows["pose"][2][0:3].tolist()  # the untracked left hand: the head's
    assert not staged.pending.any()


def test_identity_is_encoded_as_w_largest():
    packed = v2.pack_rotations(np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, -1.0]]))
    assert (packed >> 30).tolist() == [3, 3]
    assert np.allclose(v2.unpack_rotations(packed), [[0, 0, 0, 1], [0, 0, 0, 1]])
    assert math.isclose(float(np.linalg.norm(v2.unpack_rotations(packed)[0])), 1.0)
