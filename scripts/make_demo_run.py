"""Build the shipped demo run checkpoints/demo-emoji from a trainer run.

Trains on the built-in emoji set with `python -m core.train` (or takes a
finished run with --from-run) and keeps what exploring needs, small enough to
commit: config, status, metrics, health.json, holdout.json, samples, the fixed latents, the log, and
checkpoints/latest.pt reduced to the EMA generator (no D, no optimisers).

    python scripts/make_demo_run.py --minutes 60            # train, then export
    python scripts/make_demo_run.py --from-run /tmp/my-run  # export only
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import checkpoint  # noqa: E402
from core.paths import CHECKPOINTS_DIR, DEMO_RUN  # noqa: E402
from core.runs.runfolder import RunFolder  # noqa: E402

DEMO = CHECKPOINTS_DIR / DEMO_RUN
MAX_BYTES = 20 * 2**20
MAX_GRIDS = 24  # sample grids kept for "Watch it learn"


def train(out: Path, minutes: float, res: int, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "core.train", "--out", str(out), "--res", str(res),
           "--minutes", str(minutes), "--sample-kimg", "4", "--snapshot-kimg", "1000", *extra]
    subprocess.run(cmd, cwd=REPO, check=True)


def export(src: Path, dest: Path) -> None:
    run, demo = RunFolder(src), RunFolder(dest)
    status = run.read_status()
    if status["state"] not in ("finished", "stopped"):
        sys.exit(f"error: {src} is {status['state']}; export a finished or stopped run")
    if dest.exists():
        shutil.rmtree(dest)
    demo.create()
    for name in ("config_file", "metrics_file", "latents_file", "log_file"):
        shutil.copy2(getattr(run, name), getattr(demo, name))
    for kept in (run.health_file, run.holdout_file):  # grid numbers (the findings use them); held-out images
        if kept.exists():
            shutil.copy2(kept, demo.path / kept.name)
    shutil.copy2(run.reals, demo.reals)
    grids = sorted(run.samples.glob("step-*.png"))
    keep = {grids[round(i * (len(grids) - 1) / (MAX_GRIDS - 1))] for i in range(MAX_GRIDS)} if grids else set()
    for png in keep:  # evenly spaced, first and last included
        shutil.copy2(png, demo.samples / png.name)
    checkpoint.export_generator(run.latest, demo.latest, half=True)  # fp16 weights: half the repo size
    # The shipped run is finished and owned by no process.
    shutil.copy2(run.status_file, demo.status_file)
    demo.mark("finished", "demo run shipped with GANscope (generator only)", pid=None)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"demo run written to {dest}: {size / 2**20:.1f} MiB")
    if size > MAX_BYTES:
        sys.exit(f"error: the demo run is {size / 2**20:.1f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB budget")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from-run", type=Path, help="export this finished run instead of training")
    p.add_argument("--minutes", type=float, default=60, help="training time when training here")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--out", type=Path, default=DEMO)
    args, extra = p.parse_known_args()
    if args.from_run:
        export(args.from_run, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train(run, args.minutes, args.res, extra)
        export(run, args.out)


if __name__ == "__main__":
    main()
