"""TensorBoard event files, for people who already watch their runs there (--tensorboard).

The trainer writes the same scalars as metrics.jsonl and every sample grid into
<run>/tensorboard/, so `tensorboard --logdir checkpoints` shows all runs side by side.
It needs the tensorboard package, which GANscope does not install for you
(`pip install tensorboard`): metrics.jsonl stays the run's own record, and a resumed
run rewrites both the same way (events after its checkpoint are purged).
"""
INSTALL = "pip install tensorboard"
SKIPPED = ("step", "kimg", "time")  # the x-axis and the wall clock, not curves


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class EventWriter:
    def __init__(self, folder, resume_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter
        # purge_step drops events a stopped run wrote after its last checkpoint: they are redone.
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=resume_step)

    def scalars(self, row: dict) -> None:
        for key, value in row.items():
            if key not in SKIPPED and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"train/{key}", value, global_step=row["step"], walltime=row.get("time"))
        self.writer.flush()

    def grid(self, step: int, sheet) -> None:
        """A sample grid, a uint8 array [H, W, 3]."""
        self.writer.add_image("samples", sheet, global_step=step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
