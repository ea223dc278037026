"""Server-side cost of one live-monitor tick on a run with many metric lines.

A tick = read new metric lines + build the training figure + serialise it to
JSON (what st.plotly_chart sends). Measured on a run folder with --lines lines
(default 10,000) while one new line arrives per tick, against the naive
baseline that rereads and reparses the whole file every tick.

    python bench/monitor_refresh.py [--lines 10000] [--ticks 40]
"""
import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.runs.runfolder import MetricsTail, RunFolder  # noqa: E402
from ui import monitor  # noqa: E402


def metric_row(step: int, rng: random.Random) -> dict:
    """A line shaped like the trainer's (values only need to be plausible here)."""
    t = step / 1000
    return {"step": step, "kimg": round(step * 32 / 1000, 4), "time": 1.8e9 + step, "train_seconds": step * 0.8,
            "loss_d": 1.2 + 0.2 * math.sin(t) + rng.gauss(0, 0.1), "loss_g": 1.5 + rng.gauss(0, 0.3),
            "d_real": 0.6 + rng.gauss(0, 0.05), "d_fake": 0.4 + rng.gauss(0, 0.05),
            "r1": abs(rng.gauss(0.01, 0.005)) if step % 16 == 0 else None, "rt": 0.6 + rng.gauss(0, 0.1),
            "aug_p": min(1.0, t / 20), "img_per_sec": 40 + rng.gauss(0, 2), "lr": 2e-4, "lr_d": 2e-4}


def tick_ms(read_table, run: RunFolder, step: int, rng) -> float:
    run.append_metrics(metric_row(step, rng))
    start = time.perf_counter()
    table = read_table()
    monitor.training_figure(table, smoothing=0.6).to_json()
    return (time.perf_counter() - start) * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--ticks", type=int, default=40)
    args = p.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunFolder(tmp)
        run.metrics_file.write_text("".join(json.dumps(metric_row(s, rng)) + "\n" for s in range(1, args.lines + 1)))
        tail = MetricsTail(run.metrics_file)
        start = time.perf_counter()
        tail.table()
        first = (time.perf_counter() - start) * 1000
        step = args.lines
        incremental, naive = [], []
        for _ in range(args.ticks):  # alternate so machine noise hits both alike
            step += 1
            incremental.append(tick_ms(tail.table, run, step, rng))
            step += 1
            naive.append(tick_ms(lambda: monitor.table_from_rows(run.read_metrics()), run, step, rng))

    def p95(xs):
        return sorted(xs)[int(0.95 * (len(xs) - 1))]

    print(f"run with {args.lines:,} metric lines, {args.ticks} ticks, one new line per tick")
    print(f"first full read           : {first:7.1f} ms (once per session and run)")
    print(f"tick, incremental read    : p50 {statistics.median(incremental):6.1f} ms   p95 {p95(incremental):6.1f} ms"
          f"   (target < 100 ms)")
    print(f"tick, naive full reread   : p50 {statistics.median(naive):6.1f} ms   p95 {p95(naive):6.1f} ms")
    print(f"ratio naive / incremental : {statistics.median(naive) / statistics.median(incremental):.2f}x")


if __name__ == "__main__":
    main()
