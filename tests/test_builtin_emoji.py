"""The committed emoji atlas loads back as the set data/emoji/emoji.json describes."""
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import builtin
from core.paths import EMOJI_DIR


@pytest.fixture(scope="module")
def emoji():
    return builtin.load_emoji()


@pytest.fixture(scope="module")
def index():
    return json.loads((EMOJI_DIR / "emoji.json").read_text(encoding="utf-8"))


def test_count_matches_index(emoji, index):
    assert len(emoji.images) == len(emoji.labels) == len(emoji.names) == index["count"]
    assert index["count"] >= 1900


def test_shapes_and_dtypes(emoji):
    n = len(emoji.names)
    assert emoji.images.shape == (n, 64, 64, 3) and emoji.images.dtype == np.uint8
    assert emoji.labels.shape == (n,) and emoji.labels.dtype == np.int64


def test_labels_are_categories(emoji, index):
    assert emoji.class_names == sorted(set(emoji.class_names)) == index["categories"]
    assert [emoji.class_names[i] for i in emoji.labels] == [e["category"] for e in index["emoji"]]
    assert set(emoji.labels.tolist()) == set(range(len(emoji.class_names)))  # no empty class


def test_names_unique(emoji):
    assert len(set(emoji.names)) == len(emoji.names)


def test_composited_on_white(emoji):
    # Transparent corners became white; no tile in this set reaches its corners.
    corners = emoji.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all()
    # ...and no tile is blank.
    assert (emoji.images.reshape(len(emoji.names), -1) < 250).any(axis=1).all()


def test_known_tiles(emoji):
    # Atlas order = sort_order: the first emoji is the (yellow) grinning face.
    assert emoji.names[0] == "grinning"
    assert emoji.class_names[emoji.labels[0]] == "Smileys & Emotion"
    r, g, b = emoji.images[0, 32, 32].astype(int)
    assert r > 200 and g > 180 and b < 120, "centre of grinning face should be yellow"
    heart = emoji.names.index("heart")
    r, g, b = emoji.images[heart, 32, 32].astype(int)
    assert r > 200 and g < 100 and b < 100, "centre of red heart should be red"


def test_emoji_files_exist():
    files = builtin.emoji_files()
    assert [f.name for f in files] == ["emoji-64.png", "emoji.json"]
    assert all(f.is_file() for f in files)


def test_missing_files_name_the_script(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "EMOJI_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="build_emoji_dataset.py"):
        builtin.load_emoji()


# Opt-in: compare with the source package (not available in CI, no network here).
TARBALL = os.environ.get("GANSCOPE_EMOJI_TGZ")


@pytest.mark.skipif(not TARBALL, reason="set GANSCOPE_EMOJI_TGZ to the emoji-datasource-google .tgz")
def test_first_tile_matches_source_png(emoji, index):
    first = index["emoji"][0]["unified"].lower()
    with tarfile.open(Path(TARBALL)) as tar:
        rgba = Image.open(tar.extractfile(f"package/img/google/64/{first}.png")).convert("RGBA")
        rgba = np.asarray(rgba).astype(float)
    # "over" on white, written independently of the build script's Pillow call.
    alpha = rgba[..., 3:] / 255
    expected = rgba[..., :3] * alpha + 255 * (1 - alpha)
    assert np.abs(emoji.images[0] - expected).max() <= 1
