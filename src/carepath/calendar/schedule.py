"""Recurring touchpoints: cron schedules in a time zone, shifted into a window's open hours.

Cron fields are matched on *wall-clock* time in the schedule's zone (croniter works on naive
local times, so it never sees DST), and each matching wall time becomes an instant by SPEC §3
rule 8: a time that does not exist (spring forward) moves forward by the gap, an ambiguous one
(fall back) fires once, at its first occurrence. A fire time outside the ``window`` calendar's
open hours moves to the window's next opening; several fires moved to the same opening count once.

>>> from datetime import datetime
>>> from zoneinfo import ZoneInfo
>>> s = Schedule("30 2 * * *", "America/New_York")
>>> s.next_after(datetime(2026, 3, 8, 0, 0, tzinfo=ZoneInfo("America/New_York")))  # 02:30 does not exist
datetime.datetime(2026, 3, 8, 3, 30, tzinfo=zoneinfo.ZoneInfo(key='America/New_York'))
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carepath.errors import DefinitionError

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar

__all__ = ["Schedule"]

_SLACK = timedelta(hours=3)  # longer than any DST gap in the tz database
_MAX_STEPS = 100_000


class Schedule:
    """A cron expression in an IANA time zone, optionally confined to a window calendar.

    Raises :class:`~carepath.errors.DefinitionError` (a ``ValueError``) for a bad expression,
    a bad zone, or an expression that never fires.
    """

    __slots__ = ("_cron", "_tz", "cron", "timezone", "window")

    def __init__(self, cron: str, timezone: str, window: Calendar | None = None) -> None:
        from croniter import croniter  # imported here: `import carepath` stays fast

        self.cron = cron
        self.timezone = timezone
        self.window = window
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise DefinitionError(
                f"unknown timezone {timezone!r} for cron schedule {cron!r}"
            ) from None
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise DefinitionError(
                f"invalid cron expression {cron!r}: expected five fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 9 * * MON'"
            )
        self._cron = croniter
        try:
            self._iter(datetime(2000, 1, 1)).get_next(datetime)
        except Exception as exc:  # croniter's "no match within its search range"
            raise DefinitionError(f"cron expression {cron!r} never fires: {exc}") from None

    def __repr__(self) -> str:
        return f"Schedule({self.cron!r}, {self.timezone!r}, window={self.window!r})"

    def _iter(self, start: datetime) -> Any:
        return self._cron(self.cron, start)

    def _raw_next(self, t: float) -> float:
        """The first cron fire strictly after epoch ``t`` (no window)."""
        local = datetime.fromtimestamp(t, self._tz).replace(tzinfo=None, fold=0)
        start = local
        # A wall time in a spring-forward gap fires *after* the gap, so fires whose wall time is
        # before `local` may still be ahead of `t` when a transition happened just before `t`.
        if self._tz.utcoffset(local - _SLACK) != self._tz.utcoffset(local):
            start = local - _SLACK
        it = self._iter(start)
        best: float | None = None
        for _ in range(_MAX_STEPS):
            wall: datetime = it.get_next(datetime)
            aware = wall.replace(tzinfo=self._tz)  # fold=0: rule 8
            e = aware.timestamp()
            in_gap = datetime.fromtimestamp(e, self._tz).replace(tzinfo=None) != wall
            if e > t and (best is None or e < best):
                best = e
            # Wall times outside a gap map to instants in order, so the first one past `t`
            # ends the search; a gap time may still be beaten by a later wall time.
            if best is not None and not in_gap and e > t:
                return best
        raise DefinitionError(
            f"cron expression {self.cron!r} found no fire time"
        )  # pragma: no cover

    def next_after_s(self, t: float) -> float:
        """:meth:`next_after` on POSIX epoch seconds."""
        e = self._raw_next(t)
        if self.window is not None:
            e = self.window.next_open_s(e)
        return e

    def next_after(self, t: datetime) -> datetime:
        """The next fire strictly after ``t``, moved to the window's next opening if outside it.

        The result is in the schedule's time zone.
        """
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"t must be a timezone-aware datetime, got naive {t.isoformat()}")
        return datetime.fromtimestamp(self.next_after_s(t.timestamp()), self._tz)
