"""The live latency budget of an engine configuration: where each millisecond goes.

live latency = model (the separator's algorithmic latency)
             + buffering (the engine's output prefill: 0 when the device period is a whole number
               of decision blocks, up to one block otherwise)
             + resampler (only when the device rate differs from the model's: the FIR's group
               delay, or soxr's burst buffering)
             + host margin (one device period for the callback, 3/4 of a decision block for its
               compute, and the jitter allowance ``margin_ms``).

The figures are exact: they are what :class:`~streamsep.host.core.LiveHost` reports as
``latency_samples`` for the same rate and period (the impulse test checks that figure on a real
JACK server).  :func:`budget_from_numbers` computes the same from a model's numbers alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamsep.engine import Engine, EngineConfig
from streamsep.host.options import DEFAULT_MARGIN_MS


@dataclass(frozen=True)
class LatencyBudget:
    """Milliseconds per part (``total_ms`` = the sum; ``total_samples`` at ``rate``)."""

    rate: int
    period: int
    model_ms: float
    resampler_ms: float
    host_ms: float
    total_ms: float
    total_samples: int
    buffer_ms: float = 0.0


def host_margin(period: int, block_host: int, rate: int, margin_ms: float = DEFAULT_MARGIN_MS) -> int:
    """Host margin in samples: a period, 3/4 of a decision block (host samples), the jitter allowance."""
    return int(period + math.ceil(0.75 * block_host) + round(margin_ms * rate / 1000))


def _budget(
    rate: int, period: int, model_s: float, buffer_s: float, engine_samples: int, block_host: int, margin_ms: float
) -> LatencyBudget:
    P = host_margin(period, block_host, rate, margin_ms)
    total = engine_samples + P
    total_ms, host_ms = 1000.0 * total / rate, 1000.0 * P / rate
    model_ms, buffer_ms = 1000.0 * model_s, 1000.0 * buffer_s
    resampler_ms = round(total_ms - host_ms - model_ms - buffer_ms, 2) + 0.0  # no "-0.0"
    return LatencyBudget(
        rate,
        period,
        round(model_ms, 2),
        resampler_ms,
        round(host_ms, 2),
        round(total_ms, 2),
        int(total),
        round(buffer_ms, 2),
    )


def latency_budget(
    config: EngineConfig, rate: int, period: int | None = None, margin_ms: float = DEFAULT_MARGIN_MS, separator=None
) -> LatencyBudget:
    """The budget at device ``rate`` (Hz) and ``period`` (samples; default 10 ms), from an engine
    built as the live host builds it."""
    period = int(period or round(rate / 100))
    eng = Engine(config, rate=rate, host_block=period, separator=separator)
    block_host = math.ceil(eng.block * rate / eng.sr)
    # soxr's prefill is mostly its own burst buffering: counted as resampler, not as block buffering
    buffer_s = eng.prefill / rate if eng.resampler in (None, "fir") else 0.0
    return _budget(rate, period, eng.model_latency / eng.sr, buffer_s, eng.latency, block_host, margin_ms)


def budget_from_numbers(
    model_rate: int,
    latency: int,
    block: int,
    rate: int,
    period: int | None = None,
    margin_ms: float = DEFAULT_MARGIN_MS,
) -> LatencyBudget:
    """The budget of a model known by its numbers only: its ``latency`` and decision ``block`` in
    samples at ``model_rate``, run at device ``rate`` with ``period``-sample callbacks (default
    10 ms).  The engine's own arithmetic (:func:`streamsep.resample.plan`), no model loaded."""
    from streamsep.resample import plan

    period = int(period or round(rate / 100))
    p = plan(int(rate), int(model_rate), int(block), period, "auto", int(latency))
    block_host = math.ceil(block * rate / model_rate)
    buffer_s = p.prefill / rate if p.kind in (None, "fir") else 0.0
    return _budget(rate, period, latency / model_rate, buffer_s, int(round(p.latency)), block_host, margin_ms)
