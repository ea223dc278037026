"""Time to draw the Map page's data: 2,000 real + 2,000 generated images, cold and warm.

cold = embed the real images + fit the UMAP map on them (done once per data set;
       both are cached by the app) + the warm part.
warm = what a new checkpoint costs once the real map is cached: generate the
       fakes, embed them (EfficientNet-Lite0) and project them onto the map.

    python bench/map_speed.py [--checkpoint checkpoints/demo-emoji/checkpoints/latest.pt] [--n 2000]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoint, features  # noqa: E402
from core.data.imageset import load_image_set  # noqa: E402
from core.evaluation import embedmap, evaluate  # noqa: E402
from core.paths import BUILTIN_EMOJI, CHECKPOINTS_DIR, DEMO_RUN  # noqa: E402


def timed(label, fn, results):
    start = time.perf_counter()
    out = fn()
    results[label] = time.perf_counter() - start
    print(f"  {label:34s} {results[label]:6.2f} s")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINTS_DIR / DEMO_RUN / "checkpoints" / "latest.pt")
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    G, ck = checkpoint.load_generator(args.checkpoint)
    data = load_image_set(BUILTIN_EMOJI, ck["model"]["res"])
    reals = data.images[np.random.default_rng(0).permutation(len(data.images))[:args.n]]
    print(f"{len(reals)} real + {args.n} generated images, {ck['model']['res']} px")
    cold, warm = {}, {}
    print("cold (once per data set):")
    real_feats = timed("embed real images", lambda: features.extract(reals, "efficientnet"), cold)
    rmap = timed("fit UMAP on real (incl. import)", lambda: embedmap.fit_real_map(real_feats, "umap"), cold)
    print("warm (real map cached):")
    fakes, _ = timed("generate", lambda: evaluate.fake_images(G, args.n), warm)
    fake_feats = timed("embed generated images", lambda: features.extract(fakes, "efficientnet"), warm)
    timed("project onto the map", lambda: embedmap.project(rmap, fake_feats), warm)
    print(f"cold total: {sum(cold.values()) + sum(warm.values()):6.2f} s")
    print(f"warm total: {sum(warm.values()):6.2f} s   (target <= 5 s)")


if __name__ == "__main__":
    main()
