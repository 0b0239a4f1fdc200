"""Test signals made on the spot: speech (espeak-ng, else a synthetic voiced signal), coloured noise,
and mixing at a given SNR.  The one generator the demo, the benchmarks and the tests share."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

RATE = 16000
TEXT = (
    "Streamsep cleans a live microphone. It runs a pretrained noise suppressor several times, "
    "blending the noisy input back in, and keeps what sounds best."
)


def synthetic_speech(seconds: float = 4.0, rate: int = RATE, seed: int = 0, f0_jitter_hz: float = 10.0) -> np.ndarray:
    """A voiced, syllable-modulated signal with moving pitch and formants (speech-like, not speech),
    0.3 peak.  The pitch moves 120 ± 30 Hz, offset by a random ``f0_jitter_hz`` · N(0, 1) per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + f0_jitter_hz * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(f0) / rate
    src = sum(np.sin(h * phase) / h for h in range(1, 30))
    spec = np.fft.rfft(src)
    freqs = np.fft.rfftfreq(len(src), 1 / rate)
    env = sum(np.exp(-0.5 * ((freqs - fc) / bw) ** 2) for fc, bw in ((500, 120), (1500, 200), (2500, 300)))
    y = np.fft.irfft(spec * (0.2 + env), n=len(src))
    syll = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * (np.sin(2 * np.pi * 0.5 * t) > -0.6)
    y = y * syll
    return (0.3 * y / (np.max(np.abs(y)) + 1e-9)).astype(np.float32)


def espeak_speech(
    text: str = TEXT, rate: int = RATE, words_per_minute: int = 150, peak: float = 0.3
) -> np.ndarray | None:
    """Speech from espeak-ng at ``rate`` Hz scaled to ``peak`` (None when espeak-ng is not installed
    or fails)."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if not exe:
        return None
    from streamsep.audio_io import read_audio

    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "speech.wav"
        try:
            subprocess.run(
                [exe, "-w", str(wav), "-s", str(words_per_minute), text], check=True, capture_output=True, timeout=60
            )
        except (subprocess.SubprocessError, OSError):
            return None
        x, _ = read_audio(wav, rate=rate)
    return (peak * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def coloured_noise(
    n: int, rate: int = RATE, seed: int = 1, rms: float | None = None, hum: float = 0.3, harmonics: int = 3
) -> np.ndarray:
    """Pink-ish noise (1/sqrt(f) above 50 Hz) plus a 100 Hz hum of ``hum`` (relative to the noise's
    standard deviation) with ``harmonics`` harmonics falling as 1/h: a fan / mains mix.

    Scaled to unit standard deviation, or to ``rms`` (root mean square) when given.
    """
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spec /= np.sqrt(np.maximum(f, 50.0))
    noise = np.fft.irfft(spec, n=n)
    t = np.arange(n) / rate
    noise = noise / np.std(noise) + hum * sum(np.sin(2 * np.pi * 100 * h * t) / h for h in range(1, harmonics + 1))
    if rms is not None:
        return (rms * noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
    return (noise / np.std(noise)).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + noise`` with the noise scaled to ``snr_db`` dB below the speech power (over the whole clip)."""
    ps, pn = np.mean(speech.astype(np.float64) ** 2), np.mean(noise.astype(np.float64) ** 2)
    return (speech + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))).astype(np.float32)
