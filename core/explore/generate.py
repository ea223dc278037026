"""Image sets to take out: generated images named by seed, with the settings that make each
one again (settings.json), as PNG files in a folder or in one zip; optionally only images that
pass the near-copy check, so that nothing handed out is a near-copy of a training image.
"""
import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core import atomic
from core.explore import latent

SETTINGS_FILE = "settings.json"
MAX_IMAGES = 10_000   # per set: more is a job for a script around core.explore
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


def generate(G, seeds: list[int], n: int | None = None, psi: float = 1.0, cls: int | None = None,
             size: int | None = None, is_copy: Callable[[np.ndarray], np.ndarray] | None = None,
             progress: Callable[[int, int], None] | None = None) -> tuple[dict[int, np.ndarray], list[int]]:
    """({seed: image}, seeds left out as likely copies). Draws `seeds` in order, or with `n`,
    seeds from seeds[0] on until n images pass is_copy (a mask of flagged images), trying at
    most TRIES_PER_IMAGE * n seeds. Images are uint8 [size, size, 3] (Lanczos from G's own size)."""
    wanted = n if n is not None else len(seeds)
    pool = seeds if n is None else range(seeds[0], min(seeds[0] + TRIES_PER_IMAGE * n, latent.MAX_SEED + 1))
    kept, copies, pool = {}, [], list(pool)
    for i in range(0, len(pool), BATCH):
        batch = pool[i:i + BATCH]
        images = latent.render_seeds(G, batch, psi, cls)
        flagged = is_copy(images) if is_copy else np.zeros(len(batch), dtype=bool)
        for seed, image, copy in zip(batch, images, flagged):
            if copy:
                copies.append(seed)
            elif len(kept) < wanted:
                kept[seed] = resized(image, size)
        if progress:
            progress(len(kept), wanted)
        if len(kept) >= wanted:
            break
    return kept, copies


def resized(image: np.ndarray, size: int | None) -> np.ndarray:
    if not size or size == image.shape[0]:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def settings(run: str, checkpoint: str, step, seeds: list[int], psi: float, class_name: str | None,
             size: int, copies: list[int], copy_check: bool) -> dict:
    """What makes every image of the set again (python -m core.generate with these)."""
    return {"run": run, "checkpoint": checkpoint, "step": step, "psi": psi, "class": class_name, "size": size,
            "seeds": seeds, "copy_check": copy_check, "left_out_as_copies": copies, "created": time.time(),
            "again": f"python -m core.generate --run {run} --checkpoint {checkpoint} --seeds "
                     f"{','.join(map(str, seeds))} --psi {psi:g} --size {size}"
                     + (f" --class {class_name}" if class_name else "")}


def write_folder(out: Path, images: dict[int, np.ndarray], meta: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, image in images.items():
        paths.append(out / file_name(seed))
        with atomic.atomic_path(paths[-1]) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    atomic.write_json(out / SETTINGS_FILE, meta)
    return paths


def zip_bytes(images: dict[int, np.ndarray], meta: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNGs are compressed already
        for seed, image in images.items():
            png = io.BytesIO()
            Image.fromarray(image).save(png, format="PNG")
            z.writestr(file_name(seed), png.getvalue())
        z.writestr(SETTINGS_FILE, json.dumps(meta, indent=1))
    return buf.getvalue()
