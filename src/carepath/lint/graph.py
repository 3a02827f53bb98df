"""The stage graph of a compiled playbook and the checks that walk it (SPEC §5): CP503 no way out,
CP601 unreachable stage, CP609 timer that can never fire, CP602 forgotten customer, CP603/CP604
clocks that never start or stop.

The analyses are exact over one model of the engine (documented in full in
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.compile.ir import ClockDef, HandlerDef, Playbook, StageDef, TriggerDef
    from carepath.durations import Duration
    from carepath.expr.compiler import Expr
    from carepath.loading.source import Reporter

__all__ = [
    "ClockAnalysis",
    "Graph",
    "Outcome",
    "always",
    "check_clock_start_stop",
    "check_forgotten",
    "check_timers",
    "check_unreachable",
    "check_way_out",
    "clock_analysis",
    "fires",
    "never",
    "reachable_stages",
]

Path = tuple[str | int, ...]

#: Joint clock-status analysis gives up (and falls back to one clock at a time) past this many states.
MAX_PRODUCT_STATES = 100_000

#: A clock's status in the analysis: no cycle yet, a cycle open, the last cycle ended.
PENDING, OPEN, ENDED = "P", "R", "E"
_NOT_CONST = object()


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
        for base, hs in (
            (("stages", stage, "on", event), st.on.get(event, ())),
            (("on", event), () if st.final else self.pb.on.get(event, ())),
        ):
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


def reachable_stages(graph: Graph) -> set[str]:
    """Stages reachable from the initial stage over handler and timer moves."""
    seen = {graph.pb.initial}
    todo = [graph.pb.initial]
    while todo:
        s = todo.pop()
        if graph.is_final(s):
            continue
        for t, _ in graph.moves(s):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def check_way_out(graph: Graph, rep: Reporter) -> set[str]:
    """CP503: a non-final stage with no way out at all. Returns the stages reported."""
    bad: set[str] = set()
    for name in graph.stage_names:
        if graph.is_final(name) or graph.has_exit:
            continue
        if any(t != name for t, _ in graph.moves(name)):
            continue
        bad.add(name)
        rep.add(
            "CP503",
            f"stage {name!r} is not final and has no way out: no handler or timer moves the case "
            "to another stage, and the playbook has no `exit`",
            ("stages", name),
            key=True,
            hint="add a transition (`on: {case.closed: closed}`, `after: [{in: 7d, to: closed}]`), "
            "or mark the stage `final: true`",
        )
    return bad


def check_unreachable(graph: Graph, reach: set[str], rep: Reporter) -> None:
    """CP601: a stage no path from the initial stage leads to."""
    for name in graph.stage_names:
        if name not in reach:
            rep.add(
                "CP601",
                f"stage {name!r} is unreachable from the initial stage {graph.pb.initial!r}",
                ("stages", name),
                key=True,
                hint="add a transition to it (`to: " + name + "`), or remove it",
            )


def outlasts(later: Duration, earlier: Duration) -> bool:
    """Whether ``later`` is at least ``earlier`` in any calendar: no part of it (days, business
    days, seconds) is shorter."""
    return (
        later.days >= earlier.days
        and later.business_days >= earlier.business_days
        and later.seconds >= earlier.seconds
    )


def check_timers(graph: Graph, reach: set[str], rep: Reporter) -> None:
    """CP609: a timer of a reachable stage that can never fire: its ``when`` is a constant false,
    or an earlier timer that always moves the case (cancelling this one) is due no later."""
    for name in graph.stage_names:
        if name not in reach:
            continue  # CP601 says so
        if graph.stage(name).final:
            _final_stage_timers(name, graph.stage(name), rep)
            continue
        timers = graph.stage(name).after
        for t in timers:
            path: Path = ("stages", name, "after", t.index)
            if never(t.when):
                rep.add(
                    "CP609",
                    f"timer `in: {t.delay.text}` of stage {name!r} never fires: its `when` is "
                    "always false",
                    (*path, "when"),
                    hint="remove the timer, or fix its condition",
                )
                continue
            for first in timers[: timers.index(t)]:
                moves = first.to is not None and always(first.when) and first.window is None
                if moves and first.calendar == t.calendar and outlasts(t.delay, first.delay):
                    rep.add(
                        "CP609",
                        f"timer `in: {t.delay.text}` of stage {name!r} never fires: the timer "
                        f"`in: {first.delay.text}` before it always moves the case to {first.to!r} first",
                        (*path, "in"),
                        hint="shorten this timer, or give the earlier one a `when`",
                    )
                    break


def _final_stage_timers(name: str, st: StageDef, rep: Reporter) -> None:
    """CP609 in a final stage (SPEC §4.4: it ends the case, so it has no timers): its timers,
    schedules and delayed entry actions without ``keep: true`` never fire."""
    why = f"stage {name!r} is final: entering it ends the case"
    for t in st.after:
        rep.add(
            "CP609",
            f"timer `in: {t.delay.text}` of stage {name!r} never fires: {why}",
            ("stages", name, "after", t.index, "in"),
            hint="move the timer to the stage before, or make this stage non-final",
        )
    for j, a in enumerate(st.enter):
        if a.delay is not None and not a.keep:
            rep.add(
                "CP609",
                f"delayed action `in: {a.delay.text}` of stage {name!r} never fires: {why}, "
                "which drops its pending actions",
                ("stages", name, "enter", j, "in"),
                hint="add `keep: true` to deliver it after the case ended",
            )
    for sc in st.every:
        rep.add(
            "CP609",
            f"schedule `{sc.cron}` of stage {name!r} never fires: {why}",
            ("stages", name, "every", sc.index, "cron"),
            hint="move the schedule to a stage the case waits in",
        )


@dataclass
class ClockAnalysis:
    """What the product exploration found: resting clock statuses by stage, and per clock whether
    a cycle can open and whether ``stop`` can ever end one."""

    clocks: tuple[str, ...]
    resting: dict[str, set[tuple[str, ...]]]  # stage → clock-status vectors a case can rest with
    can_open: dict[str, bool]
    can_stop: dict[str, bool]
    joint: bool = True


def fires(t: TriggerDef | None, event: str | None, entered: frozenset[str]) -> bool:
    if t is None:
        return False
    return (event is not None and event in t.on) or bool(t.enter & entered)


def clock_step(
    c: ClockDef, st: str, event: str | None, entered: frozenset[str]
) -> tuple[str, bool]:
    """One step of a clock (SPEC §4.3 precedence: stop, cancel, reset, start). Returns the new
    status and whether ``stop`` ended an open cycle."""
    stopped = False
    if st == OPEN and fires(c.stop, event, entered):
        st, stopped = ENDED, True
    if st == OPEN and fires(c.cancel, event, entered):
        st = ENDED
    if fires(c.reset, event, entered):
        st = OPEN
    if fires(c.start, event, entered) and (st == PENDING or (st == ENDED and c.repeat)):
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


def clock_analysis(graph: Graph) -> ClockAnalysis:
    """Explore every (stage, clock statuses) a case can be in; jointly for all clocks, or one
    clock at a time when the joint space is too large."""
    names = tuple(graph.pb.clocks)
    res = _explore(graph, names)
    if res is not None:
        return res
    resting: dict[str, set[tuple[str, ...]]] = {}
    can_open: dict[str, bool] = {}
    can_stop: dict[str, bool] = {}
    per: list[ClockAnalysis] = []
    for n in names:
        r = _explore(graph, (n,), limit=None)
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


def _explore(  # noqa: C901 - the state-space walk is one loop; its branches are the transitions' kinds
    graph: Graph, names: tuple[str, ...], limit: int | None = MAX_PRODUCT_STATES
) -> ClockAnalysis | None:
    pb = graph.pb
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

    def step(
        stage: str, vec: tuple[str, ...], event: str | None, entered: frozenset[str], to: str
    ) -> None:
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
        for o in graph.outcomes(init, ev):
            entered = frozenset({init} | ({o.to} if o.to is not None else set()))
            step(init, pending, ev, entered, o.to if o.to is not None else init)

    while todo:
        if limit is not None and len(seen) > limit:
            return None
        stage, vec = todo.popleft()
        if pb.stages[stage].final:
            continue
        for ev in sorted(graph.events):
            if ev in pb.exit_on and pb.exit_when is None:
                continue  # the case ends
            for o in graph.outcomes(stage, ev):
                step(
                    stage,
                    vec,
                    ev,
                    frozenset({o.to}) if o.to is not None else frozenset(),
                    o.to if o.to is not None else stage,
                )
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


def check_forgotten(
    graph: Graph, reach: set[str], analysis: ClockAnalysis, skip: set[str], rep: Reporter
) -> None:
    """CP602: a reachable non-final stage where a case can wait forever with nothing open."""
    pb = graph.pb
    clocks = [pb.clocks[n] for n in analysis.clocks]
    for name in graph.stage_names:
        st = pb.stages[name]
        if st.final or name not in reach or name in skip or keeps_moving(st):
            continue
        bad: tuple[str, ...] | None = None
        for vec in sorted(analysis.resting.get(name, set())):
            if not any(
                s == OPEN and not may_pause(c, name) for c, s in zip(clocks, vec, strict=True)
            ):
                bad = vec
                break
        if bad is None:
            continue  # a clock is sure to run in every way a case can rest here, or there is none
        why = _forgotten_reason(clocks, bad, name)
        one_shot = bool(st.after) or any(a.delay is not None for a in st.enter)
        rep.add(
            "CP602",
            f"a case can wait forever in stage {name!r}: {why}"
            + ("; its timers and delayed actions fire only once" if one_shot else ""),
            ("stages", name),
            key=True,
            hint="add a timer that moves the case on (`after: [{in: 7d, to: closed}]`), a schedule "
            "(`every`), or an SLA clock that runs in this stage",
        )


def _forgotten_reason(clocks: list[ClockDef], vec: tuple[str, ...], stage: str) -> str:
    if not clocks:
        return "no timer moves it on, no schedule, and the playbook has no SLA clock"
    parts = []
    for c, s in zip(clocks, vec, strict=True):
        if s == OPEN:
            parts.append(
                f"{c.name} is paused here"
                if c.pause and stage in c.pause.stages
                else f"{c.name} can be paused here"
            )
        elif s == PENDING:
            parts.append(f"{c.name} may not have started")
        else:
            parts.append(f"{c.name} may have ended")
    return (
        "no timer moves it on, no schedule, and no SLA clock is sure to run ("
        + ", ".join(parts)
        + ")"
    )


def check_clock_start_stop(graph: Graph, analysis: ClockAnalysis, rep: Reporter) -> None:
    """CP603: a clock whose cycle can never open; CP604: a clock that can open but that ``stop``
    can never end (its cycles only end cancelled, or never)."""
    for name, c in graph.pb.clocks.items():
        if not analysis.can_open.get(name, False):
            rep.add(
                "CP603",
                f"SLA {name!r} can never start: its `start` fires on no reachable path",
                ("slas", name, "start"),
                key=True,
                hint="start it on an event (`start: {on: case.opened}`) or on entering a reachable stage",
            )
        elif not analysis.can_stop.get(name, False):
            if c.stop is None:
                msg = f"SLA {name!r} has no `stop`, so its cycles never end met or missed"
                path: Path = ("slas", name)
            else:
                msg = f"SLA {name!r} can never stop: its `stop` fires on no reachable path while a cycle is open"
                path = ("slas", name, "stop")
            rep.add(
                "CP604",
                msg,
                path,
                key=True,
                hint="stop it on an event (`stop: {on: agent.replied}`) or on entering a reachable stage",
            )
