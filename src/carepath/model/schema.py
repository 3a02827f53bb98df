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
    head: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "carepath playbook (format 1)",
    }
    return {**head, **{k: v for k, v in body.items() if k not in head}}


def schema_text() -> str:
    """The schema as the checked-in file holds it: two-space indented JSON and a final newline."""
    return json.dumps(playbook_schema(), indent=2, ensure_ascii=False) + "\n"


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
