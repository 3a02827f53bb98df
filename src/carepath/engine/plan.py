"""What the reference run looks up in a playbook, computed once per engine.

:class:`Plan` indexes the compiled playbook by what a step asks: the action, timer or schedule
definition a pending item names, whether an event type is mentioned at all, and per clock a
:class:`ClockPlan` saying which event types and stages fire which of its :class:`Trigger`\\ s and
whether its target can change in a step, so that most steps skip most clocks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from carepath._instants import TYPED_KINDS, zone
from carepath.compile.ir import ActionDef, ClockDef, Playbook, ScheduleDef, TimerDef
from carepath.errors import CarepathError

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar

__all__ = ["CANCEL", "RESET", "START", "STOP", "ClockPlan", "Plan", "Trigger"]


class Trigger(enum.IntFlag):
    """A clock's triggers (SPEC §4.3) as bits: in :class:`ClockPlan` and in ``Clock.conds``
    (which ``when`` triggers held at the last evaluation, so that they fire on a rising edge)."""

    START = 1
    STOP = 2
    RESET = 4
    CANCEL = 8


# The same bits as plain ints, for the per-step loops: an operation on an IntFlag member runs
# Python code (about 3 µs), one on an int does not (about 30 ns).
START = Trigger.START.value
STOP = Trigger.STOP.value
RESET = Trigger.RESET.value
CANCEL = Trigger.CANCEL.value


class ClockPlan(NamedTuple):
    """What can change one clock in a step, so most steps skip most of its work."""

    on_event: Mapping[str, int]
    """Event (or signal) type → the :class:`Trigger` bits it fires."""
    on_enter: Mapping[str, int]
    """Entered stage → the :class:`Trigger` bits entering it fires."""
    has_when: bool
    """Some trigger has a ``when`` condition: the clock is evaluated on every step."""
    may_retarget: bool
    """The chosen target (or its calendar) can differ from one step to the next."""
    reads: frozenset[str] | None
    """The case names (fields, ``segment(s)``, ``tier``, ``channel``) the targets read: a step
    that changed none of them cannot change the target. ``None``: they read the event or other
    specials, and are evaluated on every step."""

    @classmethod
    def of(cls, clock: ClockDef, case_names: frozenset[str]) -> ClockPlan:
        """The plan of ``clock``; ``case_names`` are the names a step changes only by writing."""
        on_event: dict[str, int] = {}
        on_enter: dict[str, int] = {}
        has_when = False
        for bit, trigger in (
            (START, clock.start),
            (STOP, clock.stop),
            (RESET, clock.reset),
            (CANCEL, clock.cancel),
        ):
            if trigger is not None:
                for event_type in trigger.on:
                    on_event[event_type] = on_event.get(event_type, 0) | bit
                for stage in trigger.enter:
                    on_enter[stage] = on_enter.get(stage, 0) | bit
                has_when = has_when or trigger.when is not None
        targets = clock.targets
        reads_channel = clock.calendar == "channel" or any(t.calendar == "channel" for t in targets)
        may_retarget = len(targets) > 1 or reads_channel or any(t.when is not None for t in targets)
        reads: frozenset[str] | None = None
        if all(t.when is None or t.when.names <= case_names for t in targets):
            reads = frozenset().union(*(t.when.names for t in targets if t.when is not None))
            if reads_channel:
                reads |= {"channel"}
        return cls(on_event, on_enter, has_when, may_retarget, reads)


class Plan:
    """The compiled playbook as the reference run looks it up (built once per engine)."""

    __slots__ = (
        "_zoned",
        "actions",
        "clock_index",
        "clock_names",
        "clock_plans",
        "clocks",
        "key_is_case",
        "mentioned",
        "playbook",
        "schedules",
        "segments_volatile",
        "timers",
        "typed",
        "tz",
        "watch",
        "watched",
    )

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.tz = zone(playbook.timezone)
        self._zoned: dict[tuple[str, str], Calendar | None] = {}
        self.actions: dict[str, ActionDef] = {}
        """Every action definition by its playbook path (``stages.solved.enter[0]``)."""
        self.timers: dict[str, tuple[str, TimerDef]] = {}
        """Every timer by its path, with the stage that owns it."""
        self.schedules: dict[str, tuple[str, ScheduleDef]] = {}
        """Every schedule by its path, with the stage that owns it."""
        for stage_name, stage in playbook.stages.items():
            self._index(stage.enter)
            self._index(stage.exit)
            for handlers in stage.on.values():
                for handler in handlers:
                    self._index(handler.do)
            for timer in stage.after:
                self.timers[timer.source] = (stage_name, timer)
                self._index(timer.do)
            for schedule in stage.every:
                self.schedules[schedule.source] = (stage_name, schedule)
                self._index(schedule.do)
        for handlers in playbook.on.values():
            for handler in handlers:
                self._index(handler.do)
        for clock in playbook.clocks.values():
            for threshold in clock.thresholds:
                self._index(threshold.do)
        self.mentioned: frozenset[str] = playbook.event_types
        """The event types the playbook mentions anywhere; the others are ignored."""
        self.key_is_case = playbook.start.key.source.strip() == "event.case"
        case_names = frozenset(playbook.fields) | {"segment", "segments", "tier", "channel"}
        self.clocks: dict[str, ClockPlan] = {
            name: ClockPlan.of(clock, case_names) for name, clock in playbook.clocks.items()
        }
        self.clock_plans = tuple(
            (name, self.clocks[name], clock) for name, clock in playbook.clocks.items()
        )
        """Per clock in declaration order: its name, plan and definition (the per-step loop)."""
        self.clock_names = tuple(playbook.clocks)
        self.typed: tuple[tuple[str, str], ...] = tuple(
            (name, t.kind) for name, t in playbook.fields.items() if t.kind in TYPED_KINDS
        )
        """The case fields kept as text but read as their type: ``(name, kind)``
        (:func:`~carepath._instants.typed_data`)."""
        self.clock_index = {name: i for i, name in enumerate(self.clock_names)}
        """A clock's declaration order: the tie-break of clock items due at one instant."""
        self.segments_volatile = any(
            name not in playbook.fields for _, expr in playbook.segments for name in expr.names
        )
        """Segments read more than the case's fields, so every event recomputes them."""
        self.watch: Mapping[str, frozenset[int]] | None = None
        """Per clock, the targets whose selection is noted in :attr:`watched` (None: none)."""
        self.watched: set[str] = set()
        """The keys of the cases whose clocks selected a watched target (:meth:`Engine.watch_targets`)."""

    def zoned(self, name: str, zone: object) -> Calendar | None:
        """Calendar ``name`` (declared ``timezone: customer``) built in ``zone``, once per zone;
        ``None`` when ``zone`` is no IANA time zone name."""
        if not isinstance(zone, str) or not zone:
            return None
        key = (name, zone)
        if key not in self._zoned:
            from carepath.calendar.business import Calendar

            try:
                zone_of = ZoneInfo(zone)
                raw = dict(self.playbook.customer_calendars[name])
                raw["timezone"] = zone_of.key
                built: Calendar | None = Calendar.from_dict(raw, timezone=zone_of.key)
            except (ValueError, KeyError, OSError, CarepathError):
                built = None
            if len(self._zoned) >= 1024:  # bounded: zones are few, hostile values are not
                self._zoned.clear()
            self._zoned[key] = built
        return self._zoned[key]

    def _index(self, actions: tuple[ActionDef, ...]) -> None:
        for action in actions:
            self.actions[action.source] = action
