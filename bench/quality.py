"""GANscope's default recipe vs the PyTorch DCGAN tutorial, same data, same training time: KID of each.

Both are trained by core.train (the tutorial as `--recipe tutorial`: its networks, BCE,
Adam 2e-4 / beta1 0.5, batch 128, no augmentation, no EMA) for the same number of
minutes of training steps on the same cores. KID is measured with the standard
FID Inception features between the training images and the same number of
generated images from each model (G_ema for the default recipe).

    python bench/quality.py [--minutes 10] [--res 32] [--subset 1000] [--samples 1000]
                            [--try NAME="--arch resnet --batch 32 ..."]

--try adds a candidate recipe (trainer options on top of the defaults), for tuning.
"""
import argparse
import copy
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import checkpoint, evaluate, features, metrics  # noqa: E402
from core.data import load_image_set  # noqa: E402
from core.paths import BUILTIN_EMOJI  # noqa: E402

TUTORIAL = "DCGAN tutorial"
RECIPES = {"default": [], TUTORIAL: ["--recipe", "tutorial"]}


def subset_folder(n: int, seed: int, root: Path) -> str:
    """n emoji drawn at random, written as PNG files: a small data set like a user's."""
    emoji = load_image_set(BUILTIN_EMOJI, 64)
    picks = np.random.default_rng(seed).permutation(len(emoji.images))[:n]
    folder = root / f"emoji-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in picks:
        Image.fromarray(emoji.images[i]).save(folder / f"{emoji.names[i]}.png")
    return str(folder)


def train(options: list[str], data: str, out: Path, args) -> dict:
    cmd = [sys.executable, "-m", "core.train", "--data", data, "--out", str(out), *options,
           "--res", str(args.res), "--minutes", str(args.minutes), "--seed", str(args.seed),
           "--device", args.device, "--kid-kimg", "0"]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status = json.loads((out / "status.json").read_text())
    return {"kimg": status["kimg"], "train_s": status["train_seconds"], "wall_s": time.perf_counter() - started}


def kid_of(run: Path, real_feats: np.ndarray, n: int, tutorial: bool) -> tuple[float, float, str]:
    """KID of the run's generator in eval mode (BatchNorm on running statistics), the way
    GANscope renders. The tutorial draws its samples in train mode (batch statistics), so
    its generator is measured both ways and the better of the two counts, in fairness to it."""
    G, _ = checkpoint.load_generator(run / "checkpoints" / "latest.pt")
    modes = {"eval": G}
    if tutorial:
        modes["batch stats"] = copy.deepcopy(G).train()
    scores = {}
    for mode, model in modes.items():
        fakes, _ = evaluate.fake_images(model, n)
        scores[mode] = metrics.kid(real_feats, features.extract(fakes, "inception"))
    mode = min(scores, key=lambda m: scores[m][0])
    return (*scores[mode], mode)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training time per recipe (default 10)")
    p.add_argument("--res", type=int, default=32, choices=(32, 64, 128))
    p.add_argument("--subset", type=int, default=0, help="train on N random emoji instead of all 1,911")
    p.add_argument("--samples", type=int, default=1000, help="generated images per KID (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--try", dest="candidates", action="append", default=[], metavar='NAME="OPTIONS"',
                   help="also train a candidate recipe: trainer options on top of the defaults, "
                        "e.g. --try narrow='--channels 32'")
    args = p.parse_args()
    recipes = dict(RECIPES)
    for candidate in args.candidates:
        name, _, options = candidate.partition("=")
        recipes[name] = shlex.split(options)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        data = subset_folder(args.subset, args.seed, work) if args.subset else BUILTIN_EMOJI
        reals = load_image_set(data, args.res)
        print(f"data: {len(reals.images)} images ({data}) at {args.res} px; {args.minutes:g} min of training "
              f"per recipe; KID from {args.samples} generated images", flush=True)
        real_feats = evaluate.real_features(reals, "inception")
        results = {}
        for i, (label, options) in enumerate(recipes.items()):
            out = work / f"recipe-{i}"
            info = train(options, data, out, args)
            kid, se, mode = kid_of(out, real_feats, args.samples, tutorial=label == TUTORIAL)
            results[label] = kid
            print(f"{label:18s}: KID {kid * 1000:7.2f} ± {se * 1000:.2f} ×10⁻³   "
                  f"({info['kimg']:.1f} kimg in {info['train_s'] / 60:.1f} min of steps; G in {mode} mode)",
                  flush=True)
        tutorial = max(results[TUTORIAL], 1e-12)
        for label, kid in results.items():
            if label != TUTORIAL:
                print(f"ratio {label} / tutorial: {kid / tutorial:.3f}  (target <= 0.5; lower KID is better)")


if __name__ == "__main__":
    main()
