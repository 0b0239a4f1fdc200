"""Tests for streamsep.metrics on real speech (NOIZEUS 8 kHz, leventure 16 kHz from ../shared)."""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from streamsep.audio_io import read_audio, resample
from streamsep.metrics import DNSMOS, DNSMOSUnavailable, dnsmos, dnsmos_model_path, evaluate, pesq_wb, si_sdr, stoi

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NOIZEUS = SHARED / "data" / "pairs" / "noizeus"
LEVENTURE = SHARED / "data" / "pairs" / "leventure"
SNRS = (0, 5, 10, 15)
CASES = [("sp01", "car"), ("sp05", "babble"), ("sp12", "street"), ("sp20", "train")]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"../shared not present: {path}")
    return path


def _noizeus(sentence: str, noise: str) -> tuple[np.ndarray, dict[int, np.ndarray], int]:
    clean, rate = read_audio(_need(NOIZEUS / "clean" / f"{sentence}.wav"))
    noisy = {snr: read_audio(NOIZEUS / "noisy" / f"{sentence}_{noise}_sn{snr}.wav")[0] for snr in SNRS}
    return clean, noisy, rate


def _dnsmos_available() -> None:
    try:
        dnsmos_model_path()
    except Exception as err:  # speechmos not installed
        pytest.skip(f"DNSMOS model unavailable: {err}")


# ------------------------------------------------------------------ SI-SDR


@pytest.mark.parametrize("sentence,noise", CASES)
def test_si_sdr_tracks_snr(sentence, noise):
    clean, noisy, _ = _noizeus(sentence, noise)
    assert si_sdr(clean, clean) > 100
    values = [si_sdr(noisy[snr], clean) for snr in SNRS]
    assert values == sorted(values)
    for snr, v in zip(SNRS, values):
        assert abs(v - snr) < 3.0, (snr, v)


def test_si_sdr_properties():
    clean, noisy, _ = _noizeus("sp01", "car")
    x = noisy[5]
    base = si_sdr(x, clean)
    assert si_sdr(0.1 * x, clean) == pytest.approx(base, abs=1e-6)  # scale-invariant
    assert si_sdr(x + 0.3, clean) == pytest.approx(base, abs=1e-6)  # zero-mean
    assert si_sdr(np.concatenate([x, x[:500]]), clean) == pytest.approx(base)  # trimmed to shorter
    assert math.isnan(si_sdr(x, np.zeros_like(clean)))
    assert math.isnan(si_sdr(x, np.full_like(clean, 0.2)))
    assert si_sdr(np.zeros_like(x), clean) == -math.inf
    with pytest.raises(ValueError, match="estimate: expected a 1-D"):
        si_sdr(np.stack([x, x]), clean)
    with pytest.raises(ValueError, match="reference: contains NaN"):
        si_sdr(x, np.full_like(clean, np.nan))


# ------------------------------------------------------------------ PESQ and STOI


@pytest.mark.parametrize("sentence,noise", CASES[:2])
def test_pesq_and_stoi_order_with_snr(sentence, noise):
    clean, noisy, rate = _noizeus(sentence, noise)
    assert pesq_wb(clean, clean, rate) > 4.0
    assert stoi(clean, clean, rate) > 0.99
    p = [pesq_wb(noisy[snr], clean, rate) for snr in SNRS]
    s = [stoi(noisy[snr], clean, rate) for snr in SNRS]
    assert p == sorted(p) and s == sorted(s), (p, s)
    assert 1.0 <= p[0] < 2.5 and p[-1] < 4.0
    assert 0.3 < s[0] < s[-1] < 0.99


def test_pesq_resamples_to_16k():
    clean, noisy, rate = _noizeus("sp01", "car")
    at16 = pesq_wb(resample(noisy[10], rate, 16000), resample(clean, rate, 16000), 16000)
    assert pesq_wb(noisy[10], clean, rate) == pytest.approx(at16, abs=1e-6)


def test_pesq_and_stoi_undefined_cases_return_nan():
    silence = np.zeros(16000)
    assert math.isnan(pesq_wb(silence, silence, 16000))
    clean, _, rate = _noizeus("sp01", "car")
    assert math.isnan(stoi(clean[:2000], clean[:2000], rate))  # 0.25 s: too few frames


def test_pesq_on_16k_pairs():
    clean_path = _need(LEVENTURE / "clean" / "lev_spk1_74a0b637.wav")
    clean, rate = read_audio(clean_path)
    noisy = {
        snr: read_audio(next((LEVENTURE / "noisy").glob(f"lev_spk1_74a0b637_*_fan_noise_level1_snr{snr}dB.wav")))[0]
        for snr in ("-5", "+0", "+5", "+10")
    }
    p = [pesq_wb(n, clean, rate) for n in noisy.values()]
    assert p == sorted(p), p


# ------------------------------------------------------------------ DNSMOS


def test_dnsmos_clean_beats_noisy():
    _dnsmos_available()
    clean, noisy, rate = _noizeus("sp01", "babble")  # 8 kHz, 2.8 s: resampled and repeat-padded
    c, n = dnsmos(clean, rate), dnsmos(noisy[0], rate)
    for scores in (c, n):
        assert set(scores) == {"ovrl", "sig", "bak"}
        assert all(1.0 <= v <= 5.0 for v in scores.values()), scores
    assert c["ovrl"] > n["ovrl"] + 1.0 and c["bak"] > n["bak"]

    lc, lrate = read_audio(_need(LEVENTURE / "clean" / "lev_spk2_bd0b83b4.wav"))
    ln, _ = read_audio(next((LEVENTURE / "noisy").glob("lev_spk2_bd0b83b4_*_fan_noise_level1_snr+0dB.wav")))
    assert dnsmos(lc, lrate)["ovrl"] > dnsmos(ln, lrate)["ovrl"]


def _speechmos_reference(monkeypatch):
    """speechmos's own DNSMOS class, importable with stand-ins for librosa/requests (not installed)."""
    src = dnsmos_model_path().parents[1] / "dnsmos.py"
    if not src.exists():
        pytest.skip(f"speechmos source not found at {src}")
    for name in ("librosa", "requests"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.session = None
            monkeypatch.setitem(sys.modules, name, stub)
    spec = importlib.util.spec_from_file_location("_speechmos_dnsmos_reference", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ref = module.DNSMOS(str(dnsmos_model_path()), str(dnsmos_model_path().with_name("model_v8.onnx")))
    # the P.808 branch needs librosa mel features; feed it zeros, its score is not compared
    ref.audio_melspec = lambda audio, **kw: np.zeros((900, 120), np.float32)
    return ref


def test_dnsmos_matches_speechmos(monkeypatch):
    _dnsmos_available()
    ref = _speechmos_reference(monkeypatch)
    # 17.5 s at 16 kHz: 8 hops, of which the reference keeps 0–6 (float rounding drops hop 7)
    x, rate = read_audio(next(_need(LEVENTURE / "noisy").glob("lev_spk1_74a0b637_*_keyboard_loud_snr+0dB.wav")))
    x = x[: int(17.5 * rate)]
    ours = DNSMOS()
    windows = ours.window_scores(x, rate)
    want = ref(x, rate, False)
    assert len(windows["ovrl"]) == 7
    for k in ("ovrl", "sig", "bak"):
        assert float(np.mean(windows[k])) == pytest.approx(float(want[f"{k}_mos"]), abs=1e-5)
    every = DNSMOS(reference_windows=False).window_scores(x, rate)
    assert len(every["ovrl"]) == 8
    np.testing.assert_allclose(every["ovrl"][:7], windows["ovrl"], atol=1e-9)
    # short clip: repeat-padded exactly like the reference
    short = x[: int(3.3 * rate)]
    assert ours(short, rate)["ovrl"] == pytest.approx(float(ref(short, rate, False)["ovrl_mos"]), abs=1e-5)


def test_dnsmos_shared_session_from_threads():
    _dnsmos_available()
    x, rate = read_audio(_need(LEVENTURE / "clean" / "lev_spk3_77f7d970.wav"))
    x = x[: 10 * rate]  # 10 s: exactly one window, the cheapest call
    model = DNSMOS()
    expect = model(x, rate)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(model(x, rate))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expect, expect]
    with pytest.raises(ValueError, match="audio: expected a 1-D"):
        model(np.zeros((2, 16000)), 16000)
    with pytest.raises(DNSMOSUnavailable, match="nope.onnx"):
        DNSMOS("/nonexistent/nope.onnx")


# ------------------------------------------------------------------ evaluate


def test_evaluate_keys_and_values():
    _dnsmos_available()
    clean, noisy, rate = _noizeus("sp12", "street")
    full = evaluate(noisy[10], rate, ref=clean)
    assert set(full) == {"si_sdr", "pesq", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"}
    assert full["si_sdr"] == pytest.approx(si_sdr(noisy[10], clean))
    assert full["pesq"] == pytest.approx(pesq_wb(noisy[10], clean, rate))
    blind = evaluate(noisy[10], rate)
    assert set(blind) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"}
    assert blind["dnsmos_ovrl"] == pytest.approx(full["dnsmos_ovrl"])
    assert set(evaluate(noisy[10], rate, ref=clean, which=("si_sdr",))) == {"si_sdr"}
    with pytest.raises(ValueError, match="unknown metric 'mosnet'"):
        evaluate(noisy[10], rate, which=("mosnet",))


# ------------------------------------------------------------------ generated speech (no ../shared)


@pytest.fixture(scope="module")
def synthetic_speech(tmp_path_factory) -> tuple[np.ndarray, int]:
    """A sentence spoken by espeak-ng (22.05 kHz, read at 16 kHz), so these checks run without ../shared."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("tts") / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy dog near the bank of the river."],
        check=True,
        capture_output=True,
    )
    return read_audio(path, rate=16000)


def test_metrics_on_generated_speech(synthetic_speech):
    clean, rate = synthetic_speech
    rng = np.random.default_rng(7)
    white = rng.standard_normal(len(clean))
    power = np.mean((clean - clean.mean()) ** 2)
    noisy = {snr: clean + white * np.sqrt(power / 10 ** (snr / 10)) for snr in (0, 10, 20)}
    # with white noise independent of the speech, SI-SDR is the SNR up to a small projection term
    for snr, x in noisy.items():
        assert si_sdr(x, clean) == pytest.approx(snr, abs=0.5)
    p = [pesq_wb(noisy[s], clean, rate) for s in (0, 10, 20)]
    s = [stoi(noisy[s], clean, rate) for s in (0, 10, 20)]
    assert p == sorted(p) and s == sorted(s), (p, s)
    assert pesq_wb(clean, clean, rate) > 4.0
    try:
        dnsmos_model_path()
    except Exception:
        return
    assert dnsmos(clean, rate)["ovrl"] > dnsmos(noisy[0], rate)["ovrl"] + 0.5
