"""Speech-quality metrics: SI-SDR, wide-band PESQ, STOI and DNSMOS (SIG/BAK/OVRL).

Every metric takes 1-D float arrays; intrusive ones take ``(estimate, reference)`` and trim both
to the shorter length.  Rates are in Hz; inputs at a rate a metric does not use natively are
resampled with soxr first (PESQ and DNSMOS work at 16 kHz; STOI's 10 kHz conversion is left to
pystoi).  Scores: SI-SDR in dB, PESQ as MOS-LQO (about 1.0–4.64), STOI in [0, 1], DNSMOS as MOS
(1–5).

Undefined cases return NaN instead of raising, so batch evaluation never dies half-way:
SI-SDR of an all-zero (or constant) reference, PESQ when the pesq library finds no utterance,
STOI when pystoi finds fewer than 30 non-silent frames.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from streamsep.audio_io import align, resample
from streamsep.catalogue import INTRUSIVE_METRICS

__all__ = ["si_sdr", "pesq_wb", "stoi", "DNSMOS", "DNSMOSUnavailable", "dnsmos", "evaluate", "METRICS"]

#: metric names accepted by :func:`evaluate`
METRICS = INTRUSIVE_METRICS + ("dnsmos",)
PESQ_RATE = 16000


def _signal(x: np.ndarray, name: str) -> np.ndarray:
    """Validate a 1-D, non-empty, finite signal; return it as float64."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D signal, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: empty signal")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return x


def _pair(est: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return align(_signal(est, "estimate"), _signal(ref, "reference"))


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio of ``est`` against ``ref`` (dB).

    Both signals are made zero-mean; ``est`` is projected on ``ref``.  Returns NaN for a reference
    with no energy (all zero or constant), −inf for an estimate with no energy, +inf when ``est``
    is an exact scaled copy of ``ref``.
    """
    est, ref = _pair(est, ref)
    est = est - est.mean()
    ref = ref - ref.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        return float("nan")
    if float(np.dot(est, est)) == 0.0:
        return float("-inf")
    target = (np.dot(est, ref) / ref_energy) * ref
    noise = est - target
    t, n = float(np.dot(target, target)), float(np.dot(noise, noise))
    if n == 0.0:
        return float("inf")
    if t == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(t / n))


def _at_rate(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    return x if rate == target else resample(x.astype(np.float32), rate, target).astype(np.float64)


def pesq_wb(est: np.ndarray, ref: np.ndarray, rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, package ``pesq``, mode 'wb') of ``est`` against ``ref``.

    Both signals are resampled to 16 kHz first.  Returns NaN when the pesq library reports that
    it found no utterance (``NoUtterancesError``, e.g. silence) and for two all-zero signals;
    other pesq errors (e.g. ``BufferTooShortError`` under about 0.25 s) propagate.
    """
    import pesq

    est, ref = _pair(est, ref)
    est, ref = align(_at_rate(est, rate, PESQ_RATE), _at_rate(ref, rate, PESQ_RATE))
    if not (ref.any() or est.any()):  # pesq would divide by a zero peak and find nothing
        return float("nan")
    try:
        return float(pesq.pesq(PESQ_RATE, ref, est, "wb", on_error=pesq.PesqError.RAISE_EXCEPTION))
    except pesq.NoUtterancesError:
        return float("nan")


def stoi(est: np.ndarray, ref: np.ndarray, rate: int) -> float:
    """Short-time objective intelligibility (pystoi, classic STOI) of ``est`` against ``ref``.

    pystoi resamples to its native 10 kHz itself.  Returns NaN where pystoi would warn and return
    its 1e-5 placeholder (fewer than 30 frames left after removing silent frames).
    """
    from pystoi import stoi as _stoi

    est, ref = _pair(est, ref)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref, est, int(rate), extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    return value


# --------------------------------------------------------------------------------------------
# DNSMOS


class DNSMOSUnavailable(RuntimeError):
    """The DNSMOS ONNX model (shipped by the PyPI package ``speechmos``) cannot be found."""


def dnsmos_model_path() -> Path:
    """Path of ``speechmos/dnsmos_models/sig_bak_ovr.onnx``, found without importing speechmos."""
    try:
        files = importlib.metadata.files("speechmos") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise DNSMOSUnavailable("DNSMOS needs the PyPI package 'speechmos' (pip install speechmos)") from err
    for f in files:
        if f.as_posix().endswith("dnsmos_models/sig_bak_ovr.onnx") and "pdnsmos" not in f.as_posix():
            path = Path(f.locate())
            if path.is_file():
                return path
    raise DNSMOSUnavailable("speechmos is installed but dnsmos_models/sig_bak_ovr.onnx is missing")


class DNSMOS:
    """Non-intrusive DNSMOS P.835 (SIG, BAK, OVRL), non-personalised, as speechmos computes it.

    Reproduces ``speechmos.dnsmos.DNSMOS.__call__`` for ``is_personalized_MOS=False``: audio at
    16 kHz; clips shorter than 9.01 s are repeated (doubled until long enough); windows of
    9.01 s (144 160 samples) every 1 s, ``int(floor(len/16000) − 9.01) + 1`` of them; the raw
    network outputs go through DNSMOS's polynomial calibration; the clip score is the mean over
    windows.

    Window quirk, kept for comparability: the reference code slices
    ``audio[int(idx·fs) : int((idx + 9.01)·fs)]`` and skips slices shorter than 144 160 samples;
    floating-point rounding makes windows 7–23 and 119–122 (of the first 200) one sample short, so they are
    skipped (a 31 s clip is scored on windows 0–6 only, of its 22; window 0 always survives).  Pass
    ``reference_windows=False`` to slice with integer arithmetic and use every window instead.
    The P.808 score is not computed (its model needs librosa mel features, and librosa
    is not a dependency).  Unlike speechmos, samples outside [-1, 1] are accepted.

    The model file is located at construction (:class:`DNSMOSUnavailable` if it is missing); one
    onnxruntime session (one intra-op thread) is created lazily on first use and shared;
    ``InferenceSession.run`` may be called from several threads.
    """

    SAMPLE_RATE = 16000
    INPUT_LENGTH = 9.01  # seconds
    # np.poly1d coefficients, highest power first (speechmos, non-personalised)
    POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)
    POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
    POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 1,
        reference_windows: bool = True,
        max_windows: int | None = None,
    ) -> None:
        # resolve the file now, so a missing model fails at construction (DNSMOSUnavailable)
        self.model_path = Path(model_path) if model_path is not None else dnsmos_model_path()
        if not self.model_path.is_file():
            raise DNSMOSUnavailable(f"{self.model_path}: DNSMOS model file not found")
        self.reference_windows = bool(reference_windows)
        #: score at most this many windows, evenly spread over the clip (None = every window, as
        #: speechmos does); short clips are repeated, so their windows are shifts of the same audio
        self.max_windows = max_windows
        self.threads = int(threads)
        self._session = None
        self._lock = threading.Lock()

    @property
    def session(self):
        """The onnxruntime session, created on first use."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    path = self.model_path
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = self.threads
                    opts.inter_op_num_threads = 1
                    self._session = ort.InferenceSession(
                        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
                    )
                    self._input = self._session.get_inputs()[0].name
        return self._session

    def _windows(self, x: np.ndarray, rate: int) -> list[np.ndarray]:
        audio = _signal(x, "audio")
        if rate != self.SAMPLE_RATE:
            audio = resample(audio.astype(np.float32), rate, self.SAMPLE_RATE)
        audio = audio.astype(np.float32)
        fs = self.SAMPLE_RATE
        len_samples = int(self.INPUT_LENGTH * fs)
        while len(audio) < len_samples:
            audio = np.append(audio, audio)
        num_hops = int(np.floor(len(audio) / fs) - self.INPUT_LENGTH) + 1
        out = []
        for idx in range(num_hops):
            if self.reference_windows:
                seg = audio[int(idx * fs) : int((idx + self.INPUT_LENGTH) * fs)]
            else:
                seg = audio[idx * fs : idx * fs + len_samples]
            if len(seg) < len_samples:
                continue
            out.append(seg)
        if self.max_windows and len(out) > self.max_windows:
            keep = np.unique(np.round(np.linspace(0, len(out) - 1, self.max_windows)).astype(int))
            out = [out[i] for i in keep]
        return out

    def window_scores(self, x: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        """Per-window scores: ``{"ovrl", "sig", "bak"}`` → float64 arrays, one value per window."""
        segs = self._windows(x, rate)
        sess = self.session
        raw = np.array([sess.run(None, {self._input: s[np.newaxis, :]})[0][0] for s in segs], dtype=np.float64).reshape(
            -1, 3
        )
        sig_raw, bak_raw, ovr_raw = raw[:, 0], raw[:, 1], raw[:, 2]
        return {
            "ovrl": np.polyval(self.POLY_OVRL, ovr_raw),
            "sig": np.polyval(self.POLY_SIG, sig_raw),
            "bak": np.polyval(self.POLY_BAK, bak_raw),
        }

    def __call__(self, x: np.ndarray, rate: int) -> dict[str, float]:
        """Clip scores ``{"ovrl", "sig", "bak"}`` (MOS, mean over 9.01 s windows)."""
        w = self.window_scores(x, rate)
        return {k: float(np.mean(v)) for k, v in w.items()}


_DNSMOS: DNSMOS | None = None
_DNSMOS_LOCK = threading.Lock()


def dnsmos(x: np.ndarray, rate: int, max_windows: int | None = None) -> dict[str, float]:
    """DNSMOS ``{"ovrl", "sig", "bak"}`` of ``x`` using a shared module-level :class:`DNSMOS`.

    ``max_windows`` caps the number of 9.01 s windows scored (evenly spread); the default comes from
    ``$STREAMSEP_DNSMOS_WINDOWS`` (unset = every window, as speechmos).
    """
    global _DNSMOS
    if _DNSMOS is None:
        with _DNSMOS_LOCK:
            if _DNSMOS is None:
                _DNSMOS = DNSMOS()
    if max_windows is None and os.environ.get("STREAMSEP_DNSMOS_WINDOWS"):
        max_windows = int(os.environ["STREAMSEP_DNSMOS_WINDOWS"])
    _DNSMOS.max_windows = max_windows
    return _DNSMOS(x, rate)


# --------------------------------------------------------------------------------------------


def evaluate(
    est: np.ndarray, rate: int, ref: np.ndarray | None = None, which: Iterable[str] = METRICS
) -> dict[str, float]:
    """Compute the metrics named in ``which`` for ``est`` (and ``ref``, same rate, if given).

    Keys: ``si_sdr``, ``pesq``, ``stoi`` (only with a reference), ``dnsmos_ovrl``, ``dnsmos_sig``,
    ``dnsmos_bak``.  Unknown metric names raise ValueError.
    """
    which = tuple(which)
    for name in which:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} (known: {', '.join(METRICS)})")
    out: dict[str, float] = {}
    if ref is not None:
        if "si_sdr" in which:
            out["si_sdr"] = si_sdr(est, ref)
        if "pesq" in which:
            out["pesq"] = pesq_wb(est, ref, rate)
        if "stoi" in which:
            out["stoi"] = stoi(est, ref, rate)
    if "dnsmos" in which:
        for k, v in dnsmos(est, rate).items():
            out[f"dnsmos_{k}"] = v
    return out
