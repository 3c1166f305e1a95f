"""Bar (c) on the item itself with more sampled cases than ``recprobe compare`` takes by default.

    recprobe train-sae --run RUN --seeds 5          # the ladder, as for compare
    python benchmarks/item_hard_negatives.py RUN --max-cases 40000

``hard_negatives/current-item-hard`` as ``compare`` measures it (the same bases, seeds, held-out users and
summary: each trained architecture minus the best of every control, per seed, with its 95% interval), and
nothing else: on a large catalog each item is the current one of few held-out users among 10,000 cases, so
most item labels go unscored there, while ``compare --max-cases 40000`` spends its time on probing, not here.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recprobe.concepts.cases import SAMPLED_CASES
from recprobe.concepts.probing import held_out_users
from recprobe.runs.compare import (
    MIN_SCORED_LABELS,
    bases_for_seed,
    hard_negatives,
    headline,
    sample_cases,
    scored_mean,
    summarise,
)
from recprobe.runs.ladder import trained_rungs
from recprobe.runs.run import open_run

METRIC = "hard_negatives/current-item-hard"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--max-cases", type=int, default=SAMPLED_CASES, help="cases sampled once and shared by every basis")
    args = parser.parse_args()
    started = time.perf_counter()
    run = open_run(args.run)
    cases = sample_cases(run, args.max_cases)
    _, labels = cases.labels["current-item"]
    rungs = trained_rungs(run.layout.saes)
    per_seed, roles, scored = [], {}, []
    for seed in sorted({r.seed for r in rungs}):
        test = held_out_users(cases.users, seed=seed)
        values = {}
        for basis in bases_for_seed(run, rungs, seed):
            roles[basis.name] = (basis.role, basis.arch)
            hard, _ = hard_negatives(basis.features(cases.reps), labels, cases, test, seed)
            values[basis.name] = {METRIC: scored_mean(hard)}
            scored.append(int(np.isfinite(hard).sum()))
        per_seed.append(values)
    metrics = summarise(per_seed, roles)
    print(f"{args.run}: {len(cases.users):,} {cases.kind} cases, {labels.shape[1]} current-item labels, "
          f"{min(scored)}-{max(scored)} scored per basis and seed, {len(per_seed)} seeds, "
          f"{time.perf_counter() - started:.0f} s")
    print("| basis | mean [95% CI] |")
    print("|---|---|")
    for basis, found in metrics[METRIC].items():
        if basis not in roles:
            continue
        if found["mean"] is None:
            print(f"| {basis} | not scored: fewer than {MIN_SCORED_LABELS} labels on every seed |")
        elif found["low"] is None:
            print(f"| {basis} | {found['mean']:.3f} (one seed scored) |")
        else:
            print(f"| {basis} | {found['mean']:.3f} [{found['low']:.3f}, {found['high']:.3f}] |")
    for row in headline({"metrics": metrics, "bases": {b: {"role": r, "arch": a} for b, (r, a) in roles.items()}}):
        gap = row["gap"]
        print(f"{row['arch']} minus the best control ({row['control']}): {gap['mean']:+.3f} "
              f"[{gap['low']:+.3f}, {gap['high']:+.3f}]: {row['verdict']}")


if __name__ == "__main__":
    main()
