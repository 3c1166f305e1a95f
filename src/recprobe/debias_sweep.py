"""The de-biasing sweep: every method over a range of strengths, measured by the same ranking code, as one table
of accuracy and beyond-accuracy metrics (an accuracy / popularity-bias curve per method).

Methods (strength 0 is the unedited model for each):

- ``sae`` with a selection rule (``recprobe.debias.SELECTIONS``): the ``n_latents`` latents with the largest
  \\|score\\|, PopSteer's edit: each gets weight w_j = \\|score_j\\| / max \\|score\\|; a latent of niche items
  (score < 0) rises by strength * w_j * sd_j for every user, a latent of popular items falls by as much where it
  fires (not below 0); sd_j is the latent's standard deviation over the test users. The representation the
  scorer sees is x + sum_j (z'_j - z_j) W_dec[j] (as ``recprobe.steer``);
- ``random`` with the same rule: the same edit, with the same weights and signs, on latents drawn uniformly
  (seeded) among the other latents firing on at least ``MIN_ACTIVE`` test users; the control, averaged over ``seeds`` draws;
- ``ipr``: inverse-popularity re-ranking with alpha = strength (``recprobe.rerank``);
- ``calibration``: P-Calibration with lam = strength.

Each test user's representation and SAE code is computed once and reused by every method and strength. Every
method that scores all items is ranked by ``recprobe.metrics.ranks_and_top``, the code behind `recprobe evaluate`
(seen items masked, ties against the target), so the unedited rows match its HR@10, NDCG@10 and beyond-accuracy
metrics exactly; P-Calibration builds a list rather than scoring every item, so its target rank is the target's
position in that list (``list_ranks``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from recprobe.beyond import BEYOND_K, BeyondSums, PopularityGroups
from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Split
from recprobe.debias import MIN_ACTIVE, SELECTIONS, dense_codes, select_latents
from recprobe.errors import ConfigError, unknown_name
from recprobe.metrics import ranks_and_top
from recprobe.progress import stage_bar
from recprobe.rerank import calibrated_top, ipr_scores
from recprobe.steer import ranked_batches
from recprobe.target import ProbeTarget

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # SAE and random-latent steering, in units of sd_j
IPR_ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
CALIBRATION_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
N_LATENTS = 32
SEEDS = 3


def check_strengths(strengths: Sequence[float], name: str = "--strengths") -> list[float]:
    """The strengths sorted and deduplicated; refused (the error names ``name``) when empty, not finite or negative."""
    for strength in strengths:
        if not math.isfinite(strength) or strength < 0:
            raise ConfigError(f"{name}: {strength} is not a finite number >= 0; give e.g. {name} 0,1,2,4")
    if not strengths:
        raise ConfigError(f"{name}: give at least one value, e.g. {name} 0,1,2,4")
    return sorted(set(float(s) for s in strengths))


class LatentEdit:
    """PopSteer's additive edit of ``latents`` with signed ``weights`` (+: niche latent raised, -: popular latent
    lowered), in units of each latent's standard deviation ``sd``."""

    def __init__(self, sae, latents: Sequence[int], weights: Sequence[float], sd: torch.Tensor):
        self.latents = torch.as_tensor(list(latents), dtype=torch.long)
        self.weights = torch.as_tensor(list(weights), dtype=torch.float32)
        self.step = self.weights.abs() * sd[self.latents]
        self.is_niche = self.weights > 0  # raised everywhere; the others lowered where they fire
        self.decoder = sae.W_dec.detach()[self.latents].float()

    def apply(self, reps: torch.Tensor, codes: torch.Tensor, strength: float) -> torch.Tensor:
        z = codes[:, self.latents]
        lowered = (z - strength * self.step).clamp_min(0)
        new = torch.where(self.is_niche, z + strength * self.step, lowered)
        return reps + (new - z) @ self.decoder


def sae_edit(sae, ranked: list[tuple[int, float]], n_latents: int, sd: torch.Tensor) -> tuple[LatentEdit, list[dict]]:
    """The edit of the ``n_latents`` latents of largest \\|score\\| and what they are (for the results file)."""
    chosen = sorted(ranked, key=lambda js: -abs(js[1]))[:n_latents]
    if not chosen:
        raise ConfigError("no latent qualifies for de-biasing (each fires on too few users); train a wider SAE")
    top = max(abs(score) for _, score in chosen) or 1.0
    weights = [-score / top for _, score in chosen]  # popular (score > 0) lowered, niche raised
    return LatentEdit(sae, [j for j, _ in chosen], weights, sd), [{"latent": j, "score": s} for j, s in chosen]


def random_edits(sae, edit: LatentEdit, eligible: np.ndarray, seeds: int, sd: torch.Tensor) -> list[LatentEdit]:
    """The same weights on latents drawn uniformly (seed 0, 1, ...) among ``eligible`` less the edit's own."""
    pool = np.setdiff1d(eligible, edit.latents.numpy())
    if len(pool) < len(edit.latents):
        raise ConfigError(f"too few latents fire on at least {MIN_ACTIVE} test users to draw {len(edit.latents)} random "
                          f"ones besides the chosen; lower --latents")
    out = []
    for seed in range(seeds):
        drawn = np.random.default_rng(seed).choice(pool, size=len(edit.latents), replace=False)
        out.append(LatentEdit(sae, drawn.tolist(), edit.weights.tolist(), sd))
    return out


def list_ranks(top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] each target's 1-based position in its user's list ``top`` [B, K], K + 1 where it is absent (enough
    for HR@K and NDCG@K of a re-ranked list that is not a ranking of every item)."""
    hit = top == targets[:, None]
    return torch.where(hit.any(1), hit.int().argmax(1) + 1, top.shape[1] + 1)


@torch.no_grad()
def code_spread(target: ProbeTarget, sae, split: Split, batch_size: int) -> tuple[torch.Tensor, np.ndarray]:
    """One pass over the test users, a batch at a time: each latent's standard deviation over them ([n_latents],
    the unit of an edit's strength) and the latents active on at least ``MIN_ACTIVE`` of them."""
    n = sae.n_latents
    total, squares, active = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64), torch.zeros(n)
    for _, batch, _ in ranked_batches(target, split, np.arange(split.n_users), batch_size):
        codes = dense_codes(sae, target.represent(batch).float()).double()
        total += codes.sum(0)
        squares += codes.square().sum(0)
        active += (codes > 0).sum(0)
    users = split.n_users
    variance = (squares - total.square() / users) / max(users - 1, 1)
    return variance.clamp(min=0).sqrt().float(), np.flatnonzero((active >= MIN_ACTIVE).numpy())


def _average(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    return {key: None if any(r[key] is None for r in rows) else float(np.mean([r[key] for r in rows]))
            for key in rows[0]}


@torch.no_grad()
def debias_sweep(target: ProbeTarget, sae, split: Split, cases: CaseSet | None, *,
                 selections: Sequence[str] = SELECTIONS, strengths: Sequence[float] = STRENGTHS,
                 ipr_alphas: Sequence[float] = IPR_ALPHAS, calibration_lambdas: Sequence[float] = CALIBRATION_LAMBDAS,
                 n_latents: int = N_LATENTS, seeds: int = SEEDS, batch_size: int = 512,
                 progress: bool = True) -> dict[str, Any]:
    """Run every method at every strength over all test users; one row per (method, selection, strength)."""
    started = time.perf_counter()
    strengths = check_strengths(strengths)
    ipr_alphas = check_strengths(ipr_alphas, "ipr_alphas")
    calibration_lambdas = check_strengths(calibration_lambdas, "calibration_lambdas")
    if calibration_lambdas[-1] > 1:
        raise ConfigError(f"calibration_lambdas: {calibration_lambdas[-1]} is above 1; lambda weighs relevance "
                          f"against calibration, give values in [0, 1]")
    if n_latents < 1 or seeds < 1:
        raise ConfigError(f"n_latents and seeds must be at least 1, got n_latents={n_latents}, seeds={seeds}")
    for selection in selections:
        if selection not in SELECTIONS:
            raise unknown_name("latent selection", selection, list(SELECTIONS))
    groups = PopularityGroups.of(split)
    users = np.arange(split.n_users)
    sd, eligible = code_spread(target, sae, split, batch_size)

    edits: dict[str, tuple[LatentEdit, list[LatentEdit]]] = {}
    chosen: dict[str, list[dict]] = {}
    for selection in selections:
        edit, chosen[selection] = sae_edit(sae, select_latents(selection, target, sae, split, cases), n_latents, sd)
        edits[selection] = (edit, random_edits(sae, edit, eligible, seeds, sd))

    popularity = torch.from_numpy(groups.popularity).float()
    item_group = torch.from_numpy(groups.item_group)
    offsets, items = split.sequences("test")
    configs: list[tuple[str, str | None, float]] = [
        *((m, sel, s) for sel in selections for m in ("sae", "random") for s in strengths),
        *(("ipr", None, a) for a in ipr_alphas), *(("calibration", None, lam) for lam in calibration_lambdas)]
    draws = {config: seeds if config[0] == "random" else 1 for config in configs}
    # (method, selection, strength, seed) -> running sums of its metrics: memory independent of the users
    sums = {(*config, seed): BeyondSums(groups) for config, n in draws.items() for seed in range(n)}

    def keep(key: tuple[str, str | None, float, int], ranks_top: tuple[torch.Tensor, torch.Tensor],
             chunk: np.ndarray) -> None:
        ranks, top = ranks_top
        sums[key].add(top.numpy(), ranks.numpy(), split.test_items[chunk], chunk)

    def sweep_batch(chunk: np.ndarray, batch, seen: torch.Tensor) -> None:
        x = target.represent(batch).float()
        z = dense_codes(sae, x)
        test_items = torch.from_numpy(split.test_items[chunk])
        ranking = (test_items, seen, BEYOND_K)  # ranked as `recprobe evaluate` ranks

        base = target.score(x, batch).float()
        unedited = ranks_and_top(base, *ranking)  # masks ``base`` in place (the target is never masked)
        shares = groups.history_shares(offsets, items, chunk)
        for method, selection, strength in configs:
            if method == "ipr":
                keep((method, None, strength, 0), ranks_and_top(ipr_scores(base, popularity, strength), *ranking), chunk)
            elif method == "calibration":
                top = calibrated_top(base, item_group, shares, strength, BEYOND_K)
                keep((method, None, strength, 0), (list_ranks(top, test_items), top), chunk)
            else:
                selected, randoms = edits[selection]
                for seed, edit in enumerate([selected] if method == "sae" else randoms):
                    keep((method, selection, strength, seed), unedited if strength == 0 else
                         ranks_and_top(target.score(edit.apply(x, z, strength), batch).float(), *ranking), chunk)

    with stage_bar(progress) as bar:
        task = bar.add_task(f"de-biasing sweep ({len(configs)} settings)", total=len(users), unit="users")
        for chunk, batch, seen in ranked_batches(target, split, users, batch_size):
            sweep_batch(chunk, batch, seen)
            bar.advance(task, len(chunk))

    rows = []
    for config in configs:
        method, selection, strength = config
        metrics = [sums[(*config, seed)].metrics() for seed in range(draws[config])]
        rows.append({"method": method, "selection": selection, "strength": strength, **_average(metrics)})
    return {"k": BEYOND_K, "n_latents": n_latents, "seeds": seeds, "strengths": strengths,
            "ipr_alphas": ipr_alphas, "calibration_lambdas": calibration_lambdas,
            "latents": chosen, "rows": rows, "seconds": time.perf_counter() - started}
