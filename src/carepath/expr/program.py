"""A compiled condition: the :class:`Expr` program, the allow-listed functions and the limits.

What :mod:`carepath.expr.compiler` produces and the engines, lint and the native lowering read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.expr.types import FieldType

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_NODES", "MAX_SOURCE", "Expr"]

MAX_SOURCE = 2000
"""Longest accepted expression, in characters."""
MAX_NODES = 256
"""Most expression nodes (names, literals, operators, calls) in one expression."""
MAX_DEPTH = 32
"""Deepest nesting of expression nodes."""


class Expr:
    """A compiled expression: call it with ``(fields, event, scope)``.

    ``source`` is the text it came from, ``type`` its result type (``BOOL`` for conditions),
    ``names`` the dotted names it reads, ``uses_now`` whether it reads ``scope["now"]``. ``fn`` is
    the underlying function (same arguments), for callers that want to skip one call layer.
    Evaluation never raises for any input values: see the null rules in ``docs/conditions.md``.
    """

    __slots__ = ("code", "fn", "names", "source", "type", "uses_now")

    def __init__(
        self,
        source: str,
        type: FieldType,
        names: frozenset[str],
        fn: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Any],
        code: str,
        uses_now: bool = False,
    ) -> None:
        self.source = source
        self.type = type
        self.names = names
        self.fn = fn
        self.code = code
        self.uses_now = uses_now

    def __call__(
        self, fields: Mapping[str, Any], event: Mapping[str, Any], scope: Mapping[str, Any]
    ) -> Any:
        """Evaluate against case ``fields``, the ``event`` data and the ``scope`` specials."""
        return self.fn(fields, event, scope)

    def __repr__(self) -> str:
        return f"Expr({self.source!r}, type={self.type})"


FUNCTIONS: dict[str, str] = {
    "has": "has(path) — true when the field/event value at path is present (not null)",
    "lower": "lower(s) — the string in lower case",
    "upper": "upper(s) — the string in upper case",
    "len": "len(x) — length of a string or list",
    "days_since": "days_since(t) — whole days from a date/datetime to now",
    "hours_since": "hours_since(t) — whole hours from a date/datetime to now",
    "duration": 'duration("1h30m") — a constant exact duration (s, m, h)',
    "date": 'date("2026-04-30") — a constant date',
    "datetime": 'datetime("2026-04-30T08:00:00+07:00") — a constant aware datetime',
    "now": "now() — the instant of the current step",
    "abs": "abs(x) — absolute value of a number or duration",
    "min": "min(a, b, …) or min(list) — the smallest value",
    "max": "max(a, b, …) or max(list) — the largest value",
    "round": "round(x) / round(x, n) — x rounded to an int, or to n decimals",
}
"""The allow-listed functions, each with a one-line description."""
