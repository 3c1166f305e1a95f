"""Cases: one per test user, holding what a describer and a verifier see, and what the SAE did with it.

A case is the user's recent history (at most ``SHOWN_HISTORY`` items, oldest first), the original model's
top-1 prediction (seen items masked) and the SAE's activations on the user's representation, kept sparse as
the k (value, latent) pairs TopK chose. Levels turn activations into the 0-10 scale prompts use; per latent,
``sample_latent`` draws disjoint construction, verification and non-activated cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from recprobe.batches import phase_batches
from recprobe.data.split import Split
from recprobe.io import atomic_write
from recprobe.metrics import exclusion_mask
from recprobe.target import ProbeTarget

SHOWN_HISTORY = 9
LevelMode = Literal["max", "quantile"]


@dataclass
class CaseSet:
    users: np.ndarray  # [n] int64 user index
    history: np.ndarray  # [n, SHOWN_HISTORY] int64 items, oldest first, padded with -1
    predicted: np.ndarray  # [n] int64: the original model's top-1 item, seen items masked
    values: np.ndarray  # [n, k] float32 latent values (0 = chosen by TopK but not fired)
    indices: np.ndarray  # [n, k] int64 latent ids
    made_from: dict[str, str] = field(default_factory=dict)  # the recommender, dataset and SAE, as fingerprints

    def __len__(self) -> int:
        return len(self.users)

    def activation(self, latent: int) -> np.ndarray:
        """[n] activation of one latent in every case (0 where it did not fire)."""
        return np.where(self.indices == latent, self.values, 0.0).sum(1)

    def save(self, path: str | Path) -> None:
        tensors = {name: np.ascontiguousarray(getattr(self, name)) for name in
                   ("users", "history", "predicted", "values", "indices")}
        atomic_write(path, lambda p: save_file(tensors, p, metadata=self.made_from))

    @classmethod
    def load(cls, path: str | Path) -> CaseSet:
        with safe_open(path, framework="numpy") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
            return cls(**tensors, made_from=dict(f.metadata() or {}))


@torch.no_grad()
def record_cases(target: ProbeTarget, sae, split: Split, *, batch_size: int = 1024) -> CaseSet:
    """Every test user's case, computed batch by batch (no [n_users, n_items] matrix is ever held)."""
    batch_of = phase_batches(split, "test", target.max_history)
    exclusions = split.exclusions("test")
    parts: dict[str, list[np.ndarray]] = {"users": [], "predicted": [], "values": [], "indices": []}
    for start in range(0, split.n_users, batch_size):
        users = np.arange(start, min(start + batch_size, split.n_users))
        batch = batch_of(users)
        reps = target.represent(batch)
        scores = target.score(reps, batch).float()
        scores[exclusion_mask(*exclusions, users, split.n_items)] = -torch.inf
        values, indices = sae.encode(reps.float())
        parts["users"].append(users)
        parts["predicted"].append(scores.argmax(1).numpy())
        parts["values"].append(values.numpy().astype(np.float32))
        parts["indices"].append(indices.numpy().astype(np.int64))
    history, _ = split.histories("test", SHOWN_HISTORY)
    return CaseSet(np.concatenate(parts["users"]), np.where(history == split.pad_item, -1, history),
                   np.concatenate(parts["predicted"]).astype(np.int64),
                   np.concatenate(parts["values"]), np.concatenate(parts["indices"]))


def levels(cases: CaseSet, mode: LevelMode = "max") -> np.ndarray:
    """[n, k] levels 0..10 aligned with ``cases.values``: 0 for no activation; otherwise ``max``:
    ceil(10 a / max a of that latent), or ``quantile``: the global decile of a among all positive
    activations (what the reference code did)."""
    values, indices = cases.values, cases.indices
    fired = values > 0
    out = np.zeros(values.shape, dtype=np.int64)
    if not fired.any():
        return out
    if mode == "max":
        peak = np.zeros(int(indices.max()) + 1)
        np.maximum.at(peak, indices[fired], values[fired])
        out[fired] = np.ceil(10 * values[fired] / peak[indices[fired]]).astype(np.int64)
    elif mode == "quantile":
        edges = np.quantile(values[fired], np.linspace(0.1, 0.9, 9))
        out[fired] = np.searchsorted(edges, values[fired], side="left") + 1
    else:
        raise ValueError(f"level mode must be 'max' or 'quantile', got {mode!r}")
    return np.clip(out, 1, 10) * fired


@dataclass
class LatentSample:
    """The cases a latent is described and verified on. ``status`` is "insufficient" when fewer than 2N
    cases activate it: such a latent is reported, never padded."""

    latent: int
    status: Literal["ok", "insufficient"]
    n_active: int
    construction: list[int]  # case rows, N of the top 2N by activation
    verification: list[int]  # the other N of the top 2N
    negatives: list[int]  # N random cases where the latent is 0, verified beside the N activated ones
    calibration: list[int]  # N more non-activated cases, for verifiers that calibrate on construction cases


def sample_latent(cases: CaseSet, latent: int, n: int = 5, seed: int = 0) -> LatentSample:
    """Top 2N cases by activation, split at random into N for construction and N for verification, plus N
    random non-activated cases (and N more for calibration); all disjoint; the same seed and latent give the
    same sample."""
    activation = cases.activation(latent)
    active = np.flatnonzero(activation > 0)
    if len(active) < 2 * n:
        return LatentSample(latent, "insufficient", len(active), [], [], [], [])
    rng = np.random.default_rng([seed, latent])
    top = active[np.lexsort((active, -activation[active]))][: 2 * n]  # ties broken by row, so stable
    top = rng.permutation(top)
    inactive = np.flatnonzero(activation == 0)
    negatives = rng.choice(inactive, size=min(2 * n, len(inactive)), replace=False)
    return LatentSample(latent, "ok", len(active), sorted(top[:n].tolist()), sorted(top[n:].tolist()),
                        sorted(negatives[:n].tolist()), sorted(negatives[n:].tolist()))
