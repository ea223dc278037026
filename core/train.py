"""The trainer process: `python -m core.train --data PATH --out DIR ...`.

It trains into one run folder (core/runs/runfolder.py) and reaches nothing else: the
dashboard starts it, watches the folder and stops it with SIGTERM. Before it imports
torch it checks its options, claims the folder and writes its first status, so a
launcher sees at once that it started, or why it refused.

Exit codes: 0 finished or stopped, 1 failed while training, 2 bad input.
"""
import errno
import logging
import os
import signal
import sys

DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StopFlag:
    """Set by the SIGTERM/SIGINT handler; the loop checks it after every step."""

    def __init__(self):
        self.signal = None

    def request(self, signum, _frame=None):
        if self.signal is None:
            self.signal = signal.Signals(signum).name


class NullStatus:
    """The status of ranks other than 0: only rank 0 writes the run folder."""

    def __init__(self):
        self.fields = {}

    def start(self):
        pass

    def update(self, **fields):
        self.fields.update(fields)

    write = close = update


def main(argv=None) -> int:
    stop = StopFlag()  # first of all, so that a stop during start-up still ends cleanly (exit 0)
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    from core.data.imageset import DataError
    from core.runs.runfolder import RunFolder, StatusWriter
    from core.training.config import build_parser, check_control_flags, given_options, merge_for_resume, resolve

    args = build_parser().parse_args(argv)  # bad syntax: argparse says why and exits 2
    run, given = RunFolder(args.out), given_options(args)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone writes the folder
    try:  # a new run's options are checked before its folder is made; a resume needs the folder's config
        check_control_flags(args)
        cfg = None if args.resume else resolve(given)
        checkpointed = run.claim(args.resume) if main_rank else args.resume and run.latest.exists()
        cfg = cfg or merge_for_resume(run.read_config(), given)
        if args.rewind is not None and not run.snapshot_path(args.rewind).exists():
            have = ", ".join(map(str, run.snapshot_steps())) or "none"
            raise ValueError(f"no snapshot of step {args.rewind} in {run.checkpoints} to rewind to (snapshots: {have})")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg.out = str(run.path)
    if main_rank:
        run.create()
        run.remove_temp_files()
        if not checkpointed:
            run.restart()
            run.write_config(cfg.to_dict())  # visible to the dashboard while data loads or the run queues
        log = setup_logging(run)
        status = StatusWriter(run, state="starting", step=0, kimg=0.0, img_per_sec=0.0, message="starting",
                              target_kimg=cfg.kimg, target_minutes=cfg.minutes)
    else:
        log, status = rank_logging(int(os.environ["RANK"])), NullStatus()
    status.start()
    try:
        return train(cfg, run, log, status, stop, fresh=not checkpointed, rewind=args.rewind, lr_scale=args.lr_scale)
    except (DataError, ValueError) as e:
        log.error("%s", e)
        return fail(status, str(e), 2)
    except OSError as e:
        if e.errno not in DISK_FULL:
            log.exception("training failed")
            return fail(status, f"{type(e).__name__}: {e}", 1)
        message = (f"disk full ({e.strerror}) while writing {os.path.basename(e.filename or '') or 'a file'}: "
                   f"the last good checkpoint is kept; free some space, then resume")
        log.error("%s", message)
        return fail(status, message, 1)
    except Exception as e:  # noqa: BLE001 - any crash must end as a readable `failed` status
        log.exception("training failed")
        return fail(status, f"{type(e).__name__}: {e}", 1)


def fail(status, message: str, code: int) -> int:
    """Record `failed` with its reason. On a full disk the write may fail too; a small file
    often still fits a moment later, so try twice before giving up on it."""
    import time
    for attempt in range(2):
        try:
            status.close(state="failed", message=message)
            break
        except OSError:
            time.sleep(1.0)
    return code


def train(cfg, run, log: logging.Logger, status, stop: StopFlag, fresh: bool, rewind: int | None = None,
          lr_scale: float | None = None) -> int:
    """Everything that needs torch: wait for the device, load, build, train, report."""
    from core.device import describe
    from core.training.distributed import Ranks
    from core.training.trainer import Trainer

    ranks = Ranks()
    try:
        trainer = Trainer(cfg, run, log, status, stop, ranks, fresh, rewind=rewind, lr_scale=lr_scale)
        ranks.start(trainer.device)
        status.update(device=describe(trainer.device), precision=trainer.precision)
        device_lock = wait_for_device(trainer, status, log)
        if stop.signal is not None:  # stopped while starting or queued: nothing has changed
            status.close(state="stopped", message=f"stopped on {stop.signal} before training started")
            return 0
        status.write(state="starting", message="loading data")
        trainer.load_data()
        trainer.build()
        if ranks.main:
            run.write_config({**cfg.to_dict(), "runtime": trainer.runtime_info()})
        if cfg.inject_nan:
            trainer.after_step = nan_injection(trainer, cfg.inject_nan)
        trainer.start()
        state = trainer.train()
        if ranks.active:
            in_sync = ranks.in_sync(trainer.G, trainer.ema.G_ema, trainer.D)
            log.info("%d processes; replicas %s", ranks.world, "in sync" if in_sync else "OUT OF SYNC")
            status.update(world_size=ranks.world, replicas_in_sync=in_sync)
        c = trainer.counters
        status.close(state=state, step=c.step, kimg=c.nimg / 1000, progress=trainer.progress(),
                     message="stopped; resume to continue" if state == "stopped" else "finished")
        if device_lock:
            device_lock.release()
        ranks.barrier()  # leave together: a rank tearing down gloo while another is still busy can abort
        return 0
    finally:
        ranks.close()


def nan_injection(trainer, spec: str):
    """--inject-nan STEP[:TIMES]: after step STEP, poison G's weights (TIMES times in all), so that
    tests can watch the trainer recover from a run that went non-finite."""
    import torch

    from core.training.config import parse_inject_nan
    step, times = parse_inject_nan(spec)
    left = [times]

    def poison():
        if trainer.counters.step == step and left[0] > 0:
            left[0] -= 1
            with torch.no_grad():
                next(trainer.G.parameters()).fill_(float("nan"))
    return poison


def wait_for_device(trainer, status, log: logging.Logger):
    """Take the device's lock (one run per GPU), waiting as `queued` meanwhile."""
    import time

    from core.training.devicelock import DeviceLock
    mode, device = trainer.cfg.device_lock, trainer.device
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    lock = DeviceLock(f"cuda-{device.index or 0}" if device.type == "cuda" else device.type)
    while not lock.try_acquire():
        if trainer.stop.signal is not None:
            return None
        message = f"queued: waiting for {lock.key} (in use by pid {lock.holder()})"
        if status.fields.get("state") != "queued":
            log.info(message)
            status.write(state="queued", message=message)
        time.sleep(1.0)
    return lock


# -- logging ----------------------------------------------------------------------------

def setup_logging(run) -> logging.Logger:
    logging.raiseExceptions = False  # a log line that can't be written (full disk) must not add a traceback
    log = logging.getLogger("ganscope.train")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    log.addHandler(console)
    # When a launcher already sends our stderr into train.log, a second
    # handler on the same file would write every line twice.
    if not _stderr_is(run.log_file):
        file_handler = logging.FileHandler(run.log_file, encoding="utf-8")
        file_handler.setFormatter(fmt)
        log.addHandler(file_handler)
    log.propagate = False
    return log


def rank_logging(rank: int) -> logging.Logger:
    """Ranks other than 0 only report problems, on stderr (torchrun collects it)."""
    log = logging.getLogger(f"ganscope.train.rank{rank}")
    log.setLevel(logging.WARNING)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s rank {rank} %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    return log


def _stderr_is(path) -> bool:
    try:
        a, b = os.fstat(sys.stderr.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


if __name__ == "__main__":
    sys.exit(main())
