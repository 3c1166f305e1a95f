"""LightGCN (He et al. 2020): embeddings smoothed over the normalised user-item graph."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from pydantic import Field
from torch import nn

from recprobe.models.base import LossKind, ModelConfig, Recommender, recommendation_loss
from recprobe.target import Batch


class LightGCNConfig(ModelConfig):
    n_layers: int = Field(3, ge=0, description="Propagation layers L; the representation averages layers 0..L.")


class SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse A, whose backward is ``A @ grad``: torch's own backward
    transposes the CSR matrix on every step, which costs ~20x the product itself on CPU."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adjacency @ grad


class LightGCN(Recommender):
    """Probing site: the user row of the mean of layers 0..L [B, d]. Score: . propagated item table."""

    name = "lightgcn"
    Config = LightGCNConfig
    default_lr, default_l2 = 1e-3, 1e-8

    def __init__(self, config: LightGCNConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.user_embedding = nn.Embedding(n_users, config.d)
        self.item_embedding = nn.Embedding(n_items, config.d)
        for e in (self.user_embedding, self.item_embedding):
            nn.init.normal_(e.weight, std=0.01)
        self.adjacency: torch.Tensor | None = None  # set by set_graph; rebuilt from the data, never saved
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def set_graph(self, users: np.ndarray, items: np.ndarray) -> None:
        """Build D^-1/2 A D^-1/2 of the bipartite train graph (duplicates count once)."""
        n = self.n_users + self.n_items
        pairs = np.unique(np.stack([users, items + self.n_users]), axis=1)
        rows = np.concatenate([pairs[0], pairs[1]])
        cols = np.concatenate([pairs[1], pairs[0]])
        degree = np.bincount(rows, minlength=n).astype(np.float32)
        inv_sqrt = np.power(degree, -0.5, out=np.zeros_like(degree), where=degree > 0)
        values = inv_sqrt[rows] * inv_sqrt[cols]
        index = torch.from_numpy(np.stack([rows, cols]))
        with warnings.catch_warnings():  # CSR is "beta" in torch, and the fastest sparse matmul on CPU
            warnings.simplefilter("ignore", UserWarning)
            coo = torch.sparse_coo_tensor(index, torch.from_numpy(values).float(), (n, n), check_invariants=False)
            self.adjacency = coo.coalesce().to_sparse_csr()
        self._cache = None

    def _apply(self, fn, recurse=True):  # .to(device) moves the graph too
        if self.adjacency is not None:
            self.adjacency = fn(self.adjacency)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> LightGCN:
        self._cache = None  # propagated tables are cached only between weight updates
        return super().train(mode)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user table, item table): the mean of layers 0..L of the propagated embeddings."""
        if self._cache is not None:
            return self._cache
        if self.adjacency is None:
            raise RuntimeError("LightGCN has no graph; build it with recprobe.build_model or call set_graph()")
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        layers = [x]
        for _ in range(self.config.n_layers):
            x = SymmetricSpMM.apply(self.adjacency, x)
            layers.append(x)
        mean = torch.stack(layers).mean(0)
        tables = (mean[: self.n_users], mean[self.n_users :])
        if not self.training:
            self._cache = tables
        return tables

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.propagate()[0][batch.users]

    def item_vectors(self) -> torch.Tensor:
        return self.propagate()[1]

    def loss(self, batch: Batch, pos: torch.Tensor, neg: torch.Tensor, kind: LossKind) -> torch.Tensor:
        users, items = self.propagate()  # once per step
        return recommendation_loss(users[batch.users], items, pos, neg, kind)
