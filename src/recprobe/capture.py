"""Run a ProbeTarget over a split and write its activations to an ActivationStore, batch by batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recprobe.batches import position_batches
from recprobe.data.split import Split
from recprobe.errors import RecprobeError
from recprobe.io import write_folder
from recprobe.progress import stage_bar
from recprobe.store import ActivationStore, ActivationWriter, Rows
from recprobe.target import ProbeTarget

Positions = Literal["auto", "last", "all"]
SPLITS = ("train", "dev", "test")


def resolve_positions(positions: Positions, max_history: int) -> Positions:
    """``auto``: every train position for a sequential target (the method's default), the last for a general one."""
    if positions not in ("auto", "last", "all"):
        raise RecprobeError(f"positions must be 'auto', 'last' or 'all', got {positions!r}")
    if positions == "auto":
        return "all" if max_history else "last"
    return positions


def rows_to_probe(split: Split, part: str, max_history: int, positions: Positions) -> tuple[np.ndarray, np.ndarray]:
    """(users, sequence positions) of the rows captured for ``part``. train/last: each user before their last
    train item; train/all: before every train item that has a history (sequential models); dev and test:
    each user as evaluated."""
    positions = resolve_positions(positions, max_history)
    n_train = np.diff(split.train_offsets)
    users = np.arange(split.n_users)
    if part == "dev":
        return users, n_train
    if part == "test":
        return users, n_train + 1
    if part != "train":
        raise RecprobeError(f"unknown split {part!r}; capture splits are {', '.join(SPLITS)}")
    if positions == "last":
        keep = n_train >= (2 if max_history else 1)  # a sequential model needs one item of history
        return users[keep], n_train[keep] - 1
    if max_history == 0:
        raise RecprobeError("positions='all' needs a sequential model (one that reads histories); use positions='last'")
    flat = np.arange(len(split.train_items))
    flat = flat[flat > split.train_offsets[split.train_users]]
    return split.train_users[flat], flat - split.train_offsets[split.train_users[flat]]


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

    def write(staging: Path) -> None:
        writer = ActivationWriter(staging, target.d_model, provenance)
        with stage_bar(progress) as bar:
            for part, (users, pos) in plan.items():
                task = bar.add_task(f"capture {part}", total=len(users))
                done = 0
                for batch in position_batches(split, users, pos, target.max_history, batch_size):
                    reps = target.represent(batch).float().cpu()
                    writer.append(part, Rows(reps, batch.users, torch.from_numpy(pos[done:done + len(batch)])))
                    done += len(batch)
                    bar.advance(task, len(batch))
        writer.close()

    return ActivationStore(write_folder(folder, write))
