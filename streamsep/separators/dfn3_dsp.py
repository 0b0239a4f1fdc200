"""The signal processing that libDF (DeepFilterNet's runtime) does around the DFN3 network, in numpy.

All spectra here use libDF's scaling: ``X = rfft(vorbis · frame) / n_fft`` (so the features match
what the network was trained on).  Shapes: B streams, T frames, F = n_fft/2 + 1 bins.
"""

from __future__ import annotations

import math

import numpy as np

MEAN_NORM_INIT = (-60.0, -90.0)  # dB, ERB feature normalisation start state, first → last band
UNIT_NORM_INIT = (1e-3, 1e-4)  # complex feature magnitude-mean start state, first → last bin


def vorbis_window(n_fft: int) -> np.ndarray:
    """libDF's Vorbis window ``sin(π/2 · sin²(π (n + ½) / (N/2)))`` (float32, computed in float64)."""
    n = np.arange(n_fft, dtype=np.float64)
    s = np.sin(0.5 * math.pi * (n + 0.5) / (n_fft // 2))
    return np.sin(0.5 * math.pi * s * s).astype(np.float32)


def norm_alpha(sr: int, hop: int, tau: float) -> float:
    """libDF's exponential-normalisation factor: exp(−hop/sr/τ) rounded to the fewest decimals
    (from 3 up) that leave it below 1 (0.99 for 48 kHz, 480-sample hops, τ = 1 s)."""
    alpha = math.exp(-(hop / sr) / tau)
    precision = 3
    a = 1.0
    while a >= 1.0:
        a = round(alpha * 10**precision) / 10**precision
        precision += 1
    return float(np.float32(a))


def erb_widths(sr: int, n_fft: int, nb_bands: int, min_nb_freqs: int) -> np.ndarray:
    """Number of FFT bins in each of the ``nb_bands`` ERB bands (sums to n_fft/2 + 1), as libDF."""

    def freq2erb(f: float) -> float:
        return 9.265 * math.log1p(f / (24.7 * 9.265))

    def erb2freq(e: float) -> float:
        return 24.7 * 9.265 * (math.exp(e / 9.265) - 1.0)

    nyq = sr // 2
    width = np.float32(sr) / np.float32(n_fft)
    lo, hi = freq2erb(0.0), freq2erb(float(nyq))
    step = (hi - lo) / nb_bands
    erb = []
    prev, over = 0, 0
    for i in range(1, nb_bands + 1):
        f = erb2freq(lo + i * step)
        fb = math.floor(float(np.float32(f) / width) + 0.5)  # Rust rounds halves away from zero
        nb = fb - prev - over
        if nb < min_nb_freqs:
            over = min_nb_freqs - nb
            nb = min_nb_freqs
        else:
            over = 0
        erb.append(nb)
        prev = fb
    erb[-1] += 1
    too_large = sum(erb) - (n_fft // 2 + 1)
    if too_large > 0:
        erb[-1] -= too_large
    return np.asarray(erb, dtype=np.int64)


class ErbBands:
    """ERB band pooling (mean power per band) and gain spreading (band gain → bins)."""

    def __init__(self, widths: np.ndarray) -> None:
        self.widths = np.asarray(widths, dtype=np.int64)
        self.n_bins = int(self.widths.sum())
        n_bands = len(self.widths)
        band_of_bin = np.repeat(np.arange(n_bands), self.widths)
        pool = np.zeros((self.n_bins, n_bands), dtype=np.float32)
        pool[np.arange(self.n_bins), band_of_bin] = (1.0 / self.widths.astype(np.float32))[band_of_bin]
        #: (F, bands) matrix: power (…, F) @ pool → mean power per band
        self.pool = pool
        #: bin → band index, for spreading gains
        self.band_of_bin = band_of_bin

    def band_power(self, X: np.ndarray) -> np.ndarray:
        """Mean |X|² per ERB band: (…, F) complex → (…, bands) float32."""
        p = X.real * X.real + X.imag * X.imag
        return p.astype(np.float32, copy=False) @ self.pool

    def spread(self, g: np.ndarray) -> np.ndarray:
        """Band gains (…, bands) → per-bin gains (…, F)."""
        return g[..., self.band_of_bin]


def erb_features(bandpow: np.ndarray, state: np.ndarray, alpha: float) -> np.ndarray:
    """ERB features, in place on ``state`` (B, bands): 10·log10(p + 1e-10), then an exponential
    running mean subtracted and /40.  ``bandpow`` (B, T, bands) → (B, T, bands) float32."""
    a = np.float32(alpha)
    b = np.float32(1.0 - alpha)
    db = (np.log10(bandpow + np.float32(1e-10)) * np.float32(10.0)).astype(np.float32)
    if db.shape[1] == 1:  # one frame per call (10 ms blocks): no loop
        np.add(db[:, 0] * b, state * a, out=state)
        return (db - state[:, None]) / np.float32(40.0)
    out = np.empty_like(db)
    for t in range(db.shape[1]):
        x = db[:, t]
        np.add(x * b, state * a, out=state)
        out[:, t] = (x - state) / np.float32(40.0)
    return out


def complex_features(X: np.ndarray, state: np.ndarray, alpha: float) -> np.ndarray:
    """Complex features of the first bins, in place on ``state`` (B, nb_df): each bin divided by the
    square root of an exponential running mean of its magnitude.  ``X`` (B, T, nb_df) complex64 →
    (B, 2, T, nb_df) float32 (real, imaginary)."""
    a = np.float32(alpha)
    b = np.float32(1.0 - alpha)
    mag = np.abs(X).astype(np.float32)
    if X.shape[1] == 1:  # one frame per call (10 ms blocks): no loop
        np.add(mag[:, 0] * b, state * a, out=state)
        Xn = X[:, 0] / np.sqrt(state)
        return np.stack([Xn.real, Xn.imag], axis=1)[:, :, None].astype(np.float32, copy=False)
    out = np.empty((X.shape[0], 2, X.shape[1], X.shape[2]), dtype=np.float32)
    for t in range(X.shape[1]):
        np.add(mag[:, t] * b, state * a, out=state)
        s = np.sqrt(state)
        out[:, 0, t] = X[:, t].real / s
        out[:, 1, t] = X[:, t].imag / s
    return out


def deep_filter(Xh: np.ndarray, coefs: np.ndarray, order: int) -> np.ndarray:
    """Deep filter: output frame j = Σ_i Xh[:, j + i] · coefs[:, j, :, i] over the first nb_df bins.

    ``Xh`` (B, T + order − 1, ≥nb_df) complex64 noisy spectra, oldest first; ``coefs`` (B, T, nb_df,
    order) complex64 → (B, T, nb_df) complex64."""
    T, nb_df = coefs.shape[1], coefs.shape[2]
    acc = Xh[:, 0:T, :nb_df] * coefs[..., 0]
    for i in range(1, order):
        acc += Xh[:, i : i + T, :nb_df] * coefs[..., i]
    return acc
