"""Holiday dates of a calendar, per year. Imports the slow ``holidays`` package only on demand.

The lowest layer of the calendar package: it knows nothing of how a calendar is written
(:mod:`carepath.calendar.spec` reads that and depends on this module, never the reverse).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache
from typing import Protocol

__all__ = ["CountryHolidays", "HolidaySource", "check_country", "holiday_dates"]


class CountryHolidays(Protocol):
    """A country's public holidays, minus some dates."""

    @property
    def country(self) -> str: ...
    @property
    def subdiv(self) -> str | None: ...
    @property
    def except_(self) -> frozenset[date]: ...


class HolidaySource(Protocol):
    """What a calendar says about holidays (a :class:`~carepath.calendar.spec.CalendarSpec`)."""

    @property
    def dates(self) -> set[date]: ...
    @property
    def ranges(self) -> list[tuple[date, date]]: ...
    @property
    def countries(self) -> Iterable[CountryHolidays]: ...
    @property
    def removed_dates(self) -> set[date]: ...
    @property
    def removed_ranges(self) -> list[tuple[date, date]]: ...


def check_country(code: str, subdiv: str | None) -> str | None:
    """``None`` when the ``holidays`` package knows ``code``/``subdiv``, else the reason."""
    try:
        _country_year(code.upper(), subdiv, 2000)
    except NotImplementedError as exc:
        return f"no public holidays for {code!r}{f'/{subdiv!r}' if subdiv else ''}: {exc}"
    return None


@lru_cache(maxsize=512)
def _country_year(code: str, subdiv: str | None, year: int) -> frozenset[date]:
    import holidays  # slow to import: only calendars with `country:` pay for it

    return frozenset(holidays.country_holidays(code, subdiv=subdiv, years=year).keys())


def _in_year(ranges: list[tuple[date, date]], year: int) -> set[date]:
    lo, hi = date(year, 1, 1), date(year, 12, 31)
    out: set[date] = set()
    for a, b in ranges:
        a, b = max(a, lo), min(b, hi)
        out.update(a + timedelta(days=i) for i in range((b - a).days + 1))
    return out


def holiday_dates(spec: HolidaySource, year: int) -> set[date]:
    """Every holiday of ``year``: dates, ranges and countries, minus ``except``/``remove`` entries."""
    out = {d for d in spec.dates if d.year == year} | _in_year(spec.ranges, year)
    for rule in spec.countries:
        out |= _country_year(rule.country, rule.subdiv, year) - rule.except_
    out -= spec.removed_dates
    out -= _in_year(spec.removed_ranges, year)
    return out
