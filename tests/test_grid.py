"""Images out: uint8 conversion and GIFs."""
import io

import numpy as np
import torch
from PIL import Image

from core import grid


def test_to_uint8_maps_minus_one_to_one_onto_0_to_255():
    images = torch.tensor([-2.0, -1.0, 0.0, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert grid.to_uint8(images)[0, 0, :, 0].tolist() == [0, 0, 128, 255]


def test_round_trip_gif_plays_there_and_back():
    images = np.stack([np.full((8, 8, 3), 60 * i, np.uint8) for i in range(4)])
    with Image.open(io.BytesIO(grid.round_trip_gif(images, ms_per_frame=50))) as gif:
        shades = []
        for i in range(gif.n_frames):
            gif.seek(i)
            shades.append(gif.convert("RGB").getpixel((4, 4))[0])
        assert gif.info["duration"] == 50
    assert shades == [0, 60, 120, 180, 120, 60]
