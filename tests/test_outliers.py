"""Outlier ranking finds what it is for: a planted group of foreign images ranks at the top.

Two kinds of images the project does not train on together: the built-in emoji and
scikit-learn's handwritten digits (8x8 scans, shipped inside scikit-learn, which
umap-learn depends on). Each is planted into the other, in groups of 5 to 30.
"""
import numpy as np
import pytest
from PIL import Image

from core import features
from core.data import curate
from core.data.builtin import load_emoji
from core.data.curate import FileInfo
from core.evaluation.metrics import squared_distances

BULK = 300


def digit_images(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits
    scans = load_digits().images[:n]  # 0 (paper) .. 16 (ink)
    return np.stack([np.asarray(Image.fromarray((255 - s / 16 * 255).astype(np.uint8))
                                .resize((64, 64), Image.Resampling.BILINEAR).convert("RGB")) for s in scans])


@pytest.fixture(scope="module")
def kinds():
    rng = np.random.default_rng(0)
    emoji = load_emoji().images
    emoji = emoji[rng.permutation(len(emoji))[:BULK + 30]]
    digits = digit_images(BULK + 30)
    return {name: features.extract(images, curate.OUTLIER_FEATURES) for name, images in
            (("emoji", emoji), ("digits", digits))}


@pytest.mark.parametrize("bulk,intruders", [("emoji", "digits"), ("digits", "emoji")])
@pytest.mark.parametrize("group", [5, 15, 30])
def test_a_planted_group_ranks_at_the_top(kinds, bulk, intruders, group):
    feats = np.concatenate([kinds[bulk][:BULK], kinds[intruders][BULK:BULK + group]])
    order = np.argsort(-curate.outlier_scores(feats))
    ranks = np.flatnonzero(order >= BULK)  # where the planted images came out, 0 = most unusual
    assert np.mean(ranks < group) >= 0.9, f"only {np.mean(ranks < group):.0%} in the top {group}: {ranks}"
    assert ranks.max() < 1.5 * group + 2, ranks


def test_the_old_rule_missed_them(kinds):
    """Why the rule changed: the mean distance to the 5 nearest images sees a group as normal."""
    feats = np.concatenate([kinds["emoji"][:BULK], kinds["digits"][BULK:BULK + 15]])
    d = np.sqrt(squared_distances(feats, feats))
    np.fill_diagonal(d, np.inf)
    old = np.sort(d, axis=1)[:, :5].mean(axis=1)
    assert np.mean(np.argsort(-old)[:15] >= BULK) < 0.5


def test_a_lone_outlier_still_comes_first(kinds):
    feats = np.concatenate([kinds["digits"][:BULK], kinds["emoji"][BULK:BULK + 1]])
    assert np.argmax(curate.outlier_scores(feats)) == BULK


def info(name, width, height, fmt, size=1000):
    return FileInfo(name=name, bytes=size, sha256=name, format=fmt, width=width, height=height)


def test_keep_one_keeps_the_original_not_the_bigger_file():
    infos = {i.name: i for i in (
        info("cover.png", 300, 400, "PNG", size=90_000),
        info("cover (1).jpg", 300, 400, "JPEG", size=120_000),   # re-encoded: a bigger file, same pixels
        info("cover copy.png", 300, 400, "PNG", size=90_000),
        info("small.png", 150, 200, "PNG"), info("small-big.jpg", 300, 400, "JPEG"))}
    assert sorted(curate.keep_one([["cover.png", "cover (1).jpg", "cover copy.png"]], infos)) == \
        ["cover (1).jpg", "cover copy.png"]
    assert curate.keep_one([["small.png", "small-big.jpg"]], infos) == ["small.png"]  # more pixels win first
