"""The built-in data set: Google Noto emoji at 64 px (see data/emoji/README.md).

The images live in one atlas PNG plus a JSON index, both written by
scripts/build_emoji_dataset.py. Only Pillow and numpy are needed to read them.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.paths import EMOJI_DIR

ATLAS_NAME = "emoji-64.png"
INDEX_NAME = "emoji.json"
BUILD_HINT = "python scripts/build_emoji_dataset.py"


@dataclass
class BuiltinSet:
    """An in-memory labelled image set."""
    images: np.ndarray        # uint8 [N, 64, 64, 3], RGB
    labels: np.ndarray        # int64 [N], index into class_names
    class_names: list[str]    # sorted category names
    names: list[str]          # unique per image, e.g. "grinning" (emoji short_name)


def emoji_files() -> list[Path]:
    """The files whose bytes define the emoji set (for cache keys)."""
    return [EMOJI_DIR / ATLAS_NAME, EMOJI_DIR / INDEX_NAME]


def load_emoji() -> BuiltinSet:
    """Load the emoji atlas as N RGB tiles labelled by emoji category."""
    missing = [p for p in emoji_files() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"built-in emoji data missing ({', '.join(map(str, missing))}); "
            f"rebuild it with `{BUILD_HINT}`")

    index = json.loads((EMOJI_DIR / INDEX_NAME).read_text(encoding="utf-8"))
    tile, columns, count = index["tile"], index["columns"], index["count"]
    entries = index["emoji"]
    if len(entries) != count:
        raise ValueError(f"{INDEX_NAME}: count {count} but {len(entries)} entries")

    with Image.open(EMOJI_DIR / ATLAS_NAME) as im:
        atlas = np.asarray(im.convert("RGB"))
    rows = -(-count // columns)  # ceil
    if atlas.shape[:2] != (rows * tile, columns * tile):
        raise ValueError(f"{ATLAS_NAME}: shape {atlas.shape[:2]} does not fit "
                         f"{count} tiles of {tile} px in {columns} columns")

    # [rows*T, cols*T, 3] -> [rows, T, cols, T, 3] -> [rows, cols, T, T, 3]:
    # row-major tile order, then drop the white padding cells after the last one.
    grid = atlas.reshape(rows, tile, columns, tile, 3).swapaxes(1, 2)
    images = np.ascontiguousarray(grid.reshape(-1, tile, tile, 3)[:count])

    class_names = sorted(index["categories"])
    class_of = {name: i for i, name in enumerate(class_names)}
    labels = np.array([class_of[e["category"]] for e in entries], dtype=np.int64)
    names = [e["short_name"] for e in entries]
    return BuiltinSet(images=images, labels=labels, class_names=class_names, names=names)
