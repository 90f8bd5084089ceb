"""torch.distributed set-up for a trial started by torchrun (DDP); a no-op otherwise.

One trial on N processes: rank r's micro-batch j of step s is the task's batch
`(s * accum + j) * N + r`, so the N ranks together consume exactly the sequences one process
would with `grad_accum * N` micro-batches: global batch = per-device x accumulation x world.
DDP averages gradients over ranks; every rank evaluates (same weights, same result, so early
stopping agrees); rank 0 alone writes checkpoints and outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seqlab.train.load import pick_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any (a stop signal seen by one rank)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def stop_requested(self, should_stop: Callable[[], bool], due: bool) -> bool:
        """The stop flag: every step in one process; under DDP only at read points (`due`),
        where all ranks agree on it by one collective."""
        if not self.enabled:
            return should_stop()
        return self.any(should_stop()) if due else False

    def mean_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a scalar tensor, reduced where it lives (no host sync)."""
        if not self.enabled:
            return t
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t / self.world

    def gather_rng(self) -> list[torch.Tensor]:
        """Every rank's CPU RNG state (dropout draws differ per rank), for the checkpoint."""
        state = torch.get_rng_state()
        if not self.enabled:
            return [state]
        states: list[torch.Tensor | None] = [None] * self.world
        dist.all_gather_object(states, state)
        return [s for s in states if s is not None]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _collective_device() -> torch.device:
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def setup(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (WORLD_SIZE > 1) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if world <= 1:
        return Dist(), pick_device(device_name)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, local), torch.device(f"cuda:{local}" if cuda else "cpu")
