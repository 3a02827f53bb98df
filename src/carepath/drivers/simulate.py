"""An in-memory, multi-case driver of the engine: what ``carepath simulate``, ``carepath test``
and :mod:`carepath.testing.harness` run on.

:class:`Simulator` holds one :class:`~carepath.state.CaseState` per case key. ``feed(event)``
routes the event to its case (``engine.case_key``), opens a case when ``engine.opens`` says the
event does, and — before applying it — wakes every open case whose next wake-up is *strictly
before* the event's instant, in global time order, one :class:`SimStep` per wake-up. Wake-ups
due exactly at the event's instant fire after it (SPEC §4.2, the same rule as
``carepath run --clock simulated``). ``advance_to(t)`` wakes every case up to ``t`` inclusive.

Re-entry (``start.reentry`` / ``min_interval``, SPEC §4.6): an opening event for a key whose case
has ended opens a new case (``previous`` keeps the action sequence) unless ``reentry: never`` or
``min_interval`` has not passed since the previous case opened; with ``reentry: always`` an
opening event opens a new case even while one is open. Otherwise the event goes to the open case.

Events come from JSONL (one event per line) or YAML (a list of events, or ``{events: [...]}``);
:func:`read_events` (the one reader, :mod:`carepath.drivers.eventfile`) returns them with their
line numbers and reports bad lines without stopping.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carepath._terminal import term_safe as safe
from carepath.drivers.eventfile import BadEvent, EventLine, parse_yaml_events, read_events
from carepath.engine.router import route
from carepath.errors import CaseError, EventOutOfOrder, InvalidEvent, PlaybookMismatch
from carepath.events import Event
from carepath.state import CaseState, Signal

_REJECTIONS: dict[str, type[CaseError]] = {
    "out_of_order": EventOutOfOrder,
    "invalid": InvalidEvent,
    "playbook_mismatch": PlaybookMismatch,
}

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.allocate import ReplayAllocator
    from carepath.engine.engine import Engine, Step
    from carepath.runtime.allocation import Roster

__all__ = [
    "BadEvent",
    "EventLine",
    "SimStep",
    "Simulator",
    "Timeline",
    "describe_action",
    "format_span",
    "parse_events",
    "parse_instant",
    "read_events",
]


def parse_events(text: str, *, yaml: bool = False) -> tuple[list[EventLine], list[BadEvent]]:
    """Parse JSONL (default) or YAML event text; see :func:`read_events`."""
    if yaml:
        return parse_yaml_events(text)
    return read_events(io.StringIO(text))


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimStep:
    """One step of a simulation.

    ``kind`` is ``event`` (an event applied to a case; ``opened`` says it opened the case),
    ``wakeup`` (``advance`` fired due items of ``case`` at ``at``), or ``ignored`` (the event
    reached no case: no key, no open case and it does not open one, or re-entry refused);
    ``previous`` is the case's state before the step (``None`` for a new case).
    """

    kind: str
    at: datetime
    case: str | None
    event: Event | None
    step: Step | None
    previous: CaseState | None = None
    opened: bool = False
    reason: str | None = None

    @property
    def state(self) -> CaseState | None:
        """The case's state after the step."""
        return None if self.step is None else self.step.state

    @property
    def signals(self) -> list[Signal]:
        """The signals of the step (an ``ignored`` signal for an ignored event)."""
        if self.step is not None:
            return self.step.signals
        data = {
            "event": self.event.id if self.event else None,
            "type": self.event.type if self.event else None,
            "reason": self.reason,
        }
        return [Signal("ignored", self.at, data=data)]

    def to_dict(self) -> dict[str, Any]:
        """The ``--format jsonl`` object: ``{event, state, actions, signals, deadlines}`` plus
        ``at`` (the step's instant) and ``case``; a wake-up has ``event: null``."""
        s = self.step
        return {
            "event": None if self.event is None else self.event.to_dict(),
            "at": self.at.isoformat(),
            "case": self.case,
            "state": None if s is None else s.state.to_dict(),
            "actions": [] if s is None else [a.to_dict() for a in s.actions],
            "signals": [x.to_dict() for x in self.signals],
            "deadlines": [] if s is None else [d.to_dict() for d in s.deadlines],
        }


@dataclass
class Simulator:
    """Drives many cases of one playbook in memory (see the module docstring).

    Engine errors (:class:`~carepath.errors.CaseError`: an invalid payload, an event out of
    order…) propagate from :meth:`feed`; the simulator's cases are left as they were.
    """

    playbook: Playbook
    engine: Engine = field(init=False)
    cases: dict[str, CaseState] = field(default_factory=dict)
    now: datetime | None = None
    roster: Roster = ()
    """Agents to allocate ``assign`` actions with a strategy to (SPEC §10; ``--roster``)."""
    allocator: ReplayAllocator | None = field(init=False, default=None)
    _made: list[SimStep] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        from carepath.engine.engine import Engine

        self.engine = Engine(self.playbook)
        if self.roster:
            from carepath.drivers.allocate import ReplayAllocator

            self.allocator = ReplayAllocator(
                self.playbook, self.roster, self.cases, self._assigned, self._wake_one
            )

    def _assigned(self, key: str, ev: Event) -> CaseState | None:
        cur = self.cases[key]
        r = route(self.engine, cur, ev)
        if r.status != "applied" or r.step is None:
            return None
        self.cases[key] = r.step.state
        self._made.append(SimStep("event", ev.at, key, ev, r.step, previous=cur))
        if self.allocator is not None:
            self.allocator.actions(key, r.step.actions)
        return r.step.state

    def _wake_one(self, key: str, t: float) -> None:
        cur = self.cases[key]
        when = cur.next_wakeup
        if when is not None:
            step = self.engine.advance(cur, when)
            self.cases[key] = step.state
            self._made.append(SimStep("wakeup", when, key, None, step, previous=cur))

    def _allocate(self, steps: list[SimStep], event: Event, key: str | None) -> None:
        """After an applied event: allocate (SPEC §10), the steps it made appended."""
        alloc = self.allocator
        if alloc is None:
            return
        alloc.observe(event, key, self.cases.get(key) if key is not None else None)
        if alloc.wanted or alloc.queue:
            alloc.poll(event._ts)
            steps.extend(self._made)
            self._made.clear()

    # -- public ---------------------------------------------------------------------------------
    def feed(self, event: Event) -> list[SimStep]:
        """Wake cases due strictly before ``event.at``, then apply ``event``; the steps, in order.

        A rejected event (an unknown case included) moves no time: the wake-ups it would have
        fired are undone, and only its ``ignored`` step (or the error) comes back."""
        engine = self.engine
        key = engine.case_key(event)
        steps = self._wake(event.at, inclusive=False)
        if key is None:
            self._tick(event.at)
            steps.append(
                SimStep("ignored", event.at, None, event, None, reason="event has no case key")
            )
            return steps
        cur = self.cases.get(key)
        r = route(engine, cur, event)  # the same decision as the runtimes make
        if r.status == "rejected":
            self._undo(steps)
            if r.reason != "unknown_case":
                raise _REJECTIONS.get(r.reason or "", CaseError)(
                    r.message, event=event, state=self.cases.get(key)
                )
            return [SimStep("ignored", event.at, key, event, None, previous=None, reason=r.message)]
        self._tick(event.at)
        if r.step is None or r.status != "applied":
            reason = r.message or f"{event.type} ignored ({r.reason})"
            steps.append(
                SimStep("ignored", event.at, key, event, None, previous=cur, reason=reason)
            )
            return steps
        self.cases[key] = r.step.state
        steps.append(SimStep("event", event.at, key, event, r.step, previous=cur, opened=r.opened))
        if self.allocator is not None:
            for s in steps:
                if s.step is not None and s.case is not None:
                    self.allocator.actions(s.case, s.step.actions)
            self._allocate(steps, event, key)
        return steps

    def advance_to(self, t: datetime) -> list[SimStep]:
        """Wake every case with a wake-up at or before ``t``; the steps, in time order."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"advance_to needs an aware datetime, got {t.isoformat()}")
        steps = self._wake(t, inclusive=True)
        self._tick(t)
        return steps

    def run(self, events: Iterable[Event], until: datetime | None = None) -> Iterator[SimStep]:
        """Feed every event, then advance to ``until``; engine errors propagate."""
        for e in events:
            yield from self.feed(e)
        if until is not None:
            yield from self.advance_to(until)

    # -- internals ------------------------------------------------------------------------------
    def _undo(self, steps: list[SimStep]) -> None:
        """Put back the cases the wake-up ``steps`` advanced (latest first)."""
        for s in reversed(steps):
            if s.case is not None and s.previous is not None:
                self.cases[s.case] = s.previous

    def _tick(self, t: datetime) -> None:
        if self.now is None or t > self.now:
            self.now = t

    def _wake(self, t: datetime, *, inclusive: bool) -> list[SimStep]:
        """Advance cases one wake-up instant at a time, earliest first (ties: by case key)."""
        steps: list[SimStep] = []
        limit = t.timestamp()
        guard = 0
        while True:
            best: tuple[float, str] | None = None
            for key, st in self.cases.items():
                wake = st.next_wakeup_s
                if st.ended or wake is None:
                    continue
                if (wake < limit - 1e-7 or (inclusive and wake <= limit + 1e-7)) and (
                    best is None or (wake, key) < best
                ):
                    best = (wake, key)
            if best is None:
                return steps
            key = best[1]
            st = self.cases[key]
            when = st.next_wakeup
            assert when is not None
            step = self.engine.advance(st, when)
            guard += 1
            if step.state == st or guard > 1_000_000:
                return steps  # nothing moved: never loop forever
            self.cases[key] = step.state
            steps.append(SimStep("wakeup", when, key, None, step, previous=st))


# ---------------------------------------------------------------------------------------------
# The timeline table (``carepath simulate --format table``)
_STYLES = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "blue": "\x1b[34m",
    "magenta": "\x1b[35m",
    "cyan": "\x1b[36m",
}
_RESET = "\x1b[0m"


def format_span(seconds: float) -> str:
    """A compact duration in hours at most (business time has no days): ``45s``, ``53m``,
    ``1h07m``, ``28h30m``; negative with a ``-``."""
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if h:
        return f"{sign}{h}h{m:02d}m" if m else f"{sign}{h}h"
    if m:
        return f"{sign}{m}m{s:02d}s" if s else f"{sign}{m}m"
    return f"{sign}{s}s"


def describe_action(a: Any) -> str:
    """One readable line for an action (``send ack_email via email``…)."""
    p = dict(a.params)
    t = a.type
    if t == "notify":
        head = f"notify {p.pop('to', '')}"
    elif t == "send":
        head = f"send {p.pop('template', '')}"
        ch = p.pop("channel", None)
        if ch:
            head += f" via {ch}"
    elif t == "survey":
        head = f"survey {p.pop('survey', '')}"
        ch = p.pop("channel", None)
        if ch:
            head += f" via {ch}"
    elif t in ("assign", "escalate"):
        tier, old = p.pop("tier", None), p.pop("from", None)
        head = f"{t} {old} → {tier}" if t == "escalate" else f"assign {tier}"
    elif t == "set":
        vals = p.pop("values", {}) or {}
        head = "set " + ", ".join(f"{k}={v}" for k, v in dict(vals).items())
    elif t == "task":
        head = f"task {p.pop('task', '')}"
    elif t == "emit":
        head = f"emit {p.pop('name', '')}"
    else:
        head = t
    msg = p.pop("message", None)
    extra = ", ".join(f"{k}={v}" for k, v in p.items())
    if msg:
        head += f' "{msg}"'
    if extra:
        head += f" ({extra})"
    return head


class Timeline:
    """Renders :class:`SimStep` objects as a readable, optionally coloured, timeline."""

    def __init__(self, playbook: Playbook, *, color: bool = False, case_width: int = 8) -> None:
        from carepath._instants import zone

        self.playbook = playbook
        self.tz = zone(playbook.timezone)
        self.color = color
        self.case_width = case_width
        self.last_day: str | None = None

    def c(self, text: str, style: str) -> str:
        """``text`` in a style when colour is on."""
        if not self.color or not style:
            return text
        return "".join(_STYLES[s] for s in style.split()) + text + _RESET

    def time(self, t: datetime | None) -> str:
        """An instant in the playbook timezone: ``2027-02-01 09:12:00``."""
        if t is None:
            return "—"
        lt = t.astimezone(self.tz)
        return lt.strftime("%Y-%m-%d %H:%M:%S")

    def header(self, n_events: int, path: str) -> str:
        """The first lines: playbook, events file and timezone."""
        pb = self.playbook
        return (
            self.c(
                f"{pb.id} {pb.version} — {n_events} event(s) from {safe(path)}; times in {pb.timezone}",
                "bold",
            )
            + "\n"
        )

    def step(self, s: SimStep) -> str:
        """The lines of one step."""
        w = self.case_width
        case = safe(s.case or "—").ljust(
            w
        )  # ids, types and data come from the events: issue 15 #24
        pad = " " * (19 + 2 + w + 2)
        if s.kind == "ignored":
            ev = s.event
            what = safe(f"{ev.type} [{ev.id}]") if ev else "?"
            return (
                f"{self.c(self.time(s.at), 'dim')}  {case}  {self.c(what, 'dim')}  "
                f"{self.c('ignored: ' + safe(s.reason or ''), 'dim')}\n"
            )
        assert s.step is not None
        st = s.step.state
        prev = s.previous
        if s.kind == "wakeup":
            what = self.c("⏰ wake-up", "magenta")
        else:
            assert s.event is not None
            what = self.c(safe(s.event.type), "bold") + self.c(safe(f" [{s.event.id}]"), "dim")
        if s.opened or prev is None:
            stage = self.c(st.stage, "bold green") + self.c(" (opened)", "dim")
        elif prev.stage != st.stage:
            stage = f"{prev.stage} → " + self.c(st.stage, "bold green")
        else:
            stage = st.stage
        if st.ended and (prev is None or not prev.ended or s.opened):
            stage += self.c(" (ended)", "bold")
        lines = [f"{self.c(self.time(s.at), 'cyan')}  {case}  {what}  {stage}"]
        if (prev is None or s.opened or prev.tier != st.tier) and st.tier is not None:
            lines.append(
                pad
                + f"tier      {self.c(safe(st.tier), 'bold')}"
                + (f" (was {prev.tier})" if prev is not None and not s.opened and prev.tier else "")
            )
        if (prev is None or s.opened or prev.segment != st.segment) and st.segment is not None:
            lines.append(pad + f"segment   {safe(st.segment)}")
        for name, clk in st.clocks.items():
            old = None if (prev is None or s.opened) else prev.clocks.get(name)
            if old is not None and (old.status, old.due_s, old.breached, old.cycle) == (
                clk.status,
                clk.due_s,
                clk.breached,
                clk.cycle,
            ):
                continue
            if old is None and clk.status == "pending":
                continue
            lines.append(pad + "clock     " + self.clock_text(name, clk))
        for a in s.step.actions:
            lines.append(
                pad
                + "action    "
                + self.c(safe(describe_action(a)), "blue")
                + self.c(f"  {a.source}", "dim")
            )
        sigs = [x.type for x in s.step.signals]
        if sigs:
            lines.append(
                pad + "signals   " + ", ".join(self.c(t, self.signal_style(t)) for t in sigs)
            )
        return "\n".join(lines) + "\n"

    def clock_text(self, name: str, clk: Any) -> str:
        """``first_response  running  due 2027-02-01 11:12`` and the like."""
        status = clk.status
        style = {"met": "green", "breached": "red", "cancelled": "dim", "paused": "yellow"}.get(
            status, ""
        )
        if clk.breached and status in ("running", "paused"):
            style = "red"
        text = f"{name:<16} " + self.c(status, style) + " " * max(1, 10 - len(status))
        cyc = f" #{clk.cycle}" if clk.cycle > 1 else ""
        if status in ("running", "paused"):
            if clk.breached:
                text += self.c(f"breached at {self.time(clk.due)}  ", "red")
            elif clk.due is not None:
                text += f"due {self.time(clk.due)}  "
            if clk.target is not None:
                text += self.c(
                    f"(target {format_span(clk.target.total_seconds())}, "
                    f"elapsed {format_span(clk.elapsed_s)})",
                    "dim",
                )
        elif clk.history:
            rec = clk.history[-1]
            text += self.c(f"after {format_span(rec.elapsed.total_seconds())}", "dim")
            if rec.target is not None:
                text += self.c(f" of {format_span(rec.target.total_seconds())}", "dim")
            if rec.failed_by is not None and rec.failed_by.total_seconds() > 0:
                text += self.c(f", late by {format_span(rec.failed_by.total_seconds())}", "red")
        return text.rstrip() + cyc

    @staticmethod
    def signal_style(t: str) -> str:
        """Colour of a signal by its kind."""
        if t.endswith((".breached", ".missed", ".overdue")) or t == "tier.exhausted":
            return "red"
        if t.endswith(".warning") or t == "capped":
            return "yellow"
        if t.endswith(".met"):
            return "green"
        return "dim"

    def summary(self, cases: Mapping[str, CaseState], n_steps: int, n_bad: int) -> str:
        """The closing lines: every case's stage, tier and clocks."""
        out = [
            self.c(
                f"\n{len(cases)} case(s), {n_steps} step(s)"
                + (f", {n_bad} bad event(s)" if n_bad else ""),
                "bold",
            )
        ]
        w = self.case_width
        for key in sorted(cases):
            st = cases[key]
            clocks = "  ".join(
                f"{n}={c.status}" + (" (breached)" if c.breached and c.status != "breached" else "")
                for n, c in st.clocks.items()
                if c.status != "pending"
            )
            out.append(
                f"  {safe(key).ljust(w)}  {st.stage:<16} {safe(st.tier or '—'):<4}  {clocks}"
            )
        return "\n".join(out) + "\n"


def parse_instant(text: object, tz: Any) -> datetime:
    """An instant from an ISO 8601 string (or a ``datetime``/``date``); one without an offset —
    ``2027-02-01 09:00`` or a bare date — is local time in ``tz``. Raises ``ValueError``."""
    from datetime import date

    if isinstance(text, datetime):
        d = text
    elif isinstance(text, date):
        d = datetime(text.year, text.month, text.day)
    elif isinstance(text, str) and text.strip():
        s = text.strip()
        try:
            d = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an ISO 8601 instant (e.g. 2027-02-01T09:00:00+07:00)"
            ) from None
    else:
        raise ValueError(f"{text!r} is not an instant (e.g. 2027-02-01T09:00:00+07:00)")
    if d.tzinfo is None or d.utcoffset() is None:
        d = d.replace(tzinfo=tz)
    return d
