"""Reference-free policies: the floor-match default keeps in speech and removes only leaked impulsive
noise in pauses; noise-gated acts in noise blocks; `streamsep proxies` measures agreement with the oracle;
waveform keep-previous stays aligned."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import generated_pair, leventure_pair, read, shared, si_sdr

from streamsep.engine import Engine, EngineConfig
from streamsep.policies import (
    DEFAULT_PROXY,
    KEEP,
    PROXIES,
    FloorMatchPolicy,
    PolicyError,
    ProxyPolicy,
    make_policy,
    score_noise_gated,
)


def noise_frames(rng, frames: int = 20, bins: int = 161) -> torch.Tensor:
    """Complex white-noise STFT frames (1, T, F)."""
    return torch.complex(
        torch.as_tensor(rng.standard_normal((1, frames, bins)), dtype=torch.float32),
        torch.as_tensor(rng.standard_normal((1, frames, bins)), dtype=torch.float32),
    )


def test_default_proxy_is_floor_match_and_keeps_when_speech_present(nsnet2):
    assert DEFAULT_PROXY == "floor-match"
    pol = make_policy("proxy")
    assert isinstance(pol, FloorMatchPolicy)
    with pytest.raises(PolicyError, match="proxy_policy"):
        ProxyPolicy("floor-match")
    x, s = generated_pair(seconds=2.0, snr_db=20.0)  # speech dominates every block
    X, _ = nsnet2.analyze(torch.as_tensor(x)[None], nsnet2.stft.new_analysis_state(1))
    Y, _ = nsnet2.step(X, nsnet2.new_model_state(1))
    Yc = torch.cat([0.1 * Y, 0.5 * Y, Y])  # candidates that remove a lot
    pol.configure(0.2)
    for b in range(0, 180, 20):  # every block of the utterance
        sl = slice(b, b + 20)
        assert pol.choose(1, X[:, sl], Y[:, sl], Yc[:, sl], np.array([0.2, 0.5, 0.8])).index == KEEP


def test_floor_match_removes_a_leaked_click_down_to_the_floor():
    """In a pause (the model kept −40 dB of stationary noise), a block where the mixture holds a click
    (one frame 20 dB up) that leaked into the estimate is brought to the candidate closest to the
    residual floor; a steady rise of the residual without an impulsive mixture, speech-like blocks
    and the first second (no history yet) are kept."""
    rng = np.random.default_rng(1)
    pol = FloorMatchPolicy()
    pol.configure(0.2)
    gains = torch.tensor([[0.1], [0.35], [0.8]]).view(3, 1, 1)
    ratios = np.array([0.1, 0.5, 0.9])

    def click_block():
        X = noise_frames(rng)
        X[:, 10] *= 10.0  # +20 dB for one frame
        Y = 0.01 * X
        Y[:, 10] *= 5.0  # the click leaked: still gated (−26 dB kept in that frame)
        return X, Y

    X, Y = click_block()
    assert pol.choose(1, X, Y, gains * Y, ratios).index == KEEP  # no history yet: warm-up
    for _ in range(6):  # 1.2 s of pause: histories fill
        X = noise_frames(rng)
        assert pol.choose(1, X, 0.01 * X, gains * (0.01 * X), ratios).index == KEEP
    X, Y = click_block()
    c = pol.choose(1, X, Y, gains * Y, ratios)
    assert c.index == 0 and c.ratio == 0.1  # −20 dB: the candidate closest to the residual floor
    X = noise_frames(rng)
    burst = 0.03 * X  # residual 9.5 dB up, mixture steady: not impulsive, kept (PESQ wants room tone)
    assert pol.choose(1, X, burst, gains * burst, ratios).index == KEEP
    X = noise_frames(rng)
    assert pol.choose(1, X, 0.5 * X, gains * (0.5 * X), ratios).index == KEEP  # speech-like: kept
    pol.reset()
    assert pol._mix == {} and pol._res == {} and pol._mixf == {} and pol._quiet == {}


def test_floor_match_keeps_when_no_candidate_removes_the_margin():
    """A leaked click whose candidates would remove only 1.9 / 3.1 dB is kept (the default asks for
    4 dB: small removals were where the rule cost PESQ on the real pairs); with a 1 dB margin (the
    third-session default) the same block is acted on."""
    for margin, expect_keep in ((None, True), (1.0, False)):
        rng = np.random.default_rng(1)
        pol = FloorMatchPolicy() if margin is None else FloorMatchPolicy(margin=margin)
        pol.configure(0.2)
        gains = torch.tensor([[0.8], [0.7]]).view(2, 1, 1)  # −1.9 dB, −3.1 dB
        ratios = np.array([0.5, 0.9])
        for _ in range(7):  # 1.4 s of pause: past the warm-up, histories full
            X = noise_frames(rng)
            assert pol.choose(1, X, 0.01 * X, gains * (0.01 * X), ratios).index == KEEP
        X = noise_frames(rng)
        X[:, 10] *= 10.0
        Y = 0.01 * X
        Y[:, 10] *= 5.0
        c = pol.choose(1, X, Y, gains * Y, ratios)
        assert (c.index == KEEP) == expect_keep, (margin, c)


def test_floor_match_second_session_rule_is_still_available():
    """``mix_db`` (mixture within 3 dB of its floor) without the impulse test: a steady residual
    burst is brought to the floor, a block where the mixture rises 9.5 dB is kept."""
    rng = np.random.default_rng(1)
    pol = FloorMatchPolicy(transient_db=None, mix_db=3.0, warmup_s=0.0, margin=1.0)
    pol.configure(0.2)
    gains = torch.tensor([[0.1], [0.35], [0.8]]).view(3, 1, 1)
    ratios = np.array([0.1, 0.5, 0.9])
    for _ in range(6):
        X = noise_frames(rng)
        assert pol.choose(1, X, 0.01 * X, gains * (0.01 * X), ratios).index == KEEP
    X = noise_frames(rng)
    burst = 0.03 * X
    c = pol.choose(1, X, burst, gains * burst, ratios)
    assert c.index == 1 and c.ratio == 0.5  # −9.1 dB lands at the floor; −20 dB would go below it
    X = 3.0 * noise_frames(rng)  # the mixture rises 9.5 dB: maybe speech the model removed
    assert pol.choose(1, X, 0.03 * X, gains * (0.03 * X), ratios).index == KEEP


def test_noise_gated_keeps_when_speech_present(nsnet2):
    x, s = generated_pair(seconds=2.0, snr_db=20.0)  # speech dominates every block
    X, _ = nsnet2.analyze(torch.as_tensor(x)[None], nsnet2.stft.new_analysis_state(1))
    Y, _ = nsnet2.step(X, nsnet2.new_model_state(1))
    Yc = torch.cat([0.1 * Y, 0.5 * Y, Y])  # candidates that remove a lot
    sl = slice(50, 70)  # a speech block (20 frames)
    sc = score_noise_gated(X[:, sl], Y[:, sl], Yc[:, sl])
    assert np.isneginf(sc[:-1]).all() and sc[-1] == 0.0
    choice = ProxyPolicy("noise-gated").choose(1, X[:, sl], Y[:, sl], Yc[:, sl], np.array([0.2, 0.5, 0.8]))
    assert choice.index == KEEP


def test_noise_gated_acts_in_a_noise_only_block(nsnet2):
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(16000)).astype(np.float32)
    X, _ = nsnet2.analyze(torch.as_tensor(noise)[None], nsnet2.stft.new_analysis_state(1))
    Y, _ = nsnet2.step(X, nsnet2.new_model_state(1))
    sl = slice(40, 60)
    Yc = torch.cat([0.1 * Y[:, sl], 0.9 * Y[:, sl]])  # −20 dB and −0.9 dB of extra removal
    sc = score_noise_gated(X[:, sl], Y[:, sl], Yc)
    assert sc[0] == pytest.approx(20.0, abs=0.1) and sc[1] == pytest.approx(0.92, abs=0.05)
    choice = ProxyPolicy("noise-gated").choose(1, X[:, sl], Y[:, sl], Yc, np.array([0.1, 0.9]))
    assert choice.index == 0  # 20 dB beats the 3 dB margin; 0.9 dB alone would not


def test_default_proxy_removes_a_real_door_knock_and_touches_nothing_else(nsnet2):
    """A whole real leventure recording (door knocks at −5 dB SNR): the default proxy acts in at least
    one 200 ms block, the output equals the one-step output outside the acting blocks (one block of
    slack for the synthesis overlap), and SI-SDR / PESQ do not fall (measured: +0.0006 dB, +0.0007)."""
    from streamsep.metrics import pesq_wb

    d = shared("data", "pairs", "leventure")
    x = read(d / "noisy" / "lev_spk2_bd0b83b4_00055_2_door_knock_snr-5dB.wav")
    s = read(d / "clean" / "lev_spk2_bd0b83b4.wav")
    n = min(len(x), len(s))
    x, s = x[:n], s[:n]
    eng = Engine(EngineConfig(steps=2, policy="proxy", candidates=4, block=3200), separator=nsnet2)
    yk, per, _ = eng.run_offline(x, per_step=True)
    y0 = per[0]
    acted = sorted({b for rr in eng.last_record.ratios for b, r in enumerate(rr) if not np.isnan(r)})
    assert acted, "the default proxy never acted on a recording with door knocks"
    outside = np.ones(n, bool)
    for b in acted:  # engine block b covers model samples [b·3200, (b+1)·3200) before the latency
        lo = max(0, b * 3200 - eng.model_latency - 3200)
        outside[lo : (b + 1) * 3200 - eng.model_latency + 3200] = False
    assert outside.sum() > 0.8 * n
    assert np.max(np.abs(yk[outside] - y0[outside])) < 1e-6
    assert np.max(np.abs(yk[~outside] - y0[~outside])) > 1e-4  # and it did change something
    assert si_sdr(yk, s) >= si_sdr(y0, s) - 0.001
    assert pesq_wb(yk, s, 16000) >= pesq_wb(y0, s, 16000) - 0.002


def _lazy_and_full(cfg: EngineConfig, sep, x: np.ndarray):
    """(output, chosen ratios, passes) with the policy's precheck on, then with every candidate run."""
    runs = []
    for lazy in (True, False):
        eng = Engine(cfg, separator=sep)
        eng.chains.lazy_keep = lazy
        y = eng.run_offline(x)[0]
        runs.append((y, [list(r) for r in eng.last_record.ratios], eng.chains.passes))
    return runs


def test_precheck_skips_the_candidates_of_kept_blocks_and_changes_no_decision(nsnet2):
    """The default proxy decides most KEEPs from the mixture and the previous estimate alone; then
    only the candidate whose state survives is run.  On a whole real recording where it acts (door
    knocks), the decisions are identical to running all four candidates every block, the output
    agrees to float rounding (batch 1 against batch 4), and fewer than half the passes run."""
    d = shared("data", "pairs", "leventure")
    x = read(d / "noisy" / "lev_spk2_bd0b83b4_00055_2_door_knock_snr-5dB.wav")
    (y_lazy, r_lazy, p_lazy), (y_full, r_full, p_full) = _lazy_and_full(
        EngineConfig(steps=2, policy="proxy", candidates=4, block=3200), nsnet2, x
    )
    assert any(not np.isnan(r) for rr in r_full for r in rr), "the proxy never acted: nothing compared"
    np.testing.assert_array_equal(np.array(r_lazy), np.array(r_full))  # NaN = kept, equal as NaN
    np.testing.assert_allclose(y_lazy, y_full, atol=1e-5)
    assert p_full > 8 * len(r_full[0])  # 1 + 2 × 4 per block, but for digitally silent blocks
    assert p_lazy < 0.5 * p_full


def test_precheck_keeps_waveform_models_aligned():
    """RNNoise (waveform blending, per-step delays): the precheck path gives the same decisions and
    output as running every candidate, on a real keyboard recording."""
    import soxr

    from streamsep.separators.registry import create

    x, _ = leventure_pair(0, seconds=4.0)
    x48 = soxr.resample(x, 16000, 48000).astype(np.float32)
    (y_lazy, r_lazy, p_lazy), (y_full, r_full, p_full) = _lazy_and_full(
        EngineConfig(model="rnnoise", steps=2, policy="proxy", candidates=4, block=4800), create("rnnoise"), x48
    )
    np.testing.assert_array_equal(np.array(r_lazy), np.array(r_full))
    np.testing.assert_allclose(y_lazy, y_full, atol=1e-5)
    assert p_lazy < p_full


def test_default_proxy_does_not_lower_si_sdr_or_pesq_on_real_pairs(nsnet2):
    """On real leventure segments the default proxy keeps SI-SDR within 0.05 dB and PESQ within 0.01 of
    one-step (docs/PROXIES.md, every pair: +0.00004 dB / +0.00005 over 72 files)."""
    from streamsep.metrics import pesq_wb

    for i in range(3):
        x, s = leventure_pair(i, seconds=4.0)
        one = Engine(EngineConfig(steps=0), separator=nsnet2).run_offline(x)[0]
        prox = Engine(EngineConfig(steps=2, policy="proxy", candidates=4, block=3200), separator=nsnet2).run_offline(x)[
            0
        ]
        assert si_sdr(prox, s) >= si_sdr(one, s) - 0.05
        assert pesq_wb(prox, s, 16000) >= pesq_wb(one, s, 16000) - 0.01


def test_every_proxy_runs_in_the_engine(nsnet2, gen_pair):
    x, _ = gen_pair
    for name in PROXIES:
        y = Engine(
            EngineConfig(steps=1, policy="proxy", proxy=name, candidates=3, block=800), separator=nsnet2
        ).run_offline(x)[0]
        assert np.isfinite(y).all() and len(y) == len(x)


def test_waveform_keep_previous_is_aligned():
    """RNNoise: a proxy that always keeps must equal the one-step output at the reported latency."""
    from streamsep.separators.registry import create

    sep = create("rnnoise")
    x, _ = generated_pair(seconds=2.0, snr_db=5.0)
    import soxr

    x48 = soxr.resample(x, 16000, 48000).astype(np.float32)
    one = Engine(EngineConfig(model="rnnoise", steps=0), separator=sep).run_offline(x48)[0]
    eng = Engine(
        EngineConfig(model="rnnoise", steps=1, policy="proxy", proxy="energy", candidates=2, block=4800), separator=sep
    )
    eng.policy = ProxyPolicy("energy", margin=1e9)  # never leaves the previous estimate
    kept = eng.run_offline(x48)[0]
    np.testing.assert_allclose(kept, one, atol=1e-6)


def test_proxies_command_reports_agreement(tmp_path):
    root = shared("data", "pairs", "leventure")
    from streamsep.cli import main

    d = tmp_path / "pairs"
    (d / "clean").mkdir(parents=True)
    (d / "noisy").mkdir()
    import soundfile as sf

    for i in range(2):
        x, s = leventure_pair(i, seconds=2.0)
        sf.write(d / "clean" / f"c{i}.wav", s, 16000)
        sf.write(d / "noisy" / f"c{i}_n.wav", x, 16000)
    out = tmp_path / "px.json"
    assert main(["proxies", str(d), "--limit", "2", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    sel = rep["selectors"]
    assert sel["oracle"]["agreement"] == 1.0 and sel["oracle"]["mean_gain_db"] >= 0.0
    for name in PROXIES:
        assert 0.0 <= sel[name]["agreement"] <= 1.0
        assert sel[name]["decisions"] == sel["oracle"]["decisions"] > 0
    assert root.exists()
