"""Real vs generated for one checkpoint: sample fakes, compare them with the data set.

Results that take time (quality metrics, the quiz score) are saved in the run
folder under evals/, so they survive restarts and can be compared later.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from core import atomic, checkpoint, features
from core import device as device_mod
from core.data import holdout
from core.data.imageset import ImageSet, load_image_set
from core.evaluation import copying, metrics
from core.explore import latent
from core.runs.runfolder import RunFolder

EVALS = "evals"
COPY_FEATURES = "efficientnet"  # near-copy flag and copying statistics (bench/copy_check.py)


def real_images(run: RunFolder) -> ImageSet:
    """The run's training images, as the trainer saw them (decoded-data cache makes this fast)."""
    return _split(run)[0]


def held_out_images(run: RunFolder) -> ImageSet | None:
    """The images the run kept back from training (--holdout), or None when it kept none."""
    held = _split(run)[1]
    return held if len(held.names) else None


def _split(run: RunFolder) -> tuple[ImageSet, ImageSet]:
    cfg = run.read_config()
    return holdout.split(load_image_set(cfg["data"], cfg["res"], cfg.get("fit", "crop")), run.read_holdout() or [])


def fake_images(G: torch.nn.Module, n: int, seed: int = 0, labels: np.ndarray | None = None,
                psi: float = 1.0, batch: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
    """n generated images from seeds seed..seed+n-1; for conditional models, classes drawn
    from the data set's label frequencies (so a class filter compares like with like).

    Bulk sampling runs in bf16 where the hardware does bf16 natively: ~1.5x faster on
    CPU, and pixels differ from fp32 rendering by 0.35 levels (of 255) on average."""
    device = next(G.parameters()).device
    precision = "bf16" if device_mod.native_bf16(device) else "fp32"
    classes = None
    if G.n_classes:
        rng = np.random.default_rng(seed)
        pool = labels if labels is not None and len(labels) else np.arange(G.n_classes)
        classes = rng.choice(pool, size=n)
    out = []
    for i in range(0, n, batch):
        z = latent.truncate(latent.seed_latents(range(seed + i, seed + min(n, i + batch)), G.z_dim), psi)
        c = None if classes is None else torch.from_numpy(classes[i:i + batch])
        with device_mod.autocast(device, precision):
            out.append(latent.render(G, z, c))
    return np.concatenate(out), classes


def real_features(images: ImageSet, name: str, progress=None) -> np.ndarray:
    """Computed once per data set (and extractor), then read from the disk cache."""
    return features.cached_features(images.key, lambda: images.images, name, progress)


def evaluate(run_dir: Path | str, ckpt_name: str = "latest.pt", n: int = 1000, progress=None) -> dict:
    """FID, KID (± standard error), precision/recall and density/coverage on Inception features.

    progress(fraction, text) is called as the work advances; the fraction counts images
    through Inception, which is nearly all the time, so elapsed / fraction is a fair ETA.
    The first evaluation of a run also scores its references (see reference_scores).
    The result is saved in evals/metrics.json under the checkpoint's name, and returned."""
    report = progress or (lambda fraction, text: None)
    run = RunFolder(run_dir)
    report(0.0, "loading real images")
    reals = real_images(run)
    G, ck = checkpoint.load_generator(run.checkpoints / ckpt_name)
    needs_reference = str(n) not in load_reference(run.path)
    work = Work(report).plan(real=0 if features.is_cached(reals.key, "inception") else len(reals.images),
                             fake=n, untrained=n if needs_reference else 0)
    real = real_features(reals, "inception", work.step("real", "real features"))
    fakes, _ = fake_images(G, n, labels=reals.labels)
    fake = features.extract(fakes, "inception", progress=work.step("fake", "generated features"))
    if needs_reference:
        reference_scores(run.path, ck["model"], real, reals.labels, n,
                         work.step("untrained", "untrained generator (once per run)"))
    report(1.0, "computing metrics")
    result = {"checkpoint": ckpt_name, "step": ck.get("counters", {}).get("step"),
              "kimg": ck.get("counters", {}).get("nimg", 0) / 1000, "n_fake": n, "n_real": len(real),
              **scores(real, fake), "time": time.time()}
    atomic.update_json(run.path / EVALS / "metrics.json", lambda saved: {**saved, ckpt_name: result})
    return result


def copying_report(run_dir: Path | str, ckpt_name: str = "latest.pt", n: int = 1000, progress=None) -> dict:
    """Is the generator copying its training images? The share of generated images flagged as
    near-copies, authenticity and (with held-out images) C_T, on EfficientNet-Lite0 features
    (core.evaluation.copying). Saved in evals/copying.json under the checkpoint's name."""
    report = progress or (lambda fraction, text: None)
    run = RunFolder(run_dir)
    report(0.0, "loading real images")
    train, held = real_images(run), held_out_images(run)
    G, ck = checkpoint.load_generator(run.checkpoints / ckpt_name)
    parts = {"train": train, "held": held}
    work = Work(report).plan(fake=n, **{k: 0 if v is None or features.is_cached(v.key, COPY_FEATURES) else
                                        len(v.names) for k, v in parts.items()})
    real = {k: None if v is None else real_features(v, COPY_FEATURES, work.step(k, f"{k} features"))
            for k, v in parts.items()}
    fakes, _ = fake_images(G, n, labels=train.labels)
    fake = features.extract(fakes, COPY_FEATURES, progress=work.step("fake", "generated features"))
    report(1.0, "comparing")
    flag = copying.CopyReference.build(real["train"], real["held"])
    result = {"checkpoint": ckpt_name, "step": ck.get("counters", {}).get("step"),
              "kimg": ck.get("counters", {}).get("nimg", 0) / 1000, "n_fake": n, "n_train": len(train.names),
              "n_held_out": 0 if held is None else len(held.names), "near_copies": float(flag.flags(fake).mean()),
              "near_copy_reference": flag.reference, "authenticity": flag.neighbours.authenticity(fake),
              "authenticity_held_out": None, "c_t": None, "c_t_cells": 0, "time": time.time()}
    if held is not None:
        ct = copying.c_t(real["train"], real["held"], fake)
        result.update(authenticity_held_out=flag.neighbours.authenticity(real["held"]), c_t=ct["c_t"],
                      c_t_cells=ct["cells"])
    atomic.update_json(run.path / EVALS / "copying.json", lambda saved: {**saved, ckpt_name: result})
    return result


def copy_check(run_dir: Path | str, progress=None):
    """The near-copy flag of a run as a function: uint8 images -> a mask of likely copies."""
    run = RunFolder(run_dir)
    train, held = real_images(run), held_out_images(run)
    flag = copying.CopyReference.build(real_features(train, COPY_FEATURES, progress),
                                       None if held is None else real_features(held, COPY_FEATURES))
    return lambda images: flag.flags(features.extract(images, COPY_FEATURES))


def copying_in_words(r: dict) -> list[str]:
    """copying_report's numbers in plain sentences, each against what new images would score."""
    lines = [f"Near-copies: {r['near_copies']:.1%} of {r['n_fake']} generated images are flagged (new real "
             f"images: about {copying.COPY_QUANTILE:.0%})."]
    auth = f"Authenticity {r['authenticity']:.2f}"
    if r["authenticity_held_out"] is not None:
        held = r["authenticity_held_out"]
        auth += (f"; the held-out images (new to the generator) score {held:.2f}" +
                 (": lower, so more generated images sit right on top of a training image." if
                  r["authenticity"] < held - 0.05 else "."))
    lines.append(auth + " (the share not closer to a training image than its own nearest neighbour is)")
    if r["c_t"] is None:
        lines.append("C_T needs held-out images: train with --holdout (on by default for data sets of "
                     f"{holdout.HOLDOUT_MIN_IMAGES} images or more)." if not r["n_held_out"] else
                     "C_T: too few generated and held-out images fall in the same regions of the data to test.")
    else:
        verdict = ("the generated images are closer to the training images than new images are: it copies" if
                   r["c_t"] < copying.C_T_COPYING else
                   "farther from the training images than new images are: not yet realistic (undertrained)" if
                   r["c_t"] > copying.C_T_UNDERFIT else "as close to the training images as new images are: no sign "
                   "of copying")
        cells = f"{r['c_t_cells']} region{'s' * (r['c_t_cells'] != 1)}"
        lines.append(f"C_T {r['c_t']:.2f} over {cells} of the data ({r['n_held_out']} held-out images): {verdict}.")
    return lines


def load_copying(run_dir: Path | str) -> dict:
    return _load_entries(run_dir, "copying.json", lambda k, e: isinstance(e["checkpoint"], str) and _numbers(
        e, "near_copies", "authenticity", "kimg", "n_fake", "n_held_out", "c_t_cells") and all(
        e[key] is None or _numbers(e, key) for key in ("authenticity_held_out", "c_t")))


def scores(real: np.ndarray, fake: np.ndarray) -> dict:
    kid, kid_se = metrics.kid(real, fake)
    precision, recall = metrics.precision_recall(real, fake)
    density, coverage = metrics.density_coverage(real, fake)
    return {"fid": metrics.fid(real, fake), "kid": kid, "kid_se": kid_se, "precision": precision,
            "recall": recall, "density": density, "coverage": coverage}


class Work:
    """Turns each phase's progress (done, total) into one fraction of all the work."""

    def __init__(self, report):
        self.report, self.start = report, 0.0

    def plan(self, **budgets: float) -> "Work":
        self.total = max(1e-9, sum(budgets.values()))
        self.budgets = budgets
        return self

    def step(self, phase: str, text: str):
        start, budget = self.start, self.budgets[phase]
        self.start += budget

        def progress(done: int, total: int):
            self.report(min((start + budget * done / max(total, 1)) / self.total, 0.99), f"{text} {done}/{total}")
        return progress


# -- what the numbers mean ---------------------------------------------------------

def reference_scores(run_dir: Path | str, model: dict, real: np.ndarray, labels, n: int,
                     progress=None) -> dict:
    """The two ends of the scale for this data set at n generated images, saved once per run:
    the real images against themselves (two random halves: the best a generator can do) and
    the same networks untrained (random weights, seed 0: nothing learned)."""
    from core.networks import build_generator
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = build_generator(model).eval()
    halves = np.random.default_rng(0).permutation(len(real))
    a, b = real[halves[: len(real) // 2]], real[halves[len(real) // 2:]]
    fakes, _ = fake_images(untrained, n, labels=labels)
    fake = features.extract(fakes, "inception", progress=progress)
    entry = {"real_vs_real": {"fid": metrics.fid(a, b), "kid": metrics.kid(a, b)[0]},
             "untrained": {"fid": metrics.fid(real, fake), "kid": metrics.kid(real, fake)[0]}}
    atomic.update_json(Path(run_dir) / EVALS / "reference.json", lambda saved: {**saved, str(n): entry})
    return entry


def _load_entries(run_dir: Path | str, name: str, valid) -> dict:
    """The entries of evals/<name> that pass valid(key, entry); the files are plain JSON a user
    may edit or damage, and a damaged entry must not take the page down."""
    path = Path(run_dir) / EVALS / name
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    def ok(key, entry) -> bool:
        try:
            return bool(valid(key, entry))
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
    return {k: v for k, v in saved.items() if ok(k, v)}


def _numbers(entry: dict, *keys: str) -> bool:
    return all(isinstance(entry[k], (int, float)) and not isinstance(entry[k], bool) for k in keys)


def load_reference(run_dir: Path | str) -> dict:
    return _load_entries(run_dir, "reference.json", lambda k, e: k.isascii() and k.isdecimal() and all(
        _numbers(e[side], "fid", "kid") for side in ("real_vs_real", "untrained")))


def in_context(result: dict, reference: dict, earlier: list[dict]) -> list[str]:
    """Plain sentences that place a checkpoint's FID and KID on its data set's own scale,
    and against the run's earlier checkpoints (evaluated with as many images)."""
    lines = []
    ref = reference.get(str(result["n_fake"]), {})
    best, worst = ref.get("real_vs_real"), ref.get("untrained")
    if best and worst:
        span = worst["kid"] - best["kid"]
        share = (worst["kid"] - result["kid"]) / span if span > 0 else 0.0
        lines.append(f"KID {result['kid'] * 1000:.1f} ×10⁻³ on a scale from {worst['kid'] * 1000:.1f} (these "
                     f"networks untrained) to {best['kid'] * 1000:.1f} (your images against themselves): "
                     f"{max(0.0, min(1.0, share)):.0%} of the way to real.")
        lines.append(f"FID {result['fid']:.1f}: untrained {worst['fid']:.1f}, your images against themselves "
                     f"{best['fid']:.1f} (two halves of the set; FID grows on small sets, so compare like "
                     "with like).")
    same_n = sorted((r for r in earlier if r["n_fake"] == result["n_fake"] and r["checkpoint"] != result["checkpoint"]
                     and r.get("kimg", 0) < result.get("kimg", 0)), key=lambda r: r.get("kimg", 0))
    if same_n:
        prev = same_n[-1]
        change = (result["kid"] - prev["kid"]) / max(abs(prev["kid"]), 1e-9)
        word = "better" if change < -0.05 else "worse" if change > 0.05 else "about the same"
        lines.append(f"Against {prev['checkpoint']} ({prev['kimg']:.0f} kimg): KID {prev['kid'] * 1000:.1f} → "
                     f"{result['kid'] * 1000:.1f} ×10⁻³, {word}.")
    return lines


def load_evaluations(run_dir: Path | str) -> dict:
    return _load_entries(run_dir, "metrics.json", lambda k, e: isinstance(e["checkpoint"], str) and _numbers(
        e, "fid", "kid", "kid_se", "precision", "recall", "density", "coverage", "kimg", "n_fake"))


def record_quiz(run_dir: Path | str, ckpt_name: str, correct: int, total: int) -> dict:
    """Add a finished quiz round to the checkpoint's human score (error rate 0.5 = fooled)."""
    def add(saved: dict) -> dict:
        entry = saved[ckpt_name] if _valid_quiz(ckpt_name, saved.get(ckpt_name)) else {"correct": 0, "total": 0}
        entry = {"correct": entry["correct"] + correct, "total": entry["total"] + total}
        entry["error_rate"] = 1 - entry["correct"] / entry["total"] if entry["total"] else None
        return {**saved, ckpt_name: entry}
    return atomic.update_json(Path(run_dir) / EVALS / "quiz.json", add)[ckpt_name]


def load_quiz(run_dir: Path | str) -> dict:
    return _load_entries(run_dir, "quiz.json", _valid_quiz)


def _valid_quiz(key, entry) -> bool:
    try:
        return _numbers(entry, "correct", "total", "error_rate") and 0 <= entry["correct"] <= entry["total"] > 0
    except (KeyError, TypeError):
        return False
