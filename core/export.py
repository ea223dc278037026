"""python -m core.export --run RUN [--checkpoint NAME] --out G.pt: a checkpoint's generator as a
standalone TorchScript file that samples with nothing but torch (core/explore/standalone.py):

    G = torch.jit.load("G.pt"); images = G(torch.randn(16, G.z_dim))   # [16, 3, H, W] in [-1, 1]

Exit status 0 when written and checked, 1 when the run or checkpoint cannot be read or written.
"""
import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder (checkpoints/NAME)")
    p.add_argument("--checkpoint", default="latest.pt", help="a file in the run's checkpoints/ (default: latest.pt)")
    p.add_argument("--out", type=Path, required=True, help="the TorchScript file to write, e.g. G.pt")
    args = p.parse_args(argv)
    from core import checkpoint
    from core.explore import standalone
    from core.runs.runfolder import RunFolder
    run = RunFolder(args.run)
    ckpt = run.checkpoints / args.checkpoint
    if not run.config_file.is_file():
        return _fail(f"{args.run} is not a run folder (no config.json)")
    if Path(args.checkpoint).name != args.checkpoint or not ckpt.is_file():
        found = ", ".join(sorted(c.name for c in run.checkpoints.glob("*.pt"))) or "none"
        return _fail(f"no checkpoint {args.checkpoint!r} in {run.checkpoints} (there: {found})")
    try:
        diff = standalone.export(ckpt, args.out)
        G, _ = checkpoint.load_generator(ckpt)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return _fail(f"cannot export {ckpt}: {e}")
    size = args.out.stat().st_size / 2**20
    print(f"{args.out}: {size:.1f} MiB, z_dim {G.z_dim}, {G.n_classes} classes, {G.res} px; matches GANscope's "
          f"rendering to {diff:.1g}. Use: G = torch.jit.load('{args.out.name}'); G(torch.randn(16, {G.z_dim}))")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
