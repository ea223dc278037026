"""Is the generator copying its training images? Per-image near-copy flags and whole-model
data-copying statistics, on image features (core.features).

- The near-copy flag compares how close a generated image comes to its nearest training
  image with how close new real images of the same kind come (the held-out images, or
  when a run has none, each training image to the others). Both distances are measured
  relative to that training image's own nearest neighbour, so that a dense corner of the
  data (many similar images) does not read as copying.
- C_T (Meehan et al. 2020, "A Non-Parametric Test to Detect Data-Copying in Generative
  Models", https://arxiv.org/abs/2004.05675): the data is cut into cells by k-means on
  the training images; in each cell a Mann-Whitney U test asks whether generated images
  lie closer to the training set than held-out ones do. The cells' z-scores, weighted by
  their share of held-out images, sum to C_T: near 0 for a generator that makes new
  images, well below 0 (say < -3) for one that copies.
- Authenticity (Alaa et al. 2022, "How Faithful is your Synthetic Data?",
  https://arxiv.org/abs/2102.08921): the share of generated images that are not closer
  to their nearest training image than that image's own nearest real neighbour is. New
  images of the same kind are not 1.0 either, so the held-out images' own share is given
  beside it.
"""
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans

from core.evaluation import metrics

COPY_QUANTILE = 0.02  # flag what comes closer than all but 2 % of new real images do
MIN_TRAIN = 3  # a training image's nearest other one, leaving one out: at least 3 images
# C_T's cells: about this many held-out images each (at most MAX_CELLS cells), and a cell
# counts only with at least MIN_IN_CELL held-out and generated images (the z-score of a
# Mann-Whitney U test is a fair normal approximation from about 5 per side).
HELD_OUT_PER_CELL = 20
MAX_CELLS = 20
MIN_IN_CELL = 5
# C_T is a weighted mean of z-scores: beyond +-3 is rarer than 1 in 700 by chance alone.
C_T_COPYING, C_T_UNDERFIT = -3.0, 3.0


# Neighbours looked at past a training image's exact duplicates for its nearest distinct one.
NEIGHBOURS = 8


class TrainingNeighbours:
    """A training set's features with each image's distance to its nearest distinct other image:
    its radius, the yardstick of "close" in that corner of the data. An exact duplicate (distance 0)
    is the same picture, not a neighbour; counting it would make the radius 0 and hide copies of
    exactly the images most likely to be memorised. Computed once per training set: it costs the
    square of the set's size."""

    def __init__(self, train: np.ndarray):
        if len(train) < MIN_TRAIN:
            raise ValueError(f"the copying check needs at least {MIN_TRAIN} training images, not {len(train)}")
        self.train = train
        self._idx, dist = metrics.nearest(train, train, k=min(len(train), NEIGHBOURS))
        self._dist = np.where(dist > 0, dist, np.inf)  # itself and exact duplicates are not neighbours
        radius = self._dist.min(axis=1)
        # an image with more duplicates than NEIGHBOURS: the typical radius of the set
        self.radius = np.where(np.isfinite(radius), radius, np.median(radius[np.isfinite(radius)]))

    def ratios(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each query: its nearest training image, the distance, and that distance over the
        training image's radius (below 1: closer to it than any other training image is)."""
        idx, dist = metrics.nearest(self.train, query, k=1)
        idx, dist = idx[:, 0], dist[:, 0]
        return idx, dist, dist / self.radius[idx]

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ratios() of each training image against the others: its nearest distinct other image,
        whose radius is then measured without the query."""
        rows = np.arange(len(self.train))
        col = self._dist.argmin(axis=1)
        idx, dist = self._idx[rows, col], self._dist[rows, col]
        others = np.where(self._idx[idx] == rows[:, None], np.inf, self._dist[idx])
        radius = others.min(axis=1)
        radius = np.where(np.isfinite(radius), radius, self.radius[idx])
        return idx, dist, dist / radius

    def authenticity(self, images: np.ndarray) -> float:
        """Alaa et al.'s authenticity: the share of `images` not closer to their nearest training
        image than it is to its own nearest other training image."""
        return float(np.mean(self.ratios(images)[2] >= 1.0))


@dataclass
class CopyReference:
    """The near-copy flag of one training set: a generated image is flagged when its distance
    ratio (TrainingNeighbours.ratios) is at or below the COPY_QUANTILE quantile of new real images'
    ratios (at or below: when the data's duplicates make that quantile 0, exact copies still count)."""
    neighbours: TrainingNeighbours
    threshold: float
    reference: str  # "held-out" or "training" (leave-one-out)

    @classmethod
    def build(cls, train: np.ndarray, held_out: np.ndarray | None) -> "CopyReference":
        neighbours = TrainingNeighbours(train)
        if held_out is not None and len(held_out):
            ratios, reference = neighbours.ratios(held_out)[2], "held-out"
        else:
            ratios, reference = neighbours.leave_one_out()[2], "training"
        return cls(neighbours, float(np.quantile(ratios, COPY_QUANTILE)), reference)

    def flags(self, query: np.ndarray) -> np.ndarray:
        return self.neighbours.ratios(query)[2] <= self.threshold


def c_t(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, seed: int = 0) -> dict:
    """Meehan et al.'s C_T: {"c_t", "cells" (used), "z" (per used cell)}; c_t is None when no
    cell has enough of both kinds of images."""
    k = int(np.clip(len(held_out) // HELD_OUT_PER_CELL, 1, MAX_CELLS))
    cells = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(train)
    held_cell, gen_cell = cells.predict(held_out), cells.predict(generated)
    held_d = metrics.nearest(train, held_out, k=1)[1][:, 0]
    gen_d = metrics.nearest(train, generated, k=1)[1][:, 0]
    z, weight = [], []
    for cell in range(k):
        h, g = held_d[held_cell == cell], gen_d[gen_cell == cell]
        if len(h) < MIN_IN_CELL or len(g) < MIN_IN_CELL:
            continue
        u = mannwhitneyu(g, h, alternative="two-sided").statistic  # pairs with the generated image farther
        m, n = len(g), len(h)
        z.append((u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))
        weight.append(len(h))
    value = float(np.dot(weight, z) / np.sum(weight)) if z else None
    return {"c_t": value, "cells": len(z), "z": [float(v) for v in z]}


# -- what a generator that memorised would plausibly draw (for tests and bench/copy_check.py)

def _jpeg(images: np.ndarray, rng) -> np.ndarray:
    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=70)
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    return np.stack(out)


def _shift(images: np.ndarray, rng, pixels: int = 2) -> np.ndarray:
    """Each image moved by `pixels` in a random direction on each axis, edges repeated."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), mode="edge")
    dy, dx = rng.choice([0, 2 * pixels], size=(2, n))
    return np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def _brightness(images: np.ndarray, rng, amount: float = 0.05) -> np.ndarray:
    factor = 1 + amount * rng.choice([-1.0, 1.0], size=(len(images), 1, 1, 1))
    return np.clip(np.rint(images * factor), 0, 255).astype(np.uint8)


PERTURBATIONS = {"JPEG 70": _jpeg, "2 px shift": _shift, "brightness 5%": _brightness}


def perturb(images: np.ndarray, names: list[str], rng: np.random.Generator) -> np.ndarray:
    for name in names:
        images = PERTURBATIONS[name](images, rng)
    return images


def pixel_features(images: np.ndarray, side: int = 16) -> np.ndarray:
    """Tiny thumbnails, each standardised: near-copies stay near under JPEG, shifts and brightness."""
    small = np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BOX), dtype=np.float32)
                      for im in images]).reshape(len(images), -1)
    small -= small.mean(axis=1, keepdims=True)
    return small / np.maximum(small.std(axis=1, keepdims=True), 1e-6)
