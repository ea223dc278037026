"""Load a training image set: a folder, a .zip file, a data set version or the built-in emoji set.

Every image is decoded with Pillow, made RGB (transparency on white) and fitted
to res x res. Files that cannot be used are skipped with a short reason rather
than failing the whole load. Decoded sets are cached on disk under a key built
from the files' content, so a restart does not decode everything again.
"""
import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.atomic import atomic_path
from core.paths import BUILTIN_EMOJI, cache_dir

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
MAX_FILE_BYTES = 50 * 2**20
MIN_SIDE = 16
MIN_RES = 8
FITS = ("crop", "pad", "squash")
TOP_LEVEL = "(top level)"  # class of images lying directly at the root
WHITE = (255, 255, 255)
CACHE_FORMAT = "ganscope-dataset-v1"  # bump when decoding or the cache layout changes
MANIFEST_FORMAT = "ganscope-dataset-version-1"  # a curated version: which files, which fit
PROGRESS_EVERY = 50  # files between progress callbacks


class DataError(Exception):
    """A data set that cannot be loaded; the message is shown to the user as-is."""


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


# --- listing candidate files ---------------------------------------------------


@dataclass
class SourceFile:
    name: str  # relative, "/" separated
    size: int
    read: Callable[[], bytes]


def is_ignored_name(name: str) -> bool:
    """Hidden files/folders and macOS zip metadata are not part of the data set."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def folder_files(root: Path) -> list[SourceFile]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_ignored_name(d)]
        for filename in filenames:
            path = Path(dirpath) / filename
            # Not a regular file (FIFO, broken link): reading could block or fail.
            if is_ignored_name(filename) or not path.is_file():
                continue
            name = path.relative_to(root).as_posix()
            files.append(SourceFile(name, path.stat().st_size, path.read_bytes))
    return files


def _listed_files(manifest_path: Path) -> list[SourceFile]:
    """The files a version lists, read from its data set's folder; a missing one is skipped."""
    manifest = read_manifest(manifest_path)
    root = (manifest_path.parent / manifest["root"]).resolve()
    files = []
    for name in manifest["files"]:
        path = root / name
        if path.is_file():
            files.append(SourceFile(name, path.stat().st_size, path.read_bytes))
        else:
            files.append(SourceFile(name, 0, partial(_missing, name)))
    return files


def _missing(name: str) -> bytes:
    raise UnusableImage("missing file")


def open_zip(path: Path, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{source} is not a valid zip file") from exc


def zip_files(archive: zipfile.ZipFile, source: str) -> list[SourceFile]:
    """Members read in memory; a single unsafe name refuses the whole archive."""
    members = archive.infolist()
    for info in members:
        if is_unsafe_name(info.filename):
            raise DataError(f"unsafe entry '{info.filename}' in {source}: refusing this archive")
    files = []
    for info in members:
        name = _normalise_member(info.filename)
        is_folder = info.filename.replace("\\", "/").endswith("/")
        if name and not is_folder and not is_ignored_name(name):
            files.append(SourceFile(name, info.file_size, partial(archive.read, info)))
    return files


def is_unsafe_name(member: str) -> bool:
    """Absolute paths, drive letters and ".." could escape wherever the archive lands."""
    name = member.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in name.split("/")


def _normalise_member(member: str) -> str:
    parts = member.replace("\\", "/").split("/")
    return "/".join(part for part in parts if part not in ("", "."))


# --- loading files --------------------------------------------------------------


class UnusableImage(Exception):
    """A file that is skipped; the message is the reason."""


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
            images.append(fit_image(decode_image(_read(file)), res, fit))
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


def _read(file: SourceFile) -> bytes:
    try:
        return file.read()
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise UnusableImage(f"cannot read: {exc}") from exc


def early_skip_reason(file: SourceFile) -> str | None:
    """Reasons known without reading the file."""
    if not _is_image_name(file.name):
        return "not an image"
    if file.size > MAX_FILE_BYTES:
        return f"too large ({file.size / 2**20:.0f} MB)"
    return None


def _fingerprint(files: list[SourceFile], res: int, fit: str, progress: _Progress) -> tuple[str, dict]:
    """Cache key over everything that shapes the result, and the skips already known.

    The key hashes file content (not mtimes), so a copy, zip or touch of the
    same data still hits the cache. Skipped files enter by name and reason.
    """
    key = _new_key(res, fit)
    early_skips = {}
    for file in files:
        try:
            reason = early_skip_reason(file)
            content = reason or hashlib.sha256(_read(file)).hexdigest()
        except UnusableImage as exc:
            reason = content = str(exc)
        if reason:
            early_skips[file.name] = reason
        key.update(f"{file.name}\0{content}\n".encode())
        progress.step()
    return key.hexdigest(), early_skips


def _new_key(res: int, fit: str):
    return hashlib.sha256(f"{CACHE_FORMAT}\n{res}\n{fit}\n".encode())


def decode_image(data: bytes) -> Image.Image:
    """Fully decoded RGB image; raises UnusableImage with a short reason."""
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()  # decode now so truncated files fail here, not later
            ImageOps.exif_transpose(image, in_place=True)  # phone photos store rotation in EXIF
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnusableImage(_bomb_reason(exc)) from exc
        except UnidentifiedImageError as exc:
            raise UnusableImage("cannot decode: unrecognised image data") from exc
        except Exception as exc:  # Pillow raises many types on bad data
            if "truncated" in str(exc).lower():
                raise UnusableImage("truncated file") from exc
            raise UnusableImage(f"cannot decode: {exc}") from exc
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise UnusableImage(f"too small ({width}x{height})")
    return _to_rgb(image)


def _bomb_reason(exc: Exception) -> str:
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    return f"decompression bomb ({pixels.group(1)} pixels)" if pixels else f"decompression bomb ({exc})"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: convert("RGB") would clip everything above 255 to white.
        grey = np.clip(np.asarray(image, dtype=np.float64) / 257, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(grey)
    if image.has_transparency_data:
        on_white = Image.new("RGBA", image.size, WHITE + (255,))
        on_white.alpha_composite(image.convert("RGBA"))
        image = on_white
    return image.convert("RGB")


def fit_image(image: Image.Image, res: int, fit: str) -> np.ndarray:
    width, height = image.size
    if fit == "squash":
        return np.asarray(_resize(image, res, res))
    side = min(width, height) if fit == "crop" else max(width, height)
    scale = res / side
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = _resize(image, new_w, new_h)
    if fit == "crop":
        left, top = (new_w - res) // 2, (new_h - res) // 2
        return np.asarray(image.crop((left, top, left + res, top + res)))
    canvas = Image.new("RGB", (res, res), WHITE)
    canvas.paste(image, ((res - new_w) // 2, (res - new_h) // 2))
    return np.asarray(canvas)


def _resize(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.size == (width, height):
        return image
    shrinking = width * height < image.width * image.height
    # LANCZOS is sharpest when shrinking; BICUBIC rings less when enlarging.
    resample = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
    return image.resize((width, height), resample, reducing_gap=3.0 if shrinking else None)


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
    from core import builtin  # lazy: only needed for this source

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
        return ImageSet(images, labels, meta["class_names"], names, skipped, "", key)
    except Exception:  # a corrupt file fails in many ways (zip, json, key errors)
        return None
