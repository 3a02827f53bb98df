"""carepath: executable customer-care playbooks.

Public names are imported lazily so that ``import carepath`` (and the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Every public name and the module that defines it: imported on first use, so that
#: ``import carepath`` (and the CLI) stays light. ``tests/test_public_api.py`` pins this table.
_WHERE: dict[str, str] = {
    # the playbook
    "load": "loading",
    "loads": "loading",
    "Playbook": "compile.ir",
    "Diagnostic": "diagnostics",
    "Calendar": "calendar",
    # the engine
    "Engine": "engine",
    "Step": "engine",
    "Event": "events",
    "CaseState": "state",
    "Clock": "state",
    "Action": "state",
    "Signal": "state",
    "Deadline": "state",
    # errors (the tree is drawn in carepath.errors)
    "BackendError": "errors",
    "CalendarError": "errors",
    "CarepathError": "errors",
    "CaseError": "errors",
    "DefinitionError": "errors",
    "DurationError": "errors",
    "EventLogError": "errors",
    "EventOutOfOrder": "errors",
    "ExpressionError": "errors",
    "InvalidEvent": "errors",
    "MetricError": "errors",
    "NoOpenTime": "errors",
    "PlaybookError": "errors",
    "PlaybookMismatch": "errors",
    "ScenarioError": "errors",
    "SignalLoop": "errors",
    "StoreError": "errors",
    "TargetError": "errors",
    "YamlError": "errors",
}

__all__ = [  # the same names as _WHERE (a test checks); a literal so that tools can read it
    "Action",
    "BackendError",
    "Calendar",
    "CalendarError",
    "CarepathError",
    "CaseError",
    "CaseState",
    "Clock",
    "Deadline",
    "DefinitionError",
    "Diagnostic",
    "DurationError",
    "Engine",
    "Event",
    "EventLogError",
    "EventOutOfOrder",
    "ExpressionError",
    "InvalidEvent",
    "MetricError",
    "NoOpenTime",
    "Playbook",
    "PlaybookError",
    "PlaybookMismatch",
    "ScenarioError",
    "Signal",
    "SignalLoop",
    "Step",
    "StoreError",
    "TargetError",
    "YamlError",
    "load",
    "loads",
]

if TYPE_CHECKING:
    from carepath.calendar import Calendar
    from carepath.compile.ir import Playbook
    from carepath.diagnostics import Diagnostic
    from carepath.engine import Engine, Step
    from carepath.errors import (
        BackendError,
        CalendarError,
        CarepathError,
        CaseError,
        DefinitionError,
        DurationError,
        EventLogError,
        EventOutOfOrder,
        ExpressionError,
        InvalidEvent,
        MetricError,
        NoOpenTime,
        PlaybookError,
        PlaybookMismatch,
        ScenarioError,
        SignalLoop,
        StoreError,
        TargetError,
        YamlError,
    )
    from carepath.events import Event
    from carepath.loading import load, loads
    from carepath.state import Action, CaseState, Clock, Deadline, Signal


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'carepath' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"carepath.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
