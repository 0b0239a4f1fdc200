#!/usr/bin/env python3
"""Held-out pairs for the proxy bar: ../shared clean speech mixed with ../shared real noise clips
that no proxy rule was tuned on.

The default proxy's thresholds were chosen on the leventure and NOIZEUS pairs themselves
(docs/lab/2026-11-25-proxies.md, docs/lab/2026-12-01-proxies.md), so the bar measured there is a fit, not a validation.  This mixes the 11
leventure clean utterances (16 kHz) with the three real 16 kHz-or-better noise clips of
``../shared/data/noise`` (freesound #573577, freesound #2530, the noisereduce café clip; resampled
to 16 kHz, channels averaged, looped from a seeded random offset) at −5, 0, 5 and 10 dB SNR:
132 pairs written as ``OUT/clean/<utt>.wav`` and ``OUT/noisy/<utt>_<noise>_snr<S>dB.wav``, the
layout ``find_pairs`` reads.  Generated audio, not committed; rerun to recreate it.

    python scripts/heldout_pairs.py [OUT]        # default /tmp/streamsep-heldout
    python scripts/proxy_bar.py --sets /tmp/streamsep-heldout --json OUT.json
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
NOISES = {
    "fs573577": "freesound_573577.wav",
    "fs2530": "freesound_2530_stereo.wav",
    "cafe": "noisereduce_cafe_short.wav",
}
SNRS = (-5, 0, 5, 10)
RATE = 16000


def main() -> int:
    from streamsep.audio_io import read_audio, write_audio
    from streamsep.synth import mix_at_snr

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/streamsep-heldout")
    clean_dir = SHARED / "data" / "pairs" / "leventure" / "clean"
    noise_dir = SHARED / "data" / "noise"
    if not clean_dir.is_dir() or not noise_dir.is_dir():
        print(f"heldout_pairs: {clean_dir} or {noise_dir} is missing (needs ../shared/data)", file=sys.stderr)
        return 2
    (out / "clean").mkdir(parents=True, exist_ok=True)
    (out / "noisy").mkdir(parents=True, exist_ok=True)
    noises = {tag: read_audio(noise_dir / name, rate=RATE)[0] for tag, name in NOISES.items()}
    rng = np.random.default_rng(20261201)
    n = 0
    for cpath in sorted(clean_dir.glob("*.wav")):
        s, _ = read_audio(cpath, rate=RATE)
        write_audio(out / "clean" / cpath.name, s, RATE, subtype="FLOAT")
        for tag, noise in noises.items():
            start = int(rng.integers(0, len(noise)))
            reps = int(np.ceil((start + len(s)) / len(noise)))
            v = np.tile(noise, reps)[start : start + len(s)]
            for snr in SNRS:
                name = f"{cpath.stem}_{tag}_snr{snr:+d}dB.wav"
                write_audio(out / "noisy" / name, mix_at_snr(s, v, float(snr)), RATE, subtype="FLOAT")
                n += 1
    print(f"heldout_pairs: {n} pairs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
