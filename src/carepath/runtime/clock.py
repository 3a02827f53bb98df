"""Clocks for the runtime: a callable returning an aware ``datetime``.

``system_clock`` is the default. :class:`ManualClock` is the one clock for tests and simulations
(``carepath.testing.FakeClock`` is the same class): it stays where it is put and only moves
forward when told (``advance``, ``set``, ``advance_to``).

>>> from datetime import UTC, datetime
>>> clock = ManualClock("2027-03-01T09:00:00+07:00")
>>> clock.advance(hours=2).isoformat()
'2027-03-01T11:00:00+07:00'
>>> clock.advance(90).isoformat()                  # seconds
'2027-03-01T11:01:30+07:00'
>>> clock.set(datetime(2027, 1, 1, tzinfo=UTC))
Traceback (most recent call last):
ValueError: a ManualClock never goes backwards (2027-01-01T00:00:00+00:00 < 2027-03-01T11:01:30+07:00)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["ManualClock", "system_clock"]


def system_clock() -> datetime:
    """The system time, in UTC."""
    return datetime.now(UTC)


def _aware(t: datetime | str) -> datetime:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()} is not allowed: give a timezone")
    return t


class ManualClock:
    """A clock that moves only when told, never backwards. ``clock()`` returns the current instant.

    ``start`` is an aware ``datetime`` or ISO 8601 text with an offset (default: the POSIX epoch).
    """

    def __init__(self, start: datetime | str | None = None) -> None:
        self._now = _aware(start) if start is not None else datetime(1970, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self._now

    @property
    def now(self) -> datetime:
        """The current instant."""
        return self._now

    def set(self, t: datetime | str) -> datetime:
        """Jump to ``t`` (aware, not earlier than now); the new instant."""
        t = _aware(t)
        if t < self._now:
            raise ValueError(
                f"a ManualClock never goes backwards ({t.isoformat()} < {self._now.isoformat()})"
            )
        self._now = t
        return t

    def advance(self, by: timedelta | float | None = None, **kwargs: float) -> datetime:
        """Move forward by ``by`` (a timedelta or seconds) plus ``timedelta(**kwargs)``."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by or 0)
        step += timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a ManualClock never goes backwards")
        self._now = self._now + step
        return self._now

    def advance_to(self, t: datetime | str) -> datetime:
        """Move to ``t`` if it is later (never backwards); the current instant."""
        t = _aware(t)
        if t > self._now:
            self._now = t
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
