"""Images out: generator outputs as uint8, sample sheets, PNG and GIF files (PIL + numpy; no torchvision)."""
import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import atomic


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


def png_bytes(image: Image.Image, optimize: bool = False) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=optimize)
    return buf.getvalue()


def save_png(image: Image.Image, path: Path | str) -> None:
    atomic.write_bytes(path, png_bytes(image, optimize=True))


def gif(frames: list[Image.Image], ms_per_frame: int) -> bytes:
    """An animated GIF of the frames, in order, looping forever."""
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def round_trip_gif(images: np.ndarray, ms_per_frame: int = 120) -> bytes:
    """uint8 [N, H, W, 3] frames there and back again, for a seamless loop."""
    frames = [Image.fromarray(im) for im in images]
    return gif(frames + frames[-2:0:-1], ms_per_frame)
