"""Does the near-copy flag tell a memorised image from a new one? Planted copies of training
images (exact; JPEG quality 70; a 2-pixel shift; brightness +-5 %; all three at once) against
held-out real images of the same kind that the flag must leave alone.

For each feature space and rule it prints the share flagged of each kind, side by side:

    python bench/copy_check.py --data /tmp/cats-dogs --res 64

A good rule flags nearly every planted copy and about its nominal share of held-out images.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import features  # noqa: E402
from core.data import holdout  # noqa: E402
from core.data.imageset import load_image_set  # noqa: E402
from core.evaluation import copying, metrics  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="builtin:emoji")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--holdout", type=float, default=0.1)
    p.add_argument("--copies", type=int, default=200, help="planted copies of each kind")
    p.add_argument("--features", default="efficientnet,pixels")
    args = p.parse_args()

    data = load_image_set(args.data, args.res)
    train, held = holdout.split(data, holdout.pick_held_out(data.names, args.holdout, seed=0))
    rng = np.random.default_rng(0)
    sources = train.images[rng.choice(len(train.images), size=min(args.copies, len(train.images)), replace=False)]
    kinds = {"exact copy": sources, **{name: copying.perturb(sources, [name], rng) for name in copying.PERTURBATIONS},
             "all three": copying.perturb(sources, list(copying.PERTURBATIONS), rng), "held-out": held.images}
    print(f"data: {len(train.images)} training images, {len(held.images)} held out ({args.data} at {args.res} px); "
          f"{len(sources)} planted copies of each kind; share flagged:")
    print(f"{'features / rule':38s}" + "".join(f"{k:>12s}" for k in kinds))
    for name in args.features.split(","):
        embed = (lambda x: copying.pixel_features(x)) if name == "pixels" else (lambda x: features.extract(x, name))
        train_f, held_f = embed(train.images), embed(held.images)
        feats = {k: (held_f if k == "held-out" else embed(v)) for k, v in kinds.items()}
        # today's rule: the 2 % quantile of the training images' own nearest-neighbour distances
        loo = metrics.nearest(train_f, train_f, k=2)[1][:, 1]
        old = float(np.quantile(loo, 0.02))
        rules = {f"{name}: train NN 2% (old)": lambda f: metrics.nearest(train_f, f, k=1)[1][:, 0] < old}
        held_d = metrics.nearest(train_f, held_f, k=1)[1][:, 0]
        rules[f"{name}: distance vs held-out 2%"] = lambda f, t=float(np.quantile(held_d, 0.02)): \
            metrics.nearest(train_f, f, k=1)[1][:, 0] < t
        ref = copying.CopyReference.build(train_f, held_f)
        rules[f"{name}: ratio vs held-out (new)"] = lambda f, ref=ref: ref.flags(f)
        ref_loo = copying.CopyReference.build(train_f, None)
        rules[f"{name}: ratio vs train (LOO)"] = lambda f, ref=ref_loo: ref.flags(f)
        for label, rule in rules.items():
            print(f"{label:38s}" + "".join(f"{rule(f).mean():12.1%}" for f in feats.values()))


if __name__ == "__main__":
    main()
