"""How cases read as text: the shown history and the predicted item, from the dataset's catalog."""

from __future__ import annotations

import numpy as np

from recprobe.concepts.cases import CaseSet
from recprobe.data.split import Catalog


def case_items(cases: CaseSet, row: int) -> list[int]:
    """The items a case shows: its history (oldest first), then the predicted item."""
    history = cases.history[row]
    return [*history[history >= 0].tolist(), int(cases.predicted[row])]


def cases_items(cases: CaseSet, rows: np.ndarray) -> np.ndarray:
    """Every item of the cases ``rows``, as ``case_items`` lists them case by case, in one flat array."""
    history = cases.history[rows]
    return np.concatenate([history[history >= 0], cases.predicted[rows]])


def case_text(cases: CaseSet, row: int, catalog: Catalog) -> str:
    """One case as prompt text: the history items, then the prediction, one per line."""
    items = case_items(cases, row)
    lines = [f"- {catalog.describe(i)}" for i in items[:-1]]
    return "History:\n" + "\n".join(lines) + f"\nPredicted next: {catalog.describe(items[-1])}"
