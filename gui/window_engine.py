"""Engine edits of the main window: live parameters through the host's mailbox, model or block
changes as a new engine built off the GUI thread, whole configurations (presets).

A mixin for :class:`gui.main_window.MainWindow`: it uses the window's ``config``, ``controller``,
``controls``, ``message_bar``, ``status_label``, ``geometry_rate_hop``, ``show_config``, ``start_host``
and ``_changed``."""

from __future__ import annotations

import dataclasses

from gui.host_controller import LIVE_PARAMS, config_to_dict, one_line

_geometry_cache: dict[str, tuple[int, int]] = {}


def model_geometry(model: str) -> tuple[int, int]:
    """(sample rate in Hz, hop in samples) of a model, cached; worker thread only."""
    if model not in _geometry_cache:
        from streamsep.separators.registry import create

        sep = create(model)
        _geometry_cache[model] = (int(sep.sample_rate), int(sep.hop))
    return _geometry_cache[model]


class EngineEdits:
    """Apply control changes to the running engine; state: ``_rebuilding``, ``_live_during_rebuild``."""

    _rebuilding = 0  # engine rebuild jobs in flight
    _live_during_rebuild: dict  # live edits made meanwhile (re-applied when done)

    def on_live_changed(self, changes: dict) -> None:
        """Steps, candidates, policy, mix, attenuation, bypass: the host's mailbox, applied live."""
        if self.config is None:
            return
        try:
            new = dataclasses.replace(self.config, **changes)
            if hasattr(new, "validate"):
                new.validate()
            self.controller.set_params(**{k: v for k, v in changes.items() if k in LIVE_PARAMS})
        except Exception as exc:  # noqa: BLE001 -- ConfigError, a vanished host: shown, not raised
            self.message_bar.show_message(one_line(exc), "error")
            self.show_config(config_to_dict(self.config))
            return
        self.config = new
        if self._rebuilding:  # keep it across the engine being rebuilt right now
            self._live_during_rebuild.update(changes)
        self._changed()

    def on_rebuild_changed(self, changes: dict) -> None:
        """Model or block size: a new engine, built off the GUI thread and swapped in by the host.

        ``self.config`` changes at once (later edits build on it); live edits made while the engine
        is being built are re-sent once it is in, a failure reverts the changed keys."""
        if self.config is None:
            return
        old = self.config
        new = dataclasses.replace(old, **changes)
        self.config = new
        old_hop = self.geometry_rate_hop[1]
        self._rebuilding += 1
        self.controls.setEnabled(False)
        self.status_label.setText(f"Loading {new.model}…")
        host = self.controller.host

        def job():
            rate, hop = model_geometry(new.model)
            cfg = new
            if "model" in changes and (cfg.block or old_hop) % hop:
                hops = max(1, (old.block or old_hop) // old_hop)
                cfg = dataclasses.replace(cfg, block=hops * hop)
            cfg.validate()
            if host is not None:
                host.set_config(cfg)
            return cfg, (rate, hop)

        self.controller.submit(
            job, lambda result: self._rebuilt(result, new), lambda msg: self._rebuild_failed(msg, old, changes)
        )

    def _rebuild_finished(self) -> dict:
        self._rebuilding -= 1
        pending = dict(self._live_during_rebuild)
        if not self._rebuilding:
            self._live_during_rebuild.clear()
        self.controls.setEnabled(not self._rebuilding)
        return pending

    def _rebuilt(self, result, new) -> None:
        cfg, geom = result
        pending = self._rebuild_finished()
        if cfg.block != new.block:  # block kept at the same number of hops of the new model
            self.config = dataclasses.replace(self.config, block=cfg.block)
        if pending:  # edits made while the engine was being built
            try:
                self.controller.set_params(**pending)
            except Exception as exc:  # noqa: BLE001
                self.message_bar.show_message(one_line(exc), "error")
        self.geometry_rate_hop = geom
        self.controls.set_geometry(*geom)
        self.show_config(config_to_dict(self.config))
        self._changed()

    def _rebuild_failed(self, msg: str, old, changes: dict) -> None:
        self._rebuild_finished()
        self.message_bar.show_message(msg, "error")
        self.config = dataclasses.replace(self.config, **{k: getattr(old, k) for k in changes})
        self.show_config(config_to_dict(self.config))

    def on_devices_changed(self, input_device: str, output_device: str) -> None:
        """A different input or output device: the host is restarted with it (off-thread)."""
        if self.config is None:
            return
        self._changed()
        self.start_host()

    def apply_config(self, cfg, preset: str | None = None) -> None:
        """Make ``cfg`` (a whole EngineConfig, e.g. from a preset) the running configuration.

        Only live parameters differ → the host's mailbox; anything else → a new engine."""
        if preset is not None:
            self.preset = preset
        self.show_config(config_to_dict(cfg), preset=preset)
        old = self.config
        names = [f.name for f in dataclasses.fields(cfg)]
        differ = [k for k in names if getattr(cfg, k) != getattr(old, k)]
        if all(k in LIVE_PARAMS for k in differ):
            if differ:
                self.on_live_changed({k: getattr(cfg, k) for k in differ})
            else:
                self._changed()
        else:
            self.on_rebuild_changed({k: getattr(cfg, k) for k in names})
