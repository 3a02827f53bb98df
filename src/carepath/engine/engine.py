"""The pure, deterministic engine (SPEC §4): ``start``, ``handle``, ``advance``, ``migrate``.

``Engine(playbook)`` evaluates cases: given a :class:`~carepath.state.CaseState` and an event
(or an instant), it returns a :class:`Step` with the new state, the actions for the host, the
signals raised and the deadlines to wake up for. No I/O, no threads, no system clock; the same
playbook, state and input give byte-identical output; inputs are never mutated.

Internally a step works on a mutable copy (:class:`_Run`) and freezes it at the end. Instants
are POSIX seconds rounded to microseconds; business time comes from the playbook's calendars.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from carepath._instants import dt, typed_value, zone
from carepath._instants import round_micros as _r
from carepath._records import fast_init
from carepath.compile.ir import (
    ActionDef,
    ClockDef,
    HandlerDef,
    Playbook,
    ScheduleDef,
    SetValue,
    TimerDef,
)
from carepath.errors import CaseError, EventOutOfOrder, InvalidEvent, PlaybookMismatch, SignalLoop
from carepath.events import Event
from carepath.expr.types import coerce
from carepath.state import Action, CaseState, Clock, ClockRecord, Deadline, Pending, Signal

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar

__all__ = ["Engine", "Step"]

MAX_SIGNAL_DEPTH = 16
MAX_HISTORY = 20
MAX_ITEMS_PER_STEP = 100_000
_KIND_ORDER = {"clock": 0, "threshold": 0, "action": 1, "timer": 2, "schedule": 3}
_EPS = 1e-6
_OPEN = ("running", "paused")
_NOVIEW: Mapping[str, Any] = MappingProxyType({})


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
    _items: tuple[tuple[float, int, str, str], ...] = ()
    _trace: tuple[tuple[float, str, str, str], ...] = ()

    @property
    def deadlines(self) -> list[Deadline]:
        """The wake-ups of the new state: ``{kind, name, due}``, sorted by ``due``."""
        tz = zone(self.state.timezone)
        return [Deadline(k, n, dt(d, tz)) for d, _, k, n in self._items]

    @property
    def trace(self) -> list[tuple[str, str, str, str]]:
        """``(at, what, source, detail)`` for every decision the step took."""
        tz = zone(self.state.timezone)
        return [(dt(t, tz).isoformat(), what, src, detail) for t, what, src, detail in self._trace]

    def explain(self) -> str:
        """The trace as readable lines."""
        return "\n".join(f"{at}  {what:<10} {src}  {detail}".rstrip() for at, what, src, detail in self.trace)

    def to_dict(self) -> dict[str, Any]:
        """``{state, actions, signals, deadlines}`` in JSON shapes."""
        return {"state": self.state.to_dict(), "actions": [a.to_dict() for a in self.actions],
                "signals": [s.to_dict() for s in self.signals], "deadlines": [d.to_dict() for d in self.deadlines]}


class _Scope(Mapping[str, Any]):
    """Specials for conditions (``stage``, ``segment``, ``tier``, ``sla.x.status``…), computed lazily."""

    __slots__ = ("run",)

    def __init__(self, run: _Run) -> None:
        self.run = run

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, name: str, default: Any = None) -> Any:
        r = self.run
        if name == "stage":
            return r.stage
        if name == "segment":
            return r.segment
        if name == "segments":
            return list(r.segments)
        if name == "tier":
            return r.tier
        if name == "now":
            return dt(r.now, r.eng.tz)
        if name == "channel":
            return r.data.get("channel")
        if name.startswith("sla."):
            parts = name.split(".")
            c: Any = None
            if len(parts) == 3:
                c = r.clocks.get(parts[1]) or r._frozen.get(parts[1])
            if c is None:
                return default
            attr = parts[2]
            if attr == "status":
                return c.status
            if attr == "breached":
                return c.breached
            if isinstance(c, _CW):
                r.touch(c)
            elif attr == "due":
                return None if c.due_s is None else dt(c.due_s, r.eng.tz)
            if attr == "elapsed":
                return timedelta(seconds=c.elapsed_s)
            if attr == "remaining":
                return None if c.target_s is None else timedelta(seconds=c.target_s - c.elapsed_s)
            if attr == "due":
                due = r.clock_due(c)
                return None if due is None else dt(due, r.eng.tz)
        return default

    def __getitem__(self, name: str) -> Any:
        return self.get(name)


class _CW:
    """A clock's mutable working copy during a step."""

    __slots__ = (
        "as_of_s",
        "breach_s",
        "breached",
        "calendar",
        "conds",
        "cycle",
        "def_",
        "due_s",
        "elapsed_s",
        "fired",
        "history",
        "memo",
        "name",
        "pause_from_s",
        "paused_s",
        "pauses",
        "started_s",
        "status",
        "target_index",
        "target_s",
    )

    def __init__(self, c: Clock, d: ClockDef) -> None:
        self.def_ = d
        self.name = c.name
        self.status = c.status
        self.cycle = c.cycle
        self.breached = c.breached
        self.started_s = c.started_s
        self.as_of_s = c.as_of_s
        self.elapsed_s = c.elapsed_s
        self.paused_s = c.paused_s
        self.pause_from_s = c.pause_from_s
        self.pauses = list(c.pauses)
        self.target_index = c.target_index
        self.target_s = c.target_s
        self.calendar = c.calendar
        self.breach_s = c.breach_s
        self.due_s = c.due_s
        self.fired = c.fired
        self.conds = c.conds
        self.history = list(c.history)
        # business-time due instants by position on the clock (a running clock's instant for a
        # position does not move while it runs); seeded with the breach instant the state holds
        self.memo: dict[float, float] = (
            {c.target_s: c.due_s} if c.status == "running" and not c.breached and c.due_s is not None
            and c.target_s is not None else {})

    def freeze(self, tz: Any) -> Clock:
        return Clock(self.name, self.status, self.cycle, self.breached, self.started_s, self.as_of_s,
                     round(self.elapsed_s * 1_000_000) / 1_000_000, round(self.paused_s * 1_000_000) / 1_000_000,
                     self.pause_from_s, tuple(self.pauses),
                     self.target_index, self.target_s, self.calendar, self.breach_s, self.due_s, self.fired,
                     self.conds, tuple(self.history), tz)

    @property
    def is_open(self) -> bool:
        return self.status == "running" or self.status == "paused"


class Engine:
    """Evaluates cases of one compiled :class:`~carepath.compile.ir.Playbook`."""

    def __init__(self, playbook: Playbook, *, trace: bool = True) -> None:
        self.playbook = playbook
        self.tracing = trace
        self.tz = zone(playbook.timezone)
        self._actions: dict[str, ActionDef] = {}
        self._timers: dict[str, tuple[str, TimerDef]] = {}
        self._schedules: dict[str, tuple[str, ScheduleDef]] = {}
        for sname, st in playbook.stages.items():
            self._index(st.enter)
            self._index(st.exit)
            for hs in st.on.values():
                for h in hs:
                    self._index(h.do)
            for t in st.after:
                self._timers[t.source] = (sname, t)
                self._index(t.do)
            for s in st.every:
                self._schedules[s.source] = (sname, s)
                self._index(s.do)
        for hs in playbook.on.values():
            for h in hs:
                self._index(h.do)
        for c in playbook.clocks.values():
            for th in c.thresholds:
                self._index(th.do)
        self._mentioned = playbook.event_types
        self._key_is_case = playbook.start.key.source.strip() == "event.case"
        # per clock, so most steps skip most work: which triggers (bits: 1 start, 2 stop, 4 reset,
        # 8 cancel) each event type and each entered stage fires, whether a `when` trigger exists,
        # whether targets can change between steps, and what they read
        self._clock_plan: dict[str, tuple[dict[str, int], dict[str, int], bool, bool, frozenset[str] | None]] = {}
        stable_names = set(playbook.fields) | {"segment", "segments", "tier", "channel"}
        for name, c in playbook.clocks.items():
            on_bits: dict[str, int] = {}
            enter_bits: dict[str, int] = {}
            has_when = False
            for bit, trig in ((1, c.start), (2, c.stop), (4, c.reset), (8, c.cancel)):
                if trig is not None:
                    for ty in trig.on:
                        on_bits[ty] = on_bits.get(ty, 0) | bit
                    for ty in trig.enter:
                        enter_bits[ty] = enter_bits.get(ty, 0) | bit
                    has_when = has_when or trig.when is not None
            retarget = (len(c.targets) > 1 or any(t.when is not None or t.calendar == "channel" for t in c.targets)
                        or c.calendar == "channel")
            # targets that read only case data (fields, segment, tier) cannot change in a step that
            # changed none of the names they read, so retargeting is skipped then; None: they read
            # the event or other specials, and are evaluated every step
            reads: frozenset[str] | None = None
            if all(t.when is None or t.when.names <= stable_names for t in c.targets):
                reads = frozenset().union(*(t.when.names for t in c.targets if t.when is not None))
                if c.calendar == "channel" or any(t.calendar == "channel" for t in c.targets):
                    reads |= {"channel"}
            self._clock_plan[name] = (on_bits, enter_bits, has_when, retarget, reads)
        self._clock_names = tuple(playbook.clocks)
        self._clock_index = {n: i for i, n in enumerate(self._clock_names)}
        # segments need recomputing on an event only when they read more than the case's fields
        self._segments_volatile = any(n not in playbook.fields
                                      for _, e in playbook.segments for n in e.names)

    def _index(self, acts: tuple[ActionDef, ...]) -> None:
        for a in acts:
            self._actions[a.source] = a

    # -- public API ------------------------------------------------------------------------------
    def opens(self, event: Event) -> bool:
        """Whether ``event`` opens a case (its type is a ``start.on`` type and ``start.when`` holds)."""
        s = self.playbook.start
        if event.type not in s.on:
            return False
        if s.when is None:
            return True
        view = self._event_view(event, validate=False)
        return s.when({}, view, _NullScope) is True

    def case_key(self, event: Event) -> str | None:
        """The case key of ``event`` (``start.key``, by default ``event.case``)."""
        if self._key_is_case:  # the usual key: no need to build the event's view
            return event.case
        view = self._event_view(event, validate=False)
        key = self.playbook.start.key({}, view, _NullScope)
        return None if key is None else str(key)

    def mentions(self, event_type: str) -> bool:
        """Whether the playbook mentions ``event_type`` anywhere (start, handlers, clocks, exit)."""
        return event_type in self._mentioned

    def start(self, event: Event, previous: CaseState | None = None) -> Step:
        """Open a case with its start event; ``previous`` (an ended case of the same key) keeps
        the action sequence going, so ids stay unique within the playbook."""
        pb = self.playbook
        if event.type not in pb.start.on:
            raise InvalidEvent(f"{event.type!r} does not open a case of {pb.id} (start.on: "
                               f"{', '.join(sorted(pb.start.on))})", event=event, state=previous)
        if previous is not None:
            self._check(previous, event)
        view = self._event_view(event)
        if pb.start.when is not None and pb.start.when({}, view, _NullScope) is not True:
            raise InvalidEvent(f"start.when does not hold for event {event.id}", event=event, state=previous)
        key = pb.start.key({}, view, _NullScope)
        if key is None or key == "":
            raise InvalidEvent(f"event {event.id} has no case key ({pb.start.key_text})", event=event, state=previous)
        run = _Run.fresh(self, str(key), event._ts, previous.seq if previous is not None else 0)
        run.event = event
        if run.tracing:
            run.trace_("start", "start", f"case {key} opened by {event.type}")
        run.apply_sets(pb.start.sets, view, "start.set")
        run.recompute_segments(view)
        run.enter_stage(pb.initial, view)
        run.dispatch(event.type, view, entered=[pb.initial])
        run.drain_signals()
        run.fire_due(event._ts, inclusive=True)
        return run.finish()

    def handle(self, state: CaseState, event: Event) -> Step:
        """Apply ``event`` to ``state`` (SPEC §4.2). Raises :class:`EventOutOfOrder`,
        :class:`InvalidEvent`, :class:`PlaybookMismatch` or :class:`SignalLoop`; the input is unchanged."""
        self._check(state, event)
        if event._ts < state.now_s - _EPS:
            raise EventOutOfOrder(f"event {event.id} at {event.at.isoformat()} is older than the case's now "
                                  f"{state.now.isoformat()}", event=event, state=state)
        if state.ended or event.type not in self._mentioned:
            why = "case has ended" if state.ended else "event type not used by this playbook"
            sig = Signal("ignored", event.at, data=MappingProxyType({"event": event.id, "type": event.type,
                                                                     "reason": why}))
            return Step(state, [], [sig], tuple(_Run(self, state).deadline_items()), ((event._ts, "ignored", event.type, why),))
        view = self._event_view(event, state=state)
        run = _Run(self, state)
        if state.next_wakeup_s is not None and state.next_wakeup_s < event._ts:
            run.fire_due(event._ts, inclusive=False)
        if not run.ended:
            run.set_now(event._ts)
            run.event = event
            if self._segments_volatile:
                run.recompute_segments(view)
            run.dispatch(event.type, view, entered=[])
            run.drain_signals()
        run.fire_due(event._ts, inclusive=True)
        return run.finish()

    def advance(self, state: CaseState, now: datetime) -> Step:
        """Fire everything due at or before ``now``. Nothing due (or ``now`` ≤ ``state.now``)
        returns an equal state and never raises."""
        self._check(state, None)
        t = _r(now.timestamp()) if now.tzinfo is not None else None
        if t is None:
            raise ValueError("advance() needs an aware datetime")
        if t <= state.now_s or state.next_wakeup_s is None or state.next_wakeup_s > t:
            return Step(state, [], [], tuple(_Run(self, state).deadline_items()))
        run = _Run(self, state)
        run.fire_due(t, inclusive=True)
        return run.finish()

    def deadlines(self, state: CaseState) -> list[Deadline]:
        """The deadlines of ``state``, sorted by due time."""
        run = _Run(self, state)
        return [Deadline(k, n, dt(d, self.tz)) for d, _, k, n in run.deadline_items()]

    def migrate(self, state: CaseState, mapping: Mapping[str, str] | None = None) -> CaseState:
        """Move ``state`` onto this engine's playbook: ``mapping`` renames stages (old → new).

        Clock history is kept; open cycles are re-measured from their start in the new calendars
        and targets (so open tickets follow a changed SLA or holiday list); timers of the current
        stage are kept when they still exist, otherwise dropped; a breach is never undone.
        """
        pb = self.playbook
        mapping = dict(mapping or {})
        stage = mapping.get(state.stage, state.stage)
        if stage not in pb.stages:
            raise PlaybookMismatch(f"stage {state.stage!r} does not exist in {pb.id} {pb.version}; map it with "
                                   f"migrate(state, {{{state.stage!r}: 'new_stage'}})", state=state)
        clocks: dict[str, Clock] = {}
        for name in pb.clocks:
            old = state.clocks.get(name)
            clocks[name] = replace(old, tz=self.tz) if old is not None else Clock(name, tz=self.tz)
        moved = replace(state, playbook=pb.id, version=pb.version, content_hash=pb.content_hash, stage=stage,
                        clocks=MappingProxyType(clocks),
                        pending=tuple(p for p in state.pending if p.ref in self._actions or p.ref in self._timers
                                      or p.ref in self._schedules),
                        timezone=pb.timezone)
        run = _Run(self, moved)
        for c in run.clocks.values():
            if c.status in _OPEN:
                run.retarget(c, force=True)
        return run.finish().state

    # -- helpers ---------------------------------------------------------------------------------
    def _check(self, state: CaseState, event: Event | None) -> None:
        pb = self.playbook
        if state.playbook != pb.id or state.version != pb.version or state.content_hash != pb.content_hash:
            what = (f"playbook {state.playbook} {state.version}" if (state.playbook, state.version) != (pb.id, pb.version)
                    else f"the same version {pb.version} with different content")
            raise PlaybookMismatch(f"case {state.case} was produced by {what}, not {pb.id} {pb.version} "
                                   f"({pb.content_hash[:12]}); use engine.migrate(state)", event=event, state=state)

    def _event_view(self, event: Event, *, validate: bool = True, state: CaseState | None = None) -> dict[str, Any]:
        """The event as conditions see it: data (declared defaults applied, types checked) + meta."""
        view: dict[str, Any] = dict(event.data)
        decl = self.playbook.events.get(event.type)
        if decl is not None:
            for name, (ft, default, required) in decl.items():
                v = view.get(name)
                k = ft.kind
                vc = v.__class__
                if ((vc is str and (k == "string" or (k == "enum" and v in ft.values)))
                        or (vc is bool and k == "bool") or (vc is int and k == "int")):
                    continue  # the common cases, already valid: no conversion needed
                if v is None:
                    if required and validate:
                        raise InvalidEvent(f"event {event.id} ({event.type}): missing field `{name}`",
                                           event=event, state=state)
                    view[name] = typed_value(default, k)
                    continue
                ok, cv = coerce(v, ft)
                if not ok and validate:
                    from carepath.expr.types import describe

                    raise InvalidEvent(f"event {event.id} ({event.type}): field `{name}` = {v!r} is not a valid "
                                       f"{describe(ft)}", event=event, state=state)
                view[name] = typed_value(cv, k)  # dates, datetimes and decimals compare as such
        view["type"] = event.type
        view["at"] = event.at
        view["case"] = event.case
        view["id"] = event.id
        return view


@functools.lru_cache(maxsize=256)
def _duration(text: str) -> Any:
    """A task's ``due`` parsed once per distinct text (the playbook's texts are few)."""
    from carepath.durations import parse_duration

    return parse_duration(text)


def _coerce(v: Any, t: Any) -> tuple[bool, Any]:
    """:func:`~carepath.expr.types.coerce` with the common already-valid cases answered inline."""
    vc = v.__class__
    k = t.kind
    if (vc is str and (k == "string" or (k == "enum" and v in t.values))) or (vc is bool and k == "bool") or (
            vc is int and k == "int"):
        return True, v
    return coerce(v, t)


def _pending_order(p: Pending) -> tuple[float, int]:
    return (p.due, p.seq)


_NO_SENDS: Mapping[str, tuple[float, ...]] = MappingProxyType({})


class _NullScopeT:
    def get(self, name: str, default: Any = None) -> Any:
        return default


_NullScope: Any = _NullScopeT()


class _Run:
    """One step's mutable working copy of a case."""

    __slots__ = (
        "_data_w",
        "_frozen",
        "_now_dt",
        "_now_dt_s",
        "_pending0",
        "_pseq",
        "_sends_w",
        "_view",
        "actions",
        "case",
        "changed",
        "clocks",
        "data",
        "depth",
        "ended",
        "eng",
        "epoch",
        "event",
        "now",
        "opened",
        "pb",
        "pending",
        "queue",
        "scope",
        "segment",
        "segments",
        "sends",
        "seq",
        "signals",
        "stage",
        "tier",
        "trace",
        "tracing",
    )

    def __init__(self, eng: Engine, s: CaseState) -> None:
        self.eng = eng
        self.pb = eng.playbook
        self.case = s.case
        self.stage = s.stage
        # data and sends are copied on first write (most steps change neither)
        self.data: Mapping[str, Any] = s.data
        self._data_w: dict[str, Any] | None = None  # the step's own copy, once it writes
        self.tier = s.tier
        self.segment = s.segment
        self.segments = s.segments
        # copy-on-write: only open clocks (and those a trigger touches) get a working copy;
        # the others are carried over frozen
        self._frozen = s.clocks
        defs = self.pb.clocks
        self.clocks: dict[str, _CW] = {n: _CW(c, defs[n]) for n, c in s.clocks.items()
                                       if (c.status == "running" or c.status == "paused") and n in defs}
        self.now = s.now_s
        self.opened = s.opened_s
        self.seq = s.seq
        self.epoch = s.epoch
        self.ended = s.ended
        self.pending: list[Pending] = list(s.pending)
        self.sends: Mapping[str, tuple[float, ...]] = s.sends
        self._sends_w: dict[str, tuple[float, ...]] | None = None
        self.actions: list[Action] = []
        self.signals: list[Signal] = []
        self.trace: list[tuple[float, str, str, str]] = []
        self.tracing = eng.tracing
        self.queue: deque[tuple[Signal, int]] = deque()
        self.depth = 0
        self.event: Event | None = None
        self.scope = _Scope(self)
        self._view: Mapping[str, Any] | None = None
        self._now_dt_s = -1.0
        self._now_dt = datetime.min
        self._pseq = -1  # the highest pending seq at the step's start, found on first use
        self._pending0 = s.pending
        self.changed: set[str] | None = None  # the fields, segment(s) and tier the step changed

    def note_changed(self, *names: str) -> None:
        """Record that the step changed these names (fields, ``segment(s)``, ``tier``)."""
        if self.changed is None:
            self.changed = set(names)
        else:
            self.changed.update(names)

    def cw(self, name: str) -> _CW:
        """The working copy of clock ``name`` (made on first use)."""
        c = self.clocks.get(name)
        if c is None:
            frozen = self._frozen.get(name)
            c = _CW(frozen if frozen is not None else Clock(name, tz=self.eng.tz), self.pb.clocks[name])
            self.clocks[name] = c
        return c

    @classmethod
    def fresh(cls, eng: Engine, key: str, at: float, seq: int) -> _Run:
        pb = eng.playbook
        s = CaseState(
            playbook=pb.id, version=pb.version, content_hash=pb.content_hash, case=key, stage=pb.initial,
            data=MappingProxyType(dict(pb.defaults)), tier=None, segment=None, segments=(),
            clocks=MappingProxyType({n: Clock(n, tz=eng.tz) for n in pb.clocks}), now_s=at, opened_s=at, seq=seq,
            epoch=0, timezone=pb.timezone,
        )
        return cls(eng, s)

    # -- bookkeeping -------------------------------------------------------------------------------
    def iso(self, t: float) -> str:
        return dt(t, self.eng.tz).isoformat()

    def trace_(self, what: str, source: str, detail: str = "") -> None:
        self.trace.append((self.now, what, source, detail))

    def set_now(self, t: float) -> None:
        if t > self.now:
            self.now = t

    def now_dt(self) -> datetime:
        """``now`` as an aware datetime in the playbook timezone (cached per instant)."""
        if self._now_dt_s != self.now:
            self._now_dt = dt(self.now, self.eng.tz)
            self._now_dt_s = self.now
        return self._now_dt

    def signal(self, type_: str, *, sla: str | None = None, cycle: int | None = None,
               record: ClockRecord | None = None, data: Mapping[str, Any] | None = None) -> None:
        sig = Signal(type_, self.now_dt(), sla, cycle, record,
                     MappingProxyType(dict(data)) if data else _NOVIEW)
        self.signals.append(sig)
        self.queue.append((sig, self.depth + 1))

    def calendar(self, name: str | None) -> Calendar:
        if name is None or name == "channel":
            return self.pb.calendar_named(name, self.data)
        cal = self.pb.calendars.get(name)
        return cal if cal is not None else self.pb.calendar_named(name, self.data)

    def cal_name(self, name: str | None) -> str:
        if name is None:
            return "always"
        if name == "channel":
            ch = self.pb.channels.get(str(self.data.get("channel")))
            return ch.calendar if ch is not None else "always"
        return name

    def cond(self, e: Any, view: Mapping[str, Any] | None) -> bool:
        return e is None or e.fn(self.data, view if view is not None else _NOVIEW, self.scope) is True

    # -- data -----------------------------------------------------------------------------------------
    def apply_sets(self, sets: tuple[SetValue, ...], view: Mapping[str, Any] | None, source: str) -> dict[str, Any]:
        """Evaluate every value first, then assign (so ``set`` sees the old values); type-checked."""
        out: dict[str, Any] = {}
        data, scope, view = self.data, self.scope, view if view is not None else _NOVIEW
        for s in sets:
            v = s.literal if s.expr is None else s.expr.fn(data, view, scope)
            if isinstance(v, timedelta):
                v = v.total_seconds()
            ok, cv = _coerce(v, s.type)
            if not ok:
                from carepath.expr.types import describe

                raise InvalidEvent(f"{source}: {s.field} = {v!r} is not a valid {describe(s.type)}",
                                   event=self.event)
            out[s.field] = cv
        if out:
            w = self._data_w
            if w is None:
                w = self._data_w = dict(self.data)
                self.data = w
            w.update(out)
            self.note_changed(*out)
        return out

    def recompute_segments(self, view: Mapping[str, Any] | None) -> None:
        segs = tuple(n for n, e in self.pb.segments if e(self.data, view or {}, self.scope) is True)
        if segs != self.segments:
            self.segments = segs
            self.note_changed("segment", "segments")
        self.segment = segs[0] if segs else None

    # -- dispatch ---------------------------------------------------------------------------------------
    def pick(self, handlers: tuple[HandlerDef, ...] | None, view: Mapping[str, Any]) -> HandlerDef | None:
        if not handlers:
            return None
        for h in handlers:
            if h.when is None or h.when(self.data, view, self.scope) is True:
                return h
        return None

    def dispatch(self, type_: str, view: Mapping[str, Any], entered: list[str]) -> None:
        """Handle an event or signal in the current stage, then evaluate the clocks."""
        st = self.pb.stages[self.stage]
        h = self.pick(st.on.get(type_), view)
        if h is None and not st.final:
            h = self.pick(self.pb.on.get(type_), view)
        if h is not None:
            if self.tracing:
                self.trace_("handler", h.source, f"{type_}" + (f" when {h.when.source}" if h.when is not None else "")
                            + (f" → {h.to}" if h.to else ""))
            if h.sets:
                self.apply_sets(h.sets, view, h.source + ".set")
                self.recompute_segments(view)
            if h.to is not None:
                self.transition(h.to, h.do, view, entered)
            else:
                self.run_actions(h.do, view, ("stage", self.epoch))
        self.after_change(type_, view, entered)

    def after_change(self, type_: str, view: Mapping[str, Any] | None, entered: list[str]) -> None:
        self.eval_clocks(type_, view, entered)
        if not self.ended:
            if self.pb.stages[self.stage].final:
                self.end_case("final stage " + self.stage)
            elif type_ in self.pb.exit_on and self.cond(self.pb.exit_when, view):
                self.end_case("exit on " + type_)

    def transition(self, to: str, do: tuple[ActionDef, ...], view: Mapping[str, Any] | None, entered: list[str]) -> None:
        old = self.pb.stages[self.stage]
        old_epoch = self.epoch
        self.epoch += 1
        self.pending = [p for p in self.pending if not (p.owner and p.owner[0] == "stage" and p.owner[1] == old_epoch)]
        owner = ("stage", self.epoch)
        self.run_actions(old.exit, view, owner)
        self.run_actions(do, view, owner)
        if self.tracing:
            self.trace_("move", f"stages.{old.name}", f"{old.name} → {to}")
        self.stage = to
        self.enter_stage(to, view, bump=False)
        entered.append(to)

    def enter_stage(self, name: str, view: Mapping[str, Any] | None, *, bump: bool = True) -> None:
        if bump:
            self.epoch += 1
        st = self.pb.stages[name]
        self.stage = name
        owner = ("stage", self.epoch)
        self.run_actions(st.enter, view, owner)
        if st.final:
            return
        for t in st.after:
            self.arm_timer(t)
        for s in st.every:
            self.arm_schedule(s, self.now)

    def arm_timer(self, t: TimerDef) -> None:
        due = self.delay_due(self.now, t.delay, t.calendar)
        if t.window is not None:
            due = self.calendar(t.window).next_open_s(due)
        self.add_pending(due, "timer", t.source, ("stage", self.epoch))

    def arm_schedule(self, s: ScheduleDef, after: float) -> None:
        due = s.schedule.next_after_s(after)
        if s.window is not None:
            due = self.calendar(s.window).next_open_s(due)
        self.add_pending(due, "schedule", s.source, ("stage", self.epoch))

    def add_pending(self, due: float, kind: str, ref: str, owner: tuple[Any, ...]) -> None:
        if self._pseq < 0:
            self._pseq = max((p.seq for p in self._pending0), default=0)
        self._pseq += 1
        self.pending.append(Pending(_r(due), kind, ref, owner, self._pseq, self.now))

    def delay_due(self, t: float, d: Any, calendar: str | None) -> float:
        if d.business_days:
            return self.calendar(calendar or "channel").add_days_s(t, d.business_days)
        if calendar is not None:
            return self.calendar(calendar).add_s(t, d.seconds)
        if d.days:
            local = dt(t, self.eng.tz)
            wall = (local.replace(tzinfo=None) + timedelta(days=d.days)).replace(tzinfo=self.eng.tz)
            return _r(wall.timestamp()) + float(d.seconds)
        return _r(t + d.seconds)

    # -- actions --------------------------------------------------------------------------------------------
    def run_actions(self, acts: tuple[ActionDef, ...], view: Mapping[str, Any] | None, owner: tuple[Any, ...]) -> None:
        for a in acts:
            if a.delay is not None:
                due = self.delay_due(self.now, a.delay, a.calendar)
                if a.window is not None:
                    due = self.calendar(a.window).next_open_s(due)
                self.add_pending(due, "action", a.source, () if a.keep else owner)
                if self.tracing:
                    self.trace_("delay", a.source, f"{a.verb} due {self.iso(due)}")
            elif a.window is not None and not self.calendar(a.window).is_open_s(self.now):
                due = self.calendar(a.window).next_open_s(self.now)
                self.add_pending(due, "action", a.source, () if a.keep else owner)
                if self.tracing:
                    self.trace_("window", a.source, f"{a.verb} waits for {a.window} until {self.iso(due)}")
            else:
                self.emit(a, view)

    def emit(self, a: ActionDef, view: Mapping[str, Any] | None) -> None:
        verb = a.verb
        params: dict[str, Any] = dict(a.params)
        if verb == "notify":
            params["to"] = a.arg
        elif verb == "send":
            channel = params.get("channel") or self.data.get("channel")
            params["template"] = a.arg
            params["channel"] = channel
            ch = self.pb.channels.get(str(channel)) if channel is not None else None
            if ch is not None and ch.cap_per is not None and ch.cap_max is not None:
                recent = tuple(t for t in self.sends.get(ch.name, ()) if t > self.now - ch.cap_per)
                sends = self._sends_w
                if sends is None:
                    sends = self._sends_w = dict(self.sends)
                    self.sends = sends
                if len(recent) >= ch.cap_max:
                    if self.tracing:
                        self.trace_("capped", a.source, f"{ch.cap_max} sends per {ch.cap_per:g}s on {ch.name}")
                    self.signal("capped", data={"channel": ch.name, "template": a.arg, "source": a.source})
                    sends[ch.name] = recent
                    return
                sends[ch.name] = (*recent, self.now)[-ch.cap_max:]
        elif verb == "survey":
            params["survey"] = a.arg
            params.setdefault("channel", self.data.get("channel"))
        elif verb == "assign":
            params["tier"] = a.arg
            params["from"] = self.tier
            self.tier = a.arg
            self.note_changed("tier")
        elif verb == "escalate":
            tiers = self.pb.tiers
            old = self.tier
            if a.arg == "next":
                if old is None or old not in tiers:
                    new = tiers[0] if tiers else None
                elif tiers.index(old) + 1 < len(tiers):
                    new = tiers[tiers.index(old) + 1]
                else:
                    new = old
                    self.signal("tier.exhausted", data={"tier": old})
            else:
                new = a.arg
            params["tier"] = new
            params["from"] = old
            self.tier = new
            self.note_changed("tier")
        elif verb == "set":
            values = self.apply_sets(a.sets, view, a.source)
            params["values"] = values
            self.recompute_segments(view)
        elif verb == "task":
            params["task"] = a.arg
            if "due" in params:
                params["due"] = self.iso(self.delay_due(self.now, _duration(params["due"]), None))
        elif verb == "emit":
            params["name"] = a.arg
        self.seq += 1
        act = Action(f"{self.case}:{self.seq}", self.pb.id, self.case, verb, MappingProxyType(params),
                     self.now_dt(), a.source)
        self.actions.append(act)
        if self.tracing:
            self.trace_("action", a.source, f"{verb} {a.arg if verb != 'set' else params.get('values')}")

    # -- clocks ---------------------------------------------------------------------------------------------------
    def touch(self, c: _CW, t: float | None = None) -> None:
        """Bring the clock's elapsed (or paused) time up to ``t`` (default: now)."""
        t = self.now if t is None else t
        if c.status not in _OPEN or c.as_of_s is None or t <= c.as_of_s:
            return
        cal = self.calendar(c.calendar)
        span = cal.elapsed_s(c.as_of_s, t)
        if c.status == "running":
            c.elapsed_s += span
        else:
            c.paused_s += span
        c.as_of_s = t

    def due_at(self, c: _CW, as_of: float, pos: float, rem: float) -> float:
        """The instant a running clock reaches ``pos`` business seconds (``rem`` after ``as_of``)."""
        due = c.memo.get(pos)
        if due is None:
            due = c.memo[pos] = _r(self.calendar(c.calendar).add_s(as_of, rem))
        return due

    def clock_due(self, c: _CW) -> float | None:
        if c.breached:
            return c.breach_s
        if c.status != "running" or c.target_s is None or c.as_of_s is None:
            return None
        rem = c.target_s - c.elapsed_s
        if rem <= 0:
            return c.as_of_s
        return self.due_at(c, c.as_of_s, c.target_s, rem)

    def clock_next(self, c: _CW) -> float | None:
        """When the clock's next item (its breach or its next threshold) falls due."""
        if c.status != "running" or c.target_s is None or c.as_of_s is None:
            return None
        target = c.target_s
        ths = c.def_.thresholds
        pos: float | None = None
        if not c.breached:
            pos = target
        if c.fired < len(ths):
            th = ths[c.fired]
            p = th.at(target)
            if pos is None or p < pos - _EPS or (abs(p - pos) <= _EPS and th.severity == "warning"):
                pos = p
        if pos is None:
            return None
        rem = pos - c.elapsed_s
        if rem <= _EPS:
            return c.as_of_s if c.as_of_s > self.now else self.now
        return self.due_at(c, c.as_of_s, pos, rem)

    def choose_target(self, c: _CW) -> int:
        view = self._view if self._view is not None else _NOVIEW
        data, scope = self.data, self.scope
        for t in c.def_.targets:
            if t.when is None or t.when.fn(data, view, scope) is True:
                return t.index
        return len(c.def_.targets) - 1

    def target_seconds(self, c: _CW, idx: int, cal: Calendar) -> float:
        t = c.def_.targets[idx]
        if t.business_days:
            start = c.started_s if c.started_s is not None else self.now
            return _r(cal.elapsed_s(start, cal.add_days_s(start, t.business_days)))
        return float(t.seconds or 0.0)

    def start_cycle(self, c: _CW, view: Mapping[str, Any] | None) -> None:
        c.cycle += 1
        c.status = "running"
        c.memo = {}
        c.started_s = c.as_of_s = self.now
        c.elapsed_s = c.paused_s = 0.0
        c.pause_from_s = None
        c.pauses = []
        c.breached = False
        c.breach_s = None
        c.fired = 0
        idx = self.choose_target(c)
        tdef = c.def_.targets[idx]
        c.calendar = self.cal_name(tdef.calendar or c.def_.calendar)
        c.target_index = idx
        c.target_s = self.target_seconds(c, idx, self.calendar(c.calendar))
        if self.tracing:
            self.trace_("clock", f"slas.{c.name}", f"cycle {c.cycle} started; target {tdef.text} "
                        f"(targets[{idx}]{' when ' + tdef.when.source if tdef.when is not None else ''}) in {c.calendar}")
        self.signal(f"sla.{c.name}.started", sla=c.name, cycle=c.cycle)

    def end_cycle(self, c: _CW, how: str) -> None:
        """End the open cycle: ``stop`` (met or missed), ``cancel``/``reset`` (cancelled), ``final``."""
        self.touch(c)
        if c.status == "paused" and c.pause_from_s is not None:
            c.pauses.append((c.pause_from_s, self.now))
            c.pause_from_s = None
        target = c.target_s
        breached = c.breached
        if how == "stop" or (how == "final" and breached):
            met: bool | None = not breached
            failed = None if not breached or target is None else timedelta(seconds=max(0.0, c.elapsed_s - target))
            status, sig = ("met", "met") if not breached else ("breached", "missed")
        else:
            met, failed, status, sig = None, None, "cancelled", "cancelled"
        tz = self.eng.tz
        rec = ClockRecord(c.cycle, dt(c.started_s or self.now, tz), dt(self.now, tz), timedelta(seconds=_r(c.elapsed_s)),
                          timedelta(seconds=_r(c.paused_s)), None if target is None else timedelta(seconds=target),
                          met, failed)
        c.history.append(rec)
        if len(c.history) > MAX_HISTORY:
            del c.history[: len(c.history) - MAX_HISTORY]
        c.status = status
        c.memo = {}
        c.due_s = c.breach_s if breached else None
        c.pauses = []
        self.pending = [p for p in self.pending if not (p.owner and p.owner[0] == "clock" and p.owner[1] == c.name
                                                        and p.owner[2] == c.cycle)]
        if self.tracing:
            self.trace_("clock", f"slas.{c.name}", f"cycle {c.cycle} {sig} ({how})")
        self.signal(f"sla.{c.name}.{sig}", sla=c.name, cycle=c.cycle, record=rec)

    def retarget(self, c: _CW, *, force: bool = False) -> None:
        """Re-select the target; when it (or the calendar) changes, re-measure from the cycle start."""
        idx = self.choose_target(c)
        tdef = c.def_.targets[idx]
        cal_name = self.cal_name(tdef.calendar or c.def_.calendar)
        if not force and idx == c.target_index and cal_name == c.calendar:
            return
        start = c.started_s if c.started_s is not None else self.now
        cal = self.calendar(cal_name)
        pauses = list(c.pauses)
        if c.status == "paused" and c.pause_from_s is not None:
            pauses.append((c.pause_from_s, self.now))
        paused = sum(cal.elapsed_s(a, b) for a, b in pauses)
        c.calendar = cal_name
        c.memo = {}
        c.target_index = idx
        c.target_s = self.target_seconds(c, idx, cal)
        c.elapsed_s = max(0.0, cal.elapsed_s(start, self.now) - paused)
        c.paused_s = paused
        c.as_of_s = self.now
        if self.tracing:
            self.trace_("retarget", f"slas.{c.name}.targets[{idx}]",
                        f"target {tdef.text} in {cal_name}; elapsed {c.elapsed_s:g}s of {c.target_s:g}s")

    def crossing(self, c: _CW) -> float:
        """The instant the open cycle's elapsed time reached its target (after a retroactive retarget)."""
        cal = self.calendar(c.calendar)
        remaining = c.target_s or 0.0
        t0 = c.started_s if c.started_s is not None else self.now
        for a, b in c.pauses:
            seg = cal.elapsed_s(t0, a)
            if seg >= remaining:
                return _r(cal.add_s(t0, remaining))
            remaining -= seg
            t0 = b
        return min(self.now, _r(cal.add_s(t0, remaining)))

    def eval_clocks(self, type_: str, view: Mapping[str, Any] | None, entered: list[str]) -> None:
        self._view = view
        plans = self.eng._clock_plan
        defs = self.pb.clocks
        for name in self.eng._clock_names:
            on_bits, enter_bits, has_when, needs_retarget, reads = plans[name]
            if reads is not None and (self.changed is None or reads.isdisjoint(self.changed)):
                needs_retarget = False
            hits = on_bits.get(type_, 0)  # the triggers this event type and the entered stages fire
            for st in entered:
                hits |= enter_bits.get(st, 0)
            quiet = not has_when and not hits
            c = self.clocks.get(name)
            if c is None:
                if quiet:
                    continue  # a closed clock no trigger touches stays as it was
                # only a start or a reset changes a closed clock (stop and cancel need an open one)
                if not has_when and not hits & 4:
                    frozen = self._frozen.get(name)
                    status = frozen.status if frozen is not None else "pending"
                    if not (hits & 1 and (status == "pending" or defs[name].repeat)):
                        continue
                c = self.cw(name)
            d = c.def_
            if quiet:
                if c.status in _OPEN:  # no trigger can fire: only pause/resume and retargeting remain
                    if d.pause is not None:
                        self.pause_or_resume(c, view)
                    if needs_retarget:
                        self.retarget(c)
                continue
            # `when` triggers fire on a rising edge; bits: 1 start, 2 stop, 4 reset, 8 cancel
            rising = 0
            if has_when:
                conds = 0
                for bit, trig in ((1, d.start), (2, d.stop), (4, d.reset), (8, d.cancel)):
                    if trig is not None and trig.when is not None and self.cond(trig.when, view):
                        conds |= bit
                rising = conds & ~c.conds
                c.conds = conds
            hits |= rising
            if hits & 2 and c.status in _OPEN:
                self.end_cycle(c, "stop")
            if hits & 8 and c.status in _OPEN:
                self.end_cycle(c, "cancel")
            if hits & 4:
                if c.status in _OPEN:
                    self.end_cycle(c, "reset")
                self.signal(f"sla.{c.name}.reset", sla=c.name, cycle=c.cycle + 1)
                self.start_cycle(c, view)
                needs_retarget = False  # the new cycle just chose its target from the same inputs
            elif hits & 1 and (c.status == "pending" or (d.repeat and c.status not in _OPEN)):
                self.start_cycle(c, view)
                needs_retarget = False
            if c.status in _OPEN:
                if d.pause is not None:
                    self.pause_or_resume(c, view)
                if needs_retarget:
                    self.retarget(c)
        self._view = None

    def pause_or_resume(self, c: _CW, view: Mapping[str, Any] | None) -> None:
        d = c.def_
        assert d.pause is not None
        holds = self.stage in d.pause.stages or (d.pause.when is not None and self.cond(d.pause.when, view))
        if holds and c.status == "running":
            self.touch(c)
            c.status = "paused"
            c.memo = {}
            c.pause_from_s = self.now
            self.signal(f"sla.{c.name}.paused", sla=c.name, cycle=c.cycle)
        elif not holds and c.status == "paused":
            self.touch(c)
            c.status = "running"
            c.memo = {}
            if c.pause_from_s is not None:
                c.pauses.append((c.pause_from_s, self.now))
                if len(c.pauses) > 64:  # bound the state: the oldest pause is forgotten
                    del c.pauses[0]
            c.pause_from_s = None
            self.signal(f"sla.{c.name}.resumed", sla=c.name, cycle=c.cycle)

    def fire_clock(self, c: _CW) -> None:
        """Fire the clock's due breach and/or thresholds at ``now``, in order."""
        self.touch(c)
        target = c.target_s or 0.0
        ths = c.def_.thresholds
        owner = ("clock", c.name, c.cycle)
        while True:
            nxt_th = ths[c.fired] if c.fired < len(ths) else None
            th_pos = nxt_th.at(target) if nxt_th is not None else None
            due_breach = not c.breached and c.elapsed_s >= target - _EPS
            due_th = th_pos is not None and c.elapsed_s >= th_pos - _EPS
            if due_th and nxt_th is not None and th_pos is not None and (
                    not due_breach or th_pos < target - _EPS or nxt_th.severity == "warning"):
                c.fired += 1
                if self.tracing:
                    self.trace_("threshold", nxt_th.source, f"{nxt_th.text} of {target:g}s reached")
                self.run_actions(nxt_th.do, None, owner)
                sev = nxt_th.severity
                if sev == "warning":
                    self.signal(f"sla.{c.name}.warning", sla=c.name, cycle=c.cycle, data={"at": nxt_th.text})
                elif sev == "overdue":
                    self.signal(f"sla.{c.name}.overdue", sla=c.name, cycle=c.cycle, data={"at": nxt_th.text})
                continue
            if due_breach:
                c.breached = True
                late = c.elapsed_s > target + 1.0
                c.breach_s = self.crossing(c) if late else self.now
                c.due_s = c.breach_s
                if self.tracing:
                    self.trace_("breach", f"slas.{c.name}", f"cycle {c.cycle} passed its target of {target:g}s")
                self.signal(f"sla.{c.name}.breached", sla=c.name, cycle=c.cycle)
                # thresholds at exactly the target fire with the breach
                while c.fired < len(ths) and abs(ths[c.fired].at(target) - target) <= _EPS:
                    th = ths[c.fired]
                    c.fired += 1
                    if self.tracing:
                        self.trace_("threshold", th.source, f"{th.text} of {target:g}s reached")
                    self.run_actions(th.do, None, owner)
                continue
            break

    def end_case(self, why: str) -> None:
        for c in self.clocks.values():
            if c.status in _OPEN:
                self.end_cycle(c, "final")
        self.ended = True
        self.pending = [p for p in self.pending if p.kind == "action" and p.owner == ()]
        if self.tracing:
            self.trace_("end", f"stages.{self.stage}", why)

    # -- signals -------------------------------------------------------------------------------------------------
    def drain_signals(self) -> None:
        while self.queue:
            sig, depth = self.queue.popleft()
            if depth > MAX_SIGNAL_DEPTH:
                raise SignalLoop(f"signals raised signals more than {MAX_SIGNAL_DEPTH} levels deep (last: {sig.type})",
                                 event=self.event)
            if self.ended or sig.type not in self.eng._mentioned:  # no handler or clock trigger names it
                continue
            view = {"type": sig.type, "at": sig.at, "case": self.case, "id": None, "sla": sig.sla,
                    "cycle": sig.cycle, **sig.data}
            saved = self.depth
            self.depth = depth
            self.dispatch(sig.type, view, entered=[])
            self.depth = saved

    # -- due items -------------------------------------------------------------------------------------------------
    def deadline_items(self) -> list[tuple[float, int, str, str]]:
        items: list[tuple[float, int, str, str]] = []
        if self.ended:
            return sorted((p.due, _KIND_ORDER[p.kind], p.kind, p.ref) for p in self.pending)
        for c in self.clocks.values():
            if c.status != "running":
                continue
            due = c.due_s  # kept current by finish(): computed once a step, read here
            if due is not None and not c.breached:
                items.append((due, 0, "clock", c.name))
            if c.fired < len(c.def_.thresholds) and c.target_s is not None and c.as_of_s is not None:
                th = c.def_.thresholds[c.fired]
                rem = th.at(c.target_s) - c.elapsed_s
                tdue = c.as_of_s if rem <= 0 else self.due_at(c, c.as_of_s, th.at(c.target_s), rem)
                items.append((tdue, 0, "threshold", f"{c.name}:{th.text}"))
        for p in self.pending:
            items.append((p.due, _KIND_ORDER[p.kind], p.kind, p.ref))
        items.sort()
        return items

    def next_item(self) -> tuple[float, int, int, Any] | None:
        best: tuple[float, int, int, Any] | None = None
        cand: tuple[float, int, int, Any]
        if not self.ended:
            index = self.eng._clock_index
            for c in self.clocks.values():
                n = self.clock_next(c)
                if n is not None:
                    cand = (n, 0, index[c.name], c)
                    if best is None or cand[:3] < best[:3]:
                        best = cand
        for p in self.pending:
            order = _KIND_ORDER[p.kind]
            tie = p.seq
            if p.kind == "timer":
                tie = self.eng._timers[p.ref][1].index if p.ref in self.eng._timers else p.seq
            cand = (p.due, order, tie, p)
            if best is None or cand[:3] < best[:3]:
                best = cand
        return best

    def fire_due(self, limit: float, *, inclusive: bool) -> None:
        for _ in range(MAX_ITEMS_PER_STEP):
            item = self.next_item()
            if item is None:
                return
            due = item[0]
            if due > limit + (_EPS if inclusive else -_EPS):
                return
            self.set_now(due)
            self.event = None
            obj = item[3]
            if isinstance(obj, _CW):
                self.fire_clock(obj)
                self.after_change("", None, [])
            else:
                self.pending.remove(obj)
                self.fire_pending(obj)
            self.drain_signals()
        raise CaseError(f"more than {MAX_ITEMS_PER_STEP} items fell due in one step; advance in smaller steps")

    def fire_pending(self, p: Pending) -> None:
        if p.kind == "action":
            a = self.eng._actions.get(p.ref)
            if a is not None:
                if self.tracing:
                    self.trace_("due", p.ref, f"delayed {a.verb} armed at {self.iso(p.origin)}")
                self.emit(a, None)
            self.after_change("", None, [])
        elif p.kind == "timer":
            stage, t = self.eng._timers[p.ref]
            if stage != self.stage or self.ended:
                return
            if not self.cond(t.when, None):
                if self.tracing:
                    self.trace_("timer", t.source, f"when {t.when.source if t.when else ''} did not hold")
                return
            if self.tracing:
                self.trace_("timer", t.source, f"after {t.delay.text}" + (f" → {t.to}" if t.to else ""))
            entered: list[str] = []
            if t.to is not None:
                self.transition(t.to, t.do, None, entered)
            else:
                self.run_actions(t.do, None, ("stage", self.epoch))
            self.after_change("", None, entered)
        elif p.kind == "schedule":
            stage, s = self.eng._schedules[p.ref]
            if stage != self.stage or self.ended:
                return
            if self.cond(s.when, None):
                if self.tracing:
                    self.trace_("schedule", s.source, s.cron)
                self.run_actions(s.do, None, ("stage", self.epoch))
            self.arm_schedule(s, self.now)
            self.after_change("", None, [])

    # -- freeze ----------------------------------------------------------------------------------------------------
    def frozen_clocks(self) -> Mapping[str, Clock]:
        names = self.eng._clock_names
        f0 = self._frozen
        if not self.clocks and isinstance(f0, MappingProxyType) and len(f0) == len(names) and all(n in f0 for n in names):
            return f0  # no clock was touched: the state's read-only mapping is carried over as it is
        tz = self.eng.tz
        out: dict[str, Clock] = {}
        for n in names:
            c = self.clocks.get(n)
            if c is not None:
                out[n] = c.freeze(tz)
            else:
                f = self._frozen.get(n)
                out[n] = f if f is not None else Clock(n, tz=tz)
        return MappingProxyType(out)

    def finish(self) -> Step:
        for c in self.clocks.values():
            self.touch(c)
            c.due_s = self.clock_due(c) if c.status in _OPEN or c.breached else None
        items = tuple(self.deadline_items())
        nw = items[0][0] if items else None
        state = CaseState(
            playbook=self.pb.id, version=self.pb.version, content_hash=self.pb.content_hash, case=self.case,
            stage=self.stage, data=MappingProxyType(self._data_w) if self._data_w is not None else self.data, tier=self.tier, segment=self.segment,
            segments=tuple(self.segments), clocks=self.frozen_clocks(),
            now_s=self.now, opened_s=self.opened, seq=self.seq, epoch=self.epoch, ended=self.ended,
            pending=tuple(sorted(self.pending, key=_pending_order)) if len(self.pending) > 1 else tuple(self.pending),
            sends=(self.sends if self._sends_w is None else
                   MappingProxyType({k: v for k, v in self.sends.items() if v}) if self.sends else _NO_SENDS),
            timezone=self.pb.timezone,
            next_wakeup_s=nw,
        )
        return Step(state, self.actions, self.signals, items, tuple(self.trace))
