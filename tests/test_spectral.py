"""Spectral suppressor: enhancement on real stationary noise, streaming parity, fork/select, gain floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from streamsep.separators.registry import create
from streamsep.separators.spectral import SpectralSuppressor, expint_e1

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAIRS = SHARED / "data" / "pairs"


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB."""
    est, ref = est.astype(np.float64), ref.astype(np.float64)
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"../shared not present: {path}")
    return path


def load(path: Path, rate: int = 16000) -> np.ndarray:
    import soundfile as sf
    import soxr

    x, sr = sf.read(path, dtype="float64")
    return (x if sr == rate else soxr.resample(x, sr, rate)).astype(np.float32)


def enhance(sep: SpectralSuppressor, noisy: np.ndarray) -> np.ndarray:
    """Whole-signal processing, latency removed; returns the estimate aligned with noisy[:len]."""
    L = (len(noisy) // sep.hop) * sep.hop
    y, _ = sep.process(noisy[None, :L], sep.new_state(1))
    return y[0, sep.latency :]


@pytest.fixture(scope="module")
def sep() -> SpectralSuppressor:
    return SpectralSuppressor()


def mean_gain(sep: SpectralSuppressor, pairs: list[tuple[Path, Path]]) -> tuple[float, float]:
    before, after = [], []
    for noisy_p, clean_p in pairs:
        noisy, clean = load(noisy_p), load(clean_p)
        m = min(len(noisy), len(clean))
        y = enhance(sep, noisy[:m])
        before.append(si_sdr(noisy[: len(y)], clean[: len(y)]))
        after.append(si_sdr(y, clean[: len(y)]))
    return float(np.mean(before)), float(np.mean(after))


def test_noizeus_car_5db_improves(sep: SpectralSuppressor) -> None:
    """30 NOIZEUS sentences, real car noise at 5 dB, 8 kHz resampled to 16 kHz: measured 4.49 → 7.99 dB."""
    root = need(PAIRS / "noizeus")
    noisy = sorted((root / "noisy").glob("*_car_sn5.wav"))
    assert len(noisy) >= 10
    pairs = [(p, root / "clean" / (p.name.split("_")[0] + ".wav")) for p in noisy]
    before, after = mean_gain(sep, pairs)
    assert after > before + 2.0, (before, after)


def test_leventure_fan_improves(sep: SpectralSuppressor) -> None:
    """Real fan noise at −5..+10 dB (first speaker, 8 files): mean SI-SDR must rise by > 3 dB."""
    root = need(PAIRS / "leventure")
    noisy = sorted((root / "noisy").glob("lev_spk1_*_fan_noise_*.wav"))
    assert len(noisy) >= 4
    cleans = sorted((root / "clean").glob("*.wav"))
    pairs = [(p, next(c for c in cleans if p.name.startswith(c.stem + "_"))) for p in noisy]
    before, after = mean_gain(sep, pairs)
    assert after > before + 3.0, (before, after)  # all 24 fan files: 2.25 → 8.09 dB


def test_streaming_equals_one_block(sep: SpectralSuppressor) -> None:
    root = need(PAIRS / "leventure")
    x = load(next((root / "noisy").glob("*fan_noise_level2_snr+0dB.wav")))[: 300 * sep.hop][None]
    y_one, s_one = sep.process(x, sep.new_state(1))
    state, parts = sep.new_state(1), []
    for i in range(0, x.shape[-1], sep.hop):
        y, state = sep.process(x[:, i : i + sep.hop], state)
        parts.append(y)
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), y_one, atol=1e-5, rtol=0)
    for a, b in zip(state.model.tensors, s_one.model.tensors):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_fork_and_select(sep: SpectralSuppressor) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(200 * sep.hop) / sep.sample_rate
    speechlike = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    x = np.stack(
        [
            speechlike + 0.05 * rng.standard_normal(t.size).astype(np.float32),
            0.1 * rng.standard_normal(t.size).astype(np.float32),
        ]
    )
    first, second = x[:, : 100 * sep.hop], x[:, 100 * sep.hop :]
    _, s = sep.process(first, sep.new_state(2))
    y_ref, _ = sep.process(second, s)
    f = sep.fork(s, 3)
    y_f, _ = sep.process(np.repeat(second, 3, axis=0), f)
    for row in range(6):  # consecutive copies: rows 0..2 ← stream 0, rows 3..5 ← stream 1
        np.testing.assert_allclose(y_f[row], y_ref[row // 3], atol=1e-6, rtol=0)
    sel = sep.select(f, [5, 0, 0])
    y_s, _ = sep.process(second[[1, 0, 0]], sel)
    np.testing.assert_allclose(y_s, y_ref[[1, 0, 0]], atol=1e-6, rtol=0)
    y_again, _ = sep.process(second, s)  # the original state is unaffected by its forks
    np.testing.assert_array_equal(y_again, y_ref)


def test_gain_floor_and_range() -> None:
    sep = SpectralSuppressor(floor_db=-10.0)
    rng = np.random.default_rng(1)
    frames = torch.tensor(
        rng.standard_normal((2, 80, sep.n_bins)) + 1j * rng.standard_normal((2, 80, sep.n_bins)), dtype=torch.complex64
    )
    g, _ = sep.gains(frames.real**2 + frames.imag**2, sep.new_model_state(2))
    floor = 10 ** (-10 / 20)
    assert float(g.min()) >= floor - 1e-6 and float(g.max()) <= 1.0
    assert float((g <= floor + 1e-6).float().mean()) > 0.5  # stationary noise alone sits on the floor


def test_expint_matches_scipy() -> None:
    from scipy.special import exp1

    v = torch.logspace(-8, 2, 500, dtype=torch.float64)
    ref = torch.tensor(exp1(v.numpy()))
    assert float(((expint_e1(v) - ref) / ref).abs().max()) < 1e-4


def test_registry_kwargs_and_errors() -> None:
    s = create("spectral", floor_db=-20.0, gain="wiener")
    assert isinstance(s, SpectralSuppressor) and s.params.floor_db == -20.0 and s.params.gain == "wiener"
    assert (s.sample_rate, s.hop, s.latency, s.frame_domain) == (16000, 160, 160, True)
    with pytest.raises(ValueError, match="gain must be"):
        SpectralSuppressor(gain="spectral-subtraction")
    with pytest.raises(ValueError, match="floor_db"):
        SpectralSuppressor(floor_db=3.0)
    with pytest.raises(TypeError, match="alpha_x"):
        SpectralSuppressor(alpha_x=0.5)
    with pytest.raises(ValueError, match="multiple of hop"):
        SpectralSuppressor().process(np.zeros((1, 100), np.float32), SpectralSuppressor().new_state(1))
