"""Print the faithfulness rows of docs/results.md from run folders trained with `recprobe train-sae`.

    python benchmarks/faithfulness_table.py runs/ml-100k-sasrec runs/grocery-bprmf ...

One markdown row per run: reconstruction on the train activations (FVU, L0, dead and dense fractions) and
test HR@10 / NDCG@10 / HR@20 / NDCG@20 of the original model, with the SAE spliced in at random
initialisation, and after training (paper Tables 3 and 6), plus spliced/original HR@10.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ("HR@10", "NDCG@10", "HR@20", "NDCG@20")


def row(run: Path) -> str:
    metrics = json.loads((run / "sae" / "metrics.json").read_text())
    config = json.loads((run / "recommender" / "config.json").read_text())
    after, before = metrics["after"], metrics["before"]
    train = after["reconstruction_train"]
    original, spliced, initial = after["original_test"], after["spliced_test"], before["spliced_test"]
    cells = [f"{config['model']} / {config['dataset']['name']}", f"{train['vectors']:,}", f"{train['fvu']:.3f}",
             f"{train['l0']:.1f}", f"{train['dead_fraction']:.1%}", f"{train['dense_fraction']:.1%}"]
    cells += [f"{original[k]:.4f}: {initial[k]:.4f} -> {spliced[k]:.4f}" for k in KEYS]
    cells.append(f"{spliced['HR@10'] / original['HR@10']:.0%}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    print("| model / data | train vectors | FVU | L0 | dead | dense | " + " | ".join(
        f"{k} original: random init -> trained" for k in KEYS) + " | spliced / original HR@10 |")
    print("|" + "---|" * 11)
    for run in sys.argv[1:]:
        print(row(Path(run)))


if __name__ == "__main__":
    main()
