"""A classical, causal STFT-domain noise suppressor (no network): MCRA noise tracking,
decision-directed a-priori SNR, log-MMSE (or Wiener) gain with a floor.

Per frame ``t`` and bin ``k`` (all streams and bins at once, frames in order):

* noisy power ``P = |X|²``; frequency-smoothed (``[¼, ½, ¼]``) and time-smoothed power
  ``S = α_s·S + (1−α_s)·Sf``;
* minimum tracking (MCRA, Cohen & Berdugo 2001): ``S_min = min(S_min, S)``, ``S_tmp = min(S_tmp, S)``,
  and every ``min_window`` frames ``S_min = min(S_tmp, S)``, ``S_tmp = S``;
* speech presence ``p = α_p·p + (1−α_p)·[S/S_min > δ]``; noise PSD
  ``λ = α̃·λ + (1−α̃)·P`` with ``α̃ = α_d + (1−α_d)·p`` (frozen while speech is present);
* a-posteriori SNR ``γ = P/λ``; a-priori SNR (decision-directed, Ephraim & Malah)
  ``ξ = α_dd·|Ŝ_prev|²/λ + (1−α_dd)·max(γ−1, 0)``, floored at ``ξ_min``;
* gain: log-MMSE ``G = ξ/(1+ξ)·exp(½·E1(v))``, ``v = ξγ/(1+ξ)`` (Ephraim & Malah 1985), or Wiener
  ``G = ξ/(1+ξ)``; clipped to ``[floor, 1]`` with the floor in dB (−25 dB by default).

16 kHz, 20 ms sqrt-Hann window (320), 10 ms hop (160), 320-point FFT: the same framing as NSNet2,
so latency is 160 samples (10 ms).  The first frame of each stream initialises the noise estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from streamsep.separators.base import FrameSeparator, TensorState

_EULER = 0.5772156649015329


def expint_e1(v: torch.Tensor) -> torch.Tensor:
    """Exponential integral E1(v) for v > 0 (Abramowitz & Stegun 5.1.53 / 5.1.56; rel. error < 5e-5)."""
    v = v.clamp_min(1e-30)
    small = (
        -_EULER + v * (0.99999193 + v * (-0.24991055 + v * (0.05519968 + v * (-0.00976004 + v * 0.00107857))))
    ) - torch.log(v)
    vl = v.clamp_min(1.0)
    large = (vl * vl + 2.334733 * vl + 0.250621) / (vl * vl + 3.330657 * vl + 1.681534) * torch.exp(-vl) / vl
    return torch.where(v <= 1.0, small, large)


@dataclass(frozen=True)
class SuppressorParams:
    """Tuning of :class:`SpectralSuppressor` (frames are 10 ms hops)."""

    floor_db: float = -25.0  #: gain floor in dB
    gain: str = "logmmse"  #: "logmmse" or "wiener"
    alpha_dd: float = 0.98  #: decision-directed smoothing
    xi_min_db: float = -25.0  #: a-priori SNR floor in dB
    alpha_s: float = 0.8  #: time smoothing of the power for minimum tracking
    alpha_d: float = 0.95  #: noise PSD smoothing while speech is absent
    alpha_p: float = 0.2  #: speech-presence probability smoothing
    delta: float = 5.0  #: S/S_min threshold for speech presence
    min_window: int = 100  #: minimum-tracking window in frames (1 s)


class SpectralSuppressor(FrameSeparator):
    """Cheap classical noise suppressor (MCRA + decision-directed log-MMSE), 16 kHz, 10 ms hop."""

    name = "spectral"
    sample_rate = 16000
    hop = 160
    n_fft = 320
    win_length = 320
    description = "Classical suppressor: MCRA noise tracking, decision-directed log-MMSE gain, 16 kHz"

    def __init__(
        self, device: str | torch.device = "cpu", floor_db: float = -25.0, gain: str = "logmmse", **params
    ) -> None:
        if gain not in ("logmmse", "wiener"):
            raise ValueError(f"gain must be 'logmmse' or 'wiener', not '{gain}'")
        if floor_db > 0:
            raise ValueError(f"floor_db must be <= 0 dB, not {floor_db}")
        unknown = set(params) - set(SuppressorParams.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown SpectralSuppressor parameter(s): {', '.join(sorted(unknown))}")
        super().__init__(device)
        self.params = SuppressorParams(floor_db=floor_db, gain=gain, **params)
        if self.params.min_window < 1:
            raise ValueError(f"min_window must be >= 1 frame, not {self.params.min_window}")
        self.floor = 10.0 ** (self.params.floor_db / 20.0)
        self.xi_min = 10.0 ** (self.params.xi_min_db / 10.0)

    def new_model_state(self, batch: int) -> TensorState:
        """S, S_min, S_tmp, noise PSD λ, speech presence p, previous clean power (B, F) and frame count (B,)."""
        z = lambda: torch.zeros(batch, self.n_bins, device=self.device)  # noqa: E731
        count = torch.zeros(batch, dtype=torch.int64, device=self.device)
        return TensorState([z(), z(), z(), z(), z(), z(), count], [0] * 7)

    @torch.inference_mode()
    def gains(self, power: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Noisy power (B, T, F) → gains (B, T, F) in [floor, 1], new state."""
        pr = self.params
        S, Smin, Stmp, lam, p, prev, count = state.tensors
        eps = 1e-12
        kernel = torch.tensor([0.25, 0.5, 0.25], device=power.device, dtype=power.dtype).view(1, 1, 3)
        B, T, nb = power.shape
        Pf = F.conv1d(F.pad(power.reshape(B * T, 1, nb), (1, 1), mode="replicate"), kernel).reshape(B, T, nb)
        out = torch.empty_like(power)
        for t in range(T):
            P, Sf = power[:, t], Pf[:, t]
            first = (count == 0).unsqueeze(-1)
            S = torch.where(first, Sf, pr.alpha_s * S + (1.0 - pr.alpha_s) * Sf)
            Smin = torch.where(first, S, torch.minimum(Smin, S))
            Stmp = torch.where(first, S, torch.minimum(Stmp, S))
            reset = ((count + 1) % pr.min_window == 0).unsqueeze(-1)
            Smin = torch.where(reset, torch.minimum(Stmp, S), Smin)
            Stmp = torch.where(reset, S, Stmp)
            present = (S > pr.delta * Smin).to(P.dtype)
            p = pr.alpha_p * p + (1.0 - pr.alpha_p) * present
            a = pr.alpha_d + (1.0 - pr.alpha_d) * p
            lam = torch.where(first, P, a * lam + (1.0 - a) * P)
            lam_c = lam.clamp_min(eps)
            gamma = P / lam_c
            xi = pr.alpha_dd * prev / lam_c + (1.0 - pr.alpha_dd) * (gamma - 1.0).clamp_min(0.0)
            xi = xi.clamp_min(self.xi_min)
            g = xi / (1.0 + xi)
            if pr.gain == "logmmse":
                v = g * gamma
                g = g * torch.exp(0.5 * expint_e1(v))
            g = g.clamp(self.floor, 1.0)
            prev = g * g * P
            out[:, t] = g
            count = count + 1
        return out, TensorState([S, Smin, Stmp, lam, p, prev, count], [0] * 7)

    @torch.inference_mode()
    def step(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        power = frames.real**2 + frames.imag**2
        g, new = self.gains(power, state)
        return frames * g, new
