"""GANscope's default recipe vs the PyTorch DCGAN tutorial, same data, same training time: KID of each.

Every recipe is trained by core.train (the tutorial as `--recipe tutorial`: its networks,
BCE, Adam 2e-4 / beta1 0.5, batch 128, no augmentation, no EMA) for the same number of
minutes of training steps. KID is measured with the standard FID Inception features
between the training images and the same number of generated images from each model
(G_ema where the recipe has one). An 8x8 grid of each model's samples (the same seeds)
is saved under --grids, so a person can look.

    python bench/quality.py [--minutes 10] [--res 32] [--subset 1000 | --data FOLDER] [--samples 1000]
                            [--parallel 2] [--try NAME="--arch resnet --batch 32 ..."] [--grids DIR]

--try adds a candidate recipe (trainer options on top of the defaults). --parallel N
trains N recipes at a time with one thread each (side by side, so machine noise hits
them alike); otherwise one at a time on every core. --only skips the built-in pair.
"""
import argparse
import copy
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import checkpoint, features  # noqa: E402
from core.data.imageset import load_image_set  # noqa: E402
from core.evaluation import evaluate, metrics  # noqa: E402
from core.grid import make_grid  # noqa: E402
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


def start(options: list[str], data: str, out: Path, args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core.train", "--data", data, "--out", str(out), *options,
           "--res", str(args.res), "--minutes", str(args.minutes), "--seed", str(args.seed),
           "--device", args.device, "--kid-kimg", "0", "--sample-kimg", "1000"]
    if args.parallel > 1:
        cmd += ["--threads", "1"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def train_all(recipes: dict[str, list[str]], data: str, work: Path, args) -> dict[str, dict]:
    """Train every recipe, args.parallel at a time; returns its run folder and counters."""
    runs, queue, running = {}, list(recipes.items()), []
    while queue or running:
        while queue and len(running) < max(1, args.parallel):
            label, options = queue.pop(0)
            out = work / f"recipe-{len(runs)}"
            runs[label] = {"out": out}
            running.append((label, start(options, data, out, args)))
        label, proc = running.pop(0)
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{label}: trainer failed\n{err.decode()[-2000:]}")
        status = json.loads((runs[label]["out"] / "status.json").read_text())
        runs[label].update(kimg=status["kimg"], train_s=status["train_seconds"])
    return runs


def save_grid(run: Path, path: Path) -> None:
    G, _ = checkpoint.load_generator(run / "checkpoints" / "latest.pt")
    fakes, _ = evaluate.fake_images(G, 64, seed=10_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(fakes, columns=8).save(path)


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
    p.add_argument("--data", help="train on this folder of images instead of the emoji")
    p.add_argument("--parallel", type=int, default=1, help="recipes trained at once, one thread each")
    p.add_argument("--grids", type=Path, help="save an 8x8 sample grid per recipe in this folder")
    p.add_argument("--only", action="store_true", help="train the --try candidates only")
    p.add_argument("--samples", type=int, default=1000, help="generated images per KID (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--try", dest="candidates", action="append", default=[], metavar='NAME="OPTIONS"',
                   help="also train a candidate recipe: trainer options on top of the defaults, "
                        "e.g. --try narrow='--channels 32'")
    args = p.parse_args()
    recipes = {} if args.only else dict(RECIPES)
    for candidate in args.candidates:
        name, _, options = candidate.partition("=")
        recipes[name] = shlex.split(options)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        data = args.data or (subset_folder(args.subset, args.seed, work) if args.subset else BUILTIN_EMOJI)
        reals = load_image_set(data, args.res)
        print(f"data: {len(reals.images)} images ({data}) at {args.res} px; {args.minutes:g} min of training "
              f"per recipe{f', {args.parallel} at a time, 1 thread each' if args.parallel > 1 else ''}; "
              f"KID from {args.samples} generated images", flush=True)
        real_feats = evaluate.real_features(reals, "inception")
        runs = train_all(recipes, data, work, args)
        results = {}
        for label, info in runs.items():
            kid, se, mode = kid_of(info["out"], real_feats, args.samples, tutorial=label == TUTORIAL)
            results[label] = kid
            if args.grids:
                save_grid(info["out"], args.grids / f"{label}.png")
            print(f"{label:18s}: KID {kid * 1000:7.2f} ± {se * 1000:.2f} ×10⁻³   "
                  f"({info['kimg']:.1f} kimg in {info['train_s'] / 60:.1f} min of steps; G in {mode} mode)",
                  flush=True)
        for base in ("default", TUTORIAL):
            if base not in results:
                continue
            for label, kid in results.items():
                if label != base and label != TUTORIAL:
                    print(f"ratio {label} / {base}: {kid / max(results[base], 1e-12):.3f}")


if __name__ == "__main__":
    main()
