"""P-Calibration, the calibrated-popularity re-ranking of Abdollahpouri et al. (RecSys 2020).

From the model's top ``candidates`` items, pick the list greedily, each step adding the item that maximises
(1 - lam) * relevance - lam * JS(P_u, Q), where relevance is the score min-max scaled over the user's candidates,
P_u the user's share of head / mid / tail items in their history and Q the shares of the list with that item added
(Jensen-Shannon divergence, natural log). lam = 0 keeps the model's order. It changes each user's list, never the
model; the list is not a ranking of every item, so the target's rank is its position in the list (``list_ranks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recprobe.ranking.beyond import BEYOND_K
from recprobe.steering.methods import SweptBatch
from recprobe.topk import top_k

CANDIDATES = 100  # P-Calibration re-ranks the model's top 100
CALIBRATION_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log) of distributions along the last dimension."""
    m = (p + q) / 2
    kl = lambda a: (torch.xlogy(a, a) - torch.xlogy(a, m)).sum(-1)  # noqa: E731
    return (kl(p) + kl(q)) / 2


@torch.no_grad()
def calibrated_top(scores: torch.Tensor, item_group: torch.Tensor, user_shares: torch.Tensor, lam: float,
                   k: int = 10, candidates: int = CANDIDATES) -> torch.Tensor:
    """[B, k] items chosen greedily from the top ``candidates`` of the (already masked) ``scores`` [B, n_items];
    ``item_group`` [n_items] is 0/1/2 (head/mid/tail), ``user_shares`` [B, 3] each user's history shares."""
    if not 0 <= lam <= 1:
        raise ValueError(f"P-Calibration's lambda must be in [0, 1] (0: the model's order), got {lam}")
    n_groups = user_shares.shape[1]
    values, pool = top_k(scores, min(candidates, scores.shape[1]), sorted=True)
    low, high = values.min(1, keepdim=True).values, values.max(1, keepdim=True).values
    relevance = (values - low) / (high - low).clamp_min(1e-12)
    relevance = torch.where(torch.isfinite(values), relevance, torch.zeros_like(relevance))
    onehot = torch.nn.functional.one_hot(item_group[pool].long(), n_groups).float()  # [B, N, 3]
    counts = torch.zeros(len(scores), n_groups)
    taken = torch.zeros_like(relevance, dtype=torch.bool)
    taken |= ~torch.isfinite(values)  # masked items are never picked while others remain
    chosen = []
    rows = torch.arange(len(scores))
    for step in range(k):
        shares = (counts[:, None, :] + onehot) / (step + 1)
        gain = (1 - lam) * relevance - lam * js_divergence(user_shares[:, None, :], shares)
        pick = gain.masked_fill(taken, -torch.inf).argmax(1)
        taken[rows, pick] = True
        counts += onehot[rows, pick]
        chosen.append(pool[rows, pick])
    return torch.stack(chosen, 1)


def list_ranks(top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] each target's 1-based position in its user's list ``top`` [B, K], K + 1 where it is absent (enough
    for HR@K and NDCG@K of a re-ranked list that is not a ranking of every item)."""
    hit = top == targets[:, None]
    return torch.where(hit.any(1), hit.int().argmax(1) + 1, top.shape[1] + 1)


@dataclass
class Calibration:
    """The ``Method``: lam = strength; ``item_group`` [n_items], 0/1/2 for head/mid/tail."""

    item_group: torch.Tensor
    strengths: list[float]
    name: str = "calibration"
    selection: str | None = None
    draws: int = 1

    def rank(self, swept: SweptBatch, strength: float, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        top = calibrated_top(swept.scores, self.item_group, swept.history_shares, strength, BEYOND_K)
        return list_ranks(top, swept.test_items), top
