"""Is it working? A run's health in plain words, with evidence and advice.

Computed only from what the run folder holds: metrics.jsonl, status.json, config.json
and the sample grids (through health.json, below). The rules are in rules.py, the grid
numbers in grids.py. Shown on the Monitor (refreshed live), as a badge on Home, and by

    python -m core.health RUN_DIR [--json] [--write]

health.json (written atomically by the trainer after every sample grid, or by --write
for runs trained before it existed) keeps the expensive part, the numbers of each grid
and of the real images, and the findings as of its last write. Anyone can redo the
findings from it with the latest metric lines in milliseconds: `assess`.
"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.health import grids
from core.health.rules import DIVERSITY, SEVERITIES, Evidence, Finding, diagnose, worst
from core.runs.runfolder import MetricsTail, RunFolder

__all__ = ["SEVERITIES", "Finding", "Assessment", "assess", "measure_grids", "GridRecorder", "worst",
           "snapshots_to_spare"]


@dataclass
class Assessment:
    findings: list[Finding]
    grids: list[dict]   # the numbers of each grid, oldest first
    real: dict | None   # and of the real images

    @property
    def severity(self) -> str:
        return worst(self.findings)

    def to_dict(self) -> dict:
        return {"severity": self.severity, "findings": [f.to_dict() for f in self.findings],
                "grids": self.grids, "real": self.real}


def assess(run_dir: Path | str, table: dict[str, np.ndarray] | None = None, measured: dict | None = None) -> Assessment:
    """The findings now: the latest metric lines (or `table`, the Monitor's) and the grid numbers
    of health.json (or `measured`, from measure_grids)."""
    run = RunFolder(run_dir)
    saved = measured if measured is not None else run.read_health()
    grid_rows = [g for g in saved.get("grids", []) if isinstance(g, dict) and "step" in g]
    real = saved.get("real") if isinstance(saved.get("real"), dict) else None
    if table is None:
        table = MetricsTail(run.metrics_file).table()
    evidence = Evidence(table=table, status=run.read_status(), config=run.read_config(), grids=grid_rows, real=real,
                        snapshots=run.snapshot_steps())
    return Assessment(diagnose(evidence), grid_rows, real)


def snapshots_to_spare(run_dir: Path | str) -> set[int]:
    """Snapshots that --keep-snapshots must not delete: every one a finding advises going back
    to, and the newest at or before the most varied grid so far, so that a collapse found later
    still has a snapshot from before its fall to rewind to."""
    run = RunFolder(run_dir)
    saved, snapshots = run.read_health(), run.snapshot_steps()
    # health.json is read, not trusted: a damaged one must not end the run that prunes by it
    findings, rows = (saved.get(k) if isinstance(saved.get(k), list) else [] for k in ("findings", "grids"))
    spare = {f.get("rewind") for f in findings if isinstance(f, dict) and type(f.get("rewind")) is int}
    spare &= set(snapshots)
    rows = [g for g in rows if isinstance(g, dict) and type(g.get("step")) is int]
    for measure in DIVERSITY:
        scored = [g for g in rows if isinstance(g.get(measure), (int, float))]
        if scored:
            best = max(scored, key=lambda g: g[measure])["step"]
            spare |= {max((s for s in snapshots if s <= best), default=None)} - {None}
    return spare


def _sheet(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return grids.split_grid(np.asarray(im.convert("RGB")))


def measure_grids(run_dir: Path | str, progress: Callable[[int, int], None] | None = None) -> dict:
    """The grid numbers from the sample PNGs, for a run without them in health.json."""
    run = RunFolder(run_dir)
    if not run.reals.exists():
        raise ValueError(f"{run.path} has no samples/reals.png to compare the grids with")
    reference = grids.Reference(_sheet(run.reals))
    rows, steps = [], run.sample_steps()
    kimg = _kimg_by_step(run)
    for i, step in enumerate(steps):
        rows.append({"step": step, "kimg": kimg.get(step), **reference.measure(_sheet(run.sample_path(step)))})
        if progress:
            progress(i + 1, len(steps))
    return {"real": reference.stats, "grids": rows}


def _kimg_by_step(run: RunFolder) -> dict[int, float]:
    batch = run.read_config().get("batch")
    return {s: round(s * batch / 1000, 3) for s in run.sample_steps()} if isinstance(batch, int) else {}


class GridRecorder:
    """The trainer's side: measures each new grid against the real images and rewrites health.json."""

    def __init__(self, run: RunFolder, reals: np.ndarray, device="cpu"):
        self.run, self.device = run, device
        self.reference = grids.Reference(reals, device)
        saved = run.read_health().get("grids", [])
        self.grids = [g for g in saved if isinstance(g, dict) and isinstance(g.get("step"), int)]

    def forget_after(self, step: int) -> None:
        """A resume redoes the steps after its checkpoint, and their grids."""
        self.grids = [g for g in self.grids if g["step"] <= step]

    def add(self, step: int, kimg: float, images: np.ndarray) -> None:
        self.forget_after(step - 1)
        self.grids.append({"step": step, "kimg": round(kimg, 3), **self.reference.measure(images, self.device)})
        self.write()

    def write(self) -> None:
        measured = {"real": self.reference.stats, "grids": self.grids}
        self.run.write_health({**measured, **assess(self.run.path, measured=measured).to_dict()})
