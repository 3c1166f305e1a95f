"""Verifiers score how well a description predicts a latent on cases it never saw, as levels 0-10.

The embedding verifier scores a case by the cosine similarity of its text and the description, then maps
scores to levels by calibration on the latent's construction cases (activated) and as many non-activated
cases: level >= 6 (a positive) exactly when the score reaches the threshold that best separates the two.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from recprobe.concepts.cases import CaseSet
from recprobe.concepts.embedding import SentenceEmbedder
from recprobe.concepts.llm import LLM
from recprobe.concepts.prompts import Prompts
from recprobe.concepts.schemas import LevelPrediction
from recprobe.concepts.texts import case_items, case_text
from recprobe.data.split import Catalog

VERIFY_TOKENS = 12


def calibrate(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """(threshold, spread): the midpoint between sorted calibration scores with the best balanced accuracy,
    and the scores' standard deviation (the width of one level step is spread / 5)."""
    scores = np.sort(np.concatenate([positive, negative]))
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[1:] + scores[:-1]) / 2, [scores[-1] + 1e-6]])
    accuracy = [((positive >= t).mean() + (negative < t).mean()) / 2 for t in candidates]
    return float(candidates[int(np.argmax(accuracy))]), float(max(scores.std(), 1e-6))


def to_levels(scores: np.ndarray, threshold: float, spread: float) -> np.ndarray:
    return np.clip(np.floor(6 + 5 * (scores - threshold) / spread), 0, 10).astype(np.int64)


class CalibratedVerifier:
    """Scores cases for a description; levels come from calibration on the construction cases."""

    def scores(self, description: str, rows: list[int]) -> np.ndarray:
        raise NotImplementedError

    def levels(self, description: str, rows: list[int], calibration_positive: list[int],
               calibration_negative: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(levels, scores) of ``rows``, calibrated on the two calibration sets."""
        threshold, spread = calibrate(self.scores(description, calibration_positive),
                                      self.scores(description, calibration_negative))
        scores = self.scores(description, rows)
        return to_levels(scores, threshold, spread), scores


class EmbeddingVerifier(CalibratedVerifier):
    """Cosine similarity of the case's items and the description (all-MiniLM-L6-v2)."""

    name = "embedding"

    def __init__(self, cases: CaseSet, catalog: Catalog, embedder: SentenceEmbedder | None = None):
        self.cases, self.catalog = cases, catalog
        self.embedder = embedder or SentenceEmbedder()
        self._items: np.ndarray | None = None
        self._descriptions: dict[str, np.ndarray] = {}

    def case_vectors(self, rows: list[int]) -> np.ndarray:
        """A case's vector: the normalised mean of its items' vectors. Items are embedded once each (a catalog
        is far smaller than the set of cases, and an item's text is short)."""
        if self._items is None:
            self._items = self.embedder.encode([self.catalog.describe(i) for i in range(len(self.catalog))]).numpy()
        vectors = np.stack([self._items[case_items(self.cases, r)].mean(0) for r in rows])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)

    def prepare(self, descriptions: Iterable[str]) -> None:
        """Embed descriptions known in advance in batches (one at a time, each costs a forward pass)."""
        todo = sorted(set(descriptions) - set(self._descriptions))
        self._descriptions.update(zip(todo, self.embedder.encode(todo).numpy(), strict=True))

    def scores(self, description: str, rows: list[int]) -> np.ndarray:
        if description not in self._descriptions:  # scored three times each (two calibration sets); many repeat
            self._descriptions[description] = self.embedder.encode([description]).numpy()[0]
        return self.case_vectors(rows) @ self._descriptions[description]


class LikelihoodVerifier(CalibratedVerifier):
    """No generation: how a local model's probability of the description changes with the case it follows
    (each case's prefix runs through the model once, whatever the number of descriptions).

    The score is the pointwise mutual information of case and description, computed from the description's
    side: log P(description | case) - log P(description), which by Bayes' rule equals log P(case | description)
    - log P(case). The two sides differ only in how well a small model estimates them. A description is a
    dozen tokens and a case a few hundred; in log P(case | "Theme: ...") - log P(case), one theme line barely
    moves the case's likelihood, and SmolLM2-135M's estimate was at chance on real latents (AUROC 0.50), while
    the description's side reaches 0.72 on the same cases and descriptions (docs/results.md).
    log P(description) is the same for every case of a latent and levels are calibrated per latent, so it is
    left out."""

    name = "llm-likelihood"

    def __init__(self, llm: LLM, cases: CaseSet, catalog: Catalog):
        self.llm, self.cases, self.catalog = llm, cases, catalog

    def text(self, row: int) -> str:
        """The case's items, one per line, then the cue the description follows."""
        return "Items:\n" + "".join(f"{self.catalog.describe(i)}\n" for i in case_items(self.cases, row)) + "Theme: "

    def scores(self, description: str, rows: list[int]) -> np.ndarray:
        return self.llm.log_likelihood([self.text(r) for r in rows], [description] * len(rows))


class LLMVerifier:
    """The paper's verifier: the model generates each case's level given the description. An answer that
    does not parse counts as level 0 and is counted in ``unparsable``."""

    name = "llm"

    def __init__(self, llm: LLM, prompts: Prompts, cases: CaseSet, catalog: Catalog):
        self.llm, self.prompts, self.cases, self.catalog = llm, prompts, cases, catalog
        self.unparsable = 0

    def levels(self, description: str, rows: list[int], calibration_positive: list[int],
               calibration_negative: list[int]) -> tuple[np.ndarray, np.ndarray]:
        conversations = [self.prompts.verify_messages(description, case_text(self.cases, r, self.catalog)) for r in rows]
        answers = self.llm.generate(conversations, LevelPrediction, VERIFY_TOKENS)
        self.unparsable += sum(a is None for a in answers)
        levels = np.array([a.level if a is not None else 0 for a in answers], dtype=np.int64)
        return levels, levels.astype(np.float64)
