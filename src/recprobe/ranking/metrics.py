"""Ranking metrics: HR@K and NDCG@K over all items (the paper's "test-all"), or over 99 sampled
negatives for comparison with published sampled tables (labelled ``(sampled-99)``).

One masking policy: a user's excluded items (train items and the other held-out item) score -inf;
the target is never masked. Rank = #{items with score >= target score}, so ties count against the
target (as in ReChorus). HR@K = [rank <= K]; NDCG@K = [rank <= K] / log2(rank + 1).

Beyond-accuracy metrics (Gini@K, ARP@K, coverage@K, tail share, NDCG@K by item popularity and user activity
group) live in ``recprobe.ranking.beyond`` and are importable from here; ``evaluate_ranking(..., groups=...)`` computes
them from the top-K lists of the same masked scores that give the ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recprobe.errors import ConfigError
from recprobe.parallel import DataParallel
from recprobe.ranking.beyond import (  # noqa: F401  (re-exported: the beyond-accuracy metrics)
    BEYOND_K,
    GROUP_SHARE,
    BeyondSums,
    PopularityGroups,
    average_popularity,
    beyond_metrics,
    gini_index,
    group_ndcg,
    item_coverage,
    share_groups,
    tail_share,
)
from recprobe.topk import top_k

KS = (5, 10, 20, 50)
COUNT_BYTES = 2**21  # target_ranks' comparison block on CPU (a bool per score)
SAMPLED = " (sampled-99)"
SAMPLED_NEGATIVES = 99


# users x items scored at once (16 MB of float32): the batch shrinks as the catalog grows. Under glibc's 32 MB
# mmap threshold each batch's blocks reuse freed heap; 128 MB blocks were mapped afresh and page-faulted each batch
# (a third of a full ranking's CPU time at 49,113 items)
SCORE_ENTRIES = 2**22


def scored_batch_size(batch_size: int, n_items: int) -> int:
    """How many users to score at once: ``batch_size``, or fewer where a [users, n_items] score matrix would pass
    ``SCORE_ENTRIES``, so a full ranking's memory does not grow with the catalog."""
    return max(1, min(batch_size, SCORE_ENTRIES // max(n_items, 1)))


def scored_chunks(users: np.ndarray, batch_size: int, n_items: int) -> Iterator[np.ndarray]:
    """``users`` in consecutive chunks of at most ``scored_batch_size(batch_size, n_items)``."""
    size = scored_batch_size(batch_size, n_items)
    for start in range(0, len(users), size):
        yield users[start:start + size]


@dataclass(frozen=True, eq=False)
class SeenItems:
    """The items masked for each user of a batch, kept sparse: row ``rows[j]`` of the batch has seen ``items[j]``.
    Built from the users' CSR rows, so it costs their histories' length, not [users, n_items]."""

    rows: torch.Tensor  # [m] long
    items: torch.Tensor  # [m] long
    n_rows: int

    def hide(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` [n_rows, n_items] with the seen items at -inf, in place; returns it."""
        scores[self.rows.to(scores.device), self.items.to(scores.device)] = float("-inf")
        return scores

    def take(self, rows: torch.Tensor | np.ndarray) -> SeenItems:
        """The seen items of the batch's ``rows`` (distinct indices, or a bool mask), renumbered as those rows are."""
        rows = torch.as_tensor(rows).cpu()
        rows = rows.nonzero().squeeze(1) if rows.dtype == torch.bool else rows.long()
        renumber = torch.full((self.n_rows,), -1, dtype=torch.long)
        renumber[rows] = torch.arange(len(rows))
        new = renumber[self.rows]
        kept = new >= 0
        return SeenItems(new[kept], self.items[kept], len(rows))

    def dense(self, n_items: int) -> torch.Tensor:
        """[n_rows, n_items] bool."""
        mask = torch.zeros(self.n_rows, n_items, dtype=torch.bool)
        mask[self.rows, self.items] = True
        return mask


def seen_items(offsets: np.ndarray, items: np.ndarray, users: np.ndarray) -> SeenItems:
    """The items of the CSR rows of ``users``, as a batch's seen items."""
    return seen_prefix(offsets, items, users, offsets[users + 1] - offsets[users])


def seen_prefix(offsets: np.ndarray, items: np.ndarray, users: np.ndarray, lengths: np.ndarray) -> SeenItems:
    """The first ``lengths[b]`` items of each user's CSR row, as a batch's seen items."""
    starts = offsets[users]
    counts = np.asarray(lengths, dtype=np.int64)
    rows = np.repeat(np.arange(len(users)), counts)
    within_row = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = items[np.repeat(starts, counts) + within_row]
    return SeenItems(torch.from_numpy(rows), torch.from_numpy(np.asarray(cols, dtype=np.int64)), len(users))


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, mask: SeenItems | None = None) -> torch.Tensor:
    """1-based rank of each target among all items, excluded items masked, ties against the target.
    ``scores`` [B, N] is modified in place."""
    target_scores = scores.gather(1, targets[:, None])
    if not torch.isfinite(target_scores).all():
        raise ValueError("a target item has a non-finite score (NaN or inf); the model's scores are broken")
    if mask is not None:
        mask.hide(scores)
        scores.scatter_(1, targets[:, None], target_scores)  # the target is never masked
    if scores.device.type != "cpu":
        return (scores >= target_scores).sum(1)
    # on CPU a few rows at a time: one [B, N] comparison block costs its page faults and cache misses,
    # 158 against 50 ms at 1,024 x 49,113 (2 cores)
    step = max(1, COUNT_BYTES // scores.shape[1])
    return torch.cat([(part >= below).sum(1) for part, below in zip(scores.split(step), target_scores.split(step),
                                                                       strict=True)])


def ranks_and_top(scores: torch.Tensor, targets: torch.Tensor, mask: SeenItems | None,
                  k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One masked ranking, read twice: each target's rank (``target_ranks``) and the top-``k`` items [B, k] of
    the same masked scores (the target itself is never masked). ``scores`` is modified in place."""
    ranks = target_ranks(scores, targets, mask)
    return ranks, top_k(scores, k, sorted=True)[1]


def metrics_from_ranks(ranks: torch.Tensor, ks: Sequence[int] = KS, suffix: str = "") -> dict[str, float]:
    ranks = ranks.double()
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        out[f"HR@{k}{suffix}"] = hit.double().mean().item()
        out[f"NDCG@{k}{suffix}"] = torch.where(hit, 1.0 / torch.log2(ranks + 1), 0.0).mean().item()
    return out


def sample_negatives(
    offsets: np.ndarray, items: np.ndarray, users: np.ndarray, targets: np.ndarray, n_items: int,
    n: int, rng: np.random.Generator,
) -> np.ndarray:
    """[B, n] items drawn uniformly with replacement (as ReChorus does), none excluded for its user nor
    equal to its target."""
    seen = seen_items(offsets, items, users).dense(n_items).numpy()
    seen[np.arange(len(users)), targets] = True
    if seen.all(1).any():
        raise ValueError("some user has no item left to sample negatives from")
    negatives = rng.integers(0, n_items, size=(len(users), n))
    while True:
        bad = seen[np.arange(len(users))[:, None], negatives]
        if not bad.any():
            return negatives
        negatives[bad] = rng.integers(0, n_items, size=int(bad.sum()))


ScoreBatch = Callable[[np.ndarray], torch.Tensor]  # user indices [B] -> scores [B, n_items]


@torch.no_grad()
def evaluate_ranking(
    score_batch: ScoreBatch,
    targets: np.ndarray,
    exclusions: tuple[np.ndarray, np.ndarray],
    n_items: int,
    *,
    ks: Sequence[int] = KS,
    batch_size: int = 1024,
    sampled: bool = False,
    seed: int = 0,
    groups: PopularityGroups | None = None,
    parallel: DataParallel | None = None,
) -> dict[str, float | None]:
    """HR@K and NDCG@K of every user (index i has target ``targets[i]``), in batches of users.

    ``sampled=True`` ranks the target among 99 sampled negatives instead of all items (keys end in
    ``(sampled-99)``); it exists only for comparison with tables that used it. With ``groups`` (full ranking
    only) the beyond-accuracy metrics at K = 10 follow, from the top-10 lists of the same masked scores.
    With ``parallel`` (several processes under torchrun), each process ranks every world-th batch and the ranks and
    sums are gathered: the same figures as one process, on every process.
    """
    parallel = parallel or DataParallel()
    if sampled and parallel.world > 1:
        raise ConfigError("--sampled draws its negatives batch after batch from one random stream: run it in one "
                          "process (without torchrun)")
    if sampled and groups is not None:
        raise ValueError("beyond-accuracy metrics need the full ranking; they are not defined for sampled=True")
    if sampled and n_items < SAMPLED_NEGATIVES + 1:
        raise ConfigError(f"--sampled ranks the held-out item among {SAMPLED_NEGATIVES} distinct items the user has not "
                          f"seen; this catalog has {n_items} items in all: use the full ranking (without --sampled)")
    offsets, items = exclusions
    rng = np.random.default_rng(seed)
    ranks = torch.zeros(len(targets), dtype=torch.long)  # filled in place: no small tensor left per batch
    beyond = None if groups is None else BeyondSums(groups)
    batch_size = scored_batch_size(batch_size, n_items)
    starts = range(0, len(targets), batch_size)
    for number in parallel.mine(len(starts)):
        start = starts[number]
        users = np.arange(start, min(start + batch_size, len(targets)))
        scores = score_batch(users).float()
        target = torch.from_numpy(targets[users]).to(scores.device)
        if sampled:
            negatives = sample_negatives(offsets, items, users, targets[users], n_items, SAMPLED_NEGATIVES, rng)
            candidates = torch.cat([target[:, None], torch.from_numpy(negatives).to(scores.device)], 1)
            ranks[start:start + len(users)] = target_ranks(scores.gather(1, candidates), torch.zeros_like(target)).cpu()
        else:
            mask = seen_items(offsets, items, users)
            if groups is None:
                ranks[start:start + len(users)] = target_ranks(scores, target, mask).cpu()
                continue
            rank, top = ranks_and_top(scores, target, mask, BEYOND_K)
            ranks[start:start + len(users)] = rank.cpu()
            beyond.add(top.cpu().numpy(), rank.cpu().numpy(), targets[users], users)
    if parallel.world > 1:  # each process filled its own batches' ranks, zeros elsewhere
        found = parallel.gather((ranks, beyond))
        ranks = torch.stack([mine for mine, _ in found]).sum(0)
        beyond = None if beyond is None else BeyondSums.merged([sums for _, sums in found])
    out: dict[str, float | None] = dict(metrics_from_ranks(ranks, ks, SAMPLED if sampled else ""))
    if beyond is not None:
        out.update((key, value) for key, value in beyond.metrics().items() if key not in out)
    return out
