"""Images/s of the trainer's step loop vs a bare DCGAN-tutorial loop, in one process.

Both train the same DCGAN networks (the tutorial recipe: BCE, Adam(2e-4, 0.5),
no R1/EMA/augmentation) at the same batch and resolution, on the built-in
emoji set held in memory. The trainer runs with all of its monitoring: metrics
lines, the status heartbeat thread, sample grids and checkpoints at their
default intervals. The ratio trainer / bare is what that monitoring costs.

Rounds alternate between the two loops so that drifts in machine load hit
both alike; the median of the rounds is reported.

    python bench/train_throughput.py [--res 32] [--batch 64] [--seconds 20] [--rounds 3] [--compile]
"""
import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.imageset import load_image_set  # noqa: E402
from core.device import describe, pick_device  # noqa: E402
from core.networks import build_discriminator, build_generator, model_spec  # noqa: E402
from core.paths import BUILTIN_EMOJI  # noqa: E402
from core.runs.runfolder import RunFolder, StatusWriter  # noqa: E402
from core.train import StopFlag  # noqa: E402
from core.training.config import resolve  # noqa: E402
from core.training.distributed import Ranks  # noqa: E402
from core.training.trainer import Trainer  # noqa: E402


def bare_tutorial_loop(images, spec, batch, seconds, device, warmup=3):
    """The tutorial's loop, nothing else: D on real, D on fake, G step."""
    G, D = build_generator(spec).to(device), build_discriminator(spec).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def step():
        idx = torch.randint(images.shape[0], (batch,), device=device)
        real = images.index_select(0, idx).float() / 127.5 - 1
        fake = G(torch.randn(batch, spec["z_dim"], device=device))
        opt_d.zero_grad()
        loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake), ones).backward()
        opt_g.step()

    for _ in range(warmup):
        step()
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += batch
    _sync(device)
    return n / (time.perf_counter() - start)


def trainer_loop(res, batch, seconds, device_name, workdir, compile_=False, warmup=3):
    """The real Trainer, monitoring included, timed around its own loop."""
    cfg = resolve({"recipe": "tutorial", "res": res, "batch": batch, "device": device_name,
                   "out": str(workdir), "minutes": seconds / 60, "compile": compile_})
    run = RunFolder(workdir)
    run.create()
    log = logging.getLogger("bench")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    status = StatusWriter(run)
    status.start()
    trainer = Trainer(cfg, run, log, status, StopFlag(), Ranks(), fresh=True)
    trainer.load_data()
    trainer.build()
    trainer.start()
    for _ in range(warmup):
        trainer.train_step()
    trainer.counters.__init__()  # the warm-up steps do not count
    _sync(trainer.device)
    start = time.perf_counter()
    trainer.train()
    _sync(trainer.device)
    elapsed = time.perf_counter() - start
    status.close(state="finished")
    return trainer.counters.nimg / elapsed


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res", type=int, default=32, choices=(32, 64, 128))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=20, help="timed seconds per loop per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="the trainer with --compile (the first steps "
                   "compile, so use --seconds 60 or more)")
    args = p.parse_args()

    device = pick_device(args.device)
    data = load_image_set(BUILTIN_EMOJI, args.res)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(device)
    spec = model_spec("dcgan", args.res, 100, 64)
    print(f"device: {describe(device)}; torch {torch.__version__}; DCGAN at {args.res} px, "
          f"batch {args.batch}, {len(images)} images, {args.rounds} rounds x {args.seconds:g} s")
    bare, trainer = [], []
    for r in range(args.rounds):
        bare.append(bare_tutorial_loop(images, spec, args.batch, args.seconds, device))
        with tempfile.TemporaryDirectory() as tmp:
            trainer.append(trainer_loop(args.res, args.batch, args.seconds, args.device, Path(tmp) / "run",
                                        args.compile))
        print(f"  round {r + 1}: bare {bare[-1]:8.1f} img/s   trainer {trainer[-1]:8.1f} img/s")
    b, t = statistics.median(bare), statistics.median(trainer)
    print(f"bare tutorial loop : {b:8.1f} img/s (median)")
    print(f"GANscope trainer   : {t:8.1f} img/s (median)")
    # On a CPU the trainer can only lose (monitoring); on a GPU, bf16, channels_last and
    # compiling should make it several times faster than the plain fp32 loop.
    target = ">= 3 on a GPU" if device.type == "cuda" else ">= 0.95 on a CPU"
    print(f"ratio trainer/bare : {t / b:.3f}  (target {target})")


if __name__ == "__main__":
    main()
