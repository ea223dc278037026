"""A FastGAN-style generator (Liu et al. 2021), in its "lite" form as Projected GANs use it.

Few layers, each a nearest x2 upsample, a 3x3 convolution to twice the channels,
BatchNorm and a GLU (half the channels gate the other half). A skip-layer
excitation (SLE) lets the 4x4 features rescale the channels of a much finer
layer, a cheap way for the global layout to steer the details. Every convolution
is spectrally normalised; the latent goes in as drawn (normalising it, which we
tried first, made truncation do nothing: psi * z normalises back to z); the
output has no tanh (as in the published code: D sees whatever G draws, and
rendering clamps to [-1, 1]).

Channels per resolution are `channels` times {4: 16, 8: 8, 16: 4, 32: 2, 64: 2,
128: 1}: the published code uses 128 (lite) at 256 px. On a CPU, 16 (the default,
config.ARCH_SIZES) keeps a 64 px generator at about twice the DCGAN tutorial's cost.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from core.networks.layers import ClassEmbedding, class_projection, dcgan_init

WIDTH = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1}


def _conv(cin: int, cout: int, k: int, bias: bool = False) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, 1, k // 2, bias=bias))


class GLU(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class SkipExcitation(nn.Module):
    """SLE: channel weights for a fine feature map from a coarse one (4x4 summary)."""

    def __init__(self, c_small: int, c_big: int):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), spectral_norm(nn.Conv2d(c_small, c_big, 4, 1, 0, bias=False)),
                                 nn.SiLU(), spectral_norm(nn.Conv2d(c_big, c_big, 1, 1, 0, bias=False)), nn.Sigmoid())

    def forward(self, small, big):
        return big * self.net(small)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), _conv(cin, 2 * cout, 3),
                         nn.BatchNorm2d(2 * cout), GLU())


class FastGANGenerator(nn.Module):
    def __init__(self, res: int, z_dim: int = 256, channels: int = 32, n_classes: int = 0):
        super().__init__()
        self.res, self.z_dim, self.n_classes = res, z_dim, n_classes
        self.cond = ClassEmbedding(n_classes, 32)
        width = {s: max(8, channels * m) for s, m in WIDTH.items()}
        first = nn.ConvTranspose2d(z_dim + self.cond.extra, 2 * width[4], 4, 1, 0, bias=False)
        self.init = nn.Sequential(spectral_norm(first), nn.BatchNorm2d(2 * width[4]), GLU())
        self.ups = nn.ModuleDict()
        size = 4
        while size < res:
            self.ups[str(size * 2)] = _up(width[size], width[size * 2])
            size *= 2
        # SLE from the 4x4 features to 64 px (or the output, when smaller), and 8 -> 128.
        self.skips = {4: min(64, res), 8: 128}
        self.skips = {s: b for s, b in self.skips.items() if b <= res and b > 2 * s}
        self.sle = nn.ModuleDict({str(b): SkipExcitation(width[s], width[b]) for s, b in self.skips.items()})
        self.to_rgb = _conv(width[res], 3, 3, bias=True)
        self.apply(dcgan_init)  # the published code's init is the DCGAN one

    def _latent(self, z, c):
        return self.cond(z, c)[:, :, None, None]

    def forward(self, z, c=None):
        feats = {4: self.init(self._latent(z, c))}
        h, size = feats[4], 4
        while size < self.res:
            size *= 2
            h = self.ups[str(size)](h)
            if str(size) in self.sle:
                small = next(s for s, b in self.skips.items() if b == size)
                h = self.sle[str(size)](feats[small], h)
            feats[size] = h
        return self.to_rgb(h)

    def early_features(self, z, c=None):
        """Activations at 8x8, for GANSpace-style PCA."""
        return self.ups["8"](self.init(self._latent(z, c)))


# -- its discriminator, self-supervised ----------------------------------------------

D_WIDTH = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1}


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, True)


class DownComp(nn.Module):
    """Half size by two paths, averaged: 4x4 stride-2 then 3x3 convs, and pool then 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1, bias=False)), nn.BatchNorm2d(cout),
                                  _lrelu(), _conv(cout, cout, 3), nn.BatchNorm2d(cout), _lrelu())
        self.direct = nn.Sequential(nn.AvgPool2d(2), spectral_norm(nn.Conv2d(cin, cout, 1, bias=False)),
                                    nn.BatchNorm2d(cout), _lrelu())

    def forward(self, x):
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8x8 features -> an image of `size` px, for D's self-supervision (reconstructing its input)."""

    def __init__(self, cin: int, size: int, width: int = 32):
        super().__init__()
        layers, s, c = [nn.AdaptiveAvgPool2d(8)], 8, cin
        while s < size:
            layers.append(_up(c, width))
            c, s = width, s * 2
        layers += [_conv(c, 3, 3, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(h)


class FastGANDiscriminator(nn.Module):
    """FastGAN's D (Liu et al. 2021) at 32-128 px: two-path down blocks to 8x8, a 4x4 conv to a
    5x5 map of logits, and two small decoders that must rebuild the (augmented) real image
    from D's 8x8 features and one quarter of it from its 16x16 features. Reconstructing keeps
    D's features descriptive of the whole image, which on a few hundred images keeps it from
    memorising a few details. The published code scores the rebuilt images with LPIPS; here
    it is the mean squared error (as lightweight-gan does), so nothing is downloaded."""

    def __init__(self, res: int, channels: int = 32, n_classes: int = 0):
        super().__init__()
        width = {s: max(8, channels * m) for s, m in D_WIDTH.items()}
        self.res = res
        self.from_rgb = nn.Sequential(_conv(3, width[res], 3), _lrelu())
        self.downs = nn.ModuleDict()
        size = res
        while size > 8:
            self.downs[str(size // 2)] = DownComp(width[size], width[size // 2])
            size //= 2
        self.head = nn.Sequential(spectral_norm(nn.Conv2d(width[8], width[4], 1, bias=False)),
                                  nn.BatchNorm2d(width[4]), _lrelu(),
                                  spectral_norm(nn.Conv2d(width[4], 1, 4, 1, 0, bias=False)))
        self.embed = nn.Embedding(n_classes, width[8]) if n_classes else None
        self.target = min(res, 64)
        self.decode_whole = Decoder(width[8], self.target)
        self.decode_part = Decoder(width[16], self.target) if res >= 32 else None

    def forward(self, x, c=None, reconstruct: bool = False):
        h, feats = self.from_rgb(x), {}
        for size, block in self.downs.items():
            h = block(h)
            feats[int(size)] = h
        out = self.head(h).flatten(1)
        if self.embed is not None:
            out = out + class_projection(self.embed, h, c)[:, None]
        if not reconstruct:
            return out
        return out, self.reconstruction_error(x, feats)

    def reconstruction_error(self, x, feats) -> torch.Tensor:
        whole = F.interpolate(x, size=self.target, mode="bilinear", align_corners=False, antialias=True)
        error = F.mse_loss(self.decode_whole(feats[8]), whole)
        if self.decode_part is not None:
            # One quarter, the same for the whole batch (as in the published code), drawn from
            # the global RNG so that a resumed run draws the same ones.
            q = int(torch.randint(4, ()))
            f, half = feats[16], self.res // 2
            fy, fx = (q // 2) * 8, (q % 2) * 8
            iy, ix = (q // 2) * half, (q % 2) * half
            part = F.interpolate(x[:, :, iy:iy + half, ix:ix + half], size=self.target, mode="bilinear",
                                 align_corners=False, antialias=True)
            error = error + F.mse_loss(self.decode_part(f[:, :, fy:fy + 8, fx:fx + 8]), part)
        return error
