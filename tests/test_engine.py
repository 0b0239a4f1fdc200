"""The streaming engine: any host block size, exact latency (bypass and model, with and without
resampling), streamed == offline for deterministic policies (hypothesis), the fixed policy against
the independent offline refiner, output controls, live parameter changes, load limits, NaN/Inf."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from conftest import (
    SHARED,
    coloured_noise,
    generated_pair,
    generated_speech,
    lag_of,
    leventure_pair,
    real_noise,
    si_sdr,
    stream,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsep.engine import MAX_HOST_BLOCK, ConfigError, Engine, EngineConfig
from streamsep.offline import refine_search

ODD_SIZES = [37, 4000, 1, 999, 8192, 441, 160, 2]


def padded(x: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([x, np.zeros(n, np.float32)])


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    import soxr

    return x if src == dst else soxr.resample(x, src, dst).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# host blocks and latency
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[1], [MAX_HOST_BLOCK], [159], [161, 7], ODD_SIZES])
def test_any_host_block_size_same_length_exact_latency(nsnet2, sizes):
    """Bypass: every impulse of a train comes out exactly ``latency`` samples later, at full height."""
    eng = Engine(EngineConfig(bypass=True), separator=nsnet2)
    x = np.zeros(12000 if sizes != [1] else 4000, np.float32)
    pos = np.arange(100, len(x), 977)
    x[pos] = 1.0
    y = stream(eng, padded(x, eng.latency), sizes)  # also checks len(out) == len(in) per block
    L = eng.latency
    assert L == eng.block + nsnet2.latency == 320
    np.testing.assert_array_equal(y[L:], x)
    assert not y[:L].any()


@pytest.mark.parametrize("rate", [48000, 44100])
def test_impulses_land_at_latency_with_resampling(nsnet2, rate):
    """Host rate ≠ model rate: impulses (band-limited by the resamplers) peak at the reported latency ±1."""
    eng = Engine(EngineConfig(bypass=True), rate=rate, separator=nsnet2)
    x = np.zeros(rate, np.float32)
    pos = np.arange(500, len(x) - 500, max(4321, eng.latency + 700))  # one impulse per window
    x[pos] = 1.0
    y = stream(eng, padded(x, eng.latency + 600), ODD_SIZES)
    for p in pos:
        seg = np.abs(y[p : p + eng.latency + 600])
        assert abs(int(np.argmax(seg)) - eng.latency) <= 1, f"impulse at {p}"
        assert seg.max() > 0.2  # it arrived (about 16/rate of its height after a 8 kHz low-pass)
    assert eng.latency_ms == pytest.approx(1000 * eng.latency / rate, abs=1000 / rate)


@pytest.mark.parametrize("rate,steps", [(16000, 0), (16000, 4), (48000, 1), (44100, 2)])
def test_model_output_arrives_at_latency(nsnet2, rate, steps):
    """With the model (mix=1): clean speech passes, and correlates best at exactly the reported latency."""
    s = generated_speech(1.5, rate)
    eng = Engine(EngineConfig(steps=steps), rate=rate, separator=nsnet2)
    y = stream(eng, padded(s, eng.latency + 500), ODD_SIZES[:5])
    lag = lag_of(y, s, eng.latency + 400)
    assert abs(lag - eng.latency) <= (0 if rate == 16000 else 1)
    assert si_sdr(y[eng.latency : eng.latency + len(s)], s) > 10.0  # it is the speech, not noise


def test_latency_independent_of_steps(nsnet2):
    """Frame-domain refinement adds no latency: K=4 reports (and has) the latency of K=1: 20 ms at block 160."""
    ms = {k: Engine(EngineConfig(steps=k, block=160), separator=nsnet2).latency_ms for k in (0, 1, 4)}
    assert ms == {0: pytest.approx(20.0), 1: pytest.approx(20.0), 4: pytest.approx(20.0)}
    assert Engine(EngineConfig(steps=3, block=320), separator=nsnet2).latency_ms == pytest.approx(30.0)


# -- no prefill at whole-block host periods; the integer-ratio FIR resampler -----------------------
def lowpassed_noise(n: int, rate: int, seed: int = 0) -> np.ndarray:
    """White noise low-passed well inside the FIR's passband (0.8 × 8 kHz), as float32."""
    X = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    X[np.fft.rfftfreq(n, 1 / rate) > 6400] = 0
    return (0.3 * np.fft.irfft(X, n) / np.std(np.fft.irfft(X, n))).astype(np.float32)


@pytest.mark.parametrize("host_block", [160, 320, 480])
def test_whole_block_host_periods_need_no_prefill(nsnet2, host_block):
    """16 kHz, host block a whole number of 10 ms engine blocks: no prefill, latency = NSNet2's own
    160 samples (10 ms); impulses come out bit-exact exactly there (bypass), and at the peak through
    the model; no sample is ever filled from the fallback."""
    eng = Engine(EngineConfig(block=160, bypass=True), host_block=host_block, separator=nsnet2)
    assert eng.prefill == 0 and eng.latency == nsnet2.latency == 160 and eng.latency_ms == 10.0
    x = np.zeros(9600, np.float32)
    pos = np.arange(100, len(x) - 400, 977)
    x[pos] = 1.0
    y = stream(eng, padded(x, 480), [host_block])
    np.testing.assert_array_equal(y[160 : 160 + len(x)], x)
    assert not y[:160].any() and eng.stats.fallback_samples == 0
    eng = Engine(EngineConfig(block=160), host_block=host_block, separator=nsnet2)
    noise = 0.003 * np.random.default_rng(3).standard_normal(len(x)).astype(np.float32)
    y = stream(eng, padded(x + noise, 480), [host_block])
    for p in pos:
        assert int(np.argmax(np.abs(y[p : p + 400]))) == 160, f"impulse at {p}"
    assert eng.stats.fallback_samples == 0


def test_other_call_sizes_never_underflow_nor_move_the_timeline(nsnet2, speech):
    """An engine built for 160-sample calls (no prefill) fed other sizes: every call returns its
    length, the missing samples are the input delayed by the latency (bit-exact in bypass), the
    latency never moves, and once calls are whole blocks again the model output is back."""
    eng = Engine(EngineConfig(block=160, bypass=True), host_block=160, separator=nsnet2)
    x = speech[:16000]
    y = stream(eng, padded(x, 160), ODD_SIZES)
    np.testing.assert_array_equal(y[160 : 160 + len(x)], x)
    assert eng.stats.fallback_samples > 0
    # model path: the filled samples are counted; aligned calls afterwards are all model output
    eng = Engine(EngineConfig(block=160), host_block=160, separator=nsnet2)
    ref = Engine(EngineConfig(block=160), host_block=160, separator=nsnet2)
    a = stream(eng, x[:1600], [160]), stream(eng, x[1600:1700], [100]), stream(eng, x[1700:1760], [60])
    filled = eng.stats.fallback_samples
    assert filled == 100  # the 100-sample call; the 60-sample one completed the block
    b = stream(eng, x[1760:], [160])
    assert eng.stats.fallback_samples == filled
    r = stream(ref, x, [160])
    np.testing.assert_allclose(np.concatenate([*a, b])[1760:], r[1760:], atol=1e-6)


def test_fir_design_figures():
    """The FIR's stated figures: 40 samples of group delay at the lower rate, passband ripple under
    0.01 dB up to 0.9 × the lower Nyquist, ≥ 64 dB rejection from the lower Nyquist on."""
    from streamsep.resample import fir_response

    for m in (2, 3, 6):
        r = fir_response(m)
        assert r["delay_low"] == 40 and r["taps"] == 80 * m + 1, r
        assert r["ripple_db"] < 0.01 and r["stopband_db"] < -64.0, r


@pytest.mark.parametrize("src,dst", [(48000, 16000), (16000, 48000), (48000, 8000), (8000, 48000), (32000, 16000)])
def test_fir_streamed_equals_whole(src, dst):
    """Streaming in any block sizes == one call on the whole signal (within 1e-5), and the counts
    are exact: a decimator by M gives ceil(T/M) samples after T, an interpolator M·T."""
    from streamsep.resample import PolyphaseFIR

    x = np.random.default_rng(1).standard_normal(24000).astype(np.float32)
    whole = PolyphaseFIR(src, dst)(x)
    for sizes in ([1], [480], [256], [37, 999, 4000, 2]):
        f = PolyphaseFIR(src, dst)
        parts, i, k = [], 0, 0
        while i < len(x):
            n = sizes[k % len(sizes)]
            parts.append(f(x[i : i + n]))
            assert sum(map(len, parts)) == f.count(i + len(x[i : i + n]))
            i, k = i + n, k + 1
        np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_fir_sweep_round_trip_within_ripple():
    """48 → 16 → 48 kHz: a sine sweep inside the passband comes back at the same level (within the
    stated ripple, twice: two passes) and delayed by exactly 2·40 samples at 16 kHz = 240 at 48 kHz."""
    from streamsep.resample import PolyphaseFIR

    rate, n = 48000, 96000
    t = np.arange(n) / rate
    f0, f1 = 50.0, 7200.0
    x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * t[-1]) * t**2)).astype(np.float32)
    y = PolyphaseFIR(16000, 48000)(PolyphaseFIR(48000, 16000)(x))
    err = y[240:] - x[:-240]
    seg = slice(2000, n - 2000)
    assert np.max(np.abs(err[seg])) < 10 ** (0.02 / 20) - 1 + 2e-3  # ripple (2 × 0.0086 dB) + float32
    assert np.max(np.abs(y[241:] - x[:-241])[seg]) > 0.1  # one sample off is clearly wrong


@pytest.mark.parametrize("host_block", [480, 960])
def test_fir_engine_48k_exact_latency(nsnet2, host_block):
    """48 kHz device, NSNet2 (16 kHz) behind the FIR: latency = 3·(40 + 160 + 40) = 720 samples =
    15 ms, no prefill; band-limited input comes out exactly that late (bypass, error under −55 dB,
    far worse one sample off) and an impulse on the 16 kHz grid peaks exactly there, model running."""
    eng = Engine(EngineConfig(block=160, bypass=True), rate=48000, host_block=host_block, separator=nsnet2)
    assert (eng.resampler, eng.prefill, eng.latency, eng.latency_ms) == ("fir", 0, 720, 15.0)
    x = lowpassed_noise(48000, 48000)
    y = stream(eng, padded(x, 960), [host_block])
    L = eng.latency
    seg = slice(2000, len(x) - 2000)
    err = {d: float(np.sqrt(np.mean((y[L + d : L + d + len(x)][seg] - x[seg]) ** 2)) / np.std(x)) for d in (-1, 0, 1)}
    assert 20 * np.log10(err[0]) < -55 and min(err[-1], err[1]) > 30 * err[0], err
    assert eng.stats.fallback_samples == 0
    eng = Engine(EngineConfig(block=160), rate=48000, host_block=host_block, separator=nsnet2)
    imp = np.zeros(48000, np.float32)
    pos = np.arange(3000, 45000, 3 * 1103)
    imp[pos] = 1.0
    noise = 0.003 * np.random.default_rng(3).standard_normal(len(imp)).astype(np.float32)
    y = stream(eng, padded(imp + noise, 960), [host_block])
    for p in pos:
        assert int(np.argmax(np.abs(y[p : p + 1500]))) == L, f"impulse at {p}"


def test_fir_engine_streamed_equals_whole_file(nsnet2, speech):
    """48 kHz with the FIR, model running: the output for several host block sizes (each engine
    built for its size) equals one whole-file call, latency removed, within 1e-5."""
    from streamsep.resample import PolyphaseFIR

    x = PolyphaseFIR(16000, 48000)(speech[:24000])
    cfg = EngineConfig(steps=2, block=160)
    whole_eng = Engine(cfg, rate=48000, separator=nsnet2)
    whole = whole_eng.process(padded(x, 4000))[whole_eng.latency : whole_eng.latency + len(x)]
    for hb in (480, 256, 1441):
        eng = Engine(cfg, rate=48000, host_block=hb, separator=nsnet2)
        xp = padded(x, 4000 + (-(len(x) + 4000)) % hb)  # whole calls only: a short last call would
        y = stream(eng, xp, [hb])[eng.latency : eng.latency + len(x)]  # be filled from the input
        np.testing.assert_allclose(y, whole, atol=1e-5, err_msg=f"host block {hb}")
        assert eng.stats.fallback_samples == 0


def test_resample_quality_choice(nsnet2):
    """auto: FIR for integer ratios, soxr otherwise; fir at 44.1 kHz is a clear configuration error."""
    assert Engine(EngineConfig(), rate=48000, separator=nsnet2).resampler == "fir"
    assert Engine(EngineConfig(), rate=44100, separator=nsnet2).resampler == "LQ"
    assert Engine(EngineConfig(resample_quality="LQ"), rate=48000, separator=nsnet2).resampler == "LQ"
    with pytest.raises(ConfigError, match="integer rate ratio"):
        Engine(EngineConfig(resample_quality="fir"), rate=44100, separator=nsnet2)


def test_mix_zero_is_delayed_input_exactly(nsnet2, gen_pair):
    x = gen_pair[0][:16000]
    eng = Engine(EngineConfig(steps=2, mix=0.0), separator=nsnet2)
    y = stream(eng, padded(x, eng.latency), ODD_SIZES)
    np.testing.assert_array_equal(y[eng.latency :], x)


def test_bypass_is_delayed_input_exactly_on_real_audio(nsnet2, real_pair):
    x = real_pair[0][:24000]
    eng = Engine(EngineConfig(steps=3, candidates=3, policy="proxy", bypass=True, block=480), separator=nsnet2)
    y = stream(eng, padded(x, eng.latency), ODD_SIZES)
    np.testing.assert_array_equal(y[eng.latency :], x)
    assert not y[: eng.latency].any()


def test_bad_block_and_config_raise(nsnet2):
    with pytest.raises(ConfigError, match="block"):
        Engine(EngineConfig(block=250), separator=nsnet2)
    for kw, key in [
        ({"steps": -1}, "steps"),
        ({"mix": 1.5}, "mix"),
        ({"atten_db": -3.0}, "atten_db"),
        ({"policy": "nope"}, "policy"),
        ({"candidates": 0}, "candidates"),
        ({"ratios": [0.5, 1.5]}, "ratios"),
    ]:
        with pytest.raises(ConfigError, match=key):
            EngineConfig(**kw).validate()


# ------------------------------------------------------------------------------------------------
# parity: streamed == offline (hypothesis), fixed policy == independent refiner
# ------------------------------------------------------------------------------------------------
SOURCES = ["generated"] + (["real0", "real1"] if (SHARED / "data" / "pairs" / "leventure").is_dir() else [])


@cache
def source_clip(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) 1.2 s at 16 kHz."""
    if name == "generated":
        return generated_pair(1.2, 5.0)
    return leventure_pair(int(name[-1]), 1.2, offset=3.0)


@st.composite
def parity_case(draw):
    policy = draw(st.sampled_from(["fixed", "heuristic", "proxy"]))
    steps = draw(st.integers(0, 3))
    cands = draw(st.integers(1, 4)) if policy == "proxy" else 1
    block = 160 * draw(st.sampled_from([1, 2, 5]))
    src = draw(st.sampled_from(SOURCES))
    noise_db = draw(st.floats(-40.0, -10.0))
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(4000, 19200))
    sizes = draw(st.lists(st.one_of(st.integers(1, 200), st.integers(1, MAX_HOST_BLOCK)), min_size=1, max_size=6))
    # digital silence (a muted input) somewhere: the engine holds the chains on all-zero blocks
    gap = draw(st.sampled_from([0, 0, 700, 3000]))
    at = draw(st.integers(0, n))
    return policy, steps, cands, block, src, noise_db, seed, n, sizes, gap, at


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=parity_case())
def test_streamed_equals_offline(nsnet2, case):
    """Deterministic policies: streaming in random host blocks == Engine.run_offline within 1e-5."""
    policy, steps, cands, block, src, noise_db, seed, n, sizes, gap, at = case
    x = source_clip(src)[0][:n]
    x = x + 10 ** (noise_db / 20) * np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    x[at : at + gap] = 0.0
    cfg = EngineConfig(steps=steps, candidates=cands, policy=policy, block=block)
    eng = Engine(cfg, separator=nsnet2)
    y = stream(eng, padded(x, eng.latency + block), sizes)[eng.latency : eng.latency + len(x)]
    off, _, _ = Engine(cfg, separator=nsnet2).run_offline(x)
    assert off.shape == x.shape
    err = float(np.max(np.abs(y - off)))
    assert err < 1e-5, f"{case}: max |streamed − offline| = {err:.2e}"


@pytest.mark.parametrize("policy", ["fixed", "proxy"])
def test_digital_silence_holds_every_chain(nsnet2, policy):
    """All-zero decision blocks leave every step's state untouched and come out as zeros."""
    x = source_clip("generated")[0]
    eng = Engine(EngineConfig(steps=2, candidates=3, policy=policy, block=320), separator=nsnet2)
    stream(eng, x[:9600], [1000])
    stream(eng, np.zeros(2000, np.float32), [1000])  # the last speech leaves the FIFO and STFT buffers
    before = [st.tensors[0].clone() for st in eng.chains.states]
    y = stream(eng, np.zeros(16000, np.float32), [333])
    for b, st_ in zip(before, eng.chains.states):
        assert bool((st_.tensors[0] == b).all())
    assert float(np.max(np.abs(y))) == 0.0
    stream(eng, x[9600:], [1000])  # and speech resumes from them
    assert any(not bool((st_.tensors[0] == b).all()) for b, st_ in zip(before, eng.chains.states))


@pytest.mark.parametrize("src", ["generated", "real"])
def test_fixed_policy_equals_offline_refiner(nsnet2, src):
    """Engine (fixed) == refine_search(..., 'fixed', blend='frame') at every step, within 1e-5."""
    x = generated_pair(2.0, 0.0)[0] if src == "generated" else leventure_pair(1, 2.0)[0]
    ratios = [0.6, 0.3, 0.2]
    eng = Engine(EngineConfig(steps=3, policy="fixed", ratios=ratios, block=800), separator=nsnet2)
    final, per, diag = eng.run_offline(x, per_step=True)
    ref = refine_search(nsnet2, x, 3, "fixed", blend="frame", ratios=ratios)
    assert len(per) == len(ref.estimates) == 4
    for k, (a, b) in enumerate(zip(per, ref.estimates)):
        assert float(np.max(np.abs(a - b))) < 1e-5, f"step {k}"
    np.testing.assert_allclose(final, ref.estimates[-1], atol=1e-5)
    assert [float(np.mean(r)) for r in diag["ratios"]] == pytest.approx(ratios)
    assert ref.ratios[1:] == pytest.approx(ratios)
    # and the refinement did something: each step's estimate differs from the previous one
    assert all(float(np.max(np.abs(per[k] - per[k - 1]))) > 1e-3 for k in range(1, 4))


# ------------------------------------------------------------------------------------------------
# output controls
# ------------------------------------------------------------------------------------------------
def noise_clips() -> list[tuple[str, np.ndarray]]:
    clips = [("generated", coloured_noise(24000, seed=5))]
    if (SHARED / "data" / "noise").is_dir():
        clips.append(("car", real_noise(1.5)))
        clips.append(("babble", real_noise(1.5, name="derived_noizeus_babble.wav")))
    return clips


@pytest.mark.parametrize("atten_db", [6.0, 12.0])
def test_attenuation_limit_bounds_suppression(nsnet2, atten_db):
    """On noise only, output energy ≥ the limit's fraction of the input energy; unlimited goes below it."""
    floor = 10 ** (-atten_db / 10)
    for name, x in noise_clips():
        out = {}
        for limit in (None, atten_db):
            eng = Engine(EngineConfig(steps=1, atten_db=limit), separator=nsnet2)
            y = stream(eng, padded(x, eng.latency), [512])[eng.latency :]
            out[limit] = float(np.mean(y[4000:] ** 2) / np.mean(x[4000:] ** 2))
        assert out[None] < floor, f"{name}: the model alone keeps {out[None]:.3f} — the limit would not bind"
        assert out[atten_db] >= 0.9 * floor, f"{name}: {out[atten_db]:.4f} < {floor:.4f}"
        assert out[atten_db] <= 1.0


def test_attenuation_zero_db_passes_input(nsnet2, gen_pair):
    x = gen_pair[0][:16000]
    eng = Engine(EngineConfig(steps=1, atten_db=0.0), separator=nsnet2)
    y = stream(eng, padded(x, eng.latency), ODD_SIZES)
    np.testing.assert_allclose(y[eng.latency :], x, atol=1e-6)


def max_step(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y.astype(np.float64)))))


def click_clip() -> np.ndarray:
    """2 s of real fan-noise speech (or generated speech in coloured noise without ../shared)."""
    if (SHARED / "data" / "pairs" / "leventure").is_dir():
        return leventure_pair(2, 2.0)[0]
    return generated_pair(2.0, 0.0)[0]


def switched(before: dict, after: dict, x: np.ndarray, half: int = 16000) -> tuple[np.ndarray, Engine]:
    """Stream ``x`` in 256-sample host blocks, calling set_params(**after) at sample ``half``."""
    from streamsep.separators.registry import create

    eng = Engine(EngineConfig(block=320, **before), separator=create("nsnet2"))
    y1 = stream(eng, x[:half], [256])
    eng.set_params(**after)
    y2 = stream(eng, padded(x[half:], eng.latency), [256])
    return np.concatenate([y1, y2]), eng


def unswitched(config: dict, x: np.ndarray, latency: int) -> np.ndarray:
    from streamsep.separators.registry import create

    return stream(Engine(EngineConfig(block=320, **config), separator=create("nsnet2")), padded(x, latency), [1024])


OUTPUT_CHANGES = [
    ({}, {"mix": 0.0}),
    ({"mix": 0.0}, {"mix": 1.0}),
    ({"steps": 2}, {"bypass": True}),
    ({"steps": 1, "bypass": True}, {"bypass": False}),
    ({}, {"atten_db": 6.0}),
    ({"atten_db": 20.0}, {"mix": 0.5, "atten_db": 3.0}),
]


@pytest.mark.parametrize("before,after", OUTPUT_CHANGES, ids=[str(a) for _, a in OUTPUT_CHANGES])
def test_output_control_change_takes_effect_ramped(before, after):
    """mix / bypass / atten_db changed mid-stream: exactly the old output before, exactly the new
    output one block later, and in between no sample step beyond the two outputs' own steps there
    (plus a ramp's share of their difference)."""
    x = click_clip()
    half = 16000
    y, eng = switched(before, after, x, half)
    L, B = eng.latency, eng.block
    for k, v in after.items():
        assert getattr(eng.config, k) == v
    ya, yb = unswitched(before, x, L), unswitched({**before, **after}, x, L)
    np.testing.assert_allclose(y[: half + L - B], ya[: half + L - B], atol=1e-6)
    np.testing.assert_allclose(y[half + L + B :], yb[half + L + B :], atol=1e-6)
    w = slice(half - B, half + L + 2 * B)
    dy, da, db_ = (np.abs(np.diff(v[w].astype(np.float64))) for v in (y, ya, yb))
    slack = float(np.max(np.abs(ya[w] - yb[w]))) / 128  # a ramp over ≥ 128 samples is no click
    excess = dy - np.maximum(da, db_)
    assert excess.max() <= slack, f"click: a step {excess.max():.4f} beyond the signals' own (slack {slack:.4f})"


MODEL_CHANGES = [
    ({}, {"steps": 3}),
    ({"steps": 3}, {"steps": 0}),
    ({"steps": 2}, {"steps": 1}),
    ({"steps": 2}, {"policy": "heuristic"}),
    ({"steps": 2}, {"policy": "proxy", "candidates": 4}),
    ({"steps": 1, "policy": "proxy", "candidates": 3}, {"ratios": [0.3], "policy": "fixed"}),
]


@pytest.mark.parametrize("before,after", MODEL_CHANGES, ids=[str(a) for _, a in MODEL_CHANGES])
def test_model_change_mid_stream_takes_effect_without_click(before, after):
    """steps / policy / candidates changed mid-stream: in use from the next block on, latency unchanged,
    and no sample step around the change beyond the signal's own steps."""
    x = click_clip()
    half = 16000
    y, eng = switched(before, after, x, half)
    L = eng.latency
    assert L == 480
    for k, v in after.items():
        assert getattr(eng.config, k) == v
    steps = eng.config.steps
    assert eng.stats.steps_in_use == steps
    assert eng.policy.name == eng.config.policy
    # the ratios chosen in the last chunk are the new policy's
    rec = [np.asarray(r, float) for r in eng.last_record.ratios[:steps]]
    assert len(rec) == steps and all(len(r) for r in rec)
    if eng.config.policy == "fixed":
        sched = eng.config.ratios or [0.5, 0.4, 0.3]
        for k, r in enumerate(rec):
            assert np.allclose(r, sched[min(k, len(sched) - 1)])
    elif eng.config.policy == "proxy":  # candidates from the spread grid, or kept (nan)
        grid = {0.1, 0.4, 0.6, 0.9}
        assert all(np.isnan(v) or round(float(v), 6) in grid for r in rec for v in r)
    else:  # heuristic: a ratio per block from the block's SNR estimate, within [0.2, 0.8]
        assert all(((r >= 0.2) & (r <= 0.8)).all() for r in rec)
    ya, yb = unswitched(before, x, L), unswitched({**before, **after}, x, L)
    np.testing.assert_allclose(y[: half + L - eng.block], ya[: half + L - eng.block], atol=1e-6)
    own = max(max_step(x), max_step(ya), max_step(yb))
    w = y[half - 2048 : half + L + 2048]
    assert max_step(w) <= own, f"click: {max_step(w):.4f} > the signal's own steps {own:.4f}"


def test_set_params_rejects_bad_values(nsnet2):
    eng = Engine(EngineConfig(), separator=nsnet2)
    with pytest.raises(ConfigError, match="model"):
        eng.set_params(model="rnnoise")  # not a live parameter
    with pytest.raises(ConfigError, match="mix"):
        eng.set_params(mix=-0.5)
    with pytest.raises(ConfigError, match="policy"):
        eng.set_params(policy="oracle-sisdr")
    assert eng.config.mix == 1.0  # nothing queued
    eng.process(np.zeros(160, np.float32))
    assert eng.config.mix == 1.0


def test_load_limit_reduces_steps_not_latency(nsnet2, speech):
    s = speech[:32000]
    eng = Engine(EngineConfig(steps=3, block=320), separator=nsnet2)
    L = eng.latency
    ya = stream(eng, s[:16000], [512])
    assert eng.stats.steps_in_use == 3
    eng.set_load_limit(1, None)
    yb = stream(eng, padded(s[16000:], L), [512])
    assert eng.stats.steps_in_use == 1 and eng.effective() == (1, 1)
    assert np.isnan(eng.stats.ratios[1:]).all() and eng.stats.ratios[0] == pytest.approx(0.5)
    assert eng.latency == L
    y = np.concatenate([ya, yb])
    assert lag_of(y[16000:], s[16000:], L + 200) == L  # still aligned after the cut
    eng.set_load_limit(None, None)
    stream(eng, s[:3200], [512])
    assert eng.stats.steps_in_use == 3 and eng.latency == L


def waveform_switch(steps: int, change: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """RNNoise (48 kHz) with max_steps=2 running ``steps`` steps for 0.5 s, then changed:
    ``load`` (set_load_limit(0)), ``params0`` (set_params(steps=0)) or ``params2`` (set_params(steps=2)).

    Returns (output, input, latency, sample index of the change).
    """
    from streamsep.separators.registry import create

    sep = create("rnnoise")
    s = resample(generated_speech(1.0), 16000, 48000)
    eng = Engine(EngineConfig(model="rnnoise", steps=steps), separator=sep, max_steps=2)
    L, half = eng.latency, 24000
    assert L == eng.block + 3 * sep.latency  # each waveform step adds the separator's latency
    ya = stream(eng, s[:half], [480])
    if change == "load":
        eng.set_load_limit(0, None)
    else:
        eng.set_params(steps=int(change[-1]))
    yb = stream(eng, padded(s[half:], L), [480])
    assert eng.stats.steps_in_use == (2 if change == "params2" else 0) and eng.latency == L
    return np.concatenate([ya, yb]), s, L, half


def test_load_limit_keeps_latency_for_waveform_separator():
    """RNNoise steps each add latency; fewer steps are padded so the total delay stays constant:
    after the cut the output is sample-exact what a 0-step engine with the same latency gives."""
    from streamsep.separators.registry import create

    y, s, L, half = waveform_switch(2, "load")
    ref_eng = Engine(EngineConfig(model="rnnoise", steps=0), separator=create("rnnoise"), max_steps=2)
    assert ref_eng.latency == L
    ref = stream(ref_eng, padded(s, L), [480])
    np.testing.assert_allclose(y[half + L :], ref[half + L :], atol=1e-6)


def silent_runs(y: np.ndarray, min_len: int, level: float = 1e-6) -> list[tuple[int, int]]:
    """(start, length) of runs of |y| < ``level`` at least ``min_len`` samples long."""
    z = np.concatenate([[False], np.abs(y) < level, [False]])
    edges = np.flatnonzero(np.diff(z.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]


@pytest.mark.parametrize("steps,change", [(2, "load"), (2, "params0"), (0, "params2")])
def test_waveform_step_change_has_no_dropout_or_click(steps, change):
    """Changing the step count of a waveform separator (each step adds latency) mid-stream: no
    silent gap (≥ 1 ms) and no sample step beyond the signal's own around the change."""
    y, s, L, half = waveform_switch(steps, change)
    span = slice(half, half + L + 4800)
    assert not silent_runs(s[half - L : half + 4800], 48), "the input itself is silent here: bad test signal"
    assert silent_runs(y[span], 48) == [], "output drops out after the step change"
    own = max(max_step(s), max_step(y[L:half]), max_step(y[half + L + 4800 :]))
    assert max_step(y[span]) <= own, f"click: {max_step(y[span]):.4f} > own steps {own:.4f}"


# ------------------------------------------------------------------------------------------------
# NaN / Inf
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy,steps,cands", [("fixed", 0, 1), ("heuristic", 2, 1), ("proxy", 2, 4)])
def test_nan_inf_input_keeps_output_finite_and_stream_alive(nsnet2, gen_pair, policy, steps, cands):
    x = gen_pair[0][:32000].copy()
    bad = x.copy()
    bad[8000:8100] = np.nan
    bad[12000] = np.inf
    bad[12001] = -np.inf
    bad[12002:12500] = np.nan
    cfg = EngineConfig(steps=steps, candidates=cands, policy=policy, block=320)
    eng = Engine(cfg, separator=nsnet2)
    y = stream(eng, padded(bad, eng.latency), [333])[eng.latency :]
    assert np.isfinite(y).all()
    clean_run = stream(Engine(cfg, separator=nsnet2), padded(x, eng.latency), [333])[eng.latency :]
    # the stream continues: long after the bad samples the output is what it would have been
    tail = slice(24000, 32000)
    assert si_sdr(y[tail], clean_run[tail]) > 20.0
    assert np.mean(y[tail] ** 2) > 0.5 * np.mean(clean_run[tail] ** 2)
