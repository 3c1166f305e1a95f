"""How a basis reads "the item at this position": one direction per item, or one shared by several?

    recprobe train-sae --run RUN --seeds 5          # the ladder, as for compare
    python benchmarks/item_latents.py RUN [--seed 0]

On the cases ``recprobe compare`` samples, each ``current-item`` label (the item at this position is that item)
gets the direction of a basis with the largest normalised mean difference, as k = 1 probing picks it. Printed per
basis (the raw dimensions, the seed's trained SAE of each architecture and its untrained control): how many
distinct directions the 100 labels pick, and the median over labels of the share of cases the direction fires on
(above 0 for a sparse latent, above its median for a raw dimension), of its item's cases it fires on (recall)
and of its firing cases that are its item's (precision).
"""

from __future__ import annotations

import argparse

import numpy as np

from recprobe.concepts.grounding import best_directions
from recprobe.runs.compare import bases_for_seed, sample_cases
from recprobe.runs.ladder import trained_rungs
from recprobe.runs.run import open_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--seed", type=int, default=0, help="the ladder's seed whose SAEs are read")
    args = parser.parse_args()
    run = open_run(args.run)
    cases = sample_cases(run)
    _, labels = cases.labels["current-item"]
    print(f"{args.run}: {len(cases.users):,} {cases.kind} cases, {labels.shape[1]} current-item labels, seed {args.seed}")
    print("| basis | distinct directions | firing share | recall | precision |")
    print("|---|---|---|---|---|")
    for basis in bases_for_seed(run, trained_rungs(run.layout.saes), args.seed):
        if basis.role == "control" and not basis.name.endswith("untrained") and basis.arch is not None:
            continue
        features = basis.features(cases.reps)
        chosen = best_directions(features, labels, np.ones(len(features), dtype=bool))
        values = features[:, chosen.columns] * chosen.signs
        fires = values > (np.median(values, axis=0) if basis.arch is None else 0)
        hits = (fires & labels).sum(0)
        print(f"| {basis.name} | {len(set(chosen.columns.tolist()))} | {np.median(fires.mean(0)):.4f} "
              f"| {np.median(hits / labels.sum(0)):.2f} | {np.median(hits / np.maximum(fires.sum(0), 1)):.2f} |")


if __name__ == "__main__":
    main()
