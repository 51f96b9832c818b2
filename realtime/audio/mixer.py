"""The spatial mix, as pure numpy: gains from poses, roles, mute, zones and broadcast.

Sans-I/O like the room: no sockets, no clock, no aiortc. The media worker calls
``gains()`` each 20 ms with the latest head poses and ``mix()`` once per tick for
every listener of a room at once:

    out[listeners, 2, samples] = gains[listeners, 2, speakers] @ frames[speakers, samples]

(computed interleaved, as out[listeners, samples, 2], for the encoder)

Conventions follow WebXR (y up, -z forward, +x right) and the Web Audio API's
"inverse" distance model, so a browser client panning locally would sound the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from scenes.model import Zone

SAMPLE_RATE = 48_000
#: samples per 20 ms frame at 48 kHz: the mix tick and one Opus frame
FRAME_SAMPLES = 960
#: zone index of a participant outside every zone (they share one common space)
NO_ZONE = -1

#: Voice flags per participant (realtime.audio.ipc carries them in the pose message).
MUTED = 0x01  # self-muted or muted by the teacher: contributes nothing
BROADCAST = 0x02  # teacher broadcast: heard by everyone, full level, centred
MAY_SPEAK = 0x04  # the role may send voice (roles.Action.VOICE)


@dataclass(frozen=True)
class Attenuation:
    """Distance model (Web Audio's "inverse"): gain = ref / (ref + rolloff * (d - ref)),
    with d clamped to [ref_distance, max_distance]."""

    ref_distance: float = 1.0
    rolloff: float = 1.0
    max_distance: float = 20.0


def zone_of(positions: np.ndarray, zones: Sequence[Zone]) -> np.ndarray:
    """Index of the first zone that contains each position (N, 3), or NO_ZONE."""
    out = np.full(len(positions), NO_ZONE, np.int16)
    free = np.ones(len(positions), bool)
    for index, zone in enumerate(zones):
        offset = positions - np.asarray(zone.center, np.float32)
        if zone.shape == "sphere" and zone.radius is not None:
            inside = np.einsum("ij,ij->i", offset, offset) <= zone.radius * zone.radius
        elif zone.size is not None:
            inside = (np.abs(offset) <= np.asarray(zone.size, np.float32) / 2).all(axis=1)
        else:
            continue
        hit = inside & free
        out[hit] = index
        free &= ~inside
    return out


def _right_axes(quats: np.ndarray) -> np.ndarray:
    """Each listener's right (+x) axis in the lab frame, from unit quaternions (L, 4; x, y, z, w):
    the first column of the rotation matrix. Panning needs only the speaker's offset along it."""
    x, y, z, w = quats[:, 0], quats[:, 1], quats[:, 2], quats[:, 3]
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=1)


def gains(
    positions: np.ndarray,
    quats: np.ndarray,
    flags: np.ndarray,
    zones: np.ndarray,
    listeners: np.ndarray,
    speakers: np.ndarray,
    model: Attenuation = Attenuation(),
) -> np.ndarray:
    """Stereo gains (len(listeners), 2, len(speakers)), float32.

    ``positions`` (N, 3), ``quats`` (N, 4), ``flags`` (N,) and ``zones`` (N,) are
    indexed by participant slot; ``listeners`` and ``speakers`` are slot indices.
    Nobody hears themselves. A broadcasting speaker reaches every listener at
    full level, centred (equal power: cos(pi/4) each side) unless muted. Otherwise a speaker is
    heard only if it may speak, is not muted and shares the listener's zone; its
    level falls off with distance and it is panned with equal power by its
    direction in the listener's head frame (+x is the listener's right).
    """
    n_l, n_s = len(listeners), len(speakers)
    out = np.zeros((n_l, 2, n_s), np.float32)
    if not n_l or not n_s:
        return out
    delta = (positions[speakers][None, :, :] - positions[listeners][:, None, :]).astype(np.float32)  # (L, S, 3)
    dist = np.sqrt(np.einsum("lsk,lsk->ls", delta, delta))  # turning the head changes no distance
    right = _right_axes(quats[listeners].astype(np.float32))
    lateral = np.divide(np.einsum("lk,lsk->ls", right, delta), dist, out=np.zeros_like(dist), where=dist > 1e-6)
    d = np.clip(dist, model.ref_distance, model.max_distance)
    level = model.ref_distance / (model.ref_distance + model.rolloff * (d - model.ref_distance))

    s_flags = flags[speakers]
    voiced = ((s_flags & MAY_SPEAK) != 0) & ((s_flags & MUTED) == 0)
    audible = voiced[None, :] & (zones[speakers][None, :] == zones[listeners][:, None])
    level = np.where(audible, level, 0.0)
    broadcast = np.broadcast_to(((s_flags & BROADCAST) != 0) & voiced, level.shape)
    level = np.where(broadcast, 1.0, level)
    lateral = np.where(broadcast, 0.0, lateral)
    level = np.where(listeners[:, None] == speakers[None, :], 0.0, level)

    angle = (lateral + 1.0) * (np.pi / 4)  # -1 (left) .. +1 (right) -> 0 .. pi/2
    out[:, 0, :] = level * np.cos(angle)
    out[:, 1, :] = level * np.sin(angle)
    return out


def mix(gain: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Every listener's stereo frame in one step: (samples, S) @ (L, S, 2) -> float32 (L, samples, 2).

    The same product as gains @ frames, laid out interleaved (left, right per
    sample) so each listener's row goes to the Opus encoder as it is; sums beyond
    full scale are clipped.
    """
    mixed = np.matmul(frames.T, gain.transpose(0, 2, 1))  # (L, samples, 2), C-contiguous
    np.clip(mixed, -1.0, 1.0, out=mixed)
    return mixed


def levels(frames: np.ndarray) -> np.ndarray:
    """Voice-activity level per speaker frame (S, samples): RMS in 0..1."""
    if not len(frames):
        return np.zeros(0, np.float32)
    return np.sqrt(np.einsum("ij,ij->i", frames, frames) / frames.shape[1]).astype(np.float32)
