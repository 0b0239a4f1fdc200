"""Run-time set-up shared by the commands: CPU threads and the configured separator."""

from __future__ import annotations

import os


def set_threads(n: int | None) -> None:
    """Torch and onnxruntime CPU threads (``None`` = leave as is); must be a positive integer."""
    if n is not None and int(n) < 1:
        raise ValueError(f"--threads: must be a positive integer, got {n}")
    if n:
        import torch

        torch.set_num_threads(int(n))
        os.environ["STREAMSEP_ORT_THREADS"] = str(int(n))


def make_separator(cfg, model_path: str | None = None):
    """The separator ``cfg`` (an ``EngineConfig``) names; a decision block that is not a whole
    number of hops raises ``ValueError``."""
    from streamsep.separators.registry import create

    kwargs = {"model_path": model_path} if model_path else {}
    sep = create(cfg.model, device=cfg.device, **kwargs)
    if cfg.block and cfg.block % sep.hop:
        raise ValueError(
            f"--engine-block/block: {cfg.block} samples is not a multiple of the {sep.name} hop ({sep.hop})"
        )
    return sep
