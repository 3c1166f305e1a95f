"""De-biasing: find the latents whose activation tracks the popularity of what the model predicts (Spearman's
rank correlation over the test cases), rescale them, and measure the top-10 lists before and after (mean item
popularity, catalog coverage, HR@10)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Split
from recprobe.steer import TOP, Edit, ranked_batches, steered, top_items
from recprobe.target import ProbeTarget

MIN_ACTIVE = 10  # a latent firing on fewer cases has no meaningful correlation


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (as Spearman's correlation needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def popularity_latents(cases: CaseSet, popularity: np.ndarray, n_latents: int) -> list[tuple[int, float]]:
    """(latent, Spearman correlation between its activation and the popularity of the case's predicted item),
    most positive first, for latents firing on at least MIN_ACTIVE cases. Positive: the latent fires with
    popular predictions; negative: with niche ones."""
    predicted_popularity = popularity[cases.predicted]
    found = []
    for latent in range(n_latents):
        activation = cases.activation(latent)
        if (activation > 0).sum() >= MIN_ACTIVE:
            found.append((latent, spearman(activation, predicted_popularity)))
    return sorted(found, key=lambda lr: -lr[1])


@torch.no_grad()
def top10_report(target: ProbeTarget, sae, split: Split, edits: Sequence[Edit], batch_size: int = 512) -> dict[str, float]:
    """Over every test user, with ``edits`` applied (none: the original model): mean train popularity of the
    top-10 items, catalog coverage (distinct items in any top 10 / catalog size) and HR@10 of the test item."""
    popularity = torch.from_numpy(split.item_popularity()).float()
    shown = torch.zeros(split.n_items, dtype=torch.bool)
    total_popularity, hits = 0.0, 0
    for users, batch, seen in ranked_batches(target, split, np.arange(split.n_users), batch_size):
        reps = target.represent(batch).float()
        top = top_items(target, steered(sae, reps, edits) if edits else reps, batch, seen, TOP)
        total_popularity += float(popularity[top].mean(1).sum())
        shown[top.flatten()] = True
        hits += int((top == torch.from_numpy(split.test_items[users])[:, None]).any(1).sum())
    return {"mean_popularity@10": total_popularity / split.n_users, "coverage@10": float(shown.float().mean()),
            "HR@10": hits / split.n_users}
