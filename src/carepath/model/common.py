"""Shared building blocks of the playbook models: strict base, shorthand forms, names."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from carepath.durations import DurationError, parse_duration

__all__ = ["ID_RE", "Model", "OneOrMany", "Shorthand", "check_duration", "check_name", "one_or_many"]

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


class Model(BaseModel):
    """Base of every playbook model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=False)


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


def check_duration(value: Any, *, business: bool = False) -> str:
    """Validate a duration string (SPEC §2.2); raises a pydantic error with code CP204/CP205."""
    try:
        parse_duration(value, business=business)
    except DurationError as exc:
        raise PydanticCustomError(exc.code, "{msg}", {"msg": str(exc), "hint": exc.hint or ""}) from None
    return str(value)


def check_name(value: Any, what: str = "name") -> str:
    """A reference name: letters, digits, ``_ . : -``."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise PydanticCustomError("CP203", "invalid {what} '{value}': use letters, digits, '_', '.', ':' or '-'",
                                  {"what": what, "value": value})
    return value
