"""File faults: broken, odd and long input files, and output that must never be half-written.

* Broken inputs (empty, header only, corrupt header, garbage, truncated/corrupt FLAC and OGG,
  unsupported codecs and containers, NaN samples, a directory, a device file, a missing file):
  ``read_audio`` and ``FileStreamReader`` raise :class:`AudioFileError` with one line naming the
  file; ``streamsep process`` (offline and ``--stream``) exits 2 with one ``streamsep: error:`` line
  naming the file and writes nothing (an existing output file is left as it was).
* Documented behaviour: a WAV whose data chunk is cut short is read up to its last whole frame.
* Rates 8 / 11.025 / 16 / 22.05 / 44.1 / 48 / 96 kHz and sample formats from 8-bit to 64-bit float:
  correct values on reading; ``process`` keeps the rate and the length and enhances.
* Channels: every channel count is mixed to mono by averaging; the output is mono.
* Interrupted or failing runs (Ctrl-C, SIGKILL, a file-size limit standing in for a full disk):
  no output file, no temporary file, an existing output untouched.
* Long files: peak RSS of ``process --stream`` must not grow with the file's length.

Generated audio only (numpy speech-like signal + noise, written in the test directory).
"""

from __future__ import annotations

import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import generated_pair, si_sdr

from streamsep.audio_io import AudioFileError, FileStreamReader, read_audio
from streamsep.cli import main

RATE = 16000
REPO = Path(__file__).resolve().parents[1]


def run_cli(argv: list, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean), 2 s at 16 kHz, 5 dB SNR."""
    return generated_pair(2.0, 5.0)


@pytest.fixture(scope="module")
def good(tmp_path_factory, pair) -> dict[str, bytes]:
    """Bytes of valid WAV (PCM_16), FLAC and OGG files of the noisy clip."""
    d = tmp_path_factory.mktemp("good")
    out = {}
    for ext in ("wav", "flac", "ogg"):
        p = d / f"g.{ext}"
        sf.write(p, pair[0], RATE)
        out[ext] = p.read_bytes()
    return out


# -- broken inputs ----------------------------------------------------------------------------------
def _wav_field(b: bytes, offset: int, value: bytes) -> bytes:
    return b[:offset] + value + b[offset + len(value) :]


BROKEN = {
    # name: (file name, bytes from the good files, expected words in the message)
    "zero bytes": ("a.wav", lambda g: b"", "not a readable audio file"),
    "header only": ("a.wav", lambda g: g["wav"][:44], "empty audio"),
    "corrupt fmt chunk": ("a.wav", lambda g: _wav_field(g["wav"], 20, b"\xff\xff"), "not a readable"),
    "zero channels": ("a.wav", lambda g: _wav_field(g["wav"], 22, b"\x00\x00"), "not a readable"),
    "zero rate": ("a.wav", lambda g: _wav_field(g["wav"], 24, b"\x00\x00\x00\x00"), "not a readable"),
    "unsupported codec (WMA tag)": (
        "a.wav",
        lambda g: _wav_field(g["wav"], 20, struct.pack("<H", 0x0161)),
        "not a readable",
    ),
    "RIFF + garbage": (
        "a.wav",
        lambda g: b"RIFF" + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)),
        "not a readable",
    ),
    "text file": ("a.wav", lambda g: b"this is not audio\n" * 200, "not a readable"),
    "AAC in MP4 (unsupported)": (
        "a.m4a",
        lambda g: b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(4000),
        "not a readable",
    ),
    "truncated FLAC": ("a.flac", lambda g: g["flac"][: len(g["flac"]) // 2], "not a readable"),
    "FLAC with zeroed body": ("a.flac", lambda g: g["flac"][:200] + bytes(len(g["flac"]) - 200), "not a readable"),
    # libsndfile reports a cut Vorbis stream as malformed or as 0 frames, depending on where it ends
    "truncated OGG": ("a.ogg", lambda g: g["ogg"][: len(g["ogg"]) // 2], ("not a readable", "empty audio")),
}


def _make_broken(d: Path, case: str, good: dict) -> Path:
    if case == "missing file":
        return d / "missing.wav"
    if case == "directory":
        (d / "dir.wav").mkdir()
        return d / "dir.wav"
    if case == "NaN samples":
        x = np.zeros(RATE, np.float32)
        x[1234] = np.nan
        sf.write(d / "nan.wav", x, RATE, subtype="FLOAT")
        return d / "nan.wav"
    name, make, _ = BROKEN[case]
    p = d / name
    p.write_bytes(make(good))
    return p


NEEDLES = {
    **{k: v[2] for k, v in BROKEN.items()},
    "missing file": "not found",
    "directory": "directory",
    "NaN samples": "non-finite sample",
}
CASES = list(NEEDLES)


@pytest.mark.parametrize("case", CASES)
def test_broken_input_read_raises_one_line_naming_the_file(tmp_path, good, case):
    p = _make_broken(tmp_path, case, good)
    with pytest.raises(AudioFileError) as exc:
        read_audio(p)
    msg = str(exc.value)
    needles = NEEDLES[case] if isinstance(NEEDLES[case], tuple) else (NEEDLES[case],)
    assert "\n" not in msg and msg.startswith(str(p)) and any(n in msg for n in needles), msg
    with pytest.raises(AudioFileError) as exc:
        for _ in FileStreamReader(p, 4096):
            pass
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_device_file_is_not_audio():
    with pytest.raises(AudioFileError, match="/dev/null: not a readable audio file"):
        read_audio("/dev/null")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stream", [False, True], ids=["offline", "stream"])
def test_broken_input_cli_exit_2_and_no_output(tmp_path, capsys, good, case, stream):
    p = _make_broken(tmp_path, case, good)
    out = tmp_path / "out" / "o.wav"
    out.parent.mkdir()
    out.write_bytes(b"previous output")
    rc, _, err = run_cli(["process", p, out] + (["--stream"] if stream else []), capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("streamsep: error: "), err
    assert p.name in lines[0]
    assert sorted(q.name for q in out.parent.iterdir()) == ["o.wav"]
    assert out.read_bytes() == b"previous output"


def test_truncated_wav_data_reads_whole_frames_present(tmp_path, capsys, good, pair):
    """Documented: a WAV whose data chunk is cut short (header claims more) is read up to the last
    whole frame present, as libsndfile does; ``process`` writes output of that length."""
    b = good["wav"]
    p = tmp_path / "cut.wav"
    p.write_bytes(b[: 44 + 2 * 12345 + 1])  # 12345 frames and half a sample
    x, rate = read_audio(p)
    assert rate == RATE and len(x) == 12345
    np.testing.assert_allclose(x, pair[0][:12345], atol=1.0 / 2**15)
    rc, _, err = run_cli(["process", p, tmp_path / "o.wav"], capsys)
    assert rc == 0, err
    assert sf.info(str(tmp_path / "o.wav")).frames == 12345


def test_mp3_is_read(tmp_path):
    """libsndfile ≥ 1.1 reads MP3: accepted like any other supported container."""
    x = (0.4 * np.sin(2 * np.pi * 300 * np.arange(RATE) / RATE)).astype(np.float32)
    sf.write(tmp_path / "a.mp3", x, RATE, format="MP3")
    y, rate = read_audio(tmp_path / "a.mp3")
    assert rate == RATE and abs(len(y) - len(x)) < 2000 and np.isfinite(y).all()


# -- headers that lie about the length, samples that overflow (found by tests/test_fuzz.py) -----------
def _absurd_length(d: Path, ext: str) -> Path:
    """A tiny valid FLAC / MP3 whose header claims an absurd number of frames (2**36−1 in FLAC's
    STREAMINFO; 2**31−1 MPEG frames in the MP3's Xing header, about 1.2e12 samples)."""
    x = (0.3 * np.sin(np.arange(RATE) / 7)).astype(np.float32)
    p = d / f"absurd.{ext}"
    sf.write(p, x, RATE, **({"format": "MP3"} if ext == "mp3" else {}))
    b = bytearray(p.read_bytes())
    if ext == "flac":  # 'fLaC', block header, STREAMINFO: total samples = low 36 bits of bytes 18..25
        v = int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)
        b[18:26] = v.to_bytes(8, "big")
    else:
        k = b.find(b"Xing")
        assert k >= 0 and int.from_bytes(b[k + 4 : k + 8], "big") & 1, "encoder wrote no Xing frame count"
        b[k + 8 : k + 12] = (0x7FFFFFFF).to_bytes(4, "big")
    p.write_bytes(bytes(b))
    assert sf.info(str(p)).frames > 1e10
    return p


@pytest.mark.parametrize(
    "ext,how",
    [
        pytest.param("flac", "read"),
        pytest.param("mp3", "read"),
        pytest.param("flac", "stream"),
        pytest.param("mp3", "stream"),
    ],
)
def test_header_claiming_absurd_length(tmp_path, ext, how):
    """An error naming the file, or only the samples the file really holds; never a MemoryError, never
    an endless stream."""
    p = _absurd_length(tmp_path, ext)
    limit = 10_000 * p.stat().st_size
    try:
        if how == "read":
            x, _ = read_audio(p)
            assert len(x) <= limit
        else:
            total = 0
            for blk in FileStreamReader(p, 4096):
                total += len(blk)
                assert total <= limit, f"{total} samples from a {p.stat().st_size}-byte file and still going"
    except AudioFileError as exc:
        assert str(p) in str(exc) and "\n" not in str(exc)


def test_huge_finite_float_samples_do_not_become_inf(tmp_path):
    x = np.full((1000, 2), 3.0e38, np.float32)
    sf.write(tmp_path / "huge.wav", x, RATE, subtype="FLOAT")
    try:
        y, _ = read_audio(tmp_path / "huge.wav")
    except AudioFileError:
        return
    assert np.isfinite(y).all()


# -- rates and sample formats -------------------------------------------------------------------------
#: (container, subtype, quantisation step of the format)
FORMATS = [
    ("WAV", "PCM_U8", 1 / 2**7),
    ("FLAC", "PCM_S8", 1 / 2**7),
    ("WAV", "ULAW", 0.02),
    ("WAV", "ALAW", 0.02),
    ("WAV", "PCM_16", 1 / 2**15),
    ("FLAC", "PCM_24", 1 / 2**23),
    ("WAV", "PCM_32", 1 / 2**31),
    ("WAV", "FLOAT", 0.0),
    ("WAV", "DOUBLE", 0.0),
    ("AIFF", "PCM_16", 1 / 2**15),
    ("CAF", "FLOAT", 0.0),
]
EXT = {"WAV": "wav", "FLAC": "flac", "AIFF": "aiff", "CAF": "caf"}


@pytest.mark.parametrize("fmt,subtype,q", FORMATS, ids=[f"{f}-{s}" for f, s, _ in FORMATS])
def test_sample_formats_read_to_the_right_values(tmp_path, pair, fmt, subtype, q):
    x = pair[0][:8000]
    p = tmp_path / f"a.{EXT[fmt]}"
    sf.write(p, x, RATE, subtype=subtype, format=fmt)
    y, rate = read_audio(p)
    assert rate == RATE and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= q * max(1.0, np.max(np.abs(x)) / 0.25) + 1e-7


RATES = [
    (8000, "PCM_U8"),
    (11025, "ULAW"),
    (16000, "ALAW"),
    (22050, "PCM_24"),
    (44100, "PCM_32"),
    (48000, "FLOAT"),
    (96000, "DOUBLE"),
]


RATE_CASES = [
    pytest.param(r, s, st, id=f"{r}-{s}-{'stream' if st else 'offline'}") for r, s in RATES for st in (False, True)
]


@pytest.mark.parametrize("rate,subtype,stream", RATE_CASES)
def test_process_any_rate_and_format_keeps_rate_length_and_enhances(tmp_path, capsys, pair, rate, subtype, stream):
    noisy, clean = (v if rate == RATE else soxr.resample(v, RATE, rate).astype(np.float32) for v in pair)
    p = tmp_path / "in.wav"
    sf.write(p, noisy, rate, subtype=subtype)
    xin, _ = sf.read(p, dtype="float32")
    extra = ["--stream", "--block", str(max(64, rate // 100))] if stream else []
    out = tmp_path / "o.wav"
    rc, _, err = run_cli(["process", p, out, "--subtype", "FLOAT"] + extra, capsys)
    assert rc == 0, err
    y, r = sf.read(out, dtype="float32")
    assert r == rate and y.ndim == 1 and len(y) == len(noisy) and np.isfinite(y).all()
    # measured offline: +1.9 dB (8 kHz, 8-bit) to +4.0 dB (16 kHz A-law) with the generated speech
    assert si_sdr(y, clean) > si_sdr(xin, clean) + 1.0, (si_sdr(y, clean), si_sdr(xin, clean))


# -- channels -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_every_channel_is_kept_and_denoised_or_averaged_with_mono(tmp_path, capsys, pair, channels):
    """``process`` keeps the channels: each one is denoised on its own, so the same signal in every
    channel gives the mono result in every output channel.  ``--mono`` averages (not sums) them
    first and writes one channel: again exactly the mono result."""
    noisy = pair[0]
    p = tmp_path / "in.wav"
    sf.write(p, np.repeat(noisy[:, None], channels, axis=1), RATE, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", noisy, RATE, subtype="FLOAT")
    rc, _, err = run_cli(["process", tmp_path / "mono.wav", tmp_path / "m.wav", "--subtype", "FLOAT"], capsys)
    assert rc == 0, err
    m, _ = sf.read(tmp_path / "m.wav", dtype="float32")
    for extra, shape in (([], (len(noisy), channels)), (["--mono"], (len(noisy), 1))):
        rc, _, err = run_cli(["process", p, tmp_path / "o.wav", "--subtype", "FLOAT", *extra], capsys)
        assert rc == 0, err
        y, _ = sf.read(tmp_path / "o.wav", dtype="float32", always_2d=True)
        assert y.shape == shape
        for c in range(shape[1]):
            np.testing.assert_allclose(y[:, c], m, atol=1e-6)


def test_speech_in_one_of_six_channels_comes_out_at_one_sixth(tmp_path):
    """What averaging means for a multichannel file: one live channel of six reads at 1/6 (−15.6 dB)."""
    x = np.zeros((RATE, 6), np.float32)
    x[:, 2] = 0.6 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    sf.write(tmp_path / "six.wav", x, RATE, subtype="FLOAT")
    y, _ = read_audio(tmp_path / "six.wav")
    np.testing.assert_allclose(y, x[:, 2] / 6, atol=1e-7)


def test_opposite_phase_stereo_cancels(tmp_path):
    """Averaging a stereo file whose channels are in opposite phase gives silence (documented)."""
    s = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    sf.write(tmp_path / "anti.wav", np.stack([s, -s], 1), RATE, subtype="FLOAT")
    y, _ = read_audio(tmp_path / "anti.wav")
    assert np.max(np.abs(y)) < 1e-7


# -- interrupted and failing runs ------------------------------------------------------------------------
def _cli_proc(argv: list, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "streamsep.cli", *map(str, argv)],
        cwd=str(REPO),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _long_file(path: Path, seconds: float, rate: int) -> None:
    """A long noisy speech-like file written in blocks (the test itself stays small)."""
    x, _ = generated_pair(10.0, 5.0)
    if rate != RATE:
        x = soxr.resample(x, RATE, rate).astype(np.float32)
    n = int(seconds * rate)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < n:
            m = min(len(x), n - done)
            f.write(x[:m])
            done += m


@pytest.fixture(scope="module")
def long_input(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("long") / "long.wav"
    _long_file(p, 240.0, RATE)
    return p


@pytest.mark.parametrize(
    "sig,stream",
    [
        pytest.param(signal.SIGINT, False, id="INT-offline"),
        pytest.param(signal.SIGINT, True, id="INT-stream"),
        pytest.param(signal.SIGTERM, True, id="TERM-stream"),
        pytest.param(signal.SIGKILL, True, id="KILL-stream"),
        pytest.param(signal.SIGKILL, False, id="KILL-offline"),
    ],
)
def test_interrupted_process_leaves_no_output(tmp_path, long_input, sig, stream):
    """Interrupted mid-run: the destination is never created or changed, and no temporary file is
    left — after SIGKILL too (which nothing can handle) where the output is written to an anonymous
    ``O_TMPFILE`` file until its rename (Linux); elsewhere a hidden ``.o.wav.*.part`` may remain."""
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous output")
    # sixteen refinement steps: the run lasts well beyond the 4 s wait even on a fast, idle machine
    # (with four, a faster engine finished a 240 s file in about 4 s: a race)
    p = _cli_proc(["process", long_input, out, "--model", "nsnet2", "--steps", "16"] + (["--stream"] if stream else []))
    time.sleep(4.0)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and err.strip().splitlines()[-1] == "streamsep: interrupted", err
    assert out.read_bytes() == b"previous output"
    left = sorted(q.name for q in tmp_path.iterdir() if q.name != "o.wav")
    if sig == signal.SIGKILL and not hasattr(os, "O_TMPFILE"):
        assert all(n.startswith(".o.wav.") and n.endswith(".part") for n in left), left
    else:
        assert left == [], left


def _limit_file_size(limit: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


@pytest.mark.parametrize("stream", [False, True], ids=["offline", "stream"])
def test_write_failure_one_line_no_output_no_temp(tmp_path, pair, stream):
    """A write that fails half-way (file-size limit, as on a full disk): exit 2 with one line, the
    existing output untouched, no temporary file left behind."""
    p = tmp_path / "in.wav"
    sf.write(p, pair[0], RATE, subtype="FLOAT")
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous output")
    proc = _cli_proc(
        ["process", p, out, "--subtype", "FLOAT"] + (["--stream"] if stream else []), preexec_fn=_limit_file_size(16384)
    )
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2, err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["in.wav", "o.wav"]
    assert out.read_bytes() == b"previous output"
    assert len(lines) == 1 and lines[0].startswith("streamsep: error: ") and "o.wav" in lines[0], err[-1500:]


# -- long files -------------------------------------------------------------------------------------------
def _peak_rss_mb(argv: list) -> float:
    """Peak resident memory (MB) of a ``streamsep`` subprocess, from wait4's rusage."""
    p = _cli_proc(argv)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, err[-1500:]
    return ru.ru_maxrss / 1024.0


def test_process_stream_memory_does_not_grow_with_file_length(tmp_path):
    """``process --stream`` on 96 kHz files of 5 s and 30 s: peak RSS must not grow with the length
    (constant memory: streamed from disk).  Measured before disk streaming (peak RSS of the process):
    96 kHz 5 s → 289 MB, 40 s → 382 MB; 16 kHz 60 s → 374 MB, 240 s → 674 MB, 1 h →
    see docs/lab/2026-11-25-fault-tests.md."""
    rss = {}
    for seconds in (5, 30):
        p = tmp_path / f"in{seconds}.wav"
        _long_file(p, seconds, 96000)
        rss[seconds] = _peak_rss_mb(["process", p, tmp_path / f"o{seconds}.wav", "--stream", "--block", "9600"])
    assert rss[30] - rss[5] < 25.0, rss
