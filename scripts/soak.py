"""``python scripts/soak.py MINUTES``: a long live session through the JACK dummy server.

What runs
---------
* ``jackd -d dummy -r 16000 -p 160`` started by the tests' JACK harness (``tests/jackutil.py``,
  :class:`JackServer`; SCHED_FIFO priority 70 where the system allows it, else ``--no-realtime``):
  JACK's graph on the wall clock, no sound hardware.
* :class:`~streamsep.live.LiveHost` in *this* process, with the preset (``--preset``, default
  ``balanced``), on PortAudio's JACK host API (device ``system``), so its memory is this
  process's memory.
* A feeder in a *separate* process (``python scripts/soak.py feed …``): one JACK client plays a
  looped noisy speech clip (espeak-ng speech, else the synthetic voiced signal of
  :mod:`streamsep.synth`, plus fan/hum noise at 5 dB SNR) into ``streamsep:in_0``, another records
  ``streamsep:out_0``.  Its Python callbacks need only their own process's GIL.  It keeps the first
  and the last :data:`WINDOW_S` seconds of the recording with their JACK frame times and counts the
  xruns JACK reports to it (server-wide) and the cycles JACK skipped.

What is reported
----------------
Every :data:`SAMPLE_S` seconds: the host's statistics (xruns = callbacks with PortAudio xrun flags,
deadline misses, dry fallback samples, load level, reported latency) and this process's resident
memory (``VmRSS`` from ``/proc/self/status``, MB = 2**20 bytes).  At the end, the latency *measured
on the recording* at the start and at the end (the lag, in samples, at which the recorded output
correlates best with the played input; 16 kHz so 1 sample = 0.0625 ms), the reported latency, and
RSS growth = last sample − the sample at :func:`baseline_s` (start-up allocations excluded).

Targets (the issue's): zero xruns, latency unchanged from start to end, RSS growth under 5 MB.
The exit status is 0 when the session ran to the end (whether or not the targets were met; see
``targets_met`` in the JSON), 1 when the host or the feeder failed, 2 for a usage error.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jackutil import JackServer  # noqa: E402  (the one JACK harness: tests/jackutil.py)

RATE = 16000  #: JACK server rate, Hz
PERIOD = 160  #: JACK period, samples (10 ms)
SAMPLE_S = 5.0  #: seconds between statistics / RSS samples
WINDOW_S = 10.0  #: seconds of recording kept at the start and at the end for latency
START_AT_S = 5.0  #: the start window begins this long after the feeder's first sample
MAX_LAG_S = 0.5  #: largest latency searched for on the recording, seconds
RSS_TARGET_MB = 5.0
HOST_CLIENT = "streamsep"


class SoakError(ValueError):
    """A soak that cannot run (bad minutes, no jackd or JACK-Client, the host did not start on JACK);
    one-line message.  A ValueError so that ``python -m streamsep.cli`` reports it in one line too."""


# -- memory ----------------------------------------------------------------------------------------
def proc_status_mb(key: str = "VmRSS", pid: str | int = "self") -> float:
    """A ``/proc/PID/status`` memory field (``VmRSS``, ``VmHWM`` …) in MB (2**20 bytes); NaN if absent."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def baseline_s(minutes: float) -> float:
    """Time (s) of the RSS sample growth is measured from: 60 s, or a tenth of a short run."""
    return min(60.0, max(SAMPLE_S, 6.0 * minutes))


# -- the JACK server -------------------------------------------------------------------------------
# -- the signal ------------------------------------------------------------------------------------
def soak_signal(rate: int = RATE) -> tuple[np.ndarray, str]:
    """Noisy speech to loop: espeak-ng speech (else the synthetic voiced signal) + fan/hum noise at
    5 dB SNR, with a second of low noise between repetitions.  Returns (signal, description)."""
    from streamsep.synth import coloured_noise, espeak_speech, mix_at_snr, synthetic_speech

    try:
        s, what = espeak_speech(rate=rate), "espeak-ng speech"
    except (OSError, subprocess.SubprocessError):
        s = None
    if s is None:
        s, what = synthetic_speech(8.0, rate), "synthetic voiced signal"
    s = np.concatenate([s, np.zeros(rate, np.float32)])
    x = mix_at_snr(s, coloured_noise(len(s), rate, seed=7), 5.0)
    return np.ascontiguousarray(x, dtype=np.float32), f"{what} + fan/hum noise at 5 dB SNR, {len(x) / rate:.1f} s loop"


# -- the feeder (separate process) -------------------------------------------------------------------
def feed_main(server: str, signal_path: str, out_path: str, ready_path: str) -> int:
    """Play ``signal_path`` in a loop into ``streamsep:in_0`` and record ``streamsep:out_0`` until
    SIGTERM/SIGINT; then save the start and end windows, frame times and skipped cycles to ``out_path``.

    Real-time hygiene (the callbacks are Python, at JACK's SCHED_FIFO priority, and need this
    process's GIL): no allocation-heavy indexing in the callbacks, no Python xrun callback (JACK's
    notification thread runs at normal priority and would hold the GIL), garbage collection off, and
    a main thread that blocks in ``sigwait`` instead of waking up to poll."""
    import gc

    import jack

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # before any thread exists
    x = np.load(signal_path)
    L = len(x)
    x2 = np.concatenate([x, np.resize(x, 8192)])  # so every period is one slice, wrap included
    tag = uuid.uuid4().hex[:4]
    play = jack.Client(f"soak_play_{tag}", servername=server, no_start_server=True)
    rec = jack.Client(f"soak_rec_{tag}", servername=server, no_start_server=True)
    rate = play.samplerate
    win = int(WINDOW_S * rate)
    ring_n = 1 << int(math.ceil(math.log2(2 * win + 8192)))
    st = {
        "start": None,
        "armed": False,
        "gaps": 0,
        "next": None,
        "last_end": None,
        "head_from": None,
        "head_n": 0,
        "ring_w": None,
    }
    head = np.zeros(win, np.float32)
    ring = np.zeros(ring_n, np.float32)
    out_port = play.outports.register("out")
    in_port = rec.inports.register("in")

    def on_play(frames: int) -> None:
        buf = out_port.get_array()
        if not st["armed"]:
            buf.fill(0.0)
            return
        t = play.last_frame_time
        if st["start"] is None:
            st["start"] = t
            st["head_from"] = t + int(START_AT_S * rate)
        i = (t - st["start"]) % L
        buf[:] = x2[i : i + frames]

    def on_rec(frames: int) -> None:
        t = rec.last_frame_time
        if st["next"] is not None and t != st["next"]:
            st["gaps"] += 1
        st["next"] = t + frames
        data = in_port.get_array()
        if st["ring_w"] is None:
            st["ring_w"] = t  # frame time of ring index 0 (absolute addressing, wraps by mask)
        j = (t - st["ring_w"]) & (ring_n - 1)
        k = min(frames, ring_n - j)
        ring[j : j + k] = data[:k]
        if k < frames:
            ring[: frames - k] = data[k:]
        st["last_end"] = t + frames
        hf = st["head_from"]
        if hf is not None and st["head_n"] < win and t + frames > hf:
            a = max(hf, t)
            n = min(t + frames - a, win - st["head_n"])
            if n > 0 and a - hf == st["head_n"]:
                head[st["head_n"] : st["head_n"] + n] = data[a - t : a - t + n]
                st["head_n"] += n

    play.set_process_callback(on_play)
    rec.set_process_callback(on_rec)
    play.activate()
    rec.activate()
    hin, hout = f"{HOST_CLIENT}:in_0", f"{HOST_CLIENT}:out_0"
    t0 = time.monotonic()
    while {hin, hout} - {p.name for p in rec.get_ports(f"{HOST_CLIENT}:")}:
        if time.monotonic() - t0 > 120:
            print("feeder: host ports did not appear", file=sys.stderr)
            return 3
        time.sleep(0.2)
    for p in rec.get_all_connections(hin):
        rec.disconnect(p, hin)
    rec.connect(out_port.name, hin)
    rec.connect(hout, in_port.name)
    time.sleep(0.2)
    gc.collect()
    gc.freeze()
    gc.disable()
    st["armed"] = True
    Path(ready_path).write_text("ready\n")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})  # blocks in C, without the GIL, until told to stop
    play.deactivate()
    rec.deactivate()
    end = st["last_end"] or 0
    n_tail = min(win, end - (st["ring_w"] or end))
    tail_from = end - n_tail
    j = (tail_from - (st["ring_w"] or 0) + np.arange(n_tail)) & (ring_n - 1)
    np.savez(
        out_path,
        head=head[: st["head_n"]],
        head_from=st["head_from"] or 0,
        tail=ring[j],
        tail_from=tail_from,
        start=st["start"] if st["start"] is not None else -1,
        gaps=st["gaps"],
        rate=rate,
    )
    play.close()
    rec.close()
    return 0


def parse_jack_log(text: str) -> dict:
    """xrun evidence from our own jackd's log: graph cycles that did not finish (``Process error``),
    driver wake-ups that came late (``JackTimedDriver::Process XRun``), and per client how often it
    was still *running* at the deadline (the late one) or only *triggered* (waiting on a late input)."""
    late: dict[str, int] = {}
    waiting: dict[str, int] = {}
    graph_errors = driver_late = 0
    for line in text.splitlines():
        if "ProcessGraphAsyncMaster: Process error" in line:
            graph_errors += 1
        elif "JackTimedDriver::Process XRun" in line:
            driver_late += 1
        elif "JackEngine::XRun: client = " in line and "was not finished" in line:
            name = line.split("client = ", 1)[1].split(" was not finished", 1)[0]
            name = "streamsep (host)" if name == HOST_CLIENT else ("feeder" if name.startswith("soak_") else name)
            d = late if "state = Running" in line else waiting
            d[name] = d.get(name, 0) + 1
    return {
        "graph_errors": graph_errors,
        "driver_late": driver_late,
        "xruns": graph_errors + driver_late,
        "late_clients": late,
        "waiting_clients": waiting,
    }


# -- analysis ----------------------------------------------------------------------------------------
def measured_lag(y: np.ndarray, y_from: int, x: np.ndarray, start: int, max_lag: int) -> tuple[int | None, float]:
    """Lag (samples) at which recording ``y`` (first sample at JACK frame ``y_from``) best matches the
    looped input ``x`` (first played at frame ``start``): normalised cross-correlation over lags
    ``0 … max_lag``.  Returns (lag, correlation at that lag); (None, nan) when not measurable."""
    n = len(y)
    first = y_from - max_lag - start  # input index of the earliest sample needed
    if n < 1024 or first < 0 or not np.any(y):
        return None, float("nan")
    u = x[(first + np.arange(n + max_lag)) % len(x)].astype(np.float64)
    yy = y.astype(np.float64)
    m = 1 << int(math.ceil(math.log2(len(u) + n)))
    c = np.fft.irfft(np.fft.rfft(u, m) * np.conj(np.fft.rfft(yy, m)), m)[: max_lag + 1]
    # c[k] = sum_i y[i]·u[k + i]; lag T means y[i] ≈ u[max_lag − T + i]
    e = np.concatenate([[0.0], np.cumsum(u * u)])
    k = np.arange(max_lag + 1)
    norm = np.sqrt((e[k + n] - e[k]) * float(np.dot(yy, yy))) + 1e-12
    r = c / norm
    best = int(np.argmax(r))
    return max_lag - best, float(r[best])


def _tail(path: Path, n: int = 300) -> str:
    """The last ``n`` characters of a log file, on one line."""
    try:
        return " ".join(path.read_text(errors="replace")[-n:].split())
    except OSError:
        return ""


def _close_portaudio() -> None:
    """Terminate PortAudio in this process (unless a stream is wedged, see streamsep.live)."""
    from streamsep import live

    if live._portaudio_wedged or "sounddevice" not in sys.modules:
        return
    sd = sys.modules["sounddevice"]
    while getattr(sd, "_initialized", 0) > 0:
        sd._terminate()


# -- the run ---------------------------------------------------------------------------------------
def _sample(host, t: float) -> dict:
    s = host.stats()
    eng = host.engine
    return {
        "t": round(t, 2),
        "rss_mb": round(proc_status_mb("VmRSS"), 3),
        "xruns": s["xruns"],
        "deadline_misses": s["deadline_misses"],
        "fallback_samples": s["fallback_samples"],
        "overruns": s["overruns"],
        "resets": int(eng.stats.resets) if eng is not None else 0,
        "latency_ms": s["latency_ms"],
        "latency_samples": s["latency_samples"],
        "rtf": round(s["rtf"], 4),
        "steps_in_use": s["steps_in_use"],
        "candidates_in_use": s["candidates_in_use"],
        "level_changes": s["level_changes"],
        "seconds": round(s["seconds"], 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "running": s["running"],
    }


def run_soak(args) -> int:
    """Body of ``python scripts/soak.py MINUTES [--preset P] [--json OUT] [--threads N] [--period N]``."""
    from dataclasses import replace

    from streamsep.machine import machine_info
    from streamsep.presets import load_preset
    from streamsep.reporting import write_json

    minutes = float(args.soak)
    if not math.isfinite(minutes) or minutes <= 0:
        raise SoakError(f"--soak: minutes must be a positive number, got {args.soak!r}")
    preset = getattr(args, "preset", None) or "balanced"
    config = load_preset(preset)
    if getattr(args, "device", None):
        config = replace(config, device=args.device).validate()
    threads = int(getattr(args, "threads", None) or 1)
    period = getattr(args, "period", None) or PERIOD
    if not isinstance(period, int) or not 16 <= period <= 4096:
        raise SoakError(f"--period: JACK period must be an integer in 16..4096 frames, got {period!r}")
    x, what = soak_signal(RATE)
    if shutil.which("jackd") is None:
        raise SoakError("--soak: jackd not found (install jackd2)")
    try:
        srv = JackServer(rate=RATE, period=period).start()
    except (RuntimeError, ImportError) as exc:
        raise SoakError(f"--soak: {str(exc).splitlines()[0]}") from None
    for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION", "JACK_NO_START_SERVER"):
        os.environ[k] = srv.env()[k]  # PortAudio's JACK host API (in this process) and the feeder
    tmp = Path(tempfile.mkdtemp(prefix="streamsep-soak-"))
    feeder = None
    host = None
    code = 0
    samples: list[dict] = []
    error = None
    log_from = log_to = 0
    load_start = os.getloadavg()
    try:
        from streamsep.live import DeviceError, LiveHost

        np.save(tmp / "signal.npy", x)
        host = LiveHost(config, input_device="system", output_device="system", threads=threads)
        try:
            host.start()
        except (DeviceError, ValueError) as exc:
            raise SoakError(f"--soak: the live host did not start on JACK ({str(exc).splitlines()[0]})") from None
        if host.rate != RATE or not getattr(host, "_jack", False):
            raise SoakError(
                f"--soak: expected the JACK device at {RATE} Hz, got {host.rate} Hz "
                f"(jack={getattr(host, '_jack', False)})"
            )
        ready = tmp / "ready"
        # the feeder's output goes to a file: a pipe nobody reads for 30 minutes could fill up and
        # block a JACK thread that prints (libjack does, on trouble)
        feeder_log = open(tmp / "feeder.log", "w")
        feeder = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "feed",
                srv.name,
                str(tmp / "signal.npy"),
                str(tmp / "rec.npz"),
                str(ready),
            ],
            env=os.environ.copy(),
            stdout=feeder_log,
            stderr=subprocess.STDOUT,
        )
        t_wait = time.monotonic()
        while not ready.exists():
            if feeder.poll() is not None:
                raise SoakError(f"--soak: feeder exited ({feeder.returncode}): {_tail(tmp / 'feeder.log')}")
            if time.monotonic() - t_wait > 120:
                raise SoakError("--soak: feeder did not connect within 120 s")
            time.sleep(0.1)
        print(
            f"soak: {minutes:g} min, preset {preset} ({config.model}, steps {config.steps}, candidates "
            f"{config.candidates}, block {config.block}), JACK dummy {RATE} Hz / {srv.period} "
            f"({'SCHED_FIFO' if srv.realtime else 'no-realtime'}), input: {what}; "
            f"load average {load_start[0]:.1f}",
            flush=True,
        )
        log_from = srv.log.stat().st_size  # jackd log: only what happens during the measurement
        t0 = time.monotonic()
        total = 60.0 * minutes
        next_sample, next_line = 0.0, 60.0
        while True:
            now = time.monotonic() - t0
            if now >= next_sample:
                samples.append(_sample(host, now))
                next_sample += SAMPLE_S
            if now >= next_line:
                s = samples[-1]
                print(
                    f"soak: {now / 60:5.1f} min  xruns {s['xruns']}  misses {s['deadline_misses']}  "
                    f"latency {s['latency_ms']:.1f} ms  rss {s['rss_mb']:.1f} MB  rtf {s['rtf']:.2f}  "
                    f"load {s['load_avg_1m']:.1f}",
                    flush=True,
                )
                next_line += 60.0
            if host._error is not None:
                error = f"host: {host._error}"
                break
            if feeder.poll() is not None:
                error = f"feeder exited early ({feeder.returncode}): {_tail(tmp / 'feeder.log')}"
                break
            if now >= total:
                break
            # few wake-ups: this thread shares the GIL with the worker (a preempted holder delays it)
            time.sleep(max(0.05, min(next_sample, total) - (time.monotonic() - t0)))
        samples.append(_sample(host, time.monotonic() - t0))
        log_to = srv.log.stat().st_size
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        if feeder is not None and feeder.poll() is None:
            feeder.send_signal(signal.SIGTERM)
            try:
                feeder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                feeder.kill()
                feeder.wait()
        if host is not None:
            host.stop()
        _close_portaudio()  # before the server goes: PortAudio's JACK client must not outlive it
        srv.stop()
    final = host.stats() if host is not None else {}
    rec = None
    if (tmp / "rec.npz").is_file():
        rec = dict(np.load(tmp / "rec.npz"))
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with open(srv.log, "rb") as fh:
            fh.seek(log_from)
            jlog = parse_jack_log(fh.read(max(0, log_to - log_from)).decode("utf-8", "replace"))
    except OSError:
        jlog = None
    report = summarize(samples, final, rec, x, minutes, preset, config, srv, what, threads, load_start, error, jlog)
    report["machine"] = machine_info(threads, config.device)
    print_summary(report)
    if args.json:
        write_json(args.json, report)
    if error and error != "interrupted":
        code = 1
    return code


def summarize(
    samples: list[dict],
    final: dict,
    rec: dict | None,
    x: np.ndarray,
    minutes: float,
    preset: str,
    config,
    srv: JackServer,
    what: str,
    threads: int,
    load_start,
    error: str | None,
    jlog: dict | None = None,
) -> dict:
    """The JSON report (see the module docstring)."""
    max_lag = int(MAX_LAG_S * RATE)
    lat = {"start": (None, float("nan")), "end": (None, float("nan"))}
    jack_gaps = None
    jack_xruns = jlog["xruns"] if jlog else None
    if rec is not None and int(rec["start"]) >= 0:
        lat["start"] = measured_lag(rec["head"], int(rec["head_from"]), x, int(rec["start"]), max_lag)
        lat["end"] = measured_lag(rec["tail"], int(rec["tail_from"]), x, int(rec["start"]), max_lag)
        jack_gaps = int(rec["gaps"])
    ms = lambda v: None if v is None else 1000.0 * v / RATE
    rss = [[s["t"], s["rss_mb"]] for s in samples]
    base_t = baseline_s(minutes)
    base = next((r for t, r in rss if t >= base_t), rss[0][1] if rss else float("nan"))
    growth = (rss[-1][1] - base) if rss else float("nan")
    growth0 = (rss[-1][1] - rss[0][1]) if rss else float("nan")
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    during = lambda key: int(final.get(key, last.get(key, 0))) - int(first.get(key, 0))  # noqa: E731
    ran_s = last.get("t", 0.0)
    report = {
        "minutes": minutes,
        "ran_seconds": ran_s,
        "preset": preset,
        "config": config.to_dict(),
        "input": what,
        "threads": threads,
        "jack": {"rate": RATE, "period": srv.period, "server": srv.name, "realtime": srv.realtime},
        "xruns": during("xruns"),
        "jack_xruns": jack_xruns,
        "jack_skipped_cycles": jack_gaps,
        "jack_log": jlog,
        "deadline_misses": during("deadline_misses"),
        "fallback_samples": during("fallback_samples"),
        "overruns": during("overruns"),
        "level_changes": during("level_changes"),
        "resets": last.get("resets"),
        "latency_ms_start": ms(lat["start"][0]),
        "latency_ms_end": ms(lat["end"][0]),
        "latency_samples_start": lat["start"][0],
        "latency_samples_end": lat["end"][0],
        "latency_correlation_start": lat["start"][1],
        "latency_correlation_end": lat["end"][1],
        "reported_latency_ms_start": first.get("latency_ms"),
        "reported_latency_ms_end": last.get("latency_ms"),
        "rss_mb": rss,
        "rss_baseline_s": base_t,
        "rss_growth_mb": growth,
        "rss_growth_from_first_mb": growth0,
        "rss_peak_mb": max([proc_status_mb("VmHWM")] + [r for _, r in rss]),
        "load_avg_start": list(load_start),
        "load_avg_end": list(os.getloadavg()),
        "samples": samples,
        "error": error,
    }
    latency_same = (
        lat["start"][0] is not None
        and lat["start"][0] == lat["end"][0]
        and first.get("latency_samples") == last.get("latency_samples")
    )
    host_late = (jlog or {}).get("late_clients", {}).get("streamsep (host)", 0)
    report["host_late_cycles"] = host_late if jlog else None
    report["targets"] = {
        "zero_xruns": report["xruns"] == 0 and not jack_xruns,
        "latency_unchanged": bool(latency_same),
        "rss_growth_under_5mb": bool(growth < RSS_TARGET_MB),
    }
    report["targets_met"] = error is None and all(report["targets"].values())
    return report


def print_summary(r: dict) -> None:
    f = lambda v, fmt="{:.2f}": "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)
    print(
        f"soak summary: {r['ran_seconds'] / 60:.1f} of {r['minutes']:g} min, preset {r['preset']}"
        + (f", ERROR: {r['error']}" if r["error"] else "")
    )
    print(
        f"  xruns (host PortAudio flags) {r['xruns']}, JACK xruns {f(r['jack_xruns'], '{}')}, "
        f"skipped cycles {f(r['jack_skipped_cycles'], '{}')}"
    )
    j = r.get("jack_log")
    if j and j["xruns"]:
        print(
            f"  jackd log: {j['graph_errors']} unfinished graph cycles, {j['driver_late']} late driver wake-ups; "
            f"late (running) clients {j['late_clients'] or 'none'}; waiting {j['waiting_clients'] or 'none'}"
        )
    print(
        f"  deadline misses {r['deadline_misses']}, dry fallback samples {r['fallback_samples']}, "
        f"load-level changes {r['level_changes']}, chain resets {r['resets']}"
    )
    print(
        f"  latency measured on the recording: start {f(r['latency_ms_start'])} ms, end {f(r['latency_ms_end'])} ms "
        f"(correlation {f(r['latency_correlation_start'])} / {f(r['latency_correlation_end'])}); "
        f"reported {f(r['reported_latency_ms_start'])} → {f(r['reported_latency_ms_end'])} ms"
    )
    rss = r["rss_mb"]
    if rss:
        print(
            f"  RSS {rss[0][1]:.1f} MB at {rss[0][0]:.0f} s → {rss[-1][1]:.1f} MB at {rss[-1][0]:.0f} s; growth since "
            f"{r['rss_baseline_s']:.0f} s {r['rss_growth_mb']:+.2f} MB; peak {f(r['rss_peak_mb'], '{:.1f}')} MB"
        )
    print(f"  load average {r['load_avg_start'][0]:.1f} → {r['load_avg_end'][0]:.1f} (2 cores shared)")
    print("  targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["targets"].items()))


def main(argv: list[str] | None = None) -> int:
    """``soak.py MINUTES [--preset P] [--period N] [--json OUT] [--threads N] [--device D]`` (and the
    internal ``soak.py feed SERVER SIGNAL.npy OUT.npz READY_FILE``).  Exit 2 with one line on bad input."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 5 and argv[0] == "feed":
        return feed_main(*argv[1:])
    p = argparse.ArgumentParser(
        prog="scripts/soak.py", description="soak test of the live host through the JACK dummy server"
    )
    p.add_argument("soak", type=float, metavar="MINUTES", help="length of the measurement in minutes")
    p.add_argument("--preset", default="balanced", help="preset name or .toml path (default balanced)")
    p.add_argument("--period", type=int, default=PERIOD, help="JACK period in frames at 16 kHz (default 160 = 10 ms)")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"])
    args = p.parse_args(argv)
    try:
        return run_soak(args)
    except ValueError as exc:  # SoakError, PresetError, ConfigError: one line
        print(f"soak: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
