"""G_ema: the exponential moving average of the generator's weights, and how it samples.

The EMA averages out the last steps' noise, so its samples are steadier than G's
(Karras et al. 2018). Sample grids, KID, checkpoints and exploring all use it with
its own BatchNorm statistics ("standing statistics"): see `sampling`.
"""
import copy

import torch
from torch import nn


class GeneratorEMA:
    def __init__(self, G: nn.Module, half_life_kimg: float, rampup: float, labels: torch.Tensor | None = None):
        """half_life_kimg 0 = no averaging (G_ema is G); rampup: early on, cap the half-life at
        this fraction of the images seen so far, so G_ema is not stuck at its initial weights.
        labels: the data set's, so conditional standing statistics follow its class frequencies."""
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.half_life_kimg, self.rampup, self.labels = half_life_kimg, rampup, labels
        self._cache = None  # (step, G_ema with standing statistics)

    @torch.no_grad()
    def update(self, G: nn.Module, nimg: int, batch: int) -> None:
        """After a G step: move G_ema toward G. Buffers (BatchNorm's running statistics) are copied."""
        if self.half_life_kimg <= 0:
            return
        half_life = self.half_life_kimg * 1000
        if self.rampup:
            half_life = min(half_life, nimg * self.rampup)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        torch._foreach_lerp_(list(self.G_ema.parameters()), [p.detach() for p in G.parameters()], 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

    def sync(self, G: nn.Module) -> None:
        """Without averaging, G_ema is a copy of G whenever it is used."""
        if self.half_life_kimg <= 0:
            self.G_ema.load_state_dict(G.state_dict())

    def sampling(self, G: nn.Module, step: int) -> nn.Module:
        """G_ema as grids, KID, checkpoints and exploring use it: with its own BatchNorm
        statistics. G_ema itself keeps copying the trained G's running ones, so training
        (and an exact resume) never depends on them. Computed once per step: grids,
        snapshot and latest checkpoint often fall on the same one."""
        self.sync(G)
        if self._cache is None or self._cache[0] != step:
            self._cache = (step, with_standing_statistics(self.G_ema, labels=self.labels))
        return self._cache[1]

    def forget(self) -> None:
        """After G_ema's weights were replaced (a restore): recompute on next use."""
        self._cache = None


def with_standing_statistics(G: nn.Module, n: int = 1024, batch: int = 128,
                             labels: torch.Tensor | None = None, seed: int = 0) -> nn.Module:
    """A copy of G, ready for sampling, whose BatchNorm layers hold G's own statistics:
    means and variances over n of its samples ("standing statistics", Brock et al. 2019).

    An EMA generator needs them: the running averages it has are the trained G's,
    whose weights differ, and eval-mode samples come out washed out with them.
    A fixed seed (no global RNG) keeps training reproducible. Conditional models
    draw classes from `labels` (the data set's, for its class frequencies).
    Returns G itself when it has no BatchNorm."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        return G
    standing = copy.deepcopy(G).train()
    for m in standing.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over all batches
    device = next(standing.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    pool = labels.cpu() if labels is not None else torch.arange(max(G.n_classes, 1))
    with torch.no_grad():
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), G.z_dim, generator=gen)
            c = pool[torch.randint(len(pool), (len(z),), generator=gen)].to(device) if G.n_classes else None
            standing(z.to(device), c)
    for m in standing.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1  # as built, so the copy behaves like any other model
    return standing.eval().requires_grad_(False)
