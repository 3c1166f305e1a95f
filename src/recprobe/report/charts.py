"""Small static SVG charts (no JavaScript, no network), as numbers for ``templates/macros.html`` to draw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

WIDTH, HEIGHT, PAD = 360, 150, 28
BAR_LINE, BAR_LABEL_WIDTH = 22, 150


def histogram(values: Sequence[float], bins: int = 20, label: str = "", log: bool = False) -> dict[str, Any]:
    """Counts of ``values`` in ``bins`` equal bins (``log``: log-scaled bar heights)."""
    values = np.asarray(values, dtype=float)
    chart: dict[str, Any] = {"width": WIDTH, "height": HEIGHT, "pad": PAD, "label": label, "bars": []}
    if values.size == 0:
        return chart
    low, high = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(low, high if high > low else low + 1))
    heights = np.log1p(counts) if log else counts.astype(float)
    top = max(float(heights.max()), 1e-9)
    width = (WIDTH - 2 * PAD) / bins
    for i, (count, height) in enumerate(zip(counts, heights, strict=True)):
        h = (HEIGHT - 2 * PAD) * height / top
        chart["bars"].append({"x": PAD + i * width, "y": HEIGHT - PAD - h, "width": max(width - 1, 1), "height": h,
                              "title": f"{edges[i]:.3g} to {edges[i + 1]:.3g}: {count}"})
    chart.update(low=f"{low:.3g}", high=f"{high:.3g}", top=f"{int(counts.max())}{' (log scale)' if log else ''}")
    return chart


def bars(rows: Sequence[tuple[str, float]], maximum: float | None = None, fmt: str = "{:.3f}") -> dict[str, Any]:
    """Labelled horizontal bars, one per (label, value) row."""
    top = maximum if maximum is not None else max([v for _, v in rows] + [1e-9])
    return {"width": WIDTH, "height": BAR_LINE * len(rows) + 4, "line": BAR_LINE, "label_width": BAR_LABEL_WIDTH,
            "rows": [{"y": 2 + i * BAR_LINE, "label": label, "value": fmt.format(value),
                      "width": (WIDTH - BAR_LABEL_WIDTH - 60) * max(value, 0) / top} for i, (label, value) in enumerate(rows)]}
