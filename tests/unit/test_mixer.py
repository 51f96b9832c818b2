"""The spatial mixer's gains and mix, with no sockets: direction, distance, mute, zones, broadcast."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime.audio import mixer as m
from scenes.model import Zone

IDENTITY = [0.0, 0.0, 0.0, 1.0]
SPEAK = m.MAY_SPEAK


def room(positions: list[list[float]], quats: list[list[float]] | None = None, flags: list[int] | None = None,
         zones: list[int] | None = None) -> tuple[np.ndarray, ...]:
    n = len(positions)
    return (
        np.array(positions, np.float32),
        np.array(quats or [IDENTITY] * n, np.float32),
        np.array(flags or [SPEAK] * n, np.uint8),
        np.array(zones or [m.NO_ZONE] * n, np.int16),
    )


def gains_for(*state: np.ndarray, model: m.Attenuation = m.Attenuation()) -> np.ndarray:
    n = len(state[0])
    everyone = np.arange(n)
    return m.gains(*state, everyone, everyone, model)


def yaw(degrees: float) -> list[float]:
    """Rotation about +y (turning left for positive angles in WebXR's frame)."""
    half = math.radians(degrees) / 2
    return [0.0, math.sin(half), 0.0, math.cos(half)]


def test_speaker_on_the_left_is_heard_on_the_left() -> None:
    g = gains_for(*room([[0, 1.6, 0], [-2, 1.6, 0], [2, 1.6, 0]]))
    assert g[0, 0, 1] > 0.1 and g[0, 1, 1] == pytest.approx(0, abs=1e-6)
    assert g[0, 1, 2] > 0 and g[0, 0, 2] == pytest.approx(0, abs=1e-6)


def test_speaker_ahead_is_centred_with_equal_power() -> None:
    g = gains_for(*room([[0, 1.6, 0], [0, 1.6, -1]]))
    assert g[0, 0, 1] == pytest.approx(math.cos(math.pi / 4), rel=1e-5)
    assert g[0, 0, 1] == pytest.approx(g[0, 1, 1], rel=1e-5)
    # equal power anywhere around the head
    for x, z in [(-1, 0), (1, -1), (0.3, 0.7), (-0.5, -0.5)]:
        g = gains_for(*room([[0, 0, 0], [x, 0, z]]),
                      model=m.Attenuation(ref_distance=5))
        assert g[0, 0, 1] ** 2 + g[0, 1, 1] ** 2 == pytest.approx(1.0, rel=1e-5)


def test_direction_follows_the_head_rotation() -> None:
    # turned around (facing +z), the speaker at -x is on the listener's right
    g = gains_for(*room([[0, 0, 0], [-2, 0, 0]], quats=[yaw(180), IDENTITY]))
    assert g[0, 1, 1] > 0.1 and g[0, 0, 1] == pytest.approx(0, abs=1e-5)
    # turned 90 degrees left (facing -x), the speaker at -x is straight ahead
    g = gains_for(*room([[0, 0, 0], [-2, 0, 0]], quats=[yaw(90), IDENTITY]))
    assert g[0, 0, 1] == pytest.approx(g[0, 1, 1], rel=1e-4)


def test_inverse_distance_attenuation_with_reference_and_max() -> None:
    model = m.Attenuation(ref_distance=1.0, rolloff=1.0, max_distance=10.0)
    g = gains_for(*room([[0, 0, 0], [0, 0, -0.5], [0, 0, -2], [0, 0, -4], [0, 0, -10], [0, 0, -50]]), model=model)
    power = g[0, 0] ** 2 + g[0, 1] ** 2
    level = np.sqrt(power)
    assert level[1] == pytest.approx(1.0)  # inside the reference distance: full level
    assert level[2] == pytest.approx(0.5)  # ref / (ref + rolloff * (2 - ref))
    assert level[3] == pytest.approx(0.25)
    assert level[4] == pytest.approx(0.1)
    assert level[5] == pytest.approx(0.1)  # clamped at max distance
    assert level[0] == 0  # nobody hears themselves


def test_muted_and_voiceless_speakers_are_silent() -> None:
    g = gains_for(*room([[0, 0, 0], [1, 0, 0], [-1, 0, 0]], flags=[SPEAK, SPEAK | m.MUTED, 0]))
    assert not g[:, :, 1].any() and not g[:, :, 2].any()
    assert g[1, :, 0].any()  # the muted one still hears


def test_zones_isolate_and_broadcast_reaches_every_zone() -> None:
    state = room([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], zones=[0, 0, 1, m.NO_ZONE])
    g = gains_for(*state)
    assert g[0, :, 1].any() and g[1, :, 0].any()
    assert not g[0, :, 2].any() and not g[2, :, 0].any() and not g[3, :, 0].any() and not g[0, :, 3].any()
    positions, quats, flags, zones = state
    flags[3] |= m.BROADCAST
    g = gains_for(positions, quats, flags, zones)
    for listener in range(3):
        assert g[listener, 0, 3] == pytest.approx(math.cos(math.pi / 4)) == pytest.approx(g[listener, 1, 3])
    flags[3] |= m.MUTED  # broadcast trumps zones and distance, not mute
    assert not gains_for(positions, quats, flags, zones)[:, :, 3].any()


def test_zone_of_boxes_spheres_and_outside() -> None:
    zones = [Zone("bench", "box", (0, 1, -1), (2.4, 0.3, 0.9)), Zone("ball", "sphere", (5, 0, 0), radius=1.0)]
    at = np.array([[0, 1, -1], [1.1, 0.9, -1.4], [5.5, 0.5, 0], [0, 1.6, -1], [9, 9, 9]], np.float32)
    assert m.zone_of(at, zones).tolist() == [0, 0, 1, m.NO_ZONE, m.NO_ZONE]


def test_mix_is_one_matmul_to_interleaved_float() -> None:
    t = np.arange(m.FRAME_SAMPLES) / m.SAMPLE_RATE
    frames = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    g = np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 2.0], [0.0, 0.0]]], np.float32)
    out = m.mix(g, frames)
    assert out.shape == (2, m.FRAME_SAMPLES, 2) and out.dtype == np.float32 and out[0].flags.c_contiguous
    assert np.allclose(out[0, :, 0], frames[0], atol=1e-6)
    assert np.allclose(out[0, :, 1], frames[1], atol=1e-6)
    assert out[1, :, 0].max() == 1.0 and not out[1, :, 1].any()  # clipped
    assert m.levels(frames) == pytest.approx([0.5 / math.sqrt(2)] * 2, rel=1e-2)
