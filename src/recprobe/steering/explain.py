"""Why did the model recommend this item to this user? The active SAE latents that contribute most to the
item's score, and how faithful that explanation is.

A latent's contribution to an item's score is what the score loses when the latent is ablated: the
representation minus ``z_j W_dec[j]`` (the edit steering makes, at scale 0), scored by the target's own
``score``. For a target that scores by a dot product with item embeddings this is exactly
``z_j * (W_dec[j] . item_embedding)``; for any other target it is the same finite difference.

Fidelity (in the spirit of Cornac's explainer metrics): ablating the top-m explaining latents should push the
item down the ranking further than ablating m other active latents drawn at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recprobe.batches import phase_batches
from recprobe.data.split import Split
from recprobe.ranking.metrics import SeenItems, scored_chunks, seen_items, target_ranks
from recprobe.target import Batch, ProbeTarget, require_split_numbering

FIDELITY_M = 3


@torch.no_grad()
def latent_contributions(target: ProbeTarget, sae, batch: Batch, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """For each user of ``batch`` and their item in ``items`` [B]: the SAE's (values, indices) [B, k] and each
    active latent's contribution to that item's score [B, k] (0 where the latent did not fire)."""
    reps = target.represent(batch).float()
    values, indices = sae.encode(reps)
    base = target.score(reps, batch).float().gather(1, items[:, None])[:, 0]
    effects = torch.zeros_like(values)
    for slot in range(values.shape[1]):
        fired = values[:, slot] > 0
        if fired.any():
            ablated = reps - values[:, slot:slot + 1] * sae.W_dec[indices[:, slot]]
            effects[:, slot] = torch.where(fired, base - target.score(ablated, batch).float().gather(1, items[:, None])[:, 0], 0.0)
    return values, indices, effects


def ablated(sae, reps: torch.Tensor, values: torch.Tensor, indices: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """``reps`` with the latents in the ``chosen`` [B, k] slots removed."""
    weights = torch.where(chosen, values, torch.zeros_like(values))
    return reps - F.embedding_bag(indices, sae.W_dec, per_sample_weights=weights, mode="sum")


def item_ranks(scores: torch.Tensor, items: torch.Tensor, seen: SeenItems) -> torch.Tensor:
    """[B] rank of each user's item, by ``recprobe.ranking.metrics.target_ranks`` (seen items masked, ties against it)."""
    return target_ranks(scores.float().clone(), items, seen)


@dataclass
class Explanation:
    user: int
    item: int
    rank: int
    latents: list[dict]  # latent, activation, contribution, share; largest contribution first


@torch.no_grad()
def explain(target: ProbeTarget, sae, split: Split, user: int, item: int | None = None) -> Explanation:
    """The active latents behind ``item`` (default: the user's top-1 recommendation) for ``user`` at test time,
    largest contribution first; ``share`` is a contribution over the sum of their absolute values."""
    require_split_numbering(target, split)
    batch = phase_batches(split, "test", target.max_history)([user])
    seen = seen_items(*split.exclusions("test"), np.array([user]))
    scores = target.predict(batch).float()
    if item is None:
        item = int(seen.hide(scores.clone()).argmax(1))
    items = torch.tensor([item])
    values, indices, effects = latent_contributions(target, sae, batch, items)
    rank = int(item_ranks(scores, items, seen)[0])
    total = float(effects.abs().sum()) or 1.0
    order = torch.argsort(effects[0], descending=True)
    latents = [{"latent": int(indices[0, s]), "activation": float(values[0, s]), "contribution": float(effects[0, s]),
                "share": float(effects[0, s]) / total} for s in order.tolist() if values[0, s] > 0]
    return Explanation(user, item, rank, latents)


@torch.no_grad()
def fidelity(target: ProbeTarget, sae, split: Split, *, m: int = FIDELITY_M, seed: int = 0,
             batch_size: int = 512) -> dict[str, float | int]:
    """Over every test user with at least ``2 m`` active latents, for their top-1 item: how often ablating the
    ``m`` latents that contribute most pushes it further down than ablating ``m`` other active latents drawn at
    random (the control), and the mean rank drop both ways. A tie counts as not beating the control."""
    require_split_numbering(target, split)
    generator = torch.Generator().manual_seed(seed)
    batch_of = phase_batches(split, "test", target.max_history)
    exclusions = split.exclusions("test")
    users_kept = beats = skipped = 0  # running sums: nothing kept per batch
    drops_top = drops_random = 0.0
    for users in scored_chunks(np.arange(split.n_users), batch_size, split.n_items):
        batch, seen = batch_of(users), seen_items(*exclusions, users)
        reps = target.represent(batch).float()
        items = seen.hide(target.score(reps, batch).float().clone()).argmax(1)
        values, indices, effects = latent_contributions(target, sae, batch, items)
        fired = values > 0
        keep = fired.sum(1) >= 2 * m  # the control draws from the active latents outside the explanation
        skipped += int((~keep).sum())
        if not keep.any():
            continue
        top = torch.zeros_like(fired)
        top.scatter_(1, effects.masked_fill(~fired, float("-inf")).topk(m, dim=1).indices, True)
        noise = torch.rand(fired.shape, generator=generator).masked_fill(~fired | top, -1.0)
        random = torch.zeros_like(fired)
        random.scatter_(1, noise.topk(m, dim=1).indices, True)
        before = item_ranks(target.score(reps, batch), items, seen)
        after_top = item_ranks(target.score(ablated(sae, reps, values, indices, top), batch), items, seen)
        after_random = item_ranks(target.score(ablated(sae, reps, values, indices, random), batch), items, seen)
        users_kept += int(keep.sum())
        beats += int((after_top > after_random)[keep].sum())
        drops_top += float((after_top - before)[keep].double().sum())
        drops_random += float((after_random - before)[keep].double().sum())
    if not users_kept:
        return {"m": m, "users": 0, "skipped": skipped, "share_top_beats_random": None,
                "mean_rank_drop_top": None, "mean_rank_drop_random": None}
    return {"m": m, "users": users_kept, "skipped": skipped, "share_top_beats_random": beats / users_kept,
            "mean_rank_drop_top": drops_top / users_kept, "mean_rank_drop_random": drops_random / users_kept}
