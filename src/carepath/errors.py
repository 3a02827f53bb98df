"""Every exception carepath raises on purpose, in one tree.

One root; *definition* errors describe something a designer wrote (a playbook, calendar,
expression, duration, goal target, scenario) and carry where it is; *case* errors happen while
evaluating a case and carry the event and state involved; *input* errors are about data a host
hands in (an event log); *store* errors about persistence. Each also subclasses the matching
built-in, so callers can catch standard types. A host that catches :class:`CarepathError` catches
them all::

    CarepathError
    ├── DefinitionError (ValueError)          something a designer wrote is wrong
    │   ├── PlaybookError                     load()/loads(): .diagnostics lists every finding
    │   ├── YamlError                         a document that cannot be loaded safely: .problems
    │   ├── CalendarError                     a calendar that cannot be built: .problems
    │   │   └── NoOpenTime                    no open time within the horizon (a year)
    │   ├── ExpressionError                   a condition that does not parse or type-check
    │   ├── DurationError                     a duration string that does not parse: .hint
    │   ├── TargetError                       a goal target or value its metric cannot read
    │   ├── MetricError                       an unknown metric, or a custom one that won't compile
    │   └── ScenarioError                     a broken scenario file (not a failed expectation)
    ├── CaseError                             .event and .state of the failed step
    │   ├── EventOutOfOrder (ValueError)      an event older than the case's `now`
    │   ├── InvalidEvent (ValueError)         a payload or `set` that breaks the declared types
    │   ├── PlaybookMismatch (LookupError)    a state from another playbook version or content
    │   └── SignalLoop (RecursionError)       a chain of signals deeper than 16
    ├── EventLogError (ValueError)            an event-log line that cannot be read
    ├── StoreError (RuntimeError)             a store that cannot be opened or used
    └── BackendError (ValueError)             the engine backend asked for cannot run here

The classes are defined here and nowhere else; the modules that raise them import them
(``carepath.durations.DurationError`` is this module's class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from carepath.diagnostics import Diagnostic

__all__ = [
    "BackendError",
    "CalendarError",
    "CarepathError",
    "CaseError",
    "DefinitionError",
    "DurationError",
    "EventLogError",
    "EventOutOfOrder",
    "ExpressionError",
    "InvalidEvent",
    "MetricError",
    "NoOpenTime",
    "PlaybookError",
    "PlaybookMismatch",
    "ScenarioError",
    "SignalLoop",
    "StoreError",
    "TargetError",
    "YamlError",
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

    def __init__(
        self, message: str, problems: Sequence[tuple[tuple[str | int, ...], str]] = ()
    ) -> None:
        self.problems: list[tuple[tuple[str | int, ...], str]] = list(problems) or [((), message)]
        super().__init__(message)


class NoOpenTime(CalendarError):
    """A business-time computation found no open time within its horizon (a year)."""


class ExpressionError(DefinitionError):
    """A condition or ``=expression`` is invalid.

    ``offset`` is the 0-based character offset inside the expression source where the problem
    is; ``hint`` an optional suggestion ("did you mean 'priority'?"); ``code`` the diagnostic code.
    """

    def __init__(
        self, message: str, offset: int = 0, hint: str | None = None, code: str = "CP403"
    ) -> None:
        self.offset = offset
        self.hint = hint
        self.code = code
        super().__init__(message)


class _Problem(Protocol):
    """A located finding (:class:`carepath.loading.yaml.YamlProblem`)."""

    @property
    def line(self) -> int: ...
    @property
    def col(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def hint(self) -> str | None: ...


class YamlError(DefinitionError):
    """The document cannot be loaded safely; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[_Problem]) -> None:
        self.problems: list[_Problem] = list(problems)
        super().__init__("; ".join(f"{p.line}:{p.col}: {p.message}" for p in problems))


class DurationError(DefinitionError):
    """A duration string that does not parse; ``hint`` suggests the fix."""

    def __init__(self, message: str, hint: str | None = None, code: str = "CP204") -> None:
        self.hint = hint
        self.code = code
        super().__init__(message)


class TargetError(DefinitionError):
    """A goal target or value that cannot be read for its metric."""


class MetricError(DefinitionError):
    """An unknown metric, or a custom metric whose condition cannot be compiled."""


class ScenarioError(DefinitionError):
    """A problem in a scenario file itself (not a failed expectation); ``path`` locates it."""

    def __init__(
        self, message: str, path: tuple[str | int, ...] = (), *, key: bool = False
    ) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


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


class EventLogError(CarepathError, ValueError):
    """An event log line that cannot be read (bad JSON, missing field, naive instant)."""


class StoreError(CarepathError, RuntimeError):
    """A store could not be opened or used (bad URL, newer schema, unrecoverable I/O)."""


class BackendError(CarepathError, ValueError):
    """The engine backend asked for (``backend=`` or ``CAREPATH_ENGINE``) is unknown, or cannot
    run this playbook here (``native`` without the core, or with a feature the core lacks)."""
