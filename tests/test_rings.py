"""Offline tests of the live host's building blocks: the SPSC sample rings (streamsep.rings) and the
deadline controller (streamsep.deadline).  No audio device needed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsep.deadline import DeadlineController, Level, ladder
from streamsep.rings import RingError, SampleRing


# -- rings ------------------------------------------------------------------------------------------
def test_write_read_wraps_and_preserves_order():
    r = SampleRing(10)
    x = np.arange(7, dtype=np.float32)
    assert r.write(x) == 7
    out = np.zeros(5, np.float32)
    assert r.read_into(out) == 5 and out.tolist() == [0, 1, 2, 3, 4]
    assert r.write(np.arange(7, 15, dtype=np.float32)) == 8  # wraps around the end
    out = np.zeros(12, np.float32)
    assert r.read_into(out) == 10
    assert out[:10].tolist() == list(range(5, 15))
    assert r.available() == 0


def test_write_refuses_to_overwrite_unread():
    r = SampleRing(8)
    assert r.write(np.ones(6, np.float32)) == 6
    assert r.write(np.ones(6, np.float32)) == 2
    assert r.free() == 0


def test_push_overwrites_and_tail_returns_latest():
    r = SampleRing(8)
    r.push(np.arange(5, dtype=np.float32))
    r.push(np.arange(5, 20, dtype=np.float32))  # longer than the ring
    assert r.written == 20
    assert r.tail(4).tolist() == [16, 17, 18, 19]
    assert r.tail(100).tolist() == list(range(12, 20))


def test_copy_range_history_and_bounds():
    r = SampleRing(16)
    r.push(np.arange(40, dtype=np.float32))
    out = np.zeros(4, np.float32)
    assert r.copy_range(30, out) and out.tolist() == [30, 31, 32, 33]
    assert not r.copy_range(20, out)  # overwritten already
    assert not r.copy_range(38, out)  # not yet written
    fresh = SampleRing(16)
    fresh.push(np.arange(1, 5, dtype=np.float32))
    assert fresh.copy_range(-2, out) and out.tolist() == [0, 0, 1, 2]  # before start = silence


def test_write_at_drops_samples_the_reader_skipped():
    r = SampleRing(32)
    r.written = 4  # prefill of 4 samples
    r.advance(6)  # reader ran ahead (fallback for 2 samples)
    late = r.write_at(4, np.arange(4, 12, dtype=np.float32))
    assert late == 2 and r.written == 12
    out = np.zeros(6, np.float32)
    assert r.read_into(out) == 6 and out.tolist() == [6, 7, 8, 9, 10, 11]
    with pytest.raises(RingError, match="write index"):
        r.write_at(5, np.zeros(2, np.float32))
    with pytest.raises(RingError, match="capacity"):
        SampleRing(0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=60), st.integers(8, 64))
def test_stream_through_ring_is_exact(ops, cap):
    """Any interleaving of writes and reads delivers exactly the written sequence."""
    r = SampleRing(cap)
    src = np.arange(5000, dtype=np.float32)
    got, w = [], 0
    for nw, nr in ops:
        w += r.write(src[w : w + nw])
        out = np.zeros(nr, np.float32)
        k = r.read_into(out)
        got.extend(out[:k].tolist())
    assert got == src[: len(got)].tolist()
    assert len(got) + r.available() == w


def test_concurrent_producer_consumer_threads():
    """One producer thread and one consumer thread, no locks: every sample arrives, in order."""
    r = SampleRing(257)
    total = 50_000
    src = np.arange(total, dtype=np.float32) % 65536
    got = np.zeros(total, np.float32)

    def produce():
        i = 0
        while i < total:
            i += r.write(src[i : i + 97])

    def consume():
        i = 0
        buf = np.zeros(61, np.float32)
        while i < total:
            k = r.read_into(buf[: min(61, total - i)])
            got[i : i + k] = buf[:k]
            i += k

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert np.array_equal(got, src)


# -- deadline controller ----------------------------------------------------------------------------
def test_ladder_drops_candidates_first_then_steps_then_dry():
    lv = ladder(2, 3)
    assert [(x.steps, x.candidates, x.dry) for x in lv] == [
        (2, 3, False),
        (2, 2, False),
        (2, 1, False),
        (1, 1, False),
        (0, 1, False),
        (0, 1, True),
    ]
    assert ladder(0, 4) == [Level(0, 1), Level(0, 1, True)]
    assert Level(2, 3).cost == 7.0


def _run(
    ctrl: DeadlineController, unit_cost_s: float, blocks: int, block_s: float = 0.01, slack_s: float = 0.02
) -> list[tuple[int | None, int | None]]:
    """Simulate ``blocks`` chunks where one model pass costs ``unit_cost_s`` per block."""
    caps = []
    for _ in range(blocks):
        lv = ctrl.level
        dt = 0.0005 if lv.dry else unit_cost_s * lv.cost
        slack = slack_s - max(0.0, dt - block_s)  # a chunk that takes longer than real time eats slack
        ctrl.update(dt, block_s, slack, dry=lv.dry)
        caps.append(ctrl.caps())
    return caps


def test_controller_reduces_until_load_fits():
    ctrl = DeadlineController(4, 3)  # 13 passes per block at full work
    _run(ctrl, unit_cost_s=0.0024, blocks=1500)  # 2.4 ms per pass on 10 ms blocks
    assert not ctrl.dry and ctrl.index > 0
    assert ctrl.load <= 0.9 * ctrl.high  # settled with headroom…
    up = ctrl.levels[ctrl.index - 1]
    assert ctrl.unit_load * up.cost > ctrl.low  # …and the level above would not fit
    assert ctrl.changes <= 2  # it jumped there, not rung by rung


def test_controller_goes_dry_when_even_one_pass_is_too_slow():
    ctrl = DeadlineController(2, 1)
    _run(ctrl, unit_cost_s=0.012, blocks=800)  # one pass > block duration
    assert ctrl.dry
    assert ctrl.caps() == (0, 1)


def test_controller_climbs_back_with_hysteresis():
    ctrl = DeadlineController(2, 2)
    _run(ctrl, unit_cost_s=0.005, blocks=600)  # overloaded: reduced
    reduced = ctrl.index
    assert reduced > 0
    _run(ctrl, unit_cost_s=0.0005, blocks=150)  # 1.5 s of light load: not yet (climb_s = 2 s)
    assert ctrl.index == reduced
    _run(ctrl, unit_cost_s=0.0005, blocks=3000)  # 30 s of light load: back to full work
    assert ctrl.index == 0 and ctrl.caps() == (None, None)


def test_controller_does_not_oscillate_at_the_edge():
    """A level that is just over budget is retried ever more rarely (doubling climb wait)."""
    ctrl = DeadlineController(1, 1, climb_s=1.0)
    changes = []
    for i in range(6000):  # 60 s of 10 ms blocks
        lv = ctrl.level
        # one pass: 2 ms (predicts 40 % for two passes, under 'low'), but two passes really
        # take 8.5 ms (85 %, over 'high'): the controller is lured up and must come down again
        dt = 0.0005 if lv.dry else (0.0085 if lv.cost == 2.0 else 0.002)
        if ctrl.update(dt, 0.01, 0.02, dry=lv.dry):
            changes.append((i / 100, ctrl.index))
    climbs = [t for t, idx in changes if idx == 0]
    assert 3 <= len(climbs) <= 7, changes  # without back-off: ~25 climbs in 60 s
    gaps = np.diff(climbs)
    assert np.all(gaps[1:] >= gaps[:-1] * 1.5), changes  # waits grow


def test_urgent_slack_steps_down_and_catch_up_uses_dry():
    ctrl = DeadlineController(3, 1, margin_s=0.005)
    assert not ctrl.should_catch_up(0.02, 0.01)
    assert ctrl.update(0.001, 0.01, slack_s=-0.001)  # a miss: one level down at once
    assert ctrl.index == 1
    assert not ctrl.update(0.001, 0.01, slack_s=-0.001)  # cooldown: not again immediately
    assert ctrl.should_catch_up(0.001, 0.01)  # too little slack for one block: go dry


def test_reconfigure_keeps_caps():
    ctrl = DeadlineController(4, 4)
    for _ in range(6):
        ctrl._step_down()
    cur = ctrl.level
    ctrl.reconfigure(2, 2)
    assert ctrl.level.steps <= cur.steps
    ctrl2 = DeadlineController(4, 4)
    ctrl2.reconfigure(1, 1)
    assert ctrl2.index == 0 and ctrl2.levels[0] == Level(1, 1)


def test_catch_up_chunks_push_the_level_down():
    """Chunks that had to skip the model (dry catch-up) at a model level count as overload."""
    ctrl = DeadlineController(3, 2)
    ctrl.update(0.009, 0.01, 0.02)  # one heavy chunk: expected compute is high
    for _ in range(200):  # 2 s of catching up on the dry path
        dry = ctrl.should_catch_up(0.005, 0.01)
        ctrl.update(0.0005 if dry else 0.009 * ctrl.level.cost / 7, 0.01, 0.02, dry=dry)
    assert ctrl.index > 0 and ctrl.changes >= 1


# -- the compiled audio callback (GIL-free) ---------------------------------------------------------
from streamsep import rings as R  # noqa: E402


def _host(
    latency: int = 5, out_ch: int = 1, mode: int = R.MODE_DUPLEX, file: np.ndarray | None = None, loop: bool = True
):
    """A header with input/output/played rings attached, as the live host sets it up."""
    hdr = R.new_header()
    rin = R.SampleRing(1024, hdr[R.IN_W : R.IN_W + 2])
    rout = R.SampleRing(1024, hdr[R.OUT_W : R.OUT_W + 2])
    play = R.SampleRing(4096, hdr[R.PLAY_W : R.PLAY_W + 2])
    for slot, cap, ring in ((R.IN_BUF, R.IN_CAP, rin), (R.OUT_BUF, R.OUT_CAP, rout), (R.PLAY_BUF, R.PLAY_CAP, play)):
        R.attach(hdr, slot, cap, ring.buf)
    hdr[R.LATENCY], hdr[R.OUT_CH], hdr[R.IN_CH], hdr[R.MODE], hdr[R.LOOP] = latency, out_ch, 1, mode, int(loop)
    if file is not None:
        R.attach(hdr, R.FILE_BUF, R.FILE_LEN, file)
    return hdr, rin, rout, play, [file]


def test_callback_plays_worker_output_and_falls_back_to_delayed_dry():
    hdr, rin, rout, play, _ = _host(latency=5)
    rout.written = 3  # prefill: 3 samples of silence
    x = np.arange(1, 9, dtype=np.float32)
    out = np.zeros(8, np.float32)
    R.audio_callback_core(hdr, x, out, 8, 0)
    # 3 prefilled samples, then the worker had nothing: input delayed by the latency (5), never zeros
    assert out.tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
    assert hdr[R.FALLBACK_SAMPLES] == 5 and hdr[R.FALLBACK_CALLBACKS] == 1
    assert rin.written == 8 and rout.read == 8  # the timeline moved on regardless
    late = rout.write_at(3, np.full(6, 9, np.float32))  # the worker, late: 5 of 6 samples were due
    assert late == 5
    R.audio_callback_core(hdr, x, out, 8, 0)
    assert out[0] == 9 and out[1:].tolist() == [5, 6, 7, 8, 1, 2, 3]  # output o = input o − 5
    assert play.tail(16).tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 9, 5, 6, 7, 8, 1, 2, 3]


def test_callback_counts_xruns_and_fills_every_output_channel():
    hdr, rin, rout, play, _ = _host(latency=1, out_ch=2)
    rout.write_at(0, np.array([0.5, -0.5, 0.25, 1.0], np.float32))
    out = np.zeros(8, np.float32)
    R.audio_callback_core(hdr, np.zeros(4, np.float32), out, 4, 0x2 | 0x4)  # input overflow + output underflow
    assert out.tolist() == [0.5, 0.5, -0.5, -0.5, 0.25, 0.25, 1.0, 1.0]
    R.audio_callback_core(hdr, np.zeros(4, np.float32), out, 4, 0x10)  # priming output: not an xrun
    assert (hdr[R.XRUNS], hdr[R.IN_OVERFLOWS], hdr[R.OUT_UNDERFLOWS]) == (1, 1, 1)
    assert hdr[R.CALLBACKS] == 2 and hdr[R.MAX_FRAMES] == 4


def test_callback_file_mode_loops_or_ends_in_silence():
    f = np.arange(1, 6, dtype=np.float32)
    hdr, rin, *_ = _host(mode=R.MODE_FILE, file=f, loop=True)
    out = np.zeros(12, np.float32)
    R.audio_callback_core(hdr, out, out, 12, 0)
    assert rin.tail(12).tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2]
    hdr, rin, *_ = _host(mode=R.MODE_FILE, file=f, loop=False)
    R.audio_callback_core(hdr, out, out, 8, 0)
    assert rin.tail(8).tolist() == [1, 2, 3, 4, 5, 0, 0, 0] and hdr[R.FILE_DONE] == 1


def test_clock_runs_callback_in_real_time_without_the_gil():
    import time

    f = np.ones(100, np.float32)
    hdr, rin, *_ = _host(mode=R.MODE_FILE, file=f)
    scratch = np.zeros(1 << 12, np.float32)
    R.run_clock.compile("(int64[::1], float32[::1], float32[::1], int64, int64)")
    t = threading.Thread(target=R.run_clock, args=(hdr, scratch, scratch, 160, 16000))
    t0 = time.perf_counter()
    t.start()
    busy = 0
    while time.perf_counter() - t0 < 0.5:  # this thread keeps the GIL busy meanwhile
        busy += 1
    hdr[R.STOP] = 1
    t.join(timeout=5)
    elapsed = time.perf_counter() - t0
    periods = hdr[R.CALLBACKS]
    assert abs(periods - elapsed * 100) <= 5, (periods, elapsed)  # 100 periods of 10 ms per second
    assert busy > 0
