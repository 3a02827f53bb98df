"""Shared building blocks of the playbook models: strict base, shorthand forms, names."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from carepath.durations import DurationError, parse_duration

__all__ = [
    "ID_RE",
    "Condition",
    "Flag",
    "Model",
    "NonNegative",
    "Number",
    "OneOrMany",
    "Positive",
    "Shorthand",
    "check_duration",
    "check_name",
    "no_bool",
    "one_or_many",
]

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


class Model(BaseModel):
    """Base of every playbook model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=False
    )


class Shorthand:
    """Annotate a field whose YAML also accepts short forms (a string, a single item…).

    The validator normalises the short form (``BeforeValidator``); this marker widens the JSON
    Schema so editors accept what the loader accepts: ``anyOf: [<short forms>, <full schema>]``.
    """

    def __init__(self, *alternatives: dict[str, Any], single: bool = False) -> None:
        self.alternatives = alternatives
        self.single = single  # a list field that also accepts one item on its own

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        full = handler(schema)
        alts = list(self.alternatives)
        if self.single and isinstance(full, dict) and "items" in full:
            alts.append(full["items"])
        return {"anyOf": [*alts, full]}


def one_or_many(value: Any) -> Any:
    """``x`` → ``[x]``; lists and ``None`` pass through."""
    if value is None or isinstance(value, list):
        return value
    return [value]


OneOrMany = Shorthand({"type": "string"})


_BOOL_HINT = 'YAML 1.2: only true and false are booleans; yes, no, on, off, y, 1 and "true" are not'


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:36] + "..."


def _flag(v: Any) -> bool:
    # pydantic's lax bool takes "yes", "on", "y", 1 and "true" for true (issue 15 #14); SPEC §2.1
    # says only the YAML booleans are booleans.
    if isinstance(v, bool):
        return v
    raise PydanticCustomError(
        "CP203", "expected true or false, got {got}", {"got": _show(v), "hint": _BOOL_HINT}
    )


def _condition(v: Any) -> Any:
    if isinstance(v, str | bool):
        return v
    raise PydanticCustomError(
        "CP203",
        "a condition is an expression (a string) or true or false, got {got}",
        {"got": _show(v), "hint": _BOOL_HINT if isinstance(v, int | float) else ""},
    )


def _whole(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise PydanticCustomError("CP203", "expected a whole number, got {got}", {"got": _show(v)})


def _number(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    raise PydanticCustomError("CP203", "expected a number, got {got}", {"got": _show(v)})


def no_bool(v: Any) -> Any:
    """A before-validator for scalars that are not booleans (``version``, ``target``): ``true``
    is not ``1``."""
    if isinstance(v, bool):
        raise PydanticCustomError(
            "CP203", "expected a string or a number, got {got}", {"got": _show(v)}
        )
    return v


#: ``true`` or ``false`` only (StrictBool, with a located error that names them).
Flag = Annotated[bool, BeforeValidator(_flag)]
#: A condition: an expression string, or ``true``/``false`` (``1`` is neither).
Condition = Annotated[str | bool, BeforeValidator(_condition)]
#: An integer from 1; ``true`` and ``"3"`` are not (the bound comes before the validator, so the
#: JSON Schema says ``minimum``).
Positive = Annotated[int, Field(ge=1), BeforeValidator(_whole)]
#: An integer from 0 (``true`` and ``"3"`` are not).
NonNegative = Annotated[int, Field(ge=0), BeforeValidator(_whole)]
#: An int or float; ``true`` and ``"0.8"`` are not.
Number = Annotated[float, BeforeValidator(_number)]


def check_duration(value: Any, *, business: bool = False, key: str | None = None) -> str:
    """Validate a duration string (SPEC §2.2); raises a pydantic error with code CP204/CP205.
    From a model validator, ``key`` names the key that holds the duration, where the loader
    reports the error (a model validator's own location is the whole mapping)."""
    try:
        parse_duration(value, business=business)
    except DurationError as exc:
        ctx = {"msg": str(exc), "hint": exc.hint or ""}
        if key is not None:
            ctx["key"] = key
        raise PydanticCustomError(exc.code, "{msg}", ctx) from None
    return str(value)


def check_name(value: Any, what: str = "name") -> str:
    """A reference name: letters, digits, ``_ . : -``."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise PydanticCustomError(
            "CP203",
            "invalid {what} '{value}': use letters, digits, '_', '.', ':' or '-'",
            {"what": what, "value": value},
        )
    return value
