"""A case during one step: :class:`WorkingCase`, its mutable working copy (SPEC §4.2).

The working copy holds what a step may change — stage, data, tier, segments, the clocks it
touches, pending items, sequence numbers — and what the step produces (actions, signals, trace),
with the small operations clocks (:mod:`.clocks`), actions (:mod:`.actions`) and conditions
(:mod:`.scope`) perform on it. :meth:`WorkingCase.finish` freezes it into the step's new state.
The order in which a step applies things is the run's (:mod:`.run`).

Instants are POSIX seconds rounded to microseconds; business time comes from the playbook's
calendars. Data and the frequency-cap counters are copied on first write, clocks get a working
copy only when the step may change them: most steps change little.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self

from carepath._instants import dt, typed_data
from carepath._instants import round_micros as _r
from carepath.durations import add_months
from carepath.engine.clocks import OPEN, WorkingClock
from carepath.engine.plan import Plan
from carepath.engine.scope import CaseScope
from carepath.engine.step import DeadlineItem, Step, TraceEntry
from carepath.errors import InvalidEvent
from carepath.expr.types import coerce, describe
from carepath.state import Action, CaseState, Clock, ClockRecord, Pending, Signal

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.compile.ir import Playbook, SetValue
    from carepath.durations import Duration
    from carepath.events import Event
    from carepath.expr.compiler import Expr

__all__ = ["KIND_ORDER", "WorkingCase"]

KIND_ORDER = {"clock": 0, "threshold": 0, "action": 1, "timer": 2, "schedule": 3}
"""The order of items due at one instant (SPEC §4.2)."""
NO_VIEW: Mapping[str, Any] = MappingProxyType({})
NO_SENDS: Mapping[str, tuple[float, ...]] = MappingProxyType({})


def _pending_order(p: Pending) -> tuple[float, int]:
    return (p.due, p.seq)


def _coerce(value: Any, type_: Any) -> tuple[bool, Any]:
    """:func:`~carepath.expr.types.coerce` with the common already-valid cases inline."""
    vc = value.__class__
    kind = type_.kind
    if (
        (vc is str and (kind == "string" or (kind == "enum" and value in type_.values)))
        or (vc is bool and kind == "bool")
        or (vc is int and kind == "int")
    ):
        return True, value
    return coerce(value, type_)


class WorkingCase(CaseScope):
    """One step's mutable working copy of a case (it is also the scope of its conditions)."""

    __slots__ = (
        "_now_dt",
        "_now_dt_s",
        "_own_data",
        "_own_sends",
        "actions",
        "case",
        "changed",
        "clocks",
        "data",
        "depth",
        "ended",
        "epoch",
        "event",
        "fields",
        "frozen",
        "now",
        "opened",
        "pending",
        "plan",
        "playbook",
        "queue",
        "segment",
        "segments",
        "sends",
        "seq",
        "signals",
        "stage",
        "tier",
        "trace",
        "tracing",
        "tz",
        "tz_fallback",
    )

    def __init__(self, plan: Plan, state: CaseState, *, tracing: bool) -> None:
        playbook = plan.playbook
        self.plan = plan
        self.playbook: Playbook = playbook
        self.tz = plan.tz
        self.tracing = tracing
        self.case = state.case
        self.stage = state.stage
        # data and sends are copied on first write (most steps change neither)
        self.data: Mapping[str, Any] = state.data
        self._own_data: dict[str, Any] | None = None
        # what conditions read: the data, with date, datetime and decimal fields kept as text
        # read as their type (issue 15 #7); the data itself (and the state's JSON) keeps the text
        self.fields: Mapping[str, Any] = (
            typed_data(state.data, plan.typed) if plan.typed else state.data
        )
        self.tier = state.tier
        self.segment = state.segment
        self.segments = state.segments
        # only open clocks (and those a trigger touches) get a working copy; the others are
        # carried over frozen
        self.frozen: Mapping[str, Clock] = state.clocks
        definitions = playbook.clocks
        self.clocks: dict[str, WorkingClock] = {
            name: WorkingClock(clock, definitions[name])
            for name, clock in state.clocks.items()
            if (clock.status == "running" or clock.status == "paused") and name in definitions
        }
        self.now = state.now_s
        self.opened = state.opened_s
        self.seq = state.seq
        self.epoch = state.epoch
        self.ended = state.ended
        self.pending: list[Pending] = list(state.pending)
        self.sends: Mapping[str, tuple[float, ...]] = state.sends
        self._own_sends: dict[str, tuple[float, ...]] | None = None
        self.actions: list[Action] = []
        self.signals: list[Signal] = []
        self.trace: list[TraceEntry] = []
        self.queue: deque[tuple[Signal, int]] = deque()
        self.depth = 0
        self.event: Event | None = None
        self._now_dt_s = -1.0
        self._now_dt = datetime.min
        self.changed: set[str] | None = None  # the fields, segment(s) and tier the step changed
        self.tz_fallback = False  # `timezone.fallback` raised in this step

    @classmethod
    def opening(cls, plan: Plan, key: str, at: float, seq: int, *, tracing: bool) -> Self:
        """The run of a new case ``key`` opened at ``at``; ``seq`` goes on from an ended case."""
        playbook = plan.playbook
        state = CaseState(
            playbook=playbook.id,
            version=playbook.version,
            content_hash=playbook.content_hash,
            case=key,
            stage=playbook.initial,
            data=MappingProxyType(dict(playbook.defaults)),
            tier=None,
            segment=None,
            segments=(),
            clocks=MappingProxyType({name: Clock(name, tz=plan.tz) for name in playbook.clocks}),
            now_s=at,
            opened_s=at,
            seq=seq,
            epoch=0,
            timezone=playbook.timezone,
        )
        return cls(plan, state, tracing=tracing)

    # -- bookkeeping -------------------------------------------------------------------------------
    def note(self, what: str, source: str, detail: str = "") -> None:
        """Record a decision in the step's trace."""
        self.trace.append((self.now, what, source, detail))

    def note_changed(self, *names: str) -> None:
        """Record that the step changed these names (fields, ``segment(s)``, ``tier``)."""
        if self.changed is None:
            self.changed = set(names)
        else:
            self.changed.update(names)

    def iso(self, t: float) -> str:
        return dt(t, self.tz).isoformat()

    def set_now(self, t: float) -> None:
        if t > self.now:
            self.now = t

    def now_dt(self) -> datetime:
        """``now`` as an aware datetime in the playbook timezone (cached per instant)."""
        if self._now_dt_s != self.now:
            self._now_dt = dt(self.now, self.tz)
            self._now_dt_s = self.now
        return self._now_dt

    def signal(
        self,
        type_: str,
        *,
        sla: str | None = None,
        cycle: int | None = None,
        record: ClockRecord | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise a signal now; it is handled after the current item, first in first out."""
        raised = Signal(
            type_,
            self.now_dt(),
            sla,
            cycle,
            record,
            MappingProxyType(dict(data)) if data else NO_VIEW,
        )
        self.signals.append(raised)
        self.queue.append((raised, self.depth + 1))

    def calendar(self, name: str | None) -> Calendar:
        """The calendar ``name`` (``channel``: the case channel's; ``None``: ``always``); one
        declared ``timezone: customer`` is read in the customer's zone (SPEC §10)."""
        if self.playbook.customer_calendars:
            real = self.calendar_name(name)
            if real in self.playbook.customer_calendars:
                return self.customer_calendar(real)
        if name is None or name == "channel":
            return self.playbook.calendar_named(name, self.data)
        found = self.playbook.calendars.get(name)
        return found if found is not None else self.playbook.calendar_named(name, self.data)

    def customer_calendar(self, name: str) -> Calendar:
        """Calendar ``name`` in the zone the field ``customer_timezone`` names; the playbook's
        zone (and a ``timezone.fallback`` signal, once a step) when it is missing or unknown."""
        field = self.playbook.customer_timezone
        zone = self.data.get(field) if field is not None else None
        found = self.plan.zoned(name, zone)
        if found is not None:
            return found
        if not self.tz_fallback:
            self.tz_fallback = True
            self.signal(
                "timezone.fallback",
                data={"calendar": name, "zone": zone, "timezone": self.playbook.timezone},
            )
        return self.playbook.calendars[name]

    def calendar_name(self, name: str | None) -> str:
        """The name of the calendar ``name`` stands for on this case."""
        if name is None:
            return "always"
        if name == "channel":
            channel = self.playbook.channels.get(str(self.data.get("channel")))
            return channel.calendar if channel is not None else "always"
        return name

    def holds(self, condition: Expr | None, view: Mapping[str, Any] | None) -> bool:
        """Whether ``condition`` (none: always) holds now."""
        return (
            condition is None
            or condition.fn(self.fields, view if view is not None else NO_VIEW, self) is True
        )

    def selected_target(self, clock: str, index: int) -> None:
        """Target ``index`` of ``clock`` was selected: note the case when that target is
        watched (:meth:`Engine.watch_targets`)."""
        watch = self.plan.watch
        if watch is not None and index in watch.get(clock, ()):
            self.plan.watched.add(self.case)

    def working_clock(self, name: str) -> WorkingClock:
        """The working copy of clock ``name`` (made on first use)."""
        clock = self.clocks.get(name)
        if clock is None:
            frozen = self.frozen.get(name)
            clock = WorkingClock(
                frozen if frozen is not None else Clock(name, tz=self.tz),
                self.playbook.clocks[name],
            )
            self.clocks[name] = clock
        return clock

    # -- data --------------------------------------------------------------------------------------
    def apply_sets(
        self, sets: tuple[SetValue, ...], view: Mapping[str, Any] | None, source: str
    ) -> dict[str, Any]:
        """Evaluate every value first, then assign (so ``set`` sees the old values); each is
        checked against its field's type."""
        out: dict[str, Any] = {}
        fields, view = self.fields, view if view is not None else NO_VIEW
        for assignment in sets:
            value = (
                assignment.literal
                if assignment.expr is None
                else assignment.expr.fn(fields, view, self)
            )
            if isinstance(value, timedelta):
                value = value.total_seconds()
            ok, coerced = _coerce(value, assignment.type)
            if not ok:
                raise InvalidEvent(
                    f"{source}: {assignment.field} = {value!r} is not a valid "
                    f"{describe(assignment.type)}",
                    event=self.event,
                )
            out[assignment.field] = coerced
        self.write_data(out)
        return out

    def write_data(self, values: Mapping[str, Any]) -> None:
        """Write ``values`` into the case's data (copied on first write)."""
        if values:
            own = self._own_data
            if own is None:
                own = self._own_data = dict(self.data)
                self.data = own
            own.update(values)
            self.fields = typed_data(own, self.plan.typed) if self.plan.typed else own
            self.note_changed(*values)

    def recompute_segments(self, view: Mapping[str, Any] | None) -> None:
        segments = tuple(
            name for name, e in self.playbook.segments if e(self.fields, view or {}, self) is True
        )
        if segments != self.segments:
            self.segments = segments
            self.note_changed("segment", "segments")
        self.segment = segments[0] if segments else None

    def writable_sends(self) -> dict[str, tuple[float, ...]]:
        """The step's own copy of the frequency-cap counters (made on first write)."""
        own = self._own_sends
        if own is None:
            own = self._own_sends = dict(self.sends)
            self.sends = own
        return own

    def add_pending(self, due: float, kind: str, ref: str, owner: tuple[Any, ...]) -> None:
        """Hold an item until ``due``; ``owner`` cancels it (``()``: nothing does)."""
        # creation order among the items pending now: one more than the highest of them, so the
        # number depends on what is pending, never on how a host split its calls (issue 15 #8)
        seq = max((p.seq for p in self.pending), default=0) + 1
        self.pending.append(
            Pending(due=_r(due), kind=kind, ref=ref, owner=owner, seq=seq, origin=self.now)
        )

    def cancel_pending(self, owner: tuple[Any, ...]) -> None:
        """Drop the pending items ``owner`` (a stage visit or a clock cycle) holds."""
        self.pending = [p for p in self.pending if p.owner != owner]

    def delay_due(self, t: float, delay: Duration, calendar: str | None) -> float:
        """``t`` plus ``delay``: wall-clock, or business time when a calendar is named (§4.4)."""
        if delay.business_days:
            return self.calendar(calendar or "channel").add_days_s(t, delay.business_days)
        if calendar is not None:
            return self.calendar(calendar).add_s(t, delay.seconds)
        if delay.days or delay.months:
            # calendar months, then days, in the playbook timezone (same wall time, §2.2)
            local = dt(t, self.tz).replace(tzinfo=None)
            if delay.months:
                local = add_months(local, delay.months)
            wall = (local + timedelta(days=delay.days)).replace(tzinfo=self.tz)
            return _r(wall.timestamp()) + float(delay.seconds)
        return _r(t + delay.seconds)

    def deadline_items(self) -> list[DeadlineItem]:
        """The state's wake-ups, sorted: clock breaches, next thresholds, pending items."""
        items: list[DeadlineItem] = []
        if self.ended:
            return sorted((p.due, KIND_ORDER[p.kind], p.kind, p.ref) for p in self.pending)
        for clock in self.clocks.values():
            if clock.status != "running":
                continue
            due = clock.due_s  # kept current by finish(): computed once a step, read here
            if due is not None and not clock.breached:
                items.append((due, 0, "clock", clock.name))
            thresholds = clock.definition.thresholds
            if (
                clock.fired < len(thresholds)
                and clock.target_s is not None
                and clock.as_of_s is not None
            ):
                threshold = thresholds[clock.fired]
                position = threshold.at(clock.target_s)
                remaining = position - clock.elapsed_s
                threshold_due = (
                    clock.as_of_s
                    if remaining <= 0
                    else clock.instant_at(self, clock.as_of_s, position, remaining)
                )
                items.append((threshold_due, 0, "threshold", f"{clock.name}:{threshold.text}"))
        for p in self.pending:
            items.append((p.due, KIND_ORDER[p.kind], p.kind, p.ref))
        items.sort()
        return items

    def frozen_clocks(self) -> Mapping[str, Clock]:
        names = self.plan.clock_names
        before = self.frozen
        if (
            not self.clocks
            and isinstance(before, MappingProxyType)
            and len(before) == len(names)
            and all(n in before for n in names)
        ):
            return before  # no clock was touched: the state's read-only mapping is carried over
        out: dict[str, Clock] = {}
        for name in names:
            clock = self.clocks.get(name)
            if clock is not None:
                out[name] = clock.freeze(self.tz)
            else:
                frozen = before.get(name)
                out[name] = frozen if frozen is not None else Clock(name, tz=self.tz)
        return MappingProxyType(out)

    def finish(self) -> Step:
        """Freeze the run into the step's new state, with its deadlines."""
        for clock in self.clocks.values():
            clock.catch_up(self)
            clock.due_s = clock.due(self) if clock.status in OPEN or clock.breached else None
        items = tuple(self.deadline_items())
        playbook = self.playbook
        if self._own_sends is None:
            sends = self.sends
        else:
            sends = (
                MappingProxyType({k: v for k, v in self.sends.items() if v})
                if self.sends
                else NO_SENDS
            )
        state = CaseState(
            playbook=playbook.id,
            version=playbook.version,
            content_hash=playbook.content_hash,
            case=self.case,
            stage=self.stage,
            data=MappingProxyType(self._own_data) if self._own_data is not None else self.data,
            tier=self.tier,
            segment=self.segment,
            segments=tuple(self.segments),
            clocks=self.frozen_clocks(),
            now_s=self.now,
            opened_s=self.opened,
            seq=self.seq,
            epoch=self.epoch,
            ended=self.ended,
            pending=tuple(sorted(self.pending, key=_pending_order))
            if len(self.pending) > 1
            else tuple(self.pending),
            sends=sends,
            timezone=playbook.timezone,
            next_wakeup_s=items[0][0] if items else None,
        )
        return Step(state, self.actions, self.signals, items, tuple(self.trace))
