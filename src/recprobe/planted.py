"""Planted ground truth: a recommender whose user representations are known sparse combinations of known
directions, each tied to one item attribute value, so what an SAE should find is known exactly (as Korznikov
et al. 2026 measure SAEs: the share of true directions some decoder row matches at cosine >= 0.9).

``PlantedTarget`` is a ProbeTarget like any other: ``represent`` returns the planted vectors, ``score`` ranks
items by their dot product with them, and each item carries the attribute value of the direction it lies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows
from recprobe.target import Batch

RECOVERED_COSINE = 0.9
PLANT_SEED = 1_000_003  # offset so a planted dictionary never equals an SAE's seeded initialisation


@dataclass
class Planted:
    directions: torch.Tensor  # [m, d] unit: the true features
    vectors: torch.Tensor  # [n, d] user representations
    active: torch.Tensor  # [n, s] which directions make each vector
    item_directions: torch.Tensor  # [n_items] the direction each item lies on (its attribute value)


def plant(n: int = 100_000, d: int = 64, m: int = 512, s: int = 8, n_items: int = 2_000, noise: float = 0.05,
          zipf: float = 1.0, seed: int = 0) -> Planted:
    """``n`` vectors in ``d`` dimensions, each the sum of ``s`` of ``m`` random unit directions (drawn with
    Zipf-like popularity of exponent ``zipf``, as interests are in recommendation data) with exponential
    weights, plus Gaussian noise of scale ``noise``."""
    generator = torch.Generator().manual_seed(PLANT_SEED + seed)  # never the SAE's own stream (seeds 0, 1, ...)
    directions = F.normalize(torch.randn(m, d, generator=generator), dim=1)
    popularity = 1.0 / torch.arange(1, m + 1).double() ** zipf
    active = torch.multinomial(popularity.expand(n, m), s, replacement=False, generator=generator)
    weights = torch.empty(n, s).exponential_(generator=generator) + 0.5
    vectors = torch.einsum("ns,nsd->nd", weights, directions[active]) + noise * torch.randn(n, d, generator=generator)
    return Planted(directions, vectors, active, torch.randint(m, (n_items,), generator=generator))


def to_store(vectors: torch.Tensor, folder: str | Path, dev_share: float = 0.1) -> ActivationStore:
    """An activation store of ``vectors``: the first ``1 - dev_share`` as train rows, the rest as dev rows."""
    writer = ActivationWriter(folder, vectors.shape[1], {"target": "planted"})
    cut = int((1 - dev_share) * len(vectors))
    for split, rows in (("train", vectors[:cut]), ("dev", vectors[cut:])):
        index = torch.arange(len(rows))
        writer.append(split, Rows(rows.float().contiguous(), index, index))
    return ActivationStore(writer.close())


def recovered_share(decoder: torch.Tensor, directions: torch.Tensor, cosine: float = RECOVERED_COSINE) -> float:
    """The share of true ``directions`` [m, d] that some row of ``decoder`` [n_latents, d] matches at
    ``cosine`` or more."""
    best = (F.normalize(directions, dim=1) @ F.normalize(decoder.detach(), dim=1).T).max(1).values
    return float((best >= cosine).float().mean())


class PlantedTarget:
    """A ProbeTarget over planted vectors: user u's representation is ``vectors[u]``; item i's embedding is its
    direction plus a little noise; the score is their dot product."""

    name = "planted"
    max_history = 0

    def __init__(self, planted: Planted, seed: int = 0):
        self.planted = planted
        generator = torch.Generator().manual_seed(seed + 1)
        self.items = planted.directions[planted.item_directions] + 0.1 * torch.randn(
            len(planted.item_directions), planted.directions.shape[1], generator=generator)
        self.d_model, self.n_items = planted.directions.shape[1], len(self.items)
        self.attributes = [{"direction": [str(int(j))]} for j in planted.item_directions]

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.planted.vectors[batch.users]

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return reps @ self.items.T

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.score(self.represent(batch), batch)

    def item_embeddings(self) -> torch.Tensor:
        return self.items

