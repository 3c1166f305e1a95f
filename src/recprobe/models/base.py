"""What every built-in recommender shares: the batch it consumes, the represent/score split, the loss."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from recprobe.target import Batch

LossKind = Literal["bpr", "ce"]


class ModelConfig(BaseModel):
    """Architecture options shared by every built-in model."""

    model_config = ConfigDict(extra="forbid")
    d: int = Field(64, ge=1, description="Embedding size (the paper's is 64).")


class Recommender(nn.Module):
    """A recommender split at its probing site: ``represent`` builds the user representation right
    before the prediction layer; ``score`` turns (possibly edited) representations into item scores."""

    name: ClassVar[str]
    sequential: ClassVar[bool] = False
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    # ReChorus' tuned learning rate and L2 for this model (Adam weight decay).
    default_lr: ClassVar[float] = 1e-3
    default_l2: ClassVar[float] = 1e-6
    default_loss: ClassVar[LossKind] = "bpr"

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__()
        self.config, self.n_users, self.n_items = config, n_users, n_items

    @property
    def d_model(self) -> int:
        return self.config.d

    @property
    def max_history(self) -> int:
        """History length the model reads (0 for general models)."""
        return getattr(self.config, "max_history", 0)

    def stages(self) -> list[str]:
        """Training stages, in order; most models have one."""
        return ["train"]

    def set_stage(self, stage: str) -> None:
        """Switch to a training stage (only multi-stage models do something)."""

    def represent(self, batch: Batch) -> torch.Tensor:
        """[B, d] user representation at the probing site."""
        raise NotImplementedError

    def item_vectors(self) -> torch.Tensor:
        """[n_items, d] item vectors the prediction layer scores against."""
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        """The ProbeTarget view of ``item_vectors``."""
        return self.item_vectors()

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        """[B, n_items] scores from given representations: a dot product with every item vector."""
        return reps @ self.item_vectors().T

    def predict(self, batch: Batch) -> torch.Tensor:
        """[B, n_items] scores of the model as trained: ``score(represent(batch))``."""
        return self.score(self.represent(batch), batch)

    def loss(self, batch: Batch, pos: torch.Tensor, neg: torch.Tensor, kind: LossKind) -> torch.Tensor:
        return recommendation_loss(self.represent(batch), self.item_vectors(), pos, neg, kind)


def recommendation_loss(
    reps: torch.Tensor, items: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, kind: LossKind
) -> torch.Tensor:
    """BPR with one sampled negative (``-log sigmoid(s_pos - s_neg)``), or full softmax cross-entropy."""
    if kind == "ce":
        return F.cross_entropy(reps @ items.T, pos)
    pos_scores = (reps * items[pos]).sum(-1)
    neg_scores = (reps * items[neg]).sum(-1)
    return F.softplus(neg_scores - pos_scores).mean()


class TransformerBlock(nn.Module):
    """Post-norm self-attention block as in ReChorus: attention, residual, LayerNorm, a d->d->d ReLU
    feed-forward, residual, LayerNorm."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        context, _ = self.attention(
            x, x, x, attn_mask=attn_mask, key_padding_mask=padding_mask, need_weights=False
        )
        x = self.norm1(x + self.dropout(context))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


def reversed_positions(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """ReChorus' reversed position ids: the newest item is 1, the one before 2, ...; padding is 0."""
    positions = lengths[:, None] - torch.arange(max_len, device=lengths.device)[None, :]
    return positions.clamp(min=0)
