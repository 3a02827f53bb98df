"""One step of one case: :class:`Run`, the order in which an event or a wake-up is applied
(SPEC §4.2) to the case's working copy (:class:`~carepath.engine.case.WorkingCase`).

Firing due items in order (clock thresholds and breaches, delayed actions, stage timers,
schedules), dispatching an event or signal to the stage's handlers, moving between stages and
arming their timers, evaluating the clocks' triggers, handling raised signals first in first
out, and ending the case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carepath.engine.actions import emit, perform
from carepath.engine.case import KIND_ORDER, WorkingCase
from carepath.engine.clocks import OPEN, WorkingClock
from carepath.engine.plan import RESET, START
from carepath.errors import CaseError, SignalLoop
from carepath.state import Pending

if TYPE_CHECKING:
    from carepath.compile.ir import ActionDef, HandlerDef, ScheduleDef, TimerDef

__all__ = ["EPS", "MAX_ITEMS_PER_STEP", "MAX_SIGNAL_DEPTH", "Run"]

MAX_SIGNAL_DEPTH = 16
"""Signals raised by handlers of signals, at most this deep (SPEC §4.2)."""
MAX_ITEMS_PER_STEP = 100_000
"""Due items one step may fire before it gives up (advance in smaller steps)."""
EPS = 1e-6
"""Instants closer than this (seconds) are the same instant."""

# An item of the due queue: (due, kind order, tie-break, the clock or pending item).
DueItem = tuple[float, int, int, "WorkingClock | Pending"]


class Run(WorkingCase):
    """A step's order of evaluation over the case's working copy."""

    __slots__ = ()

    # -- dispatch ----------------------------------------------------------------------------------
    def pick_handler(
        self, handlers: tuple[HandlerDef, ...] | None, view: Mapping[str, Any]
    ) -> HandlerDef | None:
        """The first of ``handlers`` whose ``when`` holds."""
        if not handlers:
            return None
        for handler in handlers:
            if handler.when is None or handler.when(self.fields, view, self) is True:
                return handler
        return None

    def dispatch(self, type_: str, view: Mapping[str, Any], entered: list[str]) -> None:
        """Handle an event or signal in the current stage, then evaluate the clocks."""
        stage = self.playbook.stages[self.stage]
        handler = self.pick_handler(stage.on.get(type_), view)
        if handler is None and not stage.final:
            handler = self.pick_handler(self.playbook.on.get(type_), view)
        if handler is not None:
            if self.tracing:
                when = f" when {handler.when.source}" if handler.when is not None else ""
                self.note(
                    "handler",
                    handler.source,
                    f"{type_}{when}" + (f" → {handler.to}" if handler.to else ""),
                )
            if handler.sets:
                self.apply_sets(handler.sets, view, handler.source + ".set")
                self.recompute_segments(view)
            if handler.to is not None:
                self.transition(handler.to, handler.do, view, entered)
            else:
                perform(self, handler.do, view, ("stage", self.epoch))
        self.after_change(type_, view, entered)

    def after_change(self, type_: str, view: Mapping[str, Any] | None, entered: list[str]) -> None:
        """Evaluate the clocks, then end the case if it reached a final stage or an exit."""
        self.evaluate_clocks(type_, view, entered)
        if not self.ended:
            if self.playbook.stages[self.stage].final:
                self.end_case("final stage " + self.stage)
            elif type_ in self.playbook.exit_on and self.holds(self.playbook.exit_when, view):
                self.end_case("exit on " + type_)

    def transition(
        self, to: str, do: tuple[ActionDef, ...], view: Mapping[str, Any] | None, entered: list[str]
    ) -> None:
        """Leave the stage (its timers go, its exit actions run), run ``do``, enter ``to``."""
        old = self.playbook.stages[self.stage]
        self.cancel_pending(("stage", self.epoch))
        self.epoch += 1
        owner = ("stage", self.epoch)
        perform(self, old.exit, view, owner)
        perform(self, do, view, owner)
        if self.tracing:
            self.note("move", f"stages.{old.name}", f"{old.name} → {to}")
        self.stage = to
        self.enter_stage(to, view, bump=False)
        entered.append(to)

    def enter_stage(self, name: str, view: Mapping[str, Any] | None, *, bump: bool = True) -> None:
        """Run the stage's entry actions and arm its timers and schedules."""
        if bump:
            self.epoch += 1
        stage = self.playbook.stages[name]
        self.stage = name
        perform(self, stage.enter, view, ("stage", self.epoch))
        if stage.final:
            return
        for timer in stage.after:
            self.arm_timer(timer)
        for schedule in stage.every:
            self.arm_schedule(schedule, self.now)

    # -- pending items -----------------------------------------------------------------------------
    def arm_timer(self, timer: TimerDef) -> None:
        due = self.delay_due(self.now, timer.delay, timer.calendar)
        if timer.window is not None:
            due = self.calendar(timer.window).next_open_s(due)
        self.add_pending(due, "timer", timer.source, ("stage", self.epoch))

    def arm_schedule(self, schedule: ScheduleDef, after: float) -> None:
        due = schedule.schedule.next_after_s(after)
        if schedule.window is not None:
            due = self.calendar(schedule.window).next_open_s(due)
        self.add_pending(due, "schedule", schedule.source, ("stage", self.epoch))

    # -- clocks ------------------------------------------------------------------------------------
    def evaluate_clocks(
        self, type_: str, view: Mapping[str, Any] | None, entered: list[str]
    ) -> None:
        """Evaluate every clock's triggers for ``type_`` and the ``entered`` stages; retarget."""
        changed = self.changed  # clocks change no field, segment or tier: fixed for the loop
        clocks = self.clocks
        for name, clock_plan, definition in self.plan.clock_plans:
            on_event, on_enter, has_when, may_retarget, reads = clock_plan
            if (
                may_retarget
                and reads is not None
                and (changed is None or reads.isdisjoint(changed))
            ):
                may_retarget = False
            hits = on_event.get(type_, 0)
            for stage in entered:
                hits |= on_enter.get(stage, 0)
            clock = clocks.get(name)
            if not has_when and not hits:
                # no trigger can fire: only pause/resume and retargeting of an open cycle remain
                if clock is not None and clock.status in OPEN:
                    if definition.pause is not None:
                        clock.pause_or_resume(self, view)
                    if may_retarget:
                        clock.retarget(self, view)
                continue
            if clock is None:
                # only a start or a reset changes a closed clock (stop and cancel need an open one)
                if not has_when and not hits & RESET:
                    frozen = self.frozen.get(name)
                    status = frozen.status if frozen is not None else "pending"
                    if not (hits & START and (status == "pending" or definition.repeat)):
                        continue
                clock = self.working_clock(name)
            clock.evaluate(self, hits, has_when, may_retarget, view)

    def end_case(self, why: str) -> None:
        """End the case: open cycles end (SPEC §4.3); only kept delayed actions stay pending."""
        for clock in self.clocks.values():
            if clock.status in OPEN:
                clock.end_cycle(self, "final")
        self.ended = True
        self.pending = [p for p in self.pending if p.kind == "action" and p.owner == ()]
        if self.tracing:
            self.note("end", f"stages.{self.stage}", why)

    # -- signals -----------------------------------------------------------------------------------
    def drain_signals(self) -> None:
        """Handle the raised signals, first in first out (a signal's handlers may raise more)."""
        while self.queue:
            raised, depth = self.queue.popleft()
            if depth > MAX_SIGNAL_DEPTH:
                raise SignalLoop(
                    f"signals raised signals more than {MAX_SIGNAL_DEPTH} levels deep "
                    f"(last: {raised.type})",
                    event=self.event,
                )
            if self.ended or raised.type not in self.plan.mentioned:  # nothing handles it
                continue
            view = {
                "type": raised.type,
                "at": raised.at,
                "case": self.case,
                "id": None,
                "sla": raised.sla,
                "cycle": raised.cycle,
                **raised.data,
            }
            saved = self.depth
            self.depth = depth
            self.dispatch(raised.type, view, entered=[])
            self.depth = saved

    # -- due items ---------------------------------------------------------------------------------
    def next_item(self) -> DueItem | None:
        """The item to fire next: earliest due, then kind order, then declaration (clocks,
        timers) or creation (actions, schedules) order."""
        best: DueItem | None = None
        candidate: DueItem
        if not self.ended:
            index = self.plan.clock_index
            for clock in self.clocks.values():
                due = clock.next_due(self)
                if due is not None:
                    candidate = (due, 0, index[clock.name], clock)
                    if best is None or candidate[:3] < best[:3]:
                        best = candidate
        timers = self.plan.timers
        for p in self.pending:
            tie = p.seq
            if p.kind == "timer" and p.ref in timers:
                tie = timers[p.ref][1].index
            candidate = (p.due, KIND_ORDER[p.kind], tie, p)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
        return best

    def fire_due(self, limit: float, *, inclusive: bool) -> None:
        """Fire, in due order, every item due before ``limit`` (or at it, when ``inclusive``)."""
        for _ in range(MAX_ITEMS_PER_STEP):
            item = self.next_item()
            if item is None:
                return
            due = item[0]
            if due > limit + (EPS if inclusive else -EPS):
                return
            self.set_now(due)
            self.event = None
            what = item[3]
            if isinstance(what, WorkingClock):
                what.fire(self)
                self.after_change("", None, [])
            else:
                self.pending.remove(what)
                if what.kind == "action":
                    self.fire_action(what)
                elif what.kind == "timer":
                    self.fire_timer(what)
                elif what.kind == "schedule":
                    self.fire_schedule(what)
            self.drain_signals()
        raise CaseError(
            f"more than {MAX_ITEMS_PER_STEP} items fell due in one step; advance in smaller steps"
        )

    def fire_action(self, item: Pending) -> None:
        ref, _, channel = item.ref.partition("#")  # `source#channel`: a deferred fallback
        action = self.plan.actions.get(ref)
        if action is not None:
            if self.tracing:
                self.note(
                    "due", item.ref, f"delayed {action.verb} armed at {self.iso(item.origin)}"
                )
            emit(self, action, None, channel or None)
        self.after_change("", None, [])

    def fire_timer(self, item: Pending) -> None:
        stage, timer = self.plan.timers[item.ref]
        if stage != self.stage or self.ended:
            return
        if not self.holds(timer.when, None):
            if self.tracing:
                self.note(
                    "timer",
                    timer.source,
                    f"when {timer.when.source if timer.when else ''} did not hold",
                )
            return
        if self.tracing:
            self.note(
                "timer",
                timer.source,
                f"after {timer.delay.text}" + (f" → {timer.to}" if timer.to else ""),
            )
        entered: list[str] = []
        if timer.to is not None:
            self.transition(timer.to, timer.do, None, entered)
        else:
            perform(self, timer.do, None, ("stage", self.epoch))
        self.after_change("", None, entered)

    def fire_schedule(self, item: Pending) -> None:
        stage, schedule = self.plan.schedules[item.ref]
        if stage != self.stage or self.ended:
            return
        if self.holds(schedule.when, None):
            if self.tracing:
                self.note("schedule", schedule.source, schedule.cron)
            perform(self, schedule.do, None, ("stage", self.epoch))
        self.arm_schedule(schedule, self.now)
        self.after_change("", None, [])

    # -- freeze ------------------------------------------------------------------------------------
