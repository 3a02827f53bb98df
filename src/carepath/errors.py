"""The exceptions carepath raises.

One root, two branches: *definition* errors describe a broken playbook or calendar and carry
diagnostics; *case* errors happen while evaluating a case and carry the event and state involved.
Each also subclasses the matching built-in, so callers can catch standard types::

    CarepathError
    ├── DefinitionError (ValueError)          a playbook, calendar or expression is wrong
    │   ├── PlaybookError                     load()/loads(): .diagnostics lists every finding
    │   ├── CalendarError                     a calendar that cannot be built
    │   │   └── NoOpenTime                    no open time within the horizon (a year)
    │   └── ExpressionError                   a condition that does not parse or type-check
    └── CaseError                             .event and .state of the failed step
        ├── EventOutOfOrder (ValueError)      an event older than the case's `now`
        ├── InvalidEvent (ValueError)         a payload or `set` that breaks the declared types
        ├── PlaybookMismatch (LookupError)    a state from another playbook version or content
        └── SignalLoop (RecursionError)       a chain of signals deeper than 16
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.diagnostics import Diagnostic

__all__ = [
    "CalendarError",
    "CarepathError",
    "CaseError",
    "DefinitionError",
    "EventOutOfOrder",
    "ExpressionError",
    "InvalidEvent",
    "NoOpenTime",
    "PlaybookError",
    "PlaybookMismatch",
    "SignalLoop",
]


class CarepathError(Exception):
    """Root of every error carepath raises on purpose."""


class DefinitionError(CarepathError, ValueError):
    """Something a designer wrote is wrong (a playbook, a calendar, an expression)."""


class PlaybookError(DefinitionError):
    """A playbook failed validation; ``diagnostics`` holds every finding, errors and warnings."""

    def __init__(self, diagnostics: Sequence[Diagnostic], message: str | None = None) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        if message is None:
            first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
            message = f"{len(errors)} error(s) in playbook"
            if first is not None:
                message += f"; first: {first.location()}: {first.code}: {first.message}"
        super().__init__(message)


class CalendarError(DefinitionError):
    """A calendar definition is invalid, or a computation on it cannot succeed.

    ``problems`` lists ``(path, message)`` pairs, the path relative to the calendar mapping
    (for instance ``("hours", "mon-fri", 1)``), so the loader can point at the YAML node.
    """

    def __init__(self, message: str, problems: Sequence[tuple[tuple[str | int, ...], str]] = ()) -> None:
        self.problems: list[tuple[tuple[str | int, ...], str]] = list(problems) or [((), message)]
        super().__init__(message)


class NoOpenTime(CalendarError):
    """A business-time computation found no open time within its horizon (a year)."""


class ExpressionError(DefinitionError):
    """A condition or ``=expression`` is invalid.

    ``offset`` is the 0-based character offset inside the expression source where the problem
    is; ``hint`` an optional suggestion ("did you mean 'priority'?"); ``code`` the diagnostic code.
    """

    def __init__(self, message: str, offset: int = 0, hint: str | None = None, code: str = "CP403") -> None:
        self.offset = offset
        self.hint = hint
        self.code = code
        super().__init__(message)


class CaseError(CarepathError):
    """A step on a case failed; the input state is unchanged. Carries ``event`` and ``state``."""

    def __init__(self, message: str, *, event: Any = None, state: Any = None) -> None:
        self.event = event
        self.state = state
        super().__init__(message)


class EventOutOfOrder(CaseError, ValueError):
    """The event is older than the case's latest applied instant (``state.now``)."""


class InvalidEvent(CaseError, ValueError):
    """The event's payload, or a ``set`` it triggers, breaks the declared types."""


class PlaybookMismatch(CaseError, LookupError):
    """The state was produced by another playbook id, version or content hash."""


class SignalLoop(CaseError, RecursionError):
    """Signals raised signals more than 16 levels deep in one step."""
