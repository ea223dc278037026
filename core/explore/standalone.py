"""A standalone generator: a checkpoint's G_ema as one TorchScript file that samples with nothing
but torch installed, no GANscope code:

    G = torch.jit.load("G.pt")
    images = G(torch.randn(16, G.z_dim))            # [16, 3, H, W] in [-1, 1]
    images = G(torch.randn(16, G.z_dim), classes)   # class-conditional models: long [16]

Spectral norms are baked into plain weights and BatchNorm keeps G_ema's standing statistics,
so the file draws what GANscope draws (to 1e-4 of the [-1, 1] range: core/export.py).
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


def export(ckpt: Path | str, out: Path | str) -> torch.jit.ScriptModule:
    """Write the checkpoint's G_ema as TorchScript to `out` (atomically); returns the module."""
    G, _ = checkpoint.load_generator(ckpt)
    G = baked(G)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = torch.arange(3) % max(G.n_classes, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        module = torch.jit.script(Standalone(torch.jit.trace(_Core(G), (z, c), check_trace=False), G.z_dim,
                                             G.n_classes, G.res))
        with atomic.atomic_path(out) as tmp:
            module.save(str(tmp))
    return module
