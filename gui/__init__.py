"""streamsep desktop app (PyQt6 + pyqtgraph).

The GUI imports :mod:`streamsep`, never the reverse, and talks to the live audio host only through
:class:`streamsep.live.LiveHost` (``set_params``, ``set_config``, ``stats()``, ``monitor()``).
Heavy imports (torch, models, sounddevice) happen off the GUI thread so the window appears at once.
Entry points: ``streamsep gui`` and ``streamsep-gui`` → :func:`gui.app.main`.
"""
