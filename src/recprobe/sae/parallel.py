"""Data-parallel SAE training on ``torch.distributed``: gloo on CPU, NCCL on GPU; world size 1 is the plain path.

Every rank walks the same shuffled order of global batches and trains on its own slice of each (so N ranks
with batches of B match one process with batches of B, up to the order of float sums). Gradients are summed
across ranks before the optimiser step, and a latent counts as fired if it fired on any rank, so weights,
Adam moments and dead-latent counters stay identical everywhere. Launch with ``torchrun``:

    torchrun --standalone --nproc-per-node 4 -m recprobe.cli -- train-sae --run runs/big

(``--`` ends torchrun's own options: without it torchrun reads ``--run`` as an abbreviation of its ``--run-path``.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

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

    def fired_anywhere(self, fired: torch.Tensor) -> torch.Tensor:
        """[n_latents] bool: fired on this rank's rows or any other rank's."""
        if self.world > 1:
            fired = fired.to(torch.uint8)
            dist.all_reduce(fired, op=dist.ReduceOp.MAX)
        return fired.bool()
