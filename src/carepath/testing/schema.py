"""The JSON Schema (2020-12) of scenario files (``*.test.yaml``), for editors: built from the key
sets the runner itself checks (:mod:`carepath.testing.steps`), so the two cannot disagree.
``schemas/scenario.schema.json`` is the checked-in copy (``carepath schema --scenario``).
"""

from __future__ import annotations

import json
from typing import Any

from carepath.testing.steps import CLOCK_KEYS, EVENT_KEYS, EXPECT_KEYS, FILE_KEYS, SCENARIO_KEYS

__all__ = ["SCENARIO_SCHEMA_ID", "scenario_schema", "scenario_schema_text"]

SCENARIO_SCHEMA_ID = "https://example.invalid/carepath/schemas/scenario.schema.json"

_INSTANT = {
    "type": "string",
    "description": "ISO 8601 with an offset, a local time in the playbook's timezone "
    "(`2027-02-01 09:00`), or `+DURATION` after the previous step",
    "examples": ["2027-03-01 09:00", "2027-03-01T09:00:00+07:00", "+53m"],
}
_DESCRIPTIONS = {
    "playbook": "the playbook file, relative to this one (default: this file's name without `.test`)",
    "start": "when scenarios begin: ISO 8601, or a local time in the playbook's timezone",
    "case": "the default case key of events",
    "scenarios": "the scenarios, each run on a fresh in-memory engine",
    "description": "what this is about",
    "name": "the scenario's name, shown in the results",
    "steps": "events, advances and expectations, in order",
    "given": "events (shorthand for steps)",
    "advance": "wake every case up to this instant (`+2h` or a local time)",
    "expect": "what the case must look like now",
    "skip": "skip this scenario (true, or the reason)",
    "event": "the event type",
    "at": "when the event happens",
    "data": "the event's payload",
    "id": "the event id (generated when absent)",
    "rejected": "the engine must reject the event (true, or a part of the error)",
    "stage": "the case's stage",
    "tier": "the case's tier",
    "segment": "the case's segment",
    "segments": "every segment the case is in",
    "ended": "whether the case has ended",
    "clocks": "per clock: a status, or {status, breached, due, cycle, elapsed, remaining, paused}",
    "actions": "actions emitted since the previous expect: exactly this list, or {include, exclude}",
    "signals": "signals raised since the previous expect: exactly this list, or {include, exclude}",
    "deadlines": "the case's pending deadlines ({kind, name, due}, a subset each): exactly this "
    "list, or {include, exclude}",
    "next_wakeup": "the instant of the case's next wake-up",
}
_ANY: dict[str, Any] = {}
_MATCH_LIST = {
    "anyOf": [
        {"type": "array"},
        {
            "type": "object",
            "properties": {"include": {"type": "array"}, "exclude": {"type": "array"}},
            "additionalProperties": False,
        },
    ]
}
_TYPES: dict[str, Any] = {
    "playbook": {"type": "string", "examples": ["vn-retail-support.yaml"]},
    "start": _INSTANT,
    "case": {"type": ["string", "integer"]},
    "description": {"type": "string"},
    "name": {"type": "string"},
    "skip": {"type": ["boolean", "string"]},
    "event": {"type": "string", "examples": ["case.opened"]},
    "at": _INSTANT,
    "data": {"type": "object"},
    "id": {"type": ["string", "integer"]},
    "rejected": {"type": ["boolean", "string"]},
    "advance": _INSTANT,
    "stage": {"type": "string"},
    "tier": {"type": ["string", "null"]},
    "segment": {"type": ["string", "null"]},
    "segments": {"type": "array", "items": {"type": "string"}},
    "ended": {"type": "boolean"},
    "next_wakeup": {"type": ["string", "null"]},
    "actions": _MATCH_LIST,
    "signals": _MATCH_LIST,
    "deadlines": _MATCH_LIST,
}


def _props(keys: set[str], **over: Any) -> dict[str, Any]:
    out = {}
    for k in sorted(keys):
        node = dict(over.get(k, _TYPES.get(k, _ANY)))
        if k in _DESCRIPTIONS:
            node["description"] = _DESCRIPTIONS[k]
        out[k] = node
    return out


def scenario_schema() -> dict[str, Any]:
    """The schema of a ``*.test.yaml`` file."""
    clock = {
        "anyOf": [
            {"type": "string", "examples": ["running", "met", "breached", "paused"]},
            {
                "type": "object",
                "properties": {k: {} for k in sorted(CLOCK_KEYS)},
                "additionalProperties": False,
            },
        ]
    }
    expect = {
        "type": "object",
        "properties": _props(
            EXPECT_KEYS,
            clocks={"type": "object", "additionalProperties": clock},
            data={"type": "object"},
        ),
        "additionalProperties": False,
    }
    event = {
        "type": "object",
        "required": ["event"],
        "properties": _props(EVENT_KEYS),
        "additionalProperties": False,
    }
    step = {
        "anyOf": [
            event,
            {
                "type": "object",
                "required": ["advance"],
                "properties": {"advance": _INSTANT},
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": ["expect"],
                "properties": {"expect": expect},
                "additionalProperties": False,
            },
        ]
    }
    scenario = {
        "type": "object",
        "required": ["name"],
        "properties": _props(
            SCENARIO_KEYS,
            steps={"type": "array", "items": {"$ref": "#/$defs/step"}},
            given={"type": "array", "items": {"$ref": "#/$defs/event"}},
            expect={"$ref": "#/$defs/expect"},
        ),
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCENARIO_SCHEMA_ID,
        "title": "carepath scenario tests (*.test.yaml)",
        "type": "object",
        "required": ["scenarios"],
        "properties": _props(
            FILE_KEYS, scenarios={"type": "array", "items": {"$ref": "#/$defs/scenario"}}
        ),
        "additionalProperties": False,
        "$defs": {"scenario": scenario, "step": step, "event": event, "expect": expect},
    }


def scenario_schema_text() -> str:
    """The schema as the checked-in file holds it."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
