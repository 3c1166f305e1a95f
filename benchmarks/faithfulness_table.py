"""Print the faithfulness rows of docs/results.md from run folders trained with `recprobe train-sae`.

    python benchmarks/faithfulness_table.py runs/ml-100k-sasrec runs/grocery-bprmf ...

Two markdown tables, one row per run:

1. reconstruction on the train activations (FVU, L0, dead and dense fractions) and test HR@10 / NDCG@10 of
   the original model, with the SAE spliced in at random initialisation, and after training (paper Tables 3
   and 6), plus spliced/original HR@10;
2. against mean ablation (the representation replaced by the train activations' mean): NDCG@10 and the
   full-softmax loss recovered, and the top-10 overlap with the original, at random initialisation and after
   training. Runs whose metrics.json predates these figures get them measured now.
"""

from __future__ import annotations

import sys

from recprobe.runs import Run
from recprobe.sae.faithfulness import splice_effects, store_mean
from recprobe.sae.train import initial_sae

KEYS = ("HR@10", "NDCG@10")
SPLICE = ("NDCG@10_recovered", "loss_recovered", "top10_overlap")


def splice_rows(run: Run, metrics: dict) -> tuple[dict, dict]:
    if "splice_test" in metrics["after"]:
        return metrics["before"]["splice_test"], metrics["after"]["splice_test"]
    store, sae = run.activations(), run.sae()
    mean = store_mean(store)
    return (splice_effects(run.target, initial_sae(store, sae.config).eval(), run.split, mean),
            splice_effects(run.target, sae, run.split, mean))


def name(run: Run) -> str:
    return f"{run.record['target']['name']} / {run.split.name}"


def main() -> None:
    runs = [Run.open(path) for path in sys.argv[1:]]
    print("| model / data | train vectors | FVU | L0 | dead | dense | " + " | ".join(
        f"{k} original: random init -> trained" for k in KEYS) + " | spliced / original HR@10 |")
    print("|" + "---|" * 9)
    splices = []
    for run in runs:
        metrics = run.sae_metrics()
        after, before = metrics["after"], metrics["before"]
        train, original, spliced, initial = after["reconstruction_train"], after["original_test"], after["spliced_test"], before["spliced_test"]
        cells = [name(run), f"{train['vectors']:,}", f"{train['fvu']:.3f}", f"{train['l0']:.1f}",
                 f"{train['dead_fraction']:.1%}", f"{train['dense_fraction']:.1%}"]
        cells += [f"{original[k]:.4f}: {initial[k]:.4f} -> {spliced[k]:.4f}" for k in KEYS]
        cells.append(f"{spliced['HR@10'] / original['HR@10']:.0%}")
        print("| " + " | ".join(cells) + " |")
        splices.append((run, *splice_rows(run, metrics)))
    print()
    print("| model / data | NDCG@10 original / mean-ablated | " + " | ".join(f"{k}: random init -> trained" for k in SPLICE) + " |")
    print("|" + "---|" * 5)
    for run, before, after in splices:
        cells = [name(run), f"{after['NDCG@10_original']:.4f} / {after['NDCG@10_mean']:.4f}"]
        cells += [f"{_cell(before[k])} -> {_cell(after[k])}" for k in SPLICE]
        print("| " + " | ".join(cells) + " |")


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
