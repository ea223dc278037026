"""Load a training image set: a folder, a .zip file, a data set version or the built-in emoji set.

Folders and zips are listed by core.data.sources; every image is decoded with
Pillow, made RGB (transparency on white) and fitted to res x res by
core.data.images. Files that cannot be used are skipped with a short reason
rather than failing the whole load. Decoded sets are cached on disk under a key
built from the files' content, so a restart does not decode everything again.
"""
import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from core import cache
from core.atomic import atomic_path
from core.data.images import FITS, IMAGE_EXTENSIONS, UnusableImage, decode_image, fit_image
from core.data.sources import (
    DataError,
    SourceFile,
    folder_files,
    is_unsafe_name,
    open_zip,
    read_file,
    read_path,
    zip_files,
)
from core.paths import BUILTIN_EMOJI, cache_dir

# One file in a folder, zip, upload or version; larger ones are skipped unread (every file is
# read whole into memory). Images are shrunk to 128 px at most, so no useful one comes close.
MAX_FILE_BYTES = 50 * 2**20
MIN_RES = 8
TOP_LEVEL = "(top level)"  # class of images lying directly at the root
# Bump when decoding or the cache layout changes (v2: the format allow-list and the pixel limit).
CACHE_FORMAT = "ganscope-dataset-v2"
MANIFEST_FORMAT = "ganscope-dataset-version-1"  # a curated version: which files, which fit
PROGRESS_EVERY = 50  # files between progress callbacks


@dataclass
class Skipped:
    name: str  # path relative to the folder / zip root, "/" separated
    reason: str


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 [N, res, res, 3] RGB
    labels: np.ndarray | None  # int64 [N], or None when there are no classes
    class_names: list[str]
    names: list[str]  # relative name per image
    skipped: list[Skipped]
    source: str
    key: str  # cache key (hex)


def load_image_set(
    source: str,
    res: int,
    fit: str = "crop",
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> ImageSet:
    """Load `source` (folder, .zip, version manifest .json or "builtin:emoji") as RGB images of res x res.

    `fit` is "crop" (fill, centre-crop), "pad" (fit inside, white bars) or
    "squash" (ignore aspect). `progress(done, total)` is called every few dozen
    files while hashing and decoding (a cache hit jumps straight to total).
    Raises DataError when the source is missing, unsafe or has no usable image.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    if not isinstance(res, int) or res < MIN_RES:
        raise ValueError(f"res must be an int >= {MIN_RES}, not {res!r}")
    if source == BUILTIN_EMOJI:
        return _load_builtin(res, fit, _Progress(progress), use_cache)

    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data path not found: {source}")
    if path.is_dir():
        return _load_files(folder_files(path), source, res, fit, _Progress(progress), use_cache)
    if path.is_file() and path.suffix.lower() == ".zip":
        with open_zip(path, source) as archive:
            files = zip_files(archive, source)
            return _load_files(files, source, res, fit, _Progress(progress), use_cache)
    if path.is_file() and path.suffix.lower() == ".json":
        return _load_files(_listed_files(path), source, res, fit, _Progress(progress), use_cache)
    raise DataError(f"{source} is not a folder, a .zip file or a data set version (.json)")


def read_manifest(path: Path | str) -> dict:
    """A data set version: {"format", "root" (relative to the manifest), "files", "fit", ...}."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read data set version {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("files"), list) or not isinstance(manifest.get("root"), str) \
            or not all(isinstance(name, str) for name in manifest["files"]):
        raise DataError(f"{path} is not a GANscope data set version")
    unsafe = [name for name in manifest["files"] if is_unsafe_name(name)]
    if unsafe or is_unsafe_name(manifest["root"].removeprefix("../")):
        raise DataError(f"unsafe file name '{(unsafe or [manifest['root']])[0]}' in {path}")
    return manifest


def manifest_fit(source: str) -> str | None:
    """The crop mode a version was curated with, or None when `source` is not a version."""
    path = Path(source).expanduser()
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    return read_manifest(path).get("fit")


def summarize_skipped(skipped: list[Skipped]) -> str:
    """E.g. "3 skipped (2 not an image, 1 cannot decode)"."""
    if not skipped:
        return "0 skipped"
    return f"{len(skipped)} skipped ({_reason_counts(skipped)})"


# --- a version's files ------------------------------------------------------------


def _listed_files(manifest_path: Path) -> list[SourceFile]:
    """The files a version lists, read from its data set's folder; a missing one is skipped."""
    manifest = read_manifest(manifest_path)
    root = (manifest_path.parent / manifest["root"]).resolve()
    files = []
    for name in manifest["files"]:
        path = root / name
        if path.is_file():
            files.append(SourceFile(name, path.stat().st_size, partial(read_path, path)))
        else:
            files.append(SourceFile(name, 0, _missing, "missing file"))
    return files


def _missing(limit: int) -> bytes:
    raise UnusableImage("missing file")


# --- loading files --------------------------------------------------------------


class _Progress:
    """Calls the user's callback every PROGRESS_EVERY steps and at the end."""

    def __init__(self, callback: Callable[[int, int], None] | None):
        self.callback = callback
        self.done = 0
        self.total = 0

    def step(self) -> None:
        self.done += 1
        if self.callback and (self.done % PROGRESS_EVERY == 0 or self.done == self.total):
            self.callback(self.done, self.total)

    def finish(self) -> None:
        if self.callback and self.done < self.total:
            self.done = self.total
            self.callback(self.done, self.total)


def _load_files(files: list[SourceFile], source: str, res: int, fit: str, progress: _Progress,
                use_cache: bool) -> ImageSet:
    files.sort(key=lambda f: f.name)
    if not files:
        raise DataError(f"no images found in {source}")
    progress.total = 2 * len(files)  # hashing pass + decoding pass

    key, early_skips = _fingerprint(files, res, fit, progress)
    if use_cache and (cached := _read_cache(key, res)) is not None:
        progress.finish()
        return replace(cached, source=source)

    images, names, skipped = [], [], []
    for file in files:
        try:
            if file.name in early_skips:
                raise UnusableImage(early_skips[file.name])
            images.append(fit_image(decode_image(read_image_file(file)), res, fit))
            names.append(file.name)
        except UnusableImage as exc:
            skipped.append(Skipped(file.name, str(exc)))
        progress.step()

    if not images:
        n = len(skipped)
        raise DataError(f"no usable images in {source}: {n} file{'s' if n != 1 else ''} skipped "
                        f"({_reason_counts(skipped)})")
    labels, class_names = labels_of(names)
    image_set = ImageSet(np.stack(images), labels, class_names, names, skipped, source, key)
    if use_cache:
        _write_cache(image_set)
    return image_set


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def early_skip_reason(file: SourceFile) -> str | None:
    """Reasons known without reading the file."""
    if not _is_image_name(file.name):
        return "not an image"
    if file.skip:
        return file.skip
    if file.size > MAX_FILE_BYTES:
        return f"too large ({file.size / 2**20:.0f} MB)"
    return None


def read_image_file(file: SourceFile) -> bytes:
    """The bytes of a file that may be an image; raises UnusableImage with the reason it is skipped
    (known from the listing, or found reading: unreadable, over MAX_FILE_BYTES)."""
    reason = early_skip_reason(file)
    if reason:
        raise UnusableImage(reason)
    return read_file(file, MAX_FILE_BYTES)


def _fingerprint(files: list[SourceFile], res: int, fit: str, progress: _Progress) -> tuple[str, dict]:
    """Cache key over everything that shapes the result, and the skips already known.

    The key hashes file content (not mtimes), so a copy, zip or touch of the
    same data still hits the cache. Skipped files enter by name and reason.
    """
    key = _new_key(res, fit)
    early_skips = {}
    for file in files:
        try:
            content = hashlib.sha256(read_image_file(file)).hexdigest()
        except UnusableImage as exc:
            early_skips[file.name] = content = str(exc)
        key.update(f"{file.name}\0{content}\n".encode())
        progress.step()
    return key.hexdigest(), early_skips


def _new_key(res: int, fit: str):
    return hashlib.sha256(f"{CACHE_FORMAT}\n{res}\n{fit}\n".encode())


# --- classes ----------------------------------------------------------------------


def class_names_of(names: list[str]) -> list[str]:
    """The classes a set of relative image names would get ([] = unlabelled)."""
    return labels_of(names)[1]


def labels_of(names: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """Class = first folder below the folders that wrap every image.

    A zipped folder usually holds one wrapping folder ("faces/cats/1.png");
    without skipping it every image would land in the single class "faces".
    """
    folders = [name.split("/")[:-1] for name in names]
    depth = 0
    while all(len(f) > depth for f in folders) and len({f[depth] for f in folders}) == 1:
        depth += 1
    classes = [f[depth] if len(f) > depth else TOP_LEVEL for f in folders]
    class_names = sorted(set(classes))
    if class_names == [TOP_LEVEL]:
        return None, []
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[c] for c in classes], dtype=np.int64), class_names


def _reason_counts(skipped: list[Skipped]) -> str:
    """"2 not an image, 1 cannot decode": reasons grouped without their details."""
    kinds = Counter(re.split(r"[:(]", s.reason)[0].strip() for s in skipped)
    return ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())


# --- built-in set -------------------------------------------------------------------


def _load_builtin(res: int, fit: str, progress: _Progress, use_cache: bool) -> ImageSet:
    from core.data import builtin  # lazy: only needed for this source

    files = sorted(builtin.emoji_files())
    progress.total = len(files)
    key = _new_key(res, fit)
    key.update(f"{BUILTIN_EMOJI}\n".encode())
    for path in files:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise DataError(f"built-in emoji data unreadable: {exc}") from exc
        key.update(f"{path.name}\0{digest}\n".encode())
        progress.step()
    key = key.hexdigest()
    if use_cache and (cached := _read_cache(key, res)) is not None:
        progress.finish()
        return replace(cached, source=BUILTIN_EMOJI)

    try:
        emoji = builtin.load_emoji()
    except (OSError, ValueError) as exc:  # its messages already say what is wrong and how to fix it
        raise DataError(str(exc)) from exc
    progress.total += len(emoji.images)
    images = []
    for pixels in emoji.images:
        images.append(fit_image(Image.fromarray(pixels), res, fit))
        progress.step()
    image_set = ImageSet(np.stack(images), np.asarray(emoji.labels, dtype=np.int64),
                         list(emoji.class_names), list(emoji.names), [], BUILTIN_EMOJI, key)
    if use_cache:
        _write_cache(image_set)
    return image_set


# --- cache --------------------------------------------------------------------------


def _cache_path(key: str) -> Path:
    return cache_dir() / "datasets" / f"{key}.npz"


def _write_cache(image_set: ImageSet) -> None:
    meta = {
        "format": CACHE_FORMAT,
        "class_names": image_set.class_names,
        "names": image_set.names,
        "skipped": [[s.name, s.reason] for s in image_set.skipped],
        "has_labels": image_set.labels is not None,
    }
    arrays = {"images": image_set.images,
              "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    if image_set.labels is not None:
        arrays["labels"] = image_set.labels
    try:
        with atomic_path(_cache_path(image_set.key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # a file object: np.savez would append ".npz" to a path
        cache.prune(keep=_cache_path(image_set.key))
    except OSError as exc:  # the cache only saves time; a read-only disk must not stop training
        warnings.warn(f"could not write data cache: {exc}", stacklevel=2)


def _read_cache(key: str, res: int) -> ImageSet | None:
    """The cached set, or None when missing or unreadable (it is then rewritten)."""
    path = _cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes())
            images = stored["images"]
            labels = stored["labels"] if meta["has_labels"] else None
        names = meta["names"]
        ok = (meta["format"] == CACHE_FORMAT and images.dtype == np.uint8
              and images.shape == (len(names), res, res, 3)
              and (labels is None or labels.shape == (len(names),)))
        if not ok:
            return None
        skipped = [Skipped(name, reason) for name, reason in meta["skipped"]]
        cache.touch(path)
        return ImageSet(images, labels, meta["class_names"], names, skipped, "", key)
    except Exception:  # a corrupt file fails in many ways (zip, json, key errors)
        return None
