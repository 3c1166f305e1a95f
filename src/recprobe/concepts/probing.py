"""k-sparse probing (Gurnee et al. 2023; Kantamneni, Engels et al. 2025, "sae-probes"): can k directions of a
basis read a label on users the probe never saw?

Per label: rank the basis's directions by their normalised mean difference between positive and negative
training cases, keep the top k, fit an L2-regularised logistic regression on those k standardised columns,
and report the ROC-AUC on the held-out users' cases. The same k, users and cases for every basis, so an SAE
and its controls are compared on equal terms; with k = d on the raw dimensions it is the dense probe, the
ceiling a linear reader reaches. Per user pooled (``pool_by_user``): each user's cases averaged into one row,
a label held when any of the user's cases holds it, so a basis is asked what it knows of the user, not of one
moment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

KS = (1, 2, 4, 8, 16, 32)
L2 = 1e-2  # the ridge on standardised columns, per case (sae-probes fits scikit-learn's C around 1/(n * 1e-2))
NEWTON_STEPS = 15
LABEL_CHUNK = 16  # labels fitted together


def held_out_users(users: np.ndarray, share: float = 0.2, seed: int = 0) -> np.ndarray:
    """[n] bool: the cases whose users are held out (a seeded ``share`` of the distinct users)."""
    distinct = np.unique(users)
    rng = np.random.default_rng(seed)
    test = rng.choice(distinct, max(1, round(share * len(distinct))), replace=False)
    return np.isin(users, test)


def pool_by_user(features: np.ndarray, labels: np.ndarray, users: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per distinct user (ascending): the mean of their cases' ``features`` [n, D], the ``labels``
    [n, L] any of their cases holds, and the user."""
    distinct, row = np.unique(users, return_inverse=True)
    index = torch.from_numpy(row)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    sums = torch.zeros(len(distinct), x.shape[1]).index_add_(0, index, x)
    counts = np.bincount(row, minlength=len(distinct)).astype(np.float32)[:, None]
    held = torch.zeros(len(distinct), labels.shape[1]).index_add_(0, index, torch.from_numpy(labels.astype(np.float32)))
    return (sums.numpy() / counts), held.numpy() > 0, distinct


def mean_difference(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[n_directions, n_labels] (mean over positives - mean over negatives) / the direction's standard
    deviation; 0 for a direction that never varies."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).double()
    y = torch.from_numpy(labels.astype(np.float64))
    positives = y.sum(0).clamp(min=1)
    negatives = (len(y) - y.sum(0)).clamp(min=1)
    sum_pos = x.T @ y
    mean_pos = sum_pos / positives
    mean_neg = (x.sum(0)[:, None] - sum_pos) / negatives
    spread = x.std(0)[:, None]
    return torch.where(spread > 0, (mean_pos - mean_neg) / spread.clamp(min=1e-12), 0.0).numpy()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = L2) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched ridge logistic regression by Newton's method: ``x`` [L, k, n], per label its k standardised
    directions, one per row, ``y`` [L, n] in {0, 1}. Returns (weights [L, k], bias [L]); the bias is not penalised."""
    n_labels, k, n = x.shape
    design = torch.cat([x, x.new_ones(n_labels, 1, n)], 1)  # [L, k + 1, n]
    weighted = torch.empty_like(design)  # each step's weighted design, written in place
    hessian = x.new_empty(n_labels, k + 1, k + 1)
    theta = x.new_zeros(n_labels, k + 1)
    ridge = torch.diag(torch.cat([x.new_full((k,), l2 * n), x.new_zeros(1)])) + 1e-8 * torch.eye(k + 1)
    for _ in range(NEWTON_STEPS):
        # row-vector products and one mm per label: batched column products are 10-20x slower on CPU here
        p = torch.sigmoid(torch.bmm(theta[:, None, :], design)[:, 0])  # [L, n]
        gradient = torch.bmm((p - y)[:, None, :], design.transpose(1, 2))[:, 0] + theta @ ridge
        torch.mul(design, (p * (1 - p)).clamp_(min=1e-6)[:, None, :], out=weighted)
        for label in range(n_labels):
            torch.mm(weighted[label], design[label].T, out=hessian[label])
        hessian += ridge
        step = torch.linalg.solve(hessian, gradient)
        theta = theta - step
        if float(step.abs().max()) < 1e-4:
            break
    return theta[:, :k], theta[:, k]


def column_auroc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[n_labels] ROC-AUC of ``scores[:, j]`` for ``labels[:, j]`` (ties count half); NaN without both classes."""
    ranks = pd.DataFrame(scores).rank(axis=0, method="average").to_numpy()
    positives = labels.sum(0).astype(float)
    negatives = len(labels) - positives
    auc = ((ranks * labels).sum(0) - positives * (positives + 1) / 2) / np.maximum(positives * negatives, 1)
    return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def k_sparse_probe(features: np.ndarray, labels: np.ndarray, test: np.ndarray, ks: Sequence[int] = KS,
                   l2: float = L2) -> dict[int, np.ndarray]:
    """k -> [n_labels] held-out AUROC of a logistic probe on the top-k directions of ``features`` [n, D] for each
    of ``labels`` [n, L] (bool), trained on the cases not in ``test`` (a [n] bool mask). k above D uses all D."""
    train = ~test
    if labels.shape[1] == 0 or train.sum() < 2:  # no label frequent enough, or no training to speak of
        return {k: np.full(labels.shape[1], np.nan) for k in ks}
    ranking = np.argsort(-np.abs(mean_difference(features[train], labels[train])), axis=0, kind="stable")  # [D, L]
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    fit_by_direction = x[torch.from_numpy(np.flatnonzero(train))].T.contiguous()  # [D, n_fit]: one direction per row
    test_by_direction = x[torch.from_numpy(np.flatnonzero(test))].T.contiguous()
    scores: dict[int, list[np.ndarray]] = {}
    for start in range(0, labels.shape[1], LABEL_CHUNK):  # [chunk, k, n] at a time bounds the memory
        y = torch.from_numpy(labels[train, start:start + LABEL_CHUNK].T.astype(np.float32))
        for k in sorted({min(wanted, features.shape[1]) for wanted in ks}):
            chosen = torch.from_numpy(np.ascontiguousarray(ranking[:k, start:start + LABEL_CHUNK].T))  # [chunk, k]
            fit = fit_by_direction[chosen]  # [chunk, k, n_fit]
            mean = fit.mean(2, keepdim=True)
            fit.sub_(mean)  # centred, then scaled to unit standard deviation (torch's own std is 15x slower here)
            std = (torch.linalg.vector_norm(fit, dim=2, keepdim=True) / max(fit.shape[2] - 1, 1) ** 0.5).clamp(min=1e-8)
            weights, bias = fit_logistic(fit.div_(std), y, l2)
            held = (test_by_direction[chosen] - mean) / std
            scores.setdefault(k, []).append((torch.bmm(weights[:, None, :], held)[:, 0] + bias[:, None]).T.numpy())
    return {k: column_auroc(np.concatenate(scores[min(k, features.shape[1])], axis=1), labels[test]) for k in ks}
