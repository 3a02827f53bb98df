"""carepath: executable customer-care playbooks.

Public names are imported lazily so that ``import carepath`` (and the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Calendar",
    "CalendarError",
    "CarepathError",
    "CaseError",
    "CaseState",
    "Clock",
    "Deadline",
    "DefinitionError",
    "Diagnostic",
    "Engine",
    "Event",
    "EventOutOfOrder",
    "ExpressionError",
    "InvalidEvent",
    "NoOpenTime",
    "Playbook",
    "PlaybookError",
    "PlaybookMismatch",
    "Signal",
    "SignalLoop",
    "Step",
    "load",
    "loads",
]

_WHERE = {
    "Calendar": "calendar.business",
    "Diagnostic": "diagnostics",
    "load": "loading.loader",
    "loads": "loading.loader",
    "Playbook": "compile.ir",
    "Engine": "engine.engine",
    "Step": "engine.engine",
    "Event": "state",
    "Action": "state",
    "Signal": "state",
    "Deadline": "state",
    "CaseState": "state",
    "Clock": "state",
}
_ERRORS = {n for n in __all__ if n.endswith(("Error", "Mismatch", "Loop", "OutOfOrder", "Event", "Time")) and n != "Event"}

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.compile.ir import Playbook
    from carepath.diagnostics import Diagnostic
    from carepath.engine.engine import Engine, Step
    from carepath.errors import (
        CalendarError,
        CarepathError,
        CaseError,
        DefinitionError,
        EventOutOfOrder,
        ExpressionError,
        InvalidEvent,
        NoOpenTime,
        PlaybookError,
        PlaybookMismatch,
        SignalLoop,
    )
    from carepath.loading.loader import load, loads
    from carepath.state import Action, CaseState, Clock, Deadline, Event, Signal


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        module = "errors"
    elif name in _WHERE:
        module = _WHERE[name]
    else:
        raise AttributeError(f"module 'carepath' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
