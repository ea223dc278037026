"""python -m core.generate --run RUN [--checkpoint NAME] [--network G_ema|G] (--seeds 0-99 | --n N
[--first-seed S]) [--psi 0.7] [--class NAME] [--size PX] [--no-copies] --out DIR: a set of generated
images to use.

Writes one PNG per image as it is made, named by seed (seed-000042.png), then settings.json with
everything that makes each image again. --no-copies leaves out images that the near-copy check flags (with --n,
further seeds take their place). Exit status 0 when written, 1 when the run, checkpoint or its
images cannot be read, 2 for bad options.
"""
import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from core.explore.generate import MAX_IMAGES, MAX_SIZE
    p = argparse.ArgumentParser(prog="python -m core.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder (checkpoints/NAME)")
    p.add_argument("--checkpoint", default="latest.pt", help="a file in the run's checkpoints/ (default: latest.pt)")
    p.add_argument("--network", choices=("G_ema", "G"), default="G_ema",
                   help="G_ema (the moving average of G's weights, usually cleaner; default) or G")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--seeds", help="seeds and ranges, e.g. 0-99 or 3,17,40-45")
    which.add_argument("--n", type=int, help="this many images, from --first-seed on")
    p.add_argument("--first-seed", type=int, default=0, help="with --n: the first seed (default: 0)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation: 1 = as trained, lower = more typical")
    p.add_argument("--class", dest="cls", help="class name, for a class-conditional model (default: the first)")
    p.add_argument("--size", type=int, help="output side in pixels (default: the generator's own)")
    p.add_argument("--no-copies", action="store_true", help="leave out images the near-copy check flags")
    p.add_argument("--out", type=Path, required=True, help="the folder to write (created if need be)")
    p.add_argument("--json", action="store_true", help="print settings.json when done")
    args = p.parse_args(argv)
    from core.explore import latent
    from core.explore.generate import parse_seed_ranges
    try:
        seeds = parse_seed_ranges(args.seeds) if args.seeds else [args.first_seed]
    except ValueError as e:
        p.error(f"--seeds: {e}")
    if args.n is not None and not 1 <= args.n <= MAX_IMAGES:
        p.error(f"--n must be from 1 to {MAX_IMAGES:,} (not {args.n})")
    if not 0 <= args.first_seed <= latent.MAX_SEED:
        p.error(f"--first-seed must be from 0 to {latent.MAX_SEED:,}")
    if not 0 <= args.psi <= 2:
        p.error(f"--psi must be from 0 to 2 (not {args.psi:g})")
    if args.size is not None and not 8 <= args.size <= MAX_SIZE:
        p.error(f"--size must be from 8 to {MAX_SIZE} pixels (not {args.size})")
    return run(args, seeds)


def run(args, seeds: list[int]) -> int:
    from core import checkpoint
    from core.data.sources import DataError
    from core.evaluation import evaluate
    from core.explore import generate
    from core.runs.runfolder import RunFolder
    folder = RunFolder(args.run)
    ckpt = folder.checkpoints / args.checkpoint
    if not folder.config_file.is_file():
        return _fail(f"{args.run} is not a run folder (no config.json)")
    if Path(args.checkpoint).name != args.checkpoint or not ckpt.is_file():
        found = ", ".join(sorted(c.name for c in folder.checkpoints.glob("*.pt"))) or "none"
        return _fail(f"no checkpoint {args.checkpoint!r} in {folder.checkpoints} (there: {found})")
    try:
        G, info = checkpoint.load_generator(ckpt, args.network)
        if args.network not in info:  # an exported checkpoint (the demo's) keeps G_ema only
            return _fail(f"{ckpt} holds no {args.network}, only G_ema")
        is_copy = evaluate.copy_check(folder.path) if args.no_copies else None
    except (DataError, OSError, ValueError, KeyError, RuntimeError) as e:
        return _fail(f"cannot use {ckpt}: {e}")
    names = info.get("class_names") or []
    if args.cls is not None and args.cls not in names:
        return _fail(f"no class {args.cls!r} in this model (classes: {', '.join(names) or 'none'})")
    cls = names.index(args.cls) if args.cls is not None else None
    size = args.size or G.res
    try:
        meta = generate.write_folder(
            args.out, generate.draw(G, seeds, n=args.n, psi=args.psi, cls=cls, size=size, is_copy=is_copy),
            args.n or len(seeds),
            lambda kept, copies: generate.settings(str(args.run), args.checkpoint, args.network,
                                                   info.get("counters", {}).get("step"), kept, args.psi, args.cls,
                                                   size, copies, args.no_copies),
            progress=lambda done, total: print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True))
        print(file=sys.stderr)
    except OSError as e:
        return _fail(f"cannot write to {args.out}: {e}")
    kept, copies = meta["seeds"], meta["left_out_as_copies"]
    if args.json:
        print(json.dumps(meta, indent=1))
    else:
        print(f"{len(kept)} images written to {args.out}" + (f"; {len(copies)} left out as likely copies "
                                                               f"(seeds {', '.join(map(str, copies[:10]))})"
                                                               if copies else ""))
    if args.n is not None and len(kept) < args.n:
        return _fail(f"only {len(kept)} of {args.n} images passed the near-copy check in "
                     f"{generate.TRIES_PER_IMAGE * args.n} seeds")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
