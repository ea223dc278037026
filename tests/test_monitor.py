"""The monitor's maths: smoothing, thinning, columns, GIF export."""
import io
import json
import math

import numpy as np
from PIL import Image

from core.runs.runfolder import MetricsTail
from ui import monitor


def test_smooth_is_a_debiased_ema_that_skips_gaps():
    y = monitor.smooth([1.0, None, 3.0, float("nan"), 5.0], 0.5)
    assert y[0] == 1.0 and math.isnan(y[1]) and math.isnan(y[3])
    assert math.isclose(y[2], (0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25))
    assert np.allclose(monitor.smooth([2.0] * 50, 0.9), 2.0)  # debiased: no warm-up sag
    assert np.array_equal(monitor.smooth([1.0, 2.0], 0.0), [1.0, 2.0])


def test_thin_keeps_the_last_point_and_caps_the_count():
    for n in (10, 1999, 2000, 2001, 10_000, 12_345):
        idx = range(n)[monitor.thin(n)]
        assert len(idx) <= monitor.MAX_POINTS and idx[-1] == n - 1


def test_curves_from_the_incremental_table_match_a_full_read(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "kimg": s / 100, "loss_d": 1 / s, "r1": 0.1 if s % 4 == 0 else None} for s in range(1, 5001)]
    tail = MetricsTail(path)
    with open(path, "w") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps(row) + "\n")
            if i % 1000 == 0:
                f.flush()
                tail.table()  # read in several increments
    table = tail.table()
    full = monitor.table_from_rows(rows)
    for key in ("kimg", "loss_d", "r1"):
        assert np.array_equal(table[key], full[key], equal_nan=True)
    x, y = monitor.curve(table, "loss_d", smoothing=0.5)
    assert len(x) == len(y) <= monitor.MAX_POINTS and x[-1] == 50.0
    fig = monitor.training_figure(table, smoothing=0.5)
    assert len(fig.data) == sum(len(keys) for _, keys in monitor.PANELS)


def test_the_steps_a_finding_questions_are_shaded_on_every_panel():
    from core.health import Finding
    table = monitor.table_from_rows([{"step": s, "kimg": s / 100, "loss_d": 1.0} for s in range(10, 510, 10)])
    findings = [Finding("collapse", "problem", "t", "e", "a", (100, 300)), Finding("healthy", "ok", "t", "e", "a")]
    marks = monitor.health_marks(findings, table)
    assert marks == [(1.0, 3.0, "problem")]
    fig = monitor.training_figure(table, marks=marks)
    shapes = fig.layout.shapes
    assert len(shapes) == len(monitor.PANELS)
    assert [(s.x0, s.x1) for s in shapes] == [(1.0, 3.0)] * len(monitor.PANELS)
    assert {s.yref for s in shapes} == {"y domain"} | {f"y{i} domain" for i in range(2, len(monitor.PANELS) + 1)}


def test_grids_gif_has_one_frame_per_grid(tmp_path):
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        paths.append(tmp_path / f"step-{i:08d}.png")
        Image.new("RGB", (100, 100), colour).save(paths[-1])
    with Image.open(io.BytesIO(monitor.grids_gif(paths))) as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        assert gif.convert("RGB").getpixel((50, 50))[2] > 200


def test_eta_and_badges():
    assert monitor.eta_text(None) == "–" and monitor.eta_text(59) == "59s"
    assert monitor.eta_text(3725) == "1h 02m" and monitor.badge("crashed") == "💥 crashed"
