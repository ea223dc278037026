"""Server time of one Latent Lab slider change: edit the latent, render, encode the PNG.

This is what the editor fragment does when a slider moves (the seed grid and the
interpolation strip are cached and do not rerun). The baseline is the same
change with the whole page re-rendered uncached (16-seed grid + 8-frame strip),
which is what a slider outside a fragment would cost.

    python bench/latent_lab_speed.py [--checkpoint checkpoints/demo-emoji/checkpoints/latest.pt] [--n 100]
"""
import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoint  # noqa: E402
from core.explore import latent  # noqa: E402
from core.paths import CHECKPOINTS_DIR, DEMO_RUN  # noqa: E402


def encode(images) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="PNG")
    return buf.getvalue()


def slider_change(G, d, seed, amounts, psi):
    z = latent.apply_edits(latent.seed_latent(seed, G.z_dim)[None], d, amounts)
    return encode(latent.render(G, latent.truncate(z, psi)))


def whole_page(G, d, seed, amounts, psi):
    slider_change(G, d, seed, amounts, psi)
    latent.render(G, latent.truncate(latent.seed_latents(range(16), G.z_dim), psi))
    keys = latent.seed_latents([0, 1], G.z_dim)
    latent.render(G, latent.truncate(latent.interpolate(keys, 8), psi))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINTS_DIR / DEMO_RUN / "checkpoints" / "latest.pt")
    p.add_argument("--n", type=int, default=100)
    args = p.parse_args()
    G, ck = checkpoint.load_generator(args.checkpoint)
    d, _ = latent.sefa_directions(G, k=8)
    gen = torch.Generator().manual_seed(0)
    times = {"fragment": [], "whole page": []}
    for fn, label in ((slider_change, "fragment"), (whole_page, "whole page")):
        fn(G, d, 0, torch.zeros(8), 1.0)  # warm-up
        for i in range(args.n):
            amounts = torch.rand(8, generator=gen) * 6 - 3
            start = time.perf_counter()
            fn(G, d, i % 50, amounts, 0.8)
            times[label].append((time.perf_counter() - start) * 1000)
    m = ck["model"]
    print(f"{args.checkpoint} ({m['arch']}, {m['res']} px), torch threads {torch.get_num_threads()}, {args.n} changes")
    for label, xs in times.items():
        xs = sorted(xs)
        print(f"{label:11s}: p50 {statistics.median(xs):6.1f} ms   p95 {xs[int(0.95 * (len(xs) - 1))]:6.1f} ms")
    print("target: slider change p95 <= 150 ms at 64 px on 2 CPU cores")


if __name__ == "__main__":
    main()
