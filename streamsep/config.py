"""The engine configuration: :class:`EngineConfig` and its validation (no torch, no numpy).

Every key, policy and proxy name checked here comes from :mod:`streamsep.catalogue`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from streamsep.catalogue import (
    BLOCK_ORACLE,
    CHAINS,
    CONFIG_KEYS,
    DEFAULT_MODEL,
    ENGINE_POLICIES,
    LIVE_KEYS,
    PROXY_NAMES,
    RESAMPLE_QUALITIES,
)

__all__ = ["CONFIG_KEYS", "LIVE_KEYS", "ConfigError", "EngineConfig"]


class ConfigError(ValueError):
    """An engine configuration value out of range; the message names the key."""


@dataclass
class EngineConfig:
    """Everything that defines how the engine runs.  Units: samples at the model rate, dB."""

    model: str = DEFAULT_MODEL  # DeepFilterNet3 (see the catalogue)
    steps: int = 0  # K refinement steps after the one-step pass (0 = plain model)
    candidates: int = 1  # ratios tried per step (searching policies)
    policy: str = "fixed"  # fixed | heuristic | proxy
    ratios: list[float] | None = None  # fixed schedule, one ratio per step
    block: int = 0  # decision block in samples at the model rate (0 = one hop)
    mix: float = 1.0  # wet/dry, 1.0 = fully processed
    atten_db: float | None = None  # attenuation limit in dB (None = unlimited)
    bypass: bool = False
    device: str = "cpu"
    proxy: str | None = None  # proxy score for policy "proxy" (None = the default)
    chain: str = "exact"  # delayed-frame separators (dfn3): "exact" (+step_delay hops per step)
    # or "fast" (no added latency, approximate: newest gains of step k−1)
    resample_quality: str = "auto"  # device-rate conversion: auto, fir (integer ratios), soxr QQ, LQ, MQ, HQ, VHQ
    # (auto: HQ when the device rate is below the model's — LQ measurably
    # degraded 8 kHz input — else LQ, whose buffering costs less latency)

    def validate(self) -> EngineConfig:
        """Check ranges; raise :class:`ConfigError` naming the bad key."""
        if not isinstance(self.steps, int) or not 0 <= self.steps <= 16:
            raise ConfigError(f"steps: must be an integer in 0..16, got {self.steps!r}")
        if not isinstance(self.candidates, int) or not 1 <= self.candidates <= 64:
            raise ConfigError(f"candidates: must be an integer in 1..64, got {self.candidates!r}")
        if (
            self.policy not in ENGINE_POLICIES
            and self.policy != BLOCK_ORACLE
            and not str(self.policy).startswith("proxy:")
        ):
            raise ConfigError(f"policy: unknown '{self.policy}' (known: {', '.join(ENGINE_POLICIES)})")
        if not 0.0 <= float(self.mix) <= 1.0:
            raise ConfigError(f"mix: must be in [0, 1], got {self.mix!r}")
        if self.atten_db is not None and not 0.0 <= float(self.atten_db) <= 120.0:
            raise ConfigError(f"atten_db: must be in [0, 120] dB, got {self.atten_db!r}")
        if not isinstance(self.block, int) or self.block < 0:
            raise ConfigError(f"block: must be a non-negative integer (samples), got {self.block!r}")
        if self.ratios is not None and any(not 0.0 <= float(r) <= 1.0 for r in self.ratios):
            raise ConfigError(f"ratios: every ratio must be in [0, 1], got {self.ratios!r}")
        if not isinstance(self.device, str) or not (
            self.device == "cpu"
            or self.device == "cuda"
            or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ConfigError(f"device: must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.proxy is not None and self.proxy not in PROXY_NAMES:
            raise ConfigError(f"proxy: unknown '{self.proxy}' (known: {', '.join(PROXY_NAMES)})")
        if self.chain not in CHAINS:
            raise ConfigError(f"chain: one of {', '.join(CHAINS)}, got {self.chain!r}")
        if self.resample_quality not in RESAMPLE_QUALITIES:
            raise ConfigError(
                f"resample_quality: one of {', '.join(RESAMPLE_QUALITIES)}, got {self.resample_quality!r}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def config_fields() -> list[str]:
    """The keys of an :class:`EngineConfig`, in order."""
    return list(CONFIG_KEYS)


assert tuple(f.name for f in fields(EngineConfig)) == CONFIG_KEYS, "EngineConfig and catalogue.CONFIG_KEYS disagree"


def ms_block(block_ms: float, hop: int, rate: int) -> int:
    """A decision block of about ``block_ms`` milliseconds, in whole hops (at least one), in samples at ``rate``."""
    return max(1, int(round(block_ms * 1e-3 * rate / hop))) * hop


def block_for(host_block: int, hop: int) -> int:
    """Decision block for a host block: the largest multiple of the hop not above it (≥ one hop), in samples."""
    return max(hop, (int(host_block) // hop) * hop)
