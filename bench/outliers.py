"""Does outlier ranking find a planted group of images that don't belong?

Plants groups of 1-40 images of one kind (scikit-learn's handwritten digits, or the
built-in emoji) among 300 of the other, ranks them with GANscope's rule
(core.data.curate.outlier_scores on EfficientNet stage features) and with the old rule
(mean distance to the 5 nearest images, EfficientNet-Lite0 embedding), and prints
the share of planted images in the top k (k = group size) and the worst rank.

    python bench/outliers.py [--trials 5]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_outliers import digit_images  # noqa: E402

from core import features  # noqa: E402
from core.data import curate  # noqa: E402
from core.data.builtin import load_emoji  # noqa: E402
from core.evaluation.metrics import squared_distances  # noqa: E402

BULK, GROUPS = 300, (1, 5, 15, 30, 40)


def old_rule(feats: np.ndarray) -> np.ndarray:
    d = np.sqrt(squared_distances(feats, feats))
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :5].mean(axis=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    emoji = load_emoji().images
    pools = {"emoji": emoji[rng.permutation(len(emoji))[:600]], "digits": digit_images(600)}
    feats = {(kind, name): features.extract(images, name) for kind, images in pools.items()
             for name in (curate.OUTLIER_FEATURES, "efficientnet")}
    rules = {"GANscope": (curate.outlier_scores, curate.OUTLIER_FEATURES), "old 5-NN": (old_rule, "efficientnet")}
    print("bulk   planted  group | " + " | ".join(f"{r}: in top k, worst rank" for r in rules))
    for bulk, planted in (("emoji", "digits"), ("digits", "emoji")):
        for g in GROUPS:
            row = []
            for rule, name in rules.values():
                hits, worst = [], 0
                for _ in range(args.trials):
                    b, i = rng.permutation(600)[:BULK], rng.permutation(600)[:g]
                    f = np.concatenate([feats[(bulk, name)][b], feats[(planted, name)][i]])
                    ranks = np.flatnonzero(np.argsort(-rule(f)) >= BULK)
                    hits.append(np.mean(ranks < g))
                    worst = max(worst, ranks.max() + 1)
                row.append(f"{np.mean(hits):6.0%}, {worst:4d} of {BULK + g}")
            print(f"{bulk:6s} {planted:7s} {g:5d} | " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
