"""Generators and discriminators at 32, 64 or 128 px.

`dcgan`  - the PyTorch DCGAN tutorial networks (dcgan.py: transposed convs +
           BatchNorm): fast; the small-data, r3gan and tutorial recipes train them.
`resnet` - residual blocks, no BatchNorm (an image never depends on its batch),
           PixelNorm in G (resnet.py).
`fastgan` - FastGAN-lite's generator (fastgan.py), the default recipe's; its D is
           the projected one (projected.py) or FastGAN's own self-supervised D.

Every generator maps (z, c) -> images in [-1, 1]; every discriminator maps
(x, c) -> one logit per image (N,), or a row of patch logits per image (N, K)
for the projected and FastGAN discriminators; losses average over both. With
class conditioning G gets a class embedding next to z and D a class projection
(Miyato & Koyama 2018), both from layers.py. This module builds the networks
from a model spec.
"""
from torch import nn

from core.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from core.networks.fastgan import FastGANDiscriminator, FastGANGenerator
from core.networks.projected import ProjectedDiscriminator
from core.networks.resnet import ResNetDiscriminator, ResNetGenerator
from core.training.config import (  # the option space
    ARCHS,
    CHANNELS_RANGE,
    DISCS,
    MAX_CLASSES,
    MAX_Z_DIM,
    RESOLUTIONS,
    own_discriminator,
)


def model_spec(arch: str, res: int, z_dim: int, channels: int, n_classes: int = 0, disc: str = "",
               feature_res: int | None = None) -> dict:
    """Everything needed to rebuild a model; stored in every checkpoint. disc "" = the arch's own D;
    feature_res (the projected D's) None = res, as in checkpoints from before it.
    Checked here, because a checkpoint may come from anyone: sizes out of range are refused
    before anything is allocated."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    disc = disc or own_discriminator(arch)
    if disc not in DISCS:
        raise ValueError(f"unknown discriminator {disc!r}; choose one of {', '.join(DISCS)}")
    feature_res = res if feature_res is None else feature_res
    for name, value in (("resolution", res), ("feature resolution", feature_res)):
        if value not in RESOLUTIONS:
            raise ValueError(f"{name} must be one of {RESOLUTIONS}, not {value}")
    for name, value, (low, high) in (("z_dim", z_dim, (1, MAX_Z_DIM)), ("channels", channels, CHANNELS_RANGE),
                                     ("n_classes", n_classes, (0, MAX_CLASSES))):
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"model {name} must be a whole number from {low} to {high}, not {value!r}")
    return {"arch": arch, "res": res, "z_dim": z_dim, "channels": channels, "n_classes": n_classes, "disc": disc,
            "feature_res": feature_res}


def checked(spec: dict) -> dict:
    """A spec read from a file, checked (only its known keys count)."""
    if not isinstance(spec, dict):
        raise ValueError("the checkpoint has no valid model spec")
    known = ("arch", "res", "z_dim", "channels", "n_classes", "disc", "feature_res")
    try:
        return model_spec(**{k: spec[k] for k in known if k in spec})
    except TypeError as e:  # a missing field
        raise ValueError(f"the checkpoint's model spec is incomplete: {e}") from None


def build_generator(spec: dict) -> nn.Module:
    spec = checked(spec)
    cls = {"dcgan": DCGANGenerator, "resnet": ResNetGenerator, "fastgan": FastGANGenerator}[spec["arch"]]
    return cls(spec["res"], spec["z_dim"], spec["channels"], spec["n_classes"])


def build_discriminator(spec: dict) -> nn.Module:
    spec = checked(spec)  # older checkpoints have no "disc": the arch's own
    disc = spec["disc"]
    if disc == "projected":
        return ProjectedDiscriminator(spec["res"], spec["n_classes"], spec["feature_res"])
    if disc == "fastgan":
        return FastGANDiscriminator(spec["res"], spec["channels"], spec["n_classes"])
    # The dcgan and resnet D take their width from `channels` only with their own G.
    channels = spec["channels"] if disc == spec["arch"] else {"dcgan": 64, "resnet": 16}[disc]
    cls = {"dcgan": DCGANDiscriminator, "resnet": ResNetDiscriminator}[disc]
    return cls(spec["res"], channels, spec["n_classes"])


def trainable(module: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should update (a projected D's backbone is frozen)."""
    return [p for p in module.parameters() if p.requires_grad]
