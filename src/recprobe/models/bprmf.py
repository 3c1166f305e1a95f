"""BPRMF (Rendle et al. 2009): a user embedding dotted with item embeddings."""

from __future__ import annotations

import torch
from torch import nn

from recprobe.models.base import ModelConfig, Recommender
from recprobe.target import Batch


class BPRMF(Recommender):
    """Probing site: the user embedding u [B, d]. Score: u . item embedding."""

    name = "bprmf"
    default_lr, default_l2 = 1e-3, 1e-6

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.user_embedding = nn.Embedding(n_users, config.d)
        self.item_embedding = nn.Embedding(n_items, config.d)
        for e in (self.user_embedding, self.item_embedding):
            nn.init.normal_(e.weight, std=0.01)

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.user_embedding(batch.users)

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight
