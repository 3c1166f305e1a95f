"""De-biasing: find the latents that carry popularity, rescale them, and measure the top-10 lists before and
after (mean item popularity, catalog coverage, HR@10; ``recprobe.steering.sweep`` measures a whole range of strengths).

Two rules choose the latents, both signed (positive: the latent goes with popular items, negative: with niche):

- ``spearman``: Spearman's rank correlation, over the test cases, between the latent's activation and the train
  popularity of the model's top-1 prediction (latents that track *predicted* popularity);
- ``cohens-d``: PopSteer's rule (Ahmadov and Mansoury, RecSys 2025): Cohen's d between the latent's activations
  on synthetic users whose histories hold only head items and on the same users with only tail items
  (sequential targets only: a general model never reads the history).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Split
from recprobe.errors import ConfigError, unknown_name
from recprobe.ranking.beyond import HEAD, TAIL, PopularityGroups, average_popularity, item_coverage
from recprobe.stats import average_ranks
from recprobe.steering.edit import LatentEdit, dense_codes, steered
from recprobe.steering.steer import TOP, ranked_batches, top_items
from recprobe.target import Batch, ProbeTarget

DEBIAS_LATENTS = 30  # `recprobe debias`: latents of each kind (niche, popular) rescaled
MIN_ACTIVE = 10  # a latent firing on fewer cases has no meaningful correlation
SELECTIONS = ("spearman", "cohens-d")


def applicable_selections(target: ProbeTarget) -> tuple[str, ...]:
    """The rules that apply to ``target``: Cohen's d builds synthetic histories, so it needs a sequential one."""
    return SELECTIONS if target.max_history else ("spearman",)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's correlation of two dense vectors: the reference ``sparse_spearman`` is tested against."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def sparse_spearman(rows: np.ndarray, values: np.ndarray, centred_ranks: np.ndarray) -> float:
    """``spearman(a, b)`` for ``a`` zero but for positive ``values`` at ``rows``, given ``b``'s average ranks
    minus their mean: O(len(rows)), the zeros' tied rank entering in closed form."""
    n, m = len(centred_ranks), len(rows)
    zeros = n - m
    zero_rank, mean_rank = (zeros + 1) / 2, (n + 1) / 2
    active_ranks = average_ranks(values) + zeros
    covariance = float(((active_ranks - zero_rank) * centred_ranks[rows]).sum())
    spread_a = zeros * (zero_rank - mean_rank) ** 2 + float(((active_ranks - mean_rank) ** 2).sum())
    denominator = np.sqrt(spread_a * float((centred_ranks ** 2).sum()))
    return covariance / denominator if denominator > 0 else 0.0


def popularity_latents(cases: CaseSet, popularity: np.ndarray, n_latents: int) -> list[tuple[int, float]]:
    """(latent, Spearman correlation between its activation and the popularity of the case's predicted item),
    most positive first, for latents firing on at least MIN_ACTIVE cases. Positive: the latent fires with
    popular predictions; negative: with niche ones. Each latent costs O(its fired cases)."""
    ranks = average_ranks(popularity[cases.predicted])
    centred = ranks - ranks.mean()
    found = []
    for latent in range(n_latents):
        rows, values = cases.fired(latent)
        if len(rows) >= MIN_ACTIVE:
            found.append((latent, sparse_spearman(rows, values, centred)))
    return sorted(found, key=lambda lr: -lr[1])


def synthetic_histories(batch: Batch, pool: np.ndarray, pad_item: int, rng: np.random.Generator) -> Batch:
    """The batch with every history item replaced by one drawn uniformly from ``pool`` (lengths kept)."""
    history = batch.history.clone()
    valid = history != pad_item
    history[valid] = torch.from_numpy(rng.choice(pool, size=int(valid.sum()))).long()
    return Batch(batch.users, history, batch.lengths)


def cohens_d(sums: torch.Tensor, squares: torch.Tensor, n: int) -> torch.Tensor:
    """[n_latents] Cohen's d of two equal-sized groups of ``n`` from each latent's per-group sums and sums of
    squares ([2, n_latents]: group 0, group 1): (mean_0 - mean_1) / s_pooled, s_pooled = sqrt((s_0^2 + s_1^2) / 2)
    with the sample (n - 1) variances s_g^2 (the usual pooled SD for equal groups); 0 where s_pooled is 0."""
    if n < 2:
        raise ValueError(f"Cohen's d needs at least 2 users per group, got {n}")
    mean = sums / n
    variance = ((squares - n * mean.pow(2)) / (n - 1)).clamp_min(0)
    pooled = ((variance[0] + variance[1]) / 2).sqrt()
    return torch.where(pooled > 0, (mean[0] - mean[1]) / torch.where(pooled > 0, pooled, 1.0), 0.0)


@torch.no_grad()
def cohens_d_latents(target: ProbeTarget, sae, split: Split, *, seed: int = 0,
                     batch_size: int = 512) -> list[tuple[int, float]]:
    """(latent, Cohen's d), most positive first: each test user's history is replaced by random head items (the
    popular synthetic user) and by random tail items (the niche one), as long as the real one; d (``cohens_d``)
    compares the latent's activations over the popular and the niche users. Latents that fire on fewer than
    MIN_ACTIVE synthetic users, or whose activations do not vary, are left out."""
    if not target.max_history:
        raise ConfigError(f"--selection cohens-d needs a target that reads the user's history (a sequential model "
                          f"such as SASRec); {target.name} reads user ids only: use --selection spearman")
    groups = PopularityGroups.of(split)
    pools = [np.flatnonzero(groups.item_group == group) for group in (HEAD, TAIL)]
    if not all(len(pool) for pool in pools):
        raise ConfigError(f"--selection cohens-d needs both head and tail items; {split.name}'s training interactions "
                          f"give {len(pools[0])} head and {len(pools[1])} tail items: use --selection spearman")
    rng = np.random.default_rng(seed)
    batch_of = phase_batches(split, "test", target.max_history)
    sums = torch.zeros(2, sae.n_latents, dtype=torch.float64)
    squares, fired = torch.zeros_like(sums), torch.zeros_like(sums)
    for start in range(0, split.n_users, batch_size):
        batch = batch_of(np.arange(start, min(start + batch_size, split.n_users)))
        for side, pool in enumerate(pools):
            z = dense_codes(sae, target.represent(synthetic_histories(batch, pool, split.pad_item, rng))).double()
            sums[side] += z.sum(0)
            squares[side] += z.pow(2).sum(0)
            fired[side] += (z > 0).sum(0)
    d = cohens_d(sums, squares, split.n_users)
    keep = (fired.sum(0) >= MIN_ACTIVE) & (d != 0)
    found = [(int(j), float(d[j])) for j in torch.nonzero(keep).flatten()]
    return sorted(found, key=lambda jd: -jd[1])


def select_latents(selection: str, target: ProbeTarget, sae, split: Split, cases: CaseSet | None) -> list[tuple[int, float]]:
    """The signed latent scores of one rule (``SELECTIONS``), most positive (popular) first."""
    if selection == "spearman":
        if cases is None:
            raise ConfigError("--selection spearman needs the run's cases: run `recprobe interpret` first")
        return popularity_latents(cases, split.item_popularity(), sae.n_latents)
    if selection == "cohens-d":
        return cohens_d_latents(target, sae, split)
    raise unknown_name("latent selection", selection, list(SELECTIONS))


@torch.no_grad()
def top10_report(target: ProbeTarget, sae, split: Split, edits: Sequence[LatentEdit], batch_size: int = 512) -> dict[str, float]:
    """Over every test user, with ``edits`` applied (none: the original model): mean train popularity of the
    top-10 items, catalog coverage (distinct items in any top 10 / catalog size) and HR@10 of the test item."""
    top, hits = np.empty((split.n_users, TOP), dtype=np.int64), 0  # filled in place, batch by batch
    for users, batch, seen in ranked_batches(target, split, np.arange(split.n_users), batch_size):
        reps = target.represent(batch).float()
        found = top_items(target, steered(sae, reps, edits) if edits else reps, batch, seen, TOP)
        top[users] = found.numpy()
        hits += int((found == torch.from_numpy(split.test_items[users])[:, None]).any(1).sum())
    return {"mean_popularity@10": average_popularity(top, split.item_popularity()),
            "coverage@10": item_coverage(top, split.n_items), "HR@10": hits / split.n_users}
