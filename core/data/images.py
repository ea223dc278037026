"""One image file: which files are images, how they are decoded and fitted to a square.

Every way in (the loader, the importer, the URL import, curation) opens images
with `open_image` and decodes them with `decode_image`, so a file that one of
them accepts the others accept too, and no other decoder ever sees user data.
"""
import io
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
# Pillow picks a decoder from the content, not the name: without this list a "cover.png" holding
# PostScript goes to the EPS plugin, which runs Ghostscript. (JPEG also opens phones' MPO files.)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
NOT_ALLOWED = "cannot decode: not a JPEG, PNG, WEBP, GIF or BMP image"
# Checked from the header, before decoding. A decoded image takes up to 4 bytes a pixel and the URL
# import holds 4 at once: 24 Mpx is ~100 MB each, and still fits a 6000x4000 camera photo (training
# shrinks every image to 128 px at most). Pillow's own MAX_IMAGE_PIXELS applies when it is lower.
MAX_PIXELS = 24_000_000
MIN_SIDE = 16
FITS = ("crop", "pad", "squash")
WHITE = (255, 255, 255)


class UnusableImage(Exception):
    """A file that is skipped; the message is the reason."""


def open_image(data: bytes) -> Image.Image:
    """The image in `data`, header read but not decoded, by an allowed decoder only; raises
    UnusableImage when it is none of ALLOWED_FORMATS or has too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:  # over 2x Pillow's limit: it refuses before we can
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise UnusableImage(f"decompression bomb ({pixels.group(1) + ' pixels' if pixels else exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnusableImage(NOT_ALLOWED) from exc
    except Exception as exc:  # Pillow raises many types on bad headers
        raise UnusableImage(_decode_error(exc)) from exc
    refuse_too_many_pixels(*image.size)
    return image


def refuse_too_many_pixels(width: int, height: int) -> None:
    """Raises UnusableImage "decompression bomb (N pixels)" over the pixel limit. Checked here
    rather than through Pillow's warning, as warning filters are not thread-safe."""
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    if width * height > limit:
        raise UnusableImage(f"decompression bomb ({width * height} pixels)")


def image_format(data: bytes) -> str:
    """Pillow's name for the format of `data` ("PNG", "JPEG", "MPO"...), from the header."""
    with open_image(data) as image:
        return image.format


def decode_image(data: bytes) -> Image.Image:
    """Fully decoded RGB image; raises UnusableImage with a short reason."""
    image = open_image(data)
    try:
        image.load()  # decode now so truncated files fail here, not later
        ImageOps.exif_transpose(image, in_place=True)  # phone photos store rotation in EXIF
    except Exception as exc:  # Pillow raises many types on bad data
        raise UnusableImage(_decode_error(exc)) from exc
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise UnusableImage(f"too small ({width}x{height})")
    return _to_rgb(image)


def _decode_error(exc: Exception) -> str:
    return "truncated file" if "truncated" in str(exc).lower() else f"cannot decode: {exc}"


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
    """uint8 [res, res, 3]: "crop" fills the square and cuts the overflow, "pad" fits inside
    with white bars, "squash" ignores the aspect ratio."""
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
