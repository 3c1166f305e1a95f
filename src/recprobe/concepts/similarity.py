"""Interpretation metrics of paper section 4.4, in the interpreted model's item-embedding space.

A concept's representative items are the predicted items of its two most activating cases. Intra-concept similarity: mean cosine between a concept's two
representative items. Inter-concept similarity: mean cosine between the top items of distinct concepts.
"""

from __future__ import annotations

import numpy as np
import torch

from recprobe.concepts.cases import CaseSet

CONFIDENT = 0.8


def representative_items(cases: CaseSet, latent: int, count: int = 2) -> list[int]:
    """The predicted items of the ``count`` cases where ``latent`` is strongest (distinct items)."""
    items: list[int] = []
    for row in cases.fired(latent)[0]:
        if len(items) == count:
            break
        if int(cases.predicted[row]) not in items:
            items.append(int(cases.predicted[row]))
    return items


def concept_similarity(records: list[dict], cases: CaseSet, item_embeddings: torch.Tensor | None) -> dict[str, float | None]:
    """Intra- and inter-concept similarity over the concepts with confidence >= 0.8 (None for a target without
    item embeddings: there is no item space to measure in)."""
    confident = [r["latent"] for r in records if r["status"] == "ok" and r["confidence"] >= CONFIDENT]
    if item_embeddings is None:
        return {"intra_similarity": None, "inter_similarity": None, "confident_concepts": len(confident)}
    vectors = torch.nn.functional.normalize(item_embeddings.detach().float(), dim=-1).numpy()
    pairs = [representative_items(cases, j) for j in confident]
    intra = [float(vectors[a] @ vectors[b]) for a, b in (p for p in pairs if len(p) == 2)]
    tops = np.array([p[0] for p in pairs if p])
    inter = None
    if len(tops) > 1:
        sims = vectors[tops] @ vectors[tops].T
        inter = float(sims[~np.eye(len(tops), dtype=bool)].mean())
    return {"intra_similarity": float(np.mean(intra)) if intra else None, "inter_similarity": inter,
            "confident_concepts": len(confident)}
