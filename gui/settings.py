"""Settings remembered between runs: a small TOML file under the user's config directory.

Location: ``$XDG_CONFIG_HOME/streamsep/gui.toml`` (``~/.config/streamsep/gui.toml`` when unset).
Content: the last preset name, the input/output devices, the virtual-microphone switch
(``virtual_mic``: "" = off, else the virtual source's name) and the engine parameters as edited.
A missing file gives defaults; an unreadable one gives defaults plus a one-line warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
import tomllib

#: engine parameters the GUI edits and remembers (names of ``EngineConfig`` fields)
ENGINE_KEYS = ("model", "steps", "candidates", "policy", "ratios", "block", "mix", "atten_db", "bypass")


def settings_path() -> Path:
    """Where the GUI keeps its settings (honours ``XDG_CONFIG_HOME``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "streamsep" / "gui.toml"


@dataclass
class GuiSettings:
    """What the app remembers.  ``engine`` holds only keys from :data:`ENGINE_KEYS`."""

    preset: str = "balanced"
    input_device: str = ""  # "" = system default
    output_device: str = ""  # "" = system default, "null" = no playback
    virtual_mic: str = ""  # "" = off, otherwise the virtual microphone's name (see gui.virtual_mic)
    engine: dict = field(default_factory=dict)
    last_file_dir: str = ""
    warning: str | None = None  # set by load() when the file could not be used

    @classmethod
    def load(cls, path: Path | None = None) -> GuiSettings:
        """Read the settings file; defaults (and ``warning``) when it is missing or broken."""
        path = path or settings_path()
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return cls(warning=f"settings file {path} ignored: {exc}")
        gui = data.get("gui", {}) if isinstance(data.get("gui"), dict) else {}
        engine = data.get("engine", {}) if isinstance(data.get("engine"), dict) else {}
        values = {k: v for k, v in engine.items() if k in ENGINE_KEYS}
        for k in engine.get("none", []):  # keys explicitly set to None (TOML has no null)
            if k in ENGINE_KEYS:
                values[k] = None
        return cls(
            preset=str(gui.get("preset", cls.preset)),
            input_device=str(gui.get("input_device", "")),
            output_device=str(gui.get("output_device", "")),
            virtual_mic=str(gui.get("virtual_mic", "")),
            last_file_dir=str(gui.get("last_file_dir", "")),
            engine=values,
        )

    def save(self, path: Path | None = None) -> None:
        """Write the settings file atomically (None values are listed under ``engine.none``)."""
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "gui": {
                "preset": self.preset,
                "input_device": self.input_device,
                "output_device": self.output_device,
                "virtual_mic": self.virtual_mic,
                "last_file_dir": self.last_file_dir,
            },
            "engine": {k: v for k, v in self.engine.items() if k in ENGINE_KEYS and v is not None},
        }
        doc["engine"]["none"] = [k for k, v in self.engine.items() if k in ENGINE_KEYS and v is None]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
