"""Run-time helpers bound into compiled expressions (private to :mod:`carepath.expr.compiler`).

Every helper is total: wrong types, ``None`` and arithmetic failures give ``False`` (for
predicates) or ``None`` (for values), never an exception. Generated code calls only these and the
few builtins listed in :data:`HELPERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

_SEQ = (list, tuple, set, frozenset)
_NUM = (int, float, Decimal)
_SIZED = (str, list, tuple, set, frozenset, dict)


def lt(a: Any, b: Any) -> bool:
    """``a < b``, false when either is null or the values do not compare."""
    try:
        return a is not None and b is not None and bool(a < b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def le(a: Any, b: Any) -> bool:
    """``a <= b``, null- and type-safe."""
    try:
        return a is not None and b is not None and bool(a <= b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def gt(a: Any, b: Any) -> bool:
    """``a > b``, null- and type-safe."""
    try:
        return a is not None and b is not None and bool(a > b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def ge(a: Any, b: Any) -> bool:
    """``a >= b``, null- and type-safe."""
    try:
        return a is not None and b is not None and bool(a >= b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def eq(a: Any, b: Any) -> bool:
    """``a == b`` between two non-literal operands: false when either is null."""
    try:
        return a is not None and b is not None and bool(a == b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def ne(a: Any, b: Any) -> bool:
    """``a != b``: false when either is null (SPEC §2.3: comparisons with null are false)."""
    try:
        return a is not None and b is not None and bool(a != b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def contains(a: Any, b: Any) -> bool:
    """``a in b`` for a non-literal list ``b``; false when ``a`` or ``b`` is null or ``b`` is no list."""
    if a is None or not isinstance(b, _SEQ):
        return False
    try:
        return bool(a in b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def not_contains(a: Any, b: Any) -> bool:
    """``a not in b`` for a non-literal list ``b``; false when ``a`` or ``b`` is null."""
    if a is None or not isinstance(b, _SEQ):
        return False
    try:
        return bool(a not in b)
    except (TypeError, ArithmeticError, ValueError):
        return False


def event_path(e: Mapping[str, Any], flat: str, parts: tuple[str, ...]) -> Any:
    """``event.a.b``: ``e["a.b"]`` if present, else ``e["a"]["b"]``; null when absent."""
    if flat in e:
        return e[flat]
    v: Any = e
    for p in parts:
        if not isinstance(v, Mapping):
            return None
        v = v.get(p)
    return v


def lower(s: Any) -> Any:
    """``lower(s)``: null unless ``s`` is a string."""
    return s.lower() if isinstance(s, str) else None


def upper(s: Any) -> Any:
    """``upper(s)``: null unless ``s`` is a string."""
    return s.upper() if isinstance(s, str) else None


def length(x: Any) -> Any:
    """``len(x)`` of a string or list; null otherwise."""
    return len(x) if isinstance(x, _SIZED) else None


def _as_instant(t: Any) -> Any:
    if isinstance(t, str):
        try:
            return datetime.fromisoformat(t)
        except ValueError:
            try:
                return date.fromisoformat(t)
            except ValueError:
                return None
    return t if isinstance(t, date) else None


def days_since(t: Any, scope: Mapping[str, Any]) -> Any:
    """Whole days from ``t`` (date, datetime or ISO string) to ``scope["now"]``; null on failure."""
    now = scope.get("now")
    t = _as_instant(t)
    if t is None or not isinstance(now, datetime):
        return None
    try:
        if isinstance(t, datetime):
            return (now - t) // timedelta(days=1)
        return (now.date() - t).days
    except (TypeError, ValueError, OverflowError):
        return None


def hours_since(t: Any, scope: Mapping[str, Any]) -> Any:
    """Whole hours from ``t`` to ``scope["now"]`` (a date counts from its midnight, in ``now``'s zone)."""
    now = scope.get("now")
    t = _as_instant(t)
    if t is None or not isinstance(now, datetime):
        return None
    try:
        if not isinstance(t, datetime):
            t = datetime(t.year, t.month, t.day, tzinfo=now.tzinfo)
        return (now - t) // timedelta(hours=1)
    except (TypeError, ValueError, OverflowError):
        return None


def absolute(x: Any) -> Any:
    """``abs(x)`` of a number or duration; null otherwise."""
    if isinstance(x, bool) or not isinstance(x, (*_NUM, timedelta)):
        return None
    try:
        return abs(x)
    except (TypeError, ArithmeticError, ValueError):
        return None


def _extreme(pick: Any, xs: tuple[Any, ...]) -> Any:
    """``pick`` (min or max) of the arguments, or of one list argument; null when any value is
    null or they do not compare."""
    if len(xs) == 1:
        if not isinstance(xs[0], _SEQ) or not xs[0]:
            return None
        xs = tuple(xs[0])
    if any(x is None for x in xs):
        return None
    try:
        return pick(xs)
    except (TypeError, ArithmeticError, ValueError):
        return None


def minimum(*xs: Any) -> Any:
    """``min(a, b, …)`` or ``min(list)``; null when any value is null or they do not compare."""
    return _extreme(min, xs)


def maximum(*xs: Any) -> Any:
    """``max(a, b, …)`` or ``max(list)``; null when any value is null or they do not compare."""
    return _extreme(max, xs)


def rounded(x: Any, n: int | None = None) -> Any:
    """``round(x)`` / ``round(x, n)`` of a number; null otherwise."""
    if isinstance(x, bool) or not isinstance(x, _NUM):
        return None
    try:
        return round(x) if n is None else round(x, n)
    except (TypeError, ArithmeticError, ValueError, OverflowError):
        return None


def negate(x: Any) -> Any:
    """Unary minus of a number or duration; null otherwise."""
    if isinstance(x, bool) or not isinstance(x, (*_NUM, timedelta)):
        return None
    try:
        return -x
    except (TypeError, ArithmeticError, ValueError, OverflowError):
        return None


def now(scope: Mapping[str, Any]) -> Any:
    """``now()``: the step's instant, ``scope["now"]``."""
    return scope.get("now")


HELPERS: dict[str, Any] = {
    "_lt": lt,
    "_le": le,
    "_gt": gt,
    "_ge": ge,
    "_eq": eq,
    "_ne": ne,
    "_in": contains,
    "_nin": not_contains,
    "_ev": event_path,
    "_lower": lower,
    "_upper": upper,
    "_len": length,
    "_days_since": days_since,
    "_hours_since": hours_since,
    "_abs": absolute,
    "_min": minimum,
    "_max": maximum,
    "_round": rounded,
    "_neg": negate,
    "_now": now,
}
