"""A projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster").

D judges images in the feature space of a frozen ImageNet network instead of
learning its own features from a few hundred images:

1. EfficientNet-Lite0 (the offline weights of core.features), tapped after four
   stages: 24, 40, 112 and 320 channels at strides 4, 8, 16 and 32.
2. Fixed random projections, never trained: cross-channel mixing (a 1x1 conv per
   tap, to 64, 128, 256 and 512 channels) and cross-scale mixing (a top-down path
   that upsamples each level x2, bilinearly, adds the next finer one and mixes it
   with a 1x1 conv). They spread the pretrained features over all channels and
   scales, so no small part of them is enough for D to win.
3. One small trained head per scale: stride-2 4x4 conv blocks (spectral norm,
   BatchNorm, LeakyReLU 0.2) down to 8x8, then a 4x4 conv to a 5x5 map of logits.
   The heads are a quarter of the published width (see HEAD_CHANNELS).
4. One more head of the same kind on the image itself, without BatchNorm: the
   pixel head (see below).
The logits of all heads together are D's output, [N, logits].

As in the published code: hinge loss, DiffAugment (colour, translation, cutout)
on every image D sees, no R1, the backbone always in eval mode. Changed, because
here D sees small images (the paper upsamples every image to 224 px; on a CPU
that costs 5x (64 -> 128 px) to 30x (-> 224 px) per batch), and why:

- The images go in at their own size, but at least 64 px (feature_res; smaller ones
  are brought up bilinearly, core.training.config.FEATURE_MIN_RES). At 64 px the
  coarsest scale is 4 px (2 px before the cross-scale path's x2), where the paper's
  heads all start at 8 px or more; taps below 4 px are dropped (the coarsest, in runs
  from before feature_res that fed 32 px images in as they are).
- Every head's map of logits is brought to the same 5x5 grid (nearest), so each
  scale has an equal say, as at 224 px. Left at 1 logit against the others' 25,
  the coarsest (the most global) scale weighed 1/76 of D's verdict, and G drew
  patchworks with a 2x2 tiling.
- The pixel head. ImageNet features hardly see absolute colour, and BatchNorm in
  a head normalises each batch of fakes on its own, so a batch that is all one hue
  looks to such a head like any other: G collapsed to one or two colours on every
  emoji run, and drew grey or orange backgrounds where every real one is white.
  A head that sees the pixels, without BatchNorm, does see it (bench screen in
  the README: white backgrounds and several colours, KID 137 vs 151 x10^-3).

The frozen backbone is not part of the state dict: it is rebuilt from the weight
file, so checkpoints stay small. The random projections are (their seed is fixed,
but saving them makes a checkpoint self-contained).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from core.networks.layers import class_projection

TAPS = (2, 4, 10, 15)          # EfficientNet-Lite0 blocks whose outputs are tapped
TAP_CHANNELS = (24, 40, 112, 320)
MIXED_CHANNELS = (64, 128, 256, 512)  # after cross-channel mixing ("expand", cout = 64)
FUSED_CHANNELS = (64, 64, 128, 256)   # after cross-scale mixing, fine to coarse
LOGIT_GRID = 5  # every head's map of logits is LOGIT_GRID x LOGIT_GRID (a 4x4 conv on 8x8 features)
# The published heads' widths at each size, divided by 4: at full width the heads cost more
# than the backbone on a CPU (0.7 of 1.3 s for a forward pass of 64 images at 64 px).
HEAD_CHANNELS = {s: c // 4 for s, c in {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32}.items()}
PROJECTION_SEED = 0


class FeaturePyramid(nn.Module):
    """Frozen EfficientNet-Lite0 taps -> fixed random cross-channel and cross-scale mixing."""

    def __init__(self):
        super().__init__()
        from core.features import _EfficientNetEmbedding
        net = _EfficientNetEmbedding().net
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[:TAPS[-1] + 1])
        with torch.random.fork_rng():  # the same projections in every run, whatever the seed
            torch.manual_seed(PROJECTION_SEED)
            self.ccm = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in zip(TAP_CHANNELS, MIXED_CHANNELS))
            # Coarse to fine: each mixes the sum of the coarser result and this level, after x2.
            ins = list(MIXED_CHANNELS[::-1])
            outs = list(FUSED_CHANNELS[::-1])
            self.csm = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in zip(ins, outs))
        self.requires_grad_(False)
        self.eval()
        self.to(memory_format=torch.channels_last)  # 1.6x faster depthwise convolutions on a CPU

    def train(self, mode: bool = True):
        return super().train(False)  # BatchNorm of the backbone keeps its ImageNet statistics

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        mixed = [conv(t) for conv, t in zip(self.ccm, taps)]
        fused, h = [], None
        for level, conv in zip(reversed(mixed), self.csm):  # coarse to fine
            h = level if h is None else h + level
            h = conv(F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=True))
            fused.append(h)
        return fused[::-1]  # fine to coarse


def _down(cin: int, cout: int, batchnorm: bool) -> nn.Sequential:
    norm = [nn.BatchNorm2d(cout)] if batchnorm else []
    return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), *norm, nn.LeakyReLU(0.2, True))


class ScaleHead(nn.Module):
    """One scale's discriminator: down to 8x8 (or less), then a 4x4 conv to a LOGIT_GRID map of logits."""

    def __init__(self, channels: int, size: int, n_classes: int = 0, batchnorm: bool = True):
        super().__init__()
        layers = []
        while size > 8:
            cout = HEAD_CHANNELS[size // 2]
            layers.append(_down(channels, cout, batchnorm))
            channels, size = cout, size // 2
        self.body = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Conv2d(channels, 1, 4, 1, 0, bias=False))
        # Conditional: a projection (Miyato & Koyama 2018) of the features on a class embedding.
        self.embed = nn.Embedding(n_classes, channels) if n_classes else None

    def forward(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = self.body(h)
        out = F.interpolate(self.out(h), size=LOGIT_GRID, mode="nearest").flatten(1)
        if self.embed is not None:
            out = out + class_projection(self.embed, h, c)[:, None]
        return out


class ProjectedDiscriminator(nn.Module):
    def __init__(self, res: int, n_classes: int = 0, feature_res: int | None = None):
        super().__init__()
        self.res, self.feature_res = res, feature_res or res
        self.pyramid = FeaturePyramid()
        sizes = [self.feature_res // s * 2 for s in (4, 8, 16, 32)]  # each level is upsampled x2 by the mixing
        self.used = [i for i, s in enumerate(sizes) if s >= 4]
        self.heads = nn.ModuleList(ScaleHead(FUSED_CHANNELS[i], sizes[i], n_classes) for i in self.used)
        self.pixel = ScaleHead(3, res, n_classes, batchnorm=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        seen = x if self.feature_res == self.res else F.interpolate(
            x, size=self.feature_res, mode="bilinear", align_corners=False, antialias=self.feature_res < self.res)
        levels = self.pyramid(seen)
        logits = [head(levels[i], c) for i, head in zip(self.used, self.heads)]
        return torch.cat([*logits, self.pixel(x, c)], dim=1)

    def requires_grad_(self, requires_grad: bool = True):
        super().requires_grad_(requires_grad)
        self.pyramid.requires_grad_(False)  # frozen whatever the trainer asks
        return self

    # The backbone comes from its weight file, not from checkpoints.
    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        return {k: v for k, v in state.items() if not _is_backbone(k)}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        # Runs saved before the pixel head (December 2026) resume with a fresh one.
        full = {k: v for k, v in super().state_dict().items() if _is_backbone(k) or k.startswith("pixel.")}
        full.update(state)
        return super().load_state_dict(full, strict=strict, assign=assign)


def _is_backbone(key: str) -> bool:
    return key.startswith(("pyramid.stem.", "pyramid.blocks."))
