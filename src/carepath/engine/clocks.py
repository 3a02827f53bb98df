"""SLA clocks during a step (SPEC §4.3): :class:`WorkingClock`, a clock's mutable copy.

A step makes a working copy only of the clocks it may change (the open ones, and a closed one a
trigger touches); the others are carried over frozen. The copy measures elapsed and paused time
in its calendar's business time, chooses and re-chooses its target, opens and ends cycles, and
fires its thresholds and breach. What it needs of the step it runs in is :class:`ClockHost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from carepath._instants import dt
from carepath._instants import round_micros as _r
from carepath.engine.actions import ActionHost, perform
from carepath.engine.plan import CANCEL, RESET, START, STOP
from carepath.state import Clock, ClockRecord

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.compile.ir import ClockDef
    from carepath.expr.compiler import Expr

__all__ = ["MAX_HISTORY", "MAX_PAUSES", "ClockHost", "WorkingClock"]

MAX_HISTORY = 20
"""Finished cycles a clock keeps (SPEC §4.3); the signals carry every record."""
MAX_PAUSES = 64
"""Pauses an open cycle remembers (to re-measure it when its target changes); the oldest goes."""
EPS = 1e-6
"""How close two business-time positions (seconds) must be to count as equal."""
OPEN = ("running", "paused")


class ClockHost(ActionHost, Protocol):
    """What a clock needs of the step it runs in (besides what its threshold actions need)."""

    tz: tzinfo
    stage: str

    def calendar_name(self, name: str | None) -> str: ...
    def holds(self, condition: Expr | None, view: Mapping[str, Any] | None) -> bool: ...
    def cancel_pending(self, owner: tuple[Any, ...]) -> None: ...
    def selected_target(self, clock: str, index: int) -> None: ...


class WorkingClock:
    """A clock's mutable working copy during a step; :meth:`freeze` makes it a :class:`Clock`.

    ``instants`` remembers business-time due instants by position on the clock (a running
    clock's instant for a position does not move while it runs); it starts with the due instant
    the state holds.
    """

    __slots__ = (
        "as_of_s",
        "breach_s",
        "breached",
        "calendar",
        "conds",
        "cycle",
        "definition",
        "due_s",
        "elapsed_s",
        "fired",
        "history",
        "instants",
        "name",
        "pause_from_s",
        "paused_s",
        "pauses",
        "started_s",
        "status",
        "target_index",
        "target_s",
    )

    def __init__(self, clock: Clock, definition: ClockDef) -> None:
        self.definition = definition
        self.name = clock.name
        self.status = clock.status
        self.cycle = clock.cycle
        self.breached = clock.breached
        self.started_s = clock.started_s
        self.as_of_s = clock.as_of_s
        self.elapsed_s = clock.elapsed_s
        self.paused_s = clock.paused_s
        self.pause_from_s = clock.pause_from_s
        self.pauses = list(clock.pauses)
        self.target_index = clock.target_index
        self.target_s = clock.target_s
        self.calendar = clock.calendar
        self.breach_s = clock.breach_s
        self.due_s = clock.due_s
        self.fired = clock.fired
        self.conds = clock.conds
        self.history = list(clock.history)
        self.instants: dict[float, float] = (
            {clock.target_s: clock.due_s}
            if clock.status == "running"
            and not clock.breached
            and clock.due_s is not None
            and clock.target_s is not None
            else {}
        )

    def freeze(self, tz: tzinfo) -> Clock:
        """The immutable clock (elapsed and paused rounded to microseconds)."""
        return Clock(
            name=self.name,
            status=self.status,
            cycle=self.cycle,
            breached=self.breached,
            started_s=self.started_s,
            as_of_s=self.as_of_s,
            elapsed_s=round(self.elapsed_s * 1_000_000) / 1_000_000,
            paused_s=round(self.paused_s * 1_000_000) / 1_000_000,
            pause_from_s=self.pause_from_s,
            pauses=tuple(self.pauses),
            target_index=self.target_index,
            target_s=self.target_s,
            calendar=self.calendar,
            breach_s=self.breach_s,
            due_s=self.due_s,
            fired=self.fired,
            conds=self.conds,
            history=tuple(self.history),
            tz=tz,
        )

    # -- measuring ---------------------------------------------------------------------------------
    def catch_up(self, run: ClockHost) -> None:
        """Bring the open cycle's elapsed (or paused) time up to the step's ``now``."""
        now = run.now
        if self.status not in OPEN or self.as_of_s is None or now <= self.as_of_s:
            return
        span = run.calendar(self.calendar).elapsed_s(self.as_of_s, now)
        if self.status == "running":
            self.elapsed_s += span
        else:
            self.paused_s += span
        self.as_of_s = now

    def instant_at(self, run: ClockHost, as_of: float, position: float, remaining: float) -> float:
        """The instant the running clock reaches ``position`` business seconds, which lies
        ``remaining`` business seconds after ``as_of``."""
        due = self.instants.get(position)
        if due is None:
            due = self.instants[position] = _r(run.calendar(self.calendar).add_s(as_of, remaining))
        return due

    def due(self, run: ClockHost) -> float | None:
        """When the cycle breaches (the breach instant once breached); ``None`` unless running."""
        if self.breached:
            return self.breach_s
        if self.status != "running" or self.target_s is None or self.as_of_s is None:
            return None
        remaining = self.target_s - self.elapsed_s
        if remaining <= 0:
            return self.as_of_s
        return self.instant_at(run, self.as_of_s, self.target_s, remaining)

    def next_due(self, run: ClockHost) -> float | None:
        """When the clock's next item (its breach or its next threshold) falls due."""
        if self.status != "running" or self.target_s is None or self.as_of_s is None:
            return None
        target = self.target_s
        thresholds = self.definition.thresholds
        position: float | None = None
        if not self.breached:
            position = target
        if self.fired < len(thresholds):
            threshold = thresholds[self.fired]
            at = threshold.at(target)
            if (
                position is None
                or at < position - EPS
                or (abs(at - position) <= EPS and threshold.severity == "warning")
            ):
                position = at
        if position is None:
            return None
        remaining = position - self.elapsed_s
        if remaining <= EPS:
            return self.as_of_s if self.as_of_s > run.now else run.now
        return self.instant_at(run, self.as_of_s, position, remaining)

    # -- targets -----------------------------------------------------------------------------------
    def pick_target(self, run: ClockHost, view: Mapping[str, Any] | None) -> int:
        """The index of the first target whose ``when`` holds (the last one otherwise)."""
        for target in self.definition.targets:
            if target.when is None or run.holds(target.when, view):
                return target.index
        return len(self.definition.targets) - 1

    def target_seconds(self, run: ClockHost, index: int, calendar: Calendar) -> float:
        """Target ``index`` in business seconds (a ``bd`` target counts from the cycle's start)."""
        target = self.definition.targets[index]
        if target.business_days:
            start = self.started_s if self.started_s is not None else run.now
            return _r(calendar.elapsed_s(start, calendar.add_days_s(start, target.business_days)))
        return float(target.seconds or 0.0)

    def retarget(
        self, run: ClockHost, view: Mapping[str, Any] | None, *, force: bool = False
    ) -> None:
        """Re-select the target; when it (or its calendar) changes, re-measure from the cycle's
        start minus its recorded pauses (SPEC §4.3: the new target applies retroactively).

        A breached cycle keeps the target it breached (issue 15 #21): a breach is never undone,
        so its record must read ``failed_by`` = elapsed − that target, never a later, longer
        target that would make ``met: false`` read ``failed_by: 0``.
        """
        if self.breached:
            return
        index = self.pick_target(run, view)
        target = self.definition.targets[index]
        calendar_name = run.calendar_name(target.calendar or self.definition.calendar)
        if not force and index == self.target_index and calendar_name == self.calendar:
            return
        now = run.now
        start = self.started_s if self.started_s is not None else now
        calendar = run.calendar(calendar_name)
        pauses = list(self.pauses)
        if self.status == "paused" and self.pause_from_s is not None:
            pauses.append((self.pause_from_s, now))
        paused = sum(calendar.elapsed_s(a, b) for a, b in pauses)
        self.calendar = calendar_name
        self.instants = {}
        self.target_index = index
        run.selected_target(self.name, index)
        self.target_s = self.target_seconds(run, index, calendar)
        self.elapsed_s = max(0.0, calendar.elapsed_s(start, now) - paused)
        self.paused_s = paused
        self.as_of_s = now
        if run.tracing:
            run.note(
                "retarget",
                f"slas.{self.name}.targets[{index}]",
                f"target {target.text} in {calendar_name}; "
                f"elapsed {self.elapsed_s:g}s of {self.target_s:g}s",
            )

    def crossed_at(self, run: ClockHost) -> float:
        """The instant the open cycle's elapsed time reached its target (after a retroactive
        retarget): walk the cycle's open stretches between its pauses."""
        calendar = run.calendar(self.calendar)
        remaining = self.target_s or 0.0
        since = self.started_s if self.started_s is not None else run.now
        for paused_at, resumed_at in self.pauses:
            stretch = calendar.elapsed_s(since, paused_at)
            if stretch >= remaining:
                return _r(calendar.add_s(since, remaining))
            remaining -= stretch
            since = resumed_at
        return min(run.now, _r(calendar.add_s(since, remaining)))

    # -- cycles ------------------------------------------------------------------------------------
    def evaluate(
        self,
        run: ClockHost,
        hits: int,
        has_when: bool,
        may_retarget: bool,
        view: Mapping[str, Any] | None,
    ) -> None:
        """Apply the triggers ``hits`` (Trigger bits) fired by the step's event and entered
        stages, plus the ``when`` triggers that rose, in the order of SPEC §4.3: stop, cancel,
        reset, start, then pause/resume and retargeting."""
        definition = self.definition
        if has_when:
            holding = 0
            for bit, trigger in (
                (START, definition.start),
                (STOP, definition.stop),
                (RESET, definition.reset),
                (CANCEL, definition.cancel),
            ):
                if (
                    trigger is not None
                    and trigger.when is not None
                    and run.holds(trigger.when, view)
                ):
                    holding |= bit
            hits |= holding & ~self.conds  # a `when` trigger fires on its rising edge
            self.conds = holding
        if hits & STOP and self.status in OPEN:
            self.end_cycle(run, "stop")
        if hits & CANCEL and self.status in OPEN:
            self.end_cycle(run, "cancel")
        if hits & RESET:
            if self.status in OPEN:
                self.end_cycle(run, "reset")
            run.signal(f"sla.{self.name}.reset", sla=self.name, cycle=self.cycle + 1)
            self.start_cycle(run, view)
            may_retarget = False  # the new cycle just chose its target from the same inputs
        elif hits & START and (
            self.status == "pending" or (definition.repeat and self.status not in OPEN)
        ):
            self.start_cycle(run, view)
            may_retarget = False
        if self.status in OPEN:
            if definition.pause is not None:
                self.pause_or_resume(run, view)
            if may_retarget:
                self.retarget(run, view)

    def start_cycle(self, run: ClockHost, view: Mapping[str, Any] | None) -> None:
        """Open a new cycle now, with the target that matches."""
        now = run.now
        self.cycle += 1
        self.status = "running"
        self.instants = {}
        self.started_s = self.as_of_s = now
        self.elapsed_s = self.paused_s = 0.0
        self.pause_from_s = None
        self.pauses = []
        self.breached = False
        self.breach_s = None
        self.fired = 0
        index = self.pick_target(run, view)
        target = self.definition.targets[index]
        self.calendar = run.calendar_name(target.calendar or self.definition.calendar)
        self.target_index = index
        run.selected_target(self.name, index)
        self.target_s = self.target_seconds(run, index, run.calendar(self.calendar))
        if run.tracing:
            when = f" when {target.when.source}" if target.when is not None else ""
            run.note(
                "clock",
                f"slas.{self.name}",
                f"cycle {self.cycle} started; target {target.text} (targets[{index}]{when}) "
                f"in {self.calendar}",
            )
        run.signal(f"sla.{self.name}.started", sla=self.name, cycle=self.cycle)

    def end_cycle(self, run: ClockHost, how: str) -> None:
        """End the open cycle: ``stop`` (met or missed), ``cancel`` and ``reset`` (cancelled), or
        ``final`` (the case ended: cancelled, or missed once breached). Appends its record and
        raises the signal that carries it."""
        self.catch_up(run)
        now = run.now
        if self.status == "paused" and self.pause_from_s is not None:
            self.pauses.append((self.pause_from_s, now))
            self.pause_from_s = None
        target = self.target_s
        breached = self.breached
        met: bool | None
        failed_by: timedelta | None
        if how == "stop" or (how == "final" and breached):
            met = not breached
            failed_by = (
                None
                if not breached or target is None
                else timedelta(seconds=max(0.0, self.elapsed_s - target))
            )
            status, outcome = ("met", "met") if not breached else ("breached", "missed")
        else:
            met, failed_by, status, outcome = None, None, "cancelled", "cancelled"
        tz = run.tz
        record = ClockRecord(
            cycle=self.cycle,
            started=dt(self.started_s or now, tz),
            stopped=dt(now, tz),
            elapsed=timedelta(seconds=_r(self.elapsed_s)),
            paused=timedelta(seconds=_r(self.paused_s)),
            target=None if target is None else timedelta(seconds=target),
            met=met,
            failed_by=failed_by,
        )
        self.history.append(record)
        if len(self.history) > MAX_HISTORY:
            del self.history[: len(self.history) - MAX_HISTORY]
        self.status = status
        self.instants = {}
        self.due_s = self.breach_s if breached else None
        self.pauses = []
        run.cancel_pending(("clock", self.name, self.cycle))
        if run.tracing:
            run.note("clock", f"slas.{self.name}", f"cycle {self.cycle} {outcome} ({how})")
        run.signal(f"sla.{self.name}.{outcome}", sla=self.name, cycle=self.cycle, record=record)

    def pause_or_resume(self, run: ClockHost, view: Mapping[str, Any] | None) -> None:
        """Pause the running cycle while its ``pause`` holds; resume it when it stops holding."""
        pause = self.definition.pause
        assert pause is not None
        holds = run.stage in pause.stages or (
            pause.when is not None and run.holds(pause.when, view)
        )
        if holds and self.status == "running":
            self.catch_up(run)
            self.status = "paused"
            self.instants = {}
            self.pause_from_s = run.now
            run.signal(f"sla.{self.name}.paused", sla=self.name, cycle=self.cycle)
        elif not holds and self.status == "paused":
            self.catch_up(run)
            self.status = "running"
            self.instants = {}
            if self.pause_from_s is not None:
                self.pauses.append((self.pause_from_s, run.now))
                if len(self.pauses) > MAX_PAUSES:  # bound the state: the oldest pause is forgotten
                    del self.pauses[0]
            self.pause_from_s = None
            run.signal(f"sla.{self.name}.resumed", sla=self.name, cycle=self.cycle)

    def fire(self, run: ClockHost) -> None:
        """Fire the cycle's due thresholds and breach at ``now``, in order; a threshold at
        exactly the target fires with the breach."""
        self.catch_up(run)
        target = self.target_s or 0.0
        thresholds = self.definition.thresholds
        owner = ("clock", self.name, self.cycle)
        while True:
            threshold = thresholds[self.fired] if self.fired < len(thresholds) else None
            position = threshold.at(target) if threshold is not None else None
            breach_due = not self.breached and self.elapsed_s >= target - EPS
            threshold_due = position is not None and self.elapsed_s >= position - EPS
            if (
                threshold_due
                and threshold is not None
                and position is not None
                and (not breach_due or position < target - EPS or threshold.severity == "warning")
            ):
                self.fired += 1
                if run.tracing:
                    run.note(
                        "threshold", threshold.source, f"{threshold.text} of {target:g}s reached"
                    )
                perform(run, threshold.do, None, owner)
                severity = threshold.severity
                if severity == "warning" or severity == "overdue":
                    run.signal(
                        f"sla.{self.name}.{severity}",
                        sla=self.name,
                        cycle=self.cycle,
                        data={"at": threshold.text},
                    )
                continue
            if breach_due:
                self.breached = True
                late = self.elapsed_s > target + 1.0
                self.breach_s = self.crossed_at(run) if late else run.now
                self.due_s = self.breach_s
                if run.tracing:
                    run.note(
                        "breach",
                        f"slas.{self.name}",
                        f"cycle {self.cycle} passed its target of {target:g}s",
                    )
                run.signal(f"sla.{self.name}.breached", sla=self.name, cycle=self.cycle)
                while (
                    self.fired < len(thresholds)
                    and abs(thresholds[self.fired].at(target) - target) <= EPS
                ):
                    threshold = thresholds[self.fired]
                    self.fired += 1
                    if run.tracing:
                        run.note(
                            "threshold",
                            threshold.source,
                            f"{threshold.text} of {target:g}s reached",
                        )
                    perform(run, threshold.do, None, owner)
                continue
            break
