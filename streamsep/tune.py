"""``streamsep tune``: sweep steps × candidates × policy × host block, measure load, latency and
quality of each configuration on one recording, mark the Pareto front and recommend one.

Every configuration streams the whole file through :class:`~streamsep.engine.Engine` in host blocks,
exactly as the live host does (the file is resampled to the model rate first; host blocks are in
samples at the model rate, as in ``streamsep bench``).  Per configuration:

* ``rtf`` — wall-clock compute seconds / audio seconds over the whole file (one fresh engine, after
  a warm-up on a throw-away engine of the same configuration); ``rtf_p95`` — 95th percentile of the
  per-host-block ratio, i.e. how close single blocks come to their deadline; ``cpu_rtf`` — process
  CPU seconds / audio seconds (on a CPU shared with other jobs, ``rtf`` grows, ``cpu_rtf`` much less);
* ``latency_ms`` — the engine's reported constant latency (output prefill + separator latency);
* quality of the latency-removed output: ``si_sdr`` (dB) and ``pesq`` (wide-band MOS-LQO) when a
  reference is given, ``dnsmos_ovrl`` / ``dnsmos_sig`` / ``dnsmos_bak`` (MOS) always.

The primary quality score ``quality`` is PESQ with a reference, DNSMOS OVRL without one.  Pareto:
maximise ``quality``, minimise ``rtf`` and ``latency_ms``.  Recommendation: among configurations with
``rtf ≤ budget_rtf``, those within ``TIE_TOLERANCE`` of the best quality are ties; of these the
lowest latency wins, then the lowest rtf (so the recommended row is always Pareto-optimal).

Combinations that would run the same thing twice are collapsed: ``steps = 0`` is one row per block
(policy ``fixed``, one candidate), and non-searching policies (``fixed``, ``heuristic``) run with one
candidate only.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamsep.catalogue import ENGINE_POLICIES
from streamsep.config import block_for
from streamsep.engine import MAX_HOST_BLOCK, Engine, EngineConfig
from streamsep.reporting import clean_float, write_json

#: quality differences below this (PESQ or DNSMOS MOS units) count as ties for the recommendation
TIE_TOLERANCE = 0.01
#: warm-up host blocks streamed through a throw-away engine before each timed run
WARMUP_BLOCKS = 20
#: policies the streaming engine can run live (``proxy:NAME`` picks a proxy score)
LIVE_POLICIES = ENGINE_POLICIES

Progress = Callable[[int, int], None]


class TuneError(ValueError):
    """A bad tune option or input; one line naming the culprit (the command line reports it, exit 2)."""


@dataclass
class TuneOptions:
    """What ``streamsep tune`` sweeps.  Lists are sequences or comma-separated strings.

    ``input``/``reference``: audio paths (no reference: DNSMOS ranks quality); ``block``: host block
    sizes in samples at the model rate; ``budget_rtf``: real-time budget of the recommendation
    (compute seconds per audio second); ``json``/``plot``/``save_preset``: outputs (None = none).
    """

    input: str
    reference: str | None = None
    model: str = "nsnet2"
    model_path: str | None = None
    steps: Sequence[int] | str = (0, 1, 2, 3)
    candidates: Sequence[int] | str = (1, 4)
    policy: Sequence[str] | str = field(default_factory=lambda: ENGINE_POLICIES)
    block: Sequence[int] | str = (160, 800)
    device: str = "cpu"
    threads: int | None = 1
    budget_rtf: float = 0.5
    json: str | None = None
    plot: str | None = None
    save_preset: str | None = None


class TuneCancelled(Exception):
    """Raised inside :func:`sweep` when its ``cancelled`` callable returns True."""


@dataclass(frozen=True)
class GridPoint:
    """One configuration of the sweep.  ``block`` is the host block in samples at the model rate."""

    steps: int
    candidates: int
    policy: str
    block: int


# ------------------------------------------------------------------------------------------------
# the grid
# ------------------------------------------------------------------------------------------------
def parse_int_list(text: str | Sequence[int], what: str, lo: int, hi: int) -> list[int]:
    """``"0,1,2"`` (or a sequence) → ints in ``[lo, hi]``; TuneError naming ``what`` otherwise."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[int] = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        try:
            v = int(s)
        except ValueError:
            raise TuneError(f"{what}: not a comma-separated list of integers: {text!r}") from None
        if not lo <= v <= hi:
            raise TuneError(f"{what}: {v} is outside {lo}..{hi}")
        if v not in out:
            out.append(v)
    if not out:
        raise TuneError(f"{what}: empty list")
    return out


def parse_policies(text: str | Sequence[str]) -> list[str]:
    """``"fixed,proxy"`` → policy names the engine can stream (``proxy:NAME`` allowed)."""
    from streamsep.policies import PolicyError, make_policy

    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        if s not in LIVE_POLICIES and not s.startswith("proxy:"):
            raise TuneError(
                f"--policy: '{s}' is not a streaming policy (known: {', '.join(LIVE_POLICIES)}, proxy:NAME)"
            )
        try:
            make_policy(s)
        except PolicyError as exc:
            raise TuneError(f"--policy: {exc}") from None
        if s not in out:
            out.append(s)
    if not out:
        raise TuneError("--policy: empty list")
    return out


def searches(policy: str) -> bool:
    """True when ``policy`` tries several candidates per step and selects one."""
    from streamsep.policies import make_policy

    return bool(make_policy(policy).searches)


def grid(
    steps: Iterable[int], candidates: Iterable[int], policies: Iterable[str], blocks: Iterable[int]
) -> list[GridPoint]:
    """The configurations to run, without duplicates (see the module docstring for the collapsing)."""
    seen: list[GridPoint] = []
    steps, candidates, policies = list(steps), list(candidates), list(policies)
    for block in blocks:
        for k in steps:
            for pol in policies:
                for c in candidates:
                    if k == 0:
                        p = GridPoint(0, 1, "fixed", block)
                    elif not searches(pol):
                        p = GridPoint(k, 1, pol, block)
                    else:
                        p = GridPoint(k, c, pol, block)
                    if p not in seen:
                        seen.append(p)
    return seen


# ------------------------------------------------------------------------------------------------
# running one configuration
# ------------------------------------------------------------------------------------------------
def stream(engine: Engine, x: np.ndarray, host_block: int) -> tuple[np.ndarray, dict[str, float]]:
    """Stream ``x`` (model rate) through ``engine`` in host blocks.

    Returns the output aligned with ``x`` (latency removed) and the load figures: ``rtf`` (wall
    seconds / audio seconds), ``rtf_p95`` (95th percentile of the per-block ratio) and ``cpu_rtf``
    (process CPU seconds / audio seconds: what the configuration costs, less sensitive than ``rtf``
    to other jobs sharing the CPU).
    """
    n = len(x)
    lat = engine.latency
    total = n + lat
    xpad = np.zeros(int(math.ceil(total / host_block)) * host_block, np.float32)
    xpad[:n] = x
    out = np.empty_like(xpad)
    per_block = np.empty(len(xpad) // host_block)
    clock = time.perf_counter
    spent = 0.0
    cpu0 = time.process_time()
    for j, i in enumerate(range(0, len(xpad), host_block)):
        t0 = clock()
        out[i : i + host_block] = engine.process(xpad[i : i + host_block])
        dt = clock() - t0
        spent += dt
        per_block[j] = dt
    cpu = time.process_time() - cpu0
    audio_s = len(xpad) / engine.rate
    block_s = host_block / engine.rate
    load = {"rtf": spent / audio_s, "rtf_p95": float(np.percentile(per_block, 95)) / block_s, "cpu_rtf": cpu / audio_s}
    return out[lat : lat + n], load


def quality_metrics(y: np.ndarray, rate: int, reference: np.ndarray | None) -> dict[str, float | None]:
    """SI-SDR (dB) and PESQ with a reference; DNSMOS OVRL/SIG/BAK always.  NaN/inf → None."""
    from streamsep.metrics import dnsmos, pesq_wb, si_sdr

    m: dict[str, float | None] = {}
    if reference is not None:
        m["si_sdr"] = clean_float(si_sdr(y, reference))
        m["pesq"] = clean_float(pesq_wb(y, reference, rate))
    d = dnsmos(y, rate)
    m.update(
        {
            "dnsmos_ovrl": clean_float(d["ovrl"]),
            "dnsmos_sig": clean_float(d["sig"]),
            "dnsmos_bak": clean_float(d["bak"]),
        }
    )
    return m


def run_point(sep, point: GridPoint, x: np.ndarray, reference: np.ndarray | None, device: str, model: str) -> dict:
    """Stream ``x`` through one configuration; the row of the result (see :func:`sweep`)."""
    cfg = EngineConfig(
        model=model,
        steps=point.steps,
        candidates=point.candidates,
        policy=point.policy,
        block=block_for(point.block, sep.hop),
        device=device,
    )
    warm = Engine(cfg, separator=sep)
    w = x[: min(len(x), WARMUP_BLOCKS * point.block)]
    for i in range(0, len(w), point.block):
        warm.process(w[i : i + point.block])
    eng = Engine(cfg, separator=sep)
    y, load = stream(eng, x, point.block)
    proxy = getattr(eng.policy, "proxy", None) if point.steps else None  # the proxy score actually used
    row = {
        "model": model,
        "steps": point.steps,
        "candidates": point.candidates,
        "policy": point.policy,
        "proxy": proxy,
        "block": point.block,
        "engine_block": eng.block,
        "device": device,
        **load,
        "latency_ms": eng.latency_ms,
        "latency_samples": eng.latency,
    }
    row.update(quality_metrics(y, sep.sample_rate, reference))
    return row


# ------------------------------------------------------------------------------------------------
# Pareto front and recommendation
# ------------------------------------------------------------------------------------------------
def _ok(v) -> bool:
    return v is not None and math.isfinite(float(v))


def dominates(a: dict, b: dict) -> bool:
    """``a`` is at least as good as ``b`` in quality (↑), rtf (↓) and latency_ms (↓), better in one."""
    ge = a["quality"] >= b["quality"] and a["rtf"] <= b["rtf"] and a["latency_ms"] <= b["latency_ms"]
    gt = a["quality"] > b["quality"] or a["rtf"] < b["rtf"] or a["latency_ms"] < b["latency_ms"]
    return ge and gt


def pareto_front(rows: Sequence[dict]) -> list[int]:
    """Indices of the rows no other row dominates (rows without a quality score are left out)."""
    valid = [i for i, r in enumerate(rows) if _ok(r.get("quality"))]
    return [i for i in valid if not any(dominates(rows[j], rows[i]) for j in valid if j != i)]


def recommend(rows: Sequence[dict], budget_rtf: float, tolerance: float = TIE_TOLERANCE) -> int | None:
    """Index of the best-quality row with ``rtf ≤ budget_rtf`` (ties → lower latency, then rtf)."""
    fit = [i for i, r in enumerate(rows) if _ok(r.get("quality")) and r["rtf"] <= budget_rtf]
    if not fit:
        return None
    best = max(rows[i]["quality"] for i in fit)
    ties = [i for i in fit if rows[i]["quality"] >= best - tolerance]
    return min(ties, key=lambda i: (rows[i]["latency_ms"], rows[i]["rtf"], -rows[i]["quality"]))


# ------------------------------------------------------------------------------------------------
# the sweep
# ------------------------------------------------------------------------------------------------
def _check_signal(x: np.ndarray) -> np.ndarray:
    """``x`` as float32; raises ValueError unless it is a non-empty, finite 1-D signal."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"sweep: expected a non-empty 1-D signal, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("sweep: input contains NaN or inf")
    return x


def _open_separator(model: str, device: str, model_path: str | None):
    """Create separator ``model`` on ``device`` (with ``model_path`` if given); raises :class:`TuneError`
    when ``model_path`` is given for a model that loads no files."""
    from streamsep.separators.registry import create

    kwargs = {"model_path": model_path} if model_path else {}
    try:
        return create(model, device=device, **kwargs)
    except TypeError:
        if not model_path:
            raise
        raise TuneError(f"--model-path: model '{model}' does not load files") from None


def _to_model_rate(
    x: np.ndarray, reference: np.ndarray | None, rate: int, sr: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` and ``reference`` resampled from ``rate`` to ``sr`` Hz; the reference is zero-padded or cut
    to the length of ``x`` (None stays None)."""
    from streamsep.audio_io import resample

    xm = resample(x, rate, sr) if rate != sr else x
    ref = None
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float32)
        ref = resample(reference, rate, sr) if rate != sr else reference
        ref = np.pad(ref, (0, max(0, len(xm) - len(ref))))[: len(xm)]
    return xm, ref


def _run_points(
    separator,
    points: Sequence[GridPoint],
    xm: np.ndarray,
    ref: np.ndarray | None,
    device: str,
    model: str,
    threads: int | None,
    progress: Progress | None,
    cancelled: Callable[[], bool] | None,
) -> tuple[list[dict], int]:
    """Run every grid point in order with ``threads`` torch CPU threads (restored afterwards); returns the
    rows and the thread count in use.  Calls ``progress`` and honours ``cancelled`` as :func:`sweep` says."""
    import torch

    total = len(points)
    if progress:
        progress(0, total)
    rows: list[dict] = []
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        for i, p in enumerate(points):
            if cancelled and cancelled():
                raise TuneCancelled(f"tune cancelled after {i} of {total} configurations")
            rows.append(run_point(separator, p, xm, ref, device, model))
            if progress:
                progress(i + 1, total)
        used_threads = torch.get_num_threads()
    finally:
        if threads:
            torch.set_num_threads(old_threads)
    return rows, used_threads


def sweep(
    x: np.ndarray,
    rate: int,
    reference: np.ndarray | None = None,
    model: str = "nsnet2",
    steps: Sequence[int] = (0, 1, 2, 3),
    candidates: Sequence[int] = (1, 4),
    policies: Sequence[str] = ENGINE_POLICIES,
    blocks: Sequence[int] = (160, 800),
    device: str = "cpu",
    progress: Progress | None = None,
    budget_rtf: float = 0.5,
    model_path: str | None = None,
    separator=None,
    threads: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict:
    """Run every configuration of the grid on ``x`` (1-D, ``rate`` Hz) and return the result.

    ``reference``: clean signal at ``rate`` (enables SI-SDR and PESQ).  ``blocks``: host blocks in
    samples at the model rate.  ``separator``: an already built separator to reuse (else ``model``
    is created, with ``model_path`` if given).  ``threads``: torch CPU threads for the sweep
    (process-wide, restored afterwards; None leaves the setting alone).  ``progress(done, total)`` is called before the first and after every
    configuration (from the calling thread); ``cancelled()`` returning True stops the sweep with
    :class:`TuneCancelled`.  The result (JSON-ready)::

        {"model", "model_rate", "rate", "seconds", "device", "threads", "quality_metric",
         "budget_rtf", "input": {metrics of the unprocessed input},
         "configs": [{model, steps, candidates, policy, proxy, block, engine_block, device, rtf, rtf_p95,
                      cpu_rtf, latency_ms, latency_samples, [si_sdr, pesq], dnsmos_ovrl, dnsmos_sig,
                      dnsmos_bak, quality}, …],
         "pareto": [indices], "recommended": index or None}
    """
    import torch

    x = _check_signal(x)
    steps = parse_int_list(steps, "--steps", 0, 16)
    candidates = parse_int_list(candidates, "--candidates", 1, 64)
    policies = parse_policies(policies)
    blocks = parse_int_list(blocks, "--block", 1, MAX_HOST_BLOCK)
    if not budget_rtf > 0:
        raise TuneError(f"--budget-rtf: must be > 0, got {budget_rtf!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise TuneError("--device cuda: no CUDA device is available to torch here")
    if separator is None:
        separator = _open_separator(model, device, model_path)
    sr = separator.sample_rate
    xm, ref = _to_model_rate(x, reference, rate, sr)
    points = grid(steps, candidates, policies, blocks)
    rows, used_threads = _run_points(separator, points, xm, ref, device, model, threads, progress, cancelled)
    metric = "pesq" if ref is not None else "dnsmos_ovrl"
    for r in rows:
        r["quality"] = r.get(metric)
    return {
        "model": model,
        "model_rate": sr,
        "rate": int(rate),
        "seconds": len(x) / rate,
        "device": device,
        "threads": used_threads,
        "quality_metric": metric,
        "budget_rtf": float(budget_rtf),
        "input": quality_metrics(xm, sr, ref),
        "configs": rows,
        "pareto": pareto_front(rows),
        "recommended": recommend(rows, budget_rtf),
    }


# ------------------------------------------------------------------------------------------------
# output: table, plot, preset
# ------------------------------------------------------------------------------------------------
def format_table(result: dict) -> str:
    """The sweep as a text table; ``*`` marks Pareto rows, ``<=`` the recommendation."""
    rows = result["configs"]
    ref = "pesq" in (rows[0] if rows else result.get("input", {}))
    qcols = (["si_sdr", "pesq"] if ref else []) + ["dnsmos_ovrl"]
    pw = max([10] + [len(r["policy"]) for r in rows])
    head = (
        f"{'#':>3} {'P':>1} {'steps':>5} {'cands':>5} {'policy':>{pw}} {'block':>6} {'eblock':>6} "
        f"{'rtf':>7} {'rtf_p95':>7} {'cpu_rtf':>7} {'lat_ms':>7} " + " ".join(f"{c:>11}" for c in qcols)
    )
    fmt = lambda v, w=11: f"{v:{w}.3f}" if v is not None else f"{'-':>{w}}"
    inp = result.get("input", {})
    lines = [
        head,
        f"{'in':>3} {'':>1} {'-':>5} {'-':>5} {'(noisy)':>{pw}} {'-':>6} {'-':>6} {'-':>7} {'-':>7} "
        f"{'-':>7} {'-':>7} " + " ".join(fmt(inp.get(c)) for c in qcols),
    ]
    pareto, rec = set(result.get("pareto", [])), result.get("recommended")
    for i, r in enumerate(rows):
        mark = "*" if i in pareto else " "
        tail = "  <= recommended" if i == rec else ""
        lines.append(
            f"{i:>3} {mark:>1} {r['steps']:>5} {r['candidates']:>5} {r['policy']:>{pw}} {r['block']:>6} "
            f"{r['engine_block']:>6} {r['rtf']:>7.3f} {r['rtf_p95']:>7.3f} {r['cpu_rtf']:>7.3f} {r['latency_ms']:>7.1f} "
            + " ".join(fmt(r.get(c)) for c in qcols)
            + tail
        )
    return "\n".join(lines)


def label(row: dict) -> str:
    """Short configuration label, e.g. ``K2 C4 proxy b800``."""
    if row["steps"] == 0:
        return f"K0 b{row['block']}"
    pol = row["policy"]
    return (
        f"K{row['steps']} C{row['candidates']} {pol} b{row['block']}"
        if row["candidates"] > 1
        else f"K{row['steps']} {pol} b{row['block']}"
    )


_POLICY_COLOURS = {"one pass (K=0)": "#555555", "fixed": "#1f77b4", "heuristic": "#ff7f0e", "proxy": "#2ca02c"}
_EXTRA_COLOURS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
_STEP_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "p", "h"]
_QUALITY_NAMES = {"pesq": "PESQ (wide-band MOS-LQO)", "dnsmos_ovrl": "DNSMOS OVRL (MOS)"}


def _family(row: dict) -> str:
    return "one pass (K=0)" if row["steps"] == 0 else row["policy"]


def _front_2d(points: list[tuple[float, float]], eps: float = 1e-4) -> list[tuple[float, float]]:
    """Staircase of the 2-D front (maximise y, minimise x), in increasing x."""
    best = -math.inf
    front = []
    for px, py in sorted(points, key=lambda p: (p[0], -p[1])):
        if py > best + eps:
            front.append((px, py))
            best = py
    return front


def _place_labels(
    ax, items: list[tuple[tuple[float, float], str, str]], points: list[tuple[float, float]], fontsize: float = 7.5
) -> None:
    """Annotate ``items`` ((x, y), text, colour) in order, each at the first of four offsets where its
    text box overlaps no earlier label and no marker; a label with no free place is left out."""
    fig = ax.figure
    px = fontsize * fig.dpi / 72.0  # font size in pixels
    to_pix = ax.transData.transform
    marks = [to_pix(p) for p in points]
    taken: list[tuple[float, float, float, float]] = []

    def free(box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken):
            return False
        return not any(x0 - 4 < mx < x1 + 4 and y0 - 4 < my < y1 + 4 for mx, my in marks)

    for (x, y), text, colour in items:
        cx, cy = to_pix((x, y))
        w, h = 0.58 * px * len(text), 1.2 * px
        gap = 5 * fig.dpi / 72.0
        for ox, oy, ha in (
            (gap, gap, "left"),
            (gap, -gap - h, "left"),
            (-gap, gap, "right"),
            (-gap, -gap - h, "right"),
        ):
            x0 = cx + ox if ha == "left" else cx + ox - w
            box = (x0, cy + oy, x0 + w, cy + oy + h)
            if free(box):
                taken.append(box)
                ax.annotate(
                    text,
                    (x, y),
                    textcoords="offset pixels",
                    xytext=(ox, oy),
                    ha=ha,
                    va="bottom",
                    fontsize=fontsize,
                    color=colour,
                    zorder=5,
                )
                break


@dataclass(frozen=True)
class _PlotKeys:
    """What colours, markers and sideways offsets the plot uses for the rows of one sweep."""

    families: list[str]  #: policy families in first-seen order
    colours: dict[str, str]  #: family -> colour
    steps_seen: list[int]  #: step counts > 0 present, sorted
    valid: list[int]  #: indices of rows with a usable quality
    dodge: float  #: sideways spread per family in the latency panel (ms)


def _plot_keys(rows: Sequence[dict]) -> _PlotKeys:
    """Families, colours, step markers, plottable rows and the latency dodge (1.2 % of the latency span
    in ms, or 0.12 ms when all latencies are equal)."""
    families: list[str] = []
    for r in rows:
        if _family(r) not in families:
            families.append(_family(r))
    colours = {f: _POLICY_COLOURS.get(f) or _EXTRA_COLOURS[i % len(_EXTRA_COLOURS)] for i, f in enumerate(families)}
    steps_seen = sorted({r["steps"] for r in rows if r["steps"] > 0})
    valid = [i for i, r in enumerate(rows) if _ok(r.get("quality"))]
    lats = [rows[i]["latency_ms"] for i in valid]
    span = (max(lats) - min(lats)) if lats else 0.0
    return _PlotKeys(families, colours, steps_seen, valid, 0.012 * (span or 10.0))


def _plot_x(rows: Sequence[dict], i: int, xkey: str, keys: _PlotKeys) -> float:
    """Horizontal position of row ``i``: its rtf, or its latency (ms) shifted sideways by family."""
    r = rows[i]
    if xkey == "rtf":
        return r["rtf"]
    return r["latency_ms"] + keys.dodge * (keys.families.index(_family(r)) - (len(keys.families) - 1) / 2)


def _draw_front(ax, rows: Sequence[dict], xkey: str, valid: list[int]) -> None:
    """The panel's 2-D front as a staircase, carried on to the largest x so a one-point front still shows."""
    front = _front_2d([(rows[i][xkey], rows[i]["quality"]) for i in valid])
    if front:
        fx, fy = [p[0] for p in front], [p[1] for p in front]
        fx.append(max(rows[i][xkey] for i in valid))
        fy.append(fy[-1])
        ax.step(fx, fy, where="post", color="black", lw=1.0, alpha=0.6, zorder=2)


def _draw_points(ax, rows: Sequence[dict], xkey: str, keys: _PlotKeys, pareto: set[int], rec: int | None) -> None:
    """One marker per valid row (ringed when Pareto-optimal) and a star on the recommendation."""
    for i in keys.valid:
        r = rows[i]
        on = i in pareto
        ax.scatter(
            _plot_x(rows, i, xkey, keys),
            r["quality"],
            s=70 if on else 40,
            marker=_STEP_MARKERS[r["steps"] % len(_STEP_MARKERS)],
            c=keys.colours[_family(r)],
            edgecolors="black" if on else "none",
            linewidths=1.3 if on else 0,
            alpha=1.0 if on else 0.6,
            zorder=3,
        )
    if rec is not None:
        ax.scatter(
            _plot_x(rows, rec, xkey, keys),
            rows[rec]["quality"],
            s=320,
            marker="*",
            facecolors="none",
            edgecolors="crimson",
            linewidths=1.6,
            zorder=4,
        )


def _draw_rtf_axis(ax, rows: Sequence[dict], valid: list[int], budget: float | None) -> None:
    """The RTF panel's budget line, and a log x axis with plain tick labels when the rtfs span over 20×."""
    if budget:
        ax.axvline(budget, color="crimson", ls="--", lw=1.0, zorder=1)
        ax.text(
            budget,
            0.02,
            f" budget {budget:g}",
            transform=ax.get_xaxis_transform(),
            color="crimson",
            fontsize=8,
            va="bottom",
        )
    xs = [rows[i]["rtf"] for i in valid]
    if xs and max(xs) / max(min(xs), 1e-9) > 20:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        ax.set_xscale("log")
        nice = [m * 10.0**e for e in range(-4, 3) for m in (1, 2, 5)]
        ax.xaxis.set_major_locator(FixedLocator([v for v in nice if min(xs) / 2 <= v <= max(xs) * 2]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _draw_panel(
    ax,
    rows: Sequence[dict],
    xkey: str,
    xname: str,
    keys: _PlotKeys,
    pareto: set[int],
    rec: int | None,
    budget: float | None,
) -> None:
    """One panel: quality against ``xkey`` (``rtf`` or ``latency_ms``)."""
    _draw_front(ax, rows, xkey, keys.valid)
    _draw_points(ax, rows, xkey, keys, pareto, rec)
    if xkey == "rtf":
        _draw_rtf_axis(ax, rows, keys.valid, budget)
    ax.set_xlabel(xname)
    ax.grid(True, alpha=0.3)


def _annotate_quality(
    ax, rows: Sequence[dict], valid: list[int], pareto: set[int], rec: int | None, qname: str
) -> None:
    """Quality limits and label of the (shared) y axis, and labels on the Pareto rows of the RTF panel
    (the recommendation first, then by falling quality)."""
    qs = [rows[i]["quality"] for i in valid]
    if qs:
        lo, hi = min(qs), max(qs)
        pad = max(0.05 * (hi - lo), 0.02)
        ax.set_ylim(lo - pad, hi + 2.5 * pad)
    order = sorted((i for i in valid if i in pareto), key=lambda i: (i != rec, -rows[i]["quality"]))
    _place_labels(
        ax,
        [((rows[i]["rtf"], rows[i]["quality"]), label(rows[i]), "crimson" if i == rec else "black") for i in order],
        [(rows[i]["rtf"], rows[i]["quality"]) for i in valid],
    )
    ax.set_ylabel(f"quality: {qname}")


def _add_legend(fig, keys: _PlotKeys, rec: int | None) -> None:
    """Legend outside the panels (covers no point): families, step markers, Pareto ring, front, star."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=7, color=keys.colours[f], label=f) for f in keys.families]
    handles += [
        Line2D(
            [],
            [],
            ls="",
            marker=_STEP_MARKERS[k % len(_STEP_MARKERS)],
            ms=7,
            color="dimgray",
            label=f"K={k} step{'s' if k != 1 else ''}",
        )
        for k in keys.steps_seen
    ]
    handles += [
        Line2D([], [], ls="", marker="o", ms=7, mfc="white", mec="black", mew=1.3, label="Pareto-optimal"),
        Line2D([], [], ls="-", color="black", lw=1.0, alpha=0.6, label="2-D front of the panel"),
    ]
    if rec is not None:
        handles.append(Line2D([], [], ls="", marker="*", ms=13, mfc="none", mec="crimson", label="recommended"))
    fig.legend(handles=handles, fontsize=8, loc="center right", framealpha=0.9)


def _add_title(fig, result: dict, metric: str) -> None:
    """Title: model, seconds of audio, source file and the noisy input's quality when known."""
    inp = result.get("input", {}).get(metric)
    title = f"streamsep tune: {result.get('model')}, {result.get('seconds', 0):.1f} s"
    if result.get("source"):
        title += f" of {result['source']}"
    if inp is not None:
        title += f"  (noisy input: {metric} {inp:.2f})"
    fig.suptitle(title, fontsize=10.5)


def _save_png(fig, target) -> None:
    """Write ``fig`` as a PNG to the path ``target`` (Agg backend), creating its folder."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))


def plot(result: dict, target) -> object:
    """Quality against RTF and against latency, Pareto front drawn.

    ``target``: a file path (PNG written with the Agg backend) or a ``matplotlib.figure.Figure`` to
    draw into (e.g. the GUI's canvas figure).  Returns the figure.  Colour = policy, marker = steps;
    markers with a black ring are Pareto-optimal in (quality, rtf, latency) and labelled; the black
    staircase in each panel is that panel's 2-D front; the red star is the recommendation; the dashed
    line is the RTF budget.  In the latency panel points of the same latency are spread sideways by
    policy (a fraction of a millisecond) so they do not hide each other.
    """
    from matplotlib.figure import Figure

    own = not isinstance(target, Figure)
    fig = Figure(figsize=(12.5, 5.0), dpi=100) if own else target
    fig.clear()
    rows = result["configs"]
    metric = result.get("quality_metric", "pesq")
    pareto = set(result.get("pareto", []))
    rec = result.get("recommended")
    axes = fig.subplots(1, 2, sharey=True)
    keys = _plot_keys(rows)
    for ax, xkey, xname in (
        (axes[0], "rtf", "real-time factor (compute s / audio s; lower = lighter)"),
        (axes[1], "latency_ms", "latency (ms)"),
    ):
        _draw_panel(ax, rows, xkey, xname, keys, pareto, rec, result.get("budget_rtf"))
    _annotate_quality(axes[0], rows, keys.valid, pareto, rec, _QUALITY_NAMES.get(metric, metric))
    _add_legend(fig, keys, rec)
    _add_title(fig, result, metric)
    fig.tight_layout(rect=(0.0, 0.0, 0.85, 1.0))
    if own:
        _save_png(fig, target)
    return fig


def user_preset_dir() -> Path:
    """``$XDG_CONFIG_HOME/streamsep/presets`` (default ``~/.config/streamsep/presets``)."""
    from streamsep.presets import user_preset_dir as _user_dir

    return _user_dir()


def preset_target(name: str) -> Path:
    """Where ``--save-preset NAME`` writes: a path when NAME ends with .toml, else the user dir."""
    if name.endswith(".toml"):
        return Path(name).expanduser()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise TuneError(
            f"--save-preset: '{name}' is not a plain preset name (letters, digits, _ . -) nor a path ending in .toml"
        )
    return user_preset_dir() / f"{name}.toml"


def config_of(row: dict) -> EngineConfig:
    """The :class:`EngineConfig` a result row describes."""
    return EngineConfig(
        model=row["model"],
        steps=int(row["steps"]),
        candidates=int(row["candidates"]),
        policy=row["policy"],
        block=int(row["engine_block"]),
        device=row.get("device", "cpu"),
    ).validate()


def save_recommended(result: dict, name: str) -> Path:
    """Save the recommended configuration as a preset; TuneError when there is none."""
    from streamsep.presets import save_preset

    rec = result.get("recommended")
    if rec is None:
        raise TuneError(f"--save-preset: no configuration fits --budget-rtf {result.get('budget_rtf')}; nothing saved")
    row = result["configs"][rec]
    q = row.get("quality")
    desc = (
        f"From streamsep tune on {result.get('source', 'a recording')}: rtf {row['rtf']:.3f}, "
        f"{row['latency_ms']:.0f} ms latency, {result['quality_metric']} " + (f"{q:.2f}" if q is not None else "n/a")
    )
    return save_preset(config_of(row), preset_target(name), description=desc)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def _tqdm_progress(desc: str) -> tuple[Progress, Callable[[], None]]:
    import sys

    from tqdm import tqdm

    bar: list = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=desc, unit="config", file=sys.stderr, leave=False))
        bar[0].n = done
        bar[0].refresh()

    return progress, (lambda: bar[0].close() if bar else None)


def run_tune(args: TuneOptions) -> int:
    """``streamsep tune``: see the module docstring.  Returns the exit status."""
    from streamsep.audio_io import read_audio, resample
    from streamsep.runtime import set_threads

    # check every option before the (slow) model load and the sweep
    steps = parse_int_list(args.steps, "--steps", 0, 16)
    cands = parse_int_list(args.candidates, "--candidates", 1, 64)
    policies = parse_policies(args.policy)
    blocks = parse_int_list(args.block, "--block", 1, MAX_HOST_BLOCK)
    if not args.budget_rtf > 0:
        raise TuneError(f"--budget-rtf: must be > 0, got {args.budget_rtf!r}")
    if args.threads is not None and args.threads < 1:
        raise TuneError(f"--threads: must be ≥ 1, got {args.threads}")
    if args.save_preset:
        preset_target(args.save_preset)
    if args.plot and not str(args.plot).lower().endswith(".png"):
        raise TuneError(f"--plot: {args.plot} must end with .png")
    x, rate = read_audio(args.input)
    ref = None
    if args.reference:
        ref, ref_rate = read_audio(args.reference)
        if ref_rate != rate:
            ref = resample(ref, ref_rate, rate)
        if abs(len(ref) - len(x)) > max(1, int(0.01 * rate)):
            raise TuneError(f"{args.reference}: reference is {len(ref) / rate:.2f} s, input is {len(x) / rate:.2f} s")
    set_threads(args.threads)  # also onnxruntime's, through STREAMSEP_ORT_THREADS
    progress, close = _tqdm_progress(f"tune {args.model}")
    t0 = time.perf_counter()
    try:
        result = sweep(
            x,
            rate,
            ref,
            model=args.model,
            steps=steps,
            candidates=cands,
            policies=policies,
            blocks=blocks,
            device=args.device,
            progress=progress,
            budget_rtf=args.budget_rtf,
            model_path=args.model_path,
        )
    finally:
        close()
    result["source"] = Path(args.input).name
    result["reference"] = Path(args.reference).name if args.reference else None
    result["wall_seconds"] = time.perf_counter() - t0
    from streamsep.machine import machine_info

    result["machine"] = machine_info(result["threads"], args.device)
    print(
        f"{args.model} on {result['source']} ({result['seconds']:.1f} s, model rate {result['model_rate']} Hz, "
        f"{result['threads']} thread(s), {args.device}); quality = {result['quality_metric']}; "
        f"* = Pareto-optimal (quality up, rtf and latency down)"
    )
    print(format_table(result))
    rec = result["recommended"]
    if rec is None:
        lightest = min(range(len(result["configs"])), key=lambda i: result["configs"][i]["rtf"])
        print(
            f"no configuration fits --budget-rtf {args.budget_rtf:g}; the lightest is #{lightest} "
            f"(rtf {result['configs'][lightest]['rtf']:.3f})"
        )
    else:
        r = result["configs"][rec]
        print(
            f"recommended (rtf ≤ {args.budget_rtf:g}): #{rec} {label(r)}: rtf {r['rtf']:.3f}, "
            f"{r['latency_ms']:.1f} ms, {result['quality_metric']} {r['quality']:.3f}"
        )
    if args.json:
        write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}")
    if args.save_preset:
        path = save_recommended(result, args.save_preset)
        print(f"saved preset {path}")
    return 0
