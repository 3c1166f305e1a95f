"""Run a ProbeTarget over a split and write its activations to an ActivationStore, batch by batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.progress import Progress

from recprobe.data.split import Split, last_window
from recprobe.errors import RecprobeError
from recprobe.models.evaluate import phase_batches
from recprobe.store import ActivationStore, ActivationWriter, Rows
from recprobe.target import Batch, ProbeTarget

Positions = Literal["last", "all"]
SPLITS = ("train", "dev", "test")


def rows_to_probe(split: Split, part: str, max_history: int, positions: Positions) -> tuple[np.ndarray, np.ndarray]:
    """(users, sequence positions) of the rows captured for ``part``. train/last: each user before their last
    train item; train/all: before every train item that has a history (sequential models); dev and test:
    each user as evaluated."""
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


def batches_at(split: Split, users: np.ndarray, positions: np.ndarray, max_history: int, batch_size: int) -> Iterator[Batch]:
    """Batches whose history for (user, position) is the user's items before that position."""
    offsets, items = split.sequences("test")  # train items then the dev item, per user
    by_user = phase_batches(split, "dev", 0)  # general models read user ids only
    for start in range(0, len(users), batch_size):
        u, p = users[start:start + batch_size], positions[start:start + batch_size]
        if max_history == 0:
            yield by_user(u)
            continue
        history, lengths = last_window(offsets, items, u, offsets[u] + p, max_history, split.pad_item)
        yield Batch(torch.from_numpy(u), torch.from_numpy(history), torch.from_numpy(lengths))


@torch.no_grad()
def capture(
    target: ProbeTarget, split: Split, folder: str | Path, *, parts: Sequence[str] = SPLITS,
    positions: Positions = "last", batch_size: int = 1024, provenance: dict[str, Any] | None = None,
    progress: bool = True,
) -> ActivationStore:
    """Write ``target``'s activations for each of ``parts`` to ``folder``; memory holds one batch and one shard."""
    plan = {part: rows_to_probe(split, part, target.max_history, positions) for part in parts}
    provenance = {"target": target.name, "dataset": split.name, "fingerprint": split.fingerprint,
                  "positions": positions, **(provenance or {})}
    writer = ActivationWriter(folder, target.d_model, provenance)
    with Progress(disable=not progress, transient=True) as bar:
        for part, (users, pos) in plan.items():
            task = bar.add_task(f"capture {part}", total=len(users))
            done = 0
            for batch in batches_at(split, users, pos, target.max_history, batch_size):
                reps = target.represent(batch).float().cpu()
                writer.append(part, Rows(reps, batch.users, torch.from_numpy(pos[done:done + len(batch)])))
                done += len(batch)
                bar.advance(task, len(batch))
    return ActivationStore(writer.close())
