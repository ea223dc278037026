"""The training images on the training device, and the batches drawn from them."""
import math

import numpy as np
import torch

from core.data.imageset import ImageSet


class ImageFeed:
    def __init__(self, data: ImageSet, device: torch.device, conditional: bool):
        self.device = device
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
        # Keep the whole set on the training device when it fits comfortably:
        # batches are then gathered there, with no per-step host work.
        self.home = device if _fits(images, device) else torch.device("cpu")
        self.images = images.to(self.home)
        self.labels = torch.from_numpy(data.labels).to(self.home) if conditional else None

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """n random images in [-1, 1], their classes, and classes for n fakes (drawn as often as the data has them)."""
        idx = torch.randint(len(self), (n,), device=self.home)
        real = self.images.index_select(0, idx).to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            real = real.contiguous(memory_format=torch.channels_last)
        real = real.float() / 127.5 - 1
        c_real = c_fake = None
        if self.labels is not None:
            c_real = self.labels[idx].to(self.device)
            pick = torch.randint(len(self), (n,), device=self.home)
            c_fake = self.labels[pick].to(self.device)
        return real, c_real, c_fake

    def preview(self, n: int, seed: int) -> np.ndarray:
        """n training images (repeated if there are fewer), uint8 HWC, the same for a seed."""
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=gen).repeat(math.ceil(n / len(self)))[:n]
        return self.images.index_select(0, idx.to(self.home)).permute(0, 2, 3, 1).cpu().numpy()


def _fits(images: torch.Tensor, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() < 0.25 * free
