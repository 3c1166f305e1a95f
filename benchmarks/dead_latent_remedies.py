"""Does a known remedy for dead latents help on a run whose activations vary along few directions?

    python benchmarks/dead_latent_remedies.py runs/ml-100k-bprmf runs/ml-100k-lightgcn --epochs 500

Trains the run's SAE (s = 16, k = 8, the shipped defaults) once per remedy on the same captured activations and
prints one markdown row each: train FVU, dead fraction, and how many latents fire on at least 10 train vectors
(enough to be interpreted with N = 5). The remedies:

- ``shipped``: as ``recprobe train-sae`` trains (method.md section 4).
- ``auxk-normalised``: ``aux_scale="residual_variance"``: AuxK divided by the residual's variance, as sparsify
  and OpenAI's code do, so that the dead latents keep a signal when the reconstruction is already good
  (times the batch's variance, to keep alpha's meaning).
- ``auxk-strong``: the same with alpha = 1/4 and k_aux = 512.
- ``data-init`` (swapped in by this script only): each latent's decoder row (and encoder column) starts at a
  random train vector minus b_dec, so every latent starts out as some vector's best match.

Resampling dead latents (Bricken et al. 2023) was measured earlier and is described in docs/results.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch

from recprobe.activations.store import ActivationStore
from recprobe.sae import train as sae_train
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.faithfulness import reconstruction_metrics
from recprobe.sae.topk import TopKSAE

ENOUGH_CASES = 10


def data_initialised_sae(store: ActivationStore, config: SAEConfig, shipped=sae_train.initial_sae) -> TopKSAE:
    """The shipped start (bound before the patch replaces it), then decoder rows from train vectors."""
    sae = shipped(store, config)
    generator = torch.Generator().manual_seed(config.seed)
    sample = next(iter(store.batches("train", 65_536, generator)))  # a shuffled batch: bounded memory
    rows = sample[torch.randint(len(sample), (config.n_latents,), generator=generator)] - sae.b_dec.detach()
    rows /= rows.norm(dim=1, keepdim=True).clamp(min=1e-12)
    with torch.no_grad():
        sae.W_dec.copy_(rows)
        sae.W_enc.copy_(rows.T)
    return sae


REMEDIES: dict[str, tuple[dict, Callable]] = {
    "shipped": ({}, nullcontext),
    "auxk-normalised": ({"aux_scale": "residual_variance"}, nullcontext),
    "auxk-strong": ({"aux_scale": "residual_variance", "alpha": 0.25, "k_aux": 512}, nullcontext),
    "data-init": ({}, lambda: mock.patch.object(sae_train, "initial_sae", data_initialised_sae)),
}


def row(run: Path, remedy: str, epochs: int) -> str:
    store = ActivationStore(run / "activations")
    options, patch = REMEDIES[remedy]
    with patch():
        sae, _ = sae_train.train_sae(store, SAEConfig(d_in=store.d, scale=16, k=8, **options),
                                     SAETrainConfig(epochs=epochs), progress=False)
    fires = torch.zeros(sae.n_latents, dtype=torch.long)
    with torch.no_grad():
        for x in store.batches("train", 65_536):
            values, indices = sae.encode(x)
            fires += torch.bincount(indices[values > 0], minlength=sae.n_latents)
    train = reconstruction_metrics(sae, store, "train")
    cells = [run.name, remedy, f"{train['fvu']:.4f}", f"{train['dead_fraction']:.1%}",
             str(int((fires >= ENOUGH_CASES).sum()))]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with captured activations")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--remedies", default=",".join(REMEDIES), help="comma-separated, from: " + ", ".join(REMEDIES))
    args = parser.parse_args()
    print(f"| run | remedy | train FVU | dead | latents firing on >= {ENOUGH_CASES} vectors |")
    print("|" + "---|" * 5)
    for run in args.runs:
        for remedy in args.remedies.split(","):
            print(row(run, remedy, args.epochs), flush=True)


if __name__ == "__main__":
    main()
