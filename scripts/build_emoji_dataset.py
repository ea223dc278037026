#!/usr/bin/env python3
"""Build GANscope's built-in data set: Google Noto emoji at 64 px.

Source: the npm package emoji-datasource-google (pinned version below). It
ships one 64 px PNG per emoji plus emoji.json (names, categories, sort order).
We keep the base emoji (no skin-tone variants) that have a Google image, in
`sort_order`, composite each on white, and write into data/emoji/:

    emoji-64.png   one RGB atlas, 64x64 tiles, 48 per row, row-major
    emoji.json     tile size, columns, count, categories, per-emoji metadata
    LICENSE-*.txt  licence texts (Apache-2.0 for images, MIT for metadata)
    README.md      source, counts, attribution

Usage:
    python scripts/build_emoji_dataset.py                  # runs `npm pack`
    python scripts/build_emoji_dataset.py --tarball X.tgz  # use a local copy
"""
import argparse
import collections
import json
import math
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
TILE = 64
COLUMNS = 48
# The package has no Apache text of its own; Debian ships the canonical one.
DEBIAN_APACHE = Path("/usr/share/common-licenses/Apache-2.0")


def npm_pack(dest: Path) -> Path:
    """Download the pinned package tarball into dest with `npm pack`."""
    spec = f"{PACKAGE}@{VERSION}"
    print(f"npm pack {spec} ...", file=sys.stderr)
    out = subprocess.run(["npm", "pack", spec], cwd=dest, check=True,
                         capture_output=True, text=True).stdout
    return dest / out.strip().splitlines()[-1]


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack the tarball (one pass: seeking in a .tgz is slow) -> package dir."""
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    pkg = dest / "package"
    meta = json.loads((pkg / "package.json").read_text())
    if (meta["name"], meta["version"]) != (PACKAGE, VERSION):
        sys.exit(f"{tarball}: is {meta['name']}@{meta['version']}, "
                 f"expected {PACKAGE}@{VERSION}")
    return pkg


def select_emoji(pkg: Path) -> list[dict]:
    """Base emoji with a Google 64 px image, in the package's sort order."""
    entries = json.loads((pkg / "emoji.json").read_text())
    keep = [e for e in entries
            if e.get("has_img_google") and (pkg / "img/google/64" / e["image"]).is_file()]
    return sorted(keep, key=lambda e: e["sort_order"])


def on_white(path: Path) -> Image.Image:
    """Load one emoji PNG (RGBA, LA or P) and alpha-composite it over white."""
    rgba = Image.open(path).convert("RGBA")
    if rgba.size != (TILE, TILE):
        raise ValueError(f"{path}: {rgba.size}, expected {TILE}x{TILE}")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def build_atlas(pkg: Path, emoji: list[dict]) -> Image.Image:
    """Paste the tiles row-major, COLUMNS per row; unused cells stay white."""
    rows = math.ceil(len(emoji) / COLUMNS)
    atlas = Image.new("RGB", (COLUMNS * TILE, rows * TILE), "white")
    for i, e in enumerate(emoji):
        row, col = divmod(i, COLUMNS)
        atlas.paste(on_white(pkg / "img/google/64" / e["image"]), (col * TILE, row * TILE))
    return atlas


def write_metadata(out: Path, emoji: list[dict]) -> None:
    """emoji.json: one emoji per line, so diffs of a rebuild stay readable."""
    fields = ("name", "short_name", "unified", "category", "subcategory")
    head = {"tile": TILE, "columns": COLUMNS, "count": len(emoji),
            "categories": sorted({e["category"] for e in emoji})}
    lines = [json.dumps({k: e[k] for k in fields}, ensure_ascii=False) for e in emoji]
    text = json.dumps(head, ensure_ascii=False)[:-1]  # reopen the object
    text += ', "emoji": [\n' + ",\n".join(lines) + "\n]}\n"
    json.loads(text)  # guard against the hand-assembly above going wrong
    (out / "emoji.json").write_text(text, encoding="utf-8")


def copy_licences(pkg: Path, out: Path) -> list[str]:
    """Copy the licence texts verbatim; returns the file names written."""
    written = []
    # Apache-2.0 for the images: the package's own copy if it has one, else Debian's.
    apache = next((p for p in sorted(pkg.glob("LICENSE*"))
                   if "Apache License" in p.read_text(errors="replace")), None)
    apache = apache or DEBIAN_APACHE
    if not apache.is_file():
        sys.exit(f"no Apache-2.0 text found (package has none, {DEBIAN_APACHE} missing)")
    (out / "LICENSE-Apache-2.0.txt").write_text(apache.read_text())
    written.append("LICENSE-Apache-2.0.txt")
    # The package's LICENSE is emoji-data's MIT licence (Cal Henderson).
    mit = pkg / "LICENSE"
    if mit.is_file() and "MIT License" in mit.read_text():
        (out / "LICENSE-MIT-emoji-datasource.txt").write_text(mit.read_text())
        written.append("LICENSE-MIT-emoji-datasource.txt")
    return written


def google_source(pkg: Path) -> str:
    """The 'Google' row of the package README's image-source table, if present."""
    m = re.search(r"^\|\s*Google\s*\|([^|]+)\|", (pkg / "README.md").read_text(), re.M)
    return m.group(1).strip() if m else "see the package README"


def write_readme(out: Path, pkg: Path, emoji: list[dict], licences: list[str],
                 atlas_size: tuple[int, int]) -> None:
    counts = collections.Counter(e["category"] for e in emoji)
    table = "\n".join(f"| {c} | {counts[c]} |" for c in sorted(counts))
    mit_line = ("`LICENSE-MIT-emoji-datasource.txt`" if "LICENSE-MIT-emoji-datasource.txt"
                in licences else "the MIT licence (not found in the package)")
    text = f"""# Built-in data set: Google Noto emoji, 64 px

{len(emoji)} emoji, each a 64x64 RGB image on a white background, labelled by
emoji category. GANscope loads it with `core.data.builtin.load_emoji()`.

## Files

- `emoji-64.png`: atlas of {atlas_size[0]}x{atlas_size[1]} px; 64x64 tiles in
  row-major order, {COLUMNS} tiles per row; cells after the last emoji are white.
- `emoji.json`: `tile`, `columns`, `count`, sorted `categories`, and `emoji`: one
  entry per tile in atlas order (`name`, `short_name`, `unified`, `category`,
  `subcategory`).
- `LICENSE-Apache-2.0.txt`, `LICENSE-MIT-emoji-datasource.txt`: licence texts.

## Source

npm package [`{PACKAGE}@{VERSION}`](https://www.npmjs.com/package/{PACKAGE}/v/{VERSION})
from the emoji-data project (https://github.com/iamcal/emoji-data). Its README
gives the Google image source as: {google_source(pkg)}.

Selection: every entry of the package's `emoji.json` with `has_img_google`
(base emoji only: the `skin_variations` are not included), ordered by
`sort_order`. Each `img/google/64/*.png` (RGBA) is alpha-composited over white.

## Counts per category

| Category | Emoji |
| --- | ---: |
{table}
| **Total** | **{len(emoji)}** |

## How it was made

```
python scripts/build_emoji_dataset.py            # downloads with `npm pack {PACKAGE}@{VERSION}`
python scripts/build_emoji_dataset.py --tarball {PACKAGE}-{VERSION}.tgz
```

## Attribution and licences

- Emoji images: Google Noto Emoji (https://github.com/googlefonts/noto-emoji),
  © Google, Apache License 2.0 (`LICENSE-Apache-2.0.txt`). The package README
  states that the "Android/Google/Noto images, are available under the Apache
  License 2.0". Per the noto-emoji README, its flag images (from
  `third_party/region-flags`) are in the public domain or otherwise exempt from
  copyright.
- Metadata (names, categories): emoji-datasource by Cal Henderson / iamcal
  (MIT, "Copyright (c) 2013 Cal Henderson"), {mit_line}.

The atlas is a modified form of the images (composited on white, tiled).
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Writes to data/emoji/ by default. Needs npm unless --tarball is given.")
    ap.add_argument("--tarball", type=Path,
                    help=f"an already-downloaded {PACKAGE}-{VERSION}.tgz (skips npm)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "emoji",
                    help="output directory (default: data/emoji)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tarball = args.tarball.resolve() if args.tarball else npm_pack(tmp)
        pkg = extract(tarball, tmp)
        emoji = select_emoji(pkg)
        print(f"{len(emoji)} base emoji with a Google 64 px image", file=sys.stderr)

        args.out.mkdir(parents=True, exist_ok=True)
        atlas = build_atlas(pkg, emoji)
        # optimize=True makes Pillow search zlib settings for the smallest file.
        atlas.save(args.out / "emoji-64.png", optimize=True)
        write_metadata(args.out, emoji)
        licences = copy_licences(pkg, args.out)
        write_readme(args.out, pkg, emoji, licences, atlas.size)

    size = (args.out / "emoji-64.png").stat().st_size
    print(f"wrote {args.out}: atlas {atlas.size[0]}x{atlas.size[1]}, {size:,} bytes; "
          f"licences: {', '.join(licences)}", file=sys.stderr)


if __name__ == "__main__":
    main()
