"""The one place a split becomes the Batches a ProbeTarget reads.

General targets (``max_history == 0``) read user ids only; sequential ones read the user's items before the
position being predicted, oldest first, padded at the end with ``split.pad_item``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recprobe.data.split import Phase, Split, last_window
from recprobe.target import Batch


@dataclass(frozen=True)
class PositionPlan:
    """(user, sequence position) rows in user order, each user a run of consecutive positions, made a slice at a
    time: what capture and case recording walk, in memory that grows with the users, not with the rows."""

    users: np.ndarray  # [U] the users with at least one row
    first: np.ndarray  # [U] each one's first position
    starts: np.ndarray  # [U + 1] where each one's rows start; starts[-1] rows in all

    @classmethod
    def of(cls, users: np.ndarray, first: np.ndarray, counts: np.ndarray) -> PositionPlan:
        keep = counts > 0
        return cls(users[keep], first[keep], np.concatenate([[0], np.cumsum(counts[keep])]))

    def __len__(self) -> int:
        return int(self.starts[-1])

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(users, positions) of rows ``start:stop``."""
        return self.at(np.arange(start, len(self) if stop is None else stop))

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(users, positions) of the given rows."""
        owner = np.searchsorted(self.starts, rows, side="right") - 1
        return self.users[owner], self.first[owner] + (rows - self.starts[owner])


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
