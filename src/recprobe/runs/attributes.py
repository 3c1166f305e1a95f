"""Attribute AUROC of a run (``<run>/concepts/attributes.json``): for every item and user attribute value, and
the case's last item itself (``last item: <title> [<raw id>]``, the 100 most frequent), the best direction of five
bases on the same cases:

- ``sae``: the SAE's latents, as they fire (0 where TopK did not pick them);
- ``sae_encoder``: the same latents before TopK and ReLU (the encoder's dense linear read-out), which shows
  whether a label has a direction in the SAE's dictionary even where the sparse latent fires too rarely to
  rank every case;
- ``raw``: the representation's dimensions, both signs as separate directions;
- ``untrained``: the SAE as training starts (seeded weights), fired the same way: the control for ``sae``;
- ``untrained_encoder``: its encoder read-out, the control for ``sae_encoder`` (as many random directions: the
  best of 1,024 directions beats the best of 128 by chance alone).

Above ``MAX_CASES`` cases, every basis is measured on the same seeded sample of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recprobe.batches import position_batches
from recprobe.concepts.attributes import (
    auroc_matrix,
    best_per_label,
    item_identity,
    item_labels,
    item_names,
    last_items,
    mean_best_by_attribute,
    scorable,
    sparse_auroc,
    two_sided,
    user_labels,
)
from recprobe.concepts.cases import CaseSet, case_rows
from recprobe.runs.run import Run
from recprobe.sae.train import initial_sae

BASES = ("sae", "sae_encoder", "raw", "untrained", "untrained_encoder")
LAST_ITEM = "last item"  # the labels naming the case's most recent item itself (the 100 most frequent)
HEATMAP_LATENTS = 12
MAX_CASES = 20_000  # dense bases rank [cases, directions]; an AUROC from 20,000 cases is precise to about 0.005
ENCODE_BATCH = 1024  # cases the untrained SAE encodes at a time: [1024, n_latents] pre-activations
READ_OUT_CHUNK = 512  # latents read out and ranked at a time: [cases, 512] float64 ranks, whatever the SAE's width


@torch.no_grad()
def case_representations(run: Run, cases: CaseSet, batch_size: int = 1024) -> np.ndarray:
    """[n_cases, d] the target's representation at each case (cases from before positions were recorded are
    test cases)."""
    target, split = run.target, run.split
    positions = cases.positions if cases.positions is not None else case_rows(split, "test", target.max_history).rows()[1]
    out = np.empty((len(cases), target.d_model), dtype=np.float32)  # filled in place, batch by batch
    for start, batch in zip(range(0, len(cases), batch_size),
                            position_batches(split, cases.users, positions, target.max_history, batch_size), strict=True):
        out[start:start + len(batch)] = target.represent(batch).float().numpy()
    return out


@torch.no_grad()
def read_out(sae, reps: torch.Tensor, latents: slice = slice(None)) -> np.ndarray:
    """[n, n_latents] the encoder's linear pre-activations (of ``latents`` only, when given): before ReLU and TopK."""
    return ((reps - sae.b_dec) @ sae.W_enc[:, latents] + sae.b_enc[latents]).numpy()


def read_out_auroc(sae, reps: torch.Tensor, labels: np.ndarray, chunk: int = READ_OUT_CHUNK) -> np.ndarray:
    """``auroc_matrix`` of ``read_out``, ``chunk`` latents at a time: each column is ranked on its own, so the
    result is the same, and memory holds [cases, chunk] scores and ranks, not [cases, n_latents] (2.6 GB of
    ranks for 8,192 latents on 20,000 cases)."""
    return np.concatenate([auroc_matrix(read_out(sae, reps, slice(start, start + chunk)), labels)
                           for start in range(0, sae.n_latents, chunk)])


def raw_direction(direction: int, d: int) -> str:
    return f"+{direction}" if direction < d else f"-{direction - d}"


@torch.no_grad()
def attribute_metrics(run: Run, cases: CaseSet, reps: np.ndarray | None = None) -> dict[str, Any]:
    """Per label, each basis's best direction and its AUROC; per attribute and basis, the mean of the best
    AUROCs; and the SAE AUROCs of the latents that are best for the most labels (the report's heat map)."""
    split, sae = run.split, run.sae()
    total = cases.n_cases
    measured = cases.uniform_rows()  # with a budget, the uniform sample (not each latent's strongest cases)
    if len(measured) > MAX_CASES:
        measured = np.sort(np.random.default_rng(0).choice(measured, MAX_CASES, replace=False))
    cases, reps = cases.subset(measured), reps[measured] if reps is not None else None
    value_names, values_held = item_labels(cases.history, cases.predicted, split.catalog)
    last_names, last = item_identity(last_items(cases.history),
                                     [f"{LAST_ITEM}: {name}" for name in item_names(split.catalog, split.item_ids)])
    user_names, user = user_labels(cases.users, split.user_attributes)
    names, labels = value_names + last_names + user_names, np.concatenate([values_held, last, user], axis=1)
    keep = scorable(labels)
    names, labels = [n for n, k in zip(names, keep, strict=True) if k], labels[:, keep]
    if not names:
        return {"labels": 0, "cases": total}
    reps = torch.from_numpy(reps if reps is not None else case_representations(run, cases))
    untrained = initial_sae(run.activations(), sae.config).eval()
    values, indices = (torch.cat(part) for part in zip(*map(untrained.encode, reps.split(ENCODE_BATCH)), strict=True))
    auc = {"sae": sparse_auroc(cases.values, cases.indices, sae.n_latents, labels),
           "sae_encoder": read_out_auroc(sae, reps, labels),
           "raw": auroc_matrix(two_sided(reps.numpy()), labels),
           "untrained": sparse_auroc(values.numpy(), indices.numpy(), sae.n_latents, labels),
           "untrained_encoder": read_out_auroc(untrained, reps, labels)}
    best = {basis: best_per_label(auc[basis], names) for basis in BASES}
    rows = []
    for j, name in enumerate(names):
        row: dict[str, Any] = {"label": name, "cases": int(labels[:, j].sum())}
        for basis in BASES:
            found = next(b for b in best[basis] if b["label"] == name)
            direction = raw_direction(found["direction"], reps.shape[1]) if basis == "raw" else found["direction"]
            row[basis] = {"direction": direction, "auroc": round(found["auroc"], 4)}
        rows.append(row)
    wins = np.bincount([row["sae"]["direction"] for row in rows], minlength=sae.n_latents)
    winners = np.flatnonzero(wins)  # latents best for some label: most labels first, then highest AUROC
    top = winners[np.lexsort((-np.nanmax(auc["sae"][winners], axis=1), -wins[winners]))][:HEATMAP_LATENTS].tolist()
    return {"cases": total, "measured_on": len(cases), "labels": len(names), "bases": list(BASES),
            "mean_best_auroc": {basis: mean_best_by_attribute(best[basis]) for basis in BASES},
            "per_label": rows,
            "heatmap": {"latents": top, "labels": names,
                        "auroc": [[round(float(a), 4) for a in auc["sae"][j]] for j in top]}}
