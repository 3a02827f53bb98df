"""Reading a calendar definition (the YAML mapping form) into a checked, normalised spec.

Private to :mod:`carepath.calendar.business`. Every problem is collected as ``(path, message, code)``
with the path relative to the calendar mapping, so the playbook loader can point at the node.
Nothing here imports the slow ``holidays`` package unless a ``country:`` entry asks for it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carepath.calendar.holidays import check_country

__all__ = ["DAYS", "CalendarSpec", "CountryRule", "Problem", "parse_spec"]

NodePath = tuple[str | int, ...]
Problem = tuple[NodePath, str, str]
Interval = tuple[int, int]  # seconds after the opening date's local midnight; close may pass 86400

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEYS = ("timezone", "hours", "holidays", "overrides")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DAY = 86400

# Diagnostic codes (SPEC §5): bad or overlapping hours; no open time; anything else.
HOURS, NO_OPEN, OTHER = "CP506", "CP507", "CP512"


@dataclass(frozen=True, slots=True)
class CountryRule:
    """Public holidays of a country (optionally a subdivision), minus ``except`` dates."""

    country: str
    subdiv: str | None
    except_: frozenset[date]


@dataclass(slots=True)
class CalendarSpec:
    """A valid calendar definition, normalised.

    ``weekly[w]`` lists the intervals opening on weekday ``w`` (Monday = 0), sorted; an interval
    is ``(open, close)`` in seconds after that date's local midnight, ``close`` up to two days.
    """

    timezone: str
    always: bool = False
    weekly: tuple[tuple[Interval, ...], ...] = ((),) * 7
    overrides: dict[date, tuple[Interval, ...]] = field(default_factory=dict)
    dates: set[date] = field(default_factory=set)
    ranges: list[tuple[date, date]] = field(default_factory=list)
    countries: list[CountryRule] = field(default_factory=list)
    removed_dates: set[date] = field(default_factory=set)
    removed_ranges: list[tuple[date, date]] = field(default_factory=list)


def parse_spec(
    spec: object, timezone: str | None = None
) -> tuple[CalendarSpec | None, list[Problem]]:
    """Check ``spec`` and normalise it; return the spec (``None`` on any error) and every problem."""
    problems: list[Problem] = []
    if isinstance(spec, str):
        if spec.strip().lower() != "always":
            problems.append(
                ((), f"a calendar is a mapping or the string 'always', not {spec!r}", OTHER)
            )
            return None, problems
        tz = _zone(timezone or "UTC", ("timezone",), problems)
        return (CalendarSpec(timezone=tz, always=True) if not problems else None), problems
    if not isinstance(spec, Mapping):
        problems.append(
            (
                (),
                f"a calendar is a mapping or the string 'always', not {type(spec).__name__}",
                OTHER,
            )
        )
        return None, problems

    for key in spec:
        if key not in _KEYS:
            hint = difflib.get_close_matches(str(key), _KEYS, n=1)
            more = (
                f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(_KEYS)}"
            )
            problems.append(((str(key),), f"unknown calendar key {key!r}{more}", OTHER))

    raw_tz = spec.get("timezone", timezone or "UTC")
    tz = _zone(raw_tz, ("timezone",), problems)
    out = CalendarSpec(timezone=tz)
    paths: dict[tuple[int, Interval], NodePath] = {}
    out.weekly = _weekly(spec.get("hours"), problems, paths)
    out.overrides = _overrides(spec.get("overrides"), problems)
    _holidays(spec.get("holidays"), out, problems)
    _check_crossings(out, paths, problems)
    return (out if not problems else None), problems


def _zone(raw: object, path: NodePath, problems: list[Problem]) -> str:
    if not isinstance(raw, str) or not raw:
        problems.append(
            (path, f"timezone must be an IANA name such as 'Europe/Berlin', not {raw!r}", OTHER)
        )
        return "UTC"
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            (path, f"unknown timezone {raw!r}; use an IANA name such as 'Asia/Ho_Chi_Minh'", OTHER)
        )
        return "UTC"
    return raw


# -- hours -------------------------------------------------------------------------------------


def parse_days(key: str) -> list[int] | None:
    """``mon``, ``mon-fri``, ``fri-mon`` (wraps over the weekend), ``sat,sun``, ``mon-wed,fri``."""
    days: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            return None
        a, b = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return days


def _clock(text: str, *, end: bool) -> int | None:
    m = _TIME.match(text.strip())
    if not m:
        return None
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if mi > 59 or s > 59 or h > 24 or (h == 24 and (mi or s or not end)):
        return None
    return h * 3600 + mi * 60 + s


def parse_interval(raw: object) -> Interval | str:
    """``"09:00-17:00"`` → seconds; an end not after the start crosses midnight; ``24:00`` ends a day."""
    if not isinstance(raw, str) or raw.count("-") != 1:
        return f"expected an interval such as '09:00-17:00', not {raw!r}"
    a, b = raw.split("-")
    start, stop = _clock(a, end=False), _clock(b, end=True)
    if start is None or stop is None:
        return f"bad interval {raw!r}: times are HH:MM (00:00-23:59, and 24:00 as an end)"
    if stop <= start:
        stop += _DAY  # crosses midnight (21:00-02:00); 09:00-09:00 is a whole day
    return (start, stop)


def _intervals(raw: object, path: NodePath, problems: list[Problem]) -> list[Interval]:
    if isinstance(raw, str):
        raw = [raw]
    if raw is None:
        raw = []
    if not isinstance(raw, list | tuple):
        problems.append(
            (path, f"expected a list of intervals such as ['09:00-17:00'], not {raw!r}", HOURS)
        )
        return []
    out: list[Interval] = []
    for i, item in enumerate(raw):
        iv = parse_interval(item)
        if isinstance(iv, str):
            problems.append(((*path, i), iv, HOURS))
        else:
            out.append(iv)
    return out


def _fmt(iv: Interval) -> str:
    def hm(s: int) -> str:
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")

    close = iv[1] % _DAY if iv[1] != _DAY else _DAY
    return f"{hm(iv[0])}-{hm(close)}"


def _overlaps(ivs: list[tuple[Interval, NodePath]]) -> list[tuple[NodePath, Interval, Interval]]:
    ivs = sorted(ivs)
    return [(pb, b, a) for (a, _), (b, pb) in pairwise(ivs) if b[0] < a[1]]


def _no_overlap(ivs: list[tuple[Interval, NodePath]], where: str, problems: list[Problem]) -> None:
    for pb, b, a in _overlaps(ivs):
        problems.append((pb, f"{_fmt(b)} overlaps {_fmt(a)} on {where}", HOURS))


def _weekly(
    raw: object, problems: list[Problem], paths_out: dict[tuple[int, Interval], NodePath]
) -> tuple[tuple[Interval, ...], ...]:
    per_day: list[list[tuple[Interval, NodePath]]] = [[] for _ in range(7)]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(
            (("hours",), "hours must map day keys (mon-fri, sat,sun) to interval lists", HOURS)
        )
        return ((),) * 7
    for key, value in raw.items():
        days = parse_days(key) if isinstance(key, str) else None
        if days is None:
            problems.append(
                (
                    ("hours", str(key)),
                    f"bad day key {key!r}: use mon..sun, a range (mon-fri) or a list (sat,sun)",
                    OTHER,
                )
            )
            continue
        ivs = _intervals(value, ("hours", key), problems)
        paths: list[NodePath] = [("hours", key, i) for i in range(len(ivs))]
        if isinstance(value, str):
            paths = [("hours", key)]
        for d in dict.fromkeys(days):
            per_day[d].extend(zip(ivs, paths, strict=False))
    found: dict[tuple[NodePath, Interval, Interval], list[str]] = {}
    for d in range(7):
        for key in _overlaps(per_day[d]):
            found.setdefault(key, []).append(DAYS[d])
    for (pb, b, a), days_ in found.items():
        problems.append((pb, f"{_fmt(b)} overlaps {_fmt(a)} on {', '.join(days_)}", HOURS))
    if not any(per_day):
        problems.append(
            (("hours",), "the weekly hours are empty: the calendar is never open", NO_OPEN)
        )
    for d in range(7):
        for iv, path in per_day[d]:
            paths_out.setdefault((d, iv), path)
    return tuple(tuple(sorted(iv for iv, _ in day)) for day in per_day)


# -- dates -------------------------------------------------------------------------------------


def _date(raw: object) -> date | None:
    if isinstance(raw, datetime):
        return None  # a holiday is a whole local date, not an instant
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            return None
    return None


def _key(raw: object) -> str | int:
    return raw.isoformat() if isinstance(raw, date) else str(raw)


def _overrides(raw: object, problems: list[Problem]) -> dict[date, tuple[Interval, ...]]:
    out: dict[date, tuple[Interval, ...]] = {}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        problems.append(
            (("overrides",), "overrides must map dates to interval lists ([] = closed)", OTHER)
        )
        return out
    for key, value in raw.items():
        d = _date(key)
        path: NodePath = ("overrides", _key(key))
        if d is None:
            problems.append((path, f"bad override date {key!r}: use YYYY-MM-DD", OTHER))
            continue
        ivs = _intervals(value, path, problems)
        _no_overlap([(iv, (*path, i)) for i, iv in enumerate(ivs)], d.isoformat(), problems)
        out[d] = tuple(sorted(ivs))
    return out


def _range(
    entry: Mapping[str, Any], path: NodePath, problems: list[Problem]
) -> tuple[date, date] | None:
    a, b = _date(entry.get("from")), _date(entry.get("to"))
    if a is None:
        problems.append(((*path, "from"), f"bad date {entry.get('from')!r}: use YYYY-MM-DD", OTHER))
    if b is None:
        problems.append(((*path, "to"), f"bad date {entry.get('to')!r}: use YYYY-MM-DD", OTHER))
    if a is None or b is None:
        return None
    if b < a:
        problems.append(((*path, "to"), f"range ends ({b}) before it starts ({a})", OTHER))
        return None
    return (a, b)


def _dates(raw: object, path: NodePath, problems: list[Problem]) -> list[date]:
    items = raw if isinstance(raw, list | tuple) else [raw]
    out: list[date] = []
    for i, item in enumerate(items):
        d = _date(item)
        if d is None:
            where = (*path, i) if isinstance(raw, list | tuple) else path
            problems.append((where, f"bad date {item!r}: use YYYY-MM-DD", OTHER))
        else:
            out.append(d)
    return out


def _unknown(
    entry: Mapping[str, Any], allowed: tuple[str, ...], path: NodePath, problems: list[Problem]
) -> None:
    for k in entry:
        if k not in allowed:
            problems.append(
                ((*path, str(k)), f"unknown key {k!r} here; expected {', '.join(allowed)}", OTHER)
            )


def _holidays(raw: object, out: CalendarSpec, problems: list[Problem]) -> None:
    if raw is None:
        return
    if not isinstance(raw, list | tuple):
        problems.append(
            (("holidays",), "holidays must be a list of dates, ranges and country entries", OTHER)
        )
        return
    for i, entry in enumerate(raw):
        path: NodePath = ("holidays", i)
        if not isinstance(entry, Mapping):
            d = _date(entry)
            if d is None:
                problems.append(
                    (
                        path,
                        f"bad holiday {entry!r}: use YYYY-MM-DD, {{from:, to:}} or {{country:}}",
                        OTHER,
                    )
                )
            else:
                out.dates.add(d)
        elif "country" in entry:
            _unknown(entry, ("country", "subdiv", "except", "name"), path, problems)
            rule = _country(entry, path, problems)
            if rule is not None:
                out.countries.append(rule)
        elif "remove" in entry:
            _unknown(entry, ("remove",), path, problems)
            what = entry["remove"]
            if isinstance(what, Mapping):
                r = _range(what, (*path, "remove"), problems)
                if r is not None:
                    out.removed_ranges.append(r)
            else:
                out.removed_dates.update(_dates(what, (*path, "remove"), problems))
        elif "from" in entry or "to" in entry:
            _unknown(entry, ("from", "to", "name"), path, problems)
            r = _range(entry, path, problems)
            if r is not None:
                out.ranges.append(r)
        elif "date" in entry:
            _unknown(entry, ("date", "name"), path, problems)
            out.dates.update(_dates(entry["date"], (*path, "date"), problems))
        else:
            problems.append(
                (
                    path,
                    "a holiday entry is a date, {from:, to:}, {date:}, {country:} or {remove:}",
                    OTHER,
                )
            )


def _country(
    entry: Mapping[str, Any], path: NodePath, problems: list[Problem]
) -> CountryRule | None:
    code, subdiv = entry.get("country"), entry.get("subdiv")
    if not isinstance(code, str) or (subdiv is not None and not isinstance(subdiv, str)):
        problems.append(
            (
                path,
                f"country and subdiv are codes such as VN or US/CA, not {code!r}/{subdiv!r}",
                OTHER,
            )
        )
        return None
    excepted = _dates(entry.get("except", []), (*path, "except"), problems)
    message = check_country(code, subdiv)
    if message is not None:
        problems.append(
            ((*path, "subdiv" if subdiv and code.upper() in message else "country"), message, OTHER)
        )
        return None
    return CountryRule(code.upper(), subdiv, frozenset(excepted))


def _check_crossings(
    spec: CalendarSpec, paths: dict[tuple[int, Interval], NodePath], problems: list[Problem]
) -> None:
    """Rule 9: an interval crossing midnight must not run into the next date's intervals."""
    for d in range(7):
        nxt = spec.weekly[(d + 1) % 7]
        for iv in spec.weekly[d]:
            if iv[1] > _DAY and nxt and iv[1] - _DAY > nxt[0][0]:
                where = paths.get((d, iv), ("hours",))
                message = f"{_fmt(iv)} on {DAYS[d]} runs into {_fmt(nxt[0])} on {DAYS[(d + 1) % 7]}"
                problems.append((where, message, HOURS))
    for day, ivs in spec.overrides.items():
        nxt_day = day.fromordinal(day.toordinal() + 1)
        prev_day = day.fromordinal(day.toordinal() - 1)
        nxt = spec.overrides.get(nxt_day, spec.weekly[nxt_day.weekday()])
        prev = spec.overrides.get(prev_day, spec.weekly[prev_day.weekday()])
        path: NodePath = ("overrides", day.isoformat())
        for iv in ivs:
            if iv[1] > _DAY and nxt and iv[1] - _DAY > nxt[0][0]:
                problems.append(
                    (path, f"{_fmt(iv)} on {day} runs into {_fmt(nxt[0])} on {nxt_day}", HOURS)
                )
        if prev_day not in spec.overrides and ivs:
            for iv in prev:
                if iv[1] > _DAY and iv[1] - _DAY > ivs[0][0]:
                    problems.append(
                        (path, f"{_fmt(iv)} on {prev_day} runs into {_fmt(ivs[0])} on {day}", HOURS)
                    )
