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

Each test user's representation and SAE code is computed once and reused by every method and strength; the
top-10 lists give HR@10 and NDCG@10 (the target's position in the list) and the beyond-accuracy metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.beyond import BEYOND_K, PopularityGroups, beyond_metrics
from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Split
from recprobe.debias import MIN_ACTIVE, SELECTIONS, dense_codes, select_latents
from recprobe.errors import ConfigError, unknown_name
from recprobe.metrics import exclusion_mask
from recprobe.rerank import calibrated_top, ipr_scores
from recprobe.target import ProbeTarget

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # SAE and random-latent steering, in units of sd_j
IPR_ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
CALIBRATION_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
N_LATENTS = 32
SEEDS = 3


def check_strengths(strengths: Sequence[float]) -> list[float]:
    """The strengths sorted and deduplicated; refused when empty, not finite or negative."""
    for strength in strengths:
        if not math.isfinite(strength) or strength < 0:
            raise ConfigError(f"--strengths: {strength} is not a finite number >= 0; give e.g. --strengths 0,1,2,4")
    if not strengths:
        raise ConfigError("--strengths: give at least one strength, e.g. --strengths 0,1,2,4")
    return sorted(set(float(s) for s in strengths))


class LatentEdit:
    """PopSteer's additive edit of ``latents`` with signed ``weights`` (+: niche latent raised, -: popular latent
    lowered), in units of each latent's standard deviation ``sd``."""

    def __init__(self, sae, latents: Sequence[int], weights: Sequence[float], sd: torch.Tensor):
        self.latents = torch.as_tensor(list(latents), dtype=torch.long)
        self.weights = torch.as_tensor(list(weights), dtype=torch.float32)
        self.step = self.weights.abs() * sd[self.latents]
        self.raise_ = self.weights > 0
        self.decoder = sae.W_dec.detach()[self.latents].float()

    def apply(self, reps: torch.Tensor, codes: torch.Tensor, strength: float) -> torch.Tensor:
        z = codes[:, self.latents]
        lowered = (z - strength * self.step).clamp_min(0)
        new = torch.where(self.raise_, z + strength * self.step, lowered)
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


def _masked_scores(target: ProbeTarget, reps: torch.Tensor, batch, seen: torch.Tensor) -> torch.Tensor:
    return target.score(reps, batch).float().masked_fill(seen, -torch.inf)


def _average(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    return {key: None if any(r[key] is None for r in rows) else float(np.mean([r[key] for r in rows]))
            for key in rows[0]}


@torch.no_grad()
def debias_sweep(target: ProbeTarget, sae, split: Split, cases: CaseSet | None, *,
                 selections: Sequence[str] = SELECTIONS, strengths: Sequence[float] = STRENGTHS,
                 ipr_alphas: Sequence[float] = IPR_ALPHAS, calibration_lambdas: Sequence[float] = CALIBRATION_LAMBDAS,
                 n_latents: int = N_LATENTS, seeds: int = SEEDS, batch_size: int = 512) -> dict[str, Any]:
    """Run every method at every strength over all test users; one row per (method, selection, strength)."""
    started = time.perf_counter()
    strengths = check_strengths(strengths)
    for selection in selections:
        if selection not in SELECTIONS:
            raise unknown_name("latent selection", selection, list(SELECTIONS))
    groups = PopularityGroups.of(split)
    users = np.arange(split.n_users)
    batch_of = phase_batches(split, "test", target.max_history)
    reps = torch.cat([target.represent(batch_of(users[s:s + batch_size])).float()
                      for s in range(0, len(users), batch_size)])
    codes = torch.cat([dense_codes(sae, reps[s:s + batch_size]) for s in range(0, len(users), batch_size)])
    sd = codes.std(0)
    eligible = np.flatnonzero(((codes > 0).sum(0) >= MIN_ACTIVE).numpy())

    edits: dict[str, tuple[LatentEdit, list[LatentEdit]]] = {}
    chosen: dict[str, list[dict]] = {}
    for selection in selections:
        edit, chosen[selection] = sae_edit(sae, select_latents(selection, target, sae, split, cases), n_latents, sd)
        edits[selection] = (edit, random_edits(sae, edit, eligible, seeds, sd))

    popularity = torch.from_numpy(groups.popularity).float()
    item_group = torch.from_numpy(groups.item_group)
    offsets, items = split.sequences("test")
    exclusions = split.exclusions("test")
    configs: list[tuple[str, str | None, float]] = [
        *((m, sel, s) for sel in selections for m in ("sae", "random") for s in strengths),
        *(("ipr", None, a) for a in ipr_alphas), *(("calibration", None, lam) for lam in calibration_lambdas)]
    tops: dict[tuple[str, str | None, float, int], list[torch.Tensor]] = {}

    def keep(key, top):
        tops.setdefault(key, []).append(top)

    for start in range(0, len(users), batch_size):
        chunk = users[start:start + batch_size]
        batch, seen = batch_of(chunk), exclusion_mask(*exclusions, chunk, split.n_items)
        x, z = reps[start:start + batch_size], codes[start:start + batch_size]

        base = _masked_scores(target, x, batch, seen)
        shares = groups.history_shares(offsets, items, chunk)
        for method, selection, strength in configs:
            if method == "ipr":
                keep((method, None, strength, 0), ipr_scores(base, popularity, strength).topk(BEYOND_K, 1).indices)
            elif method == "calibration":
                keep((method, None, strength, 0), calibrated_top(base, item_group, shares, strength, BEYOND_K))
            else:
                sae_edit_, randoms = edits[selection]
                for seed, edit in enumerate([sae_edit_] if method == "sae" else randoms):
                    scores = base if strength == 0 else _masked_scores(target, edit.apply(x, z, strength), batch, seen)
                    keep((method, selection, strength, seed), scores.topk(BEYOND_K, 1).indices)

    targets = split.test_items
    rows = []
    for method, selection, strength in configs:
        measured = []
        for (m, sel, s, _), parts in tops.items():
            if (m, sel, s) == (method, selection, strength):
                top = torch.cat(parts).numpy()
                hit = top == targets[:, None]
                ranks = np.where(hit.any(1), hit.argmax(1) + 1, BEYOND_K + 1)
                measured.append(beyond_metrics(top, ranks, targets, users, groups))
        rows.append({"method": method, "selection": selection, "strength": strength, **_average(measured)})
    return {"k": BEYOND_K, "n_latents": n_latents, "seeds": seeds, "strengths": strengths,
            "ipr_alphas": list(ipr_alphas), "calibration_lambdas": list(calibration_lambdas),
            "latents": chosen, "rows": rows, "seconds": time.perf_counter() - started}
