"""Statistics of metric samples: mean, median and percentiles interpolated linearly between the
closest ranks (numpy's default ``linear`` method), without numpy.

>>> percentile([1, 2, 3, 4], 90)
3.7
>>> summary([10.0, 20.0, 30.0])["median"]
20.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["STATS", "mean", "median", "percentile", "stat", "summary"]

STATS = ("mean", "median", "p90", "p95")


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean (``math.fsum``), ``None`` for no values."""
    if not values:
        return None
    return math.fsum(values) / len(values)


def _pct_sorted(xs: Sequence[float], q: float) -> float:
    n = len(xs)
    pos = (n - 1) * (q / 100.0)  # numpy: virtual index (n − 1)·quantile
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    t = pos - lo
    a, b = float(xs[lo]), float(xs[hi])
    if t == 0 or a == b:
        return a
    d = b - a  # numpy's _lerp: from the nearer end, so results match it bit for bit
    return b - d * (1 - t) if t >= 0.5 else a + d * t


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float | None:
    """The ``q``-th percentile (0–100): rank ``(n − 1)·q/100``, linear between its neighbours."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q!r}")
    if not values:
        return None
    return _pct_sorted(values if presorted else sorted(values), q)


def median(values: Sequence[float]) -> float | None:
    """The 50th percentile."""
    return percentile(values, 50)


def stat(values: Sequence[float], name: str) -> float | None:
    """``mean``, ``median``, ``p90`` or ``p95`` of ``values``."""
    if name == "mean":
        return mean(values)
    if name == "median":
        return percentile(values, 50)
    if name in ("p90", "p95"):
        return percentile(values, float(name[1:]))
    raise ValueError(f"unknown statistic {name!r}; expected one of {', '.join(STATS)}")


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{mean, median, p90, p95, samples}`` of ``values`` (sorted once)."""
    xs = sorted(values)
    if not xs:
        return {"mean": None, "median": None, "p90": None, "p95": None, "samples": 0}
    return {
        "mean": math.fsum(xs) / len(xs),
        "median": _pct_sorted(xs, 50),
        "p90": _pct_sorted(xs, 90),
        "p95": _pct_sorted(xs, 95),
        "samples": len(xs),
    }
