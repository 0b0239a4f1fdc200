"""File mode (``streamsep process`` → :func:`streamsep.enhance.enhance_file`): the same samples with and
without ``--stream`` for the engine policies, what is kept of the input (channels, rate, subtype,
level), writing over the input, and every argument checked before any model loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from cliutil import run
from conftest import shared

from streamsep.cli import main

NOIZEUS = ("data", "pairs", "noizeus", "noisy")


@pytest.fixture(scope="module")
def noizeus_file() -> Path:
    """A real NOIZEUS recording: 8 kHz PCM_16 mono, 2.8 s (resampled to the model's 16 kHz and back)."""
    return shared(*NOIZEUS, "sp01_airport_sn5.wav")


@pytest.fixture(scope="module")
def stereo_441(tmp_path_factory) -> Path:
    """2.6 s of a real stereo recording (different channels), resampled to 44.1 kHz, stored as PCM_24."""
    src = shared("data", "noise", "freesound_2530_stereo.wav")
    x, rate = sf.read(src, dtype="float32", frames=3 * 48000)
    speech, _ = sf.read(shared(*NOIZEUS, "sp02_car_sn10.wav"), dtype="float32")
    speech = soxr.resample(speech, 8000, rate).astype(np.float32)[: len(x)]
    x = 0.5 * x[: len(speech)] + np.stack([speech, 0.5 * speech], axis=1)
    y = soxr.resample(x, rate, 44100).astype(np.float32)
    p = tmp_path_factory.mktemp("stereo") / "stereo.wav"
    sf.write(p, y, 44100, subtype="PCM_24")
    return p


# ------------------------------------------------------------------------------------------------
# one path per job: process and process --stream
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["fixed", "heuristic", "proxy"])
def test_process_and_stream_give_the_same_samples(noizeus_file, tmp_path, capsys, policy):
    """The same flags give the same samples (<= 1e-5) whole-file and streamed in odd host blocks,
    on a real 8 kHz file (so both resample to the model rate and back)."""
    flags = ["--steps", 2, "--policy", policy, "--subtype", "FLOAT", "--threads", 1]
    if policy != "fixed":
        flags += ["--candidates", 3]
    outs = {}
    for name, extra in [("offline", []), ("stream", ["--stream", "--block", 333])]:
        rc, _, err = run(["process", noizeus_file, tmp_path / f"{name}.wav", *flags, *extra], capsys)
        assert rc == 0, err
        outs[name], rate = sf.read(tmp_path / f"{name}.wav", dtype="float32")
        assert rate == 8000 and len(outs[name]) == sf.info(noizeus_file).frames
    assert np.max(np.abs(outs["offline"] - outs["stream"])) <= 1e-5
    x, _ = sf.read(noizeus_file, dtype="float32")
    assert np.max(np.abs(outs["offline"] - x)) > 0.01  # it did denoise


@pytest.mark.parametrize("model", ["nsnet2", "dfn3"])
def test_blend_frame_agrees_and_blend_time_stays_available(model, noizeus_file, tmp_path, capsys):
    """``--blend frame`` (the search refiner mixing STFT frames) agrees with the default engine path;
    ``--blend time`` (waveforms, the published procedure) is still there on request, and differs.
    NSNet2's steps add no latency; dfn3's exact chain delays each step by its 2-frame lookahead and
    must still give the whole-file frame blend's samples."""
    outs = {}
    for name, extra in [("default", []), ("frame", ["--blend", "frame"]), ("time", ["--blend", "time"])]:
        rc, _, err = run(
            [
                "process",
                noizeus_file,
                tmp_path / f"{name}.wav",
                "--model",
                model,
                "--steps",
                2,
                "--subtype",
                "FLOAT",
                "--threads",
                1,
                *extra,
            ],
            capsys,
        )
        assert rc == 0, err
        outs[name], _ = sf.read(tmp_path / f"{name}.wav", dtype="float32")
    assert np.max(np.abs(outs["default"] - outs["frame"])) <= 1e-5
    assert np.max(np.abs(outs["default"] - outs["time"])) > 1e-3


def test_blend_and_scope_have_help(capsys):
    with pytest.raises(SystemExit):
        main(["process", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--blend {time,frame} run the offline search refiner" in text
    assert "--scope {utterance,block} search policies" in text


# ------------------------------------------------------------------------------------------------
# what is kept
# ------------------------------------------------------------------------------------------------
def test_stereo_24bit_441_keeps_channels_rate_and_subtype(stereo_441, tmp_path, capsys):
    """Stereo 44.1 kHz PCM_24 in → stereo 44.1 kHz PCM_24 out, each channel denoised on its own
    (equal to processing that channel as a mono file); ``--mono`` averages first, said out loud."""
    out = tmp_path / "o.wav"
    rc, _, err = run(["process", stereo_441, out, "--threads", 1], capsys)
    assert rc == 0, err
    info, ininfo = sf.info(out), sf.info(stereo_441)
    assert (info.channels, info.samplerate, info.subtype, info.frames) == (2, 44100, "PCM_24", ininfo.frames)
    y, _ = sf.read(out, dtype="float32")
    x, _ = sf.read(stereo_441, dtype="float32")
    for c in range(2):
        sf.write(tmp_path / f"in{c}.wav", x[:, c], 44100, subtype="PCM_24")
        rc, _, err = run(["process", tmp_path / f"in{c}.wav", tmp_path / f"out{c}.wav", "--threads", 1], capsys)
        assert rc == 0, err
        yc, _ = sf.read(tmp_path / f"out{c}.wav", dtype="float32")
        np.testing.assert_array_equal(y[:, c], yc)
    assert np.max(np.abs(y[:, 0] - y[:, 1])) > 0.01  # two different channels stay different
    rc, _, err = run(["process", stereo_441, tmp_path / "m.wav", "--mono", "--threads", 1], capsys)
    assert rc == 0, err
    assert sf.info(tmp_path / "m.wav").channels == 1


def test_rate_and_subtype_overrides(stereo_441, tmp_path, capsys):
    out = tmp_path / "o.flac"
    rc, _, err = run(["process", stereo_441, out, "--rate", 16000, "--subtype", "PCM_16", "--threads", 1], capsys)
    assert rc == 0, err
    info = sf.info(out)
    assert (info.format, info.channels, info.samplerate, info.subtype) == ("FLAC", 2, 16000, "PCM_16")
    assert info.frames == round(sf.info(stereo_441).frames * 16000 / 44100)


@pytest.fixture
def hot_float(noizeus_file, tmp_path) -> Path:
    """A FLOAT file peaking at +8 dBFS (a real recording, amplified)."""
    x, _ = sf.read(noizeus_file, dtype="float32")
    x = x * (2.5 / np.max(np.abs(x)))
    p = tmp_path / "hot.wav"
    sf.write(p, x, 8000, subtype="FLOAT")
    return p


def test_float_above_full_scale_stays_float_and_unclipped(hot_float, tmp_path, capsys):
    # NSNet2 passes a loud voice through at its level (DeepFilterNet3 would attenuate this clip below 0 dBFS)
    rc, _, err = run(["process", hot_float, tmp_path / "o.wav", "--model", "nsnet2", "--threads", 1], capsys)
    assert rc == 0, err
    assert sf.info(tmp_path / "o.wav").subtype == "FLOAT"
    y, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    assert np.max(np.abs(y)) > 1.2 and "warning" not in err


def test_integer_output_that_would_clip_is_limited_or_clipped_with_a_warning(hot_float, tmp_path, capsys):
    rc, _, err = run(["process", hot_float, tmp_path / "f.wav", "--model", "nsnet2", "--threads", 1], capsys)
    assert rc == 0, err
    ref, _ = sf.read(tmp_path / "f.wav", dtype="float32")
    rep = tmp_path / "r.json"
    rc, _, err = run(
        [
            "process",
            hot_float,
            tmp_path / "l.wav",
            "--model",
            "nsnet2",
            "--subtype",
            "PCM_16",
            "--json",
            rep,
            "--threads",
            1,
        ],
        capsys,
    )
    assert rc == 0, err
    assert "streamsep: warning:" in err and "scaled by" in err
    r = json.loads(rep.read_text())
    y, _ = sf.read(tmp_path / "l.wav", dtype="float32")
    gain = 10 ** (r["gain_db"] / 20)
    assert r["gain_db"] < -1.0 and np.max(np.abs(y)) <= 10 ** (-0.1 / 20) + 1e-4
    np.testing.assert_allclose(y, ref * gain, atol=2 / 32768)  # the whole file scaled, nothing clipped
    rc, _, err = run(
        [
            "process",
            hot_float,
            tmp_path / "c.wav",
            "--model",
            "nsnet2",
            "--subtype",
            "PCM_16",
            "--clip",
            "clip",
            "--json",
            rep,
            "--threads",
            1,
        ],
        capsys,
    )
    assert rc == 0, err
    assert "samples clipped" in err and json.loads(rep.read_text())["clipped_samples"] > 0
    # the same limiting when streamed (two passes through a hidden float file, none left behind)
    rc, _, err = run(
        [
            "process",
            hot_float,
            tmp_path / "s.wav",
            "--model",
            "nsnet2",
            "--subtype",
            "PCM_16",
            "--stream",
            "--threads",
            1,
        ],
        capsys,
    )
    assert rc == 0, err
    ys, _ = sf.read(tmp_path / "s.wav", dtype="float32")
    np.testing.assert_allclose(ys, y, atol=2 / 32768)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------------
# writing over the input
# ------------------------------------------------------------------------------------------------
def test_output_equal_to_input_refused_unless_in_place(noizeus_file, tmp_path, capsys):
    p = tmp_path / "a.wav"
    shutil.copy(noizeus_file, p)
    before = p.read_bytes()
    for same in (p, tmp_path / "." / "a.wav"):
        rc, _, err = run(["process", p, same], capsys)
        assert rc == 2 and "--in-place" in err and len(err.strip().splitlines()) == 1
        assert p.read_bytes() == before
    rc, _, err = run(["process", p, p, "--in-place", "--threads", 1], capsys)
    assert rc == 0, err
    assert p.read_bytes() != before and sf.info(p).frames == sf.info(noizeus_file).frames
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.wav"]  # atomic: no temporary left


# ------------------------------------------------------------------------------------------------
# checks before work
# ------------------------------------------------------------------------------------------------
CHECKS = [
    ("unwritable extension", ["{out_dir}/o.xyz"], "unsupported extension"),
    ("missing folder", ["{out_dir}/missing/o.wav"], "does not exist"),
    ("json folder missing", ["{out_dir}/o.wav", "--json", "{out_dir}/missing/r.json"], "does not exist"),
    ("si_sdr needs reference", ["{out_dir}/o.wav", "--metrics", "si_sdr"], "reference"),
    ("unknown metric", ["{out_dir}/o.wav", "--metrics", "loudness"], "loudness"),
    ("bad subtype", ["{out_dir}/o.flac", "--subtype", "FLOAT"], "FLOAT"),
    ("stream with an oracle policy", ["{out_dir}/o.wav", "--stream", "--policy", "dnsmos"], "stream"),
    ("blend with heuristic", ["{out_dir}/o.wav", "--blend", "time", "--policy", "heuristic"], "blend"),
    ("output is a folder", ["{out_dir}"], "directory"),
]


@pytest.mark.parametrize("case,argv,needle", CHECKS, ids=[c[0] for c in CHECKS])
def test_every_check_happens_before_the_model_loads(noizeus_file, tmp_path, capsys, monkeypatch, case, argv, needle):
    from streamsep import enhance

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(enhance, "load_separator", no_model)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, _, err = run(["process", noizeus_file, *[a.format(out_dir=out_dir) for a in argv]], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamsep: error: ") and needle in lines[0], err
    assert list(out_dir.iterdir()) == []


def test_mp3_output_refused_up_front_where_libsndfile_cannot_write_it(noizeus_file, tmp_path, capsys, monkeypatch):
    """.mp3 is written where this libsndfile can (MPEG layer III); where it cannot, refused first."""
    import streamsep.audio_io as aio

    real = aio.sf.check_format
    monkeypatch.setattr(aio.sf, "check_format", lambda fmt, sub=None, *a: fmt != "MP3" and real(fmt, sub, *a))
    rc, _, err = run(["process", noizeus_file, tmp_path / "o.mp3"], capsys)
    assert rc == 2 and "unsupported extension '.mp3'" in err
    assert list(tmp_path.iterdir()) == []


def test_enhance_file_api(noizeus_file, tmp_path):
    """The library call behind process/batch/GUI: typed options in, a typed result out."""
    from streamsep.engine import EngineConfig
    from streamsep.enhance import FileOptions, enhance_file

    res = enhance_file(noizeus_file, tmp_path / "o.flac", EngineConfig(steps=1), FileOptions(dnsmos=True))
    # the default model (DeepFilterNet3, 48 kHz) on an 8 kHz file: resampled there and back
    assert (res.model, res.steps, res.policy, res.rate, res.model_rate, res.channels) == (
        "dfn3",
        1,
        "fixed",
        8000,
        48000,
        1,
    )
    assert res.subtype == "PCM_16" and res.seconds == pytest.approx(2.816, abs=1e-3)
    assert 0 < res.rtf < 5 and res.per_step == []
    assert 1.0 <= res.dnsmos_before <= 5.0 and res.dnsmos_after > res.dnsmos_before  # measured here: 1.6 -> 2.4
    assert sf.info(tmp_path / "o.flac").frames == sf.info(noizeus_file).frames
