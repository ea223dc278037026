"""What the live monitor shows, computed without streamlit: curves, badges, log tail, GIFs.

A monitor tick must stay cheap with tens of thousands of metric lines: rows
are read incrementally (runfolder.MetricsTail), smoothing is one pass, and
curves are thinned to a few thousand points before they are sent to the browser.
"""
import math
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from scipy.signal import lfilter

from core import grid
from core.paths import BUILTIN_EMOJI

MAX_POINTS = 2000

BADGES = {
    "starting": "🔵 starting", "queued": "⏳ queued", "running": "🟢 running",
    "stopping": "🟡 stopping", "stopped": "⏸️ stopped", "finished": "✅ finished",
    "failed": "❌ failed", "crashed": "💥 crashed",
}

# (title, [(metric key, legend name)]) for each panel of the training figure.
PANELS = [
    ("Losses", [("loss_d", "D loss"), ("loss_g", "G loss")]),
    ("D outputs", [("d_real", "D(real)"), ("d_fake", "D(fake)")]),
    ("R1 / R2 penalty", [("r1", "R1"), ("r2", "R2")]),
    ("Augmentation p", [("aug_p", "p"), ("rt", "r_t")]),
    ("Throughput (img/s)", [("img_per_sec", "img/s")]),
    ("Learning rate", [("lr", "lr G"), ("lr_d", "lr D")]),
    ("KID (--kid-kimg)", [("kid", "KID")]),
]
COMPARABLE = {key: name for _, keys in PANELS for key, name in keys}
UNSMOOTHED = {"lr", "lr_d"}
# Colour-blind-safe colours that stay apart on a white background (Okabe & Ito 2008). Within
# a panel the second curve is also dashed, so equal curves (lr G = lr D) stay visible.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]


def badge(state: str) -> str:
    return BADGES.get(state, f"❔ {state}")


# core.health's severities, as Home's column and the Monitor's panel show them.
HEALTH_BADGES = {"ok": "💚 healthy", "info": "⚪ too early", "warning": "🟠 check", "problem": "🔴 problem"}
HEALTH_SHADES = {"warning": "rgba(230,159,0,0.15)", "problem": "rgba(213,94,0,0.18)"}


def health_badge(severity: str | None) -> str:
    return HEALTH_BADGES.get(severity, "–")


def health_marks(findings, table: dict[str, np.ndarray]) -> list[tuple[float, float, str]]:
    """(kimg from, kimg to, severity) of each finding that names steps, for shading the curves."""
    steps, kimg = table.get("step"), table.get("kimg")
    if steps is None or kimg is None or not len(steps):
        return []
    marks = []
    for f in findings:
        if f.steps and f.severity in HEALTH_SHADES:
            lo, hi = np.interp(f.steps, steps, kimg)
            marks.append((float(lo), float(max(hi, lo + 1e-3)), f.severity))
    return marks


def smooth(values, weight: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard's); NaN (missing) values stay gaps
    and are skipped by the average. Vectorised: a monitor tick smooths ~10^5 values."""
    y = np.asarray(values, dtype=float)
    if weight <= 0 or not len(y):
        return y
    out = np.full_like(y, np.nan)
    ok = np.isfinite(y)
    avg = lfilter([1 - weight], [1, -weight], y[ok])
    out[ok] = avg / (1 - weight ** np.arange(1, ok.sum() + 1))
    return out


def thin(n: int, max_points: int = MAX_POINTS) -> slice:
    """Evenly spaced indices (always keeping the last) for at most max_points points."""
    if n <= max_points:
        return slice(0, n)
    stride = math.ceil(n / max_points)
    return slice((n - 1) % stride, n, stride)


def table_from_rows(rows: list[dict]) -> dict[str, np.ndarray]:
    """Metric rows as float columns (None -> NaN), like MetricsTail.table()."""
    keys = sorted({k for r in rows for k in r})
    return {k: np.array([r.get(k) for r in rows], dtype=float) for k in keys}


def curve(table: dict[str, np.ndarray], key: str, smoothing: float = 0.0, max_points: int = MAX_POINTS):
    """x (kimg) and y arrays for one metric: smoothed over every row, then thinned."""
    x = table.get("kimg", np.array([]))
    y = table.get(key, np.full(len(x), np.nan))
    keep = thin(len(x), max_points)
    return x[keep], smooth(y, smoothing)[keep]


def _legend(i: int) -> str:
    return "legend" if i == 0 else f"legend{i + 1}"


@lru_cache(maxsize=1)
def _panel_layout() -> go.Layout:
    # make_subplots costs ~20 ms: build the empty 2x4 grid once and reuse its layout.
    fig = make_subplots(rows=2, cols=4, subplot_titles=[title for title, _ in PANELS],
                        horizontal_spacing=0.05, vertical_spacing=0.14)
    fig.update_xaxes(title_text="kimg", row=2)
    fig.update_yaxes(rangemode="tozero", row=2, col=2)  # learning rate: show halvings against 0
    # Each panel with two curves gets its own small legend in its top right corner, where
    # it is seen with its curves (one shared legend sat below the fold).
    legends = {}
    for i, (_, keys) in enumerate(PANELS):
        axis = fig.layout["xaxis" if i == 0 else f"xaxis{i + 1}"]
        yaxis = fig.layout["yaxis" if i == 0 else f"yaxis{i + 1}"]
        legends[_legend(i)] = dict(x=axis.domain[1], y=yaxis.domain[1], xanchor="right", yanchor="top",
                                   orientation="h", bgcolor="rgba(255,255,255,0.7)", font=dict(size=10),
                                   visible=len(keys) > 1)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10), **legends)
    return fig.layout


def training_figure(table: dict[str, np.ndarray], smoothing: float = 0.0, log_y: bool = False,
                    marks: list[tuple[float, float, str]] = ()) -> go.Figure:
    """The monitor's panels (2 x 4), with the steps the health check questions shaded (`marks`).
    Traces name their axes directly (x2/y2...), which is much cheaper than add_trace(row=, col=)
    on a large figure."""
    traces = []
    for i, (_, keys) in enumerate(PANELS):
        axis = "" if i == 0 else str(i + 1)
        for j, (key, name) in enumerate(keys):
            # Learning rates are step functions: smoothing would only blur their halvings.
            x, y = curve(table, key, 0.0 if key in UNSMOOTHED else smoothing)
            line = dict(color=COLOURS[j], dash="dash" if j else "solid")
            traces.append(go.Scattergl(x=x, y=y, name=name, mode="lines", line=line, legend=_legend(i),
                                       showlegend=len(keys) > 1, xaxis=f"x{axis}", yaxis=f"y{axis}"))
    fig = go.Figure(data=traces, layout=_panel_layout())
    for lo, hi, severity in marks:
        for i in range(len(PANELS)):
            axis = "" if i == 0 else str(i + 1)
            fig.add_vrect(x0=lo, x1=hi, fillcolor=HEALTH_SHADES[severity], line_width=0, layer="below",
                          xref=f"x{axis}", yref=f"y{axis}")  # add_vrect spans the whole panel ("domain") itself
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def compare_figure(tables: dict[str, dict[str, np.ndarray]], key: str, smoothing: float = 0.0,
                   log_y: bool = False) -> go.Figure:
    fig = go.Figure()
    for i, (name, table) in enumerate(tables.items()):
        x, y = curve(table, key, smoothing)
        fig.add_trace(go.Scattergl(x=x, y=y, name=name, mode="lines", line=dict(color=COLOURS[i % len(COLOURS)])))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="kimg",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      yaxis_title=COMPARABLE.get(key, key), yaxis_type="log" if log_y else "linear")
    return fig


def source_label(data: str) -> str:
    """A run's --data in a few words: "built-in emoji", "covers v3", "faces.zip", "pictures/"."""
    if data == BUILTIN_EMOJI:
        return "built-in emoji"
    path = Path(data)
    if path.suffix == ".json" and path.parent.name == "versions":  # data/sets/NAME/versions/vN.json
        return f"{path.parent.parent.name} {path.stem}"
    return path.name if path.suffix else f"{path.name}/"


def progress_text(status: dict) -> str:
    """Where a run stands against its own length, in the unit it was set in:
    "28.61 of 100 kimg", or "12.3 of 30 minutes · 28.61 kimg"."""
    kimg = status.get("kimg") or 0
    if status.get("target_minutes"):
        minutes = (status.get("train_seconds") or 0) / 60
        return f"{minutes:.1f} of {status['target_minutes']:g} minutes · {kimg:.2f} kimg"
    if status.get("target_kimg"):
        return f"{kimg:.2f} of {status['target_kimg']:g} kimg"
    return f"{kimg:.2f} kimg"


def eta_text(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class Eta:
    """ "about 2m 10s left", from the share of steady work done since it was made."""

    def __init__(self):
        self.start = time.monotonic()

    def text(self, fraction: float) -> str:
        if fraction < 0.02:
            return "estimating the time left…"
        elapsed = time.monotonic() - self.start
        return f"about {eta_text(elapsed * (1 - fraction) / fraction)} left"


def log_tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    """The last lines of a log without reading all of it."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def grid_frames(paths: list[Path], max_side: int = 540) -> list[np.ndarray]:
    """The sample grids, in order, at most max_side pixels a side ('watch it learn')."""
    frames = []
    for path in paths:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((max_side, max_side))
            frames.append(np.asarray(im))
    return frames


def grids_gif(paths: list[Path], seconds_per_frame: float = 0.4, max_side: int = 540) -> bytes:
    """An animated GIF of sample grids, in order ('watch it learn')."""
    frames = [Image.fromarray(f).quantize(colors=255) for f in grid_frames(paths, max_side)]
    return grid.gif(frames, int(seconds_per_frame * 1000))
