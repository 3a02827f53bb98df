"""The playbook JSON Schema (2020-12), generated from the pydantic models.

``schemas/playbook.schema.json`` is the checked-in copy that editors use through the
yaml-language-server modeline (``# yaml-language-server: $schema=../schemas/playbook.schema.json``);
``carepath schema --check schemas/playbook.schema.json`` (and a test) fails when it drifts from
the models. Regenerate it with ``carepath schema -o schemas/playbook.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SCHEMA_DIALECT", "SCHEMA_ID", "playbook_schema", "schema_text"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://example.invalid/carepath/schemas/playbook.schema.json"


def playbook_schema() -> dict[str, Any]:
    """The JSON Schema of playbook format 1, with ``$schema``, ``$id`` and ``title`` first."""
    from carepath.model import PlaybookSpec

    body = PlaybookSpec.model_json_schema(by_alias=True, mode="validation")
    _widen_handler_lists(body)
    _annotate(body)
    head: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "carepath playbook (format 1)",
    }
    return {**head, **{k: v for k, v in body.items() if k not in head}}


def schema_text() -> str:
    """The schema as the checked-in file holds it: two-space indented JSON and a final newline."""
    return json.dumps(playbook_schema(), indent=2, ensure_ascii=False) + "\n"


#: A duration as the loader reads it (``2h``, ``1h30m``, ``3bd``, ``3mo``, ``PT2H``); whether a
#: unit is allowed where it stands (``d`` in business time) is checked by ``validate``, with a hint.
_DURATION_CORE = (
    r"(?:(?:[0-9]+(?:bd|mo|[ywdhms]))+"
    r"|[Pp](?:[0-9]+[Yy])?(?:[0-9]+[Mm])?(?:[0-9]+[Ww])?(?:[0-9]+[Dd])?"
    r"(?:[Tt](?:[0-9]+[Hh])?(?:[0-9]+[Mm])?(?:[0-9]+(?:\.[0-9]+)?[Ss])?)?)"
)
DURATION_PATTERN = rf"^\s*{_DURATION_CORE}\s*$"
#: A threshold: a percentage of the target, or a signed offset from it.
THRESHOLD_PATTERN = rf"^\s*(?:[0-9]+(?:\.[0-9]+)?%|[+-]\s*{_DURATION_CORE})\s*$"
#: An IANA time-zone name (``Asia/Ho_Chi_Minh``, ``America/Argentina/Buenos_Aires``, ``UTC``,
#: ``Etc/GMT+7``); the name itself is checked against the time-zone database by ``validate``.
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$"
_DURATION = {"pattern": DURATION_PATTERN}
#: (definition, property) → what the schema adds: patterns, examples, descriptions.
_ANNOTATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "id"): {"examples": ["vn-retail-support"]},
    ("", "version"): {"examples": ["2027.01"]},
    ("", "timezone"): {
        "pattern": TIMEZONE_PATTERN,
        "examples": ["Asia/Ho_Chi_Minh", "Europe/Paris", "UTC"],
    },
    ("CalendarSpec", "timezone"): {
        "pattern": TIMEZONE_PATTERN,
        "examples": ["Asia/Ho_Chi_Minh", "customer"],
    },
    ("TargetSpec", "within"): {**_DURATION, "examples": ["2h", "30m", "1h30m", "3bd", "PT2H"]},
    ("ThresholdSpec", "at"): {
        "pattern": THRESHOLD_PATTERN,
        "examples": ["75%", "100%", "-15m", "+1h"],
    },
    ("TimerSpec", "in"): {
        **_DURATION,
        "description": "how long after entering the stage (wall-clock, or business time with "
        "a calendar)",
        "examples": ["48h", "7d", "2bd"],
    },
    ("ActionSpec", "in"): {
        **_DURATION,
        "description": "delay before the action is emitted",
        "examples": ["30m", "1d"],
    },
    ("ActionSpec", "due"): {
        **_DURATION,
        "description": "when a task is due, after it is created",
        "examples": ["4h", "1bd"],
    },
    ("StartSpec", "min_interval"): {**_DURATION, "examples": ["10m"]},
}


def _annotate(body: dict[str, Any]) -> None:
    """Add the patterns, examples and descriptions of :data:`_ANNOTATIONS` (a property the
    models no longer have is an error, so the table cannot rot)."""
    for (definition, prop), extra in _ANNOTATIONS.items():
        node = body if not definition else body["$defs"][definition]
        target = node["properties"][prop]
        if "anyOf" in target:  # optional: `str | None`
            for alt in target["anyOf"]:
                if alt.get("type") == "string":
                    alt.update({k: v for k, v in extra.items() if k == "pattern"})
            target.update({k: v for k, v in extra.items() if k != "pattern"})
        else:
            target.update(extra)


_HANDLER_REF = "#/$defs/HandlerSpec"


def _widen_handler_lists(node: Any) -> None:
    """A handler list also accepts a bare stage name as an item (``[{to: a, when: …}, b]``), as the
    loader does; the model's ``Shorthand`` only widens the list itself, so widen its items here.
    Idempotent: items already widened are left alone."""
    if isinstance(node, dict):
        items = node.get("items")
        if (
            node.get("type") == "array"
            and isinstance(items, dict)
            and items.get("$ref") == _HANDLER_REF
        ):
            node["items"] = {
                "anyOf": [{"type": "string", "description": "stage to move to"}, items]
            }
        for v in node.values():
            _widen_handler_lists(v)
    elif isinstance(node, list):
        for v in node:
            _widen_handler_lists(v)
