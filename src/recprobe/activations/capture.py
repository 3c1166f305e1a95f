"""Run a ProbeTarget over a split and write its activations to an ActivationStore, shard by shard.

Under ``torchrun`` the shards are shared out between the processes (every world-th shard to each), each process
writes its own into the one staging folder, and rank 0 writes the index once all are there: the store is the
one a single process writes, row for row and byte for byte (``tests/test_distributed.py``).

    torchrun --standalone --nproc-per-node 4 -m recprobe.cli -- capture --run runs/big
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recprobe.activations.store import (
    SHARD_ROWS,
    ActivationStore,
    Rows,
    check_rows,
    close_store,
    shard_name,
    write_shard,
)
from recprobe.batches import PositionPlan, position_batches
from recprobe.data.split import Split
from recprobe.errors import RecprobeError
from recprobe.io import write_folder
from recprobe.parallel import DataParallel
from recprobe.progress import stage_bar
from recprobe.target import ProbeTarget

Positions = Literal["auto", "last", "all"]
SPLITS = ("train", "dev", "test")


def resolve_positions(positions: Positions, max_history: int) -> Positions:
    """``auto``: every train position for a target that reads histories (the method's default; a bag-of-items
    model's prefixes too), the last for one that reads user ids only."""
    if positions not in ("auto", "last", "all"):
        raise RecprobeError(f"positions must be 'auto', 'last' or 'all', got {positions!r}")
    if positions == "auto":
        return "all" if max_history else "last"
    return positions


def rows_to_probe(split: Split, part: str, max_history: int, positions: Positions) -> PositionPlan:
    """The rows captured for ``part``. train/last: each user before their last train item; train/all: before
    every train item that has a history (targets that read histories); dev and test: each user as evaluated."""
    positions = resolve_positions(positions, max_history)
    n_train = np.diff(split.train_offsets)
    users, once = np.arange(split.n_users), np.ones(split.n_users, dtype=np.int64)
    if part == "dev":
        return PositionPlan.of(users, n_train, once)
    if part == "test":
        return PositionPlan.of(users, n_train + 1, once)
    if part != "train":
        raise RecprobeError(f"unknown split {part!r}; capture splits are {', '.join(SPLITS)}")
    if positions == "last":
        return PositionPlan.of(users, n_train - 1, once * (n_train >= (2 if max_history else 1)))  # one item of history
    if max_history == 0:
        raise RecprobeError("positions='all' needs a sequential model (one that reads histories); use positions='last'")
    return PositionPlan.of(users, once, np.maximum(n_train - 1, 0))  # positions 1 .. n_train - 1


@torch.no_grad()
def capture(
    target: ProbeTarget, split: Split, folder: str | Path, *, parts: Sequence[str] = SPLITS,
    positions: Positions = "auto", batch_size: int = 1024, provenance: dict[str, Any] | None = None,
    progress: bool = True,
) -> ActivationStore:
    """Write ``target``'s activations for each of ``parts`` to ``folder``; memory holds one batch and one shard.
    The store is built beside ``folder`` and swapped in only when complete: a failed or killed capture leaves
    the previous store as it was."""
    if batch_size < 1:
        raise RecprobeError(f"batch size must be at least 1, got {batch_size}")
    if not parts:
        raise RecprobeError(f"no split to capture; give some of {', '.join(SPLITS)}")
    positions = resolve_positions(positions, target.max_history)
    plan = {part: rows_to_probe(split, part, target.max_history, positions) for part in parts}
    provenance = {"target": target.name, "dataset": split.fingerprint, "dataset_name": split.name,
                  "positions": positions, **(provenance or {})}
    shards = [(part, j, start, min(start + SHARD_ROWS, len(rows)))
              for part, rows in plan.items() for j, start in enumerate(range(0, len(rows), SHARD_ROWS))]
    parallel = DataParallel.from_env("cpu")  # the processes only pass file names and wait for each other

    def write(staging: Path | None) -> None:
        staging = Path(parallel.broadcast(None if staging is None else str(staging)))
        mine = [shards[i] for i in parallel.mine(len(shards))]
        with stage_bar(progress and parallel.main) as bar:
            task = bar.add_task(f"capture {', '.join(plan)}", total=sum(stop - start for _, _, start, stop in mine))
            for part, j, start, stop in mine:
                users, pos = plan[part].rows(start, stop)
                reps = torch.empty(stop - start, target.d_model)  # filled in place, batch by batch
                done = 0
                for batch in position_batches(split, users, pos, target.max_history, batch_size):
                    found = target.represent(batch).float().cpu()
                    check_rows(Rows(found, batch.users, torch.from_numpy(pos[done:done + len(batch)])),
                               target.d_model, part)
                    reps[done:done + len(batch)] = found
                    done += len(batch)
                    bar.advance(task, len(batch))
                write_shard(staging / shard_name(part, j), Rows(reps, torch.from_numpy(users), torch.from_numpy(pos)))
        parallel.barrier()  # every shard is written
        if parallel.main:
            counts: dict[str, list[int]] = {}
            for part, _, start, stop in shards:  # a split with no rows has no shard, and no entry
                counts.setdefault(part, []).append(stop - start)
            close_store(staging, target.d_model, provenance, counts)

    if parallel.main:
        write_folder(folder, write)
    else:
        write(None)
    parallel.barrier()  # the store is in place
    return ActivationStore(folder)
