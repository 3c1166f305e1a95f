"""Hand-built ProbeTargets for the run tests: no training, so what a stage should find is known exactly."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from recprobe.target import Batch


class Oracle(nn.Module):
    """A general recommender in its own item order (``order[i]`` is its index of the split's item ``i``) that
    scores each user's held-out test item far above the rest: a stand-in for a well-trained model. With
    ``tokens`` it declares its items' raw ids, as a RecBole checkpoint does."""

    name = "oracle"
    max_history = 0

    def __init__(self, split, order: np.ndarray | None = None, *, tokens: bool = True, strength: float = 5.0, seed: int = 0):
        super().__init__()
        order = np.arange(split.n_items) if order is None else np.asarray(order)
        self.n_items = self.d_model = split.n_items
        generator = torch.Generator().manual_seed(seed)
        table = torch.randn(split.n_users, split.n_items, generator=generator) * 0.1
        table[torch.arange(split.n_users), torch.from_numpy(order[split.test_items])] += strength
        self.table = nn.Parameter(table)
        self.item_tokens = split.item_ids[np.argsort(order)] if tokens else None

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.table[batch.users].detach().clone()

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return reps @ self.item_embeddings().T

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.score(self.represent(batch), batch)

    def item_embeddings(self) -> torch.Tensor:
        return torch.eye(self.n_items)


def shuffled_order(n_items: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_items)


class SlowOracle(Oracle):
    """The Oracle taking ``delay`` seconds per batch, so a test can kill a command mid-stage."""

    def __init__(self, split, delay: float, **options):
        super().__init__(split, **options)
        self.delay = delay

    def represent(self, batch: Batch) -> torch.Tensor:
        time.sleep(self.delay)
        return super().represent(batch)


def make_oracle(dataset: str, delay: float = 0.0, shuffled: bool = True) -> Oracle:
    """A factory for `recprobe probe --adapter torch --option factory=tests.targets:make_oracle`."""
    from recprobe.data import load_dataset

    split = load_dataset(dataset, min_rating=None, core=3)
    order = shuffled_order(split.n_items) if shuffled else None
    return SlowOracle(split, delay, order=order) if delay else Oracle(split, order)


class PopularityDrive(nn.Module):
    """A sequential target with one planted popularity dimension: representation dimension 0 is
    0.1 + 4 m^4, m the mean popularity (log, scaled to [0, 1]) of the user's history items, and the items' dimension 0 is their
    standardised log popularity, so dimension 0 pushes every ranking towards popular items, harder for users with
    popular histories; dimensions 1.. are twice the mean of the history items' random taste vectors. With the exact SAE
    (latent i reads +x_i) latent 0 is the one that carries popularity."""

    name = "popularity-drive"
    max_history = 20

    def __init__(self, split, tastes: int = 6, seed: int = 0):
        super().__init__()
        self.n_items, self.d_model = split.n_items, 1 + tastes
        log_popularity = torch.log1p(torch.from_numpy(split.item_popularity()).float())
        self.popularity01 = log_popularity / log_popularity.max()
        generator = torch.Generator().manual_seed(seed)
        embeddings = torch.randn(split.n_items + 1, self.d_model, generator=generator)
        embeddings[:-1, 0] = (log_popularity - log_popularity.mean()) / log_popularity.std()
        embeddings[-1] = 0  # the pad item
        self.embeddings = nn.Parameter(embeddings, requires_grad=False)

    def represent(self, batch: Batch) -> torch.Tensor:
        valid = (batch.history != self.n_items).float()
        count = valid.sum(1, keepdim=True).clamp_min(1)
        mean = (self.popularity01[batch.history.clamp(max=self.n_items - 1)] * valid).sum(1) / count[:, 0]
        drive = 0.1 + 4 * mean ** 4
        taste = 2 * (self.embeddings[batch.history, 1:] * valid[..., None]).sum(1) / count
        return torch.cat([drive[:, None], taste], 1)

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return reps @ self.item_embeddings().T

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.score(self.represent(batch), batch)

    def item_embeddings(self) -> torch.Tensor:
        return self.embeddings[:-1]


def make_popularity_drive(dataset: str) -> PopularityDrive:
    """A factory for `recprobe probe --adapter torch --option factory=tests.targets:make_popularity_drive`."""
    from recprobe.data import load_dataset

    return PopularityDrive(load_dataset(dataset, min_rating=None, core=3))
