"""Materialised open intervals of a calendar: epoch-second arrays with prefix sums.

Private to :mod:`carepath.calendar.business`. A calendar's open time is materialised one local year at a
time (holidays, overrides and DST applied) and flattened into sorted, disjoint, merged intervals
``[o[i], c[i])`` with ``cum[i]`` = open seconds before interval ``i`` and ``cend[i] = cum[i] +
c[i] - o[i]``. With them ``F(x)``, the open time from the table's start up to ``x``, is one
bisection, and so are ``add``, ``subtract`` and ``elapsed``.
"""

from __future__ import annotations

from bisect import bisect_right as _bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from carepath.calendar.holidays import holiday_dates
from carepath.calendar.spec import CalendarSpec

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "Table",
    "YearData",
    "build_table",
    "local_epoch",
    "materialise_year",
]

MIN_YEAR, MAX_YEAR = 2, 9997  # keep a margin from datetime's limits for the ±1 day arithmetic
_ONE = timedelta(days=1)


def local_epoch(day: date, seconds: int, zone: ZoneInfo) -> float:
    """Epoch of wall time ``seconds`` after ``day``'s midnight (may pass into later days).

    ``fold=0`` gives SPEC §3 rule 8: a nonexistent time moves forward by the gap, an ambiguous
    one is its first occurrence.
    """
    days, rem = divmod(seconds, 86400)
    if days:
        day = day + timedelta(days=days)
    return datetime(
        day.year, day.month, day.day, rem // 3600, rem % 3600 // 60, rem % 60, tzinfo=zone
    ).timestamp()


@dataclass(frozen=True, slots=True)
class YearData:
    """The open intervals opening in one local year, and the ordinals of its open dates."""

    intervals: list[tuple[float, float]]
    days: list[int]


def materialise_year(spec: CalendarSpec, zone: ZoneInfo, year: int) -> YearData:
    """Intervals opening on the local dates of ``year``: overrides beat holidays beat weekly hours."""
    holidays = holiday_dates(spec, year)
    out: list[tuple[float, float]] = []
    days: list[int] = []
    d = date(year, 1, 1)
    while d.year == year:
        ivs = spec.overrides.get(d)
        if ivs is None:
            ivs = () if d in holidays else spec.weekly[d.weekday()]
        opened = False
        for a, b in ivs:
            o, c = local_epoch(d, a, zone), local_epoch(d, b, zone)
            if c > o:  # an opening pushed to or past its close by DST is empty that day
                out.append((o, c))
                opened = True
        if opened:
            days.append(d.toordinal())
        d += _ONE
    out.sort()
    return YearData(out, days)


@dataclass(frozen=True, slots=True)
class Table:
    """Materialised local years ``y0..y1``; queries are exact for ``qlo <= t < qhi``."""

    y0: int
    y1: int
    qlo: float
    qhi: float
    o: list[float]
    c: list[float]
    cum: list[float]
    cend: list[float]
    days: list[int]

    def f(self, t: float) -> float:
        """Open seconds from the table's start up to ``t`` (``qlo <= t < qhi``)."""
        i = _bisect_right(self.o, t) - 1
        if i < 0:
            return 0.0
        if t < self.c[i]:
            return self.cum[i] + (t - self.o[i])
        return self.cend[i]


def build_table(years: dict[int, YearData], y0: int, y1: int, zone: ZoneInfo) -> Table:
    """Flatten years ``y0..y1`` into merged, disjoint intervals with prefix sums."""
    o: list[float] = []
    c: list[float] = []
    days: list[int] = []
    for y in range(y0, y1 + 1):
        data = years[y]
        days.extend(data.days)
        for a, b in data.intervals:
            if o and a <= c[-1]:  # touching or (after DST resolution) overlapping: one interval
                if b > c[-1]:
                    c[-1] = b
            else:
                o.append(a)
                c.append(b)
    cum: list[float] = []
    cend: list[float] = []
    total = 0.0
    for a, b in zip(o, c, strict=True):
        cum.append(total)
        total += b - a
        cend.append(total)
    # An interval opening on the last day of y0 - 1 may reach two days into y0: keep a margin.
    qlo = local_epoch(date(y0, 1, 1), 2 * 86400, zone)
    qhi = local_epoch(date(y1 + 1, 1, 1), 0, zone)
    return Table(y0, y1, qlo, qhi, o, c, cum, cend, days)
