"""Clocks for the runtime: a callable returning an aware ``datetime``.

``system_clock`` is the default. :class:`ManualClock` is for tests and simulations: it stays
where it is put and only moves forward when told (``set``, ``advance``, ``advance_to``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["ManualClock", "system_clock"]


def system_clock() -> datetime:
    """The system time, in UTC."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told. ``clock()`` returns the current instant."""

    def __init__(self, start: datetime | None = None) -> None:
        t = start if start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = t

    def __call__(self) -> datetime:
        return self.now

    def set(self, t: datetime) -> None:
        """Put the clock at ``t`` (backwards too)."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = t

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by ``by`` (a timedelta or seconds)."""
        self.now = self.now + (by if isinstance(by, timedelta) else timedelta(seconds=by))
        return self.now

    def advance_to(self, t: datetime) -> datetime:
        """Move to ``t`` if it is later (never backwards)."""
        if t > self.now:
            self.set(t)
        return self.now
