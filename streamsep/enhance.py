"""Enhance a whole file: path in, path out, one :class:`~streamsep.config.EngineConfig`.

The file runs through the same streaming engine as the live host (``Engine.run_offline`` at the
model rate, resampled back to the file's rate), so the output equals what live use would produce
for that configuration, with the engine's latency removed.
"""
from __future__ import annotations

import os
from pathlib import Path

from streamsep.config import EngineConfig


def enhance_file(input_path: str | os.PathLike, output_path: str | os.PathLike, config: EngineConfig | None = None,
                 *, separator=None, subtype: str | None = None) -> Path:
    """Denoise ``input_path`` into ``output_path`` (written atomically; same rate and length).

    ``config``: the engine configuration (default: ``EngineConfig()``, one NSNet2 pass);
    ``separator``: an already created separator to reuse (default: the one ``config.model`` names);
    ``subtype``: the output sample format (e.g. ``PCM_16``, ``FLOAT``; default from the extension).
    Multi-channel input is mixed to mono.  Returns the output path.
    """
    from streamsep.audio_io import read_audio, write_audio
    from streamsep.engine import enhance_array

    config = config or EngineConfig()  # validated once, by the engine
    x, rate = read_audio(input_path)
    y = enhance_array(x, rate, config, separator=separator)
    write_audio(output_path, y, rate, subtype=subtype)
    return Path(output_path)
