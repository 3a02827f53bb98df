"""Replay an event log through the engine: clock records and the case behind each event.

This is what ``carepath report`` (and its what-if ``--compare``) measure: every event is applied
in ``at`` order (stable for equal instants) by a small in-memory runtime loop:

* wake-ups due **strictly before** an event fire before it (the engine's ``handle`` does this
  for the event's own case; cases are independent, so every other case is advanced lazily, the
  next time one of its events arrives — the result is the same as advancing all open cases in
  global time order, at a fraction of the cost);
* an event that opens a case (``start.on`` and ``start.when``) starts one when its key has none,
  or when ``start.reentry`` allows a new one (``after_exit``: the previous case has ended, even by
  a timer just before this event; ``always``: even while one is open) and ``min_interval`` has
  passed since the previous case opened; otherwise it is handled by the open case like any event;
* an event for a key with no case is counted but changes nothing;
* the replay stops at the last event: at the end every open case is advanced to just before the
  last event's instant, and nothing further (open clock cycles stay open and are not measured).

For each event the replay knows its case's identity and the case's state **after** the event was
applied, so metrics can group "by the case's values at the time of the event": it hands them to a
:class:`FactSink` (the metrics' collector) as it goes, and :func:`replay` also keeps them per event
(``keep_events=False`` does not). :func:`replay_log` streams a JSONL file in ``at`` order through
one or more playbooks at once (the what-if decodes the log once) without keeping any per-event
list. Every clock cycle that ended (``sla.<name>.met|missed|cancelled``) is kept as a
:class:`ClockFact` with the case's values at that instant.

A replay from a runtime store (:func:`replay_store`) has no events: it reads the clock history kept
in each state (the last 20 cycles per clock) with the case's current values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

from carepath._instants import dt, zone
from carepath._instants import round_micros as _r
from carepath._native.raw import (
    case_values,
    ctx_key,
    raw_advancer,
    raw_handler,
    raw_outputs,
    raw_starter,
)
from carepath.drivers.cycles import ClockFact, ClockFacts, Ctx
from carepath.drivers.eventfile import PROGRESS_LINES, BadEvent, ProgressHook, iter_plain_events
from carepath.engine.batch_gc import batch_gc
from carepath.errors import EventLogError
from carepath.events import Event, event_from_line
from carepath.state import CaseState

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.allocate import AgentFacts
    from carepath.runtime.allocation import Roster

__all__ = [
    "ClockFact",
    "ClockFacts",
    "Ctx",
    "EndedCase",
    "EventLogError",
    "FactSink",
    "Replay",
    "batch_gc",
    "event_from_line",
    "read_events",
    "replay",
    "replay_log",
    "replay_store",
]


class FactSink(Protocol):
    """What a replay hands every event whose type is in ``types`` to, as it goes (the metrics'
    collector): the event, its case identity and the case's state right after it (None when the
    event reached no case). A sink lets a replay keep no per-event lists at all.

    A sink may also have ``case_fields``: the frozenset of case fields it reads of a case's
    ``data``; a streaming replay then keeps only those of a case that has ended for good
    (:class:`EndedCase`). Without it an ended case keeps all its data. Worker processes
    (:mod:`carepath.drivers.shard`) send what a sink saw by its ``export()`` and put it together
    by ``merge(parts)``; the what-if of targets (:mod:`carepath.drivers.whatif`) takes cases
    out of an export by ``without(whole, part)``. A sink's ``caseless_together`` (a frozenset)
    names the types whose events without a case it must see all of (the others may be spread
    over the workers; without it, they all go to one). A sink's ``ctx_of(state)`` gives the
    grouping values the replay files its clock facts with (else :func:`ctx_of`)."""

    types: frozenset[str]

    def __call__(self, event: Event, case: str | None, state: CaseState | None) -> None:
        """Take one event."""


def _case_fields(sink: FactSink | None) -> frozenset[str] | None:
    """The case fields ``sink`` reads of a case's ``data`` (its optional ``case_fields``; None:
    it may read any)."""
    fields = getattr(sink, "case_fields", None)
    return fields if isinstance(fields, frozenset) else None


@dataclass
class Replay:
    """The result of :func:`replay`: clock facts, cases, and (unless a streaming replay dropped them)
    the events in ``at`` order with their case and the case's state after each."""

    playbook: Playbook
    events: list[Event] = field(default_factory=list)
    """The events in ``at`` order (empty when the replay did not keep them: see ``kept``)."""
    case_ids: list[str | None] = field(default_factory=list)
    """Per event: the replay's case identity (``key`` or ``key#n`` for the n-th re-entry), or None."""
    after: list[CaseState | None] = field(default_factory=list)
    """Per event: the case's state after the event (None when it reached no case)."""
    records: ClockFacts = field(default=None)  # type: ignore[assignment]
    """Finished clock cycles, in order of their stop instant (in columns: :class:`ClockFacts`)."""
    opened: list[tuple[float, str, Ctx]] = field(default_factory=list)
    """Cases opened: (instant, case identity, values after the opening event)."""
    breaches: list[tuple[float, str, Ctx]] = field(default_factory=list)
    """``sla.<name>.breached`` signals: (instant, clock, case values)."""
    actions: Counter[str] = field(default_factory=Counter)
    """Actions emitted, by type (``escalate``, ``send``, ``survey``…)."""
    rejected: list[tuple[Event, str]] = field(default_factory=list)
    """Events the engine rejected (invalid payloads, out of order), with the message."""
    states: dict[str, CaseState] = field(default_factory=dict)
    """The final state of every case, by identity. A streaming replay (no events kept, no roster)
    of a playbook whose cases never re-open (``reentry: never``) keeps an ended case as an
    :class:`EndedCase`: the values the metrics read, not its clocks (memory: a report holds every
    case of the log)."""
    first_s: float | None = None
    last_s: float | None = None
    from_store: bool = False
    n_events: int = 0
    """How many events were replayed (duplicates not included)."""
    duplicates: int = 0
    """Events skipped because their id was seen before (SPEC §7: a known id is a duplicate)."""
    bad: list[BadEvent] = field(default_factory=list)
    """Lines of the log that are not events (skipped, as ``carepath run`` skips them)."""
    kept: bool = True
    """Whether ``events``, ``case_ids`` and ``after`` hold every event."""
    facts: FactSink | None = None
    """The sink that saw the events during the replay (the metrics' collector), if any."""
    n_cases: int | None = None
    """How many cases, when ``states`` was not kept (a replay merged from worker processes)."""
    agents: AgentFacts | None = None
    """With a roster (``--roster``): what each agent was given and did (SPEC §10)."""
    reached: set[str] | None = None
    """With watched targets (the what-if, :mod:`carepath.drivers.whatif`): the keys of the cases
    whose clocks selected one of them — in a what-if of targets, the cases the second playbook
    replayed (the others' facts are this replay's)."""

    def __post_init__(self) -> None:
        if self.records is None:
            self.records = ClockFacts(zone(self.playbook.timezone))

    @property
    def contexts(self) -> list[Ctx | None]:
        """Per event: the case's values after the event (None when it reached no case)."""
        return [None if st is None else ctx_of(st) for st in self.after]

    @property
    def data(self) -> list[Mapping[str, Any] | None]:
        """Per event: the case data after the event (None when it reached no case)."""
        return [None if st is None else st.data for st in self.after]

    @property
    def cases(self) -> int:
        """How many cases the replay opened (or the store holds)."""
        return len(self.states) if self.n_cases is None else self.n_cases

    @property
    def escalations(self) -> int:
        """``escalate`` actions emitted."""
        return self.actions.get("escalate", 0)


class EndedCase:
    """What a streaming replay keeps of a case that has ended for good: its identity, stage and
    values (``data``, ``tier``, ``segment``, ``segments``: what :func:`ctx_of` and the metrics'
    collector read of the case an event reaches), not its clocks, history or pending items. The
    router reads ``ended`` and ``case`` of it, and ignores every later event of its key.

    ``fields`` (when the sink says which case fields it reads: :attr:`FactSink.case_fields`)
    narrows ``data`` to those fields; ``shared`` (a dict the replay keeps) lets equal values —
    the narrowed data, stage, tier and segments — be one object for every ended case, so a million
    ended cases hold no copies of them."""

    __slots__ = ("case", "data", "segment", "segments", "stage", "tier")
    ended = True
    next_wakeup_s = None

    def __init__(
        self,
        state: CaseState,
        fields: frozenset[str] | None = None,
        case: str | None = None,
        shared: dict[Any, Any] | None = None,
    ) -> None:
        data, tier, segment, segments = case_values(state)
        self.case = case if case is not None and case == state.case else state.case
        if shared is None:
            self.data, self.tier, self.segment, self.segments = data, tier, segment, segments
            self.stage = state.stage
            return
        if fields is not None:
            items = tuple((k, data[k]) for k in sorted(fields) if k in data)
            try:
                data = shared.setdefault(items, MappingProxyType(dict(items)))
            except TypeError:  # a value that cannot be a key (a list): this case's own copy
                data = MappingProxyType(dict(items))
        self.data = data
        self.tier = shared.setdefault(tier, tier)
        self.segment = shared.setdefault(segment, segment)
        self.segments = shared.setdefault(segments, segments)
        self.stage = shared.setdefault(state.stage, state.stage)


def ctx_of(state: CaseState) -> Ctx:
    """The grouping values of ``state``."""
    segment, ch, tier, stage = ctx_key(state)
    return Ctx(segment, None if ch is None else str(ch), tier, stage)


# -- reading ------------------------------------------------------------------------------------
def read_events(source: str | Path | IO[str] | IO[bytes]) -> list[Event]:
    """The events of a log (JSONL, or a YAML list by extension; ``-`` or a stream for a stream),
    read by the one reader (:mod:`carepath.drivers.eventfile`). Strict: the first line that is not
    an event raises :class:`EventLogError` with its location (:func:`replay_log` skips them)."""
    bad: list[BadEvent] = []
    with batch_gc():
        events = []
        for event in iter_plain_events(source, bad):
            if bad:
                break
            events.append(event)
    if bad:
        raise EventLogError(f"{_name(source)}:{bad[0].line}: {bad[0].message}")
    return events


def _name(source: object) -> str:
    return (
        str(source) if isinstance(source, str | Path) else str(getattr(source, "name", "<stream>"))
    )


def _events(
    source: str | Path | IO[str] | IO[bytes],
    bad: list[BadEvent],
    progress: ProgressHook | None = None,
) -> Iterator[Event]:
    return iter_plain_events(source, bad, progress)


# -- replay -------------------------------------------------------------------------------------
_END_SUFFIXES = (".met", ".missed", ".cancelled")


class _Unsorted(Exception):
    """A streamed log is not in ``at`` order."""


def replay(
    playbook: Playbook,
    events: Iterable[Event],
    *,
    sink: FactSink | None = None,
    keep_events: bool = True,
    roster: Roster = (),
) -> Replay:
    """Replay ``events`` (any order: sorted stably by ``at``) through a fresh engine.

    ``sink`` sees every event whose type it asks for as the replay goes; ``keep_events=False``
    keeps no per-event lists (``events``, ``case_ids``, ``after`` stay empty; ``n_events`` counts);
    ``roster`` allocates ``assign`` actions with a strategy to its agents (:mod:`.allocate`).
    """
    evs = sorted(events, key=lambda e: e._ts)
    with batch_gc():
        feed, finish = _replayer(playbook, sink, keep_events, roster=roster)
        for e in evs:
            feed(e)
        return finish()


def replay_log(
    playbooks: list[Playbook],
    source: str | Path | IO[str],
    sink: Callable[[Playbook], FactSink] | None = None,
    roster: Roster = (),
    progress: ProgressHook | None = None,
) -> list[Replay]:
    """Replay one event log under each playbook (the what-if of ``carepath report --compare``),
    decoding it once and keeping no per-event lists.

    A JSONL file already in ``at`` order (the usual case) is streamed: each event is applied to every
    playbook as it is read, so memory grows only with the cases and the ids seen, not with the
    events. A file out of order is read again, whole, and sorted (stably); standard input and YAML
    logs are read whole. The rules are those of ``carepath run``: a line that is not an event is
    skipped and listed in each replay's ``bad``; an event whose id was seen before is a duplicate
    (counted in ``duplicates``, not replayed). ``sink(playbook)`` makes each replay's
    :class:`FactSink` (such as ``carepath.metrics.Collector``). For a log without bad lines the
    results equal ``replay(pb, read_events(source), sink=sink(pb), keep_events=False)`` for each
    playbook (``roster`` as in :func:`replay`). ``progress`` is told how far the reading is
    (:data:`~carepath.drivers.eventfile.ProgressHook`; a log read again starts from 0).
    """

    def sinks() -> list[FactSink | None]:  # fresh ones for every attempt: a sink keeps what it saw
        return [None if sink is None else sink(pb) for pb in playbooks]

    bad: list[BadEvent] = []
    if (
        isinstance(source, str | Path)
        and str(source) != "-"
        and Path(source).suffix not in (".yaml", ".yml")
    ):
        with batch_gc():
            try:
                return _with_bad(
                    _replay_sorted(playbooks, sinks(), _events(source, bad, progress), roster),
                    bad,
                )
            except _Unsorted:
                bad.clear()
    read = [0]
    hook = None if progress is None else _remember(progress, read)
    with batch_gc():
        events = list(_events(source, bad, hook))
    events.sort(key=lambda e: e._ts)
    feed = iter(events) if progress is None else _second_pass(events, progress, read[0])
    with batch_gc():
        return _with_bad(_replay_sorted(playbooks, sinks(), feed, roster), bad)


def _remember(progress: ProgressHook, read: list[int]) -> ProgressHook:
    def hook(position: int, count: int) -> None:
        read[0] = position
        progress(position, count)

    return hook


def _second_pass(events: list[Event], progress: ProgressHook, size: int) -> Iterator[Event]:
    """The sorted events of a log read whole, telling ``progress`` how far their replay is as a
    second pass over the same bytes (the position goes back to 0, then up to ``size``)."""
    n = len(events)
    every = PROGRESS_LINES
    for i, e in enumerate(events, 1):
        yield e
        if i % every == 0:
            progress(size * i // n, i)
    progress(size, n)


def _with_bad(replays: list[Replay], bad: list[BadEvent]) -> list[Replay]:
    for rp in replays:
        rp.bad = list(bad)
    return replays


def _replay_sorted(
    playbooks: list[Playbook],
    sinks: list[FactSink | None],
    events: Iterator[Event],
    roster: Roster = (),
) -> list[Replay]:
    pairs = [
        _replayer(pb, sink, False, roster=roster) for pb, sink in zip(playbooks, sinks, strict=True)
    ]
    feeds = [f for f, _ in pairs]
    last = -float("inf")
    if len(feeds) == 1:
        feed = feeds[0]
        for e in events:
            t = e._ts
            if t < last:
                raise _Unsorted
            last = t
            feed(e)
    else:
        for e in events:
            t = e._ts
            if t < last:
                raise _Unsorted
            last = t
            for feed in feeds:
                feed(e)
    return [finish() for _, finish in pairs]


#: Added to the key of a case's first event for what ``finish`` does to the case: after every event.
_FINISHING = 1 << 100


def event_key(ts: float, position: int) -> int:
    """The merge key of what an event does: its instant (µs) and its position in the file, as one
    integer (the order of one replay of the log sorted stably by instant). A position below 2^32."""
    return (round(ts * 1_000_000) << 32) | position


@dataclass
class Keys:
    """Where each fact of a replay came from, so that replays of disjoint sets of cases (worker
    processes, :mod:`carepath.drivers.shard`) merge into the order one replay of every case has:
    ``now`` is the :func:`event_key` of the event being fed, and while ``finish`` advances a case,
    that of the first event that reached the case plus ``2^100``; each list holds the ``now`` of
    each fact of the same list of the :class:`Replay`."""

    now: int = 0
    records: list[int] = field(default_factory=list)
    breaches: list[int] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    first: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    """Every id the replay met (applied, ignored, duplicated or rejected)."""
    last: float | None = None
    """The instant of the last event replayed so far."""
    repeated: list[tuple[str, str | None]] = field(default_factory=list)
    """The duplicates skipped: their id and ``case``, in order."""


def _replayer(  # noqa: C901 - the replay loop is one closure so its hot path reads locals; measured in bench_report
    playbook: Playbook,
    sink: FactSink | None,
    keep: bool,
    keys: Keys | None = None,
    *,
    roster: Roster = (),
    watch: Mapping[str, Iterable[int]] | None = None,
    live: list[Replay] | None = None,
) -> tuple[Callable[[Event], None], Callable[..., Replay]]:
    """``feed(event)`` for events in ``at`` order, and ``finish()`` → the :class:`Replay`;
    ``keys`` (when given) is filled as the facts are (see :class:`Keys`). ``finish(until,
    keep_states=False)`` counts the cases (``n_cases``) and drops their states. ``watch``
    (target indexes by clock) fills the replay's ``reached``; ``live`` (a list) receives the
    :class:`Replay` being filled, to read before ``finish``."""
    from carepath.engine.engine import Engine
    from carepath.engine.router import route as _route

    engine = Engine(playbook, trace=False)
    tz = zone(playbook.timezone)
    start = playbook.start
    fast_key = start.key_text.strip().lstrip("=").strip() == "event.case"
    start_on = start.on
    reentry = start.reentry
    mentioned = engine.plan.mentioned  # what engine.mentions reads (a set), without the call
    advance = engine.advance
    handle = engine.handle
    out = Replay(playbook, kept=keep, facts=sink)
    if watch is not None:
        out.reached = engine.watch_targets(watch)
    if live is not None:
        live.append(out)
    states = out.states
    current: dict[str, str] = {}  # key → case identity
    generation: dict[str, int] = {}
    records = out.records
    breaches = out.breaches
    actions = out.actions
    sink_types = sink.types if sink is not None else frozenset()
    events, case_ids, after = out.events, out.case_ids, out.after
    # an ended case whose key cannot open another is kept small (see Replay.states)
    compact = not keep and not roster and reentry == "never"
    kept_fields = _case_fields(sink)
    shared: dict[Any, Any] = {}  # one object per distinct value of the ended cases

    def ended(st: CaseState, cid: str) -> CaseState:  # see EndedCase
        return EndedCase(st, kept_fields, cid, shared)  # type: ignore[return-value]

    count = 0
    seen: set[str] = set()  # the ids applied or ignored so far
    if keys is not None:
        keys.seen = seen  # the same set, read as the replay goes (the what-if's checks)
    ctxs: dict[Ctx, Ctx] = {}  # one Ctx object per distinct value (memory, and cheap to send)

    def own_ctx(st: CaseState) -> Ctx:
        c = ctx_of(st)
        return ctxs.setdefault(c, c)

    # the sink's, when it has one: the state of an event's facts is the one the sink then reads
    sink_ctx = getattr(sink, "ctx_of", None)
    ctx: Callable[[CaseState], Ctx] = sink_ctx if callable(sink_ctx) else own_ctx

    first_s: float | None = None
    last_s: float | None = None

    def take_raw(rsigs: list[tuple[Any, ...]], st: CaseState, cid: str) -> None:
        """A native step's signals as the core returned them: ended cycles and breaches."""
        c = None
        for ty, at_s, sla, _cycle, rec, _data in rsigs:
            if rec is not None and ty.endswith(_END_SUFFIXES):
                c = c or ctx(st)
                name = sla or ty.split(".")[1]
                if rec.__class__ is tuple:  # the numbers the record is built from
                    # the core's instants are whole microseconds (its r()): no datetime between
                    records.append_fields(name, rec, _r(rec[2]), cid, c)
                else:
                    records.append(ClockFact(name, rec, _r(rec.stopped.timestamp()), cid, c))
                if keys is not None:
                    keys.records.append(keys.now)
            elif ty.endswith(".breached") and ty.startswith("sla."):
                c = c or ctx(st)
                breaches.append((_r(at_s), sla or ty.split(".")[1], c))
                if keys is not None:
                    keys.breaches.append(keys.now)

    def absorb_raw(
        st: CaseState, acts: list[tuple[Any, ...]], rsigs: list[tuple[Any, ...]], cid: str
    ) -> CaseState:
        """A native step's state, actions and signals as the core returned them."""
        if rsigs:
            take_raw(rsigs, st, cid)
        for a in acts:
            actions[a[1]] += 1
        if keys is not None and cid not in states:
            keys.first[cid] = keys.now
        states[cid] = ended(st, cid) if compact and st.ended else st
        return st

    def absorb(step: Any, cid: str) -> CaseState:
        st: CaseState = step.state
        if alloc is not None:
            alloc.actions(cid, step.actions)
        raw = raw_outputs(step)
        if raw is not None:  # a native step: read as the core returned it, nothing built twice
            return absorb_raw(st, raw[0], raw[1], cid)
        sigs = step.signals
        if sigs:
            c = None
            for s in sigs:
                ty = s.type
                if s.record is not None and ty.endswith(_END_SUFFIXES):
                    c = c or ctx(st)
                    rec = s.record
                    records.append(
                        ClockFact(
                            s.sla or ty.split(".")[1], rec, _r(rec.stopped.timestamp()), cid, c
                        )
                    )
                    if keys is not None:
                        keys.records.append(keys.now)
                elif ty.endswith(".breached") and ty.startswith("sla."):
                    c = c or ctx(st)
                    breaches.append((_r(s.at.timestamp()), s.sla or ty.split(".")[1], c))
                    if keys is not None:
                        keys.breaches.append(keys.now)
        for a in step.actions:
            actions[a.type] += 1
        if keys is not None and cid not in states:
            keys.first[cid] = keys.now
        states[cid] = ended(st, cid) if compact and st.ended else st
        return st

    def routed(
        e: Event, key: str, st: CaseState | None, cid: str | None, ts: float, et: str
    ) -> tuple[bool, CaseState | None, str | None]:
        """The general way of one event: through the router (opening, re-entry, rejection)."""
        rejected = False
        woken = None
        if (
            st is not None
            and not st.ended
            and reentry == "after_exit"
            and st.next_wakeup_s is not None
            and st.next_wakeup_s < ts
            and et in start_on
            and engine.opens(e)
        ):
            # the runtime fires wake-ups due strictly before an event first: a timer may have
            # ended the case, and then this event opens a new one
            woken = advance(st, dt(ts - 1e-6, tz))
        r = _route(engine, st if woken is None else woken.state, e)  # the policy the runtimes share
        if r.status == "rejected":  # moves no time: the wake-ups above are dropped
            rejected = True
            out.rejected.append((e, f"{r.reason}: {r.message}"))
            if keys is not None:
                keys.rejected.append(keys.now)
        elif woken is not None:
            st = absorb(woken, cid)  # type: ignore[arg-type]
        if r.status == "applied" and r.step is not None:
            if r.opened:
                cid = new_case(key)
                st = absorb(r.step, cid)
                note_opened(ts, cid, st)
            else:
                st = absorb(r.step, cid)  # type: ignore[arg-type]
        return rejected, st, cid

    def new_case(key: str) -> str:
        """The identity of the next case of ``key`` (``key``, then ``key#1``…), now its current."""
        n = generation.get(key, 0)
        generation[key] = n + 1
        current[key] = cid = key if n == 0 else f"{key}#{n}"
        return cid

    def note_opened(ts: float, cid: str, st: CaseState) -> None:
        out.opened.append((ts, cid, ctx(st)))
        if keys is not None:
            keys.opened.append(keys.now)

    alloc = None
    # a native engine's usual step without its Step object (an allocator reads the actions)
    fast = raw_handler(engine) if not roster else None
    fast_start = raw_starter(engine) if not roster else None
    native_advance = raw_advancer(engine)
    if roster:
        from carepath.drivers.allocate import ReplayAllocator

        def apply(cid: str, ev: Event) -> CaseState | None:
            r = _route(engine, states[cid], ev)
            return absorb(r.step, cid) if r.status == "applied" and r.step is not None else None

        def wake(cid: str, t: float) -> None:
            absorb(advance(states[cid], dt(t - 1e-6, tz)), cid)

        alloc = ReplayAllocator(playbook, roster, states, apply, wake)
        out.agents = alloc.facts

    def feed(e: Event) -> None:  # noqa: C901 - the per-event hot path: de-duplication, ordering and routing inline, by design
        nonlocal count, first_s, last_s
        eid = e.id
        if eid in seen:  # a known id is a duplicate whatever its content, as in the runtime
            out.duplicates += 1
            if keys is not None:
                keys.repeated.append((eid, e.case))
            return
        ts = e._ts
        count += 1
        et = e.type
        if fast_key:
            key = e.case
        else:
            try:
                key = engine.case_key(e)
            except Exception:  # a key expression that cannot be evaluated: no case
                key = None
        cid: str | None = None
        st: CaseState | None = None
        rejected = False
        if key is not None:
            cid = current.get(key)
            st = states.get(cid) if cid is not None else None
            if st is not None and et not in mentioned:
                # a type the playbook never mentions: nothing to route, but the event still sees the
                # case as it is at its instant (wake-ups due strictly before it fire)
                if not st.ended and st.next_wakeup_s is not None and st.next_wakeup_s < ts:
                    st = absorb(advance(st, dt(ts - 1e-6, tz)), cid)  # type: ignore[arg-type]
            else:
                step = raw = None
                opening = False
                if st is not None and not st.ended and et not in start_on:
                    # the usual event, for an open case and opening none: the router's decision
                    # inline (a step that raises goes to the router, which rejects it the same way)
                    try:
                        raw = None if fast is None else fast(st, e)
                        if raw is None:
                            step = handle(st, e)
                    except Exception:
                        step = raw = None
                elif st is None and fast_start is not None and et in start_on:
                    # a new key's opening event: the router's decision inline when the core
                    # opens the case alone (one that raises goes to the router, which decides)
                    try:
                        raw = fast_start(e)
                    except Exception:
                        raw = None
                    if raw is not None:
                        cid = new_case(key)
                        opening = True
                if raw is not None:  # a native step, which is never an ignored one
                    st = absorb_raw(raw[0], raw[1], raw[2], cid)  # type: ignore[arg-type]
                    if opening:
                        note_opened(ts, cid, st)  # type: ignore[arg-type]
                elif step is None:
                    rejected, st, cid = routed(e, key, st, cid, ts, et)
                elif step.state is not st or not any(s.type == "ignored" for s in step.signals):
                    st = absorb(step, cid)  # type: ignore[arg-type]
            if st is None:
                cid = None
        if alloc is not None and not rejected:  # the replay's poll: after every event
            alloc.observe(e, cid, st)
            if alloc.wanted or alloc.queue:
                alloc.poll(ts)
        if not rejected:  # a rejected event's id stays unseen, and it moves no time
            seen.add(eid)
            if first_s is None:
                first_s = ts
            last_s = ts
            if keys is not None:
                keys.last = ts
        if keep:
            events.append(e)
            case_ids.append(cid)
            after.append(st)
        if et in sink_types:
            sink(e, cid, st)  # type: ignore[misc]

    def finish(until: float | None = None, *, keep_states: bool = True) -> Replay:
        nonlocal compact
        out.n_events, out.first_s, out.last_s = count, first_s, last_s
        items: list[Any] = list(states.items())
        if not keep_states:  # counted, then dropped as they are advanced: none made small
            out.n_cases = len(states)
            compact = False
            states.clear()
        # The replay stops at the last event (``until``: the last of a log whose other cases
        # another replay has): fire only what was due strictly before it.
        stop = last_s if until is None else until
        if stop is not None:
            end = dt(stop - 1e-6, tz)
            end_s = _r(end.timestamp())  # as the engine reads ``end``
            first = None if keys is None else keys.first  # read before absorb writes it
            if native_advance is not None and not keep_states:
                # counted, not kept: the core advances every case due in one call, and a new
                # state is wrapped only for a signal's values (3 % of them in a report)
                counts, signalled, general = native_advance[2]([x[1] for x in items], end_s, stop)
                actions.update(counts)
                todo = sorted([*signalled, *((i, None) for i in general)], key=lambda x: x[0])
                for i, got in todo:
                    cid, st = items[i]
                    if first is not None:
                        keys.now = _FINISHING + first[cid]  # type: ignore[union-attr]
                    if got is None:
                        absorb(advance(st, end), cid)
                        del states[cid]
                    else:
                        take_raw(got[2], native_advance[1](got), cid)
            else:
                for i, (cid, st) in enumerate(items):
                    if not st.ended and st.next_wakeup_s is not None and st.next_wakeup_s < stop:
                        if first is not None:
                            keys.now = _FINISHING + first[cid]  # type: ignore[union-attr]
                        got = None if native_advance is None else native_advance[0](st, end_s)
                        if got is None:
                            absorb(advance(st, end), cid)
                        else:
                            absorb_raw(native_advance[1](got), got[1], got[2], cid)  # type: ignore[index]
                        if not keep_states:
                            del states[cid]
                    items[i] = None  # the state goes as soon as it is done with
        del items
        if keys is None:
            records.sort_by_stop()
            breaches.sort(key=lambda b: b[0])
        else:  # the keys follow their facts
            keys.records = [keys.records[i] for i in records.sort_by_stop()]
            order = sorted(range(len(breaches)), key=lambda i: breaches[i][0])
            breaches[:] = [breaches[i] for i in order]
            keys.breaches = [keys.breaches[i] for i in order]
            seen.update(e.id for e, _ in out.rejected)  # the replay is over: no copy
            keys.seen = seen
        return out

    return feed, finish


def replay_store(playbook: Playbook, states: Iterable[CaseState]) -> Replay:
    """A replay-like view of a runtime store's cases: clock history (the last 20 cycles per
    clock and case) with each case's current values; no events."""
    out = Replay(playbook, from_store=True)
    lo: float | None = None
    hi: float | None = None
    for st in states:
        if st.playbook != playbook.id:
            continue
        cid = st.case if st.case not in out.states else f"{st.case}#{len(out.states)}"
        out.states[cid] = st
        c = ctx_of(st)
        out.opened.append((st.opened_s, cid, c))
        lo = st.opened_s if lo is None else min(lo, st.opened_s)
        hi = st.now_s if hi is None else max(hi, st.now_s)
        for name, clock in st.clocks.items():
            for rec in clock.history:
                out.records.append(ClockFact(name, rec, _r(rec.stopped.timestamp()), cid, c))
                if rec.met is False:
                    out.breaches.append((_r(rec.stopped.timestamp()), name, c))
            if clock.is_open and clock.breached and clock.breach_s is not None:
                out.breaches.append((clock.breach_s, name, c))
    out.first_s, out.last_s = lo, hi
    out.records.sort_by_stop()
    out.breaches.sort(key=lambda b: b[0])
    out.opened.sort(key=lambda o: o[0])
    return out
