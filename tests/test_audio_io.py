"""Tests for streamsep.audio_io: file round trips, errors, atomic writes, block I/O, resampling."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamsep import audio_io
from streamsep.audio_io import (
    AtomicStreamWriter,
    AudioFileError,
    FileStreamReader,
    StreamingResampler,
    align,
    read_audio,
    resample,
    write_audio,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(rate)
    return (amp * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


# ------------------------------------------------------------------ round trips

QUANT = {"PCM_16": 1.0 / 2**15, "PCM_24": 1.0 / 2**23, "FLOAT": 0.0}


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_wav_round_trip(tmp_path, rate, subtype):
    x = _tone(rate)
    path = tmp_path / "a.wav"
    write_audio(path, x, rate, subtype=subtype)
    assert sf.info(str(path)).subtype == subtype
    y, r = read_audio(path)
    assert r == rate and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= QUANT[subtype] + 1e-9


def test_default_subtype_is_pcm16_and_clipping_only_for_integer(tmp_path):
    x = np.array([0.0, 1.5, -2.0, 0.25], np.float32)
    write_audio(tmp_path / "d.wav", x, 16000)
    assert sf.info(str(tmp_path / "d.wav")).subtype == "PCM_16"
    y, _ = read_audio(tmp_path / "d.wav")
    assert y.max() <= 1.0 and y.min() == -1.0 and y[1] > 0.999
    write_audio(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    z, _ = read_audio(tmp_path / "f.wav")
    np.testing.assert_array_equal(z, x)


@pytest.mark.parametrize("ext", [".flac", ".ogg"])
def test_flac_and_ogg(tmp_path, ext):
    x = _tone(16000, 1.0)
    write_audio(tmp_path / f"a{ext}", x, 16000)
    y, r = read_audio(tmp_path / f"a{ext}")
    assert r == 16000
    n = min(len(x), len(y))
    assert abs(len(y) - len(x)) < 2048
    if ext == ".flac":
        assert len(y) == len(x) and np.max(np.abs(y - x)) <= QUANT["PCM_16"]
    else:  # lossy: the waveform is still recognisable
        assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.9


def test_stereo_to_mono_averages_channels(tmp_path):
    a, b = _tone(16000, freq=300), _tone(16000, freq=700)
    write_audio(tmp_path / "s.wav", np.stack([a, b], axis=1), 16000, subtype="FLOAT")
    mono, _ = read_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(mono, (a + b) / 2, atol=1e-7)
    both, _ = read_audio(tmp_path / "s.wav", mono=False)
    assert both.shape == (len(a), 2)
    np.testing.assert_array_equal(both[:, 1], b)


def test_read_with_rate_resamples(tmp_path):
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    write_audio(tmp_path / "r.wav", x, rate, subtype="FLOAT")
    y, r = read_audio(tmp_path / "r.wav", rate=16000)
    assert r == 16000 and len(y) == 16000 and y.dtype == np.float32
    t16 = np.arange(16000) / 16000
    expect = 0.5 * np.sin(2 * np.pi * 1000 * t16)
    # away from the edges, HQ resampling of a 1 kHz tone is accurate to far better than 1e-3
    assert np.max(np.abs(y[200:-200] - expect[200:-200])) < 1e-3


def test_read_real_file_at_other_rate():
    clean = SHARED / "data" / "pairs" / "noizeus" / "clean" / "sp01.wav"
    if not clean.exists():
        pytest.skip(f"../shared not present: {clean}")
    x8, r8 = read_audio(clean)
    x16, r16 = read_audio(clean, rate=16000)
    assert (r8, r16) == (8000, 16000) and len(x16) == 2 * len(x8)
    back = resample(x16, 16000, 8000)
    # speech below 4 kHz survives the round trip nearly unchanged
    err = np.sum((back - x8) ** 2) / np.sum(x8**2)
    assert err < 1e-3


# ------------------------------------------------------------------ read errors


def _assert_one_line(err: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, msg


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileError) as err:
        read_audio(tmp_path / "x.wav")
    _assert_one_line(err, "x.wav", "file not found")


def test_empty_file(tmp_path):
    sf.write(str(tmp_path / "e.wav"), np.zeros(0, np.float32), 16000)
    assert sf.info(str(tmp_path / "e.wav")).frames == 0
    with pytest.raises(AudioFileError) as err:
        read_audio(tmp_path / "e.wav")
    _assert_one_line(err, "e.wav", "empty audio (0 samples)")
    with pytest.raises(AudioFileError):
        FileStreamReader(tmp_path / "e.wav", 256)


def test_random_bytes(tmp_path):
    (tmp_path / "c.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioFileError) as err:
        read_audio(tmp_path / "c.wav")
    _assert_one_line(err, "c.wav", "not a readable audio file", "Format not recognised")


def test_truncated_header(tmp_path):
    write_audio(tmp_path / "ok.wav", _tone(16000), 16000)
    (tmp_path / "t.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    with pytest.raises(AudioFileError) as err:
        read_audio(tmp_path / "t.wav")
    _assert_one_line(err, "t.wav", "not a readable audio file")


def test_directory_and_nonfinite(tmp_path):
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        read_audio(tmp_path)
    x = _tone(16000)
    x[100] = np.nan
    sf.write(str(tmp_path / "n.wav"), x, 16000, subtype="FLOAT")  # bypass our own check
    with pytest.raises(AudioFileError, match=r"n\.wav: non-finite sample .* frame 100"):
        read_audio(tmp_path / "n.wav")
    with pytest.raises(AudioFileError, match="frame 100"):
        list(FileStreamReader(tmp_path / "n.wav", 64))


# ------------------------------------------------------------------ atomic writes


def test_unknown_extension(tmp_path):
    with pytest.raises(AudioFileError, match=r"a\.xyz: unsupported extension"):
        write_audio(tmp_path / "a.xyz", _tone(16000), 16000)
    assert _listing(tmp_path) == []


def test_nan_write_leaves_nothing(tmp_path):
    x = _tone(16000)
    x[5] = np.nan
    with pytest.raises(AudioFileError, match="non-finite"):
        write_audio(tmp_path / "n.wav", x, 16000)
    assert _listing(tmp_path) == []


def test_injected_failure_keeps_existing_file(tmp_path, monkeypatch):
    good = tmp_path / "out.wav"
    write_audio(good, _tone(16000), 16000)
    before = good.read_bytes()

    def broken_write(file, data, *args, **kwargs):
        with open(file, "wb") as fh:  # write_audio writes to its temp file by name
            fh.write(b"RIFF partial garbage")  # something was written before the failure
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(audio_io.sf, "write", broken_write)
    with pytest.raises(AudioFileError, match="disk on fire"):
        write_audio(good, _tone(16000, freq=900), 16000)
    assert _listing(tmp_path) == ["out.wav"]
    assert good.read_bytes() == before

    with pytest.raises(AudioFileError, match="disk on fire"):
        write_audio(tmp_path / "new.wav", _tone(16000), 16000)
    assert _listing(tmp_path) == ["out.wav"]


def test_overwrite_is_a_replacement_with_normal_permissions(tmp_path):
    path = tmp_path / "o.wav"
    write_audio(path, _tone(16000), 16000)
    assert path.stat().st_mode & 0o777 == 0o666 & ~audio_io._umask()
    write_audio(path, np.zeros(100, np.float32), 8000)
    y, r = read_audio(path)
    assert r == 8000 and len(y) == 100
    assert _listing(tmp_path) == ["o.wav"]


def test_atomic_stream_writer(tmp_path):
    x = _tone(16000, 1.0)
    path = tmp_path / "s.wav"
    with AtomicStreamWriter(path, 16000, subtype="FLOAT") as w:
        for i in range(0, len(x), 1000):
            w.write(x[i : i + 1000])
            assert not path.exists()  # nothing at the destination until the end
    assert w.frames == len(x)
    y, _ = read_audio(path)
    np.testing.assert_array_equal(y, x)

    before = path.read_bytes()
    with pytest.raises(KeyError):
        with AtomicStreamWriter(path, 16000) as w:
            w.write(x[:500])
            raise KeyError("boom")
    assert path.read_bytes() == before and _listing(tmp_path) == ["s.wav"]

    bad = x.copy()
    bad[10] = np.inf
    with pytest.raises(AudioFileError, match="frame 1010"):
        with AtomicStreamWriter(tmp_path / "t.wav", 16000) as w:
            w.write(x[:1000])
            w.write(bad[:1000])
    assert _listing(tmp_path) == ["s.wav"]


# ------------------------------------------------------------------ streaming reads


def test_file_stream_reader_blocks(tmp_path):
    a, b = _tone(16000, 1.3, 300), _tone(16000, 1.3, 500)
    write_audio(tmp_path / "st.wav", np.stack([a, b], 1), 16000, subtype="FLOAT")
    reader = FileStreamReader(tmp_path / "st.wav", 4000)
    assert (reader.rate, reader.frames, reader.channels) == (16000, len(a), 2)
    blocks = list(reader)
    assert len(blocks) == len(reader) == 6
    assert all(len(bl) == 4000 for bl in blocks[:-1]) and len(blocks[-1]) == len(a) - 5 * 4000
    assert all(bl.dtype == np.float32 and bl.ndim == 1 for bl in blocks)
    np.testing.assert_allclose(np.concatenate(blocks), read_audio(tmp_path / "st.wav")[0], atol=1e-7)


def test_file_stream_reader_constant_memory(tmp_path):
    rate, seconds = 48000, 60
    path = tmp_path / "long.wav"
    with AtomicStreamWriter(path, rate) as w:  # write in blocks: the test itself stays small
        for i in range(seconds):
            w.write(_tone(rate, 1.0, 200 + i))
    file_bytes = rate * seconds * 4  # as float32 in memory
    tracemalloc.start()
    try:
        total = 0
        for block in FileStreamReader(path, 4800):
            total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == rate * seconds
    assert peak < file_bytes / 20, f"peak {peak} bytes while reading a {file_bytes}-byte signal"


# ------------------------------------------------------------------ resampling helpers


def test_resample_and_align():
    x = _tone(44100, 1.0)
    y = resample(x, 44100, 16000)
    assert y.dtype == np.float32 and len(y) == 16000
    st = resample(np.stack([x, -x], 1), 44100, 16000)
    assert st.shape == (16000, 2)
    np.testing.assert_allclose(st[:, 0], y, atol=1e-6)
    same = resample(x, 16000, 16000)
    assert same is not x and np.array_equal(same, x)
    with pytest.raises(ValueError, match="to_rate"):
        resample(x, 16000, 0)
    a, b = align(np.arange(10), np.arange(7))
    assert len(a) == len(b) == 7


# ------------------------------------------------------------------ streaming resampler

PAIRS = [(8000, 16000), (48000, 16000), (16000, 48000), (44100, 16000)]


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
def test_streaming_resampler_delay_matches_impulse(in_rate, out_rate):
    """The impulse comes out exactly ``p·ratio + delay`` samples into the fixed-rate stream."""
    rs = StreamingResampler(in_rate, out_rate)
    step = in_rate // np.gcd(in_rate, out_rate)
    p = step * (in_rate // 2 // step)  # about 0.5 s in, with p·out/in an integer
    n = 2 * in_rate
    x = np.zeros(n, np.float32)
    x[p] = 1.0
    rng = np.random.default_rng(in_rate + out_rate)
    outs, i = [], 0
    while i < n:  # irregular chunk sizes, as a device callback might deliver
        c = int(rng.integers(1, 1500))
        outs.append(rs.process_fixed(x[i : i + c]))
        i += c
    y = np.concatenate(outs)
    assert len(y) == n * out_rate // in_rate
    assert rs.underruns == 0
    expected = p * out_rate // in_rate + rs.delay
    assert int(np.argmax(np.abs(y))) == expected
    assert not y[: rs.delay].any()
    # and the delayed stream is exactly soxr's one-shot resampling
    ref = resample(x, in_rate, out_rate)
    np.testing.assert_allclose(y[rs.delay :], ref[: len(y) - rs.delay], atol=1e-6)


@pytest.mark.parametrize("in_rate,out_rate", [(8000, 16000), (44100, 16000)])
def test_streaming_resampler_delay_is_minimal(in_rate, out_rate):
    """Fed one sample at a time, soxr's shortfall reaches ``delay`` exactly: no smaller prefill works."""
    rs = StreamingResampler(in_rate, out_rate)
    one = np.zeros(1, np.float32)
    produced, worst = 0, 0
    for n in range(1, in_rate + 1):
        produced += len(rs.process(one))
        worst = max(worst, n * out_rate // in_rate - produced)
        assert abs(rs.backlog - (n * out_rate / in_rate - produced)) < 1.0
    assert worst == rs.delay > 0


def test_streaming_resampler_variable_output_and_flush():
    x = _tone(48000, 1.0)
    rs = StreamingResampler(48000, 16000)
    y = np.concatenate([rs.process(x[i : i + 480]) for i in range(0, len(x), 480)] + [rs.flush()])
    np.testing.assert_allclose(y, resample(x, 48000, 16000), atol=1e-6)
    with pytest.raises(RuntimeError, match="mixed"):
        rs.process_fixed(x[:480])
    with pytest.raises(ValueError, match="1-D"):
        StreamingResampler(16000, 8000).process(np.zeros((10, 2), np.float32))


def test_streaming_resampler_underrun_keeps_timing():
    """If soxr runs short (forced here by a too-small delay), output stays on the clock."""
    rs = StreamingResampler(8000, 16000)
    rs.delay = 100  # far below the real worst case
    x = _tone(8000, 1.0)
    y = np.concatenate([rs.process_fixed(x[i : i + 80]) for i in range(0, len(x), 80)])
    assert len(y) == 16000 and rs.underruns > 0
    ref = resample(x, 8000, 16000)
    # samples that did arrive in time sit exactly delay samples late
    ok = y != 0
    idx = np.nonzero(ok)[0]
    np.testing.assert_allclose(y[idx], ref[idx - 100], atol=1e-6)
