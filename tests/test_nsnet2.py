"""NSNet2 in PyTorch against onnxruntime on the same ONNX file (16 and 48 kHz), the stateful
onnxruntime backend against both, streaming parity, latency, fork/select and denoising on real and
generated audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import generated_pair, leventure_pair, read, shared, si_sdr

from streamsep.separators.nsnet2 import MIN_GAIN, NSNet2, log_power

TOL = 1e-4  # max abs gain difference PyTorch vs onnxruntime


def onnx_gains(sep: NSNet2, feat: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(sep.onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: feat})[0]


def gain_difference(sep: NSNet2, x: np.ndarray) -> tuple[float, float]:
    """(max |gain_torch − gain_onnx|, max |enhanced_torch − enhanced_onnx|) on signal ``x``."""
    n = len(x) // sep.hop * sep.hop
    xt = torch.as_tensor(x[None, :n])
    X, _ = sep.stft.analyze(xt, sep.stft.new_analysis_state(1))
    feat = log_power(X)
    g_torch, _ = sep.gains(feat, sep.new_model_state(1))  # clamped to [−80 dB, 0 dB]
    # the 48 kHz graph ends in Clip(min=1e-4); the 16 kHz graph does not: clamp both the same way
    g_onnx = np.clip(onnx_gains(sep, feat.numpy().astype(np.float32)), MIN_GAIN, 1.0)
    assert g_onnx.shape == tuple(g_torch.shape)
    gain_diff = float(np.max(np.abs(g_torch.numpy() - g_onnx)))
    # the whole enhancement path: process() vs ONNX gains (clipped like NSNet2) applied to the same STFT
    y_torch, _ = sep.process(x[None, :n], sep.new_state(1))
    Y = X * torch.as_tensor(g_onnx)
    y_onnx, _ = sep.stft.synthesize(Y, sep.stft.new_synthesis_state(1))
    return gain_diff, float(np.max(np.abs(y_torch - y_onnx.numpy())))


@pytest.fixture(scope="module")
def torch16():
    """The PyTorch network (the CPU default is the onnxruntime backend)."""
    return NSNet2(16000, backend="torch")


@pytest.fixture(scope="module")
def torch48():
    return NSNet2(48000, backend="torch")


@pytest.mark.parametrize("index", [0, 1])
def test_matches_onnxruntime_16k_real(torch16, index):
    assert torch16.backend == "torch" and isinstance(torch16.net, torch.nn.Module)
    x, _ = leventure_pair(index, 4.0)
    g, y = gain_difference(torch16, x)
    assert g < TOL, f"max gain difference {g:.2e}"
    assert y < 1e-5, f"max output difference {y:.2e}"


def test_matches_onnxruntime_48k_real(torch48):
    """Real speech (resampled to 48 kHz) plus a real full-band 48 kHz noise recording."""
    x, _ = leventure_pair(1, 3.0, rate=48000)
    noise = read(shared("data", "noise", "freesound_573577.wav"), 48000)[: len(x)]
    noise *= 0.5 * np.sqrt(np.mean(x**2) / np.mean(noise**2))
    g, y = gain_difference(torch48, x + noise)
    assert g < TOL, f"max gain difference {g:.2e}"
    assert y < 1e-5


@pytest.mark.parametrize("rate", [16000, 48000])
def test_matches_onnxruntime_generated(torch16, torch48, rate):
    sep = torch16 if rate == 16000 else torch48
    noisy, _ = generated_pair(3.0, 0.0, rate=rate)
    g, y = gain_difference(sep, noisy)
    assert g < TOL, f"max gain difference {g:.2e}"
    assert y < 1e-5


def test_cpu_default_is_stateful_onnxruntime(nsnet2, nsnet2_48k):
    assert nsnet2.backend == nsnet2_48k.backend == "onnxruntime"
    names = {i.name for i in nsnet2.net.session.get_inputs()}
    assert names == {"spec", "h0_in", "h1_in"}
    with pytest.raises(ValueError, match="backend"):
        NSNet2(16000, backend="tensorflow")


@pytest.mark.parametrize("rate", [16000, 48000])
def test_stateful_onnxruntime_streams_like_the_whole_file_graph(nsnet2, nsnet2_48k, rate):
    """Block by block with carried GRU state == the shipped graph over the whole file (real audio)."""
    sep = nsnet2 if rate == 16000 else nsnet2_48k
    x, _ = leventure_pair(1, 3.0, rate=rate)
    n = len(x) // sep.hop * sep.hop
    X, _ = sep.stft.analyze(torch.as_tensor(x[None, :n]), sep.stft.new_analysis_state(1))
    feat = log_power(X)
    whole = onnx_gains(sep, feat.numpy().astype(np.float32))
    state, parts, t = sep.new_model_state(1), [], 0
    for frames in [1, 6, 13, 1, 40, 2, 1000]:
        g, state = sep.gains(feat[:, t : t + frames], state)
        parts.append(g.numpy())
        t += frames
    got = np.concatenate(parts, axis=1)
    assert got.shape == whole.shape
    assert float(np.max(np.abs(got - np.clip(whole, MIN_GAIN, 1.0)))) < 1e-6


@pytest.mark.parametrize("rate", [16000, 48000])
def test_spectral_graph_equals_features_gains_and_product(nsnet2, nsnet2_48k, rate):
    """The engine's one-call pass (features, network, clipped gain and product inside the graph)
    equals the plain stateful graph's gains applied to the frames, states included, batched and
    on a non-contiguous slice (real audio)."""
    sep = nsnet2 if rate == 16000 else nsnet2_48k
    x, _ = leventure_pair(0, 3.0, rate=rate)
    n = len(x) // sep.hop * sep.hop
    X, _ = sep.stft.analyze(torch.as_tensor(np.stack([x[:n], 0.3 * x[:n]])), sep.stft.new_analysis_state(2))
    s_fused, s_plain = sep.new_model_state(2), sep.new_model_state(2)
    for a, b in [(0, 1), (1, 7), (7, 60), (60, X.shape[1])]:
        Xb = X[:, a:b]
        Y, s_fused = sep.step(Xb, s_fused)
        g, s_plain = sep.gains(log_power(Xb), s_plain)
        # log10 as ln·(1/ln 10) in the graph: float rounding, carried through the GRU states
        assert float(torch.max(torch.abs(Y - Xb * g))) < TOL * float(torch.max(torch.abs(Xb)))
        assert float(torch.max(torch.abs(s_fused.tensors[0] - s_plain.tensors[0]))) < TOL


def test_backends_agree_on_real_audio(nsnet2, torch16):
    """The two backends give the same enhanced signal (batched, forked states included)."""
    x, _ = leventure_pair(0, 4.0)
    n = len(x) // 160 * 160
    xb = np.stack([x[:n], 0.5 * x[:n]])
    y_ort, st_o = nsnet2.process(xb, nsnet2.new_state(2))
    y_pt, st_t = torch16.process(xb, torch16.new_state(2))
    assert float(np.max(np.abs(y_ort - y_pt))) < 1e-4
    assert float(torch.max(torch.abs(st_o.model.tensors[0] - st_t.model.tensors[0]))) < 1e-4


def test_geometry(nsnet2, nsnet2_48k):
    assert (nsnet2.sample_rate, nsnet2.hop, nsnet2.latency, nsnet2.n_bins) == (16000, 160, 160, 161)
    assert (nsnet2_48k.sample_rate, nsnet2_48k.hop, nsnet2_48k.latency, nsnet2_48k.n_bins) == (48000, 480, 480, 513)
    assert nsnet2.info()["latency_ms"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="22050"):
        NSNet2(sample_rate=22050)


def test_streaming_equals_whole(nsnet2, gen_pair):
    """Feeding whole hops in uneven chunks gives exactly the whole-signal output."""
    x = gen_pair[0][: 160 * 150]
    whole, _ = nsnet2.process(x[None], nsnet2.new_state(1))
    state, parts, i = nsnet2.new_state(1), [], 0
    for hops in [1, 7, 3, 50, 1, 2, 86]:
        y, state = nsnet2.process(x[None, i : i + hops * 160], state)
        parts.append(y)
        i += hops * 160
    assert i == len(x)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-6)


def test_latency_is_exact(nsnet2, speech):
    """Clean speech passes almost unchanged, delayed by exactly ``latency`` samples."""
    x = speech[: 160 * 200]
    y, _ = nsnet2.process(x[None], nsnet2.new_state(1))
    y = y[0]
    lags = [float(np.dot(y[lag:], x[: len(x) - lag])) for lag in range(0, 400)]
    assert int(np.argmax(lags)) == nsnet2.latency


def test_fork_select_continue_identically(nsnet2, gen_pair):
    x = gen_pair[0][: 160 * 60]
    a, b = x[None, : 160 * 30], x[None, 160 * 30 :]
    _, st = nsnet2.process(a, nsnet2.new_state(1))
    ref, _ = nsnet2.process(b, st)
    forked = nsnet2.fork(st, 3)
    ys, _ = nsnet2.process(np.repeat(b, 3, axis=0), forked)
    for row in ys:
        np.testing.assert_allclose(row, ref[0], atol=1e-6)
    # select one of three different streams and continue it
    z = np.stack([b[0], 0.5 * b[0], np.zeros_like(b[0])])
    _, st3 = nsnet2.process(z, nsnet2.fork(st, 3))
    alone_st = nsnet2.process(z[1:2], st)[1]
    cont = x[None, :1600]
    y_sel, _ = nsnet2.process(cont, nsnet2.select(st3, [1]))
    y_alone, _ = nsnet2.process(cont, alone_st)
    np.testing.assert_allclose(y_sel, y_alone, atol=1e-6)


def test_denoises_real_pairs(nsnet2):
    """NSNet2 improves SI-SDR on real keyboard and door-knock noise."""
    for index in (0, 1):
        x, s = leventure_pair(index, 4.0)
        n = len(x) // 160 * 160 + 160
        y, _ = nsnet2.process(np.pad(x, (0, n + 160 - len(x)))[None], nsnet2.new_state(1))
        y = y[0, 160 : 160 + len(x)]
        assert si_sdr(y, s) > si_sdr(x, s) + 3.0


def test_denoises_generated(nsnet2, gen_pair):
    x, s = gen_pair
    y, _ = nsnet2.process(np.pad(x, (0, 320))[None], nsnet2.new_state(1))
    y = y[0, 160 : 160 + len(x)]
    assert si_sdr(y, s) > si_sdr(x, s) + 2.0
