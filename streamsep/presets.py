"""Presets: TOML files holding an :class:`~streamsep.engine.EngineConfig` (model, steps, candidates,
policy, block size, output controls).  Built-in presets live in ``presets/`` at the repository root
and are also installed inside the package; users pass a name or a path with ``--preset``.

Validation is strict: an unknown key, a wrong type or an out-of-range value raises
:class:`PresetError` naming the file and the key.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import fields, replace
from pathlib import Path

import tomllib

from streamsep.catalogue import CONFIG_TYPES
from streamsep.config import ConfigError, EngineConfig

PRESET_DIRS = [Path(__file__).resolve().parent / "presets", Path(__file__).resolve().parents[1] / "presets"]


def user_preset_dir() -> Path:
    """Where users' own presets live (``streamsep tune --save-preset NAME`` writes there)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "streamsep" / "presets"


_TYPES = CONFIG_TYPES


class PresetError(ValueError):
    """A preset that cannot be used; the message names the file and the key."""


def builtin_presets() -> dict[str, Path]:
    """Name → path of every preset: built-ins first, then the user's own (built-ins win a name clash)."""
    out: dict[str, Path] = {}
    for d in PRESET_DIRS + [user_preset_dir()]:
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                out.setdefault(p.stem, p)
    return out


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A preset name (``balanced``) or a path to a TOML file → the file's path."""
    s = str(name_or_path)
    p = Path(s)
    if p.suffix == ".toml" or os.sep in s:
        if not p.is_file():
            raise PresetError(f"{s}: preset file not found")
        return p
    known = builtin_presets()
    if s not in known:
        raise PresetError(f"unknown preset '{s}' (known: {', '.join(known)}; or give a path to a .toml file)")
    return known[s]


def config_from_dict(data: dict, source: str = "preset", base: EngineConfig | None = None) -> EngineConfig:
    """Validate a mapping of preset keys and build an :class:`EngineConfig`."""
    allowed = {f.name for f in fields(EngineConfig)}
    values = {}
    for key, val in data.items():
        if key in ("name", "description"):
            continue
        if key not in allowed:
            raise PresetError(f"{source}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
        types = _TYPES[key]
        if isinstance(val, bool) and bool not in types:
            raise PresetError(f"{source}: key '{key}' has the wrong type (bool)")
        if not isinstance(val, types):
            raise PresetError(
                f"{source}: key '{key}' must be {' or '.join(t.__name__ for t in types)}, got {type(val).__name__}"
            )
        if key == "ratios" and not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in val):
            raise PresetError(f"{source}: key 'ratios' must be a list of numbers")
        values[key] = float(val) if key in ("mix", "atten_db") else val
    base = base or EngineConfig()
    cfg = EngineConfig(**{**base.to_dict(), **values})
    try:
        return cfg.validate()
    except ConfigError as exc:  # "field: message" → name the key the way the other preset errors do
        field_name, _, rest = str(exc).partition(": ")
        raise PresetError(f"{source}: key '{field_name}': {rest}") from None


def load_preset(name_or_path: str | os.PathLike) -> EngineConfig:
    """Load and validate a preset by name or path."""
    path = resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{path}: not valid TOML ({exc})") from None
    return config_from_dict(data, str(path))


def build_config(preset: str | os.PathLike | None = None, **changes) -> EngineConfig:
    """A preset (or the defaults) with ``changes`` applied, validated once.

    ``changes`` are :class:`EngineConfig` keys; ``None`` values are ignored.  Changing the model
    without giving ``block`` resets the block to 0 (one hop of the new model): a preset's block
    belongs to its own model's hop.
    """
    cfg = load_preset(preset) if preset else EngineConfig()
    changes = {k: v for k, v in changes.items() if v is not None}
    bad = [k for k in changes if k not in CONFIG_TYPES]
    if bad:
        raise ConfigError(f"{bad[0]}: not an engine configuration key (known: {', '.join(CONFIG_TYPES)})")
    if changes.get("model", cfg.model) != cfg.model and "block" not in changes:
        changes["block"] = 0
    return replace(cfg, **changes).validate()


def save_preset(config: EngineConfig, path: str | os.PathLike, description: str = "") -> Path:
    """Write ``config`` as a preset TOML file, atomically."""
    import tomli_w

    data = {k: v for k, v in config.validate().to_dict().items() if v is not None}
    if description:
        data = {"description": description, **data}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            tomli_w.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
