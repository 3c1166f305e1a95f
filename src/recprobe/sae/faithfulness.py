"""Faithfulness of an SAE (paper Tables 3 and 6): how well it reconstructs the activations, and how much of the
recommender survives when the reconstruction replaces the representation before scoring (evaluation only).

Spliced HR@10 alone is weak evidence: a representation replaced by its mean keeps whatever the scorer does
without it, and an SAE at random initialisation already keeps much of HR@10. So, as the SAE field measures
(SAEBench's "loss recovered"), ``splice_effects`` places the spliced model between the original (1) and the
mean-ablated one (0), for NDCG@10 and for the full-softmax loss of the held-out item, and counts how much of
each user's original top 10 the spliced model keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.activations.store import ActivationStore
from recprobe.batches import phase_batches
from recprobe.data.split import Phase, Split
from recprobe.ranking.metrics import (
    evaluate_ranking,
    metrics_from_ranks,
    scored_chunks,
    seen_items,
    target_ranks,
)
from recprobe.target import ProbeTarget
from recprobe.topk import top_k

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
    for x in store.batches(split, batch_size, device=device):
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


TOP = 10


@torch.no_grad()
def store_mean(store: ActivationStore, part: str = "train", batch_size: int = 4096) -> torch.Tensor:
    """[d] the mean stored activation of ``part``: what mean ablation puts in place of every representation."""
    total, n = torch.zeros(store.d, dtype=torch.float64), 0
    for x in store.batches(part, batch_size):
        total += x.double().sum(0)
        n += len(x)
    return (total / max(n, 1)).float()


def recovered(value: float, original: float, ablated: float) -> float | None:
    """Where ``value`` lies from the mean-ablated model (0) to the original (1); None when they coincide."""
    return (value - ablated) / (original - ablated) if abs(original - ablated) > 1e-12 else None


@torch.no_grad()
def splice_effects(target: ProbeTarget, sae, split: Split, mean: torch.Tensor, phase: Phase = "test", *,
                   batch_size: int = 1024) -> dict[str, float | None]:
    """NDCG@10 and the full-softmax loss of the held-out item (seen items masked) for the original model, with
    the SAE spliced in, and with the representation replaced by ``mean``; the share of each recovered by the
    splice; and the mean share of each user's original top 10 that the spliced model keeps."""
    batch_of = phase_batches(split, phase, target.max_history)
    targets, exclusions = split.targets(phase), split.exclusions(phase)
    ranks = {name: torch.empty(len(targets), dtype=torch.long) for name in ("original", "spliced", "mean")}
    losses = {name: 0.0 for name in ranks}
    overlap = 0.0
    for users in scored_chunks(np.arange(len(targets)), batch_size, split.n_items):
        batch, mask = batch_of(users), seen_items(*exclusions, users)
        item = torch.from_numpy(targets[users])
        reps = target.represent(batch)
        variants = {"original": reps, "spliced": sae.reconstruct(reps.float()).to(reps.dtype),
                    "mean": mean.to(reps.dtype).expand_as(reps)}
        tops = {}
        for name, rep in variants.items():
            scores = target.score(rep, batch).float()
            ranks[name][users] = target_ranks(scores, item, mask)  # masks the seen items in place
            losses[name] += float((scores.logsumexp(1) - scores.gather(1, item[:, None])[:, 0]).sum())
            tops[name] = top_k(scores, TOP)[1]
        overlap += float((tops["original"][:, :, None] == tops["spliced"][:, None, :]).any(2).sum()) / TOP
    ndcg = {name: metrics_from_ranks(r, (TOP,))[f"NDCG@{TOP}"] for name, r in ranks.items()}
    loss = {name: total / len(targets) for name, total in losses.items()}
    return {**{f"NDCG@10_{name}": value for name, value in ndcg.items()},
            **{f"loss_{name}": value for name, value in loss.items()},
            "NDCG@10_recovered": recovered(ndcg["spliced"], ndcg["original"], ndcg["mean"]),
            "loss_recovered": recovered(-loss["spliced"], -loss["original"], -loss["mean"]),
            "top10_overlap": overlap / len(targets)}


def faithfulness(target: ProbeTarget, sae, split: Split, store: ActivationStore) -> dict[str, dict[str, float]]:
    """Reconstruction on each stored split, dev/test ranking of the original model and with the SAE spliced in,
    and the splice's effects on the test ranking against mean ablation (``splice_effects``)."""
    report: dict[str, dict[str, float]] = {}
    for part in store.splits():
        report[f"reconstruction_{part}"] = reconstruction_metrics(sae, store, part)
    for phase in ("dev", "test"):
        report[f"original_{phase}"] = ranking(target, split, phase)
        report[f"spliced_{phase}"] = ranking(target, split, phase, sae=sae)
    report["splice_test"] = splice_effects(target, sae, split, store_mean(store))
    return report
