"""Semantic checks of a compiled playbook (SPEC §5): errors CP503–CP508 and warnings CP601–CP607
and CP609. The goals are checked from the model by :mod:`carepath.lint.goals`.

Everything here reads a compiled :class:`~carepath.compile.ir.Playbook` and reports into the
loader's :class:`~carepath.loading.source.Reporter`; nothing is changed. Each check is one small
function; :func:`lint` runs them all.

The stage-graph analyses are exact over one model of the engine (documented in full in
``docs/diagnostics.md``):

* Events come from outside, so any event type can arrive in any non-final stage at any time;
  signals are treated like events (a signal handler is an edge).
* A stage's handlers for an event are tried in order; a handler without ``when`` (or whose
  ``when`` is a constant true) hides the handlers after it and the root ``on``; a handler whose
  ``when`` is a constant false never fires. Root handlers apply in every non-final stage.
* Clocks are followed exactly through their ``start``/``stop``/``cancel``/``reset`` triggers
  (precedence stop, cancel, reset, start; ``repeat``; the final-stage rule) over the product of
  the stage graph and every clock's status (pending, open, ended). A trigger's ``when`` may fire
  after any step unless it is a constant false.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.compile.ir import (
        ActionDef,
        ClockDef,
        HandlerDef,
        Playbook,
        StageDef,
        TriggerDef,
    )
    from carepath.durations import Duration
    from carepath.expr.compiler import Expr
    from carepath.loading.source import Reporter

__all__ = ["lint"]

Path = tuple[str | int, ...]

#: CP606: a threshold beyond this many times its target is beyond reason.
MAX_THRESHOLD_FACTOR = 10.0
#: Joint clock-status analysis gives up (and falls back to one clock at a time) past this many states.
MAX_PRODUCT_STATES = 100_000

PENDING, OPEN, ENDED = "P", "R", "E"
_NOT_CONST = object()


def lint(playbook: Playbook, rep: Reporter) -> None:
    """Run every semantic check of SPEC §5 on ``playbook``, reporting into ``rep``."""
    g = Graph(playbook)
    no_way_out = check_way_out(g, rep)
    reach = reachable_stages(g)
    check_unreachable(g, reach, rep)
    check_timers(g, reach, rep)
    analysis = clock_analysis(g)
    check_forgotten(g, reach, analysis, no_way_out, rep)
    check_clock_start_stop(g, analysis, rep)
    check_channel_calendar(g, analysis, rep)
    check_thresholds(g, rep)
    check_signal_cycles(g, rep)
    check_segments(playbook, rep)


# ---------------------------------------------------------------------------------------------
# constants and the stage graph


def const_value(e: Expr | None) -> Any:
    """The value of an expression that reads nothing (``true``, ``1 > 2``), else ``_NOT_CONST``.

    ``None`` (no condition) is a constant true.
    """
    if e is None:
        return True
    if e.names or getattr(e, "uses_now", False):
        return _NOT_CONST
    try:
        return e({}, {}, {})
    except Exception:  # an expression that cannot run without data is not a constant
        return _NOT_CONST


def always(e: Expr | None) -> bool:
    """No condition, or a condition that is a constant true."""
    return const_value(e) is True


def never(e: Expr | None) -> bool:
    """A condition that is a constant false (or null)."""
    v = const_value(e)
    return v is not _NOT_CONST and not v


@dataclass(frozen=True)
class Outcome:
    """One possible result of dispatching an event in a stage: the handler that ran (if any) and
    the stage entered (``None``: the case stays without re-entering)."""

    handler: HandlerDef | None
    to: str | None
    path: Path = ()


@dataclass
class Graph:
    """The stage graph of a playbook, with the handler-selection rules of SPEC §4.2."""

    pb: Playbook
    stage_names: list[str] = field(init=False)
    events: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        pb = self.pb
        self.stage_names = list(pb.stages)
        ev: set[str] = set(pb.start.on) | set(pb.exit_on) | set(pb.on)
        for st in pb.stages.values():
            ev.update(st.on)
        for c in pb.clocks.values():
            for t in (c.start, c.stop, c.reset, c.cancel):
                if t is not None:
                    ev.update(t.on)
        self.events = frozenset(ev)
        self._outcomes: dict[tuple[str, str], tuple[Outcome, ...]] = {}

    def stage(self, name: str) -> StageDef:
        return self.pb.stages[name]

    def is_final(self, name: str) -> bool:
        return self.pb.stages[name].final

    def outcomes(self, stage: str, event: str) -> tuple[Outcome, ...]:
        """Every handler that can run for ``event`` in ``stage`` (own handlers first, then the
        root ``on`` when none of the own can match), plus "no handler" when none must match."""
        key = (stage, event)
        cached = self._outcomes.get(key)
        if cached is not None:
            return cached
        out: list[Outcome] = []
        st = self.pb.stages[stage]
        exhaustive = False
        for base, hs in ((("stages", stage, "on", event), st.on.get(event, ())),
                         (("on", event), () if st.final else self.pb.on.get(event, ()))):
            for i, h in enumerate(hs):
                if never(h.when):
                    continue
                out.append(Outcome(h, h.to, (*base, i) if len(hs) > 1 else base))
                if always(h.when):
                    exhaustive = True
                    break
            if exhaustive:
                break
        if not exhaustive:
            out.append(Outcome(None, None))
        res = tuple(out)
        self._outcomes[key] = res
        return res

    def handled_events(self, stage: str) -> set[str]:
        st = self.pb.stages[stage]
        return set(st.on) | (set() if st.final else set(self.pb.on))

    def moves(self, stage: str) -> Iterator[tuple[str, Path]]:
        """Every stage a case in ``stage`` can move to (``to`` of a reachable handler or a timer),
        with the path of what moves it."""
        for ev in sorted(self.handled_events(stage)):
            for o in self.outcomes(stage, ev):
                if o.to is not None and o.to in self.pb.stages:
                    yield o.to, o.path
        for t in self.pb.stages[stage].after:
            if t.to is not None and t.to in self.pb.stages and not never(t.when):
                yield t.to, ("stages", stage, "after", t.index)

    @property
    def has_exit(self) -> bool:
        return bool(self.pb.exit_on) and not never(self.pb.exit_when)


def reachable_stages(g: Graph) -> set[str]:
    """Stages reachable from the initial stage over handler and timer moves."""
    seen = {g.pb.initial}
    todo = [g.pb.initial]
    while todo:
        s = todo.pop()
        if g.is_final(s):
            continue
        for t, _ in g.moves(s):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


# ---------------------------------------------------------------------------------------------
# CP503 / CP601


def check_way_out(g: Graph, rep: Reporter) -> set[str]:
    """CP503: a non-final stage with no way out at all. Returns the stages reported."""
    bad: set[str] = set()
    for name in g.stage_names:
        if g.is_final(name) or g.has_exit:
            continue
        if any(t != name for t, _ in g.moves(name)):
            continue
        bad.add(name)
        rep.add("CP503", f"stage {name!r} is not final and has no way out: no handler or timer moves the case "
                "to another stage, and the playbook has no `exit`", ("stages", name), key=True,
                hint="add a transition (`on: {case.closed: closed}`, `after: [{in: 7d, to: closed}]`), "
                     "or mark the stage `final: true`")
    return bad


def check_unreachable(g: Graph, reach: set[str], rep: Reporter) -> None:
    """CP601: a stage no path from the initial stage leads to."""
    for name in g.stage_names:
        if name not in reach:
            rep.add("CP601", f"stage {name!r} is unreachable from the initial stage {g.pb.initial!r}",
                    ("stages", name), key=True,
                    hint="add a transition to it (`to: " + name + "`), or remove it")


def outlasts(later: Duration, earlier: Duration) -> bool:
    """Whether ``later`` is at least ``earlier`` in any calendar: no part of it (days, business
    days, seconds) is shorter."""
    return (later.days >= earlier.days and later.business_days >= earlier.business_days
            and later.seconds >= earlier.seconds)


def check_timers(g: Graph, reach: set[str], rep: Reporter) -> None:
    """CP609: a timer of a reachable stage that can never fire: its ``when`` is a constant false,
    or an earlier timer that always moves the case (cancelling this one) is due no later."""
    for name in g.stage_names:
        if name not in reach:
            continue  # CP601 says so
        timers = g.stage(name).after
        for t in timers:
            path: Path = ("stages", name, "after", t.index)
            if never(t.when):
                rep.add("CP609", f"timer `in: {t.delay.text}` of stage {name!r} never fires: its `when` is "
                        "always false", (*path, "when"), hint="remove the timer, or fix its condition")
                continue
            for first in timers[: timers.index(t)]:
                moves = first.to is not None and always(first.when) and first.window is None
                if moves and first.calendar == t.calendar and outlasts(t.delay, first.delay):
                    rep.add("CP609", f"timer `in: {t.delay.text}` of stage {name!r} never fires: the timer "
                            f"`in: {first.delay.text}` before it always moves the case to {first.to!r} first",
                            (*path, "in"), hint="shorten this timer, or give the earlier one a `when`")
                    break


# ---------------------------------------------------------------------------------------------
# the product of stages and clock statuses (CP602, CP603, CP604, CP607)


@dataclass
class ClockAnalysis:
    """What the product exploration found: resting clock statuses by stage, and per clock whether
    a cycle can open and whether ``stop`` can ever end one."""

    clocks: tuple[str, ...]
    resting: dict[str, set[tuple[str, ...]]]  # stage → clock-status vectors a case can rest with
    can_open: dict[str, bool]
    can_stop: dict[str, bool]
    joint: bool = True


def _fires(t: TriggerDef | None, event: str | None, entered: frozenset[str]) -> bool:
    if t is None:
        return False
    return (event is not None and event in t.on) or bool(t.enter & entered)


def clock_step(c: ClockDef, st: str, event: str | None, entered: frozenset[str]) -> tuple[str, bool]:
    """One step of a clock (SPEC §4.3 precedence: stop, cancel, reset, start). Returns the new
    status and whether ``stop`` ended an open cycle."""
    stopped = False
    if st == OPEN and _fires(c.stop, event, entered):
        st, stopped = ENDED, True
    if st == OPEN and _fires(c.cancel, event, entered):
        st = ENDED
    if _fires(c.reset, event, entered):
        st = OPEN
    if _fires(c.start, event, entered) and (st == PENDING or (st == ENDED and c.repeat)):
        st = OPEN
    return st, stopped


def _spontaneous(c: ClockDef, st: str) -> Iterator[tuple[str, bool]]:
    """Status changes a trigger's ``when`` can cause after any step."""
    def may(t: TriggerDef | None) -> bool:
        return t is not None and t.when is not None and not never(t.when)

    if st == OPEN and may(c.stop):
        yield ENDED, True
    if st == OPEN and may(c.cancel):
        yield ENDED, False
    if may(c.reset) and st != OPEN:
        yield OPEN, False
    if may(c.start) and (st == PENDING or (st == ENDED and c.repeat)):
        yield OPEN, False


def clock_analysis(g: Graph) -> ClockAnalysis:
    """Explore every (stage, clock statuses) a case can be in; jointly for all clocks, or one
    clock at a time when the joint space is too large."""
    names = tuple(g.pb.clocks)
    res = _explore(g, names)
    if res is not None:
        return res
    resting: dict[str, set[tuple[str, ...]]] = {}
    can_open: dict[str, bool] = {}
    can_stop: dict[str, bool] = {}
    per: list[ClockAnalysis] = []
    for n in names:
        r = _explore(g, (n,), limit=None)
        assert r is not None
        per.append(r)
        can_open.update(r.can_open)
        can_stop.update(r.can_stop)
    # Recombine as a product of the per-clock projections: an over-approximation of the joint set.
    for stage in {s for r in per for s in r.resting}:
        vecs: set[tuple[str, ...]] = {()}
        for r in per:
            vecs = {v + w for v in vecs for w in r.resting.get(stage, set())}
        resting[stage] = vecs
    return ClockAnalysis(names, resting, can_open, can_stop, joint=False)


def _explore(g: Graph, names: tuple[str, ...], limit: int | None = MAX_PRODUCT_STATES) -> ClockAnalysis | None:
    pb = g.pb
    clocks = [pb.clocks[n] for n in names]
    can_open = dict.fromkeys(names, False)
    can_stop = dict.fromkeys(names, False)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: deque[tuple[str, tuple[str, ...]]] = deque()

    def push(stage: str, vec: list[str], stops: Iterable[bool]) -> None:
        for i, stopped in enumerate(stops):
            if stopped:
                can_stop[names[i]] = True
        if pb.stages[stage].final:
            vec = [ENDED if s == OPEN else s for s in vec]
        state = (stage, tuple(vec))
        for i, s in enumerate(vec):
            if s == OPEN:
                can_open[names[i]] = True
        if state not in seen:
            seen.add(state)
            todo.append(state)

    def step(stage: str, vec: tuple[str, ...], event: str | None, entered: frozenset[str], to: str) -> None:
        out: list[str] = []
        stops: list[bool] = []
        for c, s in zip(clocks, vec, strict=True):
            ns, stopped = clock_step(c, s, event, entered)
            out.append(ns)
            stops.append(stopped)
        push(to, out, stops)

    init = pb.initial
    pending = tuple(PENDING for _ in names)
    for ev in sorted(pb.start.on):
        for o in g.outcomes(init, ev):
            entered = frozenset({init} | ({o.to} if o.to is not None else set()))
            step(init, pending, ev, entered, o.to if o.to is not None else init)

    while todo:
        if limit is not None and len(seen) > limit:
            return None
        stage, vec = todo.popleft()
        if pb.stages[stage].final:
            continue
        for ev in sorted(g.events):
            if ev in pb.exit_on and pb.exit_when is None:
                continue  # the case ends
            for o in g.outcomes(stage, ev):
                step(stage, vec, ev, frozenset({o.to}) if o.to is not None else frozenset(),
                     o.to if o.to is not None else stage)
        for t in pb.stages[stage].after:
            if t.to is not None and not never(t.when):
                step(stage, vec, None, frozenset({t.to}), t.to)
        for i, c in enumerate(clocks):
            for ns, stopped in _spontaneous(c, vec[i]):
                nv = list(vec)
                nv[i] = ns
                push(stage, nv, [j == i and stopped for j in range(len(vec))])

    resting: dict[str, set[tuple[str, ...]]] = {}
    for stage, vec in seen:
        resting.setdefault(stage, set()).add(vec)
    return ClockAnalysis(names, resting, can_open, can_stop)


def may_pause(c: ClockDef, stage: str) -> bool:
    """Whether clock ``c`` can be paused while the case is in ``stage``."""
    if c.pause is None:
        return False
    return stage in c.pause.stages or (c.pause.when is not None and not never(c.pause.when))


def keeps_moving(st: StageDef) -> bool:
    """A schedule, or a timer that always moves the case on (re-entering re-arms the timers)."""
    if any(not never(s.when) for s in st.every):
        return True
    return any(t.to is not None and always(t.when) for t in st.after)


def check_forgotten(g: Graph, reach: set[str], an: ClockAnalysis, skip: set[str], rep: Reporter) -> None:
    """CP602: a reachable non-final stage where a case can wait forever with nothing open."""
    pb = g.pb
    clocks = [pb.clocks[n] for n in an.clocks]
    for name in g.stage_names:
        st = pb.stages[name]
        if st.final or name not in reach or name in skip or keeps_moving(st):
            continue
        bad: tuple[str, ...] | None = None
        for vec in sorted(an.resting.get(name, set())):
            if not any(s == OPEN and not may_pause(c, name) for c, s in zip(clocks, vec, strict=True)):
                bad = vec
                break
        if bad is None:
            continue  # a clock is sure to run in every way a case can rest here, or there is none
        why = _forgotten_reason(clocks, bad, name)
        one_shot = bool(st.after) or any(a.delay is not None for a in st.enter)
        rep.add("CP602", f"a case can wait forever in stage {name!r}: {why}"
                + ("; its timers and delayed actions fire only once" if one_shot else ""),
                ("stages", name), key=True,
                hint="add a timer that moves the case on (`after: [{in: 7d, to: closed}]`), a schedule "
                     "(`every`), or an SLA clock that runs in this stage")


def _forgotten_reason(clocks: list[ClockDef], vec: tuple[str, ...], stage: str) -> str:
    if not clocks:
        return "no timer moves it on, no schedule, and the playbook has no SLA clock"
    parts = []
    for c, s in zip(clocks, vec, strict=True):
        if s == OPEN:
            parts.append(f"{c.name} is paused here" if c.pause and stage in c.pause.stages
                         else f"{c.name} can be paused here")
        elif s == PENDING:
            parts.append(f"{c.name} may not have started")
        else:
            parts.append(f"{c.name} may have ended")
    return "no timer moves it on, no schedule, and no SLA clock is sure to run (" + ", ".join(parts) + ")"


def check_clock_start_stop(g: Graph, an: ClockAnalysis, rep: Reporter) -> None:
    """CP603: a clock whose cycle can never open; CP604: a clock that can open but that ``stop``
    can never end (its cycles only end cancelled, or never)."""
    for name, c in g.pb.clocks.items():
        if not an.can_open.get(name, False):
            rep.add("CP603", f"SLA {name!r} can never start: its `start` fires on no reachable path",
                    ("slas", name, "start"), key=True,
                    hint="start it on an event (`start: {on: case.opened}`) or on entering a reachable stage")
        elif not an.can_stop.get(name, False):
            if c.stop is None:
                msg = f"SLA {name!r} has no `stop`, so its cycles never end met or missed"
                path: Path = ("slas", name)
            else:
                msg = f"SLA {name!r} can never stop: its `stop` fires on no reachable path while a cycle is open"
                path = ("slas", name, "stop")
            rep.add("CP604", msg, path, key=True,
                    hint="stop it on an event (`stop: {on: agent.replied}`) or on entering a reachable stage")


def _channel_may_be_unset(pb: Playbook) -> str | None:
    """Why the case field ``channel`` may be unset, or ``None`` when it is always set."""
    if not pb.spec.channels:
        return "the playbook declares no channels"
    if "channel" not in pb.fields:
        return "no field `channel` is declared"
    if "channel" in pb.defaults:
        return None
    if any(s.field == "channel" for s in pb.start.sets):
        return None
    return "field `channel` has no default and `start.set` does not set it"


def check_channel_calendar(g: Graph, an: ClockAnalysis, rep: Reporter) -> None:
    """CP607: ``calendar: channel`` (the clocks' default, and ``bd`` timers') where the case's
    channel can be unset, so the clock silently counts 24×7."""
    pb = g.pb
    why = _channel_may_be_unset(pb)
    if why is None:
        return
    hint = "set a default channel, set it in `start.set`, or name a calendar (`calendar: office`)"
    for name, c in pb.clocks.items():
        if not an.can_open.get(name, False):
            continue
        uses = c.calendar == "channel" and any(t.calendar is None for t in c.targets)
        if uses:
            explicit = "calendar" in pb.spec.slas[name].model_fields_set
            rep.add("CP607", f"SLA {name!r} counts in the case channel's calendar"
                    + ("" if explicit else " (the default)") + f", but {why}; such cases count 24×7",
                    ("slas", name, "calendar") if explicit else ("slas", name), key=True, hint=hint)
        for tg in c.targets:
            if tg.calendar == "channel":
                rep.add("CP607", f"target {tg.text!r} of SLA {name!r} counts in the case channel's calendar, "
                        f"but {why}", ("slas", name, "targets", tg.index, "calendar"), hint=hint)
    for sname, st in pb.stages.items():
        for t in st.after:
            if t.calendar == "channel" or (t.calendar is None and t.delay.business_days):
                rep.add("CP607", f"timer `in: {t.delay.text}` counts in the case channel's calendar, but {why}",
                        ("stages", sname, "after", t.index, "calendar" if t.calendar else "in"), hint=hint)
    for a, path in _all_actions(pb):
        if a.delay is not None and (a.calendar == "channel" or (a.calendar is None and a.delay.business_days)):
            rep.add("CP607", f"delayed action `in: {a.delay.text}` counts in the case channel's calendar, but {why}",
                    (*path, "calendar" if a.calendar else "in"), hint=hint)


def _all_actions(pb: Playbook) -> Iterator[tuple[ActionDef, Path]]:
    """Every action of the playbook with its node path."""
    def handlers(base: Path, on: Mapping[str, tuple[HandlerDef, ...]]) -> Iterator[tuple[ActionDef, Path]]:
        for ev, hs in on.items():
            for i, h in enumerate(hs):
                hp: Path = (*base, ev, i) if len(hs) > 1 else (*base, ev)
                for j, a in enumerate(h.do):
                    yield a, (*hp, "do", j)

    for name, st in pb.stages.items():
        sp: Path = ("stages", name)
        for key, acts in (("enter", st.enter), ("exit", st.exit)):
            for j, a in enumerate(acts):
                yield a, (*sp, key, j)
        yield from handlers((*sp, "on"), st.on)
        for t in st.after:
            for j, a in enumerate(t.do):
                yield a, (*sp, "after", t.index, "do", j)
        for s in st.every:
            for j, a in enumerate(s.do):
                yield a, (*sp, "every", s.index, "do", j)
    yield from handlers(("on",), pb.on)
    for cname, c in pb.clocks.items():
        for th in c.thresholds:
            for j, a in enumerate(th.do):
                yield a, ("slas", cname, "thresholds", th.index, "do", j)


# ---------------------------------------------------------------------------------------------
# CP505 / CP606 thresholds


_DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(s: str) -> float:
    h, m = s.strip().split(":")
    return int(h) * 3600 + int(m) * 60


def typical_open_day(pb: Playbook, calendar: str) -> float | None:
    """Open seconds of an average open weekday of ``calendar`` (``always``: 24 h), read from its
    weekly hours; ``None`` when they cannot be read."""
    if calendar == "always":
        return 86400.0
    spec = pb.spec.calendars.get(calendar)
    if spec is None:
        return None
    per_day = dict.fromkeys(_DAY_KEYS, 0.0)
    try:
        for key, intervals in spec.hours.items():
            days: list[str] = []
            for part in key.lower().replace(" ", "").split(","):
                if "-" in part:
                    d1, d2 = part.split("-")
                    i, j = _DAY_KEYS.index(d1[:3]), _DAY_KEYS.index(d2[:3])
                    days.extend(_DAY_KEYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8))
                else:
                    days.append(_DAY_KEYS[_DAY_KEYS.index(part[:3])])
            for iv in intervals:
                a_s, b_s = iv.split("-")
                a, b = _parse_hhmm(a_s), _parse_hhmm(b_s)
                length = b - a if b > a else b + 86400 - a
                for d in days:
                    per_day[d] += length
    except (ValueError, AttributeError):
        return None
    open_days = [v for v in per_day.values() if v > 0]
    return sum(open_days) / len(open_days) if open_days else None


def target_seconds(pb: Playbook, c: ClockDef) -> list[tuple[str, float]]:
    """Each target of ``c`` in business seconds (``bd`` estimated with the calendar's typical
    open day, once per possible calendar), with its text."""
    out: list[tuple[str, float]] = []
    for t in c.targets:
        if t.seconds is not None:
            out.append((t.text, t.seconds))
            continue
        cal = t.calendar or c.calendar
        cals = sorted({ch.calendar for ch in pb.channels.values()} | {"always"}) if cal == "channel" else [cal]
        for name in cals:
            day = typical_open_day(pb, name)
            if day is not None and t.business_days is not None:
                out.append((f"{t.text} (about {_fmt(t.business_days * day)} in {name})", t.business_days * day))
    return out


def _fmt(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{sec}s" if sec else ""]
    return "".join(parts) or "0s"


def check_thresholds(g: Graph, rep: Reporter) -> None:
    """CP505: thresholds not in firing order for some target; CP606: a threshold more than ten
    times every target of its clock (an offset over ten times the largest target, or a share
    over 1000 %)."""
    pb = g.pb
    for name, c in pb.clocks.items():
        targets = target_seconds(pb, c)
        reported: set[int] = set()
        for i in range(1, len(c.thresholds)):
            a, b = c.thresholds[i - 1], c.thresholds[i]
            for text, secs in targets:
                if b.at(secs) < a.at(secs) and b.index not in reported:
                    reported.add(b.index)
                    rep.add("CP505", f"threshold {b.text!r} of SLA {name!r} fires before the one above it "
                            f"({a.text!r}) for target {text}", ("slas", name, "thresholds", b.index, "at"),
                            hint="list thresholds in the order they fire, for every target")
        if not targets:
            continue
        text, largest = max(targets, key=lambda t: t[1])
        for th in c.thresholds:
            far = (th.offset is not None and abs(th.offset) > MAX_THRESHOLD_FACTOR * largest) or \
                  (th.percent is not None and th.percent > MAX_THRESHOLD_FACTOR * 100)
            if far:
                rep.add("CP606", f"threshold {th.text!r} of SLA {name!r} is more than ten times even its "
                        f"largest target, {text}", ("slas", name, "thresholds", th.index, "at"),
                        hint="a threshold is a share of the target (75%) or an offset close to it (+1h)")


# ---------------------------------------------------------------------------------------------
# CP508 cycles of signal handlers


def is_signal(name: str, pb: Playbook) -> bool:
    """Engine-raised signal names (SPEC §4.3–4.6)."""
    if name in ("tier.exhausted", "capped", "ignored"):
        return True
    parts = name.split(".")
    return len(parts) == 3 and parts[0] == "sla" and parts[1] in pb.clocks


_ENDS = ("met", "missed", "cancelled", "breached")


class _Effects:
    """The signals that a handler's immediate effects can raise (delayed actions raise theirs
    later, in another step, so they cannot close a chain)."""

    def __init__(self, pb: Playbook) -> None:
        self.pb = pb
        self.capped = any(ch.cap_max is not None for ch in pb.channels.values())

    def of_actions(self, actions: Iterable[ActionDef]) -> tuple[set[str], set[str]]:
        """(signals, names changed) of the immediate actions."""
        sig: set[str] = set()
        changed: set[str] = set()
        for a in actions:
            if a.delay is not None:
                continue
            if a.verb == "escalate":
                changed.add("tier")
                if a.arg == "next":
                    sig.add("tier.exhausted")
            elif a.verb == "assign":
                changed.add("tier")
            elif a.verb == "send" and self.capped:
                ch = a.params.get("channel")
                if ch is None or (ch in self.pb.channels and self.pb.channels[ch].cap_max is not None):
                    sig.add("capped")
            elif a.verb == "set":
                changed.update(s.field for s in a.sets)
                changed.update(a.arg if isinstance(a.arg, Mapping) else ())
        return sig, changed

    def of_change(self, changed: set[str]) -> set[str]:
        """Signals that a change of the names in ``changed`` can raise through clock conditions."""
        if not changed:
            return set()
        seg_names: set[str] = set()
        for _, e in self.pb.segments:
            seg_names |= set(e.names)
        if changed & seg_names:
            changed = changed | {"segment", "segments"}
        out: set[str] = set()
        for n, c in self.pb.clocks.items():
            def reads(e: Expr | None) -> bool:
                return e is not None and bool(set(e.names) & changed)

            if c.start and reads(c.start.when):
                out.add(f"sla.{n}.started")
            if c.stop and reads(c.stop.when):
                out.update((f"sla.{n}.met", f"sla.{n}.missed"))
            if c.cancel and reads(c.cancel.when):
                out.add(f"sla.{n}.cancelled")
            if c.reset and reads(c.reset.when):
                out.update((f"sla.{n}.reset", f"sla.{n}.started", f"sla.{n}.met", f"sla.{n}.missed"))
            if c.pause and reads(c.pause.when):
                out.update((f"sla.{n}.paused", f"sla.{n}.resumed"))
            if any(reads(t.when) for t in c.targets):
                out.update((f"sla.{n}.breached", f"sla.{n}.warning", f"sla.{n}.overdue"))
                for th in c.thresholds:
                    s, _ = self.of_actions(th.do)
                    out |= s
        return out

    def of_triggers(self, event: str | None, entered: frozenset[str], left: str | None) -> set[str]:
        """Signals the clock triggers can raise for ``event`` / entering ``entered`` / leaving ``left``."""
        out: set[str] = set()
        final = any(self.pb.stages[s].final for s in entered if s in self.pb.stages)
        for n, c in self.pb.clocks.items():
            if _fires(c.start, event, entered):
                out.add(f"sla.{n}.started")
            if _fires(c.stop, event, entered):
                out.update((f"sla.{n}.met", f"sla.{n}.missed"))
            if _fires(c.cancel, event, entered):
                out.add(f"sla.{n}.cancelled")
            if _fires(c.reset, event, entered):
                out.update((f"sla.{n}.reset", f"sla.{n}.started", f"sla.{n}.met", f"sla.{n}.missed"))
            if c.pause is not None and ((entered & c.pause.stages) or (left is not None and left in c.pause.stages)):
                out.update((f"sla.{n}.paused", f"sla.{n}.resumed"))
            if final:
                out.update(f"sla.{n}.{e}" for e in _ENDS)
        return out


def check_signal_cycles(g: Graph, rep: Reporter) -> None:
    """CP508: signal handlers whose immediate effects can raise, through a chain of signals, the
    signal they handle — in the stage the case is in when each signal is handled."""
    pb = g.pb
    eff = _Effects(pb)
    signals = sorted(e for e in g.events if is_signal(e, pb))
    if not signals:
        return
    nodes = [(s, st) for s in signals for st in g.stage_names if not g.is_final(st)]
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {n: set() for n in nodes}
    where: dict[tuple[str, str], Path] = {}
    for sig, stage in nodes:
        outs: set[tuple[str, str]] = set()
        # clock triggers that listen to the signal itself
        outs |= {(t, stage) for t in eff.of_triggers(sig, frozenset(), None)}
        for o in g.outcomes(stage, sig):
            h = o.handler
            if h is None:
                continue
            where.setdefault((sig, stage), o.path)
            raised, changed = eff.of_actions(h.do)
            changed |= {s.field for s in h.sets}
            after = stage
            if h.to is not None and h.to in pb.stages:
                after = h.to
                st_old, st_new = pb.stages[stage], pb.stages[h.to]
                r1, c1 = eff.of_actions(st_old.exit)
                r2, c2 = eff.of_actions(st_new.enter)
                raised |= r1 | r2
                changed |= c1 | c2 | {"stage"}
                raised |= eff.of_triggers(None, frozenset({h.to}), stage)
            raised |= eff.of_change(changed)
            if pb.stages[after].final:
                continue  # the case has ended; nothing handles what follows
            outs |= {(t, after) for t in raised if is_signal(t, pb)}
        edges[(sig, stage)] = {n for n in outs if n in edges}
    for comp in _sccs(nodes, edges):
        if len(comp) == 1 and comp[0] not in edges[comp[0]]:
            continue
        handled = sorted(n for n in comp if n in where)
        if not handled:
            continue
        first = handled[0]
        chain = " → ".join(f"{s} (in {st})" for s, st in _cycle_from(first, set(comp), edges))
        rep.add("CP508", f"signal handlers form a cycle: {chain}", where[first], key=True,
                hint="break the loop: handle the signal in one stage only, or make one step delayed (`in:`)")


def _sccs(nodes: list[tuple[str, str]], edges: Mapping[tuple[str, str], set[tuple[str, str]]]
          ) -> list[list[tuple[str, str]]]:
    """Strongly connected components (iterative Tarjan)."""
    index: dict[tuple[str, str], int] = {}
    low: dict[tuple[str, str], int] = {}
    on: set[tuple[str, str]] = set()
    stack: list[tuple[str, str]] = []
    out: list[list[tuple[str, str]]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[tuple[str, str], Iterator[tuple[str, str]]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp: list[tuple[str, str]] = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def _cycle_from(start: tuple[str, str], comp: set[tuple[str, str]],
                edges: Mapping[tuple[str, str], set[tuple[str, str]]]) -> list[tuple[str, str]]:
    """A shortest cycle through ``start`` inside its component (for the message)."""
    prev: dict[tuple[str, str], tuple[str, str]] = {}
    q: deque[tuple[str, str]] = deque([start])
    seen = {start}
    while q:
        v = q.popleft()
        for w in sorted(edges[v]):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w in comp and w not in seen:
                seen.add(w)
                prev[w] = v
                q.append(w)
    return [start, start]  # pragma: no cover - a component always has a cycle


# ---------------------------------------------------------------------------------------------
# CP605 segments


def check_segments(pb: Playbook, rep: Reporter) -> None:
    """CP605: segments listed after one whose condition is always true never match first."""
    catch_all: str | None = None
    for name, e in pb.segments:
        if catch_all is not None:
            rep.add("CP605", f"segment {name!r} comes after {catch_all!r}, whose condition is always true, "
                    "so it is never the case's `segment`", ("segments", name), key=True,
                    hint=f"move {catch_all!r} to the end of `segments`")
        elif always(e):
            catch_all = name
