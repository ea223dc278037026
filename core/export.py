"""python -m core.export --run RUN [--checkpoint NAME] --out G.pt: a checkpoint's generator as a
standalone TorchScript file that samples with nothing but torch (core/explore/standalone.py):

    G = torch.jit.load("G.pt"); images = G(torch.randn(16, G.z_dim))   # [16, 3, H, W] in [-1, 1]

Exit status 0 when written and checked, 1 when the run or checkpoint cannot be read or written.
"""
import argparse
import sys
from pathlib import Path

TOLERANCE = 1e-4  # largest pixel difference (of the [-1, 1] range) from GANscope's own rendering: 0.013 of 255


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder (checkpoints/NAME)")
    p.add_argument("--checkpoint", default="latest.pt", help="a file in the run's checkpoints/ (default: latest.pt)")
    p.add_argument("--out", type=Path, required=True, help="the TorchScript file to write, e.g. G.pt")
    args = p.parse_args(argv)
    import torch

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
        module = standalone.export(ckpt, args.out)
        G, _ = checkpoint.load_generator(ckpt)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return _fail(f"cannot export {ckpt}: {e}")
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = G(z, torch.zeros(8, dtype=torch.long) if G.n_classes else None).clamp(-1, 1)
        diff = (module(z) - ours).abs().max().item()
    if diff > TOLERANCE:
        return _fail(f"the exported file draws differently from GANscope (max difference {diff:.2g})")
    size = args.out.stat().st_size / 2**20
    print(f"{args.out}: {size:.1f} MiB, z_dim {G.z_dim}, {G.n_classes} classes, {G.res} px; matches GANscope's "
          f"rendering to {diff:.1g}. Use: G = torch.jit.load('{args.out.name}'); G(torch.randn(16, {G.z_dim}))")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
