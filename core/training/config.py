"""Training settings: every option of a run, its default and its meaning, in one place.

TrainConfig is the only place a default is written, with one line of help per field.
A recipe names values for some fields; `resolve` fills a new run's settings from what
the user typed, then the recipe, then the networks' own sizes, then TrainConfig.
The command line (`build_parser`), the New-run form and Home's one-click run all read
from here, and `problems` is the one rulebook for what a run may ask for.

Every option is None on the command line unless typed, so that we can tell what the
user asked for from what a recipe fills in. That matters on --resume, where the saved
config wins and a conflicting option is an error, not a surprise.

This module imports no torch: the trainer checks its options and claims its run folder
before paying for that import.
"""
import argparse
from dataclasses import asdict, dataclass, field, fields

from core.data.imageset import FITS, manifest_fit
from core.paths import BUILTIN_EMOJI

# The option space. The networks, losses and augmentations are built from these names.
ARCHS = ("dcgan", "resnet", "fastgan")               # generators
DISCS = ("dcgan", "resnet", "projected", "fastgan")  # discriminators
OWN_DISC = {"fastgan": "projected"}                  # a generator's usual D (else its namesake)
LOSSES = ("logistic", "hinge", "r3gan")
AUG_MODES = ("ada", "fixed", "none")
AUG_OPS = ("color", "translation", "cutout")
RESOLUTIONS = (32, 64, 128)
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Training recipes. `tutorial` is the PyTorch DCGAN tutorial as it is: BCE (= the
# non-saturating logistic loss), Adam(2e-4, 0.5), batch 128, no R1, no EMA, no
# augmentation. `small-data` trains the same networks the way small data sets need:
# adaptive augmentation, lazy R1, an EMA of G, Adam(2e-4, (0, 0.99)) and batch 64.
# `projected` (the default at every size) won bench/quality.py on photos at 32 and 64 px
# and on the emoji at 64 px (README).
RECIPES = {
    # Projected GAN's published recipe (Sauer et al. 2021): a FastGAN-lite G, the projected D,
    # hinge loss, DiffAugment on every image D sees, Adam 2e-4 (0, 0.99), an EMA of G with
    # half-life batch * 10 / 32 kimg, no R1. Batch 16, not 64: a CPU goes through images at the
    # same rate either way, and in a CPU budget the steps are what is scarce (FastGAN itself
    # trains with batch 8). On the emoji, 10 minutes each: KID 151 at 16 against 171 at 32 and
    # 64 (x10^-3), and the only one of the three with white backgrounds.
    "projected": dict(arch="fastgan", disc="projected", loss="hinge", batch=16, lr_g=2e-4, lr_d=2e-4,
                      beta1=0.0, beta2=0.99, r1_gamma=0.0, ema_kimg=5.0, aug="fixed"),
    "small-data": dict(arch="dcgan", disc="dcgan", loss="logistic", batch=64, lr_g=2e-4, lr_d=2e-4, beta1=0.0,
                       beta2=0.99, r1_gamma=1.0, ema_kimg=10.0, aug="ada"),
    # R3GAN's loss (Huang et al. 2024): relativistic pairing with R1 and R2, on the tutorial's
    # networks with the small-data recipe's augmentation and EMA.
    "r3gan": dict(arch="dcgan", disc="dcgan", loss="r3gan", batch=64, lr_g=2e-4, lr_d=2e-4, beta1=0.0,
                  beta2=0.99, r1_gamma=1.0, ema_kimg=10.0, aug="ada"),
    "tutorial": dict(arch="dcgan", disc="dcgan", loss="logistic", batch=128, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
                     beta2=0.999, r1_gamma=0.0, ema_kimg=0.0, aug="none"),
}
# One default at every size (bench/quality.py, README). At 64 px projected wins everywhere
# measured (KID 0.29-0.59x small-data's). At 32 px, 10 minutes each, it wins on photos (CIFAR-10
# cats: 76-81 against small-data's 250) and loses on the flat emoji (121 against 99): our users
# bring photos. 128 px follows: the bigger the image, the more the pretrained features see.
DEFAULT_RECIPE = "projected"
RECIPE_HELP = {
    "projected": "a FastGAN-lite G against frozen ImageNet features (Projected GAN)",
    "small-data": "the tutorial's networks with adaptive augmentation, R1 and an EMA of G; at 32 px the "
                  "better choice for drawings and icons",
    "r3gan": "the small-data recipe with R3GAN's relativistic loss and R1 + R2",
    "tutorial": "the PyTorch DCGAN tutorial as it is, as a baseline",
}
# The projected D brings smaller images up to this size (bilinear) before its frozen
# ImageNet network: a 32 px image leaves that network 1-8 px maps, too little to see. On the
# emoji at 32 px, 10 minutes each, it lowered projected's KID from 0.72x the tutorial's to
# 0.50x, although each step costs what a 64 px one does (bench/quality.py, README).
FEATURE_MIN_RES = 64
# Network sizes per generator: dcgan's are the tutorial's ngf/ndf and nz; fastgan is 1/8 of
# the published width (README: "Changed for a CPU").
ARCH_SIZES = {"dcgan": dict(channels=64, z_dim=100), "resnet": dict(channels=16, z_dim=128),
              "fastgan": dict(channels=16, z_dim=256)}
# Where p starts (ada) or stays (fixed) unless --aug-p says otherwise: Projected GANs apply
# DiffAugment to every image D sees; ADA starts from none and adapts.
AUG_P = {"ada": 0.0, "fixed": 1.0, "none": 0.0}

# Limits on what a run may ask for. A week of training or 100,000 kimg (4x StyleGAN2's
# longest FFHQ run) is more than anyone means.
MAX_SEED = 2**32 - 1
BATCH_RANGE = (2, 4096)
# Network sizes: 8x the widest default and 8x StyleGAN's latent size; a shared checkpoint
# whose spec asks for more is refused before anything is allocated.
CHANNELS_RANGE = (4, 512)
MAX_Z_DIM = 4096
MAX_CLASSES = 10_000
MAX_KIMG = 100_000
MAX_MINUTES = 7 * 24 * 60
MAX_HOLDOUT = 0.5  # keeping back more than half would starve training

DEFAULT_KIMG = 100.0  # a run's length when neither --kimg nor --minutes is given

# Settings that may change when a run is resumed (how long, and where it runs).
RESUMABLE_OVERRIDES = {"kimg", "minutes", "device", "threads", "precision", "compile", "device_lock", "kid_kimg",
                       "kid_images", "keep_snapshots", "health",
                       "tensorboard"}


def option(default, help: str, **cli):
    """A TrainConfig field: its default, its help line and how the command line takes it."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    # -- what to learn from
    data: str = option(BUILTIN_EMOJI, "a folder or .zip of images, a data set version "
                       "(data/sets/NAME/versions/vN.json; its crop mode becomes the default --fit), or "
                       f"{BUILTIN_EMOJI}")
    out: str = option("", "the run folder to create (or continue with --resume)", required=True)
    res: int = option(64, "image size in pixels", type=int, choices=RESOLUTIONS)
    fit: str = option("crop", "how images are made square: fill and centre-crop, pad with white, or squash",
                      choices=FITS)
    cond: bool = option(False, "class-conditional model; needs labels (subfolders or the emoji categories)",
                        action=argparse.BooleanOptionalAction)
    holdout: float = option(0.1, "keep back this share of the images from training, so that evaluation has "
                            "images the generator never saw (the copying test); only for data sets of 200 images "
                            "or more, 0 = off", type=float)
    # -- how to train: None = the recipe's (RECIPES) or, for sizes, the generator's (ARCH_SIZES)
    recipe: str = option(DEFAULT_RECIPE, "; ".join(f"{k}: {v}" for k, v in RECIPE_HELP.items()),
                         choices=tuple(RECIPES))
    arch: str = option(None, "generator: dcgan (the tutorial's), resnet (residual, no BatchNorm) or fastgan "
                       "(FastGAN-lite: GLU up blocks, skip-layer excitation)", choices=ARCHS)
    disc: str = option(None, "discriminator: dcgan, resnet, projected (frozen EfficientNet-Lite0 features, random "
                       "projections, trained heads per scale) or fastgan (FastGAN's, with reconstruction "
                       "decoders; needs --loss hinge); other generators than the recipe's bring their own",
                       choices=DISCS)
    feature_res: int = option(None, "projected D: the size images are resized to for its frozen feature network "
                              f"(default: the image size, at least {FEATURE_MIN_RES})", type=int,
                              choices=RESOLUTIONS)
    loss: str = option(None, "logistic (non-saturating, + R1), hinge, or r3gan (relativistic pairing + R1 + R2)",
                       choices=LOSSES)
    channels: int = option(None, "network width: dcgan = the tutorial's ngf/ndf, resnet = feature maps at 64 px "
                           "(doubling per halving, max 256), fastgan = a unit (x16 at 4 px ... x2 at 64 px)", type=int)
    z_dim: int = option(None, "latent size", type=int)
    batch: int = option(None, "batch size (over all processes)", type=int)
    lr_g: float = option(None, "generator learning rate", type=float)
    lr_d: float = option(None, "discriminator learning rate", type=float)
    beta1: float = option(None, "Adam beta1", type=float)
    beta2: float = option(None, "Adam beta2", type=float)
    r1_gamma: float = option(None, "gradient penalty weight (R1; R1 and R2 for r3gan), 0 = off", type=float)
    r1_every: int = option(16, "apply it every N steps (lazy regularisation)", type=int)
    ema_kimg: float = option(None, "half-life of the generator EMA in kimg, 0 = off", type=float)
    ema_rampup: float = option(0.05, "early on, cap the EMA half-life at this fraction of the images seen so "
                               "far, 0 = off", type=float)
    aug: str = option(None, "differentiable augmentation (DiffAugment): adaptive p (ADA), fixed p, or none",
                      choices=AUG_MODES)
    aug_p: float = option(None, "initial (ada) or constant (fixed) augmentation probability (default: "
                          f"ada {AUG_P['ada']:g}, fixed {AUG_P['fixed']:g})", type=float)
    aug_ops: str = option(",".join(AUG_OPS), "comma-separated augmentations")
    ada_target: float = option(0.6, "target r_t = E[sign(D(real))] for adaptive p", type=float)
    ada_kimg: float = option(100.0, "adaptive p can move from 0 to 1 in this many kimg", type=float)
    # -- how long, and where
    kimg: float = option(None, "train until this many thousand real images were shown to D "
                         f"(default: {DEFAULT_KIMG:g})",
                         type=float, group="length")
    minutes: float = option(None, "train for this many minutes of training time (summed over resumes) instead",
                            type=float, group="length")
    seed: int = option(0, "random seed", type=int)
    device: str = option("auto", "auto = cuda > mps > cpu", choices=DEVICES)
    precision: str = option("auto", "auto = bf16 autocast where the hardware computes bf16 natively (CUDA, CPUs "
                            "with AVX512-BF16 or AMX), else fp32", choices=PRECISIONS)
    compile: bool = option(False, "torch.compile G and D: faster steps on a GPU after a minute or two of "
                           "compiling; R1 steps stay eager (no double backward)", action=argparse.BooleanOptionalAction)
    threads: int = option(None, "CPU threads for torch (default: all cores)", type=int)
    device_lock: str = option("auto", "wait (state 'queued') until no other GANscope run uses the device; "
                              "auto = on for GPUs", choices=("auto", "on", "off"))
    # -- what the run writes
    log_every: int = option(20, "write a metrics line every N steps", type=int)
    sample_kimg: float = option(4.0, "save a sample grid every N kimg", type=float)
    snapshot_kimg: float = option(50.0, "keep a full checkpoint snapshot every N kimg", type=float)
    keep_snapshots: int = option(5, "keep the newest N snapshots, deleting older ones except those the health check "
                                 "may advise going back to (0 = keep all)", type=int)
    latest_minutes: float = option(1.0, "refresh checkpoints/latest.pt at most every N minutes, and so that "
                                   "refreshing takes at most 1/20 of the time (0 = at every metrics line)", type=float)
    kid_kimg: float = option(None, "compute KID (Inception features, vs the real images) every N kimg and log "
                             "it; 0 = off (default: 50 on a GPU, off on a CPU, where Inception is slow)", type=float)
    kid_images: int = option(1000, "generated images per KID measurement", type=int)
    tensorboard: bool = option(False, "also write TensorBoard event files (the metrics and every sample grid) to "
                               "RUN/tensorboard/; needs the tensorboard package", action=argparse.BooleanOptionalAction)
    health: bool = option(True, "measure every sample grid against the real images for the health check "
                          "(health.json, python -m core.health; about 0.3 s per 64 px grid on a CPU)",
                          action=argparse.BooleanOptionalAction)
    inject_nan: str = option(None, "testing aid: poison the weights after STEP (TIMES times, default 1) to "
                             "exercise NaN recovery", metavar="STEP[:TIMES]")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A saved config; settings older runs did not save take today's defaults."""
        values = {**DEFAULTS, **{k: v for k, v in d.items() if k in DEFAULTS}}
        values["disc"] = values["disc"] or own_discriminator(values["arch"])  # "" once meant the arch's own
        values["loss"] = values["loss"] or "logistic"
        values["holdout"] = d.get("holdout", 0.0)  # runs from before --holdout trained on every image
        values["feature_res"] = d.get("feature_res") or values["res"]  # before --feature-res: the image size
        return cls(**values)


DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
HELP = {f.name: f.metadata["help"] for f in fields(TrainConfig)}  # for the command line and the form


def preset(recipe: str = DEFAULT_RECIPE, arch: str | None = None) -> dict:
    """The settings a recipe gives, on its own networks or on `arch`."""
    values = dict(RECIPES[recipe])
    arch = arch or values["arch"]
    if arch != values["arch"]:
        values["disc"] = own_discriminator(arch)  # other networks: their own D, not the recipe's
    return {**values, **ARCH_SIZES[arch], "arch": arch, "recipe": recipe, "aug_p": AUG_P[values["aug"]]}


def own_discriminator(arch: str) -> str:
    return OWN_DISC.get(arch, arch)


def resolve(given: dict) -> TrainConfig:
    """A new run's settings: what was given, then the recipe's, then the defaults; checked."""
    cfg = resolve_unchecked(given)
    check(cfg)
    return cfg


def resolve_unchecked(given: dict) -> TrainConfig:
    """resolve() without the rulebook, for callers that report problems their own way."""
    recipe = given.get("recipe") or DEFAULT_RECIPE
    arch = given.get("arch")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if arch is not None and arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    values = {**DEFAULTS, **preset(recipe, arch), **given}
    if "aug_p" not in given:  # another --aug than the recipe's starts from its own p
        values["aug_p"] = AUG_P.get(values["aug"], 0.0)  # (an unknown --aug is refused below)
    if "fit" not in given and (fit := manifest_fit(values["data"])):
        values["fit"] = fit  # a curated version trains with the crop mode it was curated with
    if values["kimg"] is None and values["minutes"] is None:
        values["kimg"] = DEFAULT_KIMG
    if values["feature_res"] is None and isinstance(values["res"], int):
        values["feature_res"] = max(values["res"], FEATURE_MIN_RES)
    return TrainConfig(**values)


def merge_for_resume(saved: dict, given: dict) -> TrainConfig:
    """Saved settings win; only length/device may change. Conflicts are errors."""
    cfg = saved.copy()
    for key, value in given.items():
        if key in RESUMABLE_OVERRIDES:
            cfg[key] = value
            if key == "kimg":
                cfg["minutes"] = None
            if key == "minutes":
                cfg["kimg"] = None
        elif key != "out" and cfg.get(key) != value:
            may_change = ", ".join("--" + k.replace("_", "-") for k in sorted(RESUMABLE_OVERRIDES))
            raise ValueError(f"--{key.replace('_', '-')} {value} differs from the run's saved "
                             f"{cfg.get(key)!r}; a resumed run keeps its settings (only {may_change} may change)")
    config = TrainConfig.from_dict(cfg)
    check(config)
    return config


# -- the rulebook ----------------------------------------------------------------------

@dataclass
class Problem:
    """One refused setting: `option` (its field name) must `rule`."""
    option: str
    rule: str

    def for_cli(self) -> str:
        return f"--{self.option.replace('_', '-')} {self.rule}"

    def for_form(self, label: str, value=None) -> str:
        shown = "" if value is None or isinstance(value, bool) else \
            f" (not {value:g})" if isinstance(value, float) else f" (not {value})"
        return f"{label} {self.rule}{shown}."


def problems(cfg: TrainConfig) -> list[Problem]:
    """Everything wrong with a run's settings (empty when it may run)."""
    found = []

    def need(ok, option, rule):
        if not ok:
            found.append(Problem(option, rule))

    need(cfg.arch in ARCHS, "arch", f"must be one of {', '.join(ARCHS)}")
    need(cfg.disc in DISCS, "disc", f"must be one of {', '.join(DISCS)}")
    need(cfg.loss in LOSSES, "loss", f"must be one of {', '.join(LOSSES)}")
    need(cfg.res in RESOLUTIONS, "res", f"must be one of {', '.join(map(str, RESOLUTIONS))}")
    need(cfg.feature_res in RESOLUTIONS or cfg.res not in RESOLUTIONS,  # (a bad --res says so once)
         "feature_res", f"must be one of {', '.join(map(str, RESOLUTIONS))}")
    need(cfg.fit in FITS, "fit", f"must be one of {', '.join(FITS)}")
    need(BATCH_RANGE[0] <= cfg.batch <= BATCH_RANGE[1], "batch", "must be from {} to {}".format(*BATCH_RANGE))
    need(0 <= cfg.seed <= MAX_SEED, "seed", f"must be from 0 to {MAX_SEED}")
    need(CHANNELS_RANGE[0] <= cfg.channels <= CHANNELS_RANGE[1], "channels",
         "must be from {} to {}".format(*CHANNELS_RANGE))
    need(1 <= cfg.z_dim <= MAX_Z_DIM, "z_dim", f"must be from 1 to {MAX_Z_DIM}")
    need(cfg.kimg is None or 0 < cfg.kimg <= MAX_KIMG, "kimg", f"must be more than 0 and at most {MAX_KIMG:,} kimg")
    need(cfg.minutes is None or 0 < cfg.minutes <= MAX_MINUTES, "minutes",
         f"must be more than 0 and at most {MAX_MINUTES:,} minutes (a week)")
    need(cfg.lr_g > 0 and cfg.lr_d > 0, "lr_g", "and --lr-d must be positive")
    need(cfg.r1_gamma >= 0 and cfg.r1_every >= 1, "r1_gamma", "must be >= 0 and --r1-every >= 1")
    need(cfg.aug in AUG_MODES, "aug", f"must be one of {', '.join(AUG_MODES)}")
    need(0 <= cfg.aug_p <= 1, "aug_p", "must be between 0 and 1")
    need(cfg.disc != "fastgan" or cfg.loss == "hinge", "disc",
         "fastgan trains with --loss hinge (only then do its reconstruction decoders learn)")
    need(0 < cfg.ada_target < 1 and cfg.ada_kimg > 0, "ada_target", "must be in (0, 1), --ada-kimg > 0")
    need(cfg.log_every >= 1, "log_every", "must be at least 1")
    need(0 <= cfg.holdout <= MAX_HOLDOUT, "holdout", f"must be from 0 to {MAX_HOLDOUT}")
    need(cfg.keep_snapshots >= 0, "keep_snapshots", "must be 0 (keep all) or more")
    need(cfg.sample_kimg > 0 and cfg.snapshot_kimg > 0 and cfg.latest_minutes >= 0, "sample_kimg",
         "and --snapshot-kimg must be positive")
    need(cfg.threads is None or cfg.threads >= 1, "threads", "must be at least 1")
    need(cfg.kid_kimg is None or cfg.kid_kimg >= 0, "kid_kimg", "must be 0 (off) or positive")
    need(cfg.kid_images >= 10, "kid_images", "must be at least 10")
    if cfg.tensorboard:
        from core.training import tbevents
        need(tbevents.available(), "tensorboard", f"needs the tensorboard package: {tbevents.INSTALL}")
    ops = [o for o in cfg.aug_ops.split(",") if o]
    need(ops and all(o in AUG_OPS for o in ops), "aug_ops", f"takes a comma-separated subset of {','.join(AUG_OPS)}")
    if cfg.inject_nan is not None:
        try:
            parse_inject_nan(cfg.inject_nan)
        except ValueError:
            need(False, "inject_nan", "takes STEP or STEP:TIMES")
    return found


def check(cfg: TrainConfig) -> None:
    """Raise ValueError naming every problem, as the command line shows it."""
    if found := problems(cfg):
        raise ValueError("; ".join(p.for_cli() for p in found))


def parse_inject_nan(text: str) -> tuple[int, int]:
    step, _, times = text.partition(":")
    try:
        return int(step), int(times or 1)
    except ValueError:
        raise ValueError(f"--inject-nan takes STEP or STEP:TIMES, not {text!r}") from None


# -- the command line ------------------------------------------------------------------

def default_text(name: str) -> str:
    """How a field's default reads in help: its value, or each recipe's (or generator's)."""
    if name in ARCH_SIZES["dcgan"]:
        return ", ".join(f"{arch} {_shown(sizes[name])}" for arch, sizes in ARCH_SIZES.items())
    if name in RECIPES[DEFAULT_RECIPE]:
        values = {recipe: values[name] for recipe, values in RECIPES.items()}
        if len(set(values.values())) == 1:
            return _shown(values[DEFAULT_RECIPE])
        return ", ".join(f"{recipe} {_shown(v)}" for recipe, v in values.items())
    return _shown(DEFAULTS[name])


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train a GAN on a folder or .zip of images (or the built-in emoji set). "
                    "Everything is written to the run folder --out: config.json, status.json, "
                    "metrics.jsonl, samples/, checkpoints/, train.log. SIGTERM/SIGINT stop "
                    "cleanly (checkpoint saved, exit 0).",
        argument_default=None)
    groups = {"length": p.add_mutually_exclusive_group()}
    for f in fields(TrainConfig):
        meta = {k: v for k, v in f.metadata.items() if k != "help"}
        text, group = HELP[f.name], meta.pop("group", None)
        if f.name not in ("out", "minutes", "inject_nan") and "(default" not in text:
            text += f" (default: {default_text(f.name)})"
        (groups[group] if group else p).add_argument("--" + f.name.replace("_", "-"), help=text, **meta)
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped (from the "
                   "start, with its saved settings, if it stopped before its first checkpoint)")
    p.add_argument("--rewind", type=int, metavar="STEP", help="with --resume: continue from the snapshot of step "
                   "STEP (checkpoints/step-STEP.pt) instead; metric lines and sample grids after it are dropped, "
                   "later snapshots kept (say, to go back to before a mode collapse)")
    p.add_argument("--lr-scale", type=float, metavar="X", help="with --resume: multiply both learning rates by X "
                   "from here on (say 0.5 after a collapse or divergence)")
    return p


def given_options(args: argparse.Namespace) -> dict:
    """The settings the user actually typed (everything not None), minus control flags."""
    return {k: v for k, v in vars(args).items() if v is not None and k not in CONTROL_FLAGS}


CONTROL_FLAGS = {"resume", "rewind", "lr_scale"}  # how to continue a run, not settings of it


def check_control_flags(args: argparse.Namespace) -> None:
    """--rewind and --lr-scale only continue a run; raises ValueError with the reason."""
    if (args.rewind is not None or args.lr_scale is not None) and not args.resume:
        raise ValueError("--rewind and --lr-scale continue a run: add --resume")
    if args.lr_scale is not None and not 1e-4 <= args.lr_scale <= 1e2:  # NaN fails this too
        raise ValueError(f"--lr-scale {args.lr_scale} is not between 0.0001 and 100")
