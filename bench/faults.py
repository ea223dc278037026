"""Fault injection: kill a real trainer at random moments, resume it each time, then check the run.

A tiny run writes a metrics line, a sample grid and latest.pt every few steps, so a kill
often lands in the middle of one of them (or of start-up). After each SIGKILL the app's
registry must show the run as crashed; the next --resume must clean up and continue. At
the end the run is stopped cleanly and checked: every file parses, latest.pt loads with
weights_only=True, and the metric lines continue with no gap or repeat.

    python bench/faults.py [--kills 20] [--seed 0]

Prints: kills, corrupt files, leftover temp files, lost or repeated steps (target 20 / 0 / 0 / 0).
"""
import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import checkpoint  # noqa: E402
from core.runs.registry import Registry  # noqa: E402
from core.runs.runfolder import RunFolder  # noqa: E402

LOG_EVERY = 5
OPTIONS = ["--res", "32", "--batch", "8", "--channels", "8", "--kimg", "1000", "--threads", "1",
           "--log-every", str(LOG_EVERY), "--sample-kimg", "0.04", "--latest-minutes", "0", "--snapshot-kimg", "0.4"]


def make_images(folder: Path, n: int = 16) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def trainer(out: Path, data: Path | None) -> subprocess.Popen:
    args = ["--resume"] if data is None else ["--data", str(data), *OPTIONS]
    return subprocess.Popen([sys.executable, "-m", "core.train", "--out", str(out), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def step_of(run: RunFolder) -> int:
    return run.read_status().get("step", 0)


def temp_files(run: RunFolder) -> list[Path]:
    return [p for p in run.path.rglob(".*.tmp")]


def corrupt_files(run: RunFolder) -> list[str]:
    bad = []
    for path in [run.config_file, run.status_file, *run.evals.glob("*.json")]:
        try:
            json.loads(path.read_text())
        except (OSError, ValueError):
            bad.append(path.name)
    for line in run.metrics_file.read_text().split("\n")[:-1]:
        try:
            json.loads(line)
        except ValueError:
            bad.append(f"metrics line {line[:40]!r}")
    for png in run.samples.glob("*.png"):
        try:
            Image.open(png).load()
        except OSError:
            bad.append(png.name)
    for pt in run.checkpoints.glob("*.pt"):
        try:
            checkpoint.load(pt)  # weights_only=True
        except Exception:  # noqa: BLE001 - any failure to load is corruption
            bad.append(pt.name)
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, registry = make_images(root / "images"), Registry(root / "runs")
        run = RunFolder(registry.root / "faults")
        kills = crashed_shown = temps_cleaned = 0
        for i in range(args.kills):
            before = step_of(run)
            proc = trainer(run.path, data if i == 0 else None)
            if i % 4 == 1:  # every fourth kill hits start-up
                time.sleep(rng.uniform(0.05, 1.0))
            else:  # the others land anywhere in the step / write cycle, once training is under way
                deadline = time.monotonic() + 120
                while step_of(run) <= before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(rng.uniform(0.0, 3.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if run.status_file.exists():
                shown = registry.get("faults").state
                crashed_shown += shown in ("crashed", "stopped", "finished", "failed")
            temps_cleaned += len(temp_files(run))
        proc = trainer(run.path, None)  # a last resume, stopped cleanly after a few steps
        deadline = time.monotonic() + 120
        start_step = step_of(run)
        while time.monotonic() < deadline and step_of(run) < start_step + 10:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        steps = [json.loads(line)["step"] for line in run.metrics_file.read_text().split("\n")[:-1]]
        expected = list(range(LOG_EVERY, steps[-1] + 1, LOG_EVERY))
        lost_or_repeated = len(set(expected) ^ set(steps)) + (len(steps) - len(set(steps)))
        status = json.loads(run.status_file.read_text())
        counters = checkpoint.load(run.latest)["counters"]
        print(f"kills {kills}   corrupt files {len(corrupt_files(run))}   leftover temp files {len(temp_files(run))}"
              f"   lost or repeated steps {lost_or_repeated}")
        print(f"  temp files found after kills and removed by the next start: {temps_cleaned}")
        print(f"  registry showed a stopped state after {crashed_shown} of {kills} kills")
        print(f"  final stop: exit {code}, state {status['state']}, step {status['step']} "
              f"(latest.pt at step {counters['step']}), {len(steps)} metric lines up to step {steps[-1]}")


if __name__ == "__main__":
    main()
