"""Facts about a data set's files, and the curation tools built on them.

- `inspect` decodes one file: size, format, dimensions, content hash, perceptual
  hash, or the reason it is broken. Results are kept in the set's scan.json, so
  each file is decoded once (the importer inspects files as it copies them).
- `report` sums them up: counts, formats, sizes, aspect ratios, broken files.
- `exact_duplicates` groups identical bytes; `near_duplicates` groups images
  whose perceptual hashes differ in few bits (re-encoded, resized, lightly edited
  copies); `outlier_scores` ranks images by their distance to their k nearest
  neighbours in a feature space, so images that don't belong come first.
- `select` decides which of a version's files a new version keeps (exclusions, classes).
"""
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image
from scipy.fft import dctn

from core import atomic
from core.data.datasets import DataSet
from core.data.images import UnusableImage, decode_image, fit_image, image_format
from core.data.imageset import labels_of, load_image_set
from core.evaluation.metrics import squared_distances

SCAN_FILE = "scan.json"
# Near duplicates, tuned on the emoji set against 600 JPEG-re-encoded and resized copies
# (quality 60-95, 48-128 px): the pair rules below catch 99.8% of them. Of 1,911 emoji,
# 37 pairs of different ones are grouped too: variants that look alike at 16 px
# (supervillain / male_supervillain, slightly smiling / slightly frowning face).
# The page shows every group before anything is removed.
NEAR_DUPLICATE_BITS = 10
NEAR_DUPLICATE_CHANGED = 0.02
OUTLIER_RES = 64  # features of thumbnails: enough to tell what an image shows
OUTLIER_FEATURES = "efficientnet-stages"  # colour and texture as well as content (core.features)
# An image's score is its distance to its k-th nearest neighbour, k = this share of the set:
# groups of intruders up to that size still stand out. 1/8 found planted groups of 5-30 in
# 300 images (bench/outliers.py); 1/5 did about as well and 5 nearest (the old rule) did not.
OUTLIER_GROUP_SHARE = 1 / 8
OUTLIER_NEIGHBOURS = 5


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
    info.format = image_format(data)  # from the header: the decoded copy lost its format
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


def duplicate_groups(ds: DataSet, files: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """(exact, near) duplicate groups among `files` of a data set, from its scan."""
    infos = load_scan(ds)
    listed = [infos[n] for n in files if n in infos]
    return exact_duplicates(listed), near_duplicates(listed, file_opener(ds))


def open_groups(groups: list[list[str]], excluded: Collection[str]) -> list[list[str]]:
    """The groups that still keep more than one file once `excluded` are left out."""
    return [g for g in groups if sum(n not in excluded for n in g) > 1]


LOSSLESS = {"PNG", "BMP", "GIF", "TIFF"}
# "x (1).png", "x copy.jpg", "Copy of x.png", "x_copy2.png": names that file managers give copies.
COPY_NAME = re.compile(r"(?i)(\(\d+\)|\bcopy\b|_copy\d*|-copy\d*|^copy of )")


def keep_one(groups: list[list[str]], infos: dict[str, FileInfo]) -> list[str]:
    """The files to drop so that one per group stays: the one with the most pixels, then
    in a lossless format (a re-encoded JPEG copy loses to its PNG original), then the one
    whose name is not a copy's ("x (1).png"), then the shortest name, then the first."""
    def rank(name):
        info = infos[name]
        stem = PurePosixPath(name).stem
        return (-info.width * info.height, info.format not in LOSSLESS, bool(COPY_NAME.search(stem)), len(name), name)

    drop = []
    for group in groups:
        keep = min(group, key=rank)
        drop.extend(n for n in group if n != keep)
    return drop


# --- outliers ----------------------------------------------------------------------------


def outlier_scores(features: np.ndarray, group_share: float = OUTLIER_GROUP_SHARE,
                   neighbours: int = OUTLIER_NEIGHBOURS) -> np.ndarray:
    """How unlike the rest each image is (higher = more unusual), finding groups too.

    The distance to the k-th nearest other image, for k = group_share of the set:
    a group of intruders smaller than k still has to reach into the bulk for its
    k-th neighbour, while a mean over the 5 nearest would only see the group itself.
    Each score is then averaged with its nearest neighbours' scores, so members of a
    far group lift each other above one-off unusual images of the bulk.

    Measured with EfficientNet stage features (bench/outliers.py): 5, 15 or 30 planted
    images of another kind among 300 rank in the top 5, 15 and 31-36."""
    n = len(features)
    if n < 3:
        return np.zeros(n)
    d = np.sqrt(squared_distances(features, features))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)
    k = min(n - 1, max(neighbours, int(n * group_share)))
    reach = np.take_along_axis(d, order[:, k - 1:k], axis=1)[:, 0]
    nearest = order[:, :min(neighbours, n - 1)]
    return 0.5 * reach + 0.5 * reach[nearest].mean(axis=1)


def outlier_ranking(version_path, fit: str = "crop", progress=None) -> list[tuple[str, float]]:
    """(name, score) for a version's usable images, most unlike the rest first.

    Features are computed at 64 px and cached with the decoded images, so
    re-ranking costs nothing."""
    from core import features  # torch: only loaded when outliers are asked for

    images = load_image_set(str(version_path), OUTLIER_RES, fit)
    feats = features.cached_features(images.key, lambda: images.images, OUTLIER_FEATURES, progress)
    scores = outlier_scores(feats)
    return [(images.names[i], float(scores[i])) for i in np.argsort(-scores)]


# --- a new version's files ------------------------------------------------------------------


@dataclass
class Selection:
    """The files a new version keeps of its base version, and how many go for each reason."""
    kept: list[str]  # in the base version's order
    broken: int  # files that cannot be decoded
    excluded: int  # usable files excluded by hand, as duplicates or as outliers
    in_dropped_classes: int  # usable files not excluded, but of a class that is not kept


def select(files: list[str], usable: Collection[str], excluded: Collection[str],
           keep_classes: Collection[str]) -> Selection:
    """Keep each usable file that is not excluded and whose class is in keep_classes
    (files without classes are all of one kind: keep_classes does not apply)."""
    labels, classes = labels_of(files)
    class_of = dict(zip(files, [classes[i] for i in labels])) if classes else {}
    usable_files = [n for n in files if n in usable]
    dropped = {n for n in usable_files if n not in excluded and class_of and class_of[n] not in keep_classes}
    kept = [n for n in usable_files if n not in excluded and n not in dropped]
    return Selection(kept, len(files) - len(usable_files), len(set(excluded) & set(usable_files)), len(dropped))


def fitted_images(ds: DataSet, names: list[str], res: int, fit: str) -> np.ndarray:
    """uint8 [len(names), res, res, 3]: a data set's files as training sees them with crop mode `fit`."""
    open_image = file_opener(ds)
    return np.stack([fit_image(open_image(name), res, fit) for name in names])
