"""Signal faults inside a stream: NaN/Inf samples, full-scale clipping, DC offset, huge values, long
digital silence, sudden level jumps, and separator states poisoned directly.

For a frame-domain model (NSNet2, 16 kHz) and a waveform model (RNNoise, 48 kHz), through the
streaming engine in odd host blocks, the contract is: the output is finite, bounded (the engine
clips to ±4 full scale) and as long as the input; no chain state is poisoned by bad *input* (the
engine sanitises it first, so no reset is needed); a chain whose state is poisoned anyway is reset,
counted (``stats.resets``) and reported, and the stream goes on; seconds after any fault the output
is what a run without the fault gives (recurrent states forget).

Signals: generated speech (espeak-ng, else a numpy voiced signal) plus coloured noise at 5 dB SNR;
rates in Hz, positions and lengths in samples unless a name says ``_s`` (seconds).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import soxr
import torch
from conftest import generated_pair, si_sdr, stream

from streamsep.engine import Engine, EngineConfig
from streamsep.separators.base import TensorState
from streamsep.separators.registry import create

HOST_BLOCKS = [333, 1024, 7, 480]  # odd host block sizes, cycled
BOUND = 4.0  # the engine's output clip, full scale


@pytest.fixture(scope="module")
def seps() -> dict:
    return {"nsnet2": create("nsnet2"), "rnnoise": create("rnnoise")}


#: model -> engine configuration exercised (searching policy for NSNet2, blending for RNNoise)
CONFIGS = {
    "nsnet2": dict(steps=2, candidates=3, policy="proxy", block=640, mix=0.9, atten_db=30.0),
    "rnnoise": dict(steps=1, candidates=2, policy="proxy", block=960),
}


def noisy_speech(seconds: float, rate: int, seed: int = 1) -> np.ndarray:
    x, _ = generated_pair(seconds, 5.0, seed=seed)
    return x if rate == 16000 else soxr.resample(x, 16000, rate).astype(np.float32)


def run(sep, cfg: dict, x: np.ndarray) -> tuple[np.ndarray, Engine]:
    """Stream ``x`` (plus the latency in zeros) and return the output with the latency removed."""
    eng = Engine(EngineConfig(model=sep.name, **cfg), separator=sep)
    y = stream(eng, np.concatenate([x, np.zeros(eng.latency, np.float32)]), HOST_BLOCKS)
    return y[eng.latency :], eng


# -- the fault gauntlet ----------------------------------------------------------------------------
#: (name, start_s, end_s) of each fault in the gauntlet stream; speech in between and after
SEGMENTS = [
    ("nan_inf", 1.0, 1.3),
    ("clipped", 1.8, 2.3),
    ("square", 2.3, 2.6),
    ("dc", 2.6, 3.4),
    ("huge", 3.4, 3.6),
    ("silence", 3.6, 5.6),
    ("quiet", 5.6, 6.1),
    ("loud", 6.1, 6.6),
]
TOTAL_S = 9.0


def gauntlet(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` with every fault of :data:`SEGMENTS` written over it."""
    f = x.copy()
    seg = {name: slice(int(a * rate), int(b * rate)) for name, a, b in SEGMENTS}
    s = seg["nan_inf"]
    f[s] = np.nan
    f[s.start + 7 :: 97][:20] = np.inf
    f[s.start + 11 :: 89][:20] = -np.inf
    s = seg["clipped"]
    f[s] = np.clip(8.0 * f[s], -1.0, 1.0)  # hard clipping
    s = seg["square"]
    f[s] = np.sign(np.sin(2 * np.pi * 200 * np.arange(s.stop - s.start) / rate))  # full-scale square
    f[seg["dc"]] += 0.7  # DC offset
    s = seg["huge"]
    f[s] = 1e6 * np.sign(np.sin(2 * np.pi * 50 * np.arange(s.stop - s.start) / rate) + 1e-9)
    f[seg["silence"]] = 0.0  # digital silence
    f[seg["quiet"]] *= 1e-3  # −60 dB ...
    f[seg["loud"]] = np.clip(4.0 * f[seg["loud"]], -1.0, 1.0)  # ... then +12 dB, clipped
    return f


@pytest.mark.parametrize("model", ["nsnet2", "rnnoise"])
def test_fault_gauntlet_output_finite_bounded_and_recovers(seps, model):
    sep = seps[model]
    rate = sep.sample_rate
    x = noisy_speech(TOTAL_S, rate)
    f = gauntlet(x, rate)
    y, eng = run(sep, CONFIGS[model], f)
    ref, _ = run(sep, CONFIGS[model], x)
    assert len(y) == len(x)
    assert np.isfinite(y).all()
    assert np.max(np.abs(y)) <= BOUND
    # bad input never reaches a model: nothing was poisoned, nothing had to be reset
    assert eng.stats.resets == 0
    assert all(sep.state_is_finite(s) for s in eng.chains.states)
    assert eng.stats.blocks == (len(x) + eng.latency) // eng.block
    seg = {name: slice(int(a * rate), int(b * rate)) for name, a, b in SEGMENTS}
    # digital silence comes out silent once the model's own latency has passed (a few frames)
    s = seg["silence"]
    settle = int(0.1 * rate)
    assert np.max(np.abs(y[s.start + settle : s.stop])) < 1e-3
    # a DC offset is not passed through beyond the dry share the output controls mix back in
    c = CONFIGS[model]
    floor = 10 ** (-c.get("atten_db", math.inf) / 20)
    dry_share = (1 - c.get("mix", 1.0)) + c.get("mix", 1.0) * floor
    assert abs(float(np.mean(y[seg["dc"]]))) < 0.7 * dry_share + 0.03
    # the loud, clipped segment is not amplified: output peak ≤ input peak (1.0)
    assert np.max(np.abs(y[seg["loud"]])) <= 1.0
    # the stream went on: the last 2 s are what a run without faults gives
    tail = slice(len(x) - 2 * rate, len(x))
    assert si_sdr(y[tail], ref[tail]) > 20.0
    assert 0.7 < np.mean(y[tail] ** 2) / np.mean(ref[tail] ** 2) < 1.4


def test_stats_levels_stay_finite_on_nan_blocks(seps):
    """Level meters (dB) must stay numbers when a block holds NaN/Inf: they feed the GUI meters and
    the live statistics JSON (where NaN is not valid JSON)."""
    eng = Engine(EngineConfig(), separator=seps["nsnet2"])
    for bad in (np.nan, np.inf, -np.inf):
        eng.process(np.full(320, bad, np.float32))
        st = eng.stats
        levels = (st.input_peak_db, st.input_rms_db, st.output_peak_db, st.output_rms_db)
        assert all(math.isfinite(v) for v in levels), (bad, levels)


def after_silence(sep, silence_s: float, seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """1 s of noisy speech, ``silence_s`` of exact zeros, then 3 s of noisy speech through the engine.

    Returns (output during the silence, output for the last 3 s with the latency removed, the clean
    speech of those 3 s, CPU seconds per audio second on speech, on zeros)."""
    rate = sep.sample_rate
    x, s = generated_pair(3.0, 5.0, seed=seed)
    if rate != 16000:
        x, s = (soxr.resample(v, 16000, rate).astype(np.float32) for v in (x, s))
    eng = Engine(EngineConfig(model=model_of(sep), steps=1, block=sep.hop * 4), separator=sep)
    t0 = time.process_time()
    stream(eng, x[:rate], [4096])
    t_speech = time.process_time() - t0
    t0 = time.process_time()
    y0 = stream(eng, np.zeros(int(silence_s * rate), np.float32), [4096])
    t_zero = (time.process_time() - t0) / silence_s
    y1 = stream(eng, np.concatenate([x, np.zeros(eng.latency, np.float32)]), [4096])[eng.latency :]
    return y0, y1, s, t_speech, t_zero


@pytest.mark.parametrize("model", ["nsnet2", "rnnoise"])
def test_long_digital_silence_then_speech(seps, model):
    """30 s of exact zeros, then speech: no slow-down on the zeros (denormals), silent output
    during the silence, and from 1.5 s into the speech on, as good as after half a second of silence."""
    sep = seps[model]
    rate = sep.sample_rate
    y0, y1, s, t_speech, t_zero = after_silence(sep, 30.0)
    _, r1, _, _, _ = after_silence(sep, 0.5)
    assert np.isfinite(y0).all() and np.isfinite(y1).all()
    assert np.max(np.abs(y0[rate:])) < 1e-4
    # CPU seconds per audio second on zeros: not slower than on speech (generous for a shared CPU)
    assert t_zero < 3.0 * t_speech + 0.01, (t_zero, t_speech)
    later = slice(int(1.5 * rate), 3 * rate)
    assert si_sdr(y1[later], s[later]) > si_sdr(r1[later], s[later]) - 1.5


@pytest.mark.parametrize("model", ["nsnet2", "rnnoise"])
def test_speech_onset_after_long_silence_is_not_made_worse(seps, model):
    """The first half second of speech after 30 s of digital silence comes out at least as clean as
    it went in (SI-SDR against the clean speech).  Measured: RNNoise 9.1 dB (input 4.8 dB).  NSNet2
    gave −3.2 dB (input 4.7 dB) while its GRU state drifted over the zeros; the engine now holds the
    chains on all-zero decision blocks (refine.StepChains._run_with_silence)."""
    sep = seps[model]
    rate = sep.sample_rate
    x, s = generated_pair(3.0, 5.0, seed=4)
    if rate != 16000:
        x = soxr.resample(x, 16000, rate).astype(np.float32)
    _, y1, s, _, _ = after_silence(sep, 30.0)
    onset = slice(0, rate // 2)
    assert si_sdr(y1[onset], s[onset]) >= si_sdr(x[onset], s[onset])


# -- poisoned states --------------------------------------------------------------------------------
def poisoned(sep, state):
    """A genuinely poisoned copy of a chain state: NSNet2's GRU state set to NaN; for RNNoise the C
    struct after one NaN frame went through the library (its float memories hold NaN)."""
    if model_of(sep) == "nsnet2":
        return TensorState([torch.full_like(state.tensors[0], float("nan"))], list(state.batch_axis))
    x = np.full((1, sep.hop), np.nan, np.float32)
    _, bad = sep.process(x, state)
    return bad


def model_of(sep) -> str:
    return "nsnet2" if sep.name.startswith("nsnet2") else sep.name


@pytest.mark.parametrize("model", ["nsnet2", "rnnoise"])
@pytest.mark.parametrize("chain", [0, 2])
def test_poisoned_chain_is_reset_counted_and_recovers(seps, model, chain):
    sep = seps[model]
    rate = sep.sample_rate
    cfg = dict(steps=2, candidates=2, policy="proxy", block=sep.hop * 4)
    x = noisy_speech(5.0, rate, seed=2)
    a = 2 * rate
    ref, _ = run(sep, cfg, x)
    eng = Engine(EngineConfig(model=model, **cfg), separator=sep)
    xp = np.concatenate([x, np.zeros(eng.latency, np.float32)])
    y1 = stream(eng, xp[:a], HOST_BLOCKS)
    bad = poisoned(sep, eng.chains.states[chain])
    assert not sep.state_is_finite(bad), "the injected state must read as poisoned"
    eng.chains.states[chain] = bad
    y2 = stream(eng, xp[a:], HOST_BLOCKS)
    y = np.concatenate([y1, y2])[eng.latency :]
    assert np.isfinite(y).all() and np.max(np.abs(y)) <= BOUND
    assert eng.stats.resets == 1
    assert all(sep.state_is_finite(s) for s in eng.chains.states)
    tail = slice(len(x) - rate, len(x))
    assert si_sdr(y[tail], ref[tail]) > 15.0
    assert 0.7 < np.mean(y[tail] ** 2) / np.mean(ref[tail] ** 2) < 1.4


def test_poison_every_block_never_stops(seps):
    """A chain poisoned before every block for 2 s: every poisoning is counted, the output stays
    finite and the stream keeps its length; once it stops, the output recovers."""
    sep = seps["nsnet2"]
    cfg = dict(steps=1, candidates=1, policy="fixed", block=320)
    x = noisy_speech(4.0, 16000, seed=5)
    ref, _ = run(sep, cfg, x)
    eng = Engine(EngineConfig(**cfg), separator=sep)
    xp = np.concatenate([x, np.zeros(eng.latency, np.float32)])
    out, n = [], 0
    for i in range(0, len(xp), 320):
        if 8000 <= i < 40000:
            eng.chains.states[1] = poisoned(sep, eng.chains.states[1])
            n += 1
        out.append(eng.process(xp[i : i + 320]))
    y = np.concatenate(out)[eng.latency :]
    assert len(y) == len(x) and np.isfinite(y).all()
    assert eng.stats.resets == n == 100
    tail = slice(len(x) - 16000, len(x))
    assert si_sdr(y[tail], ref[tail]) > 15.0


def test_nan_straight_into_a_separator_is_detected(seps):
    """Without the engine's sanitising, NaN in NSNet2's input poisons its state, and
    ``state_is_finite`` says so (what the engine's reset relies on)."""
    sep = seps["nsnet2"]
    st = sep.new_state(2)
    x = np.zeros((2, 320), np.float32)
    x[1, 5] = np.nan
    _, st = sep.process(x, st)
    assert not sep.state_is_finite(st)
    assert sep.state_is_finite(sep.select(st, [0]))


def test_live_host_reports_chain_resets(seps, tmp_path):
    """The live statistics carry the reset count (what the GUI and ``--stats`` show)."""
    import soundfile as sf

    from streamsep.live import LiveHost

    sys_path_helpers()
    from jackutil import wait_until

    path = tmp_path / "in.wav"
    sf.write(str(path), noisy_speech(3.0, 16000), 16000, subtype="FLOAT")
    host = LiveHost(
        EngineConfig(model="nsnet2", steps=1),
        input_file=str(path),
        output_device="null",
        adapt=False,
        margin_ms=100,
        realtime=False,
    )  # no real-time priority needed here: leave the CPU to real-time tests
    host.start()
    try:
        assert wait_until(lambda: host.stats()["seconds"] > 1.0, 30)
        eng = host.engine
        eng.chains.states[1] = poisoned(seps["nsnet2"], eng.chains.states[1])
        assert wait_until(lambda: eng.stats.resets >= 1, 30)
        assert wait_until(lambda: host.stats()["seconds"] > 2.5, 30)
        st = host.stats()
    finally:
        host.stop()
    assert st["running"] and st["error"] is None
    assert st.get("resets") == 1, sorted(st)


def sys_path_helpers() -> None:
    import sys
    from pathlib import Path

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
