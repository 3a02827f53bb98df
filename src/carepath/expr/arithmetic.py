"""Arithmetic in conditions and ``=`` values (SPEC §10): ``+ - * /`` on numbers and durations,
``+ -`` between instants and durations — the static type rule and the run-time helpers.

:func:`result_type` says what an operator gives for two operand types, or why it does not apply
(the compiler turns that into a CP403 at the operator). The helpers the generated code calls
(``_add``, ``_sub``, ``_mul``, ``_div``, and ``_dec``, ``_dur``, ``_inst``, which read a
decimal, duration or datetime operand as the case data keeps it) are total over null and ill-typed values (the
result is null, like a missing value, and so is a division by zero), and bounded: a result (or an
operand) beyond :data:`MAX_NUMBER`, :data:`MAX_DURATION` or the supported instants
(1900–9000) raises :class:`~carepath.errors.InvalidEvent` ("arithmetic overflow: …"): the event is
rejected and the case is unchanged. They raise nothing else.

>>> result_type("+", INT, FLOAT), result_type("-", DATETIME, DATETIME), result_type("*", DURATION, INT)
(FieldType(kind='float', values=(), item=None), FieldType(kind='duration', values=(), item=None), FieldType(kind='duration', values=(), item=None))
>>> add(2, 3), sub(timedelta(hours=2), timedelta(minutes=30)), div(7, 2), div(1, 0)
(5, datetime.timedelta(seconds=5400), 3.5, None)
>>> mul(10**15, 10)
Traceback (most recent call last):
...
carepath.errors.InvalidEvent: arithmetic overflow: 10000000000000000 is beyond ±1000000000000000
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from carepath.errors import InvalidEvent
from carepath.expr.types import (
    ANY,
    DATETIME,
    DECIMAL,
    DURATION,
    FLOAT,
    INT,
    NUMERIC_KINDS,
    FieldType,
)

__all__ = [
    "HELPERS",
    "MAX_DURATION",
    "MAX_NUMBER",
    "OPERATORS",
    "add",
    "as_decimal",
    "as_duration",
    "as_instant",
    "div",
    "mul",
    "result_type",
    "sub",
]

MAX_NUMBER = 10**15
"""The largest magnitude of a number an arithmetic operator takes or gives."""
MAX_DURATION = timedelta(days=36600)
"""The largest magnitude of a duration an arithmetic operator takes or gives (about 100 years)."""
_MIN_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
_MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)

OPERATORS = ("+", "-", "*", "/")
"""The arithmetic operators of the language (``**``, ``//`` and ``%`` are not)."""


# -- types ------------------------------------------------------------------------------------


def _number_type(a: FieldType, b: FieldType, op: str) -> FieldType:
    kinds = {a.kind, b.kind}
    if "any" in kinds:
        return ANY
    if "float" in kinds:
        return FLOAT
    if "decimal" in kinds:
        return DECIMAL
    return FLOAT if op == "/" else INT


def result_type(op: str, a: FieldType, b: FieldType) -> FieldType | tuple[str, str | None]:  # noqa: C901 - one branch per pair of operand families (the table in docs/conditions.md)
    """The type of ``a <op> b``, or ``(message, hint)`` saying why the operator does not apply."""
    ka, kb = a.kind, b.kind
    num_a, num_b = ka in NUMERIC_KINDS, kb in NUMERIC_KINDS
    if "null" in (ka, kb):
        return f"'{op}' with null is always null", "test presence with x == null or x != null"
    if ka == "any" and kb == "any":
        return ANY
    if ka == "any" or kb == "any":
        other = kb if ka == "any" else ka
        if other in (*NUMERIC_KINDS, "duration", "datetime"):
            return ANY
        return f"'{op}' does not apply to {other}", None
    if num_a and num_b:
        return _number_type(a, b, op)
    if op in ("+", "-"):
        if ka == kb == "duration":
            return DURATION
        if ka == "datetime" and kb == "duration":
            return DATETIME
        if op == "+" and ka == "duration" and kb == "datetime":
            return DATETIME
        if op == "-" and ka == kb == "datetime":
            return DURATION
    elif op == "*":
        if (ka == "duration" and num_b) or (num_a and kb == "duration"):
            return DURATION
    elif op == "/":
        if ka == "duration" and num_b:
            return DURATION
        if ka == kb == "duration":
            return FLOAT
    if "date" in (ka, kb):
        return f"'{op}' does not apply to dates", "compare them, or use days_since(d)"
    if ka in ("string", "enum") and kb in ("string", "enum"):
        return f"'{op}' does not apply to {ka} and {kb}", "arithmetic is on numbers and durations"
    return f"'{op}' does not apply to {ka} and {kb}", None


# -- run time ---------------------------------------------------------------------------------

_NUM = (int, float, Decimal)


def _overflow(value: object, bound: object) -> InvalidEvent:
    return InvalidEvent(f"arithmetic overflow: {value} is beyond ±{bound}")


def _bounded(v: Any) -> Any:
    """``v`` when within bounds; raises :class:`~carepath.errors.InvalidEvent` otherwise."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if -MAX_NUMBER <= v <= MAX_NUMBER:
            return v
        raise _overflow(v, MAX_NUMBER)
    if isinstance(v, float):
        if math.isfinite(v) and -MAX_NUMBER <= v <= MAX_NUMBER:
            return v
        raise _overflow(v, MAX_NUMBER)
    if isinstance(v, Decimal):
        if v.is_finite() and -MAX_NUMBER <= v <= MAX_NUMBER:
            return v
        raise _overflow(v, MAX_NUMBER)
    if isinstance(v, timedelta):
        if -MAX_DURATION <= v <= MAX_DURATION:
            return v
        raise _overflow(v, MAX_DURATION)
    if isinstance(v, datetime):
        if v.tzinfo is not None and v.utcoffset() is not None and _MIN_INSTANT <= v < _MAX_INSTANT:
            return v
        raise InvalidEvent(f"arithmetic overflow: {v} is outside the supported instants")
    return v


def _operand(v: Any) -> Any:
    """A value arithmetic takes (numbers, durations, aware datetimes), bounded; else null."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (*_NUM, timedelta)):
        return _bounded(v)
    if isinstance(v, datetime):
        return _bounded(v) if v.tzinfo is not None and v.utcoffset() is not None else None
    return None


def as_decimal(v: Any) -> Any:
    """A ``decimal`` value as :class:`~decimal.Decimal` (case data keeps decimals as given: a
    number or a decimal string); anything else unchanged."""
    if isinstance(v, str):
        try:
            return Decimal(v)
        except InvalidOperation:
            return None
    if isinstance(v, float) and math.isfinite(v):
        return Decimal(repr(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return Decimal(v)
    return v


def as_duration(v: Any) -> Any:
    """A ``duration`` value as :class:`~datetime.timedelta` (case data keeps durations as
    seconds); anything else unchanged."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not math.isfinite(v) or abs(v) > MAX_DURATION.total_seconds():
            raise _overflow(v, MAX_DURATION)
        return timedelta(seconds=v)
    return v


def as_instant(v: Any) -> Any:
    """A ``datetime`` value as an aware :class:`~datetime.datetime` (case data keeps instants as
    ISO text); anything else unchanged, unreadable text null."""
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    return v


def _mixed(a: Any, b: Any) -> tuple[Any, Any]:
    """A Decimal meeting a float (their common type is ``float``) or a duration is computed in
    floats; an instant is computed in UTC (exact lengths, §2.2) and keeps its own zone."""
    if isinstance(a, Decimal) and isinstance(b, float | timedelta):
        return float(a), b
    if isinstance(b, Decimal) and isinstance(a, float | timedelta):
        return a, float(b)
    return a, b


def _instant_op(op: str, a: datetime, b: Any) -> Any:
    """``a + b`` / ``a - b`` for an aware instant ``a``, in exact time (never wall time)."""
    u = a.astimezone(UTC)
    if isinstance(b, timedelta):
        r = u + b if op == "+" else u - b
        return _bounded(r).astimezone(a.tzinfo)
    if op == "-" and isinstance(b, datetime):
        return _bounded(u - b.astimezone(UTC))
    return None


def _apply(op: str, a: Any, b: Any) -> Any:
    a, b = _operand(a), _operand(b)
    if a is None or b is None:
        return None
    a, b = _mixed(a, b)
    try:
        if op in ("+", "-") and isinstance(a, datetime):
            return _instant_op(op, a, b)
        if op == "+" and isinstance(b, datetime):
            return _instant_op(op, b, a) if isinstance(a, timedelta) else None
        if isinstance(b, datetime):
            return None
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif isinstance(a, timedelta) and isinstance(b, timedelta):
            r = a / b if b else None
        elif isinstance(b, int | float | Decimal) and b == 0:
            r = None
        else:
            r = a / b
    except OverflowError:
        raise InvalidEvent(f"arithmetic overflow: {a} {op} {b}") from None
    except (TypeError, ValueError, ArithmeticError):
        return None
    return _bounded(r) if r is not None else None


def add(a: Any, b: Any) -> Any:
    """``a + b``: numbers, durations, an instant and a duration; null when either is null."""
    return _apply("+", a, b)


def sub(a: Any, b: Any) -> Any:
    """``a - b``: numbers, durations, an instant minus a duration or an instant."""
    return _apply("-", a, b)


def mul(a: Any, b: Any) -> Any:
    """``a * b``: numbers, a duration and a number."""
    return _apply("*", a, b)


def div(a: Any, b: Any) -> Any:
    """``a / b``: numbers (always a fraction), a duration by a number or by a duration; a
    division by zero is null."""
    return _apply("/", a, b)


HELPERS: dict[str, Any] = {
    "_add": add,
    "_sub": sub,
    "_mul": mul,
    "_div": div,
    "_dec": as_decimal,
    "_dur": as_duration,
    "_inst": as_instant,
}
"""The helpers the compiler's generated code calls for arithmetic."""
