"""The body of ``streamsep live``: start a host from typed options, print a status line, stop
cleanly on the duration, Ctrl-C or SIGTERM (the virtual microphone is removed in every case), and
write the statistics."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

from streamsep.engine import EngineConfig
from streamsep.host.devices import DeviceError
from streamsep.host.options import LiveOptions, OptionsError


class _Terminate(Exception):
    pass


def summary(s: dict) -> str:
    """One status line from :meth:`LiveHost.stats`."""
    return (
        f"{s['seconds']:.1f} s, latency {s['latency_ms']:.1f} ms, xruns {s['xruns']}, "
        f"deadline misses {s['deadline_misses']}, steps {s['steps_in_use']}/{s['steps_requested']}, "
        f"candidates {s['candidates_in_use']}, rtf {s['rtf']:.2f}, "
        f"in {s['input_peak_db']:.0f} dB, out {s['output_peak_db']:.0f} dB"
    )


def write_error_stats(path: str | None, msg: str) -> None:
    """The statistics file of a host that never started."""
    if path:
        Path(path).write_text(json.dumps({"running": False, "error": msg}, indent=2) + "\n")


def _start(host) -> int:
    """Start the host; 0, or the exit status after printing one line (2: device, 1: other)."""
    try:
        host.start()
        return 0
    except (DeviceError, ValueError) as exc:
        msg = str(exc)
        code = 2
    except Exception as exc:  # anything else at start-up: still one line, still stats
        msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        code = 1
    print(f"streamsep live: error: {msg}", file=sys.stderr)
    host._error = msg
    return code


def _banner(host, config: EngineConfig) -> str:
    s = host.stats()
    line = (
        f"streamsep live: {config.model} at {s['samplerate']} Hz, latency {s['latency_ms']:.1f} ms "
        f"({s['latency_samples']} samples)"
    )
    vm = s.get("virtual_mic")
    if vm:
        line += f"; virtual microphone '{vm['description']}' ({vm['node_name']})"
    return line + "; Ctrl-C stops"


def _period_warning(host) -> str | None:
    """A line when the server calls back with more frames than the host planned for (a PipeWire
    graph forced to a larger quantum by another application): deadlines will be missed."""
    s = host.stats()
    if s["period"] and s["max_period"] > s["period"]:
        return (
            f"streamsep live: warning: the audio server delivers {s['max_period']}-frame periods, more than the "
            f"{s['period']} planned for; deadlines will be missed (restart with --block {s['max_period']})"
        )
    return None


def _wait(host, duration: float | None, quiet: bool) -> None:
    t0 = time.monotonic()
    next_line = t0 + 1.0
    warned = False
    while True:
        # the main thread shares the GIL with the worker: wake rarely (Ctrl-C interrupts sleep)
        left = (t0 + duration - time.monotonic()) if duration is not None else 0.5
        time.sleep(max(0.0, min(0.5, left)))
        now = time.monotonic()
        if host._error is not None:
            return
        if duration is not None and now - t0 >= duration:
            return
        if host.file_done and host._out.read >= host._out.written:
            return
        if not warned and now - t0 >= 1.0:
            warned = True
            line = _period_warning(host)
            if line:
                print(line, file=sys.stderr, flush=True)
        if not quiet and now >= next_line:
            print("\r" + summary(host.stats()), end="", file=sys.stderr, flush=True)
            next_line = now + 1.0


def run_live(config: EngineConfig, opts: LiveOptions) -> int:
    """Run a live host until the duration, Ctrl-C or SIGTERM: 0 on a clean stop, 1 on a runtime
    error, 2 on a device or option error.  ``opts.stats_path`` is written in every case."""
    from streamsep.host.core import LiveHost

    try:
        opts.validate()
    except OptionsError as exc:
        print(f"streamsep live: error: {exc}", file=sys.stderr)
        write_error_stats(opts.stats_path, str(exc))
        return 2
    host = LiveHost.from_options(config, opts)
    quiet = opts.quiet or not sys.stderr.isatty()

    def on_term(signum, frame):
        raise _Terminate()

    main = threading.current_thread() is threading.main_thread()
    prev_term = signal.signal(signal.SIGTERM, on_term) if main else None
    code = 0
    try:
        code = _start(host)
        if code:
            return code
        print(_banner(host, config), file=sys.stderr, flush=True)
        _wait(host, opts.duration, quiet)
    except (KeyboardInterrupt, _Terminate):
        print("\nstreamsep live: interrupted, stopping", file=sys.stderr)
    finally:
        code = _finish(host, opts, prev_term, code)
    return code


def _finish(host, opts: LiveOptions, prev_term, code: int) -> int:
    """Stop the host (also removing the virtual microphone), restore SIGTERM, write the stats."""
    try:
        host.stop()
    finally:
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
    if opts.stats_path:
        try:
            host.write_stats(opts.stats_path)
        except OSError as exc:
            print(f"streamsep live: cannot write stats to {opts.stats_path}: {exc}", file=sys.stderr)
            code = code or 1
    s = host.stats()
    if code:
        return code
    if s["error"]:
        print(f"streamsep live: error: {s['error']}", file=sys.stderr)
        return 1
    print(
        ("\n" if not (opts.quiet or not sys.stderr.isatty()) else "") + "streamsep live: " + summary(s), file=sys.stderr
    )
    return 0
