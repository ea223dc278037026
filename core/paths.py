"""Where things live in a GANscope checkout."""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
DATA_DIR = REPO_ROOT / "data"
EMOJI_DIR = DATA_DIR / "emoji"
BUILTIN_EMOJI = "builtin:emoji"  # the --data value of the built-in data set
DEMO_RUN = "demo-emoji"  # the shipped demo run, under checkpoints/ (scripts/make_demo_run.py)


def checkpoints_dir() -> Path:
    """Where runs live; GANSCOPE_CHECKPOINTS overrides (tests point it at a temp dir)."""
    return Path(os.environ.get("GANSCOPE_CHECKPOINTS", CHECKPOINTS_DIR))


def uploads_dir() -> Path:
    """Zips uploaded through the app (kept beside the runs that train on them)."""
    return checkpoints_dir() / ".uploads"


def cache_dir() -> Path:
    """Decoded-data cache; GANSCOPE_CACHE overrides (tests point it at a temp dir)."""
    return Path(os.environ.get("GANSCOPE_CACHE", REPO_ROOT / ".cache"))


def datasets_dir() -> Path:
    """Registered data sets (imported files + curated versions); GANSCOPE_DATASETS overrides."""
    return Path(os.environ.get("GANSCOPE_DATASETS", DATA_DIR / "sets"))
