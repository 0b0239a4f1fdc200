"""The live latency budget of an engine configuration: where each millisecond goes.

live latency = model (the separator's algorithmic latency plus one decision block of buffering)
             + resampler (only when the device rate differs from the model's)
             + host margin (one device period for the callback, 3/4 of a decision block for its
               compute, and the jitter allowance ``margin_ms``).

The figures are exact: they are what :class:`~streamsep.host.core.LiveHost` reports as
``latency_samples`` for the same rate and period (the impulse test checks that figure on a real
JACK server)."""

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


def host_margin(period: int, block_host: int, rate: int, margin_ms: float = DEFAULT_MARGIN_MS) -> int:
    """Host margin in samples: a period, 3/4 of a decision block (host samples), the jitter allowance."""
    return int(period + math.ceil(0.75 * block_host) + round(margin_ms * rate / 1000))


def latency_budget(
    config: EngineConfig, rate: int, period: int | None = None, margin_ms: float = DEFAULT_MARGIN_MS, separator=None
) -> LatencyBudget:
    """The budget at device ``rate`` (Hz) and ``period`` (samples; default 10 ms)."""
    period = int(period or round(rate / 100))
    eng = Engine(config, rate=rate, host_block=period, separator=separator)
    block_host = math.ceil(eng.block * rate / eng.sr)
    P = host_margin(period, block_host, rate, margin_ms)
    model = 1000.0 * (eng.model_latency + eng.block) / eng.sr
    total = eng.latency + P
    total_ms = 1000.0 * total / rate
    host_ms = 1000.0 * P / rate
    return LatencyBudget(
        rate,
        period,
        round(model, 2),
        round(total_ms - host_ms - model, 2),
        round(host_ms, 2),
        round(total_ms, 2),
        int(total),
    )
