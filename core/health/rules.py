"""The diagnoses: each a rule over a run's metric lines, status and grid numbers, with its evidence.

A rule returns Findings or nothing. Every threshold is a named constant with where it
comes from; "lately" is the last quarter of the metric lines. D's outputs are the
sigmoid of its logits as metrics.jsonl logs them (d_real, d_fake), r_t is ADA's
E[sign(D(real))] (for r3gan, how often a real beats its paired fake).
"""
import math
from dataclasses import asdict, dataclass, field

import numpy as np

SEVERITIES = ("ok", "info", "warning", "problem")  # from fine to worst

# -- when there is enough to judge
MIN_KIMG = 2.0   # below this, only divergence is judged: every GAN looks odd in its first steps
MIN_ROWS = 8     # metric lines before the curves say anything
LATELY = 0.25    # "lately" = the last quarter of the lines ...
MIN_LATELY = 4   # ... but at least this many
# -- D memorises the data
RT_OVERFIT = 0.9  # ADA steers r_t to 0.6 (Karras et al. 2020); near 1 D is sure of every real image
P_CEILING = 0.95  # adaptive p this close to 1 cannot rise further
GAP_WIDE = 0.5    # D(real) - D(fake): D tells reals from fakes by this margin lately ...
GAP_GROWTH = 0.2  # ... and by this much more than over the first half of the run
# -- divergence
D_FAKE_FLOOR = 0.02    # D(fake) below this (and D(real) above 1 - this): D wins outright; G's gradient fades
D_CHANCE_GAP = 0.02    # D(real) - D(fake) under this with ...
D_CHANCE_RT = 0.2      # ... r_t under this: D tells reals from fakes no better than chance (loss ~ 2 ln 2)
G_RUNAWAY = 3.0        # G's loss lately this many times its median over the run
SPIKE_MADS = 12.0      # a loss this many median absolute deviations off its run's median is a spike
SPIKES_TO_WARN = 3     # spikes lately before they are worth a word
# -- mode collapse, from the grid numbers (core/health/grids.py) as fractions of the reals'.
# Measured on GANscope's emoji runs at 64 px: an untrained G 0.2 in shapes; the small-data
# demo (blobs, but varied) rose to 0.82 in shapes and 0.87 in colours by 64 kimg; a
# projected run that visibly drew two or three colours only was at 0.5-0.64 in colours
# from 8 to 72 kimg while 0.7-0.8 in shapes (ImageNet features hardly see colour).
COLLAPSED = 0.5        # diversity below half the reals' ...
COLLAPSE_DROP = 0.75   # ... having fallen below this fraction of the best grid so far
LOW_VARIETY = 0.7      # still below this after ...
LOW_VARIETY_KIMG = 40  # ... this many kimg: less variety than the data (no fall needed)
TWIN_SHARE = 0.25      # a quarter of the grid has a near-identical twin
# -- stall
STALL_SHARE = 0.33     # the last third of the run ...
STALL_GRIDS = 4        # ... covering at least this many grids (or KID measurements) ...
STALL_GAIN = 0.05      # ... made none of KID, the grid's KID and its diversity 5 % better than before


@dataclass
class Finding:
    kind: str          # overfitting, collapse, divergence, stall, healthy, early
    severity: str      # one of SEVERITIES
    title: str         # one line in plain words
    evidence: str      # the numbers and the steps they cover
    action: str        # one concrete thing to do
    steps: tuple[int, int] | None = None  # the steps in question, to mark on the curves
    rewind: int | None = None  # the snapshot step the action goes back to (--rewind), if any

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Evidence:
    """What the rules read: the metric columns, status.json, config.json and the grid numbers."""
    table: dict[str, np.ndarray]  # metric name -> values per line (NaN where absent)
    status: dict
    config: dict
    grids: list[dict]             # per grid: step, kimg and grids.stats(); oldest first
    real: dict | None             # grids.stats() of the real images
    snapshots: list[int] = field(default_factory=list)  # steps of the run's snapshots (to rewind to)

    def col(self, key: str) -> np.ndarray:
        return self.table.get(key, np.full(len(self.steps), np.nan))

    @property
    def steps(self) -> np.ndarray:
        return self.table.get("step", np.zeros(0))

    @property
    def lately(self) -> slice:
        n = len(self.steps)
        return slice(n - min(n, max(MIN_LATELY, math.ceil(n * LATELY))), n)

    def span(self, part: slice) -> tuple[int, int] | None:
        steps = self.steps[part]
        return (int(steps[0]), int(steps[-1])) if len(steps) else None

    def kimg(self) -> float:
        return float(self.status.get("kimg") or (self.col("kimg")[-1] if len(self.steps) else 0.0))


def _rewind(ev: Evidence, before: int) -> int | None:
    """The newest snapshot from before `before`: where a rewind should go."""
    return max((s for s in ev.snapshots if s < before), default=None)


def _rewind_text(step: int, why: str) -> str:
    return (f"Rewind to the snapshot of step {step}, {why}, with half the learning rates (the Monitor's button, "
            f"or `python -m core.train --out RUN --resume --rewind {step} --lr-scale 0.5`).")


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def _steps_text(span: tuple[int, int] | None) -> str:
    return f"steps {span[0]}-{span[1]}" if span else "so far"


def overfitting(ev: Evidence) -> list[Finding]:
    lately, found = ev.lately, []
    rt, p = _mean(ev.col("rt")[lately]), _mean(ev.col("aug_p")[lately])
    gap = ev.col("d_real") - ev.col("d_fake")
    first_half = slice(0, max(1, len(gap) // 2))
    gap_now, gap_then = _mean(gap[lately]), _mean(gap[first_half])
    widening = gap_now > GAP_WIDE and gap_now - gap_then > GAP_GROWTH
    aug = ev.config.get("aug")
    where = _steps_text(ev.span(lately))
    target = ev.config.get("ada_target", 0.6)
    if aug == "ada" and rt > target and p >= P_CEILING:
        found.append(Finding(
            "overfitting", "problem", "D is memorising the training images, even with the strongest augmentation",
            f"r_t {rt:.2f}, above the {target:g} that adaptive augmentation aims at, with augmentation p {p:.2f}, "
            f"at its ceiling, over {where}; D(real) - D(fake) {gap_now:.2f}.",
            "More training will make it worse: add images (or fewer, better ones), or keep the snapshot "
            "from before these steps and stop here.", ev.span(lately)))
    elif aug != "ada" and (rt > RT_OVERFIT or widening):
        found.append(Finding(
            "overfitting", "warning", "D is starting to memorise the training images",
            f"r_t {rt:.2f} (near 1: D is sure of every real image) over {where}; D(real) - D(fake) "
            f"{gap_now:.2f}, against {gap_then:.2f} in the first half of the run.",
            "Train a new run with adaptive augmentation (--aug ada, or the small-data recipe), or add images.",
            ev.span(lately)))
    return found  # (with adaptive augmentation below its ceiling, a confident D is what raises p)


def _spikes(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    if ok.sum() < MIN_ROWS:
        return np.zeros(len(values), bool)
    median = np.median(values[ok])
    mad = np.median(np.abs(values[ok] - median)) or 1e-12
    return ok & (np.abs(values - median) > SPIKE_MADS * mad)


def divergence(ev: Evidence) -> list[Finding]:
    found = []
    recoveries = int(ev.status.get("nan_recoveries") or 0)
    message = str(ev.status.get("message", ""))
    if ev.status.get("state") == "failed" and "NaN" in message:
        found.append(Finding("divergence", "problem", "Training diverged: the losses became NaN and it gave up",
                             message, "Start again with lower learning rates (half: --lr-g and --lr-d 1e-4) or a "
                             "recipe with R1 (small-data).", ev.span(slice(None))))
    elif recoveries:
        found.append(Finding(
            "divergence", "warning", f"The losses blew up {recoveries} time{'s' * (recoveries > 1)}; the trainer "
            "went back to its last checkpoint each time",
            f"{recoveries} NaN recovery(ies); learning rates now x{ev.status.get('lr_scale', 0.5 ** recoveries):g}.",
            "It recovered; if it happens again, start a new run with lower learning rates (--lr-g, --lr-d 1e-4).",
            None))
    if len(ev.steps) < MIN_ROWS:
        return found
    lately = ev.lately
    d_real, d_fake, loss_g = _mean(ev.col("d_real")[lately]), _mean(ev.col("d_fake")[lately]), ev.col("loss_g")
    runaway = _mean(loss_g[lately]) > G_RUNAWAY * max(float(np.nanmedian(loss_g)), 1e-6)
    where = _steps_text(ev.span(lately))
    if d_fake < D_FAKE_FLOOR and (runaway or d_real > 1 - D_FAKE_FLOOR):
        snapshot = _rewind(ev, ev.span(lately)[0])
        found.append(Finding(
            "divergence", "problem", "D rejects every generated image: G no longer learns",
            f"D(real) {d_real:.3f}, D(fake) {d_fake:.3f} and G's loss {_mean(loss_g[lately]):.2f} (its median "
            f"over the run: {np.nanmedian(loss_g):.2f}) over {where}.",
            _rewind_text(snapshot, "from before these steps") if snapshot is not None else
            "Resuming will not fix it: start a new run with lower learning rates (--lr-g, --lr-d 1e-4), R1 "
            "(the small-data recipe) or more augmentation.", ev.span(lately), snapshot))
    elif abs(d_real - d_fake) < D_CHANCE_GAP and _mean(ev.col("rt")[lately]) < D_CHANCE_RT:
        found.append(Finding(
            "divergence", "warning", "D no longer tells real images from generated ones",
            f"D(real) {d_real:.3f} against D(fake) {d_fake:.3f}, r_t {_mean(ev.col('rt')[lately]):.2f}, "
            f"over {where}: D guesses, so G learns nothing from it.",
            "If the grids are not improving, start a new run with lower learning rates (--lr-g, --lr-d 1e-4).",
            ev.span(lately)))
    spikes = _spikes(ev.col("loss_d")) | _spikes(loss_g)
    recent = np.flatnonzero(spikes[lately]) + lately.start
    if len(recent) >= SPIKES_TO_WARN:
        found.append(Finding(
            "divergence", "warning", "The losses jump about",
            f"{len(recent)} lines with a loss more than {SPIKE_MADS:g} median deviations off its usual value, "
            f"at steps {', '.join(str(int(ev.steps[i])) for i in recent[:5])}{'…' * (len(recent) > 5)}.",
            "If the grids get worse around these steps, resume from an earlier snapshot in a new run with lower "
            "learning rates.", (int(ev.steps[recent[0]]), int(ev.steps[recent[-1]]))))
    return found


DIVERSITY = {"colours": "colours", "shapes": "shapes (in ImageNet features)"}


def _diversity(ev: Evidence, measure: str) -> np.ndarray:
    """A grid measure per grid, as a fraction of the real images' (capped at 1: more is not better)."""
    base = (ev.real or {}).get(measure) or 0
    values = np.array([g.get(measure, math.nan) for g in ev.grids], dtype=float)
    return np.minimum(values / base, 1.0) if base > 0 else np.full(len(values), math.nan)


def collapse(ev: Evidence) -> list[Finding]:
    if not ev.real or len(ev.grids) < 2:
        return []
    last = ev.grids[-1]
    for measure, what in DIVERSITY.items():
        ratio = _diversity(ev, measure)
        if not np.isfinite(ratio).all():
            continue
        best, now = int(np.argmax(ratio)), ratio[-1]
        if now < COLLAPSED and now < COLLAPSE_DROP * ratio[best]:
            start = next(g for g, r in zip(ev.grids[best + 1:], ratio[best + 1:]) if r < COLLAPSE_DROP * ratio[best])
            snapshot = _rewind(ev, start["step"])
            return [Finding(
                "collapse", "problem", f"Mode collapse: the samples are losing their variety of {what}",
                f"The fixed-latent grid's variety of {what} fell from {ratio[best]:.2f} of the real images' at step "
                f"{ev.grids[best]['step']} to {now:.2f} at step {last['step']}; it started falling at step "
                f"{start['step']}.",
                _rewind_text(snapshot, "from before the fall") if snapshot is not None else
                f"No snapshot from before step {start['step']} to go back to (--snapshot-kimg sets how often they are "
                "kept): train a new run with lower learning rates (--lr-g, --lr-d 1e-4) or a recipe with R1 "
                "(small-data).", (int(start["step"]), int(last["step"])), snapshot)]
        if now < LOW_VARIETY and ev.kimg() >= LOW_VARIETY_KIMG:
            return [Finding(
                "collapse", "warning", f"The samples have less variety of {what} than the data",
                f"The latest grid (step {last['step']}, {ev.kimg():.0f} kimg) has {now:.2f} of the real images' "
                f"variety of {what}; its best so far was {ratio[best]:.2f}.",
                "Look at the grid: if most images share a few shapes or colours, this is partial mode collapse. "
                "Try the small-data recipe or a lower G learning rate in a new run.", (int(last["step"]),) * 2)]
    twins = last.get("twins")
    if twins is not None and twins >= TWIN_SHARE and ev.kimg() >= MIN_KIMG:
        return [Finding(
            "collapse", "warning", "Many samples are near-copies of each other",
            f"{twins:.0%} of the latest grid's 64 images (step {last['step']}) have a near-identical twin.",
            "Watch the next grids: if the share grows, it is collapsing; lower the learning rates in a new run.",
            (int(last["step"]),) * 2)]
    return []


def stall(ev: Evidence) -> list[Finding]:
    """Nothing got better lately: not KID (when the run measures it), not the grid's KID, not its variety."""
    series = {"KID": [(int(s), float(k)) for s, k in zip(ev.steps, ev.col("kid")) if np.isfinite(k)],
              "the grids' KID against the real images": [(g["step"], g["kid64"]) for g in ev.grids if "kid64" in g]}
    for measure, what in DIVERSITY.items():  # more variety is better: count it as less of what is missing
        series[f"their variety of {what}"] = [(g["step"], 1 - r) for g, r in zip(ev.grids, _diversity(ev, measure))]
    judged = {name: s for name, s in series.items() if len(s) >= 2 * STALL_GRIDS}
    if not judged:
        return []
    evidence, span = [], None
    for name, s in judged.items():
        cut = min(len(s) - STALL_GRIDS, int(len(s) * (1 - STALL_SHARE)))
        before, after = min(v for _, v in s[:cut]), min(v for _, v in s[cut:])
        if after <= before - STALL_GAIN * abs(before):
            return []  # this one still improves
        span = span or (s[cut][0], s[-1][0])
        evidence.append(f"{name}: best {after:.3g} lately against {before:.3g} before")
    return [Finding(
        "stall", "warning", "It has stopped improving",
        f"From step {span[0]} to {span[1]}, nothing got {STALL_GAIN:.0%} better than before ({'; '.join(evidence)}; "
        "lower is better).",
        "More of the same is unlikely to help: stop here and keep the best snapshot, or try a new run with lower "
        "learning rates, another recipe, or more (curated) images.", span)]


def healthy(ev: Evidence) -> Finding:
    """Said only when no rule found anything: what was checked, in numbers."""
    lately = ev.lately
    parts = []
    rt, gap = _mean(ev.col("rt")[lately]), _mean(ev.col("d_real")[lately] - ev.col("d_fake")[lately])
    p = _mean(ev.col("aug_p")[lately])
    if math.isfinite(rt):
        parts.append(f"r_t {rt:.2f}, augmentation p {p:.2f}, D(real) - D(fake) {gap:.2f} over "
                     f"{_steps_text(ev.span(lately))}")
    if ev.real and ev.grids:
        last = ev.grids[-1]
        parts.append(f"the latest grid (step {last['step']}) has {last.get('shapes', 0) / ev.real['shapes']:.2f} of "
                     f"the real images' variety of shapes and {last.get('colours', 0) / ev.real['colours']:.2f} of "
                     "their colours")
    kid = ev.col("kid")
    if np.isfinite(kid).sum() >= 2:
        k = kid[np.isfinite(kid)]
        parts.append(f"KID {k[0]:.4g} -> {k[-1]:.4g}")
    return Finding("healthy", "ok", "Training looks healthy", "; ".join(parts) + ".",
                   "Keep going: the sample grids should keep improving.", None)


RULES = (divergence, overfitting, collapse, stall)


def diagnose(ev: Evidence) -> list[Finding]:
    """Every finding, worst first; "healthy" when there is enough to judge and nothing is wrong."""
    if ev.kimg() < MIN_KIMG or len(ev.steps) < MIN_ROWS:
        early = divergence(ev)  # the only thing worth saying this early
        return early or [Finding("early", "info", "Too early to tell",
                                 f"{ev.kimg():.1f} kimg, {len(ev.steps)} metric lines so far.",
                                 f"Wait for {MIN_KIMG:g} kimg and a few sample grids.", None)]
    found = [f for rule in RULES for f in rule(ev)]
    found.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return found or [healthy(ev)]


def worst(findings: list[Finding]) -> str:
    return max((f.severity for f in findings), key=SEVERITIES.index, default="info")
