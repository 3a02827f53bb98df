"""The result of one evaluation: :class:`Step` (re-exported by :mod:`carepath.engine.engine`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carepath._instants import dt, zone
from carepath._records import fast_init
from carepath.state import Action, CaseState, Deadline, Signal

__all__ = ["DeadlineItem", "Step", "TraceEntry"]

DeadlineItem = tuple[float, int, str, str]
"""A wake-up as the run sorts it: ``(due, kind order, kind, name)``."""
TraceEntry = tuple[float, str, str, str]
"""One decision of a step: ``(at, what, source, detail)``."""


@fast_init
@dataclass(frozen=True, slots=True)
class Step:
    """The result of one evaluation.

    ``deadlines`` lists the state's wake-ups, sorted. ``trace`` explains the step: tuples
    ``(at, what, source, detail)`` in order — which handler and guard matched, which target a
    clock chose, which threshold fired; ``explain()`` renders it. Both are built on first read,
    so hot loops that never look at them do not pay for them.
    """

    state: CaseState
    actions: list[Action]
    signals: list[Signal]
    _items: tuple[DeadlineItem, ...] = ()
    _trace: tuple[TraceEntry, ...] = ()

    @property
    def deadlines(self) -> list[Deadline]:
        """The wake-ups of the new state: ``{kind, name, due}``, sorted by ``due``."""
        tz = zone(self.state.timezone)
        return [Deadline(kind, name, dt(due, tz)) for due, _, kind, name in self._items]

    @property
    def trace(self) -> list[tuple[str, str, str, str]]:
        """``(at, what, source, detail)`` for every decision the step took."""
        tz = zone(self.state.timezone)
        return [
            (dt(t, tz).isoformat(), what, source, detail) for t, what, source, detail in self._trace
        ]

    def explain(self) -> str:
        """The trace as readable lines."""
        return "\n".join(
            f"{at}  {what:<10} {source}  {detail}".rstrip()
            for at, what, source, detail in self.trace
        )

    def to_dict(self) -> dict[str, Any]:
        """``{state, actions, signals, deadlines}`` in JSON shapes."""
        return {
            "state": self.state.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
            "signals": [s.to_dict() for s in self.signals],
            "deadlines": [d.to_dict() for d in self.deadlines],
        }
