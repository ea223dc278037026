"""A standalone generator: a checkpoint's G_ema as one TorchScript file that samples with nothing
but torch installed, no GANscope code:

    G = torch.jit.load("G.pt")
    images = G(torch.randn(16, G.z_dim))            # [16, 3, H, W] in [-1, 1]
    images = G(torch.randn(16, G.z_dim), classes)   # class-conditional models: long [16]

Spectral norms are baked into plain weights and BatchNorm keeps G_ema's standing statistics,
so the file draws what GANscope draws (to TOLERANCE, checked on every export).
TorchScript is deprecated upstream in favour of torch.export, but it is still the one format
that loads in a fresh Python with one call; ONNX would need the onnx package, which GANscope
does not depend on.
"""
import copy
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from core import atomic, checkpoint

TOLERANCE = 1e-4  # largest pixel difference (of the [-1, 1] range) from GANscope's own rendering: 0.013 of 255


class _Core(nn.Module):
    """G with a fixed signature for tracing: (z, c) -> images; c is ignored by unconditional G."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.G(z, c if self.G.n_classes else None)


class Standalone(nn.Module):
    z_dim: int
    n_classes: int
    res: int

    def __init__(self, core: nn.Module, z_dim: int, n_classes: int, res: int):
        super().__init__()
        self.core, self.z_dim, self.n_classes, self.res = core, z_dim, n_classes, res

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045 (TorchScript)
        if c is None:  # conditional models: class 0, as in GANscope
            c = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.core(z, c).clamp(-1.0, 1.0)  # what GANscope shows (its networks may overshoot)


def baked(G: nn.Module) -> nn.Module:
    """A copy of G with every parametrisation (spectral norm) replaced by the weight it gives."""
    G = copy.deepcopy(G).cpu().float().eval().requires_grad_(False)
    G = G.to(memory_format=torch.contiguous_format)
    for module in G.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return G


def export(ckpt: Path | str, out: Path | str) -> float:
    """Write the checkpoint's G_ema as TorchScript to `out`, once it is checked to draw what
    GANscope draws (to TOLERANCE); returns the largest difference found. A file that does not
    match is never left at `out` (a ValueError says by how much)."""
    G, _ = checkpoint.load_generator(ckpt)
    plain = baked(checkpoint.load_generator(ckpt)[0])  # its own copy: baking a deepcopy also unhooks G's norms
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = torch.arange(3) % max(G.n_classes, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        module = torch.jit.script(Standalone(torch.jit.trace(_Core(plain), (z, c), check_trace=False), G.z_dim,
                                             G.n_classes, G.res))
        with atomic.atomic_path(out) as tmp:
            module.save(str(tmp))
            diff = difference(torch.jit.load(str(tmp)), G)  # the file as written, read back
            if diff > TOLERANCE:
                raise ValueError(f"the exported file draws differently from GANscope (max difference {diff:.2g})")
    return diff


@torch.no_grad()
def difference(module, G: nn.Module, n: int = 8) -> float:
    """The largest pixel difference (of the [-1, 1] range) between the module and GANscope's G."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))
    ours = G(z, torch.zeros(n, dtype=torch.long) if G.n_classes else None).clamp(-1, 1)
    return (module(z) - ours).abs().max().item()
