"""SASRec (Kang & McAuley 2018) as in ReChorus: item + reversed position embeddings, causal
self-attention, the output at the last valid history position."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from recprobe.models.base import ModelConfig, Recommender, TransformerBlock, reversed_positions
from recprobe.target import Batch


class SequentialConfig(ModelConfig):
    max_history: int = Field(20, ge=1, description="Most recent items of the history the model reads.")


class SASRecConfig(SequentialConfig):
    n_layers: int = Field(1, ge=1, description="Transformer blocks.")
    n_heads: int = Field(1, ge=1, description="Attention heads (must divide d).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout inside the blocks.")


class SASRec(Recommender):
    """Probing site: the last block's output at the last valid position [B, d]. Score: . item embedding."""

    name = "sasrec"
    sequential = True
    Config = SASRecConfig
    default_lr, default_l2, default_loss = 1e-3, 1e-6, "ce"

    def __init__(self, config: SASRecConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        if config.d % config.n_heads:
            raise ValueError(f"n_heads ({config.n_heads}) must divide d ({config.d})")
        self.item_embedding = nn.Embedding(n_items + 1, config.d, padding_idx=n_items)
        self.position_embedding = nn.Embedding(config.max_history + 1, config.d)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.d, config.n_heads, config.dropout) for _ in range(config.n_layers)
        )
        nn.init.normal_(self.item_embedding.weight, std=0.01)
        nn.init.normal_(self.position_embedding.weight, std=0.01)
        with torch.no_grad():
            self.item_embedding.weight[n_items].zero_()

    def represent(self, batch: Batch) -> torch.Tensor:
        history, lengths = batch.history, batch.lengths
        length = history.shape[1]
        valid = history != self.n_items
        x = self.item_embedding(history) + self.position_embedding(reversed_positions(lengths, length) * valid)
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=x.device), diagonal=1)
        for block in self.blocks:
            x = block(x, attn_mask=causal)
        return x[torch.arange(len(x), device=x.device), lengths - 1]

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight[: self.n_items]
