"""Beyond-accuracy metrics of top-K lists: how the recommendations spread over the catalog and how popular they
are, computed from the same full rankings as HR@K / NDCG@K (``recprobe.ranking.metrics`` re-exports them).

Popularity is an item's number of training interactions. Items and users fall into three groups by one rule
(``GROUP_SHARE``, the convention of Abdollahpouri et al. 2020): sort by training interactions, most first; the
**head** is the most popular items up to and including the one that brings their share of all training
interactions to 20%; the **tail** is the least popular items whose share stays within 20% (items never
interacted with are always tail); the rest are **mid**. Ties are broken by index. Users are cut the same way
by their own training interactions: **heavy** (head), **medium**, **light** (tail).

For the top-K lists ``top`` [U, K] of U users:

- ``gini_index``: the Gini coefficient of how often each catalog item is recommended, zeros included
  (0: every item equally often; near 1: a few items everywhere), as RecBole's ``GiniIndex``;
- ``average_popularity`` (ARP): the mean over users of the mean popularity of their K items (``AveragePopularity``);
- ``item_coverage``: distinct items recommended / catalog size (``ItemCoverage``);
- ``tail_share``: the mean over users of the share of their K items in the tail (``TailPercentage`` with a
  given tail);
- ``group_ndcg``: NDCG@K averaged over the users whose test item is in each popularity group (or who are in each
  activity group); None for an empty group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recprobe.data.split import Split

GROUP_SHARE = 0.2  # the head holds the first 20% of training interactions, the tail the last 20%
ITEM_GROUPS = ("head", "mid", "tail")
USER_GROUPS = ("heavy", "medium", "light")
BEYOND_K = 10  # the K of the beyond-accuracy metrics printed by `recprobe evaluate` and of the sweep
HEAD, MID, TAIL = 0, 1, 2


def share_groups(counts: np.ndarray, share: float = GROUP_SHARE) -> np.ndarray:
    """[n] 0 (head), 1 (mid) or 2 (tail) for each of ``counts`` (interactions per item or per user)."""
    counts = np.asarray(counts, dtype=np.float64)
    if not 0 < share < 0.5:
        raise ValueError(f"share must be in (0, 0.5), got {share}")
    total = counts.sum()
    groups = np.full(len(counts), MID, dtype=np.int8)
    if total <= 0:
        groups[:] = TAIL
        return groups
    order = np.argsort(-counts, kind="stable")  # most first, ties by index
    before = np.cumsum(counts[order]) - counts[order]
    groups[order[before < share * total]] = HEAD  # includes the item that crosses the share
    ascending = order[::-1]
    within = np.cumsum(counts[ascending]) <= share * total
    tail = ascending[within & (groups[ascending] != HEAD)]
    groups[tail] = TAIL
    return groups


def check_top(top: np.ndarray, n_items: int) -> np.ndarray:
    """``top`` as a [U, K] integer array of item indices in 0..n_items-1, U, K >= 1; a clear error otherwise."""
    top = np.asarray(top)
    if top.ndim != 2 or top.size == 0 or not np.issubdtype(top.dtype, np.integer):
        raise ValueError(f"top-K lists: expected a non-empty [users, K] array of item indices, got shape "
                         f"{top.shape} of {top.dtype}")
    if top.min() < 0 or top.max() >= n_items:
        raise ValueError(f"top-K lists hold item {top.min() if top.min() < 0 else top.max()}, outside the catalog's "
                         f"items 0..{n_items - 1}")
    return top


def gini_index(top: np.ndarray, n_items: int) -> float:
    """Gini coefficient of the recommendation counts of all ``n_items`` items (``gini_of_counts``)."""
    return gini_of_counts(np.bincount(check_top(top, n_items).ravel(), minlength=n_items))


def gini_of_counts(counts: np.ndarray) -> float:
    """sum_i (2i - n - 1) c_(i) / (n sum c) of the [n] counts c sorted ascending, i = 1..n."""
    counts = np.sort(np.asarray(counts)).astype(np.float64)
    n = len(counts)
    return float(((2 * np.arange(1, n + 1) - n - 1) * counts).sum() / (n * counts.sum()))


def average_popularity(top: np.ndarray, popularity: np.ndarray) -> float:
    """Mean over users of the mean training interactions of their recommended items (ARP)."""
    popularity = np.asarray(popularity, dtype=np.float64)
    return float(popularity[check_top(top, len(popularity))].mean())


def item_coverage(top: np.ndarray, n_items: int) -> float:
    """Distinct recommended items over the catalog size."""
    return len(np.unique(check_top(top, n_items))) / n_items


def tail_share(top: np.ndarray, tail: np.ndarray) -> float:
    """Mean over users of the share of their recommended items that are in ``tail`` ([n_items] bool)."""
    tail = np.asarray(tail, dtype=bool)
    return float(tail[check_top(top, len(tail))].mean())


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """[U] each user's NDCG@k from the 1-based rank of their target (one relevant item)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1), 0.0)


def group_ndcg(ranks: np.ndarray, k: int, groups: np.ndarray, names: tuple[str, ...]) -> dict[str, float | None]:
    """NDCG@k averaged within each group (``groups[u]`` indexes ``names``); None for an empty group."""
    ndcg = ndcg_at(ranks, k)
    groups = np.asarray(groups)
    return {name: float(ndcg[groups == g].mean()) if (groups == g).any() else None for g, name in enumerate(names)}


@dataclass(frozen=True)
class PopularityGroups:
    """What the beyond-accuracy metrics need to know of a split: item popularity and the item and user groups."""

    popularity: np.ndarray  # [n_items] training interactions per item
    item_group: np.ndarray  # [n_items] 0 head, 1 mid, 2 tail
    user_group: np.ndarray  # [n_users] 0 heavy, 1 medium, 2 light

    @classmethod
    def of(cls, split: Split) -> PopularityGroups:
        popularity = split.item_popularity()
        activity = np.bincount(split.train_users, minlength=split.n_users)
        return cls(popularity, share_groups(popularity), share_groups(activity))

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    def history_shares(self, offsets: np.ndarray, items: np.ndarray, users: np.ndarray) -> torch.Tensor:
        """[B, 3] each user's share of head, mid and tail items among the CSR rows ``users`` of (offsets, items)
        (all zeros for an empty history)."""
        out = np.zeros((len(users), len(ITEM_GROUPS)))
        for row, user in enumerate(users):
            mine = self.item_group[items[offsets[user]:offsets[user + 1]]]
            out[row] = np.bincount(mine, minlength=len(ITEM_GROUPS)) / max(len(mine), 1)
        return torch.from_numpy(out).float()


def beyond_metrics(top: np.ndarray, ranks: np.ndarray, targets: np.ndarray, users: np.ndarray,
                   groups: PopularityGroups, k: int = BEYOND_K) -> dict[str, float | None]:
    """HR@k, NDCG@k and every beyond-accuracy metric at ``k`` of the lists ``top`` [U, >= k]: row u belongs to
    user ``users[u]``, whose target item ``targets[u]`` has rank ``ranks[u]`` in the same ranking."""
    return BeyondSums(groups, k).add(top, ranks, targets, users).metrics()


class BeyondSums:
    """``beyond_metrics`` over batches of users, from running sums: memory grows with the catalog (one count per
    item), never with the users."""

    def __init__(self, groups: PopularityGroups, k: int = BEYOND_K):
        self.groups, self.k = groups, k
        self.counts = np.zeros(groups.n_items, dtype=np.int64)  # how often each item is recommended
        self.users = self.hits = 0
        self.ndcg = self.popularity = self.tail = 0.0  # sums over users of NDCG, mean popularity, tail share
        self.group_ndcg = np.zeros((2, 3))  # [item groups of the targets, user groups] NDCG sums
        self.group_users = np.zeros((2, 3), dtype=np.int64)

    def add(self, top: np.ndarray, ranks: np.ndarray, targets: np.ndarray, users: np.ndarray) -> BeyondSums:
        """One batch: ``beyond_metrics``'s arguments for some of the users."""
        groups, k = self.groups, self.k
        top, ranks = check_top(top, groups.n_items), np.asarray(ranks)
        if top.shape[1] < k:
            raise ValueError(f"beyond-accuracy metrics at K = {k} need top-{k} lists; got top-{top.shape[1]} lists")
        top = top[:, :k]
        if not len(top) == len(ranks) == len(targets) == len(users):
            raise ValueError(f"one row per user expected: top-K lists {len(top)}, ranks {len(ranks)}, targets "
                             f"{len(targets)}, users {len(users)}")
        ndcg = ndcg_at(ranks, k)
        self.counts += np.bincount(top.ravel(), minlength=groups.n_items)
        self.users += len(top)
        self.hits += int((ranks <= k).sum())
        self.ndcg += float(ndcg.sum())
        self.popularity += float(np.asarray(groups.popularity, dtype=np.float64)[top].mean(1).sum())
        self.tail += float((groups.item_group[top] == TAIL).mean(1).sum())
        for row, group in enumerate((groups.item_group[np.asarray(targets)], groups.user_group[np.asarray(users)])):
            self.group_ndcg[row] += np.bincount(group, weights=ndcg, minlength=3)
            self.group_users[row] += np.bincount(group, minlength=3)
        return self

    @classmethod
    def merged(cls, parts: list[BeyondSums]) -> BeyondSums:
        """The sums of several processes' users, as one (``parts`` share their groups and K)."""
        out = cls(parts[0].groups, parts[0].k)
        for part in parts:
            out.counts += part.counts
            out.users, out.hits = out.users + part.users, out.hits + part.hits
            out.ndcg, out.popularity, out.tail = out.ndcg + part.ndcg, out.popularity + part.popularity, out.tail + part.tail
            out.group_ndcg += part.group_ndcg
            out.group_users += part.group_users
        return out

    def metrics(self) -> dict[str, float | None]:
        if self.users == 0:
            raise ValueError("beyond-accuracy metrics of no users: add at least one batch")
        k, n = self.k, self.users
        out: dict[str, float | None] = {
            f"HR@{k}": self.hits / n, f"NDCG@{k}": self.ndcg / n, f"Gini@{k}": gini_of_counts(self.counts),
            f"ARP@{k}": self.popularity / n, f"Coverage@{k}": int((self.counts > 0).sum()) / self.groups.n_items,
            f"Tail@{k}": self.tail / n,
        }
        for row, (names, suffix) in enumerate(((ITEM_GROUPS, ""), (USER_GROUPS, " users"))):
            for g, name in enumerate(names):
                count = self.group_users[row, g]
                out[f"NDCG@{k} {name}{suffix}"] = float(self.group_ndcg[row, g] / count) if count else None
        return out
