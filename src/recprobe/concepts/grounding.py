"""Label-grounded tests of a basis's directions that an untrained basis should fail, no LLM needed. Each label
(an item attribute value) gets the basis's one direction that best separates it on training users (largest
normalised mean difference, signed); then, on held-out users or through the model's own scores:

- **output concentration**: the items that pushing along the direction raises most (the mean score change over
  sample users, through ``score()``, so any target works) carry the label more often than the catalog does;
- **steering**: pushed one typical representation norm along the direction, the label's items enter the top
  10 of (nearly) every user; pushed against it, they leave (Table 7's test, for every label at once);
- **hard negatives**: the label is more frequent among the cases where the direction fires most than among the
  nearest cases (in representation space, other users, the same time window) where it does not: a direction
  that only follows its neighbourhood's base rate, or the season its cases come from, scores 0 here, however
  well it beats random negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recprobe.concepts.probing import mean_difference
from recprobe.target import Batch, ProbeTarget
from recprobe.topk import top_k

TOP_ITEMS = 20  # raised items checked for the concept
TOP_K = 10  # the steered top-k list
STEER_NORMS = 1.0  # push = this many typical representation norms along the unit direction
STEER_IN, STEER_OUT = 0.9, 0.1  # Table 7's success: in >= 90% of top-10s when raised, <= 10% when lowered
TOP_CASES = 50  # firing cases per direction for the hard-negative test (fewer for a label fewer users carry)
MIN_TOP_CASES = 10  # a label carried by fewer held-out users is not scored on hard negatives
TIME_WINDOWS = 10  # hard negatives come from the firing case's tenth of the cases' time span (by quantile)


@dataclass
class Directions:
    """Per label, the chosen direction of a basis: its column and the sign along which it marks the label."""

    columns: np.ndarray  # [L] int
    signs: np.ndarray  # [L] +1 / -1


def best_directions(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> Directions:
    """Per label, the direction with the largest normalised mean difference on the ``train`` cases."""
    difference = mean_difference(features[train], labels[train])  # [D, L]
    columns = np.abs(difference).argmax(0)
    signs = np.sign(difference[columns, np.arange(labels.shape[1])])
    return Directions(columns, np.where(signs == 0, 1.0, signs))


@dataclass
class Pushes:
    """The model's response to pushing sample users' representations along unit directions."""

    concentration: np.ndarray  # [L] share of the TOP_ITEMS most raised items carrying the label minus the catalog's
    raised_share: np.ndarray  # [L] share of users with a label item in their top 10 when pushed along
    lowered_share: np.ndarray  # [L] ... when pushed against

    @property
    def success(self) -> np.ndarray:
        return (self.raised_share >= STEER_IN) & (self.lowered_share <= STEER_OUT)


@torch.no_grad()
def push(target: ProbeTarget, batch: Batch, reps: torch.Tensor, directions: torch.Tensor,
         per_item: np.ndarray) -> Pushes:
    """``directions`` [L, d] (any norm: made unit here), ``per_item`` [n_items, L] which items carry each label.
    Each push moves ``reps`` by STEER_NORMS times their mean distance from their centre."""
    unit = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    size = STEER_NORMS * float((reps - reps.mean(0)).norm(dim=1).mean())
    base = target.score(reps, batch).float()
    carry = torch.from_numpy(per_item)
    catalog = per_item.mean(0)
    concentration, raised, lowered = (np.zeros(len(unit)) for _ in range(3))
    for j, direction in enumerate(unit):
        up = target.score(reps + size * direction, batch).float()
        effect = (up - base).mean(0)
        concentration[j] = per_item[effect.topk(TOP_ITEMS).indices.numpy(), j].mean() - catalog[j]
        down = target.score(reps - size * direction, batch).float()
        raised[j] = float(carry[top_k(up, TOP_K)[1], j].any(1).float().mean())
        lowered[j] = float(carry[top_k(down, TOP_K)[1], j].any(1).float().mean())
    return Pushes(concentration, raised, lowered)


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    """[n, d] seeded random unit directions: the floor every basis's directions are set against."""
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def time_windows(times: np.ndarray, n: int = TIME_WINDOWS) -> np.ndarray:
    """[cases] the window (0 .. n - 1) of each case's time: the cases cut into ``n`` equal-count spans."""
    edges = np.quantile(times, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, times, side="right")


def hard_negative_gaps(scores: np.ndarray, labels: np.ndarray, reps: np.ndarray, users: np.ndarray,
                       seed: int = 0, windows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per label j, with ``scores[:, j]`` its direction's signed values on held-out cases: P(label | the
    top cases where it fires most, one per user) minus P(label | each one's nearest non-firing case of
    another user, in the same time window when ``windows`` [cases] gives one), and the same against random
    non-firing cases of other users. The top cases are TOP_CASES, or as many as the held-out users carrying the
    label when fewer (a direction that reads a rare label perfectly then scores 1, not its users / TOP_CASES);
    a label carried by fewer than MIN_TOP_CASES users gives NaN. "Fires" means above the direction's median
    value (above 0 for a sparse latent); a direction firing on fewer than half its top cases, or whose firing
    cases have no silent case in their window, gives NaN."""
    rng = np.random.default_rng(seed)
    hard, random = np.full(labels.shape[1], np.nan), np.full(labels.shape[1], np.nan)
    for j in range(labels.shape[1]):
        value = scores[:, j]
        cut = float(np.median(value))
        order = np.argsort(-value, kind="stable")
        order = order[value[order] > cut]
        _, first = np.unique(users[order], return_index=True)
        top = min(TOP_CASES, len(np.unique(users[labels[:, j]])))
        firing = order[np.sort(first)][:top]
        silent = np.flatnonzero(value <= cut)
        if top < MIN_TOP_CASES or len(firing) < top // 2 or len(silent) < top:
            continue
        distance = ((reps[firing, None, :] - reps[None, silent, :]) ** 2).sum(-1)  # [firing, silent]
        distance[users[firing][:, None] == users[silent][None, :]] = np.inf
        if windows is not None:
            distance[windows[firing][:, None] != windows[silent][None, :]] = np.inf
        matched = np.isfinite(distance).any(1)
        if matched.sum() < top // 2:
            continue
        nearest = silent[distance[matched].argmin(1)]
        others = silent[~np.isin(users[silent], users[firing])]
        drawn = rng.choice(others, len(firing), replace=len(others) < len(firing))
        rate = labels[firing, j].mean()
        hard[j] = labels[firing[matched], j].mean() - labels[nearest, j].mean()
        random[j] = rate - labels[drawn, j].mean()
    return hard, random
