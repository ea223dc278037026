"""Facts about a data set's files, and the curation tools built on them.

- `inspect` decodes one file: size, format, dimensions, content hash, perceptual
  hash, or the reason it is broken. Results are kept in the set's scan.json, so
  each file is decoded once (the importer inspects files as it copies them).
- `report` sums them up: counts, formats, sizes, aspect ratios, broken files.
- `exact_duplicates` groups identical bytes; `near_duplicates` groups images
  whose perceptual hashes differ in few bits (re-encoded, resized, lightly edited
  copies); `outlier_scores` ranks images by their distance to their k nearest
  neighbours in a feature space, so images that don't belong come first.
"""
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn

from . import atomic
from .data import UnusableImage, decode_image
from .datasets import DataSet

SCAN_FILE = "scan.json"
# Near duplicates, tuned on the emoji set against 600 JPEG-re-encoded and resized copies
# (quality 60-95, 48-128 px): the pair rules below catch 99.8% of them. Of 1,911 emoji,
# 37 pairs of different ones are grouped too: variants that look alike at 16 px
# (supervillain / male_supervillain, slightly smiling / slightly frowning face).
# The page shows every group before anything is removed.
NEAR_DUPLICATE_BITS = 10
NEAR_DUPLICATE_CHANGED = 0.02
OUTLIER_RES = 64  # features of thumbnails: enough to tell what an image shows


@dataclass
class FileInfo:
    name: str
    bytes: int
    sha256: str
    format: str | None = None
    width: int = 0
    height: int = 0
    phash: str | None = None  # 64-bit perceptual hash, hex
    error: str | None = None  # why the file cannot be used; None when it is fine

    @property
    def ok(self) -> bool:
        return self.error is None


def inspect(name: str, data: bytes) -> FileInfo:
    info = FileInfo(name, len(data), hashlib.sha256(data).hexdigest())
    try:
        image = decode_image(data)
    except UnusableImage as exc:
        info.error = str(exc)
        return info
    with Image.open(io.BytesIO(data)) as raw:  # header only: the decoded copy lost its format
        info.format = raw.format
    info.width, info.height = image.size
    info.phash = perceptual_hash(image)
    return info


def perceptual_hash(image: Image.Image) -> str:
    """pHash: signs of the lowest 8x8 DCT frequencies of a 32x32 grey thumbnail vs their median.

    Robust to re-encoding, resizing and small colour changes, unlike a content hash."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term (overall brightness) would skew the median
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


# --- the scan cache ------------------------------------------------------------------


def load_scan(ds: DataSet) -> dict[str, FileInfo]:
    path = ds.path / SCAN_FILE
    try:
        return {d["name"]: FileInfo(**d) for d in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def save_scan(ds: DataSet, infos: dict[str, FileInfo]) -> None:
    atomic.write_json(ds.path / SCAN_FILE, [asdict(i) for i in sorted(infos.values(), key=lambda i: i.name)])


def scan(ds: DataSet, progress=None) -> dict[str, FileInfo]:
    """FileInfo of every file in the set; only files new or changed since the last scan are decoded."""
    cached = load_scan(ds)
    names = ds.file_names()
    todo = [n for n in names if n not in cached or cached[n].bytes != (ds.files_dir / n).stat().st_size]
    for i, name in enumerate(todo):
        cached[name] = inspect(name, (ds.files_dir / name).read_bytes())
        if progress:
            progress(i + 1, len(todo))
    infos = {n: cached[n] for n in names}
    if todo or len(infos) != len(cached):  # new, changed or removed files
        save_scan(ds, infos)
    return infos


# --- report ----------------------------------------------------------------------------


def report(infos: list[FileInfo]) -> dict:
    good = [i for i in infos if i.ok]
    aspects = [i.width / i.height for i in good]
    return {
        "files": len(infos), "usable": len(good), "broken": [(i.name, i.error) for i in infos if not i.ok],
        "bytes": sum(i.bytes for i in infos),
        "formats": Counter(i.format for i in good).most_common(),
        "widths": [i.width for i in good], "heights": [i.height for i in good], "aspects": aspects,
        "smallest": min((min(i.width, i.height) for i in good), default=0),
        "square": sum(0.95 <= a <= 1.05 for a in aspects),
    }


# --- duplicates ------------------------------------------------------------------------


def exact_duplicates(infos: list[FileInfo]) -> list[list[str]]:
    """Groups (2+) of files with identical bytes, each sorted by name."""
    by_hash: dict[str, list[str]] = {}
    for info in infos:
        by_hash.setdefault(info.sha256, []).append(info.name)
    return sorted(sorted(g) for g in by_hash.values() if len(g) > 1)


def near_duplicates(infos: list[FileInfo], open_image: Callable[[str], Image.Image],
                    max_bits: int = NEAR_DUPLICATE_BITS, max_changed: float = NEAR_DUPLICATE_CHANGED) -> list[list[str]]:
    """Groups (2+) of usable images that are the same picture in different files.

    Candidates are pairs whose perceptual hashes differ in at most max_bits of 64.
    A hash alone confuses images that differ in one small region (two smiley
    emoji that differ only in the mouth), so each candidate pair is confirmed on
    16x16 colour thumbnails: at most max_changed of their pixels may differ by more
    than 48 levels. Re-encoding and resizing change many pixels a little; another
    picture changes some pixels a lot. Exact copies are left to exact_duplicates:
    a group here holds at least two different files. Linking is transitive."""
    unique: dict[str, list[FileInfo]] = {}
    for info in infos:
        if info.ok and info.phash:
            unique.setdefault(info.sha256, []).append(info)
    reps = [group[0] for group in unique.values()]
    if len(reps) < 2:
        return []
    hashes = np.array([int(r.phash, 16) for r in reps], dtype=np.uint64)
    thumbs: dict[int, np.ndarray] = {}

    def thumb(i):
        if i not in thumbs:
            small = open_image(reps[i].name).convert("RGB").resize((16, 16), Image.Resampling.BOX)
            thumbs[i] = np.asarray(small, dtype=np.int16)
        return thumbs[i]

    parent = list(range(len(reps)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(reps) - 1):
        distance = np.bitwise_count(hashes[i] ^ hashes[i + 1:])
        for j in (np.flatnonzero(distance <= max_bits) + i + 1).tolist():
            changed = (np.abs(thumb(i) - thumb(j)).max(axis=2) > 48).mean()
            if changed <= max_changed:
                parent[root(j)] = root(i)
    groups: dict[int, list[str]] = {}
    distinct = Counter()  # different contents per group
    for i, rep in enumerate(reps):
        groups.setdefault(root(i), []).extend(info.name for info in unique[rep.sha256])
        distinct[root(i)] += 1
    return sorted(sorted(g) for r, g in groups.items() if distinct[r] > 1)


def file_opener(ds: DataSet) -> Callable[[str], Image.Image]:
    """Decoded images of a data set's files by name (for near_duplicates)."""
    return lambda name: decode_image((ds.files_dir / name).read_bytes())


def keep_one(groups: list[list[str]], infos: dict[str, FileInfo]) -> list[str]:
    """The files to drop so that one per group stays: the largest image (then the first name)."""
    drop = []
    for group in groups:
        keep = min(group, key=lambda n: (-infos[n].width * infos[n].height, -infos[n].bytes, n))
        drop.extend(n for n in group if n != keep)
    return drop


# --- outliers ----------------------------------------------------------------------------


def outlier_scores(features: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean distance of each image to its k nearest other images (higher = more unlike the rest)."""
    n = len(features)
    if n < 2:
        return np.zeros(n)
    k = min(k, n - 1)
    sq = (features ** 2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * features @ features.T, 0)
    np.fill_diagonal(d2, np.inf)
    nearest = np.sqrt(np.partition(d2, k - 1, axis=1)[:, :k])
    return nearest.mean(axis=1)


def outlier_ranking(version_path, fit: str = "crop", k: int = 5, progress=None) -> list[tuple[str, float]]:
    """(name, score) for a version's usable images, most unlike the rest first.

    Scores are distances in EfficientNet-Lite0 feature space, computed at 64 px
    and cached with the decoded images, so re-ranking costs nothing."""
    from . import features  # torch: only loaded when outliers are asked for
    from .data import load_image_set

    images = load_image_set(str(version_path), OUTLIER_RES, fit)
    feats = features.cached_features(images.key, lambda: images.images, "efficientnet", progress)
    scores = outlier_scores(feats, k)
    return [(images.names[i], float(scores[i])) for i in np.argsort(-scores)]
