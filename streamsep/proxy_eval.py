"""How often does each reference-free proxy pick the candidate the oracle would pick?

The engine runs with the per-block oracle (SI-SDR against the clean reference, in the STFT domain) so
that every step sees the oracle's trajectory; at every decision block and step, each proxy scores the
same candidates (plus keep-previous) and its choice — with its own keep margin — is compared with the
oracle's.  Reported per proxy: agreement with the oracle, how often it keeps, and the mean SI-SDR
change (oracle-block dB) its choice would have given against keep-previous.

``streamsep proxies DIR`` runs it on a clean/noisy pair directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamsep.engine import Engine, EngineConfig
from streamsep.policies import KEEP, PROXIES, Choice, OracleBlock, ProxyPolicy, proxy_policy, score_oracle_sdr


@dataclass
class Tally:
    agree: int = 0
    keeps: int = 0
    total: int = 0
    gain_db: list = field(default_factory=list)  # oracle score of its pick − oracle score of keep

    def row(self) -> dict:
        return {
            "agreement": self.agree / max(1, self.total),
            "keep_rate": self.keeps / max(1, self.total),
            "mean_gain_db": float(np.mean(self.gain_db)) if self.gain_db else 0.0,
            "decisions": self.total,
        }


class AgreementPolicy(OracleBlock):
    """Follows the oracle; records what every proxy would have chosen on the same candidates."""

    def __init__(self, proxies: dict[str, ProxyPolicy]) -> None:
        super().__init__()
        self.proxies = proxies
        self.tallies = {name: Tally() for name in list(proxies) + ["oracle", "always-best-run"]}

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None) -> Choice:
        o = score_oracle_sdr(X, Yprev, Ycand, ctx)
        best = int(np.argmax(o))
        oracle_idx = KEEP if best == len(o) - 1 else best
        for name, pol in self.proxies.items():
            c = pol.choose(k, X, Yprev, Ycand, ratios, ctx)
            t = self.tallies[name]
            t.total += 1
            t.keeps += c.index == KEEP
            t.agree += c.index == oracle_idx
            t.gain_db.append(float((o[-1] if c.index == KEEP else o[c.index]) - o[-1]))
        for name, idx in (("oracle", oracle_idx), ("always-best-run", int(np.argmax(o[:-1])))):
            t = self.tallies[name]
            t.total += 1
            t.keeps += idx == KEEP
            t.agree += idx == oracle_idx
            t.gain_db.append(float((o[-1] if idx == KEEP else o[idx]) - o[-1]))
        return Choice(oracle_idx, float("nan") if oracle_idx == KEEP else float(ratios[oracle_idx]), o)


def measure(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    sep,
    steps: int = 3,
    candidates: int = 9,
    block: int | None = None,
    margins: dict[str, float] | None = None,
) -> dict:
    """Agreement of each proxy with the oracle over (noisy, clean) pairs at the separator's rate."""
    margins = margins or {}
    proxies = {name: proxy_policy(name, margin=margins.get(name)) for name in PROXIES}
    proxies.update({f"{name}@0": proxy_policy(name, margin=0.0) for name in PROXIES})
    pol = AgreementPolicy(proxies)
    _follow_oracle(pol, pairs, sep, steps, candidates, block)
    return {name: t.row() for name, t in pol.tallies.items()}


def _follow_oracle(pol: OracleBlock, pairs, sep, steps: int, candidates: int, block: int | None) -> None:
    """Run every pair through the engine with ``pol`` (an oracle-following recorder) as its policy."""
    for x, s in pairs:
        cfg = EngineConfig(
            model=sep.name, steps=steps, candidates=candidates, policy="oracle-block", block=block or sep.hop * 20
        )
        eng = Engine(cfg, separator=sep)
        eng.policy = pol
        for p in getattr(pol, "proxies", {}).values():  # stateful proxies start afresh per file
            if hasattr(p, "reset"):
                p.reset()
                p.configure(eng.block / eng.sr)
        eng.run_offline(x, reference=s)


class FeaturePolicy(OracleBlock):
    """Follows the oracle; records :func:`candidate_features` and the oracle gain of every candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[np.ndarray] = []

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None) -> Choice:
        from streamsep.policies import candidate_features

        o = score_oracle_sdr(X, Yprev, Ycand, ctx)
        f = candidate_features(k, ratios, X, Yprev, Ycand)
        self.rows.append(np.concatenate([f, (o[:-1] - o[-1])[:, None]], axis=1))
        best = int(np.argmax(o))
        idx = KEEP if best == len(o) - 1 else best
        return Choice(idx, float("nan") if idx == KEEP else float(ratios[idx]), o)


def collect_features(pairs, sep, steps: int = 3, candidates: int = 9, block: int | None = None) -> np.ndarray:
    """Rows (decisions, C, 10): candidate features + oracle block-SDR gain over keep (last column)."""
    pol = FeaturePolicy()
    _follow_oracle(pol, pairs, sep, steps, candidates, block)
    return np.stack(pol.rows)
