"""Percentiles and summaries over raw samples (never over Locust's rounded response times).

Percentiles interpolate linearly between the two nearest ranks (numpy's default "linear"
method), so p50 of [1, 2] is 1.5; with raw samples kept at full precision this is exact up to
the interpolation rule, which we state instead of hiding in a histogram's bucket width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

PERCENTILES = (50, 90, 95, 99)


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) of an already sorted list; None for an empty one."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, min, p50, p90, p95, p99, max of the values (None where undefined)."""
    ordered = sorted(values)
    out: dict[str, float | int | None] = {"count": len(ordered)}
    out["mean"] = math.fsum(ordered) / len(ordered) if ordered else None
    out["min"] = ordered[0] if ordered else None
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(ordered, q)
    out["max"] = ordered[-1] if ordered else None
    return out
