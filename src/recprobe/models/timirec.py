"""TiMiRec (Wang et al., CIKM'22) as in ReChorus: K interests from an attention extractor; a pretrain
stage scores with the best interest; a fine-tune stage adds a GRU interest predictor distilled from the
detached target intent (loss = BPR + T^2 KL)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from recprobe.models.base import (
    LossKind,
    Recommender,
    TransformerBlock,
    recommendation_loss,
    reversed_positions,
)
from recprobe.models.sasrec import SequentialConfig
from recprobe.target import Batch


class TiMiRecConfig(SequentialConfig):
    n_interests: int = Field(6, ge=1, description="K, the number of interests (Grocery recipe: 6).")
    attention_size: int = Field(8, ge=1, description="Hidden size of the interest attention.")
    temperature: float = Field(1.0, gt=0.0, description="Distillation temperature T (Grocery recipe: 1).")
    n_layers: int = Field(1, ge=0, description="Transformer blocks in the interest extractor.")


class InterestExtractor(nn.Module):
    """Self-attention over the history, then K attention heads pool the item embeddings into K interests."""

    def __init__(self, config: TiMiRecConfig, n_items: int):
        super().__init__()
        self.pad = n_items
        self.item_embedding = nn.Embedding(n_items + 1, config.d, padding_idx=n_items)
        self.position_embedding = nn.Embedding(config.max_history + 1, config.d)
        self.blocks = nn.ModuleList(TransformerBlock(config.d, 1, 0.0) for _ in range(config.n_layers))
        self.attention = nn.Sequential(
            nn.Linear(config.d, config.attention_size), nn.Tanh(), nn.Linear(config.attention_size, config.n_interests)
        )

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = history != self.pad
        items = self.item_embedding(history)
        x = items + self.position_embedding(reversed_positions(lengths, history.shape[1]) * valid)
        for block in self.blocks:
            x = block(x, padding_mask=~valid) * valid[..., None]
        weights = self.attention(x).masked_fill(~valid[..., None], float("-inf"))  # [B, L, K]
        weights = weights.softmax(dim=1).nan_to_num(0.0)
        return torch.einsum("blk,bld->bkd", weights, items)  # [B, K, d]


class InterestPredictor(nn.Module):
    """A GRU over the history whose last hidden state predicts a distribution over the K interests."""

    def __init__(self, config: TiMiRecConfig, n_items: int):
        super().__init__()
        self.item_embedding = nn.Embedding(n_items + 1, config.d, padding_idx=n_items)
        self.gru = nn.GRU(config.d, config.d, batch_first=True)
        self.project = nn.Sequential(nn.Linear(config.d, config.d), nn.ReLU(), nn.Linear(config.d, config.n_interests))

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(
            self.item_embedding(history), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.gru(packed)
        return self.project(hidden[-1])  # [B, K] intent logits


class TiMiRec(Recommender):
    """Probing site (fine-tune stage): softmax(predicted intent)-weighted sum of the K interests [B, d].
    Score: . item embedding."""

    name = "timirec"
    sequential = True
    Config = TiMiRecConfig
    default_lr, default_l2 = 1e-4, 1e-6

    def __init__(self, config: TiMiRecConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.extractor = InterestExtractor(config, n_items)
        self.predictor = InterestPredictor(config, n_items)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.01)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
        self.stage = "finetune"

    def stages(self) -> list[str]:
        return ["pretrain", "finetune"]

    def set_stage(self, stage: str) -> None:
        if stage not in self.stages():
            raise ValueError(f"TiMiRec stage must be one of {self.stages()}, got {stage!r}")
        self.stage = stage

    def item_vectors(self) -> torch.Tensor:
        return self.extractor.item_embedding.weight[: self.n_items]

    def _intents(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        interests = self.extractor(batch.history, batch.lengths)
        return interests, self.predictor(batch.history, batch.lengths)

    def represent(self, batch: Batch) -> torch.Tensor:
        interests, intent_logits = self._intents(batch)
        return torch.einsum("bk,bkd->bd", intent_logits.softmax(-1), interests)

    def predict(self, batch: Batch) -> torch.Tensor:
        if self.stage == "pretrain":  # the best interest for each item
            interests, items = self.extractor(batch.history, batch.lengths), self.item_vectors()
            scores = interests[:, 0] @ items.T
            for k in range(1, interests.shape[1]):  # running max keeps memory at [B, n_items]
                scores = torch.maximum(scores, interests[:, k] @ items.T)
            return scores
        return super().predict(batch)

    def loss(self, batch: Batch, pos: torch.Tensor, neg: torch.Tensor, kind: LossKind) -> torch.Tensor:
        items = self.item_vectors()
        interests = self.extractor(batch.history, batch.lengths)
        target = items[pos][:, None, :]
        if self.stage == "pretrain":  # train the interest closest to the target
            best = interests[torch.arange(len(pos)), (interests * target).sum(-1).argmax(-1)]
            return recommendation_loss(best, items, pos, neg, kind)
        target_intent = F.cosine_similarity(interests, target, dim=-1).detach()  # [B, K]
        intent_logits = self.predictor(batch.history, batch.lengths)
        user = torch.einsum("bk,bkd->bd", intent_logits.softmax(-1), interests)
        t = self.config.temperature
        distill = F.kl_div(F.log_softmax(intent_logits / t, -1), F.softmax(target_intent / t, -1), reduction="batchmean")
        return recommendation_loss(user, items, pos, neg, kind) + t * t * distill
