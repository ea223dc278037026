"""Data-parallel training over several processes (torchrun), and nothing when there is one.

    torchrun --nproc_per_node=N -m core.train ...   (or python -m torch.distributed.run)

Every rank holds the same G, D, optimisers and augmentation p, and samples its own
share of each batch. Gradients are averaged by hand after each backward pass
instead of wrapping the networks in DistributedDataParallel, whose hooks do not
mix with the R1 penalty's double backward or with switching D's requires_grad
between the D and G steps (StyleGAN2-ADA does the same). Rank 0 alone writes the
run folder. Without torchrun every method is a no-op, so a single process pays
nothing and behaves exactly as before.
"""
import hashlib
import os

import torch
import torch.distributed as dist


class Ranks:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process: rank r of a node uses cuda:r."""
        if self.active and device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        if self.active and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average a tensor over ranks, in place."""
        if self.active:
            dist.all_reduce(tensor)
            tensor /= self.world
        return tensor

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true on every rank if it is true on any: all ranks take the same branch."""
        if not self.active:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def average_gradients(self, module: torch.nn.Module) -> None:
        if not self.active:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            self.mean_(flat)
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def broadcast_(self, *modules: torch.nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's weights (or only its buffers, e.g. BatchNorm statistics) to every rank."""
        if not self.active:
            return
        for module in modules:
            tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def in_sync(self, *modules: torch.nn.Module) -> bool:
        """Whether every rank holds bit-identical weights and buffers."""
        digest = hashlib.sha256()
        for module in modules:
            for t in module.state_dict().values():
                digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        if not self.active:
            return True
        mine = torch.tensor(list(digest.digest()), dtype=torch.float64, device=self._device())
        lowest, highest = mine.clone(), mine.clone()
        dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
        dist.all_reduce(highest, op=dist.ReduceOp.MAX)
        return bool(torch.equal(lowest, highest))

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend() == "nccl" else torch.device("cpu")
