"""Your own picture in the latent space: the z whose image comes closest to a target image.

As in GAN inversion by optimisation (e.g. stylegan2-ada-pytorch's projector, which works in
W with a VGG-based LPIPS): start from the best of several random seeds, then optimise z with
Adam under a pixel loss plus a perceptual loss on frozen ImageNet features, here the
EfficientNet-Lite0 feature maps that ship offline (the projected D's taps), each normalised
over its channels per position. A soft pull keeps z's length near that of a typical latent,
so that the edits and directions of the Latent Lab, which were found on typical latents,
still apply to it. The result is a plain latent: saved by name in the run folder
(projections.json, beside directions.json) it is a starting point like any seed.
"""
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core import atomic
from core.data.images import fit_image
from core.explore import latent

PROJECTIONS_FILE = "projections.json"
STEPS = 150         # Adam steps; the loss flattens out after ~100 at 64 px
STARTS = 64         # random seeds tried first; the best one is where the optimisation starts
LR = 0.05           # in units of z (a typical z has entries of size 1)
PERCEPTUAL = 1.0    # weight of the perceptual term against the pixel MSE (in [-1, 1] units)
LENGTH_PULL = 0.01  # weight of (mean(z^2) - 1)^2: stay where typical latents are
TAPS = (2, 4, 10)   # EfficientNet-Lite0 blocks whose outputs are compared (strides 4, 8, 16)
PREVIEW_EVERY = 10  # steps between reconstructions passed to progress


class Perceptual(nn.Module):
    """Mean squared distance of channel-normalised EfficientNet-Lite0 feature maps; frozen."""

    def __init__(self):
        super().__init__()
        from core.features import _EfficientNetEmbedding
        net = _EfficientNetEmbedding().net
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[:TAPS[-1] + 1])
        self.requires_grad_(False).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x in [-1, 1] -> the tapped maps, each of unit length over channels at every position."""
        x = self.stem(x)  # core.features feeds (pixel - 127) / 128, which is G's [-1, 1] to within 0.5 %
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                out.append(F.normalize(x, dim=1))
        return out

    def forward(self, a: torch.Tensor, b_features: list[torch.Tensor]) -> torch.Tensor:
        """Per image: the mean over taps of the mean squared difference."""
        return torch.stack([(fa - fb).pow(2).sum(1).mean((1, 2)) for fa, fb in zip(self.features(a), b_features)
                            ]).mean(0)


@dataclass
class Projection:
    z: torch.Tensor                 # [z_dim]
    cls: int | None
    image: np.ndarray               # the reconstruction, uint8 [H, W, 3]
    start_seed: int
    losses: list[dict] = field(default_factory=list)  # per step: step, loss, pixel, perceptual
    seconds: float = 0.0


def fitted(image: np.ndarray, res: int) -> np.ndarray:
    """A picture (uint8 HWC, any size) as G would draw it: res x res, centre-cropped."""
    return np.array(fit_image(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB"), res,
                              "crop"))


def target_tensor(image: np.ndarray, res: int) -> torch.Tensor:
    """fitted(), as [1, 3, res, res] in [-1, 1]."""
    return torch.from_numpy(fitted(image, res)).permute(2, 0, 1)[None].float() / 127.5 - 1


def project(G: nn.Module, image: np.ndarray, steps: int = STEPS, starts: int = STARTS, cls: int | None = None,
            seed: int = 0, progress: Callable[[int, int, np.ndarray | None, float], None] | None = None,
            perceptual: Perceptual | None = None) -> Projection:
    """Find z (and use class cls, for a conditional G) whose image reproduces `image`.
    progress(step, steps, reconstruction or None, loss) is called after every step."""
    started = time.monotonic()
    device = next(G.parameters()).device
    target = target_tensor(image, G.res).to(device)
    perceptual = (perceptual or Perceptual()).to(device)
    c = None if not G.n_classes else torch.full((1,), cls or 0, device=device)
    with torch.no_grad():
        goal = perceptual.features(target)
        candidates = latent.seed_latents(range(seed, seed + starts), G.z_dim).to(device)
        scores = [_loss(G, perceptual, candidates[i:i + 16], target, goal, c)[0] for i in range(0, starts, 16)]
        best = int(torch.cat(scores).argmin())
    z = candidates[best:best + 1].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=LR)
    result = Projection(z=z.detach()[0], cls=None if c is None else int(c[0]), image=np.zeros(0),
                        start_seed=seed + best)
    for step in range(1, steps + 1):
        loss, pixel, percept, x = _loss(G, perceptual, z, target, goal, c)
        total = loss.sum() + LENGTH_PULL * (z.pow(2).mean() - 1).pow(2)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        result.losses.append({"step": step, **{k: float(v.detach()) for k, v in
                                               (("loss", loss), ("pixel", pixel), ("perceptual", percept))}})
        if progress:
            preview = latent.to_uint8(x.detach())[0] if step % PREVIEW_EVERY == 0 or step == steps else None
            progress(step, steps, preview, float(loss))
    with torch.no_grad():
        result.z = z.detach()[0].cpu()
        result.image = latent.render(G, z.detach().cpu(), None if c is None else c.cpu())[0]
    result.seconds = time.monotonic() - started
    return result


def _loss(G, perceptual: Perceptual, z: torch.Tensor, target: torch.Tensor, goal: list[torch.Tensor], c):
    """Per latent: (loss, pixel MSE, perceptual distance, the image)."""
    x = G(z, None if c is None else c.expand(len(z)))
    pixel = (x - target).pow(2).mean((1, 2, 3))
    percept = perceptual(x, [g.expand(len(z), -1, -1, -1) for g in goal])
    return pixel + PERCEPTUAL * percept, pixel, percept, x


# -- saved projections ------------------------------------------------------------

MAX_NAME = 60


def projection_name(name: str) -> str:
    """The name a projection is saved under (stripped); a ValueError that says why it cannot be."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a projection needs a name of 1-{MAX_NAME} characters")
    return name


def save_projection(run_dir: Path | str, name: str, p: Projection, source: str = "") -> None:
    """Saved under `name` in the run folder; one saved before under the same name is replaced."""
    name = projection_name(name)
    entry = {"z": [round(float(v), 7) for v in p.z], "class": p.cls, "source": source,
             "loss": p.losses[-1]["loss"] if p.losses else None, "created": time.time()}
    atomic.update_json(Path(run_dir) / PROJECTIONS_FILE, lambda saved: {**saved, name: entry})


def load_projections(run_dir: Path | str, z_dim: int | None = None, n_classes: int = 0) -> dict[str, dict]:
    """name -> {"z": tensor [z_dim], "class": int | None}; damaged entries, other lengths and
    classes the model does not have are left out."""
    path = Path(run_dir) / PROJECTIONS_FILE
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    out = {}
    for name, item in saved.items() if isinstance(saved, dict) else ():
        try:
            z = torch.tensor(item["z"], dtype=torch.float32)
            cls = item.get("class")
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            continue
        if z.ndim == 1 and len(z) == (z_dim or len(z)) > 0 and torch.isfinite(z).all() and (
                cls is None or type(cls) is int and 0 <= cls < n_classes):
            out[name] = {"z": z, "class": cls}
    return out
