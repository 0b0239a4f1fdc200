"""Reports of measurements: atomic JSON files, JSON-safe numbers, per-step metric rows."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write JSON atomically (temp file + rename); numpy scalars and arrays become plain JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=_json_default)
            fh.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def clean_float(v) -> float | None:
    """NaN/inf → None for JSON."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def step_metrics(
    estimates: list[np.ndarray], rate: int, reference: np.ndarray | None, which: tuple[str, ...]
) -> list[dict]:
    """One row of metrics (``which``: si_sdr, pesq, stoi, dnsmos) per estimate, NaN as None."""
    from streamsep.metrics import evaluate

    rows = []
    for y in estimates:
        m = evaluate(y, rate, reference, which=which)
        rows.append({k: clean_float(v) for k, v in m.items()})
    return rows


def summarize_ratio(r) -> tuple[float | None, float | None]:
    """(mean chosen ratio, fraction of blocks that kept the previous estimate) for one step."""
    if r is None:
        return None, None
    arr = np.atleast_1d(np.asarray(r, dtype=float))
    if arr.size == 0:
        return None, None
    kept = float(np.mean(np.isnan(arr)))
    chosen = arr[~np.isnan(arr)]
    return (float(np.mean(chosen)) if chosen.size else None), kept
