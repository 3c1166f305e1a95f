"""Faithfulness of an SAE (paper Tables 3 and 6): how well it reconstructs the activations, and how much of the
recommender survives when the reconstruction replaces the representation before scoring (evaluation only)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from recprobe.batches import phase_batches
from recprobe.data.split import Phase, Split
from recprobe.metrics import evaluate_ranking
from recprobe.store import ActivationStore
from recprobe.target import ProbeTarget

DENSE_RATE = 0.1  # a latent firing on more than 10% of vectors counts as dense


@torch.no_grad()
def reconstruction_metrics(sae, store: ActivationStore, split: str, *, batch_size: int = 4096,
                           device: str | torch.device = "cpu") -> dict[str, float]:
    """MSE (per element), FVU (squared error over total variance around the split's mean), L0 (latents fired
    per vector), and the fractions of latents that never fire (dead) or fire on > 10% of vectors (dense)."""
    was_training = sae.training
    sae.eval()
    n, sse, total, square = 0, 0.0, torch.zeros(store.d, dtype=torch.float64), 0.0
    fires = torch.zeros(sae.n_latents, dtype=torch.long)
    for x in store.batches(split, batch_size):
        x = x.to(device)
        values, indices = sae.encode(x)
        sse += float((x - sae.decode(values, indices)).double().pow(2).sum())
        total += x.double().sum(0).cpu()
        square += float(x.double().pow(2).sum())
        fired = indices[values > 0]
        fires += torch.bincount(fired.cpu(), minlength=sae.n_latents)
        n += len(x)
    sae.train(was_training)
    variance = square - float(total.pow(2).sum()) / n
    rate = fires.float() / n
    return {
        "mse": sse / (n * store.d), "fvu": sse / max(variance, 1e-12), "l0": float(fires.sum()) / n,
        "dead_fraction": float((fires == 0).float().mean()), "dense_fraction": float((rate > DENSE_RATE).float().mean()),
        "vectors": n,
    }


@torch.no_grad()
def ranking(target: ProbeTarget, split: Split, phase: Phase, *, sae=None, ks: Sequence[int] = (10, 20),
            batch_size: int = 1024) -> dict[str, float]:
    """Full-ranking HR/NDCG of ``target`` at ``phase``; with ``sae``, the representation is replaced by its
    reconstruction before scoring."""
    batch_of = phase_batches(split, phase, target.max_history)

    def score(users):
        batch = batch_of(users)
        reps = target.represent(batch)
        if sae is not None:
            reps = sae.reconstruct(reps.float()).to(reps.dtype)
        return target.score(reps, batch)

    return evaluate_ranking(score, split.targets(phase), split.exclusions(phase), split.n_items, ks=ks,
                            batch_size=batch_size)


def faithfulness(target: ProbeTarget, sae, split: Split, store: ActivationStore) -> dict[str, dict[str, float]]:
    """Reconstruction on each stored split, and dev/test ranking of the original model and with the SAE spliced in."""
    report: dict[str, dict[str, float]] = {}
    for part in store.splits():
        report[f"reconstruction_{part}"] = reconstruction_metrics(sae, store, part)
    for phase in ("dev", "test"):
        report[f"original_{phase}"] = ranking(target, split, phase)
        report[f"spliced_{phase}"] = ranking(target, split, phase, sae=sae)
    return report
