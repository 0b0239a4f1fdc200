"""RNNoise separator: parity with pyrnnoise's own loop, latency, fork/select, enhancement on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamsep.separators.registry import create
from streamsep.separators.rnnoise import FRAME, LATENCY, RNNoise, RNNoiseState, reference_rtf

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LEV = SHARED / "data" / "pairs" / "leventure"
FAN_0DB = "lev_spk1_74a0b637_00002_1_fan_noise_level1_snr+0dB.wav"
CLEAN = "lev_spk1_74a0b637.wav"


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB."""
    est, ref = est.astype(np.float64), ref.astype(np.float64)
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


@pytest.fixture(scope="module")
def pair48k() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) at 48 kHz, float32, trimmed to whole RNNoise frames."""
    if not LEV.is_dir():
        pytest.skip(f"../shared not present: {LEV}")
    import soundfile as sf
    import soxr

    noisy, sr = sf.read(LEV / "noisy" / FAN_0DB, dtype="float64")
    clean, sr_c = sf.read(LEV / "clean" / CLEAN, dtype="float64")
    assert sr == sr_c == 16000
    m = min(len(noisy), len(clean))
    n48 = soxr.resample(noisy[:m], 16000, 48000).astype(np.float32)
    c48 = soxr.resample(clean[:m], 16000, 48000).astype(np.float32)
    L = (len(n48) // FRAME) * FRAME
    return n48[:L], c48[:L]


@pytest.fixture(scope="module")
def sep() -> RNNoise:
    return RNNoise()


def run_blocks(sep: RNNoise, x: np.ndarray, state: RNNoiseState, block: int) -> tuple[np.ndarray, RNNoiseState]:
    out = []
    for i in range(0, x.shape[-1], block):
        y, state = sep.process(x[:, i : i + block], state)
        out.append(y)
    return np.concatenate(out, axis=-1), state


def test_registry_and_info() -> None:
    s = create("rnnoise")
    assert isinstance(s, RNNoise)
    assert (s.sample_rate, s.hop, s.latency, s.frame_domain) == (48000, 480, 960, False)


def test_matches_pyrnnoise_loop(sep: RNNoise, pair48k) -> None:
    """Ours (one block, and blocks of 480) == pyrnnoise's process_mono_frame loop within int16 truncation.

    The input is first quantised to int16 so both paths feed the C library identical frames; x·32768
    and y/32768 are exact in float32, so our output ×32768 is the library's float output, which
    pyrnnoise truncates to int16: the difference must lie in (−1, 1) LSB, and VAD must match exactly.
    """
    from pyrnnoise.rnnoise import create as rn_create
    from pyrnnoise.rnnoise import destroy, process_mono_frame

    noisy, _ = pair48k
    x = noisy[: 400 * FRAME]  # 4 s
    q = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    st = rn_create()
    try:
        ref, vads = [], []
        for i in range(0, len(q), FRAME):
            out, p = process_mono_frame(st, q[i : i + FRAME])
            ref.append(out)
            vads.append(p)
    finally:
        destroy(st)
    ref = np.concatenate(ref).astype(np.float64)
    xq = (q.astype(np.float32) / 32768.0)[None, :]

    y_one, s_one = sep.process(xq, sep.new_state(1))
    y_hop, s_hop = run_blocks(sep, xq, sep.new_state(1), FRAME)
    np.testing.assert_array_equal(y_one, y_hop)
    np.testing.assert_array_equal(s_one.raw, s_hop.raw)

    ours = y_one[0].astype(np.float64) * 32768.0
    assert np.abs(ours).max() < 32767  # no int16 wrap-around in the reference
    diff = ours - ref
    assert np.abs(diff).max() < 1.0  # truncation toward zero: |v − trunc(v)| < 1 LSB
    assert np.all(np.sign(diff) * np.sign(ours) >= 0)
    assert s_one.vad[0] == np.float32(vads[-1])
    assert float(ref.std()) > 100  # not trivially silent


def test_latency_impulse_exact(sep: RNNoise) -> None:
    """A tiny impulse (below RNNoise's silence threshold: gains bypassed) comes out exactly 960 later."""
    x = np.zeros((1, 20 * FRAME), np.float32)
    t0 = 3 * FRAME + 123
    x[0, t0] = 1e-6
    y, _ = sep.process(x, sep.new_state(1))
    assert sep.latency == LATENCY == 960
    assert int(np.argmax(np.abs(y[0]))) - t0 == sep.latency
    np.testing.assert_allclose(y[0, t0 + sep.latency], 1e-6, rtol=1e-3)


def test_latency_speech_xcorr(sep: RNNoise, pair48k) -> None:
    """On real clean speech the cross-correlation peak lies within a sample of the stated latency
    (the library's DC-blocking high-pass adds a sub-sample phase lead)."""
    _, clean = pair48k
    x = clean[None, : 600 * FRAME]
    y, _ = sep.process(x, sep.new_state(1))
    lags = np.arange(0, 3 * FRAME)
    n = x.shape[-1] - lags[-1]
    r = np.array([np.dot(y[0, d : d + n], x[0, :n]) for d in lags])
    k = int(np.argmax(r))
    a, b, c = r[k - 1], r[k], r[k + 1]
    peak = lags[k] + 0.5 * (a - c) / (a - 2 * b + c)
    assert abs(peak - sep.latency) <= 1.0, peak


def test_enhances_fan_noise(sep: RNNoise, pair48k) -> None:
    noisy, clean = pair48k
    y, st = sep.process(noisy[None], sep.new_state(1))
    d = sep.latency
    before = si_sdr(noisy[: len(noisy) - d], clean[: len(noisy) - d])
    after = si_sdr(y[0, d:], clean[: len(noisy) - d])
    assert before < 1.0
    assert after > before + 8.0, (before, after)  # measured −0.1 → 11.7 dB
    assert 0.0 <= st.vad[0] <= 1.0


def test_fork_continues_bit_identically(sep: RNNoise, pair48k) -> None:
    noisy, _ = pair48k
    a, b = noisy[: 100 * FRAME], noisy[100 * FRAME : 200 * FRAME]
    x2 = np.stack([a, noisy[200 * FRAME : 300 * FRAME]])  # two different streams
    _, s = sep.process(x2, sep.new_state(2))
    before = s.raw.copy()

    f = sep.fork(s, 3)
    assert isinstance(f, RNNoiseState) and f.raw.shape == (6, sep.state_size)
    assert not np.shares_memory(f.raw, s.raw)
    cont = np.stack([b, b])
    y_ref, s_ref = sep.process(cont, s)
    y_f, s_f = sep.process(np.repeat(cont, 3, axis=0), f)
    for row in range(6):  # rows 0..2 continue stream 0, rows 3..5 stream 1
        np.testing.assert_array_equal(y_f[row], y_ref[row // 3])
        np.testing.assert_array_equal(s_f.raw[row], s_ref.raw[row // 3])
    np.testing.assert_array_equal(s.raw, before)  # original untouched by processing
    # process() is functional: the same state gives the same result again
    y_again, _ = sep.process(cont, s)
    np.testing.assert_array_equal(y_again, y_ref)


def test_select_duplicates_are_independent(sep: RNNoise, pair48k) -> None:
    noisy, _ = pair48k
    x2 = np.stack([noisy[: 50 * FRAME], noisy[50 * FRAME : 100 * FRAME]])
    _, s = sep.process(x2, sep.new_state(2))
    sel = sep.select(s, [1, 1, 0])
    assert isinstance(sel, RNNoiseState) and sel.raw.shape[0] == 3
    np.testing.assert_array_equal(sel.raw[0], s.raw[1])
    np.testing.assert_array_equal(sel.raw[2], s.raw[0])
    np.testing.assert_array_equal(sel.vad, s.vad[[1, 1, 0]])
    # different inputs on the duplicated rows: their states must diverge (no shared memory)
    nxt = noisy[100 * FRAME : 120 * FRAME]
    y, s2 = sep.process(np.stack([nxt, 0.1 * nxt, nxt]), sel)
    assert not np.array_equal(s2.raw[0], s2.raw[1])
    y_single, _ = sep.process(nxt[None], sep.select(s, [1]))
    np.testing.assert_array_equal(y[0], y_single[0])


def test_poisoned_state_is_reported(sep: RNNoise) -> None:
    x = np.zeros((2, 2 * FRAME), np.float32)
    x[1, 10] = np.nan
    _, s = sep.process(x, sep.new_state(2))
    assert not sep.state_is_finite(s)
    assert np.isnan(s.vad[1]) and np.isfinite(s.vad[0])
    assert sep.state_is_finite(sep.select(s, [0]))


def test_bad_input_raises(sep: RNNoise) -> None:
    with pytest.raises(ValueError, match="multiple of hop"):
        sep.process(np.zeros((1, 500), np.float32), sep.new_state(1))
    with pytest.raises(ValueError, match="batch, samples"):
        sep.process(np.zeros(480, np.float32), sep.new_state(1))
    with pytest.raises(ValueError, match="state for batch 2"):
        sep.process(np.zeros((2, 480), np.float32), sep.new_state(1))
    with pytest.raises(ValueError, match="CPU only"):
        RNNoise(device="meta")


def test_reference_rtf(pair48k) -> None:
    noisy, _ = pair48k
    rtf = reference_rtf(noisy[: 100 * FRAME])
    assert 0.0 < rtf < 1.0
