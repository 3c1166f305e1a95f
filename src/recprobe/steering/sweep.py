"""The de-biasing sweep: every method over a range of strengths, measured by the same ranking code, as one table
of accuracy and beyond-accuracy metrics (an accuracy / popularity-bias curve per method).

The methods (``recprobe.steering.methods``; strength 0 is the unedited model for each):

- ``sae`` with a selection rule (``recprobe.steering.debias.SELECTIONS``): PopSteer's edit of the ``n_latents``
  latents with the largest |score| (``methods.latents``);
- ``random`` with the same rule: the same edit on latents drawn uniformly (seeded) among the other latents firing
  on at least ``MIN_ACTIVE`` test users; the control, averaged over ``seeds`` draws;
- ``ipr``: inverse-popularity re-ranking with alpha = strength (``methods.ipr``);
- ``calibration``: P-Calibration with lam = strength (``methods.calibration``).

Each test user's representation, SAE code and masked scores are computed once per batch (``SweptBatch``) and
reused by every method and strength. Every method that scores all items is ranked by
``recprobe.ranking.metrics.ranks_and_top``, the code behind `recprobe evaluate` (seen items masked, ties against the
target), so the unedited rows match its HR@10, NDCG@10 and beyond-accuracy metrics exactly. Every metric is a
running sum (``recprobe.ranking.beyond.BeyondSums``), so memory does not grow with the users.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Split
from recprobe.errors import ConfigError, unknown_name
from recprobe.progress import stage_bar
from recprobe.ranking.beyond import BEYOND_K, BeyondSums, PopularityGroups
from recprobe.ranking.metrics import SeenItems, ranks_and_top
from recprobe.steering.debias import MIN_ACTIVE, SELECTIONS, select_latents
from recprobe.steering.edit import dense_codes
from recprobe.steering.methods import Method, SweptBatch
from recprobe.steering.methods.calibration import CALIBRATION_LAMBDAS, Calibration
from recprobe.steering.methods.ipr import IPR_ALPHAS, Ipr
from recprobe.steering.methods.latents import LatentSteering, chosen_edit, random_edits
from recprobe.steering.steer import ranked_batches
from recprobe.target import ProbeTarget

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # SAE and random-latent steering, in units of sd_j
N_LATENTS = 32
SEEDS = 3


def strengths_problem(strengths: Sequence[float]) -> str | None:
    """Why these strengths cannot be swept; None when they can."""
    for strength in strengths:
        if not math.isfinite(strength) or strength < 0:
            return f"{strength} is not a finite number >= 0; give e.g. 0,1,2,4"
    return None if len(strengths) else "give at least one value, e.g. 0,1,2,4"


def check_strengths(strengths: Sequence[float], name: str = "--strengths") -> list[float]:
    """The strengths sorted and deduplicated; refused (the error names ``name``) when empty, not finite or negative."""
    if (problem := strengths_problem(strengths)) is not None:
        raise ConfigError(f"{name}: {problem}")
    return sorted(set(float(s) for s in strengths))


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
                 n_latents: int | None = None, seeds: int = SEEDS, batch_size: int = 512,
                 methods: Sequence[Method] = (), progress: bool = True) -> dict[str, Any]:
    """Run every method at every strength over all test users; one row per (method, selection, strength).
    ``n_latents``: the latents each SAE edit moves (default ``N_LATENTS``, at most half the latents that fire on
    enough users, so the random control can draw as many others). ``methods``: more methods
    (``recprobe.steering.methods.Method``), measured after the built-in ones."""
    started = time.perf_counter()
    strengths = check_strengths(strengths)
    ipr_alphas = check_strengths(ipr_alphas, "ipr_alphas")
    calibration_lambdas = check_strengths(calibration_lambdas, "calibration_lambdas")
    if calibration_lambdas[-1] > 1:
        raise ConfigError(f"calibration_lambdas: {calibration_lambdas[-1]} is above 1; lambda weighs relevance "
                          f"against calibration, give values in [0, 1]")
    if (n_latents is not None and n_latents < 1) or seeds < 1:
        raise ConfigError(f"n_latents and seeds must be at least 1, got n_latents={n_latents}, seeds={seeds}")
    for selection in selections:
        if selection not in SELECTIONS:
            raise unknown_name("latent selection", selection, list(SELECTIONS))
    extra, methods = list(methods), []
    for method in extra:  # refused before any work, as the built-in methods' strengths are
        check_strengths(method.strengths, f"{method.name}'s strengths")
    groups = PopularityGroups.of(split)
    sd, eligible = code_spread(target, sae, split, batch_size)
    if n_latents is None:
        if len(eligible) < 2:
            raise ConfigError(f"{len(eligible)} of the SAE's latents fire on at least {MIN_ACTIVE} test users: too few to "
                              "edit one and draw the random control from the rest; train a wider SAE")
        n_latents = min(N_LATENTS, len(eligible) // 2)

    chosen: dict[str, list[dict]] = {}
    for selection in selections:
        edit, chosen[selection] = chosen_edit(select_latents(selection, target, sae, split, cases), n_latents, sd)
        methods += [LatentSteering("sae", selection, sae, [edit], strengths),
                    LatentSteering("random", selection, sae, random_edits(edit, eligible, seeds, sd), strengths)]
    methods += [Ipr(torch.from_numpy(groups.popularity).float(), ipr_alphas),
                Calibration(torch.from_numpy(groups.item_group), calibration_lambdas), *extra]
    # (method, strength, draw) -> running sums of its metrics: memory independent of the users
    sums = {(i, strength, draw): BeyondSums(groups) for i, method in enumerate(methods)
            for strength in method.strengths for draw in range(method.draws)}
    offsets, items = split.sequences("test")

    def sweep_batch(users: np.ndarray, batch, seen: SeenItems) -> None:
        reps = target.represent(batch).float()
        scores = target.score(reps, batch).float()
        test_items = torch.from_numpy(split.test_items[users])
        unedited = ranks_and_top(scores, test_items, seen, BEYOND_K)  # masks ``scores`` in place
        swept = SweptBatch(target, batch, users, reps, dense_codes(sae, reps), scores, test_items, seen,
                           groups.history_shares(offsets, items, users), unedited)
        for (i, strength, draw), kept in sums.items():
            ranks, top = methods[i].rank(swept, strength, draw)
            kept.add(top.numpy(), ranks.numpy(), split.test_items[users], users)

    with stage_bar(progress) as bar:
        settings = sum(len(method.strengths) for method in methods)
        task = bar.add_task(f"de-biasing sweep ({settings} settings)", total=split.n_users, unit="users")
        for users, batch, seen in ranked_batches(target, split, np.arange(split.n_users), batch_size):
            sweep_batch(users, batch, seen)
            bar.advance(task, len(users))

    rows = [{"method": method.name, "selection": method.selection, "strength": strength,
             **_average([sums[(i, strength, draw)].metrics() for draw in range(method.draws)])}
            for i, method in enumerate(methods) for strength in method.strengths]
    return {"k": BEYOND_K, "n_latents": n_latents, "seeds": seeds, "strengths": strengths,
            "ipr_alphas": ipr_alphas, "calibration_lambdas": calibration_lambdas,
            "latents": chosen, "rows": rows, "seconds": time.perf_counter() - started}
