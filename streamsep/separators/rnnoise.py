"""RNNoise (Xiph, v0.2) through the C library shipped by the PyPI package ``pyrnnoise``.

The shared library is loaded with ctypes directly (located through ``importlib.metadata``, without
importing ``pyrnnoise``, whose package import pulls in ``audiolab``), so that this module controls
the per-frame call ``rnnoise_process_frame(st, out, in)``: 480 float32 samples at 48 kHz in int16
range (the block is scaled by 32768 on the way in and back on the way out); it returns the frame's
voice-activity probability.

State memory.  ``DenoiseState`` in RNNoise v0.2 (src/denoise.c) is a flat struct: the network's
layer descriptors (``RNNoise model``: pointers to the *static, read-only* weight tables compiled
into the library, not owned by the state), an ``int arch``, and only inline float arrays
(analysis/synthesis memories, pitch buffers, band gains, GRU/conv states in ``RNNState``, the
one-frame-delayed spectrum).  ``rnnoise_destroy`` is a bare ``free``.  So the struct may be copied
byte for byte: a copy shares only the immutable weights.  (RNNoise 0.1 was different: its
``RNNState`` held ``calloc``'d GRU state arrays, which a byte copy would alias.)

We therefore keep the states of ``B`` streams as the rows of one numpy ``uint8`` array
(B, sizeof(DenoiseState)) initialised from a template made once by ``rnnoise_create(NULL)``.
Python owns that memory, so nothing can leak; fork/select are numpy ``repeat``/``take`` and always
make fresh copies (no two rows ever share memory).  ``rnnoise_create`` costs about 90 µs a state on
this machine (weight-table lookup), a row copy about 1.5 µs, which matters when the engine forks
tens of candidates per block.

Latency: the library overlap-adds 960-sample windows at a 480 hop (480 samples) and applies each
frame's gains to the *previous* frame's spectrum (``delayed_X``, one more hop): 960 samples, 20 ms,
measured by cross-correlation on real speech (see ``tests/test_rnnoise.py``).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from streamsep.separators.base import Separator, TensorState

FRAME = 480  #: samples per RNNoise frame at 48 kHz (10 ms)
SAMPLE_RATE = 48000  #: Hz
SCALE = 32768.0  #: float [-1, 1) ↔ int16 range expected by the library
LATENCY = 960  #: samples, measured (480 OLA + 480 one-frame gain delay)


class RNNoiseLibraryError(RuntimeError):
    """The RNNoise shared library from ``pyrnnoise`` is missing or does not behave as expected."""


def rnnoise_library_path() -> Path:
    """Path of ``librnnoise.so`` inside the installed ``pyrnnoise`` package."""
    try:
        files = importlib.metadata.files("pyrnnoise") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RNNoiseLibraryError("RNNoise library not found: install the PyPI package 'pyrnnoise'") from exc
    names = {"librnnoise.so", "librnnoise.dylib", "rnnoise.dll"}
    for f in files:
        if f.name in names:
            p = Path(f.locate())
            if p.is_file():
                return p
    raise RNNoiseLibraryError("librnnoise missing from the installed 'pyrnnoise' package")


_LIB: ctypes.CDLL | None = None
_TEMPLATE: np.ndarray | None = None


def rnnoise_lib() -> ctypes.CDLL:
    """The loaded library with argument/return types declared (loaded once per process)."""
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(rnnoise_library_path()))
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_size.argtypes = []
        lib.rnnoise_get_size.restype = ctypes.c_int
        lib.rnnoise_get_frame_size.argtypes = []
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != FRAME:
            raise RNNoiseLibraryError(f"librnnoise frame size {lib.rnnoise_get_frame_size()} != {FRAME}")
        _LIB = lib
    return _LIB


def state_template() -> np.ndarray:
    """The bytes of a freshly initialised ``DenoiseState`` (default model), read-only."""
    global _TEMPLATE
    if _TEMPLATE is None:
        lib = rnnoise_lib()
        size = lib.rnnoise_get_size()
        st = lib.rnnoise_create(None)
        if not st:
            raise RNNoiseLibraryError("rnnoise_create(NULL) failed")
        try:
            tpl = np.empty(size, dtype=np.uint8)
            ctypes.memmove(tpl.ctypes.data, st, size)
        finally:
            lib.rnnoise_destroy(st)
        tpl.setflags(write=False)
        _TEMPLATE = tpl
    return _TEMPLATE


class RNNoiseState(TensorState):
    """States of ``B`` streams: raw ``DenoiseState`` bytes (B, size) and last VAD (B,) float32."""

    @property
    def raw(self) -> np.ndarray:
        """(B, sizeof(DenoiseState)) uint8, one C struct per row."""
        return self.tensors[0]

    @property
    def vad(self) -> np.ndarray:
        """(B,) float32: voice-activity probability of each stream's last frame (NaN: poisoned)."""
        return self.tensors[1]

    def fork(self, copies: int) -> RNNoiseState:
        t = super().fork(copies)
        return RNNoiseState(t.tensors, t.batch_axis, t.extra)

    def select(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> RNNoiseState:
        t = super().select(index)
        return RNNoiseState(t.tensors, t.batch_axis, t.extra)

    def copy(self) -> RNNoiseState:
        """A deep copy (fresh C structs)."""
        return RNNoiseState([self.raw.copy(), self.vad.copy()], [0, 0], dict(self.extra))


class RNNoise(Separator):
    """RNNoise v0.2 (C, from ``pyrnnoise``): 48 kHz, 10 ms hop, 20 ms latency, waveform separator."""

    name = "rnnoise"
    sample_rate = SAMPLE_RATE
    hop = FRAME
    latency = LATENCY
    frame_domain = False
    description = "RNNoise v0.2 (Xiph), C library from pyrnnoise, 48 kHz"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        if self.device.type != "cpu":
            raise ValueError(f"RNNoise runs on the CPU only, not on '{self.device}'")
        self._lib = rnnoise_lib()
        self._process_frame = self._lib.rnnoise_process_frame
        self._template = state_template()
        self.state_size = int(self._template.size)

    def new_state(self, batch: int) -> RNNoiseState:
        """Fresh states for ``batch`` streams (copies of the library's initial state)."""
        if batch < 0:
            raise ValueError(f"batch must be >= 0, not {batch}")
        raw = np.repeat(self._template[None, :], batch, axis=0)
        return RNNoiseState([raw, np.zeros(batch, dtype=np.float32)], [0, 0])

    def process(self, x: np.ndarray, state: RNNoiseState) -> tuple[np.ndarray, RNNoiseState]:
        """Denoise ``x`` (B, n·480) float32 at 48 kHz → (B, n·480), delayed by 960 samples.

        The input state is left untouched; the returned state is a fresh copy advanced by n frames.
        """
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"RNNoise.process expects (batch, samples), got shape {x.shape}")
        B, N = x.shape
        if N % FRAME:
            raise ValueError(f"block of {N} samples is not a multiple of hop {FRAME}")
        if not isinstance(state, RNNoiseState) or state.raw.shape != (B, self.state_size):
            shape = getattr(getattr(state, "raw", None), "shape", None)
            raise ValueError(f"RNNoise state for batch {B} expected, got {type(state).__name__} {shape}")
        new = state.copy()
        xs = np.multiply(x, SCALE, dtype=np.float32)  # one allocation per call, C-contiguous
        y = np.empty_like(xs)
        vad = new.vad
        frame_bytes = FRAME * 4
        pf = self._process_frame
        raw_base, stride = new.raw.ctypes.data, new.raw.strides[0]
        x_base, y_base, row = xs.ctypes.data, y.ctypes.data, xs.strides[0]
        for b in range(B):
            st = raw_base + b * stride
            xi, yi = x_base + b * row, y_base + b * row
            p = 0.0
            for off in range(0, N * 4, frame_bytes):
                p = pf(st, yi + off, xi + off)
            if N:
                vad[b] = p
        y *= 1.0 / SCALE
        if N and not np.isfinite(y).all():  # mark poisoned streams so state_is_finite() reports them
            vad[~np.isfinite(y).all(axis=1)] = np.nan
        return y, new


def reference_rtf(x48k: np.ndarray) -> float:
    """Real-time factor of pyrnnoise's own per-frame loop (``process_mono_frame``) on ``x48k``.

    ``x48k``: mono float signal in [-1, 1] at 48 kHz.  Returns processing seconds per audio second
    (only whole 480-sample frames are processed).
    """
    from pyrnnoise.rnnoise import create, destroy, process_mono_frame

    x = np.asarray(x48k, dtype=np.float32).reshape(-1)
    n = (len(x) // FRAME) * FRAME
    if n == 0:
        raise ValueError(f"signal of {len(x)} samples is shorter than one RNNoise frame ({FRAME})")
    x = np.clip(x[:n], -1.0, 1.0)
    st = create()
    try:
        t0 = time.perf_counter()
        for i in range(0, n, FRAME):
            process_mono_frame(st, x[i : i + FRAME])
        elapsed = time.perf_counter() - t0
    finally:
        destroy(st)
    return elapsed / (n / SAMPLE_RATE)
