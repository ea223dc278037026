"""Image sets to take out: generated images named by seed, with the settings that make each
one again (settings.json), as PNG files in a folder or in one zip; optionally only images that
pass the near-copy check, so that nothing handed out is a near-copy of a training image.
"""
import io
import json
import re
import shlex
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from core import atomic
from core.explore import latent
from core.grid import png_bytes

SETTINGS_FILE = "settings.json"
MAX_IMAGES = 10_000   # per set from a terminal: more is a job for a script around core.explore
MAX_IN_APP = 500      # per set in the browser: the zip is held in memory until downloaded
MAX_SIZE = 1024       # output side in pixels (images are upscaled from the generator's own size)
TRIES_PER_IMAGE = 10  # with the copy check on: seeds tried per image wanted, at most
BATCH = 32


def parse_seed_ranges(text: str) -> list[int]:
    """"0-99, 120 200-210" -> the seeds, in order, each once; a ValueError that says why."""
    seeds = []
    for part in text.replace(",", " ").split():
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"seeds are whole numbers or ranges such as 0-99 (not {part[:20]!r})")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a or b > latent.MAX_SEED:
            raise ValueError(f"{part}: a range goes up, from 0 to {latent.MAX_SEED:,}")
        if len(seeds) + b - a + 1 > MAX_IMAGES:
            raise ValueError(f"at most {MAX_IMAGES:,} images per set")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise ValueError("enter seeds, e.g. 0-8")
    return list(dict.fromkeys(seeds))


def file_name(seed: int) -> str:
    return f"seed-{seed:06d}.png"


def draw(G, seeds: list[int], n: int | None = None, psi: float = 1.0, cls: int | None = None,
         size: int | None = None, is_copy: Callable[[np.ndarray], np.ndarray] | None = None
         ) -> Iterator[tuple[int, np.ndarray | None]]:
    """(seed, image) in seed order, image None for a seed left out because is_copy (a mask of
    flagged images) flags it. Draws `seeds`, or with `n`, seeds from seeds[0] on until n images
    pass, trying at most TRIES_PER_IMAGE * n seeds. Images are uint8 [size, size, 3] (Lanczos from
    G's own size), made a batch at a time, so a set of any size never sits in memory whole."""
    wanted = n if n is not None else len(seeds)
    pool = seeds if n is None else range(seeds[0], min(seeds[0] + TRIES_PER_IMAGE * n, latent.MAX_SEED + 1))
    pool, kept = list(pool), 0
    for i in range(0, len(pool), BATCH):
        if kept == wanted:
            return
        batch = pool[i:i + BATCH]
        images = latent.render_seeds(G, batch, psi, cls)
        flagged = is_copy(images) if is_copy else np.zeros(len(batch), dtype=bool)
        for seed, image, copy in zip(batch, images, flagged):
            if kept == wanted:
                return
            kept += not copy
            yield seed, None if copy else resized(image, size)


def make_set(drawn: Iterable[tuple[int, np.ndarray | None]], put: Callable[[str, bytes], None], total: int,
             progress: Callable[[int, int], None] | None = None, preview: int = 0
             ) -> tuple[list[int], list[int], list[np.ndarray]]:
    """Hands each drawn image to put(file name, PNG bytes) as it comes; returns (seeds kept, seeds
    left out as likely copies, the first `preview` images)."""
    kept, copies, shown = [], [], []
    for seed, image in drawn:
        if image is None:
            copies.append(seed)
            continue
        put(file_name(seed), png_bytes(Image.fromarray(image)))
        kept.append(seed)
        if len(shown) < preview:
            shown.append(image)
        if progress:
            progress(len(kept), total)
    return kept, copies, shown


def resized(image: np.ndarray, size: int | None) -> np.ndarray:
    if not size or size == image.shape[0]:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def settings(run: str, checkpoint: str, network: str, step, seeds: list[int], psi: float,
             class_name: str | None, size: int, copies: list[int], copy_check: bool) -> dict:
    """What makes every image of the set again (python -m core.generate with these)."""
    again = ["python", "-m", "core.generate", "--run", run, "--checkpoint", checkpoint, "--network", network,
             "--seeds", ",".join(map(str, seeds)), "--psi", f"{psi:g}", "--size", str(size)]
    if class_name:
        again += ["--class", class_name]
    return {"run": run, "checkpoint": checkpoint, "network": network, "step": step, "psi": psi,
            "class": class_name, "size": size, "seeds": seeds, "copy_check": copy_check,
            "left_out_as_copies": copies, "created": time.time(), "again": shlex.join(again + ["--out", "OUT"])}


def write_folder(out: Path, drawn: Iterable[tuple[int, np.ndarray | None]], total: int,
                 describe: Callable[[list[int], list[int]], dict], progress=None) -> dict:
    """The set as PNG files in out/, each written whole as it is drawn, then settings.json from
    describe(seeds kept, seeds left out as copies); returns the settings."""
    out.mkdir(parents=True, exist_ok=True)
    kept, copies, _ = make_set(drawn, lambda name, data: atomic.write_bytes(out / name, data), total, progress)
    meta = describe(kept, copies)
    atomic.write_json(out / SETTINGS_FILE, meta)
    return meta


def zip_set(drawn: Iterable[tuple[int, np.ndarray | None]], total: int,
            describe: Callable[[list[int], list[int]], dict], progress=None, preview: int = 0
            ) -> tuple[bytes, dict, list[np.ndarray]]:
    """The set as one zip (PNG files and settings.json): (its bytes, the settings, the first
    `preview` images)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNGs are compressed already
        kept, copies, shown = make_set(drawn, z.writestr, total, progress, preview)
        meta = describe(kept, copies)
        z.writestr(SETTINGS_FILE, json.dumps(meta, indent=1))
    return buf.getvalue(), meta, shown
