"""Image grids for sample sheets (PIL + numpy; no torchvision at run time)."""
import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import atomic


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [N, 3, H, W] -> uint8 [N, H, W, 3]."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> Image.Image:
    """Tile uint8 [N, H, W, 3] images into one picture with white gaps."""
    n, h, w, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = img
    return Image.fromarray(sheet)


def save_png(image: Image.Image, path: Path | str) -> None:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic.write_bytes(path, buf.getvalue())
