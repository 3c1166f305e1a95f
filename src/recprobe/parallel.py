"""Data-parallel work on ``torch.distributed`` (gloo on CPU, NCCL on GPU; world size 1 is the plain path): SAE training,
and capture, evaluation and case recording shared out by rows.

Training: every rank walks the same shuffled order of global batches and trains on its own slice of each (so N ranks
with batches of B match one process with batches of B, up to the order of float sums). Gradients are summed
across ranks before the optimiser step, and a latent counts as fired if it fired on any rank, so weights,
Adam moments and dead-latent counters stay identical everywhere. Launch with ``torchrun``:

    torchrun --standalone --nproc-per-node 4 -m recprobe.cli -- train-sae --run runs/big

(``--`` ends torchrun's own options: without it torchrun reads ``--run`` as an abbreviation of its ``--run-path``.)
Capture gives each rank every world-th shard, evaluation every world-th batch of users, case recording a
contiguous block of cases; rank 0 joins what they made into what one process makes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# How long a rank waits in a collective: rank 0 measures faithfulness alone before and after training while the
# others wait, which outlasts gloo's 30-minute and NCCL's 10-minute defaults on a large run.
TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class DataParallel:
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> DataParallel:
        """The process group in use, or a world of one."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @classmethod
    def from_env(cls, device: str) -> DataParallel:
        """Join the group ``torchrun`` describes in the environment (WORLD_SIZE > 1), if any."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.device(device).type == "cuda" else "gloo", timeout=TIMEOUT)
        return cls.current()

    @property
    def main(self) -> bool:
        """Rank 0: the one that shows progress and writes files."""
        return self.rank == 0

    def part(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch."""
        return batch.tensor_split(self.world)[self.rank]

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        if self.world > 1:
            for p in parameters:
                dist.all_reduce(p.grad)

    def leave(self) -> None:
        """Wait for every rank, then leave the process group: a rank that exits while another still works, its
        group undestroyed, aborts (and torchrun then stops the others)."""
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()

    def mine(self, count: int) -> range:
        """The indices of ``count`` work items (shards, batches) this rank takes: every world-th, from its rank."""
        return range(self.rank, count, self.world)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object), on every rank."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world == 1:
            return [value]
        found: list[Any] = [None] * self.world
        dist.all_gather_object(found, value)
        return found

    def gather_to_main(self, value: Any) -> list[Any] | None:
        """Every rank's ``value``, in rank order, on rank 0 only (None on the others)."""
        if self.world == 1:
            return [value]
        found: list[Any] | None = [None] * self.world if self.main else None
        dist.gather_object(value, found, dst=0)
        return found

    def block(self, count: int) -> range:
        """This rank's contiguous share of ``count`` work items in order (rank 0 the first)."""
        edges = [count * r // self.world for r in range(self.world + 1)]
        return range(edges[self.rank], edges[self.rank + 1])

    def fired_anywhere(self, fired: torch.Tensor) -> torch.Tensor:
        """[n_latents] bool: fired on this rank's rows or any other rank's."""
        if self.world > 1:
            fired = fired.to(torch.uint8)
            dist.all_reduce(fired, op=dist.ReduceOp.MAX)
        return fired.bool()
