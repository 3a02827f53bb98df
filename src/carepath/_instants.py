"""Instants and JSON values as the engine keeps them (private; used by :mod:`carepath.state`,
:mod:`carepath.events` and the packages around the engine).

Instants are aware ``datetime`` objects in the public API and ISO 8601 with offsets in JSON;
internally the engine keeps POSIX seconds (floats rounded to microseconds) so that business-time
arithmetic stays cheap and results are byte-for-byte reproducible.

The supported instants are those from ``1900-01-01T00:00:00Z`` up to, not including,
``9000-01-01T00:00:00Z`` (:data:`MIN_INSTANT`, :data:`MAX_INSTANT`): an event outside that range
is invalid. The margin below ``datetime``'s own limits (years 1 to 9999) leaves room for every
deadline a playbook can compute from an event (durations are bounded by ten years).
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import islice, repeat
from operator import le
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

try:  # a declared dependency: encodes states 4-5x faster than the standard library
    import orjson as _orjson
except ImportError:  # pragma: no cover - without it, the standard library writes the same JSON
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "MAX_INSTANT",
    "MIN_INSTANT",
    "TYPED_KINDS",
    "check_range",
    "dt",
    "dumps",
    "from_iso",
    "json_data",
    "json_value",
    "loads",
    "local_hour",
    "per_quarter_hour",
    "round_micros",
    "to_iso",
    "ts",
    "typed_data",
    "typed_value",
    "zone",
]

#: The first supported instant (inclusive).
MIN_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
#: The end of the supported instants (exclusive).
MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)
_MIN_S = MIN_INSTANT.timestamp()
_MAX_S = MAX_INSTANT.timestamp()


def dumps(obj: Any) -> str:
    """Compact JSON with sorted keys, as carepath writes states and actions: by orjson when it can
    encode ``obj`` exactly, else by the standard library (an integer beyond 64 bits, a lone
    surrogate). Both write the same text, except that orjson spells floats below 1e-4 in plain
    decimals (``0.00001`` for ``1e-05``); either reads back to the same value."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    """JSON text read as :func:`json.loads` reads it, by orjson when that gives the same values:
    a text with a run of 19 digits or more (an integer orjson would turn into a float beyond 64
    bits) goes to the standard library, and so does one orjson refuses (``NaN``, ``1e400``, a lone
    surrogate)."""
    if _orjson is not None and _LONG_DIGITS(text) is None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(text)


_LONG_DIGITS = re.compile(r"\d{19}").search


def round_micros(x: float) -> float:
    """Round POSIX seconds to microseconds (stable, reproducible instants)."""
    return round(x * 1_000_000) / 1_000_000


def ts(t: datetime) -> float:
    """An aware datetime → POSIX seconds (µs precision)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(
            f"naive datetime {t.isoformat()} is not allowed: give a timezone (e.g. +07:00)"
        )
    return round_micros(t.timestamp())


_T = TypeVar("_T")
#: Seconds in a quarter hour: every UTC offset is a multiple of it, so every instant of one
#: quarter hour (from a multiple of 900 POSIX seconds) has the same local date and hour.
QUARTER_S = 900


def local_hour(quarter: int, tz: tzinfo) -> datetime:
    """The start of the local hour (in ``tz``) that quarter hour number ``quarter`` (POSIX
    seconds // :data:`QUARTER_S`) lies in."""
    local = datetime.fromtimestamp(quarter * QUARTER_S, tz)
    return local.replace(minute=0, second=0, microsecond=0)


def per_quarter_hour(
    ts: Sequence[float], value: Callable[[int], _T], cache: dict[int, _T]
) -> list[_T]:
    """``[value(int(t // 900)) for t in ts]``, each quarter hour's value computed once (kept in
    ``cache``, by quarter hour): for the local date or hour of many instants. Instants in
    ascending order (the usual case: clock facts by stop, cases by opening) cost one lookup per
    quarter hour, whose instants are found by bisection; others, one lookup each."""

    def of(k: int) -> _T:
        v = cache.get(k, cache)
        if v is cache:
            v = cache[k] = value(k)
        return v  # type: ignore[return-value]

    if not all(map(le, ts, islice(ts, 1, None))):  # not ascending (or a NaN)
        return [of(int(t // QUARTER_S)) for t in ts]
    out: list[_T] = []
    n, i = len(ts), 0
    while i < n:
        k = int(ts[i] // QUARTER_S)
        j = bisect_left(ts, (k + 1) * QUARTER_S, i)  # the first instant past this quarter hour
        out.extend(repeat(of(k), j - i))
        i = j
    return out


def check_range(seconds: float, what: str) -> float:
    """``seconds`` (POSIX) if it lies in the supported range, else a ``ValueError`` naming
    ``what`` and the range."""
    if not _MIN_S <= seconds < _MAX_S:
        raise ValueError(
            f"{what} is outside the supported instants "
            f"({MIN_INSTANT.isoformat()} up to {MAX_INSTANT.isoformat()}, not included)"
        )
    return seconds


_TZ_CACHE: dict[str, tzinfo] = {}


def zone(name: str) -> tzinfo:
    """A cached ZoneInfo."""
    z = _TZ_CACHE.get(name)
    if z is None:
        z = UTC if name == "UTC" else ZoneInfo(name)
        _TZ_CACHE[name] = z
    return z


def dt(x: float, tz: tzinfo = UTC) -> datetime:
    """POSIX seconds → aware datetime in ``tz``."""
    return datetime.fromtimestamp(x, tz)


def to_iso(x: float | None, tz: tzinfo = UTC) -> str | None:
    """POSIX seconds → ISO 8601 with offset (``None`` stays ``None``)."""
    if x is None:
        return None
    d = datetime.fromtimestamp(x, tz)
    return d.isoformat(timespec="microseconds" if d.microsecond else "seconds")


def from_iso(s: str) -> float:
    """ISO 8601 with offset (or ``Z``) → POSIX seconds; a naive instant is a ``ValueError``."""
    d = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    return ts(d)


def json_value(v: Any) -> Any:
    """``v`` as JSON can hold it: instants and dates in ISO 8601, durations in seconds."""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Decimal):  # as the text a decimal field keeps (exact)
        return str(v) if v.is_finite() else None
    if isinstance(v, Mapping):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


_PLAIN = frozenset({str, int, bool, type(None)})


def json_data(m: Mapping[str, Any]) -> Any:
    """:func:`json_value` of case data, answered without recursion when every value is a plain
    string, integer, boolean or null (the usual case)."""
    for v in m.values():
        if v.__class__ not in _PLAIN:
            return json_value(m)
    return dict(m)


def typed_value(value: Any, kind: str) -> Any:
    """A field's value as expressions compare it, from the JSON form it is kept in (SPEC §2.3:
    ``days_since(d) > 365``, ``d > date("2025-01-01")``, ``amount > 10``): the ISO text of a
    ``date`` as a ``date``, of a ``datetime`` (with an offset) as an aware ``datetime``, the text
    of a ``decimal`` as the number it spells (a float, as a JSON number is read). Anything else,
    or text that does not read so, is returned unchanged: checking it is the type rules' business
    (:func:`carepath.expr` ``coerce``)."""
    if value.__class__ is not str:
        return value
    try:
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "datetime":
            d = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
            return d if d.tzinfo is not None and d.utcoffset() is not None else value
        if kind == "decimal":
            x = float(value)
            return x if math.isfinite(x) else value
    except ValueError:
        pass
    return value


TYPED_KINDS = frozenset({"date", "datetime", "decimal"})
"""The field kinds kept in JSON form (text) but compared as their type (:func:`typed_value`)."""


def typed_data(data: Mapping[str, Any], typed: tuple[tuple[str, str], ...]) -> Mapping[str, Any]:
    """Case ``data`` as conditions read it: each field of ``typed`` (``(name, kind)``, kinds in
    :data:`TYPED_KINDS`) held as text becomes its :func:`typed_value`. The case keeps the JSON
    form (the state and its JSON do not change); ``data`` itself is returned when nothing is
    converted, else a new dict (issue 15 #7).

    >>> typed_data({"d": "2026-12-31", "n": 1}, (("d", "date"),))
    {'d': datetime.date(2026, 12, 31), 'n': 1}
    >>> data = {"d": None}
    >>> typed_data(data, (("d", "date"),)) is data
    True
    """
    out: dict[str, Any] | None = None
    for name, kind in typed:
        value = data.get(name)
        if value.__class__ is str:
            converted = typed_value(value, kind)
            if converted is not value:
                if out is None:
                    out = dict(data)
                out[name] = converted
    return data if out is None else out
