"""Small static SVG charts (no JavaScript, no network): a histogram and horizontal bars."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT, PAD = 360, 150, 28


def histogram(values: Sequence[float], bins: int = 20, label: str = "", log: bool = False) -> str:
    """Counts of ``values`` in ``bins`` equal bins, as an SVG bar chart (``log``: log-scaled counts)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return '<p class="muted">no values</p>'
    low, high = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(low, high if high > low else low + 1))
    heights = np.log1p(counts) if log else counts.astype(float)
    top = max(float(heights.max()), 1e-9)
    bar = (WIDTH - 2 * PAD) / bins
    rects = []
    for i, (count, height) in enumerate(zip(counts, heights, strict=True)):
        h = (HEIGHT - 2 * PAD) * height / top
        x, y = PAD + i * bar, HEIGHT - PAD - h
        rects.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}">'
                     f"<title>{edges[i]:.3g} to {edges[i + 1]:.3g}: {count}</title></rect>")
    axis = (f'<text x="{PAD}" y="{HEIGHT - 8}">{low:.3g}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{high:.3g}</text>'
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            f'<text x="{PAD}" y="{PAD - 10}">{int(counts.max())}{" (log scale)" if log else ""}</text>')
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>{"".join(rects)}{axis}</svg>')


def bars(rows: Sequence[tuple[str, float]], maximum: float | None = None, fmt: str = "{:.3f}") -> str:
    """Labelled horizontal bars, one per (label, value) row."""
    if not rows:
        return '<p class="muted">nothing to show</p>'
    top = maximum if maximum is not None else max(max(v for _, v in rows), 1e-9)
    line, label_width = 22, 150
    height = line * len(rows) + 4
    parts = []
    for i, (label, value) in enumerate(rows):
        y = 2 + i * line
        w = (WIDTH - label_width - 60) * max(value, 0) / top
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{line - 8}"/>'
                     f'<text x="{label_width + w + 4:.1f}" y="{y + 15}">{escape(fmt.format(value))}</text>')
    return f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img">{"".join(parts)}</svg>'
