"""Differentiable augmentation (DiffAugment-style) with an adaptive strength (ADA-style).

Both D's inputs (real and fake) are augmented, and gradients flow through the
augmentation into G, so D cannot simply memorise a few hundred images and G is
not taught to reproduce the augmentations. Each op is applied to each image
independently with probability p. p is a 0-dim tensor on the training device,
so neither augmenting nor adapting p ever waits for the GPU.

References: Zhao et al. 2020 (DiffAugment), Karras et al. 2020 (ADA).
"""
import torch

from core.training.config import AUG_OPS


def _chosen(x, p):
    """Per-image coin flips with probability p, shaped for broadcasting."""
    return (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p).to(x.dtype)


def color(x, p):
    """Random brightness, saturation and contrast (images in [-1, 1])."""
    n = x.shape[0]
    on = _chosen(x, p)
    x = x + on * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    on = _chosen(x, p)
    grey = x.mean(dim=1, keepdim=True)
    sat = 1 + on * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1)
    x = (x - grey) * sat + grey
    on = _chosen(x, p)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    con = 1 + on * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    return (x - mean) * con + mean


def translation(x, p, ratio=0.125):
    """Shift each image by up to ratio*size pixels; uncovered pixels become 0 (grey)."""
    n, _, h, w = x.shape
    on = _chosen(x, p).view(n, 1)
    max_shift = torch.tensor([int(h * ratio + 0.5), int(w * ratio + 0.5)], device=x.device)
    shift = (torch.rand(n, 2, device=x.device) * (2 * max_shift + 1)).floor() - max_shift
    shift = (shift * on).long()
    rows = torch.arange(h, device=x.device).view(1, h) - shift[:, :1]  # [n, h]
    cols = torch.arange(w, device=x.device).view(1, w) - shift[:, 1:]  # [n, w]
    inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    moved = x[batch, :, rows.clamp(0, h - 1).view(n, h, 1), cols.clamp(0, w - 1).view(n, 1, w)]
    return moved.permute(0, 3, 1, 2) * inside.to(x.dtype)


def cutout(x, p, ratio=0.5):
    """Blank a random square of ratio*size to 0 (grey)."""
    n, _, h, w = x.shape
    on = _chosen(x, p).view(n, 1, 1)
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (torch.rand(n, 1, 1, device=x.device) * (h + 1 - ch % 2)).floor()
    cx = (torch.rand(n, 1, 1, device=x.device) * (w + 1 - cw % 2)).floor()
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    box = ((ys - cy).abs() * 2 < ch) & ((xs - cx).abs() * 2 < cw)
    keep = 1 - box.to(x.dtype) * on
    return x * keep.unsqueeze(1)


OPS = dict(zip(AUG_OPS, (color, translation, cutout)))  # by the names the options use


def augment(x, p, ops=AUG_OPS):
    for name in ops:
        x = OPS[name](x, p)
    return x


class AdaptiveP:
    """Adapts p so that r_t = E[sign(D(real))] stays near `target`.

    r_t near 1 means D is confidently right on every training image: it is
    overfitting, so p rises. The step size lets p move from 0 to 1 in
    `speed_kimg` thousand images.
    """

    def __init__(self, device, p=0.0, target=0.6, speed_kimg=100.0):
        self.p = torch.tensor(float(p), device=device)
        self.target = target
        self.speed_kimg = speed_kimg

    def step(self, rt: torch.Tensor, n_images: int) -> None:
        """Nudge p by r_t measured over n_images (over all processes when training on several)."""
        self.p = (self.p + torch.sign(rt - self.target) * (n_images / (self.speed_kimg * 1000))).clamp(0.0, 1.0)
