"""Means with their 95% interval over seeds (Student's t: few seeds make it wide, as it should be)."""

from __future__ import annotations

import math
from collections.abc import Sequence

# two-sided 97.5% quantiles of Student's t by degrees of freedom; the normal's beyond the table
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile(df: int) -> float:
    """The t quantile for ``df``, rounded towards fewer degrees of freedom (wider) between table entries."""
    if df >= 60:
        return 1.96
    return T_975[max(key for key in T_975 if key <= df)]


def interval(values: Sequence[float]) -> dict[str, float | int | None]:
    """{"mean", "low", "high", "n", "values"} over the finite ``values``; one value has no interval (low = high =
    None)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "low": None, "high": None, "n": 0, "values": []}
    mean = sum(finite) / len(finite)
    shown = [round(v, 4) for v in finite]
    if len(finite) == 1:
        return {"mean": round(mean, 4), "low": None, "high": None, "n": 1, "values": shown}
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    half = t_quantile(len(finite) - 1) * sd / math.sqrt(len(finite))
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4), "n": len(finite),
            "values": shown}


def excludes_zero(summary: dict[str, float | int | None]) -> bool:
    """Whether an interval lies wholly above or below 0."""
    low, high = summary.get("low"), summary.get("high")
    return low is not None and high is not None and (low > 0 or high < 0)
