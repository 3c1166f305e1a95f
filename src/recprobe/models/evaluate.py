"""Evaluate a recommender (a built-in model or any ProbeTarget) on a split's dev or test users with full ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from recprobe.batches import phase_batches
from recprobe.data.split import Phase, Split
from recprobe.parallel import DataParallel
from recprobe.ranking.beyond import PopularityGroups
from recprobe.ranking.metrics import KS, evaluate_ranking
from recprobe.target import ProbeTarget


def nothing_seen(n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Exclusions (CSR) that mask nothing."""
    return np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)


@torch.no_grad()
def evaluate_model(
    model: ProbeTarget, split: Split, phase: Phase, *, ks: Sequence[int] = KS, batch_size: int = 1024,
    sampled: bool = False, mask_seen: bool = True, device: str | torch.device = "cpu", beyond: bool = False,
    parallel: DataParallel | None = None,
) -> dict[str, float | None]:
    """HR@K / NDCG@K of ``model.predict`` over every user of ``split`` at ``phase`` (dev or test). Seen items are
    masked unless ``mask_seen=False`` (RecBole's protocol for its sequential models, to compare with it). ``beyond``
    adds the beyond-accuracy metrics at K = 10 (``recprobe.ranking.beyond``; full ranking only). ``parallel``: the users'
    batches shared out between processes under torchrun (``recprobe.ranking.metrics.evaluate_ranking``)."""
    module = model if isinstance(model, nn.Module) else None
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    batch_of = phase_batches(split, phase, model.max_history)
    try:
        return evaluate_ranking(
            lambda users: model.predict(batch_of(users).to(device)),
            split.targets(phase), split.exclusions(phase) if mask_seen else nothing_seen(split.n_users),
            split.n_items,
            ks=ks, batch_size=batch_size, sampled=sampled,
            groups=PopularityGroups.of(split) if beyond and not sampled else None, parallel=parallel,
        )
    finally:
        if module is not None:
            module.train(was_training)
