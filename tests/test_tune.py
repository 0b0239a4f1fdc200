"""``streamsep tune``: grid collapsing, Pareto front, budget recommendation, JSON/PNG/preset outputs,
exit status 2 on bad input; sweeps on generated audio and on short excerpts of real recordings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamsep import tune
from streamsep.cli import main
from streamsep.presets import load_preset
from streamsep.synth import coloured_noise, mix_at_snr, synthetic_speech

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RATE = 16000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the Tune panel tests need no display


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"../shared not present: {path}")
    return path


def non_dominated(rows: list[dict], i: int) -> bool:
    """Independent check: no row is at least as good in all three objectives and better in one."""
    a = rows[i]
    for j, b in enumerate(rows):
        if j == i:
            continue
        if (
            b["quality"] >= a["quality"]
            and b["rtf"] <= a["rtf"]
            and b["latency_ms"] <= a["latency_ms"]
            and (b["quality"] > a["quality"] or b["rtf"] < a["rtf"] or b["latency_ms"] < a["latency_ms"])
        ):
            return False
    return True


def check_result(res: dict, budget: float, with_reference: bool) -> None:
    rows = res["configs"]
    assert rows, "no configuration ran"
    for r in rows:
        for key in (
            "steps",
            "candidates",
            "policy",
            "block",
            "engine_block",
            "rtf",
            "rtf_p95",
            "cpu_rtf",
            "latency_ms",
            "dnsmos_ovrl",
            "quality",
        ):
            assert key in r, key
        assert r["rtf"] > 0 and r["latency_ms"] > 0
        assert 1.0 <= r["dnsmos_ovrl"] <= 5.0
        assert ("si_sdr" in r and "pesq" in r) == with_reference
        assert r["quality"] == (r["pesq"] if with_reference else r["dnsmos_ovrl"])
    assert res["quality_metric"] == ("pesq" if with_reference else "dnsmos_ovrl")
    pareto = res["pareto"]
    assert pareto and len(set(pareto)) == len(pareto)
    for i in pareto:
        assert non_dominated(rows, i)
    for i in set(range(len(rows))) - set(pareto):  # every other row is dominated by someone
        assert not non_dominated(rows, i)
    rec = res["recommended"]
    fits = [r for r in rows if r["rtf"] <= budget]
    if fits:
        assert rec is not None and rows[rec]["rtf"] <= budget
        assert rows[rec]["quality"] >= max(r["quality"] for r in fits) - tune.TIE_TOLERANCE
        assert rec in pareto
    else:
        assert rec is None


@pytest.fixture(scope="module")
def noisy_pair() -> tuple[np.ndarray, np.ndarray]:
    """2.5 s speech-like signal and its mix with coloured noise at 5 dB SNR (16 kHz)."""
    clean = synthetic_speech(2.5, RATE)
    return mix_at_snr(clean, coloured_noise(len(clean), RATE), 5.0), clean


@pytest.fixture(scope="module")
def wavs(tmp_path_factory, noisy_pair) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tune")
    noisy, clean = noisy_pair
    sf.write(d / "noisy.wav", noisy, RATE)
    sf.write(d / "clean.wav", clean, RATE)
    return d / "noisy.wav", d / "clean.wav"


# -- pure logic -----------------------------------------------------------------------------------
def test_grid_collapses_duplicate_and_invalid_combinations():
    pts = tune.grid([0, 1, 2], [1, 4], ["fixed", "heuristic", "proxy"], [160, 800])
    assert len(pts) == len(set(pts))
    per_block = [p for p in pts if p.block == 160]
    assert [p for p in per_block if p.steps == 0] == [tune.GridPoint(0, 1, "fixed", 160)]
    assert all(p.candidates == 1 for p in pts if p.policy in ("fixed", "heuristic"))
    assert {p.candidates for p in pts if p.policy == "proxy"} == {1, 4}
    assert len(per_block) == 1 + 2 * (1 + 1 + 2)  # K0 + per K: fixed, heuristic, proxy C1, proxy C4


def test_pareto_and_recommendation_on_known_rows():
    rows = [
        {"quality": 2.0, "rtf": 0.10, "latency_ms": 20.0},  # 0 front (cheapest)
        {"quality": 2.5, "rtf": 0.40, "latency_ms": 20.0},  # 1 front
        {"quality": 2.4, "rtf": 0.45, "latency_ms": 20.0},  # 2 dominated by 1
        {"quality": 2.505, "rtf": 0.30, "latency_ms": 60.0},  # 3 front (better q, lower rtf, more latency)
        {"quality": 3.0, "rtf": 0.90, "latency_ms": 60.0},  # 4 front, over budget
        {"quality": None, "rtf": 0.05, "latency_ms": 10.0},  # 5 no score: never on the front
    ]
    assert tune.pareto_front(rows) == [0, 1, 3, 4]
    # 1 and 3 tie within the tolerance: the lower latency wins
    assert tune.recommend(rows, 0.5) == 1
    assert tune.recommend(rows, 0.5, tolerance=0.0) == 3
    assert tune.recommend(rows, 1.0) == 4
    assert tune.recommend(rows, 0.01) is None


@pytest.mark.parametrize("text,what", [("1,x", "--steps"), ("", "--steps"), ("0,17", "--steps")])
def test_bad_int_lists_are_refused(text, what):
    with pytest.raises(tune.TuneError, match=what):
        tune.parse_int_list(text, what, 0, 16)


def test_preset_target_names_and_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert tune.preset_target("mine") == tmp_path / "streamsep" / "presets" / "mine.toml"
    assert tune.preset_target(str(tmp_path / "x.toml")) == tmp_path / "x.toml"
    with pytest.raises(tune.TuneError, match="--save-preset"):
        tune.preset_target("../evil")


# -- sweeps ---------------------------------------------------------------------------------------
def test_sweep_generated_audio_with_reference(noisy_pair, tmp_path):
    noisy, clean = noisy_pair
    calls = []
    res = tune.sweep(
        noisy,
        RATE,
        clean,
        model="nsnet2",
        steps=[0, 1],
        candidates=[1, 2],
        policies=["fixed", "proxy"],
        blocks=[160],
        budget_rtf=50.0,
        threads=1,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert [(r["steps"], r["candidates"], r["policy"]) for r in res["configs"]] == [
        (0, 1, "fixed"),
        (1, 1, "fixed"),
        (1, 1, "proxy"),
        (1, 2, "proxy"),
    ]
    check_result(res, 50.0, with_reference=True)
    assert res["recommended"] is not None  # budget 50 fits everything
    one_step = res["configs"][0]
    assert one_step["si_sdr"] > res["input"]["si_sdr"]  # NSNet2 removes the coloured noise
    assert one_step["latency_ms"] == pytest.approx(20.0)  # one 10 ms block of prefill + 10 ms of model
    fig = tune.plot(res, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) >= 2


def test_sweep_can_be_cancelled(noisy_pair):
    noisy, _ = noisy_pair
    with pytest.raises(tune.TuneCancelled):
        tune.sweep(
            noisy, RATE, model="spectral", steps=[0, 1], policies=["fixed"], blocks=[160], cancelled=lambda: True
        )


def test_cli_writes_json_plot_and_preset(wavs, tmp_path, capsys):
    noisy, clean = wavs
    out_json, out_png, out_toml = tmp_path / "t.json", tmp_path / "t.png", tmp_path / "p" / "mine.toml"
    rc = main(
        [
            "tune",
            str(noisy),
            "--reference",
            str(clean),
            "--model",
            "spectral",
            "--steps",
            "0,1",
            "--candidates",
            "1,3",
            "--policy",
            "heuristic,proxy",
            "--block",
            "320",
            "--budget-rtf",
            "50",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
            "--save-preset",
            str(out_toml),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "recommended" in text and "pesq" in text
    res = json.loads(out_json.read_text())
    check_result(res, 50.0, with_reference=True)
    assert len(res["configs"]) == 4 and {r["engine_block"] for r in res["configs"]} == {320}
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    cfg = load_preset(out_toml)
    row = res["configs"][res["recommended"]]
    assert (cfg.model, cfg.steps, cfg.candidates, cfg.policy, cfg.block) == (
        "spectral",
        row["steps"],
        row["candidates"],
        row["policy"],
        row["engine_block"],
    )


def test_cli_budget_too_small_recommends_nothing(wavs, tmp_path, capsys):
    noisy, _ = wavs
    out_json = tmp_path / "t.json"
    rc = main(
        [
            "tune",
            str(noisy),
            "--model",
            "spectral",
            "--steps",
            "0",
            "--policy",
            "fixed",
            "--block",
            "160",
            "--budget-rtf",
            "1e-9",
            "--json",
            str(out_json),
            "--save-preset",
            str(tmp_path / "x.toml"),
        ]
    )
    assert rc == 2
    assert "nothing saved" in capsys.readouterr().err
    res = json.loads(out_json.read_text())
    assert res["recommended"] is None and res["quality_metric"] == "dnsmos_ovrl"
    assert not (tmp_path / "x.toml").exists()


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--steps", "1,two"], "--steps"),
        (["--candidates", "0"], "--candidates"),
        (["--policy", "fixed,oracle-sisdr"], "--policy"),
        (["--block", "0"], "--block"),
        (["--budget-rtf", "0"], "--budget-rtf"),
        (["--model", "no-such-model"], "no-such-model"),
        (["--save-preset", "a/b"], "--save-preset"),
        (["--model", "spectral", "--model-path", "/nonexistent"], "--model-path"),
    ],
)
def test_cli_bad_options_exit_2(wavs, capsys, extra, needle):
    noisy, _ = wavs
    assert main(["tune", str(noisy), "--steps", "0", "--policy", "fixed", "--block", "160", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamsep: error:") and needle in err and len(err.strip().splitlines()) == 1


def test_cli_missing_files_exit_2(wavs, tmp_path, capsys):
    noisy, _ = wavs
    assert main(["tune", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    assert main(["tune", str(noisy), "--reference", str(tmp_path / "nope.wav")]) == 2
    assert "nope.wav" in capsys.readouterr().err


# -- real recordings --------------------------------------------------------------------------------
def test_sweep_on_real_pair_with_reference():
    lev = need(SHARED / "data" / "pairs" / "leventure")
    from streamsep.audio_io import read_audio

    noisy, _ = read_audio(lev / "noisy" / "lev_spk1_74a0b637_00002_1_fan_noise_level1_snr+0dB.wav", rate=RATE)
    clean, _ = read_audio(lev / "clean" / "lev_spk1_74a0b637.wav", rate=RATE)
    seg = slice(2 * RATE, 5 * RATE)  # 3 s with speech
    res = tune.sweep(
        noisy[seg],
        RATE,
        clean[seg],
        model="nsnet2",
        steps=[0, 1],
        candidates=[2],
        policies=["fixed", "proxy"],
        blocks=[160, 800],
        budget_rtf=50.0,
        threads=1,
    )
    check_result(res, 50.0, with_reference=True)
    assert len(res["configs"]) == 6
    k0 = [r for r in res["configs"] if r["steps"] == 0]
    assert sorted(r["latency_ms"] for r in k0) == pytest.approx([20.0, 60.0])
    for r in k0:  # fan noise at 0 dB: NSNet2 improves every measure
        assert r["si_sdr"] > res["input"]["si_sdr"] + 5.0
        assert r["pesq"] > res["input"]["pesq"] + 0.3
        assert r["dnsmos_ovrl"] > res["input"]["dnsmos_ovrl"]


def test_cli_on_real_noisy_only_clip(tmp_path, capsys):
    clip = need(SHARED / "data" / "noisy_only" / "dns1" / "ms_realrec_headset_cafe_spk2_3.wav")
    from streamsep.audio_io import read_audio

    x, rate = read_audio(clip)
    short = tmp_path / "cafe3s.wav"
    sf.write(short, x[: 3 * rate], rate)
    out_json = tmp_path / "t.json"
    assert (
        main(
            [
                "tune",
                str(short),
                "--model",
                "nsnet2",
                "--steps",
                "0,1",
                "--policy",
                "heuristic",
                "--block",
                "160",
                "--budget-rtf",
                "50",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    res = json.loads(out_json.read_text())
    check_result(res, 50.0, with_reference=False)
    assert res["configs"][0]["dnsmos_ovrl"] > res["input"]["dnsmos_ovrl"]


# -- the GUI's Tune panel ---------------------------------------------------------------------------
class _FakeHost:
    """Stands in for LiveHost: ``monitor(seconds)`` → (input, output, rate)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def monitor(self, seconds: float):
        n = int(seconds * RATE)
        return self.x[-n:], np.zeros(0, np.float32), RATE


@pytest.fixture
def panel(qtbot):
    pytest.importorskip("PyQt6")
    from gui.tune_panel import TunePanel

    host: list = [None]
    messages: list = []
    p = TunePanel(host=lambda: host[0], message=lambda text, level: messages.append((level, text)))
    qtbot.addWidget(p)
    p.steps_edit.setText("0,1")
    p.cands_edit.setText("1")
    p.policy_edit.setText("fixed")
    p.block_edit.setText("160")
    p.budget.setValue(10.0)
    p.model_box.setCurrentText("spectral")
    p.host_slot, p.messages = host, messages
    yield p
    p.wait(60)


def test_panel_sweeps_a_file_off_thread_and_saves_a_preset(panel, qtbot, wavs, tmp_path):
    noisy, clean = wavs
    panel.file_edit.setText(str(noisy))
    panel.ref_edit.setText(str(clean))
    with qtbot.waitSignal(panel.sweep_finished, timeout=60000) as blocker:
        assert panel.run()
        assert panel.busy and not panel.run_btn.isEnabled()  # returns at once; the worker runs the sweep
    res = blocker.args[0]
    check_result(res, 10.0, with_reference=True)
    assert panel.table.rowCount() == 2 and panel.progress.value() == panel.progress.maximum() == 2
    assert len(panel.figure.axes) >= 2 and "Recommended" in panel.status.text()
    path = panel.save_preset(str(tmp_path / "gui.toml"))
    assert path is not None and load_preset(path).model == "spectral"
    assert panel.save_plot(tmp_path / "gui.png") and (tmp_path / "gui.png").read_bytes()[:8] == PNG_MAGIC


def test_panel_live_input(panel, qtbot, noisy_pair):
    panel.live_radio.setChecked(True)
    assert not panel.run()  # no live host yet
    assert panel.messages[-1][0] == "error" and "no live host" in panel.messages[-1][1]
    panel.host_slot[0] = _FakeHost(noisy_pair[0][:RATE])  # 1 s: too short
    assert not panel.run() and "only 1.0 s" in panel.messages[-1][1]
    panel.host_slot[0] = _FakeHost(noisy_pair[0])
    with qtbot.waitSignal(panel.sweep_finished, timeout=60000) as blocker:
        assert panel.run()
    res = blocker.args[0]
    assert res["source"].startswith("live input") and res["quality_metric"] == "dnsmos_ovrl"
    check_result(res, 10.0, with_reference=False)


def test_panel_reports_bad_lists_without_crashing(panel, qtbot, wavs):
    panel.file_edit.setText(str(wavs[0]))
    panel.steps_edit.setText("1,x")
    with qtbot.waitSignal(panel._sig.failed, timeout=30000):
        assert panel.run()
    qtbot.waitUntil(lambda: not panel.busy, timeout=5000)
    assert panel.messages[-1][0] == "error" and "--steps" in panel.messages[-1][1]
    assert panel.run_btn.isEnabled()
