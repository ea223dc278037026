"""python -m core.project --run RUN [--checkpoint NAME] --image PATH [--steps N] --out DIR [--name NAME]:
put your own picture into a trained generator's latent space.

Writes DIR/latent.json (z and class: the Latent Lab's starting point), DIR/reconstruction.png,
DIR/target.png (the picture as the generator sees it) and DIR/losses.json (per step). With
--name it also saves the latent in the run folder (projections.json), where the Latent Lab
lists it. Exit status 0 when done, 1 when the run, checkpoint or image cannot be read, 2 for
bad options.
"""
import argparse
import sys
from pathlib import Path

MAX_STEPS = 5000


def main(argv: list[str] | None = None) -> int:
    from core.explore.project import STEPS
    p = argparse.ArgumentParser(prog="python -m core.project", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the run folder (checkpoints/NAME)")
    p.add_argument("--checkpoint", default="latest.pt", help="a file in the run's checkpoints/ (default: latest.pt)")
    p.add_argument("--image", type=Path, required=True, help="the picture (PNG, JPEG, WebP, ...)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"optimisation steps (default: {STEPS})")
    p.add_argument("--class", dest="cls", help="class name, for a class-conditional model (default: the first)")
    p.add_argument("--out", type=Path, required=True, help="folder to write the results to")
    p.add_argument("--name", help="also save the latent under this name in the run folder")
    args = p.parse_args(argv)
    if not 1 <= args.steps <= MAX_STEPS:
        p.error(f"--steps must be from 1 to {MAX_STEPS} (not {args.steps})")
    import numpy as np
    from PIL import Image

    from core import atomic, checkpoint
    from core.data.images import UnusableImage, decode_image
    from core.explore import project
    if args.name is not None:  # before minutes of optimisation, not after
        try:
            args.name = project.projection_name(args.name)
        except ValueError as e:
            p.error(f"--name: {e}")
    from core.grid import png_bytes
    from core.runs.runfolder import RunFolder
    run = RunFolder(args.run)
    ckpt = run.checkpoints / args.checkpoint
    if not run.config_file.is_file():
        return _fail(f"{args.run} is not a run folder (no config.json)")
    if Path(args.checkpoint).name != args.checkpoint or not ckpt.is_file():
        found = ", ".join(sorted(c.name for c in run.checkpoints.glob("*.pt"))) or "none"
        return _fail(f"no checkpoint {args.checkpoint!r} in {run.checkpoints} (there: {found})")
    try:
        image = np.asarray(decode_image(args.image.read_bytes()))
    except (OSError, UnusableImage) as e:
        return _fail(f"cannot read the image {args.image}: {e}")
    try:
        G, info = checkpoint.load_generator(ckpt)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return _fail(f"cannot load {ckpt}: {e}")
    names = info.get("class_names") or []
    if args.cls is not None and args.cls not in names:
        return _fail(f"no class {args.cls!r} in this model (classes: {', '.join(names) or 'none'})")
    cls = names.index(args.cls) if args.cls is not None else None
    result = project.project(G, image, steps=args.steps, cls=cls, progress=lambda step, steps, _, loss: print(
        f"\rstep {step}/{steps}  loss {loss:.4f}", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(args.out / "latent.json", {"z": result.z.tolist(), "class": result.cls,
                                                     "checkpoint": str(ckpt), "start_seed": result.start_seed})
        atomic.write_bytes(args.out / "reconstruction.png", png_bytes(Image.fromarray(result.image)))
        atomic.write_bytes(args.out / "target.png", png_bytes(Image.fromarray(project.fitted(image, G.res))))
        atomic.write_json(args.out / "losses.json", result.losses)
        if args.name:
            project.save_projection(run.path, args.name, result, source=args.image.name)
    except OSError as e:
        return _fail(f"cannot write the results: {e}")
    first, last = result.losses[0]["loss"], result.losses[-1]["loss"]
    print(f"loss {first:.4f} -> {last:.4f} in {result.seconds:.1f} s (from seed {result.start_seed}); "
          f"written to {args.out}" + (f"; saved as {args.name!r} in {run.path / project.PROJECTIONS_FILE}"
                                      if args.name else ""))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
