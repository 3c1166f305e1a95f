"""Verifiers score how well a description predicts a latent on cases it never saw, as levels 0-10.

The embedding verifier scores a case by the cosine similarity of its text and the description, then maps
scores to levels by calibration on the latent's construction cases (activated) and as many non-activated
cases: level >= 6 (a positive) exactly when the score reaches the threshold that best separates the two.
"""

from __future__ import annotations

import numpy as np

from recprobe.concepts.cases import CaseSet
from recprobe.concepts.embedding import SentenceEmbedder
from recprobe.concepts.texts import case_text
from recprobe.data.split import Catalog


def calibrate(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """(threshold, spread): the midpoint between sorted calibration scores with the best balanced accuracy,
    and the scores' standard deviation (the width of one level step is spread / 5)."""
    scores = np.sort(np.concatenate([positive, negative]))
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[1:] + scores[:-1]) / 2, [scores[-1] + 1e-6]])
    accuracy = [((positive >= t).mean() + (negative < t).mean()) / 2 for t in candidates]
    return float(candidates[int(np.argmax(accuracy))]), float(max(scores.std(), 1e-6))


def to_levels(scores: np.ndarray, threshold: float, spread: float) -> np.ndarray:
    return np.clip(np.floor(6 + 5 * (scores - threshold) / spread), 0, 10).astype(np.int64)


class EmbeddingVerifier:
    name = "embedding"

    def __init__(self, cases: CaseSet, catalog: Catalog, embedder: SentenceEmbedder | None = None):
        self.cases, self.catalog = cases, catalog
        self.embedder = embedder or SentenceEmbedder()
        self._cache: dict[int, np.ndarray] = {}

    def case_vectors(self, rows: list[int]) -> np.ndarray:
        missing = [r for r in rows if r not in self._cache]
        if missing:
            vectors = self.embedder.encode([case_text(self.cases, r, self.catalog) for r in missing]).numpy()
            self._cache.update(zip(missing, vectors, strict=True))
        return np.stack([self._cache[r] for r in rows])

    def scores(self, description: str, rows: list[int]) -> np.ndarray:
        return self.case_vectors(rows) @ self.embedder.encode([description]).numpy()[0]

    def levels(self, description: str, rows: list[int], calibration_positive: list[int],
               calibration_negative: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(levels, scores) of ``rows``, calibrated on the two calibration sets."""
        threshold, spread = calibrate(self.scores(description, calibration_positive),
                                      self.scores(description, calibration_negative))
        scores = self.scores(description, rows)
        return to_levels(scores, threshold, spread), scores
