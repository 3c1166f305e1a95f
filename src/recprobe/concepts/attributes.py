"""Label-grounded concept metrics, no LLM (Klenitskiy et al. 2025; SAEBench's sparse probing): for every
direction of a basis and every label, the ROC-AUC of the direction's activation over all cases for the label.

Labels are item attribute values present in the case's history or prediction (``genre: Comedy``,
``release_year: 1990-1999``) and the case's user's own attributes (``gender: F``, ``age: 25``). Integer-valued
attributes with more than ``MAX_VALUES`` distinct values are cut into decades; any other attribute with more
(tags) keeps its ``MAX_VALUES`` most frequent values. Bases: SAE latents (sparse: a
latent is 0 where it did not fire), the raw dimensions (both signs, as separate directions), an untrained SAE
of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recprobe.data.split import Catalog
from recprobe.stats import average_ranks

MIN_POSITIVES = 10  # a label present in fewer cases (or absent from fewer) is not scored
MAX_VALUES = 30  # an attribute with more distinct values (after decades) is scored on its most frequent ones
ITEM_LABELS = 100  # item-identity labels: this many of the most frequent items


def is_integer(value: str) -> bool:
    return value.lstrip("-").isdigit()


def bucketed(values: Sequence[str]) -> list[str]:
    """Integer values cut into decades (``1990-1999``) when there are more than ``MAX_VALUES`` distinct ones;
    other values (``unknown``) as given."""
    if len({v for v in values if is_integer(v)}) <= MAX_VALUES:
        return list(values)
    return [f"{int(v) // 10 * 10}-{int(v) // 10 * 10 + 9}" if is_integer(v) else v for v in values]


def one_hot(values: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct non-empty values (the ``MAX_VALUES`` most frequent, when there are more) and a
    [len(values), n_kept] bool matrix."""
    counts = pd.Series([v for v in values if v], dtype=object).value_counts()
    names = sorted(counts.index[:MAX_VALUES]) if len(counts) > MAX_VALUES else sorted(counts.index)
    column = {v: j for j, v in enumerate(names)}
    out = np.zeros((len(values), len(names)), dtype=bool)
    for row, v in enumerate(values):
        if v in column:
            out[row, column[v]] = True
    return names, out


def item_value_matrix(catalog: Catalog) -> tuple[list[str], np.ndarray]:
    """Every item attribute value as ``name: value`` and the [n_items, n_labels] bool matrix of which items
    carry it."""
    names, columns = [], []
    for attribute in sorted({name for attrs in catalog.attributes for name in attrs}):
        per_value = [attrs.get(attribute, []) for attrs in catalog.attributes]
        flat = bucketed([v for vs in per_value for v in vs])
        rows = np.repeat(np.arange(len(per_value)), [len(vs) for vs in per_value])
        values, hot = one_hot(flat)
        per_item = np.zeros((len(catalog), len(values)), dtype=bool)
        np.logical_or.at(per_item, rows, hot)
        names += [f"{attribute}: {v}" for v in values]
        columns.append(per_item)
    return names, np.concatenate(columns, axis=1) if columns else np.zeros((len(catalog), 0), dtype=bool)


def items_carry(items: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    """[n, n_labels] whether any of each row's items (``items`` [n] or [n, m], padded with -1) carries each
    label."""
    items = items[:, None] if items.ndim == 1 else items
    return np.where(items[..., None] >= 0, per_item[np.maximum(items, 0)], False).any(1)


def item_names(catalog: Catalog, item_ids: Sequence[str]) -> list[str]:
    """Each item as an item label names it, ``<title> [<raw id>]`` (titles need not be unique)."""
    return [f"{title} [{raw}]" for title, raw in zip(catalog.titles, item_ids, strict=True)]


def last_items(histories: np.ndarray) -> np.ndarray:
    """[n] each case's most recent item, from its shown history ([n, m], oldest first, padded at the end with -1)."""
    return histories[np.arange(len(histories)), np.maximum((histories >= 0).sum(1) - 1, 0)]


def item_identity(items: np.ndarray, names: Sequence[str], top: int = ITEM_LABELS) -> tuple[list[str], np.ndarray]:
    """The item itself as a label: the ``top`` most frequent of ``items`` [n] (-1: none), by ``names`` (one per
    item), and the [n, top] bool matrix of which row is which."""
    counts = np.bincount(items[items >= 0], minlength=len(names))
    chosen = np.argsort(-counts, kind="stable")[:min(top, int((counts > 0).sum()))]
    return [names[i] for i in chosen], items[:, None] == chosen[None, :]


def item_labels(histories: np.ndarray, predicted: np.ndarray, catalog: Catalog) -> tuple[list[str], np.ndarray]:
    """Every item attribute value as ``name: value`` and a [n_cases, n_labels] bool matrix: present among the
    case's history items (padded with -1) or its predicted item."""
    names, per_item = item_value_matrix(catalog)
    return names, items_carry(np.concatenate([histories, predicted[:, None]], axis=1), per_item)


def user_labels(users: np.ndarray, user_attributes: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Every user attribute value as ``name: value`` and a [n_cases, n_labels] bool matrix for the cases' users."""
    names, columns = [], []
    for attribute, per_user in sorted(user_attributes.items()):
        values, hot = one_hot(bucketed([str(v) for v in per_user]))
        names += [f"{attribute}: {v}" for v in values]
        columns.append(hot[users])
    return names, np.concatenate(columns, axis=1) if columns else np.zeros((len(users), 0), dtype=bool)


def scorable(labels: np.ndarray) -> np.ndarray:
    positives = labels.sum(0)
    return (positives >= MIN_POSITIVES) & (len(labels) - positives >= MIN_POSITIVES)


def auroc_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[n_directions, n_labels] ROC-AUC of each score column for each label column (ties count half), by the
    rank-sum formula; NaN where a label has too few positives or negatives. The reference for ``sparse_auroc``."""
    ranks = average_ranks(scores)
    positives = labels.sum(0).astype(float)
    negatives = len(labels) - positives
    rank_sums = ranks.T @ labels.astype(float)
    auc = (rank_sums - positives * (positives + 1) / 2) / np.maximum(positives * negatives, 1)
    return np.where(scorable(labels)[None, :], auc, np.nan)


def sparse_auroc(values: np.ndarray, indices: np.ndarray, n_latents: int, labels: np.ndarray) -> np.ndarray:
    """``auroc_matrix`` of the dense [n_cases, n_latents] activations that TopK's (values, indices) stand for,
    without building them: the cases where a latent is silent share one rank, so only the cases where it fired
    are ranked."""
    n = len(labels)
    positives = labels.sum(0).astype(float)
    fired = values > 0
    rows = np.broadcast_to(np.arange(n)[:, None], values.shape)[fired]
    latents, activations = indices[fired], values[fired]
    order = np.argsort(latents, kind="stable")
    rows, latents, activations = rows[order], latents[order], activations[order]
    bounds = np.searchsorted(latents, np.arange(n_latents + 1))
    auc = np.empty((n_latents, labels.shape[1]))
    for latent in range(n_latents):
        active = slice(bounds[latent], bounds[latent + 1])
        silent = n - (bounds[latent + 1] - bounds[latent])
        ranks = silent + average_ranks(activations[active])
        hit = labels[rows[active]]
        rank_sums = ranks @ hit + (positives - hit.sum(0)) * (silent + 1) / 2
        auc[latent] = (rank_sums - positives * (positives + 1) / 2) / np.maximum(positives * (n - positives), 1)
    return np.where(scorable(labels)[None, :], auc, np.nan)


def best_per_label(auc: np.ndarray, names: Sequence[str]) -> list[dict]:
    """For each scorable label: the direction with the highest AUROC and that AUROC."""
    out = []
    for j, name in enumerate(names):
        if np.isnan(auc[:, j]).all():
            continue
        best = int(np.nanargmax(auc[:, j]))
        out.append({"label": name, "direction": best, "auroc": float(auc[best, j])})
    return out


def two_sided(x: np.ndarray) -> np.ndarray:
    """The raw dimensions as directions both ways: [n, 2d] = [x, -x] (direction d + j is dimension j negated)."""
    return np.concatenate([x, -x], axis=1)


def mean_best_by_attribute(best: list[dict]) -> dict[str, float]:
    """attribute -> the mean over its values of the best direction's AUROC."""
    by_attribute: dict[str, list[float]] = {}
    for entry in best:
        by_attribute.setdefault(entry["label"].split(": ", 1)[0], []).append(entry["auroc"])
    return {attribute: float(np.mean(aurocs)) for attribute, aurocs in sorted(by_attribute.items())}
