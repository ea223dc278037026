"""python -m core.evaluate --run RUN [--checkpoint NAME] [--n N] [--json]: how good is a
checkpoint, and is it copying its training images?

Prints FID, KID, precision / recall and density / coverage (Inception features) and the
copying statistics (near-copies, authenticity, C_T; EfficientNet-Lite0 features), and saves
them in the run folder's evals/ as the Real vs Fake page does. Exit status 0 with the numbers,
1 when RUN is not a run folder or its checkpoint or images cannot be read, 2 for bad options.
"""
import argparse
import json
import sys
from pathlib import Path

N_RANGE = (100, 50_000)  # fewer images make every statistic noise; more take hours on a CPU


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder (checkpoints/NAME)")
    p.add_argument("--checkpoint", default="latest.pt", help="a file in the run's checkpoints/ (default: latest.pt)")
    p.add_argument("--n", type=int, default=1000, help="generated images to compare (default: 1000)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = p.parse_args(argv)
    if not N_RANGE[0] <= args.n <= N_RANGE[1]:
        p.error(f"--n must be from {N_RANGE[0]:,} to {N_RANGE[1]:,} (not {args.n})")
    from core.data.sources import DataError
    from core.evaluation import evaluate
    from core.runs.runfolder import RunFolder
    run = RunFolder(args.run)
    ckpt = run.checkpoints / args.checkpoint
    if not run.config_file.is_file():
        return _fail(f"{args.run} is not a run folder (no config.json)")
    if Path(args.checkpoint).name != args.checkpoint or not ckpt.is_file():
        found = ", ".join(sorted(c.name for c in run.checkpoints.glob("*.pt"))) or "none"
        return _fail(f"no checkpoint {args.checkpoint!r} in {run.checkpoints} (there: {found})")

    def progress(what: str):
        return lambda fraction, text: print(f"\r{what}: {fraction:4.0%} {text:60.60s}", end="", file=sys.stderr,
                                            flush=True)
    try:
        quality = evaluate.evaluate(run.path, args.checkpoint, n=args.n, progress=progress("quality"))
        print(file=sys.stderr)
        copies = evaluate.copying_report(run.path, args.checkpoint, n=args.n, progress=progress("copying"))
        print(file=sys.stderr)
    except (DataError, OSError, ValueError, KeyError, RuntimeError) as e:
        print(file=sys.stderr)
        return _fail(f"cannot evaluate {ckpt}: {e}")
    if args.json:
        print(json.dumps({"quality": quality, "copying": copies}, indent=1))
        return 0
    print(f"{run.path.name} / {args.checkpoint} ({quality['kimg']:.1f} kimg), {args.n} generated images "
          f"against {quality['n_real']} training images:")
    print(f"  FID {quality['fid']:.2f}   KID {quality['kid'] * 1000:.2f} ± {quality['kid_se'] * 1000:.2f} x10^-3")
    print(f"  precision {quality['precision']:.3f}   recall {quality['recall']:.3f}   "
          f"density {quality['density']:.3f}   coverage {quality['coverage']:.3f}")
    for line in evaluate.in_context(quality, evaluate.load_reference(run.path), []):
        print(f"  {line}")
    print("Copying:")
    for line in evaluate.copying_in_words(copies):
        print(f"  {line}")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
