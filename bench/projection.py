"""How close does projection get, and how fast? For real images, the loss (pixel MSE +
perceptual) of the projection against the best of 64 random seeds (its starting point), and
the seconds per projection, side by side on the same images.

    python bench/projection.py --run checkpoints/demo-emoji --images 20
    python bench/projection.py --run RUN --data /tmp/cats-dogs    # pictures from elsewhere

With a run that kept images back (holdout.json) it projects those, which the generator never
saw; otherwise the given data (or the run's own) at the images the held-out split would pick.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import checkpoint  # noqa: E402
from core.data import holdout  # noqa: E402
from core.data.imageset import load_image_set  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.explore import project  # noqa: E402
from core.runs.runfolder import RunFolder  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=REPO / "checkpoints" / "demo-emoji")
    p.add_argument("--data", help="project these pictures instead of the run's held-out images")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--steps", type=int, default=project.STEPS)
    args = p.parse_args()
    run = RunFolder(args.run)
    G, _ = checkpoint.load_generator(run.latest)
    if args.data:
        data, what = load_image_set(args.data, G.res), args.data
    else:
        data, what = evaluate.held_out_images(run), "the run's held-out images"
        if data is None:
            full = evaluate.real_images(run)
            data = holdout.split(full, holdout.pick_held_out(full.names, 0.1, seed=0))[1]
            what = "the run's own images (it kept none back: not unseen)"
    pick = np.random.default_rng(0).choice(len(data.images), size=min(args.images, len(data.images)), replace=False)
    perceptual = project.Perceptual()
    rows = []
    for i in pick:
        started = time.monotonic()
        result = project.project(G, data.images[i], steps=args.steps, perceptual=perceptual)
        rows.append((result.losses[0]["loss"], result.losses[-1]["loss"], result.losses[-1]["pixel"],
                     time.monotonic() - started))
    start, final, pixel, seconds = map(np.array, zip(*rows))
    print(f"{len(rows)} pictures from {what}, {G.res} px, {args.steps} steps, {torch.get_num_threads()} threads")
    print(f"loss, best of {project.STARTS} random seeds: {start.mean():.4f} (median {np.median(start):.4f})")
    print(f"loss, projected:                   {final.mean():.4f} (median {np.median(final):.4f}); "
          f"ratio {np.mean(final / start):.3f}; pixel MSE {pixel.mean():.4f}")
    print(f"seconds per projection: {seconds.mean():.1f} (max {seconds.max():.1f})")


if __name__ == "__main__":
    main()
