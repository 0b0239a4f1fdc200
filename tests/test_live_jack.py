"""The live host against a real audio server: jackd (dummy driver, 16 kHz, 160-sample periods), the
host in a subprocess (``python -m streamsep.cli live``, the body of ``streamsep live``) on PortAudio's
JACK host API, and a JACK player and recorder in this process connected to its ports by name.

What is asserted, on the recording (not on the host's word):
* output equals the offline engine output once the *reported* latency is removed (and is clearly
  worse one sample either side), for generated speech (always) and 60 s of real speech;
* an impulse comes out exactly the reported number of samples later;
* 60 s at the ``balanced`` preset: zero xruns, zero deadline misses, latency constant;
* an oversized preset beside a CPU hog: steps are reduced, no xrun, no silence, latency unchanged;
* unknown device, refused rate, vanished server, Ctrl-C: clear message, clean exit, stats written.

The last group runs the host in-process on a file with no playback device (no JACK needed):
parity, live parameter changes without clicks, engine swaps (``set_config``), the stats contract.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jackutil import (  # noqa: E402
    JackServer,
    LiveProcess,
    PlayRecord,
    Recording,
    add_noise,
    espeak_speech,
    jack_missing_reason,
    real_speech,
    snr_db,
    speech_like,
    wait_until,
)

from streamsep.engine import EngineConfig, enhance_array  # noqa: E402
from streamsep.presets import load_preset  # noqa: E402

# These tests were written for NSNet2 with two fixed steps at 10 ms blocks (the ``balanced`` preset
# until it moved to DeepFilterNet3): they name that configuration explicitly.
NSNET2_TWO_STEPS = EngineConfig(model="nsnet2", steps=2, ratios=[0.5, 0.4], block=160)
NSNET2_TWO_STEPS_ARGS = ("--model", "nsnet2", "--steps", "2", "--ratios", "0.5,0.4", "--engine-block", "160")

RATE = 16000
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_REASON = jack_missing_reason()


def jack_only(f):
    """Marks a test as needing JACK (``-m jack`` selects them) and skips it without jackd."""
    return pytest.mark.jack(pytest.mark.skipif(_REASON is not None, reason=_REASON or "")(f))


def generated(seconds: float) -> np.ndarray:
    """espeak-ng speech (numpy speech-like signal without espeak-ng) + white noise at 10 dB SNR."""
    s = espeak_speech(RATE)
    if s is None:
        s = speech_like(RATE, seconds)
    s = np.tile(s, math.ceil(seconds * RATE / len(s)))[: int(seconds * RATE)]
    return add_noise(s, 10.0)


def offline(x: np.ndarray, config: EngineConfig, lead_s: float = 2.0) -> np.ndarray:
    """The offline engine on ``x`` after ``lead_s`` of silence (the live host idles on silence
    before the player starts; a recurrent model's state after silence is not its initial state)."""
    z = int(lead_s * RATE)
    return enhance_array(np.concatenate([np.zeros(z, np.float32), x]), RATE, config)[z:]


# -- JACK session ---------------------------------------------------------------------------------
@dataclass
class Session:
    code: int
    stats: dict
    err: str
    rec: Recording
    n: int  # played samples

    def output(self, shift: int = 0, n: int | None = None) -> np.ndarray:
        """Recorded output aligned to the played signal by the reported latency (+ ``shift``)."""
        return self.rec.aligned(self.rec.start_frame + self.stats["latency_samples"] + shift, n or self.n)

    def jack_xruns(self) -> int:
        """xruns JACK reported (any client) while the signal played."""
        return self.rec.xruns_while_playing()


@pytest.fixture(scope="module")
def server():
    if _REASON is not None:
        pytest.skip(_REASON)
    srv = JackServer(RATE, 160).start()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sounddevice as sd; print(any('JACK' in a['name'] for a in sd.query_hostapis()))",
        ],
        env=srv.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.stdout.strip() != "True":
        srv.stop()
        pytest.skip(f"PortAudio has no JACK host API here: {probe.stdout.strip()} {probe.stderr.strip()[-200:]}")
    yield srv
    srv.stop()


def run_session(srv: JackServer, x: np.ndarray, *args: str, tmp: Path) -> Session:
    """Start the host, play ``x`` into it and record it (player/recorder in their own process),
    then Ctrl-C the host and collect its statistics."""
    stats = tmp / f"stats-{uuid.uuid4().hex[:6]}.json"
    host = LiveProcess(srv, *args, stats=stats)
    pr = PlayRecord(srv, x, tmp)
    try:
        rec = pr.wait(timeout=len(x) / RATE + 150)
        code = host.interrupt()
    finally:
        if host.proc.poll() is None:
            host.proc.kill()
            host.finish()
        if pr.proc.poll() is None:
            pr.proc.kill()
    assert stats.is_file(), f"no stats written; stderr: {host.err[-2000:]}"
    return Session(code, json.loads(stats.read_text()), host.err, rec, len(x))


def parity(sess: Session, ref: np.ndarray, skip_s: float = 0.0) -> dict[int, float]:
    """SNR (dB) of the aligned recording against ``ref`` at shifts −1, 0, +1 samples."""
    k = int(skip_s * RATE)
    return {s: snr_db(ref[k:], sess.output(s)[k:]) for s in (-1, 0, 1)}


def assert_no_missed_cycle(srv: JackServer, mark: int, sess: Session) -> None:
    """The host never missed a cycle that its upstream player finished.  This VM does not always run
    a 10 ms cycle on time: a SCHED_FIFO thread sleeping 1 ms on the idle machine saw 90 wake-ups more
    than 4 ms late in one minute (up to 10 ms; docs/lab/2026-12-01-live-tests-vm-jitter.md), and the
    server then logs its
    driver's own late start or the idle player's and recorder's misses (seven in one 8 s session).
    Allow two such events per second of session — a host that starved the server would cause about
    a hundred a second —, and no more host or recorder xrun flags than the logged events explain."""
    ev = srv.xrun_events_since(mark)
    other = ev["driver"] + ev["stall"] + ev["harness"]
    assert ev["host"] == [] and len(other) <= 3 + 2 * sess.n / RATE, ev
    # xrun notifications go to every client, about one per logged line (seen: 6 for 5 lines)
    lines = sum(len(e) for e in other)
    bound = 2 * lines + 2
    assert sess.stats["xruns"] <= bound and sess.jack_xruns() <= bound, (sess.stats["xruns"], sess.jack_xruns(), ev)


def disturbed_seconds(st: dict) -> tuple[int, float]:
    """(episodes, seconds) of the session the deadline controller spent away from the requested
    work: a step down until the climb back to full work (or the end), plus each deadline miss.
    Episodes are clusters of misses and level changes more than 1 s apart."""
    events = sorted(st["miss_times"] + [h[0] for h in st["level_history"]])
    episodes = sum(1 for i, t in enumerate(events) if i == 0 or t - events[i - 1] > 1.0)
    full = (st["steps_requested"], st["candidates_requested"])
    reduced, since = 0.0, None
    for t, steps, cands, dry in st["level_history"]:
        if (steps, cands) == full and not dry:
            if since is not None:
                reduced += t - since
            since = None
        elif since is None:
            since = t
    if since is not None:
        reduced += st["seconds"] - since
    return episodes, reduced + 0.3 * len(st["miss_times"])


def assert_parity_outside_episodes(sess: Session, ref: np.ndarray, x: np.ndarray, skip_s: float = 1.0) -> None:
    """The recording equals the offline output ``ref`` at exactly the reported delay (SNR > 40 dB in
    100 ms segments, and worse one sample off): in every segment when the deadline controller never
    acted.  After an episode (a miss, a step down) the re-enabled steps restart from fresh states
    and stay a valid but no longer identical estimate for many seconds, so then at least 1 s of
    segments must be identical (the first episode came 5 s into a minute in one full-suite run) and
    the delay found on the recording by cross-correlation with the input ``x`` must be the reported
    one at the start and at the end."""
    st, seg = sess.stats, RATE // 10
    episodes, disturbed = disturbed_seconds(st)
    y0, ym, yp = sess.output(0), sess.output(-1), sess.output(1)
    ok = sess.rec.trusted(sess.rec.start_frame + st["latency_samples"], len(ref))
    good = bad = 0
    where = []
    for a in range(int(skip_s * RATE), len(ref) - seg + 1, seg):
        w = slice(a, a + seg)
        if np.sum(ref[w] ** 2) < 1e-8:
            continue  # digital-silence segment: nothing to compare
        if not ok[w].all():
            continue  # JACK's clock jumped here: the recording, not the host, is off
        s0 = snr_db(ref[w], y0[w])
        if s0 > 40.0 and s0 > max(snr_db(ref[w], ym[w]), snr_db(ref[w], yp[w])) + 15:
            good += 1
        else:
            bad += 1
            where.append((round(a / RATE, 1), round(s0, 1)))
    info = {k: st[k] for k in ("miss_times", "level_history", "fallback_samples", "worker_stalls")}
    info["bad_segments"] = where[:20]
    info["recorder_gaps"] = sess.rec.gap_frames.tolist()[:20]
    if episodes == 0:
        # a 60 s run on this VM once had 5 of 589 segments off with no episode and no frame-time
        # jump the recorder saw: allow 1 % (a wrong delay or wrong processing fails them all)
        assert bad <= 0.01 * (good + bad) and good > 0, (good, bad, info)
        return
    assert good >= 10, (good, bad, episodes, disturbed, info)
    T = st["latency_samples"]
    full = sess.rec.aligned(sess.rec.start_frame, len(x) + T + 2000)
    for a in (RATE, len(x) - 4 * RATE):
        if not ok[max(0, a - RATE) : a + 4 * RATE].all():
            continue
        assert _lag(full[a:], x[a : a + 3 * RATE], T) == T, (f"latency changed near {a / RATE:.0f} s", info)


# -- tests on JACK ----------------------------------------------------------------------------------
@jack_only
def test_live_output_matches_offline_engine(server, tmp_path):
    """Generated speech (no ../shared needed): the recording is the offline output, delayed by
    exactly the reported latency; Ctrl-C ends the session cleanly with statistics written."""
    x = generated(8.0)
    mark = len(server.log_lines())
    sess = run_session(server, x, *NSNET2_TWO_STEPS_ARGS, tmp=tmp_path)
    st = sess.stats
    assert sess.code == 0, sess.err[-2000:]
    assert st["error"] is None and st["running"] is False
    assert_no_missed_cycle(server, mark, sess)
    assert st["fallback_samples"] <= 0.005 * len(x), (st["miss_times"], st["level_history"])
    assert st["seconds"] > 8.0 and (st["steps_in_use"] == 2 or st["level_history"])
    assert st["latency_samples"] == st["engine_latency_samples"] + st["margin_samples"]
    assert st["latency_ms"] == pytest.approx(1000 * st["latency_samples"] / RATE)
    ref = offline(x, NSNET2_TWO_STEPS)
    assert_parity_outside_episodes(sess, ref, x, skip_s=0.0)
    if not st["miss_times"] and not st["level_history"]:  # the common case: the whole signal
        snr = parity(sess, ref)
        assert snr[0] > 40.0, snr
        assert snr[-1] < snr[0] - 20 and snr[1] < snr[0] - 20, snr


@jack_only
def test_impulse_latency_equals_reported(server, tmp_path):
    """Impulses through the live path come out exactly ``latency_samples`` later: bit-exact through
    the engine's delay-aligned dry path (bypass), and at the peak through the model."""
    x = np.zeros(4 * RATE, np.float32)
    pos = np.arange(RATE // 4, len(x) - RATE // 4, RATE // 3)
    x[pos] = 0.8
    mark = len(server.log_lines())
    sess = run_session(server, x, "--preset", "low-latency", "--bypass", tmp=tmp_path)
    assert sess.code == 0, sess.err[-2000:]
    # the budget: NSNet2's 10 ms (no block buffering at whole-block periods) + a 20 ms host margin
    # at 10 ms periods (streamsep presets): 480 samples = 30 ms
    assert sess.stats["period"] == 160 and sess.stats["latency_samples"] == 480, sess.stats["latency_ms"]
    assert sess.stats["latency_ms"] == pytest.approx(30.0) and sess.stats["engine_filled_samples"] == 0
    assert_no_missed_cycle(server, mark, sess)
    y = sess.output()
    # where JACK's clock jumped, the recording is off, not the host
    keep = sess.rec.trusted(sess.rec.start_frame + sess.stats["latency_samples"], len(x))
    assert keep.mean() > 0.9
    np.testing.assert_allclose(y[keep], x[keep], atol=1e-6)  # y[t] = x[t − latency], sample-exact
    # and with the model running: each impulse's output peaks at the same delay
    noise = 0.003 * np.random.default_rng(3).standard_normal(len(x)).astype(np.float32)
    mark = len(server.log_lines())
    sess = run_session(server, x + noise, "--preset", "low-latency", tmp=tmp_path)
    assert sess.code == 0, sess.err[-2000:]
    assert sess.stats["latency_samples"] == 480 and sess.stats["engine_filled_samples"] == 0
    assert_no_missed_cycle(server, mark, sess)
    y = sess.output(0, len(x) + 400)
    ok = sess.rec.trusted(sess.rec.start_frame + sess.stats["latency_samples"], len(x) + 400)
    for p in pos:
        if not ok[p - 200 : p + 200].all():
            continue  # JACK's clock jumped next to this impulse: the recording is off there
        seg = np.abs(y[p - 200 : p + 200])
        assert int(np.argmax(seg)) - 200 == 0, f"impulse at {p}: peak off by {int(np.argmax(seg)) - 200}"


@jack_only
def test_impulse_latency_48k_fir(server, tmp_path):
    """48 kHz JACK at 480-frame periods (PipeWire's usual rate): low-latency reports 35 ms = 1680
    samples (NSNet2's 10 ms + the FIR resampler's 2 × 2.5 ms + 20 ms host margin, no buffering), and
    impulses on the 16 kHz grid come out exactly that late, bypassed (through the resamplers only)
    and with the model running; the engine never fills a sample from its fallback.  balanced
    (DeepFilterNet3, 48 kHz): 2400 samples = 50 ms, bit-exact there."""
    from jackutil import JackServer

    srv = JackServer(48000, 480).start()
    try:
        r = 48000
        x = np.zeros(3 * r, np.float32)
        pos = np.arange(r // 4, len(x) - r // 4, 3 * 5333)
        x[pos] = 0.8
        noise = 0.003 * np.random.default_rng(3).standard_normal(len(x)).astype(np.float32)
        for extra, sig in ((("--bypass",), x), ((), x + noise)):
            mark = len(srv.log_lines())
            sess = run_session(srv, sig, "--preset", "low-latency", *extra, tmp=tmp_path)
            assert sess.code == 0, sess.err[-2000:]
            st = sess.stats
            assert (st["samplerate"], st["period"], st["latency_samples"]) == (48000, 480, 1680), st
            assert st["latency_ms"] == pytest.approx(35.0) and st["engine_filled_samples"] == 0, st
            assert_no_missed_cycle(srv, mark, sess)
            y = sess.output(0, len(x) + 600)
            ok = sess.rec.trusted(sess.rec.start_frame + st["latency_samples"], len(x) + 600)
            checked = 0
            for p in pos:
                if not ok[p - 300 : p + 300].all():
                    continue  # JACK's clock jumped next to this impulse: the recording is off there
                seg = np.abs(y[p - 300 : p + 300])
                assert int(np.argmax(seg)) - 300 == 0, f"{extra}: impulse at {p}: off by {int(np.argmax(seg)) - 300}"
                checked += 1
            assert checked >= len(pos) // 2, checked
        # DeepFilterNet3 (balanced) runs at 48 kHz itself: 30 ms model + 20 ms host = 50 ms, bit-exact (bypass)
        mark = len(srv.log_lines())
        sess = run_session(srv, x, "--preset", "balanced", "--bypass", tmp=tmp_path)
        assert sess.code == 0, sess.err[-2000:]
        st = sess.stats
        assert (st["period"], st["latency_samples"], st["engine_filled_samples"]) == (480, 2400, 0), st
        assert_no_missed_cycle(srv, mark, sess)
        keep = sess.rec.trusted(sess.rec.start_frame + st["latency_samples"], len(x))
        assert keep.mean() > 0.9
        np.testing.assert_allclose(sess.output()[keep], x[keep], atol=1e-6)  # y[t] = x[t − 2400]
    finally:
        srv.stop()


@jack_only
@pytest.mark.slow
def test_balanced_60s_real_speech_no_xrun_no_miss(server, tmp_path):
    """60 s of real noisy speech at the balanced preset: the host never misses a JACK cycle, the
    latency is the reported one over the whole minute (windowed parity with the offline engine).

    On an idle desktop there is no deadline miss either (earlier measurements: none in 60 s,
    none in a 30-minute soak).  On a slower day of the same VM chunks sometimes took 4x their compute
    (docs/lab/2026-12-01-live-tests-vm-jitter.md) and a minute showed up to 11 miss or step-down
    episodes; each is absorbed as the controller is designed to (a few ms of delay-aligned dry output,
    a step down, a climb back), so the test bounds them (:func:`disturbed_seconds`) and checks parity with the offline
    engine as :func:`assert_parity_outside_episodes` says."""
    x = real_speech(RATE, 60.0)
    if x is None:
        pytest.skip(f"../shared not present: {SHARED / 'data/pairs/leventure/noisy'}")
    mark = len(server.log_lines())
    sess = run_session(server, x, *NSNET2_TWO_STEPS_ARGS, tmp=tmp_path)
    st = sess.stats
    assert sess.code == 0, sess.err[-2000:]
    assert_no_missed_cycle(server, mark, sess)
    assert st["seconds"] >= 60.0
    episodes, disturbed = disturbed_seconds(st)
    info = {
        k: st[k]
        for k in (
            "deadline_misses",
            "miss_times",
            "level_history",
            "fallback_samples",
            "worker_stalls",
            "stall_times",
            "misses_after_stall",
        )
    }
    # seen in full-suite runs on a slow day of this VM: up to 11 episodes, once down to the dry path,
    # and 40 s of the minute below full work when the smoothed load passed the controller's 0.75
    # (stepping down under measured load is its job, so the time spent there is not bounded)
    assert episodes <= 20 and st["fallback_samples"] <= 0.01 * len(x), (disturbed, info)
    # full work again at the end, unless the last step down came in the last climb wait (2 s and more)
    last = max([h[0] for h in st["level_history"]], default=0.0)
    assert (st["steps_in_use"] == 2 or st["seconds"] - last < 5.0) and st["candidates_in_use"] == 1, info
    assert_parity_outside_episodes(sess, offline(x, NSNET2_TWO_STEPS), x)


def dropouts(y: np.ndarray, min_len: int = 64, loud: float = 1e-3) -> list[tuple[int, int]]:
    """(start, length) of runs of exact zeros, at least ``min_len`` long, between two stretches of
    audible output (RMS over 20 ms before and after above ``loud``): gaps, not quiet passages."""
    z = np.concatenate([[0], (y == 0.0).astype(np.int8), [0]])
    starts, ends = np.flatnonzero(np.diff(z) == 1), np.flatnonzero(np.diff(z) == -1)
    w = RATE // 50
    out = []
    for a, b in zip(starts, ends):
        if b - a >= min_len and a >= w and b + w <= len(y):
            if np.sqrt(np.mean(y[a - w : a] ** 2)) > loud and np.sqrt(np.mean(y[b : b + w] ** 2)) > loud:
                out.append((int(a), int(b - a)))
    return out


def _hog() -> subprocess.Popen:
    """A CPU-bound process pinned to the last core."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(p.pid, {(os.cpu_count() or 2) - 1})
    return p


def _lag(y: np.ndarray, x: np.ndarray, around: int, radius: int = 80) -> int:
    """Lag (samples) in ``around ± radius`` at which ``y`` best matches ``x`` (normalised xcorr)."""
    best, arg = -1.0, None
    for lag in range(around - radius, around + radius + 1):
        seg = y[lag : lag + len(x)]
        c = float(np.dot(seg, x)) / (np.linalg.norm(seg) * np.linalg.norm(x) + 1e-12)
        if c > best:
            best, arg = c, lag
    return arg


@jack_only
@pytest.mark.slow
def test_overload_absorbed_by_reducing_steps(server, tmp_path):
    """An oversized preset beside a CPU hog: the host reduces candidates/steps until it keeps up;
    no xrun, never silence, and the latency stays the reported one from start to end."""
    x = real_speech(RATE, 25.0)
    x = generated(25.0) if x is None else x
    hog = _hog()
    mark = len(server.log_lines())
    try:
        # 16 steps × 32 candidates of the 48 kHz NSNet2 on 10 ms blocks: ~500 model passes per block,
        # bench rtf ≈ 1.7 on one core of this machine, so the host must shed load.  (16 × 4 at 16 kHz
        # stopped overloading once the engine got faster, and 16 × 32 at 16 kHz on a faster
        # day of this machine, rtf ≈ 0.65: the hog shares a core with no SCHED_FIFO worker)
        sess = run_session(
            server,
            x,
            "--preset",
            "quality",
            "--model",
            "nsnet2-48k",
            "--engine-block",
            "480",
            "--steps",
            "16",
            "--candidates",
            "32",
            tmp=tmp_path,
        )
    finally:
        hog.kill()
        hog.wait()
    st = sess.stats
    assert sess.code == 0, sess.err[-2000:]
    # the host never missed its cycle; beside a hog that loads both cores of this VM the dummy
    # driver's own timer wakes late more often (seen: "JackTimedDriver::Process XRun = 28 usec")
    assert_no_missed_cycle(server, mark, sess)
    assert st["level_changes"] >= 1 and st["level_history"], st
    # candidates go first; how far, and whether steps must go too, depends on how fast this machine is
    # (idle 2-core dev machine: 32 → 1 candidates, then 16 → 6 steps, 18 level changes)
    # (a slower day of the same VM: once all the way down to the plain model)
    assert st["candidates_in_use"] < 32 and 0 <= st["steps_in_use"] <= 16, st
    if st["steps_in_use"] < 16:
        assert st["candidates_in_use"] == 1, st
    # misses happen while the controller steps down, then stop (allow a rare transient)
    assert sum(t > 10.0 for t in st["miss_times"]) <= 2, st["miss_times"]
    y = sess.output(0, len(x) + 2000)
    T = st["latency_samples"]
    # never a silence burst: no dropout (a run of exact zeros inside audible output), except where
    # JACK itself skipped cycles (the VM did not run them: nobody played or recorded those frames)
    ok = sess.rec.trusted(sess.rec.start_frame + T, len(x))
    holes = [(a, n) for a, n in dropouts(y[: len(x)]) if ok[a : a + n].any()]
    assert holes == [], (holes[:5], sess.rec.skipped(sess.rec.start_frame + T, len(x))[:5])
    # the delay found on the recording is the reported one, at the start and at the end
    full = sess.rec.aligned(sess.rec.start_frame, len(x) + T + 2000)
    for a in (2 * RATE, len(x) - 5 * RATE):
        seg = x[a : a + 3 * RATE]
        assert _lag(full[a:], seg, T) == T, f"latency changed near {a / RATE:.0f} s"


@jack_only
def test_unknown_device_and_refused_rate(server, tmp_path):
    for args, expect in ((["--input", "no-such-device"], "no-such-device"), (["--samplerate", "48000"], "48000 Hz")):
        stats = tmp_path / "s.json"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamsep.cli",
                "live",
                "--output",
                "system",
                "--duration",
                "2",
                "--stats",
                str(stats),
                *(["--input", "system"] if args[0] != "--input" else []),
                *args,
            ],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        assert p.returncode == 2, p.stderr
        line = [ln for ln in p.stderr.splitlines() if "error" in ln]
        assert line and expect in line[-1], p.stderr
        assert json.loads(stats.read_text())["error"], "stats must carry the error"


@jack_only
def test_vanished_server_stops_cleanly_with_stats(tmp_path):
    srv = JackServer(RATE, 160).start()
    try:
        stats = tmp_path / "v.json"
        host = LiveProcess(srv, "--preset", "low-latency", stats=stats)
        import jack

        c = jack.Client("ssx_watch", servername=srv.name, no_start_server=True)
        host.wait_ports(c)
        c.close()
        # the ports exist from the stream's opening; the engine's warm-up comes before the stream
        # runs, which on a loaded 2-core VM has taken most of a second: give it two
        time.sleep(2.0)
        srv.stop()  # the server goes away under the running host (SIGTERM: JACK's registry stays clean)
        code = host.finish(timeout=60)
    finally:
        srv.stop()
    assert code == 1, host.err[-2000:]
    st = json.loads(stats.read_text())
    assert st["error"] and ("vanish" in st["error"] or "server" in st["error"]), st["error"]
    assert st["seconds"] > 0.5
    assert any(ln.startswith("streamsep live: error:") for ln in host.err.splitlines()), host.err[-2000:]


@jack_only
def test_list_devices_sees_jack(server):
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from streamsep.live import list_devices; print(json.dumps(list_devices()))",
        ],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    devs = json.loads(p.stdout.strip().splitlines()[-1])
    jack_devs = [d for d in devs if "JACK" in d["hostapi"]]
    assert jack_devs, devs
    d = jack_devs[0]
    assert set(d) >= {"index", "name", "max_input_channels", "max_output_channels", "default_samplerate"}
    assert d["default_samplerate"] == RATE and d["max_input_channels"] >= 1


# -- JACK routing: client name, ports that always exist, links --------------------------------------
def _links(client, port: str) -> set[str]:
    return {q.name for q in client.get_all_connections(port)}


def _wait_port(client, name: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    ok = wait_until(lambda: any(p.name == name for p in client.get_ports(name)) or proc.poll() is not None, timeout)
    assert ok and proc.poll() is None, (
        f"{name} did not appear (host exit {proc.poll()}): {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}"
    )


def _live(srv: JackServer, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamsep.cli", "live", "--preset", "low-latency", "--quiet", *args],
        cwd=str(Path(__file__).resolve().parents[1]),
        env=srv.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(2)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@jack_only
def test_jack_name_taken_ports_with_null_output_and_links(server):
    """--name: a second host with a name in use stops with one line (no silent 'name-01'); with
    --output null the output port still exists, unlinked; --connect-input replaces the input's
    links; --connect-output reaches every input port of a stereo client (mono in both ears)."""
    import jack

    # source and sink are separate clients: one client on both sides would make a cycle in the graph
    c = jack.Client("ssx_src", servername=server.name, no_start_server=True)
    src = c.outports.register("voice")
    k = jack.Client("ssx_sink", servername=server.name, no_start_server=True)
    sink = [k.inports.register(n) for n in ("left", "right")]
    # a JACK client without a process callback never runs its cycle, so a host it feeds would wait
    # for it forever: both test clients run one (silence out, nothing in)
    c.set_process_callback(lambda frames: src.get_array().fill(0.0))
    k.set_process_callback(lambda frames: None)
    c.activate()
    k.activate()
    first = _live(
        server,
        "--name",
        "ssx_host",
        "--input",
        "system",
        "--output",
        "null",
        "--connect-input",
        "ssx_src:voice",
        "--connect-output",
        "ssx_sink",
    )
    try:
        _wait_port(c, "ssx_host:out_0", first)
        assert wait_until(lambda: _links(c, "ssx_host:out_0") == {"ssx_sink:left", "ssx_sink:right"}, 10), _links(
            c, "ssx_host:out_0"
        )
        assert _links(c, "ssx_host:in_0") == {"ssx_src:voice"}  # not system:capture_1 any more
        assert {p.name for p in sink[0].connections} == {"ssx_host:out_0"} and src.connections
        second = _live(server, "--name", "ssx_host", "--input", "system", "--output", "null")
        second.wait(timeout=120)
        code, err = _stop(second)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and lines[-1].startswith("streamsep live: error: JACK client name 'ssx_host' is taken"), err
        assert not c.get_ports("ssx_host-01")
        time.sleep(1.0)
        assert first.poll() is None, _stop(first)
    finally:
        code, err = _stop(first)
        for cl in (c, k):
            cl.deactivate()
            cl.close()
    assert code == 0, err[-2000:]


@jack_only
def test_jack_stereo_output_device_gets_both_channels(server):
    """--output system (stereo): the mono voice goes to playback_1 and playback_2."""
    import jack

    c = jack.Client("ssx_watch2", servername=server.name, no_start_server=True)
    host = _live(server, "--input", "system", "--output", "system")
    try:
        _wait_port(c, "streamsep:out_1", host)
        assert wait_until(
            lambda: (
                _links(c, "streamsep:out_0") | _links(c, "streamsep:out_1")
                >= {"system:playback_1", "system:playback_2"}
            ),
            10,
        )
    finally:
        code, err = _stop(host)
        c.close()
    assert code == 0, err[-2000:]


# -- in-process host on a file, no playback device (no JACK needed) ------------------------------
@pytest.fixture()
def speech_file(tmp_path) -> tuple[Path, np.ndarray]:
    import soundfile as sf

    x = generated(4.0)
    p = tmp_path / "in.wav"
    sf.write(str(p), x, RATE, subtype="FLOAT")
    return p, x


def _played(host, seconds: float) -> np.ndarray:
    """The output timeline from device time 0 (the host keeps 30 s of played audio)."""
    n = host._played.written
    assert n <= host._played.capacity
    return host._played.tail(n)


def test_file_host_parity_params_and_stats(speech_file, tmp_path):
    from streamsep.live import LiveHost

    path, x = speech_file
    cfg = NSNET2_TWO_STEPS
    # no deadline control and a wide margin: the output must be exactly the engine's, whatever
    # else runs on this machine (deadline control is tested on JACK above)
    host = LiveHost(cfg, input_file=str(path), output_device="null", adapt=False, margin_ms=150)
    host.start()
    try:
        assert wait_until(lambda: host.stats()["seconds"] > 3.0, 30)
        st = host.stats()
        keys = {
            "xruns",
            "deadline_misses",
            "steps_in_use",
            "candidates_in_use",
            "rtf",
            "latency_ms",
            "input_peak_db",
            "output_peak_db",
            "input_rms_db",
            "output_rms_db",
            "ratios",
            "seconds",
            "running",
            "error",
            "model",
        }
        assert keys <= set(st) and st["running"] and st["model"] == "nsnet2"
        assert len(st["ratios"]) == 2 and st["input_peak_db"] > -40
        host.set_params(mix=0.0)  # live: fully dry after a ramp
        assert wait_until(lambda: host.stats()["seconds"] > 5.0, 30)
        xi, yo, rate = host.monitor(2.0)
        assert rate == RATE and len(xi) == len(yo) == 2 * RATE
        y = _played(host, 5.0)
    finally:
        host.stop()
    host.stop()  # idempotent
    st = host.stats()
    assert not st["running"] and st["error"] is None
    T = st["latency_samples"]
    xin = np.tile(x, 3)[: len(y)]
    # before the change: exactly the offline engine (file playback has no clock jitter to hide)
    ref = enhance_array(np.concatenate([np.zeros(4000, np.float32), xin]), RATE, cfg)[4000:]
    a = 3 * RATE // 2
    assert snr_db(ref[a - T : 3 * RATE - T], y[a : 3 * RATE]) > 60.0
    # after the change: the delay-aligned input, and no click on the way (bounded sample steps)
    assert np.allclose(y[-RATE:], xin[len(y) - RATE - T : len(y) - T], atol=1e-6)
    assert np.max(np.abs(np.diff(y))) < 1.5 * np.max(np.abs(np.diff(xin)))
    out = tmp_path / "stats.json"
    host.write_stats(out)
    saved = json.loads(out.read_text())
    assert saved["seconds"] == pytest.approx(st["seconds"]) and saved["xruns"] == 0


def test_set_config_swaps_engine_without_gap(speech_file):
    """A block-size change mid-stream: the old engine's output up to the splice, the new engine's
    after it (at its own, newly reported latency), a crossfade between, no gap and no click."""
    from streamsep.live import LiveHost

    path, x = speech_file
    cfg = NSNET2_TWO_STEPS
    new = replace(cfg, block=480)
    host = LiveHost(cfg, input_file=str(path), output_device="null", adapt=False, margin_ms=150)
    host.start()
    try:
        assert wait_until(lambda: host.stats()["seconds"] > 1.5, 30)
        lat0 = host.stats()["latency_samples"]
        host.set_config(new)
        assert wait_until(lambda: host.stats()["swaps"] == 1, 30)
        assert wait_until(lambda: host.stats()["seconds"] > 4.5, 30)
        st = host.stats()
        y = _played(host, 4.5)
    finally:
        host.stop()
    assert st["error"] is None and st["fallback_samples"] == 0, st
    lat1 = st["latency_samples"]
    assert lat1 == st["engine_latency_samples"] + st["margin_samples"] and lat1 > lat0
    splice = st["splice_samples"][0]
    xin = np.tile(x, 3)[: len(y)]
    z = np.zeros(4000, np.float32)
    ref0 = enhance_array(np.concatenate([z, xin]), RATE, cfg)[4000:]
    ref1 = enhance_array(np.concatenate([z, xin]), RATE, new)[4000:]
    a = RATE // 2
    assert snr_db(ref0[a - lat0 : splice - lat0], y[a:splice]) > 60.0  # old engine, exact
    b = splice + RATE // 2  # new engine, settled
    assert snr_db(ref1[b - lat1 : len(y) - lat1], y[b:]) > 20.0
    seg = y[splice - 800 : splice + 800]  # the splice itself
    assert np.max(np.abs(np.diff(seg))) < 1.5 * np.max(np.abs(np.diff(xin))) + 1e-3
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], (seg == 0).astype(np.int8), [0]]))))
    assert (runs.max() if len(runs) else 0) < 16


def test_missing_input_file_is_a_device_error(tmp_path):
    from streamsep.live import DeviceError, LiveHost

    host = LiveHost(EngineConfig(), input_file=str(tmp_path / "nope.wav"), output_device="null")
    with pytest.raises(DeviceError, match="nope.wav"):
        host.start()
    host.stop()


def test_worker_stall_is_told_from_load(speech_file):
    """A chunk whose worker is not running for 60 ms (here: it sleeps, as a descheduled thread
    would) is recorded as a stall with the wall time it lost, and the deadline misses it causes
    count as following a stall; compute does not count as lost time."""
    from streamsep.live import LiveHost

    path, _ = speech_file
    host = LiveHost(load_preset("low-latency"), input_file=str(path), output_device="null", adapt=False, margin_ms=20)
    host.start()
    try:
        assert wait_until(lambda: host.stats()["seconds"] > 1.0, 30)
        eng = host.engine
        before = host.stats()
        fired = []

        def stalled(x, dry=False):
            if not fired:
                fired.append(True)
                time.sleep(0.06)  # off the CPU for 60 ms
            return type(eng).process(eng, x, dry=dry)

        eng.process = stalled
        assert wait_until(lambda: host.stats()["seconds"] > before["seconds"] + 1.0, 30)
        st = host.stats()
    finally:
        host.stop()
    assert fired and st["error"] is None
    new = st["stall_times"][len(before["stall_times"]) :]
    assert any(lost >= 50.0 for _, lost in new), (new, before["stall_times"])
    caused = st["deadline_misses"] - before["deadline_misses"]
    assert caused >= 1, st["miss_times"]
    assert st["misses_after_stall"] - before["misses_after_stall"] == caused, (st["miss_times"], st["stall_times"])
