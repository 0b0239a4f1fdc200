"""The project's vocabulary, defined once: policy names, proxy names, live keys, configuration keys.

Everything that names a policy, a proxy or a configuration key (the command line, presets,
validation, the GUI) reads these tuples instead of spelling the names again.  This module imports
nothing heavy (no numpy, no torch), so a command's ``--help`` can use it.
"""

from __future__ import annotations

#: reference-free policies the streaming engine runs live
ENGINE_POLICIES: tuple[str, ...] = ("fixed", "heuristic", "proxy")
#: per-block oracle (scores candidates against the clean reference); offline measurement only
BLOCK_ORACLE = "oracle-block"
#: whole-utterance searches of the offline refiner (``process``/``eval`` without the engine)
ORACLE_POLICIES: tuple[str, ...] = ("oracle-sisdr", "oracle-pesq", "dnsmos")
#: every policy ``process``/``eval`` accept
ALL_POLICIES: tuple[str, ...] = ORACLE_POLICIES + ENGINE_POLICIES + (BLOCK_ORACLE,)
#: how the offline search refiner blends: waveforms (``time``) or the model's STFT frames (``frame``)
BLENDS: tuple[str, ...] = ("time", "frame")
#: what one search ratio covers: the whole file (``utterance``) or one decision block (``block``)
SCOPES: tuple[str, ...] = ("utterance", "block")
#: integer output that would clip: scale the file to -0.1 dBFS (``limit``) or hard-clip (``clip``)
CLIP_MODES: tuple[str, ...] = ("limit", "clip")
#: where ``streamsep batch`` runs its files: a local process pool or a Ray cluster
BATCH_ENGINES: tuple[str, ...] = ("local", "ray")
#: metrics that compare with a clean reference (``dnsmos`` is the blind one)
INTRUSIVE_METRICS: tuple[str, ...] = ("si_sdr", "pesq", "stoi")
#: policies that need a clean reference signal
NEEDS_REFERENCE: tuple[str, ...] = ("oracle-sisdr", "oracle-pesq", BLOCK_ORACLE)

#: reference-free proxy scores for policy ``proxy`` (``proxy:NAME`` picks one as the policy name)
PROXY_NAMES: tuple[str, ...] = (
    "floor-match",
    "noise-gated",
    "calibrated",
    "energy",
    "speech-preserving",
    "residual-flatness",
)
DEFAULT_PROXY = "floor-match"

#: the model a configuration runs when it names none: DeepFilterNet3, full band, one step
DEFAULT_MODEL = "dfn3"
#: how steps chain on separators whose output lags by whole frames (DeepFilterNet3): ``exact`` waits
#: for the previous step's final frames (+ that lag per step), ``fast`` blends the newest frames
#: available (no added latency, approximate)
CHAINS: tuple[str, ...] = ("exact", "fast")
#: device-rate conversion: ``fir`` the low-delay polyphase FIR (integer rate ratios only), or a soxr
#: quality; ``auto`` = the FIR for integer ratios, else soxr LQ (HQ when the device rate is lower)
RESAMPLE_QUALITIES: tuple[str, ...] = ("auto", "fir", "QQ", "LQ", "MQ", "HQ", "VHQ")
#: torch devices a configuration may name (``cuda:N`` too)
DEVICES: tuple[str, ...] = ("cpu", "cuda")

#: every key of an engine configuration (the fields of ``EngineConfig``, in order) and its TOML types
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "steps": (int,),
    "candidates": (int,),
    "policy": (str,),
    "ratios": (list,),
    "block": (int,),
    "mix": (int, float),
    "atten_db": (int, float),
    "bypass": (bool,),
    "device": (str,),
    "proxy": (str,),
    "chain": (str,),
    "resample_quality": (str,),
}
CONFIG_KEYS: tuple[str, ...] = tuple(CONFIG_TYPES)
#: keys a running engine/host accepts without a rebuild (``set_params``)
LIVE_KEYS: tuple[str, ...] = ("steps", "candidates", "policy", "ratios", "mix", "atten_db", "bypass", "proxy")
#: keys whose change needs a new engine (a new separator or new block sizes)
REBUILD_KEYS: tuple[str, ...] = ("model", "block")
#: keys an interactive front end edits and remembers (the live keys plus those that rebuild)
EDITABLE_KEYS: tuple[str, ...] = REBUILD_KEYS + LIVE_KEYS

#: the built-in presets, fastest first
BUILTIN_PRESETS: tuple[str, ...] = ("low-latency", "balanced", "quality")

#: jitter allowance of the live host in ms (part of its latency): with one period and 3/4 of a
#: decision block it makes the host margin 20 ms at 10 ms periods and blocks
LIVE_MARGIN_MS = 2.5


def is_engine_policy(name: str) -> bool:
    """True for the live, reference-free policies the streaming engine runs (``proxy:NAME`` included)."""
    return name in ENGINE_POLICIES or name.startswith("proxy:")
