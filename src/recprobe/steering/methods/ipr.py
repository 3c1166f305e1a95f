"""Inverse-popularity re-ranking: score - alpha * log(1 + popularity).

For a model trained with a softmax (SASRec with cross-entropy) the score is a log-probability up to a constant, so
this ranks by P(item | user) / (1 + popularity)^alpha: inverse-propensity weighting of the model's probabilities
with propensity power alpha (0: the model's own ranking). It changes each user's list, never the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recprobe.steering.methods import SweptBatch

IPR_ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def ipr_scores(scores: torch.Tensor, popularity: torch.Tensor, alpha: float) -> torch.Tensor:
    """[B, n_items] scores lowered by alpha * log(1 + training interactions of the item)."""
    return scores - alpha * torch.log1p(popularity.to(scores.dtype))


@dataclass
class Ipr:
    """The ``Method``: alpha = strength; ``popularity`` [n_items], each item's training interactions."""

    popularity: torch.Tensor
    strengths: list[float]
    name: str = "ipr"
    selection: str | None = None
    draws: int = 1

    def rank(self, swept: SweptBatch, strength: float, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        return swept.ranked(ipr_scores(swept.scores, self.popularity, strength))
