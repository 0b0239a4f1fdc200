"""Clean/noisy pairs of a data set directory (``clean/`` and ``noisy/`` subdirectories)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

AUDIO_EXTS = {".wav", ".flac", ".ogg"}


def read_pair(noisy: Path, clean: Path, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A (noisy, clean) pair read, resampled to ``rate`` Hz and cut to the shorter length."""
    from streamsep.audio_io import read_audio, resample

    x, xr = read_audio(noisy)
    s, sr = read_audio(clean)
    x = resample(x, xr, rate) if xr != rate else x
    s = resample(s, sr, rate) if sr != rate else s
    n = min(len(x), len(s))
    return x[:n], s[:n]


def find_pairs(directory: Path) -> list[tuple[Path, Path]]:
    """(noisy, clean) pairs: a noisy file maps to the clean file whose stem it starts with + '_'.

    Raises ``ValueError`` when ``directory`` lacks ``clean/`` or ``noisy/`` or no file matches.
    """
    directory = Path(directory)
    clean_dir, noisy_dir = directory / "clean", directory / "noisy"
    if not clean_dir.is_dir() or not noisy_dir.is_dir():
        raise ValueError(f"{directory}: needs clean/ and noisy/ subdirectories")
    cleans = {p.stem: p for p in sorted(clean_dir.iterdir()) if p.suffix.lower() in AUDIO_EXTS}
    pairs = []
    for noisy in sorted(noisy_dir.iterdir()):
        if noisy.suffix.lower() not in AUDIO_EXTS:
            continue
        match = cleans.get(noisy.stem)
        if match is None:
            cands = [s for s in cleans if noisy.stem.startswith(s + "_")]
            if cands:
                match = cleans[max(cands, key=len)]
        if match is not None:
            pairs.append((noisy, match))
    if not pairs:
        raise ValueError(f"{directory}: no noisy file matches a clean file")
    return pairs
