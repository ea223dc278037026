"""Training settings: the CLI, the recipe presets and their resolution into config.json.

Every option defaults to None on the command line so that we can tell what the
user asked for from what a preset fills in; that matters on --resume, where
the saved config wins and a conflicting option is an error, not a surprise.
"""
import argparse
from dataclasses import asdict, dataclass, fields

from .augment import OPS
from .models import ARCHS, RESOLUTIONS
from .data import manifest_fit
from .paths import BUILTIN_EMOJI

# Training recipes. `tutorial` is the PyTorch DCGAN tutorial as it is: BCE
# (= non-saturating logistic loss), Adam(2e-4, 0.5), batch 128, no R1, no EMA,
# no augmentation. `small-data` (the default) trains the same networks the way
# small data sets need: adaptive augmentation, lazy R1, an EMA of G, Adam(2e-4,
# (0, 0.99)) and batch 64. bench/quality.py measures the difference (README).
RECIPES = {
    "small-data": dict(arch="dcgan", batch=64, lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99,
                       r1_gamma=1.0, ema_kimg=10.0, aug="ada"),
    "tutorial": dict(arch="dcgan", batch=128, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999,
                     r1_gamma=0.0, ema_kimg=0.0, aug="none"),
}
DEFAULT_RECIPE = "small-data"
# Network sizes per architecture: dcgan's are the tutorial's ngf/ndf and nz.
ARCH_SIZES = {"dcgan": dict(channels=64, z_dim=100), "resnet": dict(channels=16, z_dim=128)}


def preset(recipe: str = DEFAULT_RECIPE, arch: str | None = None) -> dict:
    """The settings a recipe gives, on its own networks or on `arch`."""
    values = dict(RECIPES[recipe])
    arch = arch or values["arch"]
    return {**values, **ARCH_SIZES[arch], "arch": arch, "recipe": recipe}


# Settings that may change when a run is resumed (how long, and where it runs).
RESUMABLE_OVERRIDES = {"kimg", "minutes", "device", "threads", "precision", "compile", "device_lock", "kid_kimg",
                       "kid_images"}


@dataclass
class TrainConfig:
    data: str = BUILTIN_EMOJI
    out: str = ""
    res: int = 64
    fit: str = "crop"
    recipe: str = DEFAULT_RECIPE
    arch: str = "dcgan"
    channels: int = 64
    z_dim: int = 100
    cond: bool = False
    batch: int = 64
    kimg: float | None = None
    minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    threads: int | None = None
    device_lock: str = "auto"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 1.0
    r1_every: int = 16
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05
    aug: str = "ada"
    aug_p: float = 0.0
    aug_ops: str = ",".join(OPS)
    ada_target: float = 0.6
    ada_kimg: float = 100.0
    log_every: int = 20
    sample_kimg: float = 4.0
    snapshot_kimg: float = 50.0
    latest_minutes: float = 1.0
    kid_kimg: float | None = None      # None = auto: every 50 kimg on a GPU, off on CPU
    kid_images: int = 1000
    inject_nan: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


DEFAULT_KIMG = 100.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train a GAN on a folder or .zip of images (or the built-in emoji set). "
                    "Everything is written to the run folder --out: config.json, status.json, "
                    "metrics.jsonl, samples/, checkpoints/, train.log. SIGTERM/SIGINT stop "
                    "cleanly (checkpoint saved, exit 0).",
        argument_default=None)
    a = p.add_argument
    a("--data", help=f"folder or .zip of images, a data set version (data/sets/NAME/versions/vN.json; "
                     f"its crop mode becomes the default --fit), or {BUILTIN_EMOJI} (default: {BUILTIN_EMOJI})")
    a("--out", required=True, help="run folder to create (or continue with --resume)")
    a("--res", type=int, choices=RESOLUTIONS, help="image resolution (default: 64)")
    a("--fit", choices=("crop", "pad", "squash"), help="how images are made square (default: crop)")
    a("--recipe", choices=tuple(RECIPES), help="training recipe: small-data (adaptive augmentation, "
      "R1, EMA; the default) or tutorial (the PyTorch DCGAN tutorial, as a baseline) (default: small-data)")
    a("--arch", choices=ARCHS, help="networks: dcgan (the tutorial's G and D) or resnet (residual G and D "
      "without BatchNorm) (default: dcgan)")
    a("--channels", type=int, help="width of G and D: dcgan = the tutorial's ngf/ndf, resnet = feature maps "
      "at 64 px (doubling per halving, max 256) (default: dcgan 64, resnet 16)")
    a("--z-dim", type=int, help="latent size (default: dcgan 100, resnet 128)")
    a("--cond", action=argparse.BooleanOptionalAction,
      help="class-conditional model; needs labels (subfolders or emoji categories) (default: off)")
    a("--batch", type=int, help="batch size (default: small-data 64, tutorial 128)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--kimg", type=float, help=f"train until this many thousand real images "
                        f"were shown to D (default: {DEFAULT_KIMG:g})")
    length.add_argument("--minutes", type=float, help="train for this many minutes of training "
                        "time (summed over resumes) instead of --kimg")
    a("--seed", type=int, help="random seed (default: 0)")
    a("--device", choices=("auto", "cpu", "cuda", "mps"), help="auto = cuda > mps > cpu (default: auto)")
    a("--precision", choices=("auto", "fp32", "bf16"), help="auto = bf16 autocast on CUDA, else fp32 (default: auto)")
    a("--compile", action=argparse.BooleanOptionalAction, help="torch.compile G and D: faster steps on a "
      "GPU after a minute or two of compiling; R1 steps stay eager (no double backward) (default: off)")
    a("--threads", type=int, help="CPU threads for torch (default: all cores)")
    a("--device-lock", choices=("auto", "on", "off"), help="wait (state 'queued') until no other "
      "GANscope run uses the device; auto = on for GPUs (default: auto)")
    a("--lr-g", type=float, help="generator learning rate (default: 2e-4)")
    a("--lr-d", type=float, help="discriminator learning rate (default: 2e-4)")
    a("--beta1", type=float, help="Adam beta1 (default: small-data 0.0, tutorial 0.5)")
    a("--beta2", type=float, help="Adam beta2 (default: small-data 0.99, tutorial 0.999)")
    a("--r1-gamma", type=float, help="R1 penalty weight, 0 = off (default: small-data 1.0, tutorial 0)")
    a("--r1-every", type=int, help="apply R1 every N steps (lazy regularisation) (default: 16)")
    a("--ema-kimg", type=float, help="half-life of the generator EMA in kimg, 0 = off "
      "(default: small-data 10, tutorial 0)")
    a("--ema-rampup", type=float, help="early on, cap the EMA half-life at this fraction of the images "
      "seen so far, 0 = off (default: 0.05)")
    a("--aug", choices=("ada", "fixed", "none"), help="differentiable augmentation: adaptive p, "
      "fixed p (--aug-p) or none (default: small-data ada, tutorial none)")
    a("--aug-p", type=float, help="initial (ada) or constant (fixed) augmentation probability (default: 0)")
    a("--aug-ops", help=f"comma-separated augmentations from {','.join(OPS)} (default: all)")
    a("--ada-target", type=float, help="target r_t = E[sign(D(real))] for adaptive p (default: 0.6)")
    a("--ada-kimg", type=float, help="adaptive p can move from 0 to 1 in this many kimg (default: 100)")
    a("--log-every", type=int, help="write a metrics line every N steps (default: 20)")
    a("--sample-kimg", type=float, help="save a sample grid every N kimg (default: 4)")
    a("--snapshot-kimg", type=float, help="keep a full checkpoint snapshot every N kimg (default: 50)")
    a("--latest-minutes", type=float, help="refresh checkpoints/latest.pt at most every N minutes (default: 1)")
    a("--kid-kimg", type=float, help="compute KID (Inception features, vs the real images) every N kimg "
      "and log it; 0 = off (default: 50 on a GPU, off on CPU)")
    a("--kid-images", type=int, help="generated images per KID measurement (default: 1000)")
    a("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    a("--inject-nan", metavar="STEP[:TIMES]", help="testing aid: poison the loss at STEP (TIMES times, "
      "default 1) to exercise NaN recovery")
    return p


def given_options(args: argparse.Namespace) -> dict:
    """The settings the user actually typed (everything not None), minus control flags."""
    return {k: v for k, v in vars(args).items() if v is not None and k != "resume"}


def resolve(given: dict) -> TrainConfig:
    """Fill in preset and global defaults for a new run, then validate."""
    recipe, arch = given.get("recipe", DEFAULT_RECIPE), given.get("arch")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if arch is not None and arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    values = {**preset(recipe, arch), **given}
    if "fit" not in given and (fit := manifest_fit(values.get("data", BUILTIN_EMOJI))):
        values["fit"] = fit  # a curated version trains with the crop mode it was curated with
    if values.get("kimg") is None and values.get("minutes") is None:
        values["kimg"] = DEFAULT_KIMG
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


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
            raise ValueError(f"--{key.replace('_', '-')} {value} differs from the run's saved "
                             f"{cfg.get(key)!r}; a resumed run keeps its settings "
                             f"(only {', '.join('--' + k.replace('_', '-') for k in sorted(RESUMABLE_OVERRIDES))} may change)")
    config = TrainConfig.from_dict(cfg)
    validate(config)
    return config


def validate(cfg: TrainConfig) -> None:
    def need(ok, msg):
        if not ok:
            raise ValueError(msg)
    need(cfg.batch >= 2, "--batch must be at least 2")
    need(cfg.channels >= 4, "--channels must be at least 4")
    need(cfg.z_dim >= 1, "--z-dim must be at least 1")
    need(cfg.kimg is None or cfg.kimg > 0, "--kimg must be positive")
    need(cfg.minutes is None or cfg.minutes > 0, "--minutes must be positive")
    need(cfg.lr_g > 0 and cfg.lr_d > 0, "learning rates must be positive")
    need(cfg.r1_gamma >= 0 and cfg.r1_every >= 1, "--r1-gamma must be >= 0 and --r1-every >= 1")
    need(0 <= cfg.aug_p <= 1, "--aug-p must be between 0 and 1")
    need(0 < cfg.ada_target < 1 and cfg.ada_kimg > 0, "--ada-target must be in (0, 1), --ada-kimg > 0")
    need(cfg.log_every >= 1, "--log-every must be at least 1")
    need(cfg.sample_kimg > 0 and cfg.snapshot_kimg > 0 and cfg.latest_minutes >= 0,
         "--sample-kimg and --snapshot-kimg must be positive")
    need(cfg.threads is None or cfg.threads >= 1, "--threads must be at least 1")
    need(cfg.kid_kimg is None or cfg.kid_kimg >= 0, "--kid-kimg must be 0 (off) or positive")
    need(cfg.kid_images >= 10, "--kid-images must be at least 10")
    ops = [o for o in cfg.aug_ops.split(",") if o]
    need(ops and all(o in OPS for o in ops), f"--aug-ops takes a comma-separated subset of {','.join(OPS)}")
    if cfg.inject_nan is not None:
        parse_inject_nan(cfg.inject_nan)


def parse_inject_nan(text: str) -> tuple[int, int]:
    step, _, times = text.partition(":")
    try:
        return int(step), int(times or 1)
    except ValueError:
        raise ValueError(f"--inject-nan takes STEP or STEP:TIMES, not {text!r}") from None
