"""A :class:`~carepath.calendar.Calendar` → the plain data the core's calendar reads.

The core keeps the reference's tables (sorted open intervals in epoch seconds with prefix sums)
and grows them one local year at a time, as the reference does; each year comes from
:func:`year_data`, which calls the reference's own ``materialise_year`` (weekly hours, overrides,
holidays from the ``holidays`` package, DST resolved by ``zoneinfo``), so both engines see the
same intervals. The year also carries the zone's UTC-offset transitions, which the core needs
for business days (``add_days``: a wall time on another date).

``lower_calendar(cal)`` gives ``{"always", "timezone", "years", "year"}``: the years the
reference has already materialised, and the callable the core asks for any other year, so
results are exact for every instant the reference handles (years 2-9997), with no horizon.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from carepath.calendar.business import Calendar
from carepath.calendar.table import MAX_YEAR, MIN_YEAR, local_epoch, materialise_year

__all__ = ["YearTuple", "lower_calendar", "transitions", "year_data"]

YearTuple = tuple[
    list[tuple[float, float]], list[int], float, float, float, int, list[tuple[float, int, int]]
]
"""(intervals, open-date ordinals, Jan 1 00:00, Jan 3 00:00, next Jan 1 00:00, offset before
the first transition, transitions as (instant, offset before, offset after))."""

_STEP = 6 * 3600  # offsets are sampled this often; no zone changes twice within six hours
_MARGIN = 3 * 86400


def _offset(u: int, zone: ZoneInfo) -> int:
    off = datetime.fromtimestamp(u, zone).utcoffset()
    return 0 if off is None else int(off.total_seconds())


def transitions(zone: ZoneInfo, lo: int, hi: int) -> tuple[int, list[tuple[float, int, int]]]:
    """The offset at ``lo`` and every change of the zone's UTC offset in ``(lo, hi]``, to the second."""
    first = _offset(lo, zone)
    if zone.key == "UTC":
        return first, []
    out: list[tuple[float, int, int]] = []
    prev_u, prev = lo, first
    while prev_u < hi:
        u = min(prev_u + _STEP, hi)
        cur = _offset(u, zone)
        if cur == prev:
            prev_u = u
            continue
        a, b = prev_u, u  # offset(a) == prev != offset(b): find the first changed second
        while b - a > 1:
            m = (a + b) // 2
            if _offset(m, zone) == prev:
                a = m
            else:
                b = m
        after = _offset(b, zone)
        out.append((float(b), prev, after))
        prev_u, prev = b, after
    return first, out


@lru_cache(maxsize=4096)
def _zone_year(
    key: str, year: int
) -> tuple[float, float, float, int, tuple[tuple[float, int, int], ...]]:
    """A zone's year bounds and transitions: they depend on the zone and the year only."""
    zone = ZoneInfo(key)
    jan1 = date(year, 1, 1)
    start = local_epoch(jan1, 0, zone)
    start2 = local_epoch(jan1, 2 * 86400, zone)
    next_start = local_epoch(date(year + 1, 1, 1), 0, zone) if year < 9999 else float("inf")
    lo = int(start) - _MARGIN
    hi = int(next_start) + _MARGIN if year < 9999 else int(start) + 366 * 86400
    offset0, trans = transitions(zone, lo, hi)
    return start, start2, next_start, offset0, tuple(trans)


def year_data(cal: Calendar, year: int) -> YearTuple:
    """One local year of ``cal`` as the core reads it (see :data:`YearTuple`)."""
    if cal.always:
        intervals: list[tuple[float, float]] = []
        days: list[int] = []
    else:
        data = cal._years.get(year)
        if data is None:
            data = materialise_year(cal._spec, cal._zone, year)
        intervals, days = list(data.intervals), list(data.days)
    start, start2, next_start, offset0, trans = _zone_year(cal.timezone, year)
    return intervals, days, start, start2, next_start, offset0, list(trans)


def lower_calendar(cal: Calendar) -> dict[str, Any]:
    """The plain data of ``carepath_core._Calendar`` / ``calendar::Calendar::from_py``."""
    years = {
        y: year_data(cal, y)
        for y in sorted(getattr(cal, "_years", {}) or {})
        if MIN_YEAR <= y <= MAX_YEAR
    }
    return {
        "always": cal.always,
        "timezone": cal.timezone,
        "years": years,
        "year": partial(year_data, cal),
    }
