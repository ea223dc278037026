"""Generators and discriminators at 32, 64 or 128 px.

`dcgan`  - the PyTorch DCGAN tutorial networks (transposed convs + BatchNorm),
           the default: fast, and good once trained with the small-data recipe.
`resnet` - residual blocks, no BatchNorm (an image never depends on its batch),
           PixelNorm in G.

Every generator maps (z, c) -> images in [-1, 1]; every discriminator maps
(x, c) -> one logit per image. With class conditioning G gets a class
embedding next to z and D uses a projection head (Miyato & Koyama 2018).
"""
import copy
import math

import torch
from torch import nn
import torch.nn.functional as F

ARCHS = ("dcgan", "resnet")
RESOLUTIONS = (32, 64, 128)


def model_spec(arch: str, res: int, z_dim: int, channels: int, n_classes: int = 0) -> dict:
    """Everything needed to rebuild a model; stored in every checkpoint."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if res not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, not {res}")
    return {"arch": arch, "res": res, "z_dim": z_dim, "channels": channels, "n_classes": n_classes}


def build_generator(spec: dict) -> nn.Module:
    cls = {"dcgan": DCGANGenerator, "resnet": ResNetGenerator}[spec["arch"]]
    return cls(spec["res"], spec["z_dim"], spec["channels"], spec["n_classes"])


def build_discriminator(spec: dict) -> nn.Module:
    cls = {"dcgan": DCGANDiscriminator, "resnet": ResNetDiscriminator}[spec["arch"]]
    return cls(spec["res"], spec["channels"], spec["n_classes"])


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


def _n_doublings(res: int) -> int:
    """Number of x2 steps between the 4x4 base and `res`."""
    return int(math.log2(res)) - 2


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


class ProjectionHead(nn.Module):
    """logit = linear(h) [+ <embed(c), h>] on a pooled feature vector h."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(n_classes, features) if n_classes else None

    def forward(self, h, c):
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(c) * h).sum(dim=1)
        return out


# --- DCGAN (PyTorch tutorial) -------------------------------------------------

def _dcgan_init(module):
    # The tutorial's init: N(0, 0.02) convs, N(1, 0.02) BatchNorm scales.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, res, z_dim=100, channels=64, n_classes=0):
        super().__init__()
        self.res, self.z_dim, self.n_classes = res, z_dim, n_classes
        self.cond = ClassEmbedding(n_classes, 32)
        n = _n_doublings(res)
        ch = channels * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(z_dim + self.cond.extra, ch, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, z, c=None):
        z = self.cond(z, c)
        return self.main(z[:, :, None, None])

    def early_features(self, z, c=None):
        """Activations after the second layer (8x8), for GANSpace-style PCA."""
        return self.main[:6](self.cond(z, c)[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, res, channels=64, n_classes=0):
        super().__init__()
        n = _n_doublings(res)
        layers = [nn.Conv2d(3, channels, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = channels
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        # The tutorial's last layer: a 4x4 conv to one output (= a linear map on
        # the 4x4 features). We return the logit; the tutorial's Sigmoid+BCELoss
        # is applied as BCE-with-logits by the trainer (same maths, stabler).
        self.out = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)
        self.proj = nn.Embedding(n_classes, ch) if n_classes else None
        self.apply(_dcgan_init)

    def forward(self, x, c=None):
        h = self.features(x)
        out = self.out(h).flatten()
        if self.proj is not None:
            out = out + (self.proj(c) * h.mean(dim=(2, 3))).sum(dim=1)
        return out


# --- ResNet (default) -----------------------------------------------------------

MAX_CHANNELS = 256


def _channels(base: int, size: int) -> int:
    """Feature maps at a feature size: `base` at 64 px, doubling per halving, capped.

    Cost is dominated by the finest layers, so this keeps a 64 px ResNet at
    about the compute of the DCGAN tutorial networks.
    """
    return max(4, min(MAX_CHANNELS, base * 64 // size))


def _he_init(module):
    # He init for leaky-ReLU layers keeps activations at unit scale through
    # the depth; PyTorch's default shrinks them ~3x per layer, which leaves
    # D's logits near 0 and G adapting to noise.
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class PixelNorm(nn.Module):
    """Normalises each pixel's feature vector (ProGAN); per-sample, unlike BatchNorm."""

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class UpBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.norm = PixelNorm()

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.norm(F.leaky_relu(self.conv1(x), 0.2))
        h = self.norm(F.leaky_relu(self.conv2(h), 0.2))
        return h + self.skip(x)


class DownBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        # Residual scaled by 1/sqrt(2) keeps activations' variance steady.
        return (F.avg_pool2d(h, 2) + F.avg_pool2d(self.skip(x), 2)) * (0.5 ** 0.5)


class ResNetGenerator(nn.Module):
    def __init__(self, res, z_dim=128, channels=16, n_classes=0):
        super().__init__()
        self.res, self.z_dim, self.n_classes = res, z_dim, n_classes
        self.cond = ClassEmbedding(n_classes, 32)
        ch = _channels(channels, 4)
        self.base_channels = ch
        # First layer: z -> 4x4 features (the layer SeFa-style edits factorise).
        self.fc = nn.Linear(z_dim + self.cond.extra, ch * 16)
        blocks, size = [], 4
        while size < res:
            cout = _channels(channels, size * 2)
            blocks.append(UpBlock(ch, cout))
            ch, size = cout, size * 2
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(ch, 3, 3, padding=1)
        self.norm = PixelNorm()
        self.apply(_he_init)
        nn.init.normal_(self.to_rgb.weight, 0.0, 0.02)  # start near grey, not saturated

    def _base(self, z, c):
        z = self.cond(z, c)
        h = self.fc(z).view(z.shape[0], self.base_channels, 4, 4)
        return self.norm(F.leaky_relu(h, 0.2))

    def forward(self, z, c=None):
        return torch.tanh(self.to_rgb(self.blocks(self._base(z, c))))

    def early_features(self, z, c=None):
        """Activations after the first upsampling block (8x8), for GANSpace-style PCA."""
        return self.blocks[0](self._base(z, c))


class ResNetDiscriminator(nn.Module):
    def __init__(self, res, channels=16, n_classes=0):
        super().__init__()
        ch = _channels(channels, res)
        self.from_rgb = nn.Conv2d(3, ch, 3, padding=1)
        blocks, size = [], res
        while size > 4:
            cout = _channels(channels, size // 2)
            blocks.append(DownBlock(ch, cout))
            ch, size = cout, size // 2
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch * 16, ch)
        self.head = ProjectionHead(ch, n_classes)
        self.apply(_he_init)

    def forward(self, x, c=None):
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        h = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        return self.head(h, c)
