"""The pure, deterministic engine (SPEC §4): ``start``, ``handle``, ``advance``, ``migrate``.

``Engine(playbook)`` evaluates cases: given a :class:`~carepath.state.CaseState` and an event
(or an instant), it returns a :class:`Step` with the new state, the actions for the host, the
signals raised and the deadlines to wake up for. No I/O, no threads, no system clock; the same
playbook, state and input give byte-identical output; inputs are never mutated.

Each step works on a mutable copy of the case (:class:`~carepath.engine.run.Run`) and freezes it
at the end; :mod:`.clocks`, :mod:`.actions` and :mod:`.scope` hold the clocks, the action verbs
and the names conditions read, :mod:`.plan` what is looked up once per playbook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from carepath._instants import dt, typed_value
from carepath._instants import round_micros as _r
from carepath.compile.ir import Playbook
from carepath.engine.clocks import OPEN
from carepath.engine.delivery import RESERVED, apply_reserved
from carepath.engine.plan import Plan
from carepath.engine.run import EPS, Run
from carepath.engine.scope import NullScope
from carepath.engine.step import Step
from carepath.errors import EventOutOfOrder, InvalidEvent, PlaybookMismatch
from carepath.events import Event
from carepath.expr.types import coerce, describe
from carepath.state import CaseState, Clock, Deadline, Signal

__all__ = ["Engine", "Step"]


class Engine:
    """Evaluates cases of one compiled :class:`~carepath.compile.ir.Playbook`.

    ``trace=False`` skips recording each step's explanation (:attr:`Step.trace`), for hot loops.
    """

    def __init__(self, playbook: Playbook, *, trace: bool = True, backend: str = "auto") -> None:
        self.playbook = playbook
        self.backend = "python"  # which engine runs the steps (SPEC §4.1); see the end of __init__
        self.tracing = trace
        self.plan = Plan(playbook)
        self.tz = self.plan.tz
        self._core_watch: Callable[[list[list[bool]], set[str]], None] | None = None
        if backend != "python":  # the native core takes over start/handle/advance when it can
            from carepath._native.backend import attach

            attach(self, backend, Step)

    # -- public API ------------------------------------------------------------------------------
    def opens(self, event: Event) -> bool:
        """Whether ``event`` opens a case (its type is in ``start.on``, ``start.when`` holds)."""
        start = self.playbook.start
        if event.type not in start.on:
            return False
        if start.when is None:
            return True
        view = self._event_view(event, validate=False)
        return start.when({}, view, NullScope) is True

    def case_key(self, event: Event) -> str | None:
        """The case key of ``event`` (``start.key``, by default ``event.case``)."""
        if self.plan.key_is_case:  # the usual key: no need to build the event's view
            return event.case
        view = self._event_view(event, validate=False)
        key = self.playbook.start.key({}, view, NullScope)
        return None if key is None else str(key)

    def mentions(self, event_type: str) -> bool:
        """Whether the playbook mentions ``event_type`` anywhere (start, handlers, clocks, exit)."""
        return event_type in self.plan.mentioned

    def start(self, event: Event, previous: CaseState | None = None) -> Step:
        """Open a case with its start event; ``previous`` (an ended case of the same key) keeps
        the action sequence going, so ids stay unique within the playbook."""
        playbook = self.playbook
        start = playbook.start
        if event.type not in start.on:
            raise InvalidEvent(
                f"{event.type!r} does not open a case of {playbook.id} "
                f"(start.on: {', '.join(sorted(start.on))})",
                event=event,
                state=previous,
            )
        if previous is not None:
            self._check(previous, event)
        view = self._event_view(event)
        if start.when is not None and start.when({}, view, NullScope) is not True:
            raise InvalidEvent(
                f"start.when does not hold for event {event.id}", event=event, state=previous
            )
        key = start.key({}, view, NullScope)
        if key is None or key == "":
            raise InvalidEvent(
                f"event {event.id} has no case key ({start.key_text})", event=event, state=previous
            )
        # what the previous case had due before this event (its kept delayed actions, or
        # everything when a live case re-enters) fires first, as an `advance` would have done
        before = self._caught_up(previous, event) if previous is not None else None
        seq = before.seq if before is not None else previous.seq if previous is not None else 0
        run = Run.opening(self.plan, str(key), event._ts, seq, tracing=self.tracing)
        if before is not None:
            run.actions, run.signals, run.trace = before.actions, before.signals, before.trace
        run.event = event
        if run.tracing:
            run.note("start", "start", f"case {key} opened by {event.type}")
        run.apply_sets(start.sets, view, "start.set")
        run.recompute_segments(view)
        run.enter_stage(playbook.initial, view)
        run.dispatch(event.type, view, entered=[playbook.initial])
        run.drain_signals()
        run.fire_due(event._ts, inclusive=True)
        return run.finish()

    def handle(self, state: CaseState, event: Event) -> Step:
        """Apply ``event`` to ``state`` (SPEC §4.2). Raises :class:`EventOutOfOrder`,
        :class:`InvalidEvent`, :class:`PlaybookMismatch` or :class:`SignalLoop`; the input is
        unchanged."""
        self._check(state, event)
        if event._ts < state.now_s - EPS:
            raise EventOutOfOrder(
                f"event {event.id} at {event.at.isoformat()} is older than the case's now "
                f"{state.now.isoformat()}",
                event=event,
                state=state,
            )
        if state.ended or event.type not in self.plan.mentioned:
            why = "case has ended" if state.ended else "event type not used by this playbook"
            ignored = Signal(
                "ignored",
                event.at,
                data=MappingProxyType({"event": event.id, "type": event.type, "reason": why}),
            )
            items = tuple(self._run(state).deadline_items())
            return Step(state, [], [ignored], items, ((event._ts, "ignored", event.type, why),))
        view = self._event_view(event, state=state)
        run = self._run(state)
        if state.next_wakeup_s is not None and state.next_wakeup_s < event._ts:
            run.fire_due(event._ts, inclusive=False)
        if not run.ended:
            run.set_now(event._ts)
            run.event = event
            if event.type in RESERVED:
                apply_reserved(run, event.type, view)
            if self.plan.segments_volatile:
                run.recompute_segments(view)
            run.dispatch(event.type, view, entered=[])
            run.drain_signals()
        run.fire_due(event._ts, inclusive=True)
        return run.finish()

    def advance(self, state: CaseState, now: datetime) -> Step:
        """Fire everything due at or before ``now``. Nothing due (or ``now`` ≤ ``state.now``)
        returns an equal state and never raises."""
        self._check(state, None)
        if now.tzinfo is None:
            raise ValueError("advance() needs an aware datetime")
        t = _r(now.timestamp())
        if t <= state.now_s or state.next_wakeup_s is None or state.next_wakeup_s > t:
            return Step(state, [], [], tuple(self._run(state).deadline_items()))
        run = self._run(state)
        run.fire_due(t, inclusive=True)
        return run.finish()

    def deadlines(self, state: CaseState) -> list[Deadline]:
        """The deadlines of ``state``, sorted by due time."""
        items = self._run(state).deadline_items()
        return [Deadline(kind, name, dt(due, self.tz)) for due, _, kind, name in items]

    def watch_targets(self, targets: Mapping[str, Iterable[int]]) -> set[str]:
        """Note, from now on, every case whose clock selects one of ``targets`` (target indexes
        by clock name) when a cycle starts or is retargeted: the set returned receives its key
        (``state.case``). The steps themselves are unchanged. Once per engine.

        The what-if replay (:mod:`carepath.drivers.whatif`) uses it to find the cases that a
        change of those targets can reach: until a case selects one, its steps are the same
        under both playbooks."""
        if self.plan.watch is not None:
            raise ValueError("this engine already watches targets")
        clocks = self.playbook.clocks
        watch: dict[str, frozenset[int]] = {}
        for name, indexes in targets.items():
            if name not in clocks:
                raise ValueError(f"watch_targets: no clock {name!r} in {self.playbook.id}")
            watch[name] = frozenset(indexes)
            if not watch[name] <= set(range(len(clocks[name].targets))):
                raise ValueError(
                    f"watch_targets: clock {name!r} has no target {sorted(watch[name])}"
                )
        self.plan.watch = MappingProxyType(watch)
        hits = self.plan.watched
        if self._core_watch is not None:
            masks = [
                [i in watch.get(name, ()) for i in range(len(clock.targets))]
                for name, clock in clocks.items()
            ]
            self._core_watch(masks, hits)
        return hits

    def migrate(self, state: CaseState, mapping: Mapping[str, str] | None = None) -> CaseState:
        """Move ``state`` onto this engine's playbook: ``mapping`` renames stages (old → new).

        Clock history is kept; open cycles are re-measured from their start in the new calendars
        and targets (so open tickets follow a changed SLA or holiday list); timers of the current
        stage are kept when they still exist, otherwise dropped; a breach is never undone.
        """
        playbook, plan = self.playbook, self.plan
        mapping = dict(mapping or {})
        stage = mapping.get(state.stage, state.stage)
        if stage not in playbook.stages:
            where = f"does not exist in {playbook.id} {playbook.version}"
            if stage != state.stage:  # the mapping names a stage the playbook lacks (issue 15 #20)
                raise PlaybookMismatch(
                    f"stage {stage!r} (the mapping's target for {state.stage!r}) {where}; "
                    f"stages: {', '.join(playbook.stages)}",
                    state=state,
                )
            raise PlaybookMismatch(
                f"stage {state.stage!r} {where}; map it with "
                f"migrate(state, {{{state.stage!r}: 'new_stage'}})",
                state=state,
            )
        clocks: dict[str, Clock] = {}
        for name in playbook.clocks:
            old = state.clocks.get(name)
            clocks[name] = replace(old, tz=self.tz) if old is not None else Clock(name, tz=self.tz)
        still_defined = plan.actions.keys() | plan.timers.keys() | plan.schedules.keys()
        moved = replace(
            state,
            playbook=playbook.id,
            version=playbook.version,
            content_hash=playbook.content_hash,
            stage=stage,
            clocks=MappingProxyType(clocks),
            pending=tuple(p for p in state.pending if p.ref in still_defined),
            timezone=playbook.timezone,
        )
        run = self._run(moved)
        for clock in run.clocks.values():
            if clock.status in OPEN:
                clock.retarget(run, None, force=True)
        return run.finish().state

    # -- helpers ---------------------------------------------------------------------------------
    def _run(self, state: CaseState) -> Run:
        return Run(self.plan, state, tracing=self.tracing)

    def _caught_up(self, state: CaseState, event: Event) -> Run | None:
        """The run of ``state`` after firing what falls due strictly before ``event``; ``None``
        when nothing does."""
        if state.next_wakeup_s is None or state.next_wakeup_s >= event._ts:
            return None
        run = self._run(state)
        run.fire_due(event._ts, inclusive=False)
        return run

    def _ends_before(self, state: CaseState, event: Event) -> bool:
        """Whether what falls due before ``event`` ends the case ``state``."""
        self._check(state, event)
        run = self._caught_up(state, event)
        return run is not None and run.ended

    def _check(self, state: CaseState, event: Event | None) -> None:
        playbook = self.playbook
        if (
            state.playbook != playbook.id
            or state.version != playbook.version
            or state.content_hash != playbook.content_hash
        ):
            what = (
                f"playbook {state.playbook} {state.version}"
                if (state.playbook, state.version) != (playbook.id, playbook.version)
                else f"the same version {playbook.version} with different content"
            )
            raise PlaybookMismatch(
                f"case {state.case} was produced by {what}, not {playbook.id} {playbook.version} "
                f"({playbook.content_hash[:12]}); use engine.migrate(state)",
                event=event,
                state=state,
            )

    def _event_view(
        self, event: Event, *, validate: bool = True, state: CaseState | None = None
    ) -> dict[str, Any]:
        """The event as conditions see it: its data (declared defaults applied, types checked)
        and ``type``, ``at``, ``case``, ``id``."""
        view: dict[str, Any] = dict(event.data)
        declared = self.playbook.events.get(event.type)
        if declared is not None:
            for name, (field_type, default, required) in declared.items():
                value = view.get(name)
                kind = field_type.kind
                vc = value.__class__
                if (
                    (
                        vc is str
                        and (kind == "string" or (kind == "enum" and value in field_type.values))
                    )
                    or (vc is bool and kind == "bool")
                    or (vc is int and kind == "int")
                ):
                    continue  # the common cases, already valid: no conversion needed
                if value is None:
                    if required and validate:
                        raise InvalidEvent(
                            f"event {event.id} ({event.type}): missing field `{name}`",
                            event=event,
                            state=state,
                        )
                    view[name] = typed_value(default, kind)
                    continue
                ok, coerced = coerce(value, field_type)
                if not ok and validate:
                    raise InvalidEvent(
                        f"event {event.id} ({event.type}): field `{name}` = {value!r} is not a "
                        f"valid {describe(field_type)}",
                        event=event,
                        state=state,
                    )
                # dates, datetimes and decimals compare as such
                view[name] = typed_value(coerced, kind)
        view["type"] = event.type
        view["at"] = event.at
        view["case"] = event.case
        view["id"] = event.id
        return view
