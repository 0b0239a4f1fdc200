"""Spectrogram and level arithmetic for the display (numpy only, no Qt)."""

from __future__ import annotations

import numpy as np

FLOOR_DB = -120.0


def to_db(value: float | None, floor: float = FLOOR_DB) -> float:
    """A dB figure from the host (may be None, NaN or -inf) clamped to ``floor`` dB."""
    if value is None:
        return floor
    try:
        v = float(value)
    except (TypeError, ValueError):
        return floor
    if not np.isfinite(v):
        return floor if v < 0 or np.isnan(v) else 0.0
    return max(v, floor)


def fft_size(rate: int, window_s: float = 0.032) -> int:
    """Power of two closest above ``window_s`` seconds at ``rate`` Hz (512 at 16 kHz)."""
    return int(2 ** np.ceil(np.log2(max(16, rate * window_s))))


def spectrogram_db(
    x: np.ndarray, rate: int, columns: int, hop_s: float, fmax: float = 8000.0
) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrogram of the *end* of ``x`` in dBFS (a full-scale sine reads 0 dB).

    Returns ``(S, freqs)``: ``S`` has shape (columns, bins) oldest column first, one column every
    ``hop_s`` seconds, the last one ending at the last sample; missing history reads ``FLOOR_DB``.
    ``freqs`` are the bin centres in Hz up to ``min(fmax, rate/2)``.
    """
    nfft = fft_size(rate)
    hop = max(1, round(hop_s * rate))
    need = nfft + hop * (columns - 1)
    x = np.asarray(x, dtype=np.float32).reshape(-1)[-need:]
    pad = need - x.size
    if pad:
        x = np.concatenate([np.zeros(pad, np.float32), x])
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop][:columns]
    win = np.hanning(nfft).astype(np.float32)
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate)
    keep = freqs <= min(fmax, rate / 2)
    mag = np.abs(np.fft.rfft(frames * win, axis=1))[:, keep] / (win.sum() / 2)
    s = 20 * np.log10(mag + 1e-9)
    if pad:  # columns made only of padding: no data yet
        empty = (np.arange(columns) * hop + nfft) <= pad
        s[empty] = FLOOR_DB
    return np.maximum(s, FLOOR_DB).astype(np.float32), freqs[keep]


def level_db(x: np.ndarray, floor: float = FLOOR_DB) -> tuple[float, float]:
    """(peak, RMS) of ``x`` in dBFS (full-scale ±1 reads 0 dB), ``floor`` for empty or silent input."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not x.size:
        return floor, floor
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x * x)))
    return (
        max(floor, 20 * np.log10(peak)) if peak > 0 else floor,
        max(floor, 20 * np.log10(rms)) if rms > 0 else floor,
    )


def aligned_levels(
    x_in: np.ndarray, x_out: np.ndarray, window: int, lag: int, floor: float = FLOOR_DB, slack: int = 0
) -> tuple[float, float, float, float]:
    """Input and output levels of the same audio: (in peak, in RMS, out peak, out RMS) in dBFS.

    ``x_in`` and ``x_out`` end at the same instant (``LiveHost.monitor``); the output lags the input
    by ``lag`` samples (the host's latency), so the last ``window`` output samples are compared with
    the ``window`` input samples that ended ``lag`` samples earlier.  Reading both ends at the same
    instant instead would meter different audio (a syllable on OUT while IN has gone quiet), which
    is how OUT could read above IN.  ``slack`` samples more input on each side cover the uncertainty
    of the alignment (the two rings are written by different threads, about one device period apart)."""
    window, lag, slack = max(1, int(window)), max(0, int(lag)), max(0, int(slack))
    x_in = np.asarray(x_in).reshape(-1)
    end = len(x_in) - lag
    seg_in = x_in[max(0, end - window - slack) : max(0, end + slack)]
    seg_out = np.asarray(x_out).reshape(-1)[-window:]
    return (*level_db(seg_in, floor), *level_db(seg_out, floor))
