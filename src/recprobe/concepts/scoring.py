"""How well a description predicts its latent: the paper's confidence, plus balanced accuracy and AUROC."""

from __future__ import annotations

import numpy as np

POSITIVE_LEVEL = 5  # a verification level above this counts as "the concept is present"


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random activated case scores above a random non-activated one (ties count half)."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + ties / 2)


def confidence(active_levels: np.ndarray, negative_levels: np.ndarray) -> dict[str, float]:
    """C = (TP + TN) / 2N over N activated and N non-activated verification cases (paper 3.3), with the
    confusion counts and balanced accuracy (equal to C when both sets have N cases)."""
    tp = int((active_levels > POSITIVE_LEVEL).sum())
    tn = int((negative_levels <= POSITIVE_LEVEL).sum())
    fn, fp = len(active_levels) - tp, len(negative_levels) - tn
    return {
        "confidence": (tp + tn) / (len(active_levels) + len(negative_levels)),
        "balanced_accuracy": (tp / max(len(active_levels), 1) + tn / max(len(negative_levels), 1)) / 2,
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
    }
