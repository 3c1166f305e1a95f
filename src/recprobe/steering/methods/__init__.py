"""The de-biasing sweep's methods: each one class in one file, behind the ``Method`` protocol.

A method turns one batch of test users (``SweptBatch``: representations, SAE codes and the model's masked scores,
computed once and shared) into ranked lists at one strength; the sweep measures every method's lists with the same
code. ``LatentSteering`` edits SAE latents (PopSteer's edit, and the random-latent control); ``Ipr`` and
``Calibration`` re-rank the model's own scores. A new re-ranker or control is one more class like these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from recprobe.ranking.beyond import BEYOND_K
from recprobe.ranking.metrics import SeenItems, ranks_and_top
from recprobe.target import Batch, ProbeTarget


@dataclass(frozen=True)
class SweptBatch:
    """One batch of test users as every method sees it."""

    target: ProbeTarget
    batch: Batch
    users: np.ndarray
    reps: torch.Tensor  # [B, d] the representations
    codes: torch.Tensor  # [B, n_latents] the SAE's dense codes
    scores: torch.Tensor  # [B, n_items] the model's own scores, seen items masked (-inf)
    test_items: torch.Tensor  # [B]
    seen: SeenItems  # the items each user has seen
    history_shares: torch.Tensor  # [B, 3] each user's share of head / mid / tail items in their history
    unedited: tuple[torch.Tensor, torch.Tensor]  # the model's own (ranks, top-K lists)

    def ranked(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the test items' ranks [B], the top-K lists [B, K]) of ``scores``, ranked as `recprobe evaluate` ranks
        (seen items masked in place, ties against the target)."""
        return ranks_and_top(scores, self.test_items, self.seen, BEYOND_K)


class Method(Protocol):
    """One method of the de-biasing sweep."""

    name: str  # the rows' "method"
    selection: str | None  # the latent selection rule it edits by; None for a re-ranker
    strengths: list[float]  # its settings, sorted; 0 is the unedited model
    draws: int  # independent draws averaged at each strength (a random control's seeds), else 1

    def rank(self, swept: SweptBatch, strength: float, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the test items' ranks [B], the top-K lists [B, K]) at ``strength``, for draw ``draw``."""
        ...
