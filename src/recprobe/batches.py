"""The one place a split becomes the Batches a ProbeTarget reads.

General targets (``max_history == 0``) read user ids only; sequential ones read the user's items before the
position being predicted, oldest first, padded at the end with ``split.pad_item``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from recprobe.data.split import Phase, Split, last_window
from recprobe.target import Batch


def user_batch(users: np.ndarray | Sequence[int], history: np.ndarray | None = None,
               lengths: np.ndarray | None = None) -> Batch:
    """A Batch of ``users``; without ``history`` it is the user-ids-only batch of a general target."""
    index = torch.as_tensor(np.asarray(users, dtype=np.int64))
    if history is None:
        return Batch(index, torch.empty(len(index), 0, dtype=torch.long), torch.zeros(len(index), dtype=torch.long))
    return Batch(index, torch.as_tensor(history, dtype=torch.long), torch.as_tensor(lengths, dtype=torch.long))


def phase_batches(split: Split, phase: Phase, max_history: int):
    """A function mapping user indices to the Batch a target reading ``max_history`` items sees for them at
    ``phase``: for dev, the train items; for test, the train items and then the dev item."""
    if not max_history:
        return user_batch
    history, lengths = split.histories(phase, max_history)

    def batch_of(users: Sequence[int] | np.ndarray) -> Batch:
        index = np.asarray(users, dtype=np.int64)
        return user_batch(index, history[index], lengths[index])

    return batch_of


def position_batches(split: Split, users: np.ndarray, positions: np.ndarray, max_history: int,
                     batch_size: int) -> Iterator[Batch]:
    """Batches whose history for (user, position) is the user's items before that position of their
    train-then-dev sequence."""
    offsets, items = split.sequences("test")
    for start in range(0, len(users), batch_size):
        u, p = users[start:start + batch_size], positions[start:start + batch_size]
        if not max_history:
            yield user_batch(u)
            continue
        yield user_batch(u, *last_window(offsets, items, u, offsets[u] + p, max_history, split.pad_item))
