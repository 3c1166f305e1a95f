"""Steering SAE latents against popularity (PopSteer), and its random-latent control.

The ``n_latents`` latents with the largest \\|score\\| under a selection rule (``recprobe.steering.debias``) each get
a weight w_j = \\|score_j\\| / max \\|score\\|. At strength s a latent of niche items (score < 0) rises by
s * w_j * sd_j for every user, a latent of popular items falls by as much where it fires (not below 0): a
``LatentEdit`` shift. sd_j is the latent's standard deviation over the test users (the unit of strength).
The control draws the same number of latents uniformly (seeded) among the other latents firing on at least
``MIN_ACTIVE`` test users and gives them the same weights and signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recprobe.errors import ConfigError
from recprobe.steering.debias import MIN_ACTIVE
from recprobe.steering.edit import LatentEdit, steered
from recprobe.steering.methods import SweptBatch


@dataclass(frozen=True)
class PopSteerEdit:
    """``latents`` with signed ``weights`` (+: a niche latent raised, -: a popular latent lowered) and their
    ``steps`` at strength 1, w_j * sd_j."""

    latents: tuple[int, ...]
    weights: tuple[float, ...]
    steps: torch.Tensor  # [len(latents)] float32

    @classmethod
    def of(cls, latents: Sequence[int], weights: Sequence[float], sd: torch.Tensor) -> PopSteerEdit:
        latents, weights = tuple(int(j) for j in latents), tuple(float(w) for w in weights)
        return cls(latents, weights, torch.tensor(weights, dtype=torch.float32) * sd[list(latents)])

    def at(self, strength: float) -> list[LatentEdit]:
        shifts = (strength * self.steps).tolist()  # float32 products, as the codes are
        return [LatentEdit(j, shift=shift) for j, shift in zip(self.latents, shifts, strict=True)]


def chosen_edit(ranked: list[tuple[int, float]], n_latents: int, sd: torch.Tensor) -> tuple[PopSteerEdit, list[dict]]:
    """The edit of the ``n_latents`` latents of largest \\|score\\| and what they are (for the results file)."""
    chosen = sorted(ranked, key=lambda js: -abs(js[1]))[:n_latents]
    if not chosen:
        raise ConfigError("no latent qualifies for de-biasing (each fires on too few users); train a wider SAE")
    top = max(abs(score) for _, score in chosen) or 1.0
    weights = [-score / top for _, score in chosen]  # popular (score > 0) lowered, niche raised
    return PopSteerEdit.of([j for j, _ in chosen], weights, sd), [{"latent": j, "score": s} for j, s in chosen]


def random_edits(edit: PopSteerEdit, eligible: np.ndarray, seeds: int, sd: torch.Tensor) -> list[PopSteerEdit]:
    """The same weights on latents drawn uniformly (seed 0, 1, ...) among ``eligible`` less the edit's own."""
    pool = np.setdiff1d(eligible, np.asarray(edit.latents))
    if len(pool) < len(edit.latents):
        raise ConfigError(f"too few latents fire on at least {MIN_ACTIVE} test users to draw {len(edit.latents)} random "
                          f"ones besides the chosen; lower --latents")
    return [PopSteerEdit.of(np.random.default_rng(seed).choice(pool, size=len(edit.latents), replace=False).tolist(),
                            edit.weights, sd) for seed in range(seeds)]


@dataclass
class LatentSteering:
    """The ``Method``: one ``PopSteerEdit`` per draw (the chosen latents: one; the random control: one per seed)."""

    name: str
    selection: str
    sae: object
    edits: list[PopSteerEdit]
    strengths: list[float]

    @property
    def draws(self) -> int:
        return len(self.edits)

    def rank(self, swept: SweptBatch, strength: float, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        if strength == 0:
            return swept.unedited
        reps = steered(self.sae, swept.reps, self.edits[draw].at(strength), swept.codes)
        return swept.ranked(swept.target.score(reps, swept.batch).float())
