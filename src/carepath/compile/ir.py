"""The compiled playbook: what both engines read, and nothing else (SPEC §2 after compilation).

:func:`carepath.compile.compiler.compile_playbook` builds a :class:`Playbook` from the validated
model; engines, drivers, lint and graphs only read these immutable records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.calendar.schedule import Schedule
    from carepath.diagnostics import Diagnostic
    from carepath.durations import Duration
    from carepath.expr.compiler import Expr
    from carepath.expr.types import FieldType
    from carepath.model import PlaybookSpec

__all__ = [
    "AGENT_ASSIGNED",
    "ASSIGNEE",
    "CONSENT_PREFIX",
    "FEEDBACK_FAILED",
    "OPT_EVENTS",
    "ActionDef",
    "ChannelDef",
    "ClockDef",
    "HandlerDef",
    "PauseDef",
    "Playbook",
    "ScheduleDef",
    "SetValue",
    "StageDef",
    "StartDef",
    "TargetDef",
    "ThresholdDef",
    "TimerDef",
    "TriggerDef",
]

CONSENT_PREFIX = "consent."
"""``consent.<channel>``: the customer's consent to messages on that channel (SPEC §10)."""
OPT_EVENTS = ("customer.opted_out", "customer.opted_in")
"""The reserved events that set consent: ``{channel}``, or ``{channel: all}``."""
AGENT_ASSIGNED = "agent.assigned"
"""The reserved event of the runtime's allocator, ``{agent}``: it sets ``assignee`` (SPEC §10)."""
ASSIGNEE = "assignee"
"""The built-in field naming the agent a case is assigned to (SPEC §10)."""
FEEDBACK_FAILED = "action.failed"
"""The reserved event of a delivery that failed for good (SPEC §9, §10)."""


@dataclass(frozen=True, slots=True)
class SetValue:
    """One ``field: value`` of a ``set``: a checked literal, or an ``=expression``."""

    field: str
    literal: Any
    expr: Expr | None
    type: FieldType


@dataclass(frozen=True, slots=True)
class ActionDef:
    """A compiled action; ``source`` is its playbook path (``stages.solved.enter[0]``)."""

    verb: str
    arg: Any
    params: Mapping[str, Any]
    source: str
    delay: Duration | None = None
    calendar: str | None = None
    window: str | None = None
    keep: bool = False
    sets: tuple[SetValue, ...] = ()
    when: Expr | None = None
    """Checked when the action would be emitted: when it does not hold, the action is not."""
    fallback: tuple[str, ...] = ()
    """The channels a ``send``/``survey`` falls back to, in order (SPEC §10)."""


@dataclass(frozen=True, slots=True)
class HandlerDef:
    """One handler of an event type in a stage (or the root ``on``)."""

    event: str
    to: str | None
    when: Expr | None
    sets: tuple[SetValue, ...]
    do: tuple[ActionDef, ...]
    source: str


@dataclass(frozen=True, slots=True)
class TimerDef:
    """A stage timer (``after``)."""

    index: int
    delay: Duration
    to: str | None
    do: tuple[ActionDef, ...]
    when: Expr | None
    calendar: str | None
    window: str | None
    source: str


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    """A recurring touchpoint (``every``)."""

    index: int
    cron: str
    schedule: Schedule
    window: str | None
    do: tuple[ActionDef, ...]
    when: Expr | None
    source: str


@dataclass(frozen=True, slots=True)
class StageDef:
    """A compiled stage."""

    name: str
    initial: bool
    final: bool
    enter: tuple[ActionDef, ...]
    exit: tuple[ActionDef, ...]
    on: Mapping[str, tuple[HandlerDef, ...]]
    after: tuple[TimerDef, ...]
    every: tuple[ScheduleDef, ...]


@dataclass(frozen=True, slots=True)
class TriggerDef:
    """A clock start/stop/reset/cancel: any of the event types, stages entered, or condition."""

    on: frozenset[str] = frozenset()
    enter: frozenset[str] = frozenset()
    when: Expr | None = None


@dataclass(frozen=True, slots=True)
class PauseDef:
    """A clock pause: while in one of ``stages`` or while ``when`` holds."""

    stages: frozenset[str] = frozenset()
    when: Expr | None = None


@dataclass(frozen=True, slots=True)
class TargetDef:
    """A clock target: exact business seconds, or business days (converted at cycle start)."""

    index: int
    when: Expr | None
    seconds: float | None
    business_days: int | None
    calendar: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ThresholdDef:
    """A threshold at a share of the target (``percent``) or a signed offset from it (seconds)."""

    index: int
    percent: float | None
    offset: float | None
    do: tuple[ActionDef, ...]
    text: str
    source: str

    def at(self, target: float) -> float:
        """The elapsed business seconds at which this threshold fires for ``target``."""
        if self.percent is not None:
            return target * self.percent / 100.0
        return max(0.0, target + (self.offset or 0.0))

    @property
    def severity(self) -> str:
        """``warning`` below the target, ``breached`` at it, ``overdue`` past it."""
        if self.percent is not None:
            return (
                "warning"
                if self.percent < 100
                else ("breached" if self.percent == 100 else "overdue")
            )
        off = self.offset or 0.0
        return "warning" if off < 0 else ("breached" if off == 0 else "overdue")


@dataclass(frozen=True, slots=True)
class ClockDef:
    """A compiled SLA clock."""

    name: str
    start: TriggerDef
    stop: TriggerDef | None
    pause: PauseDef | None
    reset: TriggerDef | None
    cancel: TriggerDef | None
    repeat: bool
    calendar: str
    targets: tuple[TargetDef, ...]
    thresholds: tuple[ThresholdDef, ...]


@dataclass(frozen=True, slots=True)
class StartDef:
    """How cases begin."""

    on: frozenset[str]
    when: Expr | None
    key: Expr
    key_text: str
    sets: tuple[SetValue, ...]
    reentry: str
    min_interval: Duration | None


@dataclass(frozen=True, slots=True)
class ChannelDef:
    """A channel's calendar and frequency cap."""

    name: str
    calendar: str
    automated: bool
    cap_per: float | None
    cap_max: int | None
    cap_mode: str = "drop"
    """``drop`` a capped send, or ``defer`` it until the window has room."""
    cap_exempt: frozenset[str] = frozenset()
    """Templates that neither count against the cap nor are capped."""


@dataclass(frozen=True)
class Playbook:
    """A compiled, immutable playbook. ``calendars["office"]`` is a :class:`~carepath.Calendar`."""

    id: str
    version: str
    content_hash: str
    title: str | None
    timezone: str
    spec: PlaybookSpec
    fields: Mapping[str, FieldType]
    defaults: Mapping[str, Any]
    events: Mapping[
        str, Mapping[str, tuple[FieldType, Any, bool]]
    ]  # type → field → (type, default, required)
    calendars: Mapping[str, Calendar]
    channels: Mapping[str, ChannelDef]
    segments: tuple[tuple[str, Expr], ...]
    tiers: tuple[str, ...]
    start: StartDef
    stages: Mapping[str, StageDef]
    initial: str
    on: Mapping[str, tuple[HandlerDef, ...]]
    exit_on: frozenset[str]
    exit_when: Expr | None
    clocks: Mapping[str, ClockDef]
    event_types: frozenset[str]
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)
    consent_default: bool = True
    """``consent.<channel>`` before the customer opts in or out (SPEC §10)."""
    consent_channels: tuple[str, ...] = ()
    """The channels a case can be on, each with its built-in ``consent.<channel>``."""
    customer_timezone: str | None = None
    """The string field naming the customer's IANA zone (``customer_timezone:``)."""
    customer_calendars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The calendars declared ``timezone: customer``, as the mappings they are built from: the
    engine builds each in the case's zone (``calendars`` holds it in the playbook's)."""
    pii_fields: frozenset[str] = frozenset()
    """The case fields declared ``pii: true`` (SPEC §10): what an erasure replaces with null."""
    pii_event_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Event type → its declared payload fields with ``pii: true`` (types without any left out)."""
    retention: Mapping[str, str] = field(default_factory=dict)
    """``retention:`` kind (``ended_cases``, ``rejected``, ``delivered_actions``) → its duration
    text; a kind left out is kept for ever (SPEC §10)."""

    def calendar_named(self, name: str | None, data: Mapping[str, Any]) -> Calendar:
        """The calendar ``name`` (``channel`` = the case channel's; ``None``/unset = ``always``)."""
        if name is None:
            return self.calendars["always"]
        if name == "channel":
            ch = self.channels.get(str(data.get("channel")))
            return self.calendars[ch.calendar] if ch is not None else self.calendars["always"]
        return self.calendars[name]

    def __repr__(self) -> str:
        return f"<Playbook {self.id} {self.version} {self.content_hash[:12]}>"
