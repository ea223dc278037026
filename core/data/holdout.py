"""A held-out split: images kept back from training, so that evaluation has some the generator
never saw (the data-copying test compares generated images with them).

Which images are held out depends only on their names and the run's seed, not on the order
of the files, so a folder that gains images keeps its old split for the old ones. The trainer
records the chosen names in the run folder (holdout.json); a resume uses that list.
"""
import hashlib
from dataclasses import replace

import numpy as np

from core.data.imageset import ImageSet

# Below this many images every one is needed for training, and a tenth would be under 20
# images: too few for the nearest-neighbour statistics (Meehan et al. 2020 use hundreds).
HOLDOUT_MIN_IMAGES = 200


def pick_held_out(names: list[str], fraction: float, seed: int, labels=None) -> list[str]:
    """round(fraction * n) names of each class, chosen by a hash of (seed, name); none for a small set.

    Per class, so that a class of 3 images among 1,000 is never held out whole (a conditional G
    would then have none of it to learn from) and every class is evaluated in its own share.
    """
    if fraction <= 0 or len(names) < HOLDOUT_MIN_IMAGES:
        return []
    classes = [0] * len(names) if labels is None else [int(c) for c in labels]
    held = []
    for c in sorted(set(classes)):
        members = [name for name, k in zip(names, classes) if k == c]
        rank = sorted(members, key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).digest())
        held += rank[:round(fraction * len(members))]
    return sorted(held)


def split(data: ImageSet, held_names: list[str]) -> tuple[ImageSet, ImageSet]:
    """(the training part, the held-out part) of `data`; names not in it are ignored."""
    chosen = set(held_names)
    held = np.array([name in chosen for name in data.names], dtype=bool)
    return _subset(data, ~held, "train"), _subset(data, held, "held-out")


def _subset(data: ImageSet, keep: np.ndarray, part: str) -> ImageSet:
    if keep.all():
        return data
    names = [n for n, k in zip(data.names, keep) if k]
    # Its own cache key: features cached for the whole set must not stand for a part of it.
    key = hashlib.sha256("\n".join([data.key, part, *names]).encode()).hexdigest()
    return replace(data, images=data.images[keep], labels=None if data.labels is None else data.labels[keep],
                   names=names, key=key, skipped=data.skipped if part == "train" else [])
