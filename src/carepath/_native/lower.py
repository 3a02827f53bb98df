"""Compiled :class:`~carepath.compile.ir.Playbook` → the plain data ``carepath_core.Engine`` reads.

The core receives tuples, lists and dicts of strings and numbers: stages, handlers, actions,
timers, schedules, clocks with their trigger tables, targets and thresholds. Conditions come as
``(fn, program)``: the VM bytecode of :mod:`.lower_expr` (``None`` when the VM cannot run the
expression) beside the reference function, which the core calls whenever the VM defers a value.
Calendars come as ``(calendar, tables)``: the interval tables of :mod:`.lower_calendar` (``None``
when they cannot be built) beside the reference object, which answers whenever the core's
calendar reports an error (it then raises the reference's own error); a calendar declared
``timezone: customer`` is built in each customer's zone as the engine builds it (``Plan.zoned``),
which the core asks for once per zone. Cron schedules, wall-clock
day arithmetic and value coercion stay Python callables (rare per step).

A playbook that uses something the core does not implement raises :class:`Unsupported` naming
it; ``backend="auto"`` then runs the Python engine and ``backend="native"`` refuses. Today that
is a condition reading ``sla.<clock>.elapsed``, ``.remaining`` or ``.due`` (reading them moves the
clock in the reference, at instants the core would have to replay exactly), and Python 3.12+
(whose ``sum()`` of floats is compensated; the core replays 3.11's). Delays in calendar months
(``mo``, ``y``) are lowered with their months; the core asks the reference's arithmetic
(``wall_months``) for their wall-clock instant.
"""

from __future__ import annotations

import sys
from typing import Any

from carepath.compile.ir import (
    ASSIGNEE,
    CONSENT_PREFIX,
    ActionDef,
    ClockDef,
    HandlerDef,
    Playbook,
    SetValue,
    TimerDef,
    TriggerDef,
)
from carepath.expr.compiler import Expr

__all__ = ["Unsupported", "calendar_pair", "lower"]

#: Specials the core cannot offer to conditions yet: reading them moves a clock (`touch`), whose
#: float arithmetic the core would have to replay at exactly the reference's instants.
_UNSUPPORTED_SLA_ATTRS = ("elapsed", "remaining", "due")


class Unsupported(Exception):
    """The playbook uses something the native core does not implement (the reason says what)."""


def _cond(e: Expr | None, where: str) -> Any:
    """``(fn, program)``: the reference function and the core's program (``None``: the core
    calls the function)."""
    if e is None:
        return None
    for n in e.names:
        if n.startswith("sla.") and n.rsplit(".", 1)[-1] in _UNSUPPORTED_SLA_ATTRS:
            raise Unsupported(f"{where}: the condition {e.source!r} reads {n}")
    if any(n.startswith(CONSENT_PREFIX) or n == ASSIGNEE for n in e.names):
        # the built-ins of SPEC §10: the reference function reads them from the core's scope,
        # which asks the reference's own rule (`special`: consent_default until set)
        return (e.fn, None)
    try:
        from carepath._native.lower_expr import lower_expr

        program: Any = lower_expr(e)
    except Exception:  # an expression the VM does not run (or no lowering module): fn runs
        program = None
    return (e.fn, program)


def _delay(d: Any) -> Any:
    if d is None:
        return None
    return (float(d.seconds), int(d.days), int(d.business_days), int(getattr(d, "months", 0)))


def _sets(sets: tuple[SetValue, ...], where: str) -> list[Any]:
    return [(s.field, s.literal, _cond(s.expr, where), s.type) for s in sets]


def _actions(acts: tuple[ActionDef, ...]) -> list[Any]:
    out = []
    for a in acts:
        arg_s = a.arg if isinstance(a.arg, str) else None
        out.append(
            (
                a.verb,
                a.arg,
                arg_s,
                dict(a.params),
                a.source,
                _delay(a.delay),
                a.calendar,
                a.window,
                bool(a.keep),
                _sets(a.sets, a.source),
                _cond(a.when, a.source + ".when"),
                list(a.fallback),
            )
        )
    return out


def _handlers(hs: tuple[HandlerDef, ...]) -> list[Any]:
    return [
        (h.to, _cond(h.when, h.source), _sets(h.sets, h.source), _actions(h.do), h.source)
        for h in hs
    ]


def _timer(t: TimerDef) -> Any:
    return (
        t.index,
        _delay(t.delay),
        t.to,
        _actions(t.do),
        _cond(t.when, t.source),
        t.calendar,
        t.window,
        t.source,
    )


def _trigger(t: TriggerDef | None, where: str) -> Any:
    if t is None:
        return None
    return (sorted(t.on), sorted(t.enter), _cond(t.when, where))


def _clock(c: ClockDef, fields: frozenset[str]) -> Any:
    where = f"slas.{c.name}"
    pause = (
        None if c.pause is None else (sorted(c.pause.stages), _cond(c.pause.when, where + ".pause"))
    )
    # what the targets read when that is only case data (see Engine._clock_plan), else None
    stable = fields | {"segment", "segments", "tier", "channel"}
    reads: list[str] | None = None
    if all(t.when is None or t.when.names <= stable for t in c.targets):
        rs: set[str] = set().union(*(t.when.names for t in c.targets if t.when is not None))
        if c.calendar == "channel" or any(t.calendar == "channel" for t in c.targets):
            rs.add("channel")
        reads = sorted(rs)
    targets = [
        (
            t.index,
            _cond(t.when, f"{where}.targets[{t.index}]"),
            t.seconds,
            t.business_days,
            t.calendar,
        )
        for t in c.targets
    ]
    thresholds = [
        (th.percent, th.offset, _actions(th.do), th.text, th.severity) for th in c.thresholds
    ]
    return (
        c.name,
        _trigger(c.start, where + ".start"),
        _trigger(c.stop, where + ".stop"),
        pause,
        _trigger(c.reset, where + ".reset"),
        _trigger(c.cancel, where + ".cancel"),
        bool(c.repeat),
        c.calendar,
        targets,
        thresholds,
        reads,
    )


def calendar_pair(cal: Any) -> tuple[Any, Any]:
    """``(cal, tables)``: a calendar as the core takes it, its interval tables ``None`` when the
    core's calendar cannot hold them (the core then calls the reference object)."""
    try:
        from carepath._native.lower_calendar import lower_calendar

        return cal, lower_calendar(cal)
    except Exception:  # a calendar the core's tables cannot hold: the reference answers
        return cal, None


def lower(pb: Playbook) -> dict[str, Any]:
    """The plain form of ``pb`` for ``carepath_core.Engine``; raises :class:`Unsupported`."""
    if sys.version_info >= (3, 12):
        # the reference sums pause spans with sum(), which became compensated in 3.12
        raise Unsupported("Python 3.12+ sums floats differently; the core replays 3.11's sum()")
    fields = frozenset(pb.fields)
    stages = []
    for st in pb.stages.values():
        stages.append(
            (
                st.name,
                bool(st.final),
                _actions(st.enter),
                _actions(st.exit),
                {ty: _handlers(hs) for ty, hs in st.on.items()},
                [_timer(t) for t in st.after],
                [
                    (
                        s.index,
                        s.schedule,
                        s.window,
                        _actions(s.do),
                        _cond(s.when, s.source),
                        s.source,
                    )
                    for s in st.every
                ],
            )
        )
    return {
        "id": pb.id,
        "version": pb.version,
        "hash": pb.content_hash,
        "timezone": pb.timezone,
        "stages": stages,
        "initial": pb.initial,
        "root_on": {ty: _handlers(hs) for ty, hs in pb.on.items()},
        "clocks": [_clock(c, fields) for c in pb.clocks.values()],
        "segments": [(n, _cond(e, f"segments.{n}")) for n, e in pb.segments],
        "segments_volatile": any(n not in pb.fields for _, e in pb.segments for n in e.names),
        "start_sets": _sets(pb.start.sets, "start.set"),
        "start_on": sorted(pb.start.on),
        # the core opens a case alone when its key is the event's case and nothing guards it
        "start_fast": pb.start.when is None and pb.start.key.source.strip() == "event.case",
        "defaults": dict(pb.defaults),
        "tiers": list(pb.tiers),
        "channels": {
            n: (ch.calendar, ch.cap_per, ch.cap_max, ch.cap_mode == "defer", sorted(ch.cap_exempt))
            for n, ch in pb.channels.items()
        },
        "calendars": {n: calendar_pair(c) for n, c in pb.calendars.items()},
        # read in the customer's zone: the core asks `zoned` (the engine's) for each zone
        "customer_calendars": sorted(pb.customer_calendars),
        "customer_timezone": pb.customer_timezone,
        "exit_on": sorted(pb.exit_on),
        "exit_when": _cond(pb.exit_when, "exit.when"),
        "event_types": sorted(pb.event_types),
        "events": {
            ty: [
                (name, ft.kind, list(ft.values), default, bool(required))
                for name, (ft, default, required) in decl.items()
            ]
            for ty, decl in pb.events.items()
        },
    }
