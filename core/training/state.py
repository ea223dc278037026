"""A full training state, as a checkpoint holds it, and putting a trainer back into one.

A checkpoint is a plain dict of tensors and numbers (core/checkpoint.py loads it with
weights_only=True): the model spec, the settings, G, G_ema (with its standing
statistics), D, both optimisers, augmentation p, the counters, the RNG state and the
open logging interval. Restoring all of it makes a resumed run continue exactly.
"""
from dataclasses import asdict, dataclass

import torch

from core import checkpoint
from core.data.imageset import DataError


@dataclass
class Counters:
    step: int = 0
    nimg: int = 0                # real images shown to D
    train_seconds: float = 0.0   # time in training steps, summed over resumes
    nan_recoveries: int = 0
    lr_scale: float = 1.0        # halved by every NaN recovery


def capture(t) -> dict:
    """The trainer `t`'s state, ready for checkpoint.save."""
    rng = {"torch": torch.get_rng_state()}
    if t.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(t.device)
    return {
        "model": t.spec, "class_names": t.class_names, "config": t.cfg.to_dict(),
        "G": t.G.state_dict(), "G_ema": t.sampling_generator().state_dict(), "D": t.D.state_dict(),
        "opt_G": t.opt_G.state_dict(), "opt_D": t.opt_D.state_dict(),
        "aug_p": t.ada.p.detach().cpu(), "counters": asdict(t.counters), "rng": rng, **t.interval.state(),
    }


def restore(t, path) -> None:
    """Put the trainer `t` back into the state saved at `path`."""
    ck = checkpoint.load(path, map_location=t.device)
    if not checkpoint.is_resumable(ck):
        raise DataError(f"{path} holds only an exported generator; it can be explored but not resumed")
    t.G.load_state_dict(ck["G"])
    t.ema.G_ema.load_state_dict(ck["G_ema"])
    t.ema.forget()
    t.D.load_state_dict(ck["D"])
    t.opt_G.load_state_dict(ck["opt_G"])
    t.opt_D.load_state_dict(ck["opt_D"])
    t.ada.p = ck["aug_p"].to(t.device)
    t.counters.__init__(**ck["counters"])  # in place: the loop holds on to it
    t.interval.load(ck)
    torch.set_rng_state(ck["rng"]["torch"].cpu())
    if "cuda" in ck["rng"] and t.device.type == "cuda":
        torch.cuda.set_rng_state(ck["rng"]["cuda"].cpu(), t.device)
