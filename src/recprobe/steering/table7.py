"""Paper Table 7 for every concept, not three picks: each concept's latent scaled by -10 and by +10 over the test
users it fires on, and whether its items move as the concept says. A concept *passes* when +10x puts one of its
items in the top 10 of at least 90% of those users and -10x leaves one there for at most 10%, the rule the paper
reads its three picks by. Any basis with a decoder row per latent is measured the same way (an SAE, the raw
dimensions, the untrained and frozen controls), every concept in one pass over the test users.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from recprobe.data.split import Split
from recprobe.steering.edit import value_of
from recprobe.steering.steer import ranked_batches, top_items
from recprobe.target import Batch, ProbeTarget

DOWN, UP = -10.0, 10.0
SCALES = (DOWN, 1.0, UP)
PASS_UP, PASS_DOWN = 0.9, 0.1


def passes(down: float, up: float) -> bool:
    """Whether a concept's Hit@10 at -10x and +10x is what steering it should do (the paper's rule)."""
    return up >= PASS_UP and down <= PASS_DOWN


def rows_of(batch: Batch, rows: torch.Tensor) -> Batch:
    return Batch(batch.users[rows], batch.history[rows], batch.lengths[rows])


@torch.no_grad()
def concept_hits(target: ProbeTarget, basis, split: Split, concept_items: Mapping[int, np.ndarray],
                 batch_size: int = 512) -> dict[int, dict[str, float | int | None]]:
    """For each latent of ``concept_items`` (latent -> [n_items] bool): the test users it fires on, and the share
    of them whose top 10 (seen items masked) holds one of its items with the latent at -10x, unedited and at +10x."""
    latents = sorted(concept_items)
    active = np.zeros(len(latents), dtype=np.int64)
    hits = np.zeros((len(latents), len(SCALES)), dtype=np.int64)
    items = [torch.from_numpy(np.asarray(concept_items[j], dtype=bool)) for j in latents]
    decoder = basis.W_dec.detach().float()
    for _, batch, seen in ranked_batches(target, split, np.arange(split.n_users), batch_size):
        reps = target.represent(batch).float()
        values, indices = basis.encode(reps)
        for slot, latent in enumerate(latents):
            z = value_of(values, indices, latent)
            rows = (z > 0).nonzero().squeeze(1)
            if not len(rows):
                continue
            active[slot] += len(rows)
            for column, scale in enumerate(SCALES):
                moved = reps[rows] + ((scale - 1) * z[rows])[:, None] * decoder[latent]
                top = top_items(target, moved, rows_of(batch, rows), seen.take(rows))
                hits[slot, column] += int(items[slot][top].any(1).sum())
    return {latent: {"n_active": int(active[slot]),
                     **{name: float(hits[slot, column] / active[slot]) if active[slot] else None
                        for column, name in enumerate(("down", "unedited", "up"))}}
            for slot, latent in enumerate(latents)}
