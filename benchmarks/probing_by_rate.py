"""Does sparse probing favour the SAE on rare labels, or on its encoder's dense pre-activations?

    recprobe train-sae --run RUN --seeds 5 [--arch topk,batchtopk,matryoshka]    # the ladder, as for compare
    python benchmarks/probing_by_rate.py RUN [--seeds 3] [--features latents|pre-activations]

``recprobe compare`` averages k-sparse probing AUROC over every label of a family. This splits the narrow
families (``current``, ``next``, ``predicted``) and ``history`` by how often a label holds among the cases (under
2%, 2-5%, 5-15%, 15% and over), on the same cases and held-out users as ``compare``, at k = 1, 2 and 4, and prints
per bucket each trained architecture's mean over seeds beside the best control's (raw dimensions, untrained,
frozen decoder, frozen encoder). With ``--features pre-activations`` every SAE-shaped basis is read before its
top-k (``(x - b_dec) W_enc + b_enc`` through ReLU, dense): whether the directions the encoder learned read a
label better than random directions do, once sparsity is out of the way.
"""

from __future__ import annotations

import argparse

import numpy as np

import recprobe.runs.compare as compare
from recprobe.concepts.probing import held_out_users, k_sparse_probe
from recprobe.runs.ladder import trained_rungs
from recprobe.runs.run import open_run

FAMILIES = ("current", "next", "predicted", "history")
RATES = (0.0, 0.02, 0.05, 0.15, 1.0)
KS = (1, 2, 4)


def pre_activation_basis(name: str, arch: str, role: str, sae) -> compare.Basis:
    return compare.Basis(name, arch, role, lambda reps: sae.pre_acts(reps).detach().numpy(), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--seeds", type=int, default=3, help="the ladder's first seeds to read")
    parser.add_argument("--features", choices=("latents", "pre-activations"), default="latents")
    args = parser.parse_args()
    if args.features == "pre-activations":
        compare.sae_basis = pre_activation_basis  # every SAE-shaped basis, trained or control, read the same way
    run = open_run(args.run)
    cases = compare.sample_cases(run)
    rungs = trained_rungs(run.layout.saes)
    auroc: dict[tuple[str, int, str], list[np.ndarray]] = {}  # (family, k, basis) -> per seed [labels]
    roles: dict[str, str] = {}
    for seed in range(args.seeds):
        test = held_out_users(cases.users, seed=seed)
        for basis in compare.bases_for_seed(run, rungs, seed):
            roles[basis.name] = basis.role
            features = basis.features(cases.reps)
            for family in FAMILIES:
                for k, values in k_sparse_probe(features, cases.labels[family][1], test, KS).items():
                    auroc.setdefault((family, k, basis.name), []).append(values)
    print(f"{args.run}: {len(cases.users):,} {cases.kind} cases, seeds 0-{args.seeds - 1}, SAE bases read as "
          f"{args.features}; mean AUROC per label bucket (labels in it)")
    print("| labels | share of cases | k | trained (per architecture) | best control | trained - best control |")
    print("|---|---|---|---|---|---|")
    for family in FAMILIES:
        share = cases.labels[family][1].mean(0)
        for low, high in zip(RATES, RATES[1:], strict=False):
            bucket = (share >= low) & (share < high)
            if not bucket.any():
                continue
            for k in KS:
                means = {name: float(np.nanmean(np.stack(auroc[(family, k, name)])[:, bucket])) for name in roles}
                trained = {name: v for name, v in means.items() if roles[name] == "trained"}
                control = max((n for n in means if roles[n] == "control"), key=means.get)
                best = max(trained.values())
                print(f"| {family} | {low:.0%}-{high:.0%} ({bucket.sum()}) | {k} | "
                      f"{', '.join(f'{n} {v:.3f}' for n, v in trained.items())} | {control} {means[control]:.3f} | "
                      f"{best - means[control]:+.3f} |")


if __name__ == "__main__":
    main()
