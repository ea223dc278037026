"""Residual networks without BatchNorm (an image never depends on its batch), PixelNorm in G."""
import torch
import torch.nn.functional as F
from torch import nn

from core.networks.layers import ClassEmbedding, ProjectionHead, he_init

MAX_CHANNELS = 256


def _channels(base: int, size: int) -> int:
    """Feature maps at a feature size: `base` at 64 px, doubling per halving, capped.

    Cost is dominated by the finest layers, so this keeps a 64 px ResNet at
    about the compute of the DCGAN tutorial networks.
    """
    return max(4, min(MAX_CHANNELS, base * 64 // size))


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
        self.apply(he_init)
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
        self.apply(he_init)

    def forward(self, x, c=None):
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        h = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        return self.head(h, c)
