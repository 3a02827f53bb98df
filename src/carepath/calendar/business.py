"""Business time: calendars of open hours, holidays, overrides and time zones (SPEC §3).

A :class:`Calendar` answers four questions — *add* open time to an instant, the *elapsed* open
time between two instants, *is it open*, *when does it next open* — plus business days
(``add_days``). Each has a ``datetime`` form and a fast form on POSIX epoch seconds (``*_s``) for
the engine's hot loop; both follow the same rules.

Open intervals are materialised lazily, one local year at a time, into sorted epoch-second arrays
with prefix sums of open time; every computation is a couple of bisections, so its cost grows
with the logarithm of the span, never with minutes or days stepped.

>>> from datetime import datetime, timedelta
>>> from zoneinfo import ZoneInfo
>>> cal = Calendar.from_dict({"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}})
>>> monday_9 = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
>>> cal.add(monday_9, timedelta(hours=8))          # rule 3: lands on the close
datetime.datetime(2026, 3, 2, 17, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin'))
>>> cal.add(monday_9, timedelta(hours=8, seconds=1))
datetime.datetime(2026, 3, 3, 9, 0, 1, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin'))
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from carepath.calendar.spec import CalendarSpec, Problem, parse_spec
from carepath.calendar.table import (
    MAX_YEAR,
    MIN_YEAR,
    Table,
    YearData,
    build_table,
    materialise_year,
)
from carepath.errors import CalendarError, NoOpenTime

__all__ = ["Calendar"]

_HORIZON = 366 * 86400.0  # rule 10: no open time within a year is an error, never a hang


def _check(t: datetime, what: str = "t") -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(
            f"{what} must be a timezone-aware datetime, got naive {t.isoformat()}; "
            "attach a zone, e.g. t.replace(tzinfo=ZoneInfo('UTC'))"
        )


def _epoch(t: datetime, what: str = "t") -> float:
    _check(t, what)
    return t.timestamp()


def _to_dt(u: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(u, tz)


_M = 1_000_000
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // _US


def _from_us(u: int, tz: tzinfo | None) -> datetime:
    return (_EPOCH + timedelta(microseconds=u)).astimezone(tz)


def _f_us(tab: Table, t_us: int) -> int:
    """Exact open microseconds from the table's start up to ``t_us`` (bounds are whole seconds)."""
    i = bisect_right(tab.o, t_us / 1e6) - 1  # exact order: bounds are integers, t_us / 1e6 is
    if i < 0:  # within 0.3 µs of the truth at any epoch this side of year 2200
        return 0
    if t_us < int(tab.c[i]) * _M:
        return int(tab.cum[i]) * _M + t_us - int(tab.o[i]) * _M
    return int(tab.cend[i]) * _M


def _iso(u: float) -> str:
    return datetime.fromtimestamp(u, ZoneInfo("UTC")).isoformat()


class Calendar:
    """When time counts: weekly hours, holidays and date overrides in an IANA time zone.

    Build one with :meth:`from_dict`. Instances are immutable in meaning and safe to share
    between threads (the lazily grown tables are swapped in atomically under a lock).
    """

    __slots__ = ("_lock", "_spec", "_tab", "_years", "_zone")

    def __init__(self, spec: CalendarSpec) -> None:
        """Use :meth:`from_dict`; this takes an already validated spec."""
        self._spec = spec
        self._zone = ZoneInfo(spec.timezone)
        self._lock = threading.Lock()
        self._years: dict[int, YearData] = {}
        self._tab = Table(
            0, -1, float("inf"), float("-inf"), [], [], [], [], []
        )  # grown on first use

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | str, *, timezone: str | None = None) -> Calendar:
        """Build a calendar from its YAML mapping form, or ``"always"`` (24x7).

        ``timezone`` is the default when the mapping names none (``"always"`` uses it too;
        UTC otherwise). Raises :class:`~carepath.errors.CalendarError` listing every problem,
        each with its path relative to the mapping.
        """
        parsed, problems = parse_spec(spec, timezone)
        if parsed is None:
            first = problems[0]
            where = ".".join(str(p) for p in first[0])
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise CalendarError(
                f"invalid calendar{f' at {where}' if where else ''}: {first[1]}{more}",
                [(path, message) for path, message, _ in problems],
            )
        if parsed.always:
            return _Always(parsed)
        return cls(parsed)

    @staticmethod
    def validate_dict(spec: object, timezone: str | None = None) -> list[Problem]:
        """Every problem of a calendar definition as ``(path, message, code)``, without raising.

        Codes: ``CP506`` invalid or overlapping hours (also an interval crossing midnight into
        the next date's); ``CP507`` no open time; ``CP512`` anything else (time zone, dates,
        day keys, unknown keys, countries).
        """
        return parse_spec(spec, timezone)[1]

    @property
    def timezone(self) -> str:
        """The IANA time zone the hours are written in."""
        return self._spec.timezone

    @property
    def always(self) -> bool:
        """True for the built-in 24x7 calendar."""
        return self._spec.always

    @property
    def weekly(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """The weekly hours as parsed: per weekday (Monday = 0), the ``(open, close)`` intervals
        opening that day, in seconds after its local midnight (``close`` may pass 86400)."""
        return self._spec.weekly

    def __repr__(self) -> str:
        return f"<Calendar {'always' if self.always else 'hours'} in {self.timezone}>"

    # -- datetime API -----------------------------------------------------------------------

    def add(self, t: datetime, d: timedelta) -> datetime:
        """The earliest instant ``u >= t`` with ``d`` of open time in ``[t, u)`` (rules 1-4).

        A budget that runs out exactly at a close lands on the close; ``d == 0`` gives
        :meth:`next_open`; a negative ``d`` goes backwards (:meth:`subtract`). The result is in
        ``t``'s tzinfo. Exact to the microsecond.
        """
        _check(t)
        d_us = d // _US
        if d_us == 0:
            return self.next_open(t)
        if d_us < 0:
            return self.subtract(t, -d)
        return _from_us(self._add_us(_to_us(t), d_us), t.tzinfo)

    def subtract(self, t: datetime, d: timedelta) -> datetime:
        """The latest instant ``u <= t`` with ``d`` of open time in ``[u, t)``.

        A budget that runs out exactly at an opening lands on the opening; ``subtract(t, 0)``
        is ``t``; a negative ``d`` goes forwards (:meth:`add`).
        """
        _check(t)
        d_us = d // _US
        if d_us <= 0:
            return t if d_us == 0 else self.add(t, -d)
        return _from_us(self._sub_us(_to_us(t), d_us), t.tzinfo)

    def add_days(self, t: datetime, n: int) -> datetime:
        """``n`` business days after ``t`` (rule 6); negative ``n`` counts open dates backwards."""
        return _to_dt(self.add_days_s(_epoch(t), n), t.tzinfo)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Open time in ``[a, b)``; for ``a > b`` it is ``-elapsed(b, a)`` (zero or negative)."""
        ta, tb = _epoch(a, "a"), _epoch(b, "b")
        tab = self._tab
        lo, hi = min(ta, tb) - 1.0, max(ta, tb) + 1.0
        if not (tab.qlo <= lo and hi < tab.qhi):
            self._cover(lo)
            tab = self._cover(hi)
        return timedelta(microseconds=_f_us(tab, _to_us(b)) - _f_us(tab, _to_us(a)))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies inside an open interval (half-open: a close is not open)."""
        return self.is_open_s(_epoch(t))

    def next_open(self, t: datetime) -> datetime:
        """The first open instant at or after ``t`` (``t`` itself when open); ``add(t, 0)``."""
        return _to_dt(self.next_open_s(_epoch(t)), t.tzinfo)

    # -- epoch-seconds API (hot path) ------------------------------------------------------

    def is_open_s(self, t: float) -> bool:
        """:meth:`is_open` on epoch seconds."""
        tab = self._tab
        if not tab.qlo <= t < tab.qhi:
            tab = self._cover(t)
        i = bisect_right(tab.o, t) - 1
        return i >= 0 and t < tab.c[i]

    def next_open_s(self, t: float) -> float:
        """:meth:`next_open` on epoch seconds."""
        tab = self._tab
        if not tab.qlo <= t < tab.qhi:
            tab = self._cover(t)
        i = bisect_right(tab.o, t) - 1
        if i >= 0 and t < tab.c[i]:
            return t
        if i + 1 < len(tab.o):
            return tab.o[i + 1]
        return self._next_open_slow(t)

    def add_s(self, t: float, seconds: float) -> float:
        """:meth:`add` on epoch seconds."""
        if seconds <= 0:
            return self.next_open_s(t) if seconds == 0 else self.subtract_s(t, -seconds)
        tab = self._tab
        if not tab.qlo <= t < tab.qhi:
            tab = self._cover(t)
        o = tab.o
        i = bisect_right(o, t) - 1
        if i < 0:
            target = seconds
        elif t < tab.c[i]:
            target = tab.cum[i] + (t - o[i]) + seconds
        else:
            target = tab.cend[i] + seconds
        j = bisect_left(tab.cend, target)
        if j < len(o):
            return o[j] + (target - tab.cum[j])
        return self._add_slow(t, seconds)

    def subtract_s(self, t: float, seconds: float) -> float:
        """:meth:`subtract` on epoch seconds."""
        if seconds <= 0:
            return t if seconds == 0 else self.add_s(t, -seconds)
        tab = self._tab
        if not tab.qlo <= t < tab.qhi:
            tab = self._cover(t)
        target = tab.f(t) - seconds
        while True:
            j = bisect_right(tab.cum, target) - 1
            if j >= 0:
                return tab.o[j] + (target - tab.cum[j])
            tab = self._grow_back(tab, tab.o[0] if tab.o else t)
            target = tab.f(t) - seconds

    def elapsed_s(self, a: float, b: float) -> float:
        """:meth:`elapsed` on epoch seconds."""
        if a > b:
            return -self.elapsed_s(b, a)
        tab = self._tab
        if not (tab.qlo <= a and b < tab.qhi):
            self._cover(a)
            tab = self._cover(b)
        return tab.f(b) - tab.f(a)

    def add_days_s(self, t: float, n: int) -> float:
        """:meth:`add_days` on epoch seconds."""
        s = self.next_open_s(t)
        if n == 0:
            return s
        local = datetime.fromtimestamp(s, self._zone)
        ordinal = local.toordinal()
        tab = self._tab
        if not tab.qlo <= s < tab.qhi:
            tab = self._cover(s)
        while True:
            days = tab.days
            k = bisect_right(days, ordinal) + n - 1 if n > 0 else bisect_left(days, ordinal) + n
            if 0 <= k < len(days):
                break
            if k >= len(days):
                tab = self._grow_forward(tab, tab.c[-1] if tab.c else s)
            else:
                tab = self._grow_back(tab, tab.o[0] if tab.o else s)
        day = date.fromordinal(days[k])
        wall = datetime.combine(day, local.time(), self._zone)  # fold=0: rule 8
        return self.next_open_s(wall.timestamp())

    # -- growth ------------------------------------------------------------------------------

    def _make_table(self, y0: int, y1: int | None) -> Table:
        y1 = y0 if y1 is None else y1
        if y0 < MIN_YEAR or y1 > MAX_YEAR:
            raise NoOpenTime(
                f"business time beyond the years {MIN_YEAR}-{MAX_YEAR} is not supported"
            )
        for y in range(y0, y1 + 1):
            if y not in self._years:
                self._years[y] = materialise_year(self._spec, self._zone, y)
        return build_table(self._years, y0, y1, self._zone)

    def _cover(self, t: float) -> Table:
        """The table, grown until ``qlo <= t < qhi``."""
        with self._lock:
            tab = self._tab
            y0, y1 = tab.y0, tab.y1
            if t < tab.qlo or t >= tab.qhi:
                year = datetime.fromtimestamp(t, self._zone).year
                y0, y1 = (min(y0, year), max(y1, year)) if self._years else (year, year)
                tab = self._make_table(y0, y1)
                while t < tab.qlo:
                    y0 -= 1
                    tab = self._make_table(y0, y1)
                while t >= tab.qhi:
                    y1 += 1
                    tab = self._make_table(y0, y1)
                self._tab = tab
            return tab

    def _grow_forward(self, tab: Table, since: float) -> Table:
        """Add years at the end until open time appears after ``since``; a year without is an error."""
        with self._lock:
            tab = self._tab  # never smaller than the caller's: tables only grow
            while True:
                if tab.c and tab.c[-1] > since:
                    self._tab = tab
                    return tab
                if tab.qhi - since > _HORIZON:
                    raise NoOpenTime(
                        f"the calendar has no open time within a year after {_iso(since)}"
                    )
                tab = self._make_table(tab.y0, tab.y1 + 1)
                self._tab = tab

    def _grow_back(self, tab: Table, since: float) -> Table:
        """Add years at the start until open time appears before ``since``; a year without is an error."""
        with self._lock:
            tab = self._tab
            while True:
                if tab.o and tab.o[0] < since:
                    self._tab = tab
                    return tab
                if since - tab.qlo > _HORIZON:
                    raise NoOpenTime(
                        f"the calendar has no open time within a year before {_iso(since)}"
                    )
                tab = self._make_table(tab.y0 - 1, tab.y1)
                self._tab = tab

    def _next_open_slow(self, t: float) -> float:
        tab = self._grow_forward(self._tab, t)
        i = bisect_right(tab.o, t) - 1
        if i >= 0 and t < tab.c[i]:
            return t
        return tab.o[i + 1]

    def _add_slow(self, t: float, seconds: float) -> float:
        tab = self._tab
        while True:
            target = tab.f(t) + seconds
            j = bisect_left(tab.cend, target)
            if j < len(tab.o):
                return tab.o[j] + (target - tab.cum[j])
            tab = self._grow_forward(tab, max(t, tab.c[-1]) if tab.c else t)

    # -- exact microsecond arithmetic for the datetime API ------------------------------------

    def _table_for(self, t: float) -> Table:
        tab = self._tab
        return tab if tab.qlo <= t < tab.qhi else self._cover(t)

    def _add_us(self, t_us: int, d_us: int) -> int:
        tab = self._table_for(t_us / 1e6)
        while True:
            target = _f_us(tab, t_us) + d_us
            j = bisect_left(tab.cend, target / 1e6)
            if j < len(tab.o):
                return int(tab.o[j]) * _M + target - int(tab.cum[j]) * _M
            tab = self._grow_forward(tab, max(t_us / 1e6, tab.c[-1]) if tab.c else t_us / 1e6)

    def _sub_us(self, t_us: int, d_us: int) -> int:
        tab = self._table_for(t_us / 1e6)
        while True:
            target = _f_us(tab, t_us) - d_us
            j = bisect_right(tab.cum, target / 1e6) - 1
            if j >= 0:
                return int(tab.o[j]) * _M + target - int(tab.cum[j]) * _M
            tab = self._grow_back(tab, tab.o[0] if tab.o else t_us / 1e6)


class _Always(Calendar):
    """The 24x7 calendar: every instant is open, every date is an open date."""

    __slots__ = ()

    def __init__(self, spec: CalendarSpec) -> None:
        self._spec = spec
        self._zone = ZoneInfo(spec.timezone)

    def is_open_s(self, t: float) -> bool:
        return True

    def next_open_s(self, t: float) -> float:
        return t

    def add_s(self, t: float, seconds: float) -> float:
        return t + seconds

    def subtract_s(self, t: float, seconds: float) -> float:
        return t - seconds

    def elapsed_s(self, a: float, b: float) -> float:
        return b - a

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        _epoch(a, "a"), _epoch(b, "b")
        return b - a

    def _add_us(self, t_us: int, d_us: int) -> int:
        return t_us + d_us

    def _sub_us(self, t_us: int, d_us: int) -> int:
        return t_us - d_us

    def add_days_s(self, t: float, n: int) -> float:
        local = datetime.fromtimestamp(t, self._zone)
        day = date.fromordinal(local.toordinal() + n)
        return datetime.combine(day, local.time(), self._zone).timestamp()
