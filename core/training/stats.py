"""The loss statistics of one logging interval, summed on the training device.

Each step adds its losses to one device tensor; only writing a metrics line reads it
back, so logging costs one host sync per interval, not one per step. The open
interval is part of every checkpoint, so a resumed run writes the same lines as one
that never stopped.
"""
import torch

KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "r1", "r2", "rt")


class IntervalStats:
    def __init__(self, device: torch.device):
        self.sums = torch.zeros(len(KEYS), device=device)
        self.steps = 0        # steps in the interval
        self.regularised = 0  # of which applied the gradient penalties

    def add(self, stats: dict, regularised: bool) -> None:
        self.sums += torch.stack([stats[k].float() for k in KEYS])
        self.steps += 1
        self.regularised += int(regularised)

    def finite(self) -> torch.Tensor:
        return torch.isfinite(self.sums).all()

    def means(self, penalties: tuple[str, ...]) -> dict:
        """The interval's averages; the penalties over the steps that applied them (None if none did)."""
        sums = dict(zip(KEYS, self.sums.tolist()))
        n = max(self.steps, 1)
        row = {k: sums[k] / n for k in ("loss_d", "loss_g", "d_real", "d_fake")}
        for k in ("r1", "r2"):
            row[k] = sums[k] / self.regularised if self.regularised and k in penalties else None
        row["rt"] = sums["rt"] / n
        return row

    def reset(self) -> None:
        self.sums.zero_()
        self.steps = self.regularised = 0

    def state(self) -> dict:
        return {"acc": self.sums.detach().cpu(), "acc_steps": self.steps, "acc_r1": self.regularised}

    def load(self, state: dict) -> None:
        sums = state["acc"]
        if len(sums) == len(KEYS) - 1:  # saved before R2 was counted
            sums = torch.cat([sums[:5], torch.zeros(1), sums[5:]])
        self.sums = sums.to(self.sums.device)
        self.steps, self.regularised = state["acc_steps"], state["acc_r1"]
