"""Re-ranking baselines for de-biasing: they change each user's final list, never the model.

- ``ipr_scores`` (inverse-popularity re-ranking): score - alpha * log(1 + popularity). For a model trained with a
  softmax (SASRec with cross-entropy) the score is a log-probability up to a constant, so this ranks by
  P(item | user) / (1 + popularity)^alpha: inverse-propensity weighting of the model's probabilities with
  propensity power alpha (0: the model's own ranking).
- ``calibrated_top`` (P-Calibration, the calibrated-popularity re-ranking of Abdollahpouri et al., RecSys 2020):
  from the model's top ``candidates`` items, pick the list greedily, each step adding the item that maximises
  (1 - lam) * relevance - lam * JS(P_u, Q), where relevance is the score min-max scaled over the user's
  candidates, P_u the user's share of head / mid / tail items in their history and Q the shares of the list
  with that item added (Jensen-Shannon divergence, natural log). lam = 0 keeps the model's order.
"""

from __future__ import annotations

import torch

CANDIDATES = 100  # P-Calibration re-ranks the model's top 100


def ipr_scores(scores: torch.Tensor, popularity: torch.Tensor, alpha: float) -> torch.Tensor:
    """[B, n_items] scores lowered by alpha * log(1 + training interactions of the item)."""
    return scores - alpha * torch.log1p(popularity.to(scores.dtype))


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
    values, pool = scores.topk(min(candidates, scores.shape[1]), dim=1)
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
