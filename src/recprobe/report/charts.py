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


SERIES_COLOURS = ("#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#868e96", "#f08c00", "#1098ad")
PARETO_WIDTH, PARETO_HEIGHT, PARETO_PAD = 560, 340, 48


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def lines(series: dict[str, Sequence[tuple[float, float]]], x_label: str, y_label: str) -> dict[str, Any]:
    """One polyline with point markers per named series of (x, y) points, on shared axes with a legend."""
    points = [p for pts in series.values() for p in pts]
    chart: dict[str, Any] = {"width": PARETO_WIDTH, "height": PARETO_HEIGHT, "pad": PARETO_PAD, "x_label": x_label,
                             "y_label": y_label, "series": [], "x_ticks": [], "y_ticks": []}
    if not points:
        return chart
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_low, x_high = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1e-3
    y_low, y_high = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1e-3
    plot_w, plot_h = PARETO_WIDTH - 2 * PARETO_PAD - 130, PARETO_HEIGHT - 2 * PARETO_PAD

    def at(x: float, y: float) -> tuple[float, float]:
        return (PARETO_PAD + plot_w * (x - x_low) / (x_high - x_low),
                PARETO_HEIGHT - PARETO_PAD - plot_h * (y - y_low) / (y_high - y_low))

    for i, (name, pts) in enumerate(series.items()):
        placed = [at(x, y) for x, y in pts]
        chart["series"].append({
            "name": name, "colour": SERIES_COLOURS[i % len(SERIES_COLOURS)],
            "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in placed),
            "markers": [{"x": px, "y": py, "title": f"{name}: {x:.4f}, {y:.4f}"}
                        for (px, py), (x, y) in zip(placed, pts, strict=True)],
            "legend_y": PARETO_PAD + 16 * i})
    chart["x_ticks"] = [{"x": at(v, y_low)[0], "label": f"{v:.3f}"} for v in _ticks(x_low, x_high)]
    chart["y_ticks"] = [{"y": at(x_low, v)[1], "label": f"{v:.3f}"} for v in _ticks(y_low, y_high)]
    chart.update(x0=PARETO_PAD, x1=PARETO_PAD + plot_w, y0=PARETO_HEIGHT - PARETO_PAD, y1=PARETO_PAD,
                 legend_x=PARETO_PAD + plot_w + 14)
    return chart


def pareto(rows: Sequence[dict[str, Any]], k: int = 10) -> dict[str, Any]:
    """NDCG@k against Gini@k, one line per de-biasing method (and selection rule) in order of strength."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in sorted(rows, key=lambda r: r["strength"]):
        name = row["method"] + (f" ({row['selection']})" if row.get("selection") else "")
        series.setdefault(name, []).append((row[f"Gini@{k}"], row[f"NDCG@{k}"]))
    return lines(series, f"Gini@{k} (lower: exposure spread more evenly)", f"NDCG@{k}")


HEAT_CELL, HEAT_ROW_LABEL, HEAT_COLUMN_LABEL = 16, 70, 110


def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], label: str = "") -> dict[str, Any]:
    """A grid of cells, one per (row, column): AUROC 0.5 (chance) blank, rising to 1 in full colour, falling
    to 0 in the second colour."""
    cells = []
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            strength = min(abs(value - 0.5) * 2, 1.0) if np.isfinite(value) else 0.0
            cells.append({"x": HEAT_ROW_LABEL + j * HEAT_CELL, "y": HEAT_COLUMN_LABEL + i * HEAT_CELL,
                          "opacity": f"{strength:.2f}", "colour": SERIES_COLOURS[0] if value >= 0.5 else SERIES_COLOURS[1],
                          "title": f"{rows[i]} / {columns[j]}: {value:.3f}"})
    return {"width": HEAT_ROW_LABEL + HEAT_CELL * len(columns) + HEAT_COLUMN_LABEL // 2, "height": HEAT_COLUMN_LABEL + HEAT_CELL * len(rows) + 8,
            "cell": HEAT_CELL, "label": label, "cells": cells,
            "rows": [{"y": HEAT_COLUMN_LABEL + i * HEAT_CELL + 12, "label": r} for i, r in enumerate(rows)],
            "columns": [{"x": HEAT_ROW_LABEL + j * HEAT_CELL + 11, "y": HEAT_COLUMN_LABEL - 4, "label": c}
                        for j, c in enumerate(columns)]}
