"""How many directions a run's activations really use, beside how many SAE latents stay alive on them.

    python benchmarks/activation_spectrum.py runs/ml-100k-bprmf runs/ml-100k-lightgcn ...

One markdown row per run (captured, with a trained SAE): the train vectors, the participation ratio of the
centred activations' variance spectrum ((sum of eigenvalues)^2 / sum of squared eigenvalues: the effective
number of dimensions), how many principal directions hold 90% and 99% of the variance, and the SAE's dead
fraction. An SAE with 1,024 latents over activations that vary along a handful of directions has little use
for most latents, and AuxK cannot make it use them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from recprobe.activations.store import ActivationStore

SAMPLE = 100_000


def row(run: Path) -> str:
    store = ActivationStore(run / "activations")
    parts, n = [], 0
    for x in store.batches("train", SAMPLE, torch.Generator().manual_seed(0)):
        parts.append(x.double())
        n += len(x)
        if n >= SAMPLE:
            break
    x = torch.cat(parts)[:SAMPLE]
    variance = torch.linalg.svdvals(x - x.mean(0)).pow(2)
    share = variance / variance.sum()
    cumulative = share.cumsum(0)
    config = json.loads((run / "recommender" / "config.json").read_text())
    dead = json.loads((run / "sae" / "metrics.json").read_text())["after"]["reconstruction_train"]["dead_fraction"]
    cells = [f"{config['model']} / {config['dataset']['name']}", f"{store.n_rows('train'):,}", str(store.d),
             f"{1 / share.pow(2).sum():.1f}", str(int((cumulative < 0.9).sum()) + 1),
             str(int((cumulative < 0.99).sum()) + 1), f"{dead:.1%}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    print("| model / data | train vectors | width | participation ratio | directions for 90% of variance "
          "| for 99% | SAE dead latents |")
    print("|" + "---|" * 7)
    for run in sys.argv[1:]:
        print(row(Path(run)))


if __name__ == "__main__":
    main()
