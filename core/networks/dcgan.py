"""The PyTorch DCGAN tutorial networks: transposed convs + BatchNorm, fast on a CPU."""
import math

from torch import nn

from core.networks.layers import ClassEmbedding, class_projection, dcgan_init


def _n_doublings(res: int) -> int:
    """Number of x2 steps between the 4x4 base and `res`."""
    return int(math.log2(res)) - 2


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
        self.apply(dcgan_init)

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
        self.apply(dcgan_init)

    def forward(self, x, c=None):
        h = self.features(x)
        out = self.out(h).flatten()
        if self.proj is not None:
            out = out + class_projection(self.proj, h, c)
        return out
