"""Evaluate a built-in model on a split's dev or test users with full ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.data.split import Phase, Split
from recprobe.metrics import KS, evaluate_ranking
from recprobe.models.base import Recommender
from recprobe.target import Batch


def phase_batches(split: Split, phase: Phase, max_history: int):
    """A function mapping user indices to the Batch a model reading ``max_history`` items sees for them at
    ``phase`` (0: user ids only)."""
    if max_history == 0:
        history_t, lengths_t = torch.empty(split.n_users, 0, dtype=torch.long), torch.zeros(split.n_users, dtype=torch.long)
    else:
        history, lengths = split.histories(phase, max_history)
        history_t, lengths_t = torch.from_numpy(history), torch.from_numpy(lengths)

    def batch_of(users: Sequence[int] | np.ndarray) -> Batch:
        index = torch.as_tensor(np.asarray(users, dtype=np.int64))
        return Batch(index, history_t[index], lengths_t[index])

    return batch_of


@torch.no_grad()
def evaluate_model(
    model: Recommender, split: Split, phase: Phase, *, ks: Sequence[int] = KS, batch_size: int = 1024,
    sampled: bool = False, device: str | torch.device = "cpu",
) -> dict[str, float]:
    """HR@K / NDCG@K of ``model`` over every user of ``split`` at ``phase`` (dev or test)."""
    was_training = model.training
    model.eval()
    batch_of = phase_batches(split, phase, model.max_history)
    try:
        return evaluate_ranking(
            lambda users: model.predict(batch_of(users).to(device)),
            split.targets(phase), split.exclusions(phase), split.n_items,
            ks=ks, batch_size=batch_size, sampled=sampled,
        )
    finally:
        model.train(was_training)
