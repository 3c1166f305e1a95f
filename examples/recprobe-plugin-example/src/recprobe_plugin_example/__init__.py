"""An example recprobe plugin: the adapter ``meanpool`` for a model recprobe does not ship."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from safetensors.torch import load_file
from torch import nn

from recprobe import Batch, Split
from recprobe.adapters import Adapter, AdapterOptions
from recprobe.hookspecs import hookimpl


class MeanPool(nn.Module):
    """User = Linear(mean of the history's item embeddings); score = user . item embedding.
    It is its own ProbeTarget: the probing site is the output of ``project``."""

    name = "meanpool"

    def __init__(self, n_items: int, d: int = 32, max_history: int = 20):
        super().__init__()
        self.n_items, self.d_model, self.max_history = n_items, d, max_history
        self.items = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        self.project = nn.Linear(d, d)

    def represent(self, batch: Batch) -> torch.Tensor:
        mean = self.items(batch.history).sum(1) / batch.lengths.clamp(min=1)[:, None]
        return self.project(mean)

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return reps @ self.item_embeddings().T

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.score(self.represent(batch), batch)

    def item_embeddings(self) -> torch.Tensor:
        return self.items.weight[: self.n_items]


class MeanPoolOptions(AdapterOptions):
    weights: Path | None = Field(None, description="A model.safetensors to load; fresh weights when absent.")
    d: int = Field(32, ge=1, description="Embedding size.")
    seed: int = Field(0, description="Seed for fresh weights.")


def load(options: MeanPoolOptions, split: Split) -> MeanPool:
    """The model sized for ``split`` (the adapter takes it: ``probe`` passes the split it reads, every later
    stage the one the run stores)."""
    torch.manual_seed(options.seed)
    model = MeanPool(split.n_items, options.d)
    if options.weights is not None:
        model.load_state_dict(load_file(options.weights))
    return model.eval()


@hookimpl
def register_adapters(register) -> None:
    register(Adapter("meanpool", "MeanPool (example plugin): mean of history item embeddings", MeanPoolOptions, load,
                     takes_split=True))
