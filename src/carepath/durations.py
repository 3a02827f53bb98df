"""Durations of the playbook format (SPEC §2.2).

``45s``, ``15m``, ``2h``, ``1h30m``, ``3d``, ``2w``, ``3mo``, ``1y``, ``2bd`` or ISO 8601
(``PT2H``, ``P3D``, ``P3M``, ``P1Y``). ``s``/``m``/``h`` are exact lengths; ``d``/``w`` are
calendar days (same local time, DST-aware) and ``mo``/``y`` calendar months and years (the same
day of the month, clamped to its last day: :func:`add_months`), all only valid where time is
wall-clock; ``bd`` counts business days and cannot be mixed with other units.

>>> parse_duration("3mo").months, parse_duration("1y2mo").months, parse_duration("P1Y").months
(3, 14, 12)
>>> from datetime import datetime
>>> from zoneinfo import ZoneInfo
>>> add_months(datetime(2026, 1, 31, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")), 1).isoformat()
'2026-02-28T09:00:00+07:00'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from carepath.errors import DurationError

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

__all__ = ["MAX_LENGTH", "Duration", "DurationError", "add_months", "parse_duration"]

_UNIT = {"w": 0, "d": 0, "h": 3600, "m": 60, "s": 1}
# Anchored (fullmatch only), ASCII digits, no nested quantifiers: linear, and the input is bounded
# by MAX_LENGTH before it gets here anyway.
_ISO = re.compile(
    r"P(?:(?P<y>[0-9]+)Y)?(?:(?P<mo>[0-9]+)M)?(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)S)?)?"
)
_DIGITS = frozenset("0123456789")
_MAX_SECONDS = 10 * 366 * 86400  # ten years: anything longer is a typo, and bounds the arithmetic
#: The longest duration text read at all (``P1W2DT3H4M5.5S`` is 14): a longer one is an error
#: before any parsing, so hostile input (60,000 digits) costs no more than a short one.
MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: exact ``seconds`` plus calendar ``days`` (``w`` = 7 days) and
    ``months`` (``y`` = 12 months), or ``bd``.

    A ``bd`` duration has no other part. Calendar parts apply largest first: months, then days,
    then seconds.
    """

    seconds: float = 0.0
    days: int = 0
    business_days: int = 0
    text: str = ""
    months: int = 0

    @property
    def is_exact(self) -> bool:
        """Only ``s``/``m``/``h``: an exact length, valid in business time."""
        return self.days == 0 and self.business_days == 0 and self.months == 0

    @property
    def timedelta(self) -> timedelta:
        """The exact part (``days`` count as 24 h here; use calendar arithmetic for wall days)."""
        return timedelta(seconds=self.seconds, days=self.days)

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object, *, business: bool = False) -> Duration:
    """Parse ``text``; with ``business=True`` reject ``d``/``w`` (SPEC §2.2) with a hint."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise DurationError(f"expected a duration such as 2h, 1h30m, 3bd or PT2H, got {text!r}")
    if isinstance(text, int):
        raise DurationError(
            f"a bare number ({text}) is not a duration",
            hint=f"add a unit: {text}s, {text}m or {text}h",
        )
    s = text.strip()
    if len(s) > MAX_LENGTH:
        raise DurationError(
            f"duration {_clip(s)!r} is {len(s):,} characters long; a duration has at most {MAX_LENGTH}",
            hint="write 2h, 30m, 1h30m or 3bd",
        )
    if not s:
        raise DurationError("empty duration", hint="write 2h, 30m, 1h30m or 3bd")
    dur = _parse_iso(s) if s[:1] in "Pp" else _parse_short(s)
    longest = dur.seconds + (dur.days + dur.business_days + dur.months * 31) * 86400
    if longest > _MAX_SECONDS:
        raise DurationError(f"duration {s!r} is longer than ten years")
    if business and dur.months:
        raise DurationError(
            f"{s!r} counts calendar months, which business time does not have",
            hint="use business days (for example 60bd) or hours of open time; months are valid "
            "where time is wall-clock (a timer or an action `in:` without a calendar)",
            code="CP205",
        )
    if business and dur.days:
        raise DurationError(
            f"{s!r} counts calendar days, which business time does not have",
            hint=f"use business days ({dur.days}bd) or hours ({dur.days * 24}h of open time)",
            code="CP205",
        )
    return dur


def _clip(s: str) -> str:
    return s if len(s) <= 24 else s[:20] + "..."


def _parse_short(s: str) -> Duration:
    """``<digits><unit>`` repeated, read by a scanner: one pass, no backtracking."""
    pos = 0
    seconds = 0
    days = 0
    months = 0
    bd = 0
    seen: set[str] = set()
    end = len(s)
    while pos < end:
        i = pos
        while i < end and s[i] in _DIGITS:
            i += 1
        if i in (pos, end) or i - pos > 18:  # more digits than any ten-year duration has
            break
        if s.startswith("bd", i):
            unit = "bd"
        elif s.startswith("mo", i):
            unit = "mo"
        elif s[i] in _UNIT or s[i] == "y":
            unit = s[i]
        else:
            break
        n = int(s[pos:i])
        if unit in seen:
            raise DurationError(f"unit {unit!r} repeated in duration {s!r}")
        seen.add(unit)
        if unit == "bd":
            bd = n
        elif unit == "y":
            months += 12 * n
        elif unit == "mo":
            months += n
        elif unit == "w":
            days += 7 * n
        elif unit == "d":
            days += n
        else:
            seconds += n * _UNIT[unit]
        pos = i + len(unit)
    if pos != end or not seen:
        raise DurationError(
            f"cannot read duration {_clip(s)!r}",
            hint="use a number and a unit: 45s, 15m, 2h, 1h30m, 3d, 2w, 3mo, 1y, 2bd, "
            "or ISO 8601 (PT2H)",
        )
    if bd and (seconds or days or months):
        raise DurationError(
            f"business days cannot be mixed with other units in {s!r}",
            hint="write the business days alone (2bd) or use hours of open time",
        )
    return Duration(seconds=float(seconds), days=days, business_days=bd, text=s, months=months)


def _parse_iso(s: str) -> Duration:
    m = _ISO.fullmatch(s.upper())
    if not m or s.upper() in ("P", "PT") or s.upper().endswith("T"):
        raise DurationError(
            f"cannot read ISO 8601 duration {s!r}", hint="for example PT2H, PT30M, P3D"
        )
    g = {k: v for k, v in m.groupdict().items() if v is not None}
    for unit in ("y", "mo", "w", "d", "h", "m"):
        if len(g.get(unit, "")) > 18:
            raise DurationError(f"duration {_clip(s)!r} is longer than ten years")
    months = int(g.get("y", 0)) * 12 + int(g.get("mo", 0))
    days = int(g.get("w", 0)) * 7 + int(g.get("d", 0))
    seconds = int(g.get("h", 0)) * 3600 + int(g.get("m", 0)) * 60 + float(g.get("s", 0))
    return Duration(seconds=float(seconds), days=days, text=s, months=months)


def add_months(local: datetime, months: int) -> datetime:
    """``local`` plus ``months`` calendar months: the same wall time on the same day of the month,
    clamped to the month's last day (31 January + 1 month = 28 or 29 February), by
    ``dateutil.relativedelta``. ``local`` carries the timezone the months count in; a wall time
    that does not exist there moves forward by the gap, an ambiguous one is its first occurrence
    (SPEC §3 rule 8): the caller turns the result into an instant."""
    return local + _months(months)


@functools.lru_cache(maxsize=256)
def _months(months: int) -> relativedelta:
    """``relativedelta(months=months)``, made once per count (building one costs more than adding
    it: a case with a ``3mo`` and a ``1y`` timer opens twice as fast)."""
    from dateutil.relativedelta import relativedelta

    return relativedelta(months=months)
