"""Opus encode and decode through libopus itself, for the mix tick's hot loop.

PyAV's codec wrapper costs about as much again as libopus for one 20 ms frame
(frame and packet objects, FFmpeg's queues and copies: measured here 140-200 µs
per stereo encode through PyAV against 50-85 µs calling libopus), and the mix
encodes one frame per listener per tick. So the worker calls the five libopus
functions it needs through ctypes, on numpy buffers, with no copies.

The library is the system's libopus if there is one (Debian's libopus0: about a
third fewer instructions per encode than the copy in PyAV's wheel, measured with
callgrind), else the libopus that PyAV's wheel ships (PyAV is a dependency
through aiortc), so there is nothing to install either way. ``LIBRARY`` names the
one loaded; /healthz reports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48_000
#: the largest Opus packet (RFC 6716: 120 ms of frames at most, 1275 bytes each)
MAX_PACKET = 1275 * 3 + 7
#: the most samples one packet decodes to, per channel (120 ms at 48 kHz)
MAX_FRAME_SAMPLES = SAMPLE_RATE * 120 // 1000

_APPLICATION_RESTRICTED_LOWDELAY = 2051
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010


class OpusError(RuntimeError):
    """libopus refused a call (bad packet, bad setting)."""


def _find_library() -> str:
    """The system's libopus, else the copy bundled in PyAV's wheel."""
    found = ctypes.util.find_library("opus")
    if found is not None:
        return found
    try:
        files = importlib.metadata.files("av") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if Path(str(file)).name.startswith("libopus"):
            return str(file.locate())
    raise OSError("libopus not found: install the system's libopus (Debian: libopus0) or PyAV from its wheel")


LIBRARY = _find_library()
_lib = ctypes.CDLL(LIBRARY)
_lib.opus_strerror.restype = ctypes.c_char_p
_lib.opus_strerror.argtypes = [ctypes.c_int]
_lib.opus_encoder_create.restype = ctypes.c_void_p
_lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
_lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
_lib.opus_encoder_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32]
_lib.opus_encode_float.restype = ctypes.c_int32
_lib.opus_encode_float.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
_lib.opus_decoder_create.restype = ctypes.c_void_p
_lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
_lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
_lib.opus_decode_float.restype = ctypes.c_int
_lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]


def _check(code: int, what: str) -> int:
    if code < 0:
        raise OpusError(f"{what}: {_lib.opus_strerror(code).decode()}")
    return code


class Encoder:
    """A stereo Opus encoder in CELT-only "restricted low delay" mode (2.5 ms look-ahead)."""

    def __init__(self, bitrate: int, complexity: int) -> None:
        error = ctypes.c_int()
        self._state = _lib.opus_encoder_create(SAMPLE_RATE, 2, _APPLICATION_RESTRICTED_LOWDELAY, ctypes.byref(error))
        _check(error.value, "opus_encoder_create")
        self.set_bitrate(bitrate)
        self.set_complexity(complexity)
        self._out = ctypes.create_string_buffer(MAX_PACKET)

    def set_bitrate(self, bitrate: int) -> None:
        """Target bit rate (bit/s, 500..512000); takes effect from the next frame, the stream
        goes on: an Opus decoder takes each packet at whatever size it comes."""
        _check(_lib.opus_encoder_ctl(self._state, _SET_BITRATE, bitrate), "bitrate")

    def set_complexity(self, complexity: int) -> None:
        """libopus complexity 0..10; may change between any two frames."""
        _check(_lib.opus_encoder_ctl(self._state, _SET_COMPLEXITY, complexity), "complexity")

    def encode(self, pcm: np.ndarray) -> bytes:
        """One packet from interleaved float32 stereo ``pcm`` of shape (samples, 2), C-contiguous."""
        if pcm.dtype != np.float32 or pcm.ndim != 2 or pcm.shape[1] != 2 or not pcm.flags.c_contiguous:
            raise ValueError("the encoder takes C-contiguous float32 samples of shape (n, 2)")
        size = _lib.opus_encode_float(self._state, pcm.ctypes.data, pcm.shape[0], self._out, MAX_PACKET)
        return self._out.raw[: _check(size, "opus_encode_float")]

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            _lib.opus_encoder_destroy(self._state)


class Decoder:
    """A mono Opus decoder: a stereo sender is downmixed by libopus."""

    def __init__(self) -> None:
        error = ctypes.c_int()
        self._state = _lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        _check(error.value, "opus_decoder_create")

    def decode(self, payload: bytes, out: np.ndarray) -> int:
        """Decode one packet into the start of float32 ``out``; returns the samples written.

        ``out`` must hold MAX_FRAME_SAMPLES, the longest packet Opus allows.
        """
        if out.dtype != np.float32 or len(out) < MAX_FRAME_SAMPLES or not out.flags.c_contiguous:
            raise ValueError(f"the decoder needs a C-contiguous float32 buffer of {MAX_FRAME_SAMPLES} samples")
        samples = _lib.opus_decode_float(self._state, payload, len(payload), out.ctypes.data, MAX_FRAME_SAMPLES, 0)
        return _check(samples, "opus_decode_float")

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            _lib.opus_decoder_destroy(self._state)
