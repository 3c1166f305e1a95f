"""Paper Table 7 for every concept, not three picks: each concept's latent scaled by -10 and by +10 over the cases
it fires on, and whether its items move as the concept says. A concept *passes* when +10x puts one of its items in
the top 10 of at least 90% of those cases and -10x leaves one there for at most 10%, the rule the paper reads its
three picks by. The cases are each test user at test time (the paper's), or any (user, position) cases, such as
a sample of every position of a sequential target's sequences. Any basis with a decoder row per latent is measured
the same way (an SAE, the raw dimensions, the untrained and frozen controls), every concept in one pass over the
cases.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from recprobe.concepts.cases import case_rows, ranked_cases
from recprobe.data.split import Split
from recprobe.steering.edit import value_of
from recprobe.steering.steer import top_items
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
                 cases: tuple[np.ndarray, np.ndarray] | None = None, push: float | None = None,
                 batch_size: int = 512) -> dict[int, dict[str, float | int | None]]:
    """For each latent of ``concept_items`` (latent -> [n_items] bool): the cases it fires on (``n_active``), their
    distinct users (``n_users``), its mean value there (``mean_value``), and the share of those cases whose top 10
    (the history's items masked) holds one of its items with the latent at -10x, unedited and at +10x.
    ``cases``: (users, positions) in user order, default each user at test time. ``push``: instead of the
    latent's own value z, one amount for every basis and case, x + (scale - 1) * push * d (a diagnostic: how far
    a direction steers, apart from how strongly it fires). Memory: one batch of cases and a few numbers per
    latent."""
    users, positions = cases if cases is not None else case_rows(split, "test", target.max_history).rows()
    if np.any(np.diff(users) < 0):
        raise ValueError("concept_hits counts each latent's users as they come: give the cases in user order")
    latents = sorted(concept_items)
    active, users_fired = np.zeros(len(latents), dtype=np.int64), np.zeros(len(latents), dtype=np.int64)
    last_user = np.full(len(latents), -1)  # each latent's last user so far: cases come in user order
    total_value = np.zeros(len(latents))
    hits = np.zeros((len(latents), len(SCALES)), dtype=np.int64)
    items = [torch.from_numpy(np.asarray(concept_items[j], dtype=bool)) for j in latents]
    decoder = basis.W_dec.detach().float()
    for chunk, batch, seen in ranked_cases(target, split, users, positions, batch_size):
        reps = target.represent(batch).float()
        values, indices = basis.encode(reps)
        for slot, latent in enumerate(latents):
            z = value_of(values, indices, latent)
            rows = (z > 0).nonzero().squeeze(1)
            if not len(rows):
                continue
            fired = users[chunk][rows.numpy()]
            users_fired[slot] += np.count_nonzero(np.diff(fired, prepend=last_user[slot]))
            last_user[slot] = fired[-1]
            active[slot] += len(rows)
            total_value[slot] += float(z[rows].sum())
            for column, scale in enumerate(SCALES):
                amount = z[rows] if push is None else torch.full_like(z[rows], push)
                moved = reps[rows] + ((scale - 1) * amount)[:, None] * decoder[latent]
                top = top_items(target, moved, rows_of(batch, rows), seen.take(rows))
                hits[slot, column] += int(items[slot][top].any(1).sum())
    return {latent: {"n_active": int(active[slot]),
                     "mean_value": float(total_value[slot] / active[slot]) if active[slot] else None,
                     "n_users": int(users_fired[slot]),
                     **{name: float(hits[slot, column] / active[slot]) if active[slot] else None
                        for column, name in enumerate(("down", "unedited", "up"))}}
            for slot, latent in enumerate(latents)}
