"""The one type system of playbook values: case fields, event payloads and expressions.

:class:`FieldType` is a type of the playbook format (SPEC §2.2); :class:`TypeEnv` the names a
condition may read. :func:`assignable` is the static rule (may a value of one type be stored where
another is expected), :func:`coerce` the dynamic one (check and convert a YAML literal or an event
value), :func:`describe` how a type reads in a message.

>>> describe(FieldType.parse("list[string]"))
'list of string'
>>> assignable(INT, FLOAT), assignable(FLOAT, INT)
(True, False)
>>> coerce("2026-04-30", DATE)
(True, '2026-04-30')
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from carepath.durations import DurationError, parse_duration

__all__ = [
    "ANY",
    "BOOL",
    "DATE",
    "DATETIME",
    "DECIMAL",
    "DURATION",
    "EVENT_BUILTINS",
    "FLOAT",
    "INT",
    "KINDS",
    "NULL",
    "NUMERIC_KINDS",
    "STRING",
    "FieldType",
    "TypeEnv",
    "assignable",
    "coerce",
    "comparable",
    "describe",
    "family",
    "unify",
]

KINDS = frozenset(
    {
        "int",
        "float",
        "decimal",
        "bool",
        "string",
        "date",
        "datetime",
        "duration",
        "enum",
        "list",
        "any",
        "null",
    }
)
NUMERIC_KINDS = frozenset({"int", "float", "decimal"})


@dataclass(frozen=True)
class FieldType:
    """A value type of the playbook format: ``kind`` plus enum ``values`` or list ``item`` type."""

    kind: str
    values: tuple[str, ...] = ()
    item: FieldType | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown type {self.kind!r}; expected one of {', '.join(sorted(KINDS))}"
            )

    @staticmethod
    def parse(spec: object) -> FieldType:
        """Build a type from the YAML short form (``"int"``, ``"list[string]"``) or a mapping.

        A mapping may carry ``type``, ``values`` (enum) and ``item``/``items`` (list). Raises
        :class:`ValueError` for anything else.
        """
        if isinstance(spec, FieldType):
            return spec
        if isinstance(spec, Mapping):
            kind = spec.get("type")
            if not isinstance(kind, str):
                raise ValueError(f"a type mapping needs a 'type' string, got {spec!r}")
            base = FieldType.parse(kind)
            values = spec.get("values")
            if base.kind == "enum":
                if not isinstance(values, list | tuple) or not values:
                    raise ValueError("an enum type needs a non-empty 'values' list")
                return FieldType("enum", tuple(str(v) for v in values))
            item = spec.get("item", spec.get("items"))
            if base.kind == "list" and item is not None:
                return FieldType("list", item=FieldType.parse(item))
            return base
        if not isinstance(spec, str):
            raise ValueError(f"expected a type name such as 'int' or 'string', got {spec!r}")
        s = spec.strip()
        if s.startswith("list[") and s.endswith("]"):
            return FieldType("list", item=FieldType.parse(s[5:-1]))
        if s == "list":
            return FieldType("list", item=ANY)
        if s not in KINDS or s == "null":
            close = difflib.get_close_matches(s, sorted(KINDS - {"null"}), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown type {spec!r}{hint}")
        return FieldType(s)

    def __str__(self) -> str:
        if self.kind == "enum":
            return f"enum({', '.join(self.values)})"
        if self.kind == "list" and self.item is not None and self.item.kind != "any":
            return f"list[{self.item}]"
        return self.kind


ANY = FieldType("any")
NULL = FieldType("null")
BOOL = FieldType("bool")
STRING = FieldType("string")
INT = FieldType("int")
FLOAT = FieldType("float")
DECIMAL = FieldType("decimal")
DURATION = FieldType("duration")
DATETIME = FieldType("datetime")
DATE = FieldType("date")

EVENT_BUILTINS: dict[str, FieldType] = {
    "event.type": STRING,
    "event.at": DATETIME,
    "event.case": STRING,
    "event.id": STRING,
}


@dataclass(frozen=True)
class TypeEnv:
    """The names a condition may read, with their types.

    ``fields``: declared case fields by flat dotted name. ``event``: the declared payload of the
    triggering event (keys without the ``event.`` prefix), or ``None`` when undeclared (then any
    ``event.x`` is ``any``). ``specials``: other names by flat name (``stage``, ``segment``,
    ``sla.first_response.breached``…). ``event.type``/``.at``/``.case``/``.id`` are always in scope.
    """

    fields: Mapping[str, FieldType]
    event: Mapping[str, FieldType] | None = None
    specials: Mapping[str, FieldType] = field(default_factory=dict)

    @cached_property
    def names(self) -> dict[str, tuple[str, FieldType]]:
        """Every name in scope → (where it is read from: "F", "E" or "S", its type)."""
        out: dict[str, tuple[str, FieldType]] = {}
        for k, t in self.specials.items():
            out[k] = ("S", t)
        if self.event is not None:
            for k, t in self.event.items():
                out[k if k.startswith("event.") else f"event.{k}"] = ("E", t)
        for k, t in EVENT_BUILTINS.items():
            out[k] = ("E", t)
        for k, t in self.fields.items():
            out[k] = ("F", t)
        return out


def family(t: FieldType) -> str:
    """What a value compares as: ``number`` (int, float, decimal), ``string`` (also enum), or its kind."""
    if t.kind in NUMERIC_KINDS:
        return "number"
    if t.kind == "enum":
        return "string"
    return t.kind


def comparable(a: FieldType, b: FieldType) -> bool:
    """Whether values of ``a`` and ``b`` may meet in ``==``, ``!=`` or ``in``."""
    if a.kind in ("any", "null") or b.kind in ("any", "null"):
        return True
    if a.kind == "list" and b.kind == "list":
        return comparable(a.item or ANY, b.item or ANY)
    return family(a) == family(b)


def unify(a: FieldType, b: FieldType) -> FieldType | None:
    """The common type of two list items, or None when they do not mix."""
    if a.kind == "null":
        return b
    if b.kind == "null" or a == b:
        return a
    if a.kind == "any" or b.kind == "any":
        return ANY
    if a.kind in NUMERIC_KINDS and b.kind in NUMERIC_KINDS:
        return (
            FLOAT
            if "float" in (a.kind, b.kind)
            else (DECIMAL if "decimal" in (a.kind, b.kind) else INT)
        )
    if family(a) == family(b) == "string":
        return STRING
    return None


def assignable(got: FieldType, want: FieldType) -> bool:
    """Whether a value of type ``got`` may be stored where ``want`` is expected (checked statically).

    ``any`` and ``null`` go anywhere; numbers widen to ``float`` and ``decimal``; strings and enums
    meet (a string's value is checked where it is known); lists by their item types.
    """
    if got.kind in ("any", "null") or want.kind == "any":
        return True
    if want.kind in ("float", "decimal") and got.kind in NUMERIC_KINDS:
        return True
    if want.kind == "enum":
        return got.kind == "string" or (got.kind == "enum" and set(got.values) <= set(want.values))
    if want.kind == "string":
        return got.kind in ("string", "enum")
    if want.kind == "list":
        return got.kind == "list" and assignable(got.item or ANY, want.item or ANY)
    return got.kind == want.kind


def describe(t: FieldType) -> str:
    """A type for messages: ``enum (low, normal, high)``, ``list of string``."""
    if t.kind == "enum":
        return f"enum ({', '.join(t.values)})"
    if t.kind == "list" and t.item is not None:
        return f"list of {describe(t.item)}"
    return t.kind


def coerce(value: Any, t: FieldType) -> tuple[bool, Any]:
    """Check and convert a value (a YAML literal or an event field) to ``t``: ``(ok, value)``.

    ``None`` is valid for every type. Dates and datetimes are kept as ISO text, durations as
    seconds, decimals as given (a number or a decimal string).
    """
    if value is None:
        return True, None
    k = t.kind
    if k == "any":
        return True, value
    if k == "string":
        return isinstance(value, str), value
    if k == "enum":
        return isinstance(value, str) and value in t.values, value
    if k == "bool":
        return isinstance(value, bool), value
    if k == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if k in ("float", "decimal"):
        return _coerce_number(value, k)
    if k == "date":
        return _coerce_date(value)
    if k == "datetime":
        return _coerce_datetime(value)
    if k == "duration":
        return _coerce_duration(value)
    if k == "list":
        return _coerce_list(value, t.item or ANY)
    return False, value


def _coerce_number(value: Any, kind: str) -> tuple[bool, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True, float(value) if kind == "float" else value
    if isinstance(value, Decimal):  # the result of decimal arithmetic: kept as decimal text
        if not value.is_finite():
            return False, value
        return True, float(value) if kind == "float" else str(value)
    if kind == "decimal" and isinstance(value, str):
        try:
            Decimal(value)
        except InvalidOperation:
            return False, value
        return True, value
    return False, value


def _coerce_date(value: Any) -> tuple[bool, Any]:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True, value.isoformat()
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False, value
        return True, value
    return False, value


def _coerce_datetime(value: Any) -> tuple[bool, Any]:
    if isinstance(value, dt.datetime):
        return value.tzinfo is not None, value.isoformat()
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False, value
        return parsed.tzinfo is not None, value
    return False, value


def _coerce_duration(value: Any) -> tuple[bool, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True, float(value)
    if isinstance(value, dt.timedelta):
        return True, value.total_seconds()
    if isinstance(value, str):
        try:
            d = parse_duration(value)
        except DurationError:
            return False, value
        return d.is_exact, d.seconds
    return False, value


def _coerce_list(value: Any, item: FieldType) -> tuple[bool, Any]:
    if not isinstance(value, list):
        return False, value
    out = []
    for v in value:
        ok, converted = coerce(v, item)
        if not ok:
            return False, value
        out.append(converted)
    return True, out
