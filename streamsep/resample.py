"""Streaming sample-rate conversion for the engine (device rate ↔ model rate), one mono stream.

Two kinds:

* :class:`PolyphaseFIR` — integer ratios (48 k ↔ 16 k is 3, 48 k ↔ 8 k is 6, 32 k ↔ 16 k is 2):
  a linear-phase Kaiser-windowed-sinc FIR run as a polyphase decimator or interpolator in numpy.
  It is *not bursty*: after ``T`` input samples a decimator by M has produced exactly
  ``ceil(T / M)`` samples and an interpolator exactly ``M·T``, so the engine needs no output
  prefill for it when the host block is a whole number of engine blocks.  Its group delay is
  ``half`` samples of the lower rate by construction (``half·M`` samples of the higher rate), so
  the engine's latency stays an exact integer number of samples.
  Default design (``half = 40``, 65 dB Kaiser): passband flat to 0.9 × the lower rate's Nyquist
  frequency, stopband from that Nyquist frequency on (nothing that would fold into the lower
  rate's band passes above −60 dB); figures in :func:`fir_response`.
* :class:`SoxrStream` — any ratio (44.1 k ↔ 16 k …): soxr's streaming resampler, delay-compensated
  by soxr but bursty (its output comes in lumps), so the engine measures the prefill it needs
  (:func:`soxr_prefill`).

:func:`make_pair` picks one from ``resample_quality`` (``"auto"``: FIR for integer ratios, soxr
otherwise; ``"fir"``: FIR, an error for other ratios; a soxr quality name: soxr).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: default FIR half-length in samples of the lower rate (= its group delay at that rate)
FIR_HALF = 40
#: default FIR Kaiser design attenuation (dB)
FIR_ATTEN_DB = 65.0
#: where the FIR's passband ends, as a fraction of the lower rate's Nyquist frequency
FIR_PASSBAND = 0.9


def integer_ratio(a: int, b: int) -> int:
    """M when one rate is M times the other (M ≥ 2), else 0."""
    hi, lo = max(a, b), min(a, b)
    return hi // lo if lo > 0 and hi != lo and hi % lo == 0 else 0


def fir_design(
    ratio: int, half: int = FIR_HALF, atten_db: float = FIR_ATTEN_DB, passband: float = FIR_PASSBAND
) -> np.ndarray:
    """Linear-phase low-pass taps at the higher rate for conversion by ``ratio`` (float64, DC gain 1).

    Length ``2·half·ratio + 1`` (odd, symmetric), centre tap ``half·ratio``.  The cut-off lies half
    way between the passband edge (``passband`` × the lower Nyquist) and the lower Nyquist."""
    n = 2 * half * ratio + 1
    fc = 0.5 * (1.0 + passband) / 2.0 / ratio  # cycles per high-rate sample
    t = np.arange(n) - half * ratio
    beta = 0.1102 * (atten_db - 8.7) if atten_db > 50 else 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    h = 2 * fc * np.sinc(2 * fc * t) * np.kaiser(n, beta)
    return h / h.sum()


class PolyphaseFIR:
    """Streaming integer-ratio converter ``src`` → ``dst`` Hz (one of them a multiple of the other).

    Decimator (src = M·dst): output ``k`` = Σ h[j]·x[kM − j] (ready once input ``kM`` has arrived).
    Interpolator (dst = M·src): output ``lM + p`` = M·Σ h[qM + p]·x[l − q] (ready with input ``l``).
    Delay: :attr:`delay_low` samples of the lower rate, exactly (the taps are symmetric about
    ``half·M``)."""

    def __init__(self, src: int, dst: int, half: int = FIR_HALF, atten_db: float = FIR_ATTEN_DB) -> None:
        m = integer_ratio(src, dst)
        if not m:
            raise ValueError(f"PolyphaseFIR: {src} → {dst} Hz is not an integer ratio")
        self.src, self.dst, self.ratio = int(src), int(dst), m
        self.down = src > dst
        self.delay_low = int(half)  # group delay in samples of the lower rate
        h = fir_design(m, half, atten_db)
        self.taps = h
        if self.down:
            self.h = h.astype(np.float32)  # symmetric: no reversal needed
            self.hist = np.zeros(len(h) - 1, np.float32)
            self.t = 0  # input samples seen
        else:
            q = -(-len(h) // m)
            hp = np.zeros(q * m)
            hp[: len(h)] = h * m
            # window row i holds x[l−Q+1 … l]; column p of G[::-1] weights them for output lM+p
            self.g = np.ascontiguousarray(hp.reshape(q, m)[::-1]).astype(np.float32)
            self.hist = np.zeros(q - 1, np.float32)

    def count(self, total_in: int) -> int:
        """Output samples produced after ``total_in`` input samples in all (any call sizes)."""
        return -(-total_in // self.ratio) if self.down else total_in * self.ratio

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self.hist, x])
        if self.down:
            m, t, n = self.ratio, self.t, len(x)
            k0 = -(-t // m)
            k1 = -(-(t + n) // m)
            self.t = t + n
            self.hist = buf[len(buf) - len(self.hist) :]
            if k1 <= k0:
                return np.zeros(0, np.float32)
            w = np.lib.stride_tricks.sliding_window_view(buf, len(self.h))
            return w[k0 * m - t :: m][: k1 - k0] @ self.h
        self.hist = buf[len(buf) - len(self.hist) :]
        if not len(x):
            return np.zeros(0, np.float32)
        w = np.lib.stride_tricks.sliding_window_view(buf, self.g.shape[0])
        return (w @ self.g).reshape(-1)


class SoxrStream:
    """Streaming soxr resampler for one mono stream (delay-compensated by soxr, bursty output)."""

    def __init__(self, src: int, dst: int, quality: str) -> None:
        import soxr

        self.src, self.dst, self.quality = src, dst, quality
        self.rs = soxr.ResampleStream(src, dst, 1, dtype="float32", quality=quality)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.rs.resample_chunk(np.ascontiguousarray(x, dtype=np.float32))


def make_pair(rate: int, model_rate: int, quality: str):
    """(device → model, model → device) converters and the name of the kind chosen.

    ``quality``: ``"auto"`` (FIR for integer ratios, else soxr LQ upwards / HQ downwards to the
    model), ``"fir"`` (ValueError for a non-integer ratio) or a soxr quality (QQ … VHQ)."""
    ratio = integer_ratio(rate, model_rate)
    if quality == "fir" and not ratio:
        raise ValueError(f"resample_quality 'fir' needs an integer rate ratio; {rate} ↔ {model_rate} Hz is not one")
    if quality in ("fir", "auto") and ratio:
        return PolyphaseFIR(rate, model_rate), PolyphaseFIR(model_rate, rate), "fir"
    if quality in ("auto", "fir"):
        quality = "HQ" if rate < model_rate else "LQ"
    return SoxrStream(rate, model_rate, quality), SoxrStream(model_rate, rate, quality), quality


def fifo_prefill(host_block: int, block: int, count_in, count_out) -> int:
    """Output-FIFO prefill (host samples) so that calls of ``host_block`` samples never run dry.

    ``count_in(T)``: model samples after ``T`` host samples; ``count_out(C)``: host samples after
    ``C`` model samples; the model consumes whole ``block`` s.  The deficit is periodic; one full
    period of calls is simulated (0 when every call yields exactly its own length)."""
    cycle = block * max(1, count_out(block) // block)  # the deficit repeats every cycle host samples
    period = math.lcm(host_block, cycle)
    worst = 0
    for k in range(1, period // host_block + 1):
        t = k * host_block
        c = (count_in(t) // block) * block
        worst = max(worst, t - count_out(c))
    return worst


def soxr_prefill(rate: int, model_rate: int, block: int, host_block: int, quality: str) -> int:
    """Host samples of output prefill that soxr's bursty streaming needs for calls of ``host_block``
    (simulated on 2 s of zeros, plus one host block)."""
    a = SoxrStream(rate, model_rate, quality)
    b = SoxrStream(model_rate, rate, quality)
    fifo_m = produced = demanded = worst = 0
    total = int(2.0 * rate)
    for start in range(0, total, host_block):
        n = min(host_block, total - start)
        fifo_m += len(a(np.zeros(n, np.float32)))
        whole = (fifo_m // block) * block
        fifo_m -= whole
        if whole:
            produced += len(b(np.zeros(whole, np.float32)))
        demanded += n
        worst = max(worst, demanded - produced)
    return int(worst + host_block)


def fir_response(
    ratio: int,
    half: int = FIR_HALF,
    atten_db: float = FIR_ATTEN_DB,
    passband: float = FIR_PASSBAND,
    n_fft: int = 1 << 16,
) -> dict:
    """Measured figures of the FIR design: passband ripple (peak-to-peak dB up to ``passband`` ×
    the lower Nyquist), worst stopband gain (dB, from the lower Nyquist up: aliasing/imaging
    rejection), taps and group delay (samples of the lower rate)."""
    h = fir_design(ratio, half, atten_db, passband)
    H = np.abs(np.fft.rfft(h, n_fft))
    f = np.arange(len(H)) / n_fft * ratio  # in units of the lower rate (0.5 = its Nyquist)
    pb = H[f <= 0.5 * passband]
    sb = H[f >= 0.5]
    return {
        "taps": len(h),
        "delay_low": half,
        "ripple_db": float(20 * np.log10(pb.max() / pb.min())),
        "stopband_db": float(20 * np.log10(sb.max())),
    }


@dataclass
class RatePlan:
    """How an engine converts rates and buffers output (:func:`plan`).  Samples at the device rate."""

    rs_in: object | None  # device → model converter (None: same rate)
    rs_out: object | None  # model → device converter
    kind: str | None  # "fir", a soxr quality, or None
    prefill: int  # output-FIFO prefill
    delay: int  # resampler group delay (the FIR's; soxr compensates its own: 0)
    latency: float  # prefill + delay + model latency (an integer except with soxr at odd ratios)


def plan(rate: int, model_rate: int, block: int, host_block: int | None, quality: str, model_latency: int) -> RatePlan:
    """Converters, the least output prefill for calls of ``host_block`` samples (None: any size),
    and the latency, for a model with ``model_latency`` samples and decision ``block`` samples at
    ``model_rate``, run at device ``rate``.  ValueError: ``fir`` asked for a non-integer ratio.

    Prefill: 0 when each call yields exactly its own length (same rate or the FIR, and a host block
    of whole decision blocks); with ``host_block`` None, at least one decision block."""
    ratio = rate / model_rate
    rs_in = rs_out = kind = None
    delay = 0
    if rate != model_rate:
        rs_in, rs_out, kind = make_pair(rate, model_rate, quality)
    if kind is None or kind == "fir":
        count_in = count_out = int
        if kind == "fir":
            count_in, count_out = rs_in.count, rs_out.count
            per_low = integer_ratio(rate, model_rate) if rate > model_rate else 1
            delay = (rs_in.delay_low + rs_out.delay_low) * per_low
        if host_block:
            prefill = fifo_prefill(int(host_block), block, count_in, count_out)
        else:
            prefill = max(fifo_prefill(1, block, count_in, count_out), math.ceil(block * ratio))
    else:
        hb = host_block or max(1, round(block * ratio))
        prefill = soxr_prefill(rate, model_rate, block, hb, kind)
    return RatePlan(rs_in, rs_out, kind, int(prefill), int(delay), prefill + delay + model_latency * ratio)
