"""streamsep: real-time multi-step speech enhancement.

The Python API::

    import streamsep

    cfg = streamsep.EngineConfig(model="nsnet2", steps=2, candidates=4, policy="proxy", block=3200)
    streamsep.enhance_file("noisy.wav", "clean.wav", cfg)        # a whole file, as live would do it

    eng = streamsep.Engine(cfg, rate=16000)                       # block by block
    y = eng.process(block)                                        # float32 in, same length out, eng.latency late

    host = streamsep.LiveHost(streamsep.load_preset("balanced"))  # microphone to speakers
    host.start(); ...; host.stop()

Names are imported on first use, so ``import streamsep`` loads neither torch nor onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

try:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("streamsep")
    except PackageNotFoundError:
        __version__ = "0.1.0"
except ImportError:  # pragma: no cover
    __version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "EngineConfig": "streamsep.config",
    "ConfigError": "streamsep.config",
    "Engine": "streamsep.engine",
    "create": "streamsep.separators.registry",
    "model_names": "streamsep.separators.registry",
    "LiveHost": "streamsep.live",
    "enhance_file": "streamsep.enhance",
    "FileOptions": "streamsep.enhance",
    "FileResult": "streamsep.enhance",
    "run_batch": "streamsep.batch",
    "BatchOptions": "streamsep.batch",
    "load_preset": "streamsep.presets",
}

__all__ = [
    "BatchOptions",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "FileOptions",
    "FileResult",
    "LiveHost",
    "__version__",
    "create",
    "enhance_file",
    "load_preset",
    "model_names",
    "run_batch",
]

if TYPE_CHECKING:  # pragma: no cover
    from streamsep.batch import BatchOptions, run_batch
    from streamsep.config import ConfigError, EngineConfig
    from streamsep.engine import Engine
    from streamsep.enhance import FileOptions, FileResult, enhance_file
    from streamsep.live import LiveHost
    from streamsep.presets import load_preset
    from streamsep.separators.registry import create, model_names


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamsep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
