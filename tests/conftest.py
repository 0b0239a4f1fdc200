"""Shared fixtures for the core tests: the ../shared data (skipped with a reason when absent), short
real clips, generated speech and noise, and cached separator instances.

Real data: ``../shared`` next to the repository root (never copied into the repo).  Generated data:
espeak-ng speech when espeak-ng is installed, otherwise a numpy voiced signal with moving pitch and
formants; coloured noise from numpy.  Every clip is float32 mono; rates in Hz, lengths in samples.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from streamsep import synth

#: harnesses that live outside the package (scripts/soak.py) are importable by the tests
_SCRIPTS = str(Path(__file__).resolve().parents[1] / "scripts")
if _SCRIPTS not in sys.path:
    sys.path.append(_SCRIPTS)

# A suite started in the background (`cmd &`, nohup, some CI runners) inherits SIGINT *ignored*, and
# every `streamsep` child would too (an ignored signal survives exec, and Python then installs no
# KeyboardInterrupt handler): the tests that stop a child with Ctrl-C need the normal disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The engine runs many small per-block tensors: torch's intra-op thread pool only adds contention on
# a small shared machine (measured 10-20x slower wall time at load 10 on 2 cores).  One thread, as a
# live worker would use.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RATE = 16000

#: leventure pairs used by the tests: (noisy stem, clean stem); varied noise types and SNRs
LEVENTURE = (
    ("lev_spk1_74a0b637_00032_1_keyboard_soft_snr+0dB", "lev_spk1_74a0b637"),
    ("lev_spk2_bd0b83b4_00055_2_door_knock_snr-5dB", "lev_spk2_bd0b83b4"),
    ("lev_spk1_74a0b637_00008_1_fan_noise_level2_snr+0dB", "lev_spk1_74a0b637"),
)


# ------------------------------------------------------------------------------------------------
# ../shared
# ------------------------------------------------------------------------------------------------
def shared(*parts: str) -> Path:
    """Path under ../shared; skips the calling test when it does not exist."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"../shared not present: {p}")
    return p


def read(path: Path, rate: int = RATE) -> np.ndarray:
    """Read a file as mono float32 at ``rate`` (soxr HQ when the file's rate differs)."""
    import soundfile as sf
    import soxr

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != rate:
        x = soxr.resample(x, sr, rate)
    return np.ascontiguousarray(x, dtype=np.float32)


def leventure_pair(
    index: int = 0, seconds: float = 3.0, offset: float = 2.0, rate: int = RATE
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) segment of ``seconds`` from leventure pair ``index``, starting at ``offset`` s."""
    noisy_stem, clean_stem = LEVENTURE[index]
    d = shared("data", "pairs", "leventure")
    x = read(d / "noisy" / f"{noisy_stem}.wav", rate)
    s = read(d / "clean" / f"{clean_stem}.wav", rate)
    a, n = int(offset * rate), int(seconds * rate)
    return x[a : a + n].copy(), s[a : a + n].copy()


def real_noise(seconds: float = 2.0, rate: int = RATE, name: str = "derived_noizeus_car.wav") -> np.ndarray:
    """A noise-only segment from ../shared/data/noise, normalised to 0.1 RMS."""
    x = read(shared("data", "noise", name), rate)
    n = int(seconds * rate)
    if len(x) < n:
        x = np.tile(x, int(np.ceil(n / len(x))))
    x = x[:n]
    return (0.1 * x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# generated audio
# ------------------------------------------------------------------------------------------------
_SPEECH_CACHE: dict[int, np.ndarray] = {}


def generated_speech(seconds: float = 3.0, rate: int = RATE) -> np.ndarray:
    """Speech-like test signal at 0.3 peak: espeak-ng when installed, else a numpy voiced signal."""
    if rate not in _SPEECH_CACHE:
        x = _espeak(rate)
        if x is None:
            x = _voiced(6.0, rate)
        _SPEECH_CACHE[rate] = x
    x = _SPEECH_CACHE[rate]
    n = int(seconds * rate)
    if len(x) < n:
        x = np.tile(x, int(np.ceil(n / len(x))))
    return x[:n].copy()


def _espeak(rate: int) -> np.ndarray | None:
    """espeak-ng speech, or None (not installed, or STREAMSEP_TEST_NO_ESPEAK=1 to test the fallback)."""
    if os.environ.get("STREAMSEP_TEST_NO_ESPEAK") == "1":
        return None
    text = (
        "Please call Stella and ask her to bring these things with her from the store. "
        "Six spoons of fresh snow peas, five thick slabs of blue cheese."
    )
    return synth.espeak_speech(text, rate, words_per_minute=160)


def _voiced(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Harmonic source with moving pitch, three formants, syllable and phrase envelopes."""
    return synth.synthetic_speech(seconds, rate, seed, f0_jitter_hz=5.0)


def coloured_noise(n: int, rate: int = RATE, seed: int = 1, rms: float = 0.1) -> np.ndarray:
    """Pink-ish noise (1/sqrt(f) above 50 Hz) plus a weak 100 Hz hum, at ``rms``."""
    return synth.coloured_noise(n, rate, seed, rms=rms, hum=0.2, harmonics=1)


mix_at_snr = synth.mix_at_snr


def generated_pair(
    seconds: float = 3.0, snr_db: float = 5.0, seed: int = 1, rate: int = RATE
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean): generated speech + coloured noise at ``snr_db``."""
    s = generated_speech(seconds, rate)
    return mix_at_snr(s, coloured_noise(len(s), rate, seed), snr_db), s


# ------------------------------------------------------------------------------------------------
# measurement helpers
# ------------------------------------------------------------------------------------------------
def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR (dB), independent of the product's implementation."""
    n = min(len(est), len(ref))
    e, r = est[:n].astype(np.float64), ref[:n].astype(np.float64)
    e, r = e - e.mean(), r - r.mean()
    t = np.dot(e, r) / np.dot(r, r) * r
    return float(10 * np.log10(np.sum(t**2) / np.sum((e - t) ** 2)))


def stream(engine, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed ``x`` to ``engine.process`` in host blocks cycling through ``sizes``; check lengths."""
    out, i, j = [], 0, 0
    while i < len(x):
        blk = x[i : i + sizes[j % len(sizes)]]
        y = engine.process(blk)
        assert len(y) == len(blk), f"host block of {len(blk)} samples returned {len(y)}"
        out.append(y)
        i, j = i + len(blk), j + 1
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def lag_of(y: np.ndarray, x: np.ndarray, max_lag: int) -> int:
    """Lag (samples, 0..max_lag) at which ``y`` correlates best with ``x`` (y ≈ x delayed)."""
    n = len(x)
    c = [float(np.dot(y[lag : lag + n], x[: len(y[lag : lag + n])])) for lag in range(max_lag + 1)]
    return int(np.argmax(c))


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def nsnet2():
    """One NSNet2 (16 kHz) instance for the whole session (separators are stateless objects)."""
    from streamsep.separators.registry import create

    return create("nsnet2")


@pytest.fixture(scope="session")
def nsnet2_48k():
    from streamsep.separators.registry import create

    return create("nsnet2-48k")


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """3 s of generated speech at 16 kHz."""
    return generated_speech(3.0)


@pytest.fixture(scope="session")
def gen_pair() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean), 3 s generated, 5 dB SNR, 16 kHz."""
    return generated_pair(3.0, 5.0)


@pytest.fixture(scope="session")
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean), 3 s of a real leventure pair (keyboard, 0 dB), 16 kHz; skips without ../shared."""
    return leventure_pair(0, 3.0)
