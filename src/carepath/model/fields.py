"""``fields`` (typed case data) and ``events`` (declared event payloads)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from carepath.model.common import Flag, Model, Shorthand

__all__ = ["FieldSpec", "FieldTypeName", "normalize_field"]

FieldTypeName = Literal[
    "int", "float", "decimal", "bool", "string", "date", "datetime", "duration", "enum", "list"
]


class FieldSpec(Model):
    """One typed field: ``{type: enum, values: [...], default: ...}`` or the short form ``int``."""

    type: FieldTypeName = Field(description="the field's type")
    values: list[str] | None = Field(
        None, description="allowed values of an enum (or of a list's items)"
    )
    item: FieldTypeName | None = Field(None, description="item type of a list")
    default: Any = Field(None, description="value when not set")
    pii: Flag = Field(
        False,
        description="personal data: `carepath erase` replaces its values with null (SPEC §10)",
    )
    title: str | None = None
    description: str | None = None


def normalize_field(value: Any) -> Any:
    """``int`` → ``{type: int}``."""
    if isinstance(value, str):
        return {"type": value}
    return value


FieldEntry = Annotated[
    FieldSpec,
    BeforeValidator(normalize_field),
    Shorthand(
        {"enum": ["int", "float", "decimal", "bool", "string", "date", "datetime", "duration"]}
    ),
]
