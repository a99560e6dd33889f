"""The process group (torchrun), the device, and the collectives the loop needs."""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

# How long a collective may wait for the slowest rank. The corpus is tokenized before anything
# waits on a collective (data.build_shards takes a file lock), but rank 0 alone runs the
# in-training dev evaluation while the others wait in its broadcast, and NCCL's default
# watchdog (10 min) would kill that wait on a large dev set. CODELING_DIST_TIMEOUT_S overrides.
DEFAULT_TIMEOUT_S = 3600.0


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors, gloo for anything else (device=cpu on a GPU machine too)."""
    return "nccl" if device.type == "cuda" else "gloo"


def timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get("CODELING_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S)))


def init_distributed(device: str = "auto") -> tuple[int, int]:
    """(rank, world). Under torchrun, starts the process group with the backend that fits the
    resolved `device` (the training section's `device`), and binds a CUDA rank to its GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        where = resolve_device(device)
        if where.type == "cuda":
            torch.cuda.set_device(where)
        dist.init_process_group(backend_for(where), timeout=timeout())
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(name: str, cuda: bool | None = None) -> torch.device:
    """auto → cuda when present; under torchrun each rank takes cuda:LOCAL_RANK. `cuda` says
    whether CUDA is present (default: ask torch)."""
    if cuda is None:
        cuda = torch.cuda.is_available()
    if name == "auto":
        name = "cuda" if cuda else "cpu"
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


class Dist:
    """This process's place in the job; every method is a no-op in a single process."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @classmethod
    def start(cls, device: str = "auto") -> Dist:
        return cls(*init_distributed(device))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            x = x.clone()
            dist.all_reduce(x)
            x /= self.world
        return x

    def main_float(self, x: float, device: torch.device) -> float:
        """Rank 0's `x` on every rank, as one float64 tensor (no pickling)."""
        if self.world == 1:
            return x
        # gloo moves CPU tensors; NCCL only CUDA ones
        box = torch.tensor([x], dtype=torch.float64,
                           device=device if backend_for(device) == "nccl" else "cpu")
        dist.broadcast(box, src=0)
        return float(box.item())

    def from_main(self, obj: object) -> object:
        """Rank 0's `obj` on every rank (others may pass None)."""
        box = [obj]
        if self.world > 1:
            dist.broadcast_object_list(box, src=0)
        return box[0]
