"""Steering (paper 5.5, Table 7): edit SAE latents (``recprobe.steering.edit``), re-rank, measure what moved."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.data.split import Split
from recprobe.ranking.metrics import SeenItems, scored_chunks, seen_items
from recprobe.steering.edit import LatentEdit, latent_values, steered
from recprobe.target import Batch, ProbeTarget
from recprobe.topk import top_k

TOP = 10


def ranked_batches(target: ProbeTarget, split: Split, users: np.ndarray, batch_size: int
                   ) -> Iterator[tuple[np.ndarray, Batch, SeenItems]]:
    """(users, batch, seen items) over ``users`` at test time, at most ``batch_size`` users at once (fewer for a
    large catalog: ``recprobe.ranking.metrics.scored_chunks``)."""
    batch_of = phase_batches(split, "test", target.max_history)
    exclusions = split.exclusions("test")
    for chunk in scored_chunks(users, batch_size, split.n_items):
        yield chunk, batch_of(chunk), seen_items(*exclusions, chunk)


@torch.no_grad()
def top_items(target: ProbeTarget, reps: torch.Tensor, batch: Batch, seen: SeenItems, k: int = TOP) -> torch.Tensor:
    """[B, k] the top-k items for the given representations, seen items masked."""
    return top_k(seen.hide(target.score(reps, batch).float()), k, sorted=True)[1]


@torch.no_grad()
def user_top(target: ProbeTarget, sae, split: Split, user: int, edits: Sequence[LatentEdit], k: int = TOP) -> list[int]:
    """One user's top-k items at test time with ``edits`` applied to their representation (none: the
    model's own list through the SAE-free representation), seen items masked."""
    (_, batch, seen), = ranked_batches(target, split, np.array([user]), 1)
    reps = target.represent(batch).float()
    return top_items(target, steered(sae, reps, edits) if edits else reps, batch, seen, k)[0].tolist()


@torch.no_grad()
def active_users(target: ProbeTarget, sae, split: Split, latent: int, batch_size: int = 512) -> np.ndarray:
    """Test users on whom ``latent`` fires."""
    fires = np.zeros(split.n_users, dtype=bool)  # filled in place: no small array left per batch
    for users, batch, _ in ranked_batches(target, split, np.arange(split.n_users), batch_size):
        fires[users] = (latent_values(sae, target.represent(batch).float(), latent) > 0).numpy()
    return np.flatnonzero(fires)


@torch.no_grad()
def steering_effect(target: ProbeTarget, sae, split: Split, latent: int, concept_items: np.ndarray,
                    scales: Sequence[float] = (-10.0, 1.0, 10.0), batch_size: int = 512) -> dict[str, object]:
    """Over the test users on whom ``latent`` fires, at each scale: Hit@10 of the concept items (share of users
    whose top 10 holds at least one) and HR@10 of the test item."""
    for scale in scales:
        LatentEdit(latent, scale=scale).check(sae.n_latents)
    concept = torch.from_numpy(np.asarray(concept_items, dtype=bool))
    users = active_users(target, sae, split, latent, batch_size)
    hits = {scale: 0 for scale in scales}
    test_hits = {scale: 0 for scale in scales}
    for chunk, batch, seen in ranked_batches(target, split, users, batch_size):
        reps = target.represent(batch).float()
        targets = torch.from_numpy(split.test_items[chunk])
        for scale in scales:
            top = top_items(target, steered(sae, reps, [LatentEdit(latent, scale=scale)]), batch, seen)
            hits[scale] += int(concept[top].any(1).sum())
            test_hits[scale] += int((top == targets[:, None]).any(1).sum())
    n = len(users)  # a latent that fires on nobody has no effect to measure: None, not 0
    return {"latent": latent, "n_active": n, "concept_items": int(concept.sum()),
            "scales": [{"scale": s, "hit@10": hits[s] / n if n else None, "HR@10": test_hits[s] / n if n else None}
                       for s in scales]}


def decoder_scores(target: ProbeTarget, sae, latent: int) -> torch.Tensor | None:
    """[n_items] each item embedding's dot product with the latent's decoder row, or None for a target whose
    item embeddings (if any) do not live in the representation's space."""
    items = target.item_embeddings()
    if items is None or items.shape[1] != sae.W_dec.shape[1]:
        return None
    return items.detach().float() @ sae.W_dec[latent].detach()


def decoder_items(scores: torch.Tensor, count: int = 20) -> np.ndarray:
    """[n_items] bool: the ``count`` items with the largest ``decoder_scores``."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[scores.topk(count).indices.numpy()] = True
    return mask
