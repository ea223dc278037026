"""Pieces shared by the networks: class conditioning in G and D, and weight inits."""
import torch
from torch import nn


class ClassEmbedding(nn.Module):
    """z -> [z, embed(c)] for conditional generators; identity when unconditional."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(n_classes, dim) if n_classes else None
        self.extra = dim if n_classes else 0

    def forward(self, z, c):
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(c)], dim=1)


def class_projection(embed: nn.Embedding, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """<embed(c), h> per image [N]: the class term of a projection discriminator (Miyato &
    Koyama 2018), added to its logits. Feature maps [N, C, H, W] are averaged over space first."""
    if h.dim() == 4:
        h = h.mean(dim=(2, 3))
    return (embed(c) * h).sum(dim=1)


class ProjectionHead(nn.Module):
    """logit = linear(h) [+ <embed(c), h>] on a pooled feature vector h."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(n_classes, features) if n_classes else None

    def forward(self, h, c):
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + class_projection(self.embed, h, c)
        return out


def dcgan_init(module):
    # The tutorial's init: N(0, 0.02) convs, N(1, 0.02) BatchNorm scales.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def he_init(module):
    # He init for leaky-ReLU layers keeps activations at unit scale through
    # the depth; PyTorch's default shrinks them ~3x per layer, which leaves
    # D's logits near 0 and G adapting to noise.
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
