"""What one event does to one playbook's case: the pure decision shared by every runtime.

:func:`route` takes the engine, the case's current state (``None`` when the key has never had a
case) and an event, and decides: open a case (by the ``start`` and ``reentry`` rules), hand the
event to the open case, ignore it, or reject it with a reason. The SQLite and PostgreSQL runtimes
and the Flink job all call it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from carepath.durations import add_months
from carepath.engine.engine import Engine, Step
from carepath.errors import CaseError, EventOutOfOrder, InvalidEvent, PlaybookMismatch, SignalLoop
from carepath.events import Event
from carepath.state import CaseState

__all__ = ["Routed", "route"]

Status = Literal["applied", "ignored", "rejected"]


@dataclass(frozen=True, slots=True)
class Routed:
    """The decision for one event and one playbook.

    ``status`` is ``applied`` (``step`` holds the result), ``ignored`` or ``rejected``; ``reason``
    is one of ``out_of_order``, ``invalid``, ``unknown_case``, ``playbook_mismatch`` for a
    rejection, or a short word for an ignored event (``not_mentioned``, ``ended``, ``reentry``).
    ``opened`` says a new case was opened by this event.
    """

    status: Status
    reason: str | None = None
    message: str = ""
    step: Step | None = None
    opened: bool = False


def route(engine: Engine, state: CaseState | None, event: Event) -> Routed:
    """Decide what ``event`` does to the case whose current state is ``state``."""
    try:
        return _route(engine, state, event)
    except EventOutOfOrder as exc:
        return Routed("rejected", "out_of_order", str(exc))
    except PlaybookMismatch as exc:
        return Routed("rejected", "playbook_mismatch", str(exc))
    except (InvalidEvent, SignalLoop) as exc:
        return Routed("rejected", "invalid", str(exc))
    except CaseError as exc:
        return Routed("rejected", "invalid", str(exc))


def _route(engine: Engine, state: CaseState | None, event: Event) -> Routed:
    start = engine.playbook.start
    opens = engine.opens(event)
    if state is None:
        if opens:
            return Routed("applied", step=engine.start(event), opened=True)
        if engine.mentions(event.type):
            return Routed(
                "rejected",
                "unknown_case",
                f"no case {event.case!r} in {engine.playbook.id} for "
                f"{event.type} (cases open with {', '.join(sorted(start.on))})",
            )
        return Routed("ignored", "not_mentioned")
    # an opening event finds the case as it is at the event's instant: if what falls due before
    # the event ends the case, the event may open the next one (as it would after an `advance`)
    if opens and (
        state.ended
        or start.reentry == "always"
        or (start.reentry == "after_exit" and engine._ends_before(state, event))
    ):
        if start.reentry == "never":
            return Routed(
                "ignored", "reentry", f"case {state.case} has ended and reentry is `never`"
            )
        mi = start.min_interval
        if mi is not None:
            # calendar days count in the playbook timezone (same local time, DST-aware)
            opened = state.opened
            local = opened.astimezone(engine.tz)
            if mi.months:
                local = add_months(local.replace(tzinfo=None), mi.months).replace(tzinfo=engine.tz)
            earliest = (
                local + timedelta(days=mi.days + mi.business_days) + timedelta(seconds=mi.seconds)
            )
            if event.at < earliest:
                return Routed(
                    "ignored",
                    "reentry",
                    f"case {state.case} opened at {opened.isoformat()}; min_interval is {mi.text}",
                )
        if event.at < state.now:
            raise EventOutOfOrder(
                f"event {event.id} is older than case {state.case}'s now", event=event, state=state
            )
        engine._check(state, event)
        return Routed("applied", step=engine.start(event, previous=state), opened=True)
    if state.ended:
        return Routed("ignored", "ended", f"case {state.case} has ended")
    step = engine.handle(state, event)
    # the identity test first: a step that moved the state is applied (and a native step's
    # signals are not built for nothing)
    if step.state is state and any(s.type == "ignored" for s in step.signals):
        return Routed("ignored", "not_mentioned", step=step)
    return Routed("applied", step=step)
