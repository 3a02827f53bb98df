"""The runtime (SPEC §7): routing, entry and re-entry, idempotency, rejection, wake-ups and the
outbox, on any :class:`~carepath.runtime.store.Store`. All the logic is here; stores only keep rows.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepath._instants import dt, zone
from carepath.errors import CaseError
from carepath.events import Event, Line, decode_event, event_from_line
from carepath.runtime._allocator import Allocating
from carepath.runtime._delivery import ActionHandler, BatchHandler, Delivery
from carepath.runtime._tally import Tally
from carepath.runtime.erasure import register_pii
from carepath.runtime.store import Rejected, Store, Tx
from carepath.state import Action, CaseState, Signal

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.engine.engine import Engine
    from carepath.runtime.allocation import Roster

__all__ = ["ActionHandler", "Runtime", "SubmitResult"]

log = logging.getLogger("carepath.runtime")

EventInput = Event | Mapping[str, Any] | str | bytes | Line
Cache = MutableMapping[tuple[str, str], "CaseState | None"]

_US = 1e-6


class SubmitResult:
    """What :meth:`Runtime.submit` did with one event.

    ``status``: ``applied`` | ``duplicate`` | ``rejected`` | ``ignored``; ``reason`` (rejected
    only): ``out_of_order`` | ``invalid`` | ``unknown_case`` | ``playbook_mismatch``; ``cases``:
    the new states of the cases the event was applied to; ``actions`` and ``signals``: what the
    steps produced. Immutable; ``actions`` and ``signals`` are built on first read (a runtime fed
    a file never reads them: the store writes the outbox from the steps).
    """

    __slots__ = (
        "_actions",
        "_lazy",
        "_signals",
        "_steps",
        "cases",
        "event_id",
        "message",
        "reason",
        "status",
    )
    __match_args__ = ("status", "reason", "message", "cases", "actions", "signals", "event_id")

    status: str
    reason: str | None
    message: str
    cases: list[CaseState]
    event_id: str | None
    _actions: list[Action]
    _signals: list[Signal]
    _steps: tuple[Any, ...]
    _lazy: int  # 1: the steps' actions not read yet; 2: their signals not read yet

    def __init__(
        self,
        status: str,
        reason: str | None = None,
        message: str = "",
        cases: list[CaseState] | None = None,
        actions: list[Action] | None = None,
        signals: list[Signal] | None = None,
        event_id: str | None = None,
        *,
        steps: Sequence[Any] = (),
    ) -> None:
        """``steps``: whose actions and signals come first, before ``actions`` and ``signals``,
        when those are read."""
        _set(self, "status", status)
        _set(self, "reason", reason)
        _set(self, "message", message)
        _set(self, "cases", [] if cases is None else cases)
        _set(self, "_actions", [] if actions is None else actions)
        _set(self, "event_id", event_id)
        _set(self, "_signals", [] if signals is None else signals)
        _set(self, "_steps", tuple(steps))
        _set(self, "_lazy", 3 if steps else 0)

    @property
    def actions(self) -> list[Action]:
        """The actions the steps produced, in order."""
        if self._lazy & 1:
            built = [x for step in self._steps for x in step.actions]
            built.extend(self._actions)
            _set(self, "_actions", built)
            self._built(1)
        return self._actions

    @property
    def signals(self) -> list[Signal]:
        """The signals the steps raised, in order."""
        if self._lazy & 2:
            built = [x for step in self._steps for x in step.signals]
            built.extend(self._signals)
            _set(self, "_signals", built)
            self._built(2)
        return self._signals

    def _built(self, part: int) -> None:
        lazy = self._lazy & ~part
        _set(self, "_lazy", lazy)
        if not lazy:
            _set(self, "_steps", ())

    @property
    def ok(self) -> bool:
        """Not rejected."""
        return self.status != "rejected"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SubmitResult is immutable: cannot set {name!r}")

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubmitResult):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__match_args__)
        return f"SubmitResult({inner})"


_set = object.__setattr__


class _Reject(Exception):
    def __init__(self, reason: str, message: str, cases: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.cases = tuple(cases)


def _as_dict(raw: EventInput) -> dict[str, Any]:
    """The event as received, for the ``rejected`` record: a JSON object, or ``{"raw": text}``;
    storable in every store (see :func:`_storable`)."""
    return _storable(_received(raw))  # type: ignore[no-any-return]


def _received(raw: EventInput) -> dict[str, Any]:
    if isinstance(raw, Line):
        return {"raw": raw.text} if raw.problem is not None else _received(raw.text)
    if isinstance(raw, Event):
        return raw.to_dict()
    if isinstance(raw, Mapping):
        try:
            return json.loads(json.dumps(dict(raw), default=str))  # type: ignore[no-any-return]
        except (TypeError, ValueError):
            return {"raw": repr(raw)}
    if not isinstance(raw, str | bytes):  # a decoded JSON value that is not an object
        try:
            text = json.dumps(raw, default=str)
        except (TypeError, ValueError):
            text = repr(raw)
        return {"raw": text[:_RAW_KEPT] + "…" if len(text) > _RAW_KEPT else text}
    try:  # a line that decodes is recorded as the object it holds
        return _received(decode_event(raw))
    except ValueError:
        text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
        return {"raw": text[:_RAW_KEPT] + "…" if len(text) > _RAW_KEPT else text}


#: How much of a line that is not JSON the ``rejected`` record keeps (a valid line is at most
#: MAX_EVENT_BYTES; the event file reader already cuts longer ones).
_RAW_KEPT = 256 * 1024


def _storable(value: Any) -> Any:
    """``value`` with every string that a store cannot hold (a NUL: PostgreSQL; a lone surrogate:
    any UTF-8 store) escaped as text (``\\x00``, ``\\ud800``), so a rejection is always recorded."""
    if isinstance(value, str):
        if "\x00" in value or not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = value.encode("utf-8", "backslashreplace").decode("utf-8")
            value = value.replace("\x00", "\\x00")
        return value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


class Runtime(Allocating, Delivery):
    """Cases of one or more playbooks on a store (SPEC §7).

    ``clock`` returns an aware ``datetime`` (default: system time); back-off and leases run on it.
    ``handlers`` maps action types (``"*"`` for the rest) to ``handler(action, state)``. Options:
    ``max_attempts`` hand-overs before an item is ``dead``; ``backoff`` the first retry delay
    (doubling up to ``max_backoff``); ``lease`` how long a claim lasts (≤ 60 s); ``batch`` how many
    rows one claim or wake-up transaction takes; ``roster`` the agents the allocator assigns
    cases to (a YAML/JSON file, or a list of ``{id, tiers, …}`` mappings; SPEC §10).
    """

    def __init__(
        self,
        playbooks: Iterable[Playbook] | Playbook,
        store: Store,
        clock: Callable[[], datetime] | None = None,
        handlers: Mapping[str, ActionHandler] | None = None,
        *,
        max_attempts: int = 8,
        backoff: timedelta = timedelta(seconds=10),
        max_backoff: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(seconds=30),
        batch: int = 200,
        worker: str | None = None,
        roster: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | Roster | None = None,
    ) -> None:
        from carepath._native.raw import action_count, signal_types
        from carepath.compile.ir import Playbook
        from carepath.engine.engine import Engine
        from carepath.engine.router import route

        self._signal_types = signal_types
        self._action_count = action_count

        self._decide = route  # the one routing decision every runner shares
        pbs = [playbooks] if isinstance(playbooks, Playbook) else list(playbooks)
        if not pbs:
            raise ValueError("Runtime needs at least one playbook")
        self.engines: dict[str, Engine] = {}
        for pb in pbs:
            if pb.id in self.engines:
                raise ValueError(
                    f"playbook {pb.id!r} given twice; a store runs one version of each playbook"
                )
            self.engines[pb.id] = Engine(pb, trace=False)
        self.store = store
        if clock is None:
            from carepath.runtime.clock import system_clock

            clock = system_clock
        self.clock = clock
        self.handlers: dict[str, ActionHandler] = dict(handlers or {})
        self.batch_handlers: dict[str, BatchHandler] = {}
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if lease > timedelta(seconds=60) or lease <= timedelta(0):
            raise ValueError(
                "lease must be positive and at most 60 s (claims of a killed worker lapse within 60 s)"
            )
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.lease = lease
        self.batch = max(1, batch)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._keys = [(pb.id, pb.content_hash) for pb in pbs]
        register_pii(store, pbs)  # so that `carepath erase` knows them (SPEC §10)
        self.counters: Counter[str] = Counter()
        self._init_delivery()
        self._init_allocation(roster)

    # -- handlers -----------------------------------------------------------------------------
    def action(self, type_: str, *, batch: bool = False) -> Callable[[Any], Any]:
        """Decorator: ``@rt.action("send")`` registers a handler (``"*"``: every other type).

        ``batch=True`` registers ``fn(actions)`` instead: it gets the due actions of that type
        of one claim at once, in outbox order, without their states (a sink that writes them and
        syncs once, as ``carepath run --actions`` does); raising fails every one of them."""

        def register(fn: Any) -> Any:
            (self.handlers if batch else self.batch_handlers).pop(type_, None)
            (self.batch_handlers if batch else self.handlers)[type_] = fn
            return fn

        return register

    def _now(self) -> datetime:
        t = self.clock()
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("the runtime's clock must return an aware datetime")
        return t

    # -- events ---------------------------------------------------------------------------------
    def submit(self, event: EventInput) -> SubmitResult:
        """Apply one event (an :class:`Event`, its JSON object, or a raw JSON line) in one
        transaction. Never raises for bad input: see :class:`SubmitResult`."""
        return self.submit_many([event], batch=1)[0]

    def submit_raw(self, line: str | bytes) -> SubmitResult:
        """Submit one JSONL line; a line that is not a JSON object is rejected (``invalid``) and
        recorded with its raw text."""
        return self.submit(line)

    def submit_many(
        self, events: Iterable[EventInput], batch: int = 100, *, timeline: bool = False
    ) -> list[SubmitResult]:
        """Submit events in transactions of up to ``batch`` events each (one commit per batch:
        a crash loses at most the open batch, which a resend replays exactly once).

        ``timeline=True`` is the simulated clock of ``carepath run``: before each event, every case
        with a wake-up due strictly before the event's ``at`` is advanced (in the same transaction),
        and the runtime's clock, when it has ``advance_to``, follows the events.
        """
        from carepath.engine.batch_gc import batch_gc

        out: list[SubmitResult] = []
        chunk: list[EventInput] = []
        with batch_gc():  # full collections over the live cases wait until the batches are done
            for ev in events:
                chunk.append(ev)
                if len(chunk) >= max(1, batch):
                    out.extend(self._submit_chunk(chunk, timeline))
                    chunk = []
            if chunk:
                out.extend(self._submit_chunk(chunk, timeline))
        return out

    def _submit_chunk(self, chunk: Sequence[EventInput], timeline: bool) -> list[SubmitResult]:
        """One transaction for ``chunk``: read everything it needs at once (:meth:`Tx.prefetch`:
        the processed ids and the cases, locked), decide each event in memory in order (a case
        seen twice sees its own earlier step), and let the store write it all at commit."""
        parsed = [self._parse(e) for e in chunk]
        plans = [None if ev is None else self._targets(ev) for _, ev, _ in parsed]
        ids = list(dict.fromkeys(ev.id for _, ev, _ in parsed if ev is not None))
        keys = list(
            dict.fromkeys((pid, key) for plan in plans if plan for pid, key, _ in plan if key)
        )
        tally = Tally()

        def unit(tx: Tx) -> list[SubmitResult]:
            tally.clear()
            pre = tx.prefetch(ids, keys)
            cache: dict[tuple[str, str], CaseState | None] = dict(pre.states)
            seen = set(pre.seen)  # processed before, or earlier in this batch
            results = []
            for (src, ev, err), plan in zip(parsed, plans, strict=True):
                if timeline and ev is not None:
                    results.append(self._one_in_time(tx, src, ev, plan or [], cache, seen, tally))
                else:
                    results.append(self._one(tx, src, ev, err, plan or [], cache, seen, tally))
            return results

        try:
            results = self.store.atomic(unit)
        except (ValueError, TypeError) as exc:  # a value the store cannot write (not bad I/O)
            if len(chunk) > 1:  # find the event that cannot be written; the others commit
                return [r for e in chunk for r in self._submit_chunk([e], timeline)]
            return [self._reject_unwritable(chunk[0], parsed[0][1], exc)]
        self.counters.update(tally)
        tally.log()
        return results

    def _reject_unwritable(self, src: EventInput, ev: Event | None, exc: Exception) -> SubmitResult:
        """Record as ``invalid`` an event whose step the store refused to write (the checks of
        :class:`~carepath.events.Event` leave nothing known to get here: a last line of defence, so
        that ``submit`` never raises for bad input)."""
        message = _storable(f"cannot store the result of this event: {type(exc).__name__}: {exc}")
        raw = _as_dict(src)
        now = self._now().timestamp()
        self.store.atomic(lambda tx: tx.add_rejected(Rejected(raw, "invalid", message, now)))
        tally = Tally()
        tally.reject(_id_of(raw), "invalid", message)
        self.counters.update(tally)
        tally.log()
        event_id = ev.id if ev is not None else _id_of(raw)
        return SubmitResult("rejected", "invalid", message, event_id=event_id)

    def _targets(self, ev: Event) -> list[tuple[str, str | None, str | None]]:
        """``(playbook id, case key, error)`` for every playbook that mentions ``ev``'s type: the
        key (``None`` or ``""`` when the event has none), or why it could not be computed."""
        out: list[tuple[str, str | None, str | None]] = []
        for pid, engine in self.engines.items():
            if not engine.mentions(ev.type):
                continue
            try:
                out.append((pid, engine.case_key(ev), None))
            except Exception as exc:  # a key expression that cannot evaluate on this payload
                out.append(
                    (pid, None, f"{pid}: cannot compute the case key of event {ev.id}: {exc}")
                )
        return out

    def _follow(self, t: datetime) -> None:
        adv = getattr(self.clock, "advance_to", None)
        if adv is not None:
            adv(t)

    def _parse(self, e: EventInput) -> tuple[EventInput, Event | None, str | None]:
        """``(source, event, error)``: the source (the decoded object of a JSON line) is turned into
        the recorded form (:func:`_as_dict`) only if the event is rejected. The error of a
        :class:`~carepath.events.Line` names its line."""
        if isinstance(e, Line):
            if e.problem is not None:
                return e, None, f"line {e.number}: {e.problem}"
            src, ev, err = self._parse(e.text)
            return src, ev, None if err is None else f"line {e.number}: {err}"
        if isinstance(e, Event):
            return e, e, None
        if isinstance(e, str):
            try:
                return e, event_from_line(e), None
            except (ValueError, TypeError):
                pass  # the general path below says why, and keeps the decoded object for the record
        if isinstance(e, str | bytes):
            try:
                e = decode_event(e)
            except ValueError as exc:
                return e, None, str(exc)
        try:
            return e, Event.from_dict(e), None
        except (ValueError, TypeError) as exc:
            return e, None, str(exc)

    def _one_in_time(
        self,
        tx: Tx,
        src: EventInput,
        ev: Event,
        plan: Sequence[tuple[str, str | None, str | None]],
        cache: dict[tuple[str, str], CaseState | None],
        seen: set[str],
        tally: Tally,
    ) -> SubmitResult:
        """:meth:`_one` on the simulated clock: the cases due strictly before ``ev.at`` are
        advanced first, but only on trial. A rejected event moves no time: its wake-ups are
        dropped (they fire before the next event that is not rejected), the clock stays."""
        trial: dict[tuple[str, str], CaseState | None] = {}
        view: Cache = ChainMap(trial, cache)
        woken = self._due_steps(tx, ev._ts - 2 * _US, ev._ts - 0.5 * _US, view)

        def keep_time() -> None:
            self._follow(ev.at)
            self._write_due(tx, woken, ev._ts - 2 * _US, tally)

        if not trial:  # nothing woke (most events): the batch's cache itself, without the view;
            # a rejected event writes nothing in it (a case it reads is the row as stored)
            return self._one(tx, src, ev, None, plan, cache, seen, tally, before=keep_time)
        result = self._one(tx, src, ev, None, plan, view, seen, tally, before=keep_time)
        if result.status != "rejected":
            cache.update(trial)
        return result

    def _one(
        self,
        tx: Tx,
        src: EventInput,
        ev: Event | None,
        err: str | None,
        plan: Sequence[tuple[str, str | None, str | None]],
        cache: Cache,
        seen: set[str],
        tally: Tally,
        *,
        before: Callable[[], None] | None = None,
    ) -> SubmitResult:
        """Decide and write one event; ``before()`` runs once the event is known not to be
        rejected, before anything of it is written."""
        if ev is None:
            now = self._now().timestamp()
            raw = _as_dict(src)
            message = _storable(err or "invalid event")
            tx.add_rejected(Rejected(raw, "invalid", message, now))
            tally.reject(_id_of(raw), "invalid", message)
            return SubmitResult("rejected", "invalid", message, event_id=_id_of(raw))
        if ev.id in seen:
            if before is not None:
                before()
            tally["duplicate"] += 1
            return SubmitResult("duplicate", event_id=ev.id)
        try:
            steps, status = self._route(tx, ev, plan, cache)
        except _Reject as r:
            message = _storable(r.message)
            tx.add_rejected(
                Rejected(_as_dict(src), r.reason, message, self._now().timestamp(), r.cases)
            )
            tally.reject(ev.id, r.reason, message, r.cases)
            return SubmitResult("rejected", r.reason, message, event_id=ev.id)
        if before is not None:
            before()
        now = self._now().timestamp()
        seen.add(ev.id)
        tx.mark_processed(ev.id, now)
        actions: list[Action] = []  # the allocator's, after the steps' own
        signals: list[Signal] = []  # likewise
        states = []
        breaches = 0
        n_actions = 0
        for opened, step in steps:
            st = step.state
            cache[(st.playbook, st.case)] = st
            tx.save(st, now)
            tx.add_step_outbox(step)
            n_actions += self._action_count(step)
            breaches += sum(1 for t in self._signal_types(step) if t.endswith(".breached"))
            states.append(st)
            if opened:
                tally["opened"] += 1
        if self.roster:

            def out(x: Any) -> None:
                if isinstance(x, Signal):
                    signals.append(x)
                elif x is not None:
                    actions.extend(x.actions)
                    signals.extend(x.signals)

            for _, step in steps:
                st = step.state
                self._after_step(tx, ev, st, step.actions, cache, seen, tally, out)
            breaches += sum(1 for s in signals if s.type.endswith(".breached"))
        tally["assigned" if self._alloc_depth and status == "applied" else status] += 1
        tally["actions"] += n_actions + len(actions)
        tally["breaches"] += breaches
        return SubmitResult(
            status,
            cases=states,
            actions=actions,
            signals=signals,
            event_id=ev.id,
            message=""
            if status == "applied"
            else "no playbook mentions this event type"
            if not any(e.mentions(ev.type) for e in self.engines.values())
            else "its case has ended",
            steps=[step for _, step in steps],
        )

    def _apply(
        self,
        tx: Tx,
        ev: Event,
        key: tuple[str, str],
        cache: Cache,
        seen: set[str],
        tally: Tally,
    ) -> SubmitResult:
        """Apply a runtime's own event (``action.delivered``, ``agent.assigned``…) to the one case
        ``key``, in ``tx``."""
        return self._one(tx, ev, ev, None, [(key[0], key[1], None)], cache, seen, tally)

    def _load(self, tx: Tx, cache: Cache, pid: str, key: str) -> CaseState | None:
        k = (pid, key)
        if k not in cache:
            cache[k] = tx.load(pid, key)
        return cache[k]

    def _route(
        self, tx: Tx, ev: Event, plan: Sequence[tuple[str, str | None, str | None]], cache: Cache
    ) -> tuple[list[tuple[bool, Any]], str]:
        """The steps for ``ev`` over every playbook of ``plan`` (see :meth:`_targets`), each decided
        by :func:`carepath.engine.router.route`, or :class:`_Reject`. All or nothing: one playbook's
        rejection rejects the event."""
        route = self._decide
        steps: list[tuple[bool, Any]] = []  # (opened a case, step)
        unknown: list[tuple[str, str, str]] = []
        no_key = False
        for pid, key, key_error in plan:
            if key_error is not None:
                raise _Reject("invalid", key_error)
            engine = self.engines[pid]
            if key is None or key == "":
                no_key = True
                continue
            state = self._load(tx, cache, pid, key)
            try:
                r = route(engine, state, ev)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                log.debug("event %s cannot be applied", ev.id, exc_info=True)
                raise _Reject(
                    "invalid",
                    f"cannot apply event {ev.id}: {type(exc).__name__}: {exc}",
                    [(pid, key)],
                ) from None
            if r.status == "rejected":
                if r.reason == "unknown_case":
                    unknown.append((pid, key, r.message))
                    continue
                raise _Reject(r.reason or "invalid", r.message, [(pid, key)])
            if r.status == "applied" and r.step is not None:
                steps.append((r.opened, r.step))
        if steps:
            return steps, "applied"
        if unknown:
            raise _Reject(
                "unknown_case", "; ".join(m for _, _, m in unknown), [(p, k) for p, k, _ in unknown]
            )
        if no_key:
            raise _Reject("invalid", f"event {ev.id} ({ev.type}) has no case key")
        return [], "ignored"

    # -- wake-ups -------------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None) -> int:
        """Advance every case whose next wake-up is ≤ ``now`` (default: the clock); returns how many
        cases were advanced. Each batch of cases is one transaction."""
        from carepath.engine.batch_gc import batch_gc

        t = (now or self._now()).timestamp()
        tally = Tally()
        total = 0
        done: set[tuple[str, str]] = set()
        with batch_gc():
            while True:

                def unit(tx: Tx) -> int:
                    tally.clear()
                    return self._due_in_tx(
                        tx, t, t + 0.5 * _US, {}, tally, done=done, limit=self.batch
                    )

                n = self.store.atomic(unit)
                self.counters.update(tally)
                total += n
                if n < self.batch:
                    self._retry_queued()
                    return total

    def _due_in_tx(
        self,
        tx: Tx,
        t_engine: float,
        t_index: float,
        cache: Cache,
        tally: Tally,
        *,
        done: set[tuple[str, str]] | None = None,
        limit: int = 1_000_000,
    ) -> int:
        """Advance, in ``tx``, the cases due at ``t_index`` (index) to ``t_engine``."""
        steps = self._due_steps(tx, t_engine, t_index, cache, done=done, limit=limit)
        self._write_due(tx, steps, t_engine, tally)
        return len(steps)

    def _due_steps(
        self,
        tx: Tx,
        t_engine: float,
        t_index: float,
        cache: Cache,
        *,
        done: set[tuple[str, str]] | None = None,
        limit: int = 1_000_000,
    ) -> list[Any]:
        """The steps advancing the cases due at ``t_index`` (index) to ``t_engine``, each new state
        put in ``cache``; nothing is written (see :meth:`_write_due`)."""
        done = set() if done is None else done
        when = None
        steps = []
        got = tx.due(t_index, limit, self._keys, exclude=done)
        for st0 in got:
            k = (st0.playbook, st0.case)
            done.add(k)
            st = cache.get(k) or st0
            if cache.get(k) is not None and (
                st.next_wakeup_s is None or st.next_wakeup_s > t_index
            ):
                continue  # already moved past it in this batch
            engine = self.engines[st.playbook]
            if when is None:
                when = dt(t_engine, zone("UTC"))
            try:
                step = engine.advance(st, when)
            except CaseError as exc:  # a broken case must not stop the others
                log.error(
                    "cannot advance case %s/%s: %s",
                    st.playbook,
                    st.case,
                    exc,
                    extra={"playbook": st.playbook, "case": st.case},
                )
                continue
            cache[k] = step.state
            steps.append(step)
        return steps

    def _write_due(self, tx: Tx, steps: Sequence[Any], t_engine: float, tally: Tally) -> None:
        for step in steps:
            tx.save(step.state, t_engine)
            tx.add_step_outbox(step)
            if self.roster:
                self._after_step(tx, None, step.state, step.actions, None, None, tally)
            tally["actions"] += self._action_count(step)
            tally["breaches"] += sum(1 for t in self._signal_types(step) if t.endswith(".breached"))
        tally["woken"] += len(steps)

    # -- conveniences ---------------------------------------------------------------------------
    def engine(self, playbook_id: str) -> Engine:
        """The engine of a loaded playbook."""
        return self.engines[playbook_id]

    def playbooks(self) -> Iterator[Playbook]:
        """The loaded playbooks."""
        return (e.playbook for e in self.engines.values())

    def next_wakeup(self) -> datetime | None:
        """The earliest wake-up of any case of the loaded playbooks."""
        t = self.store.next_wakeup(self._keys)
        return None if t is None else dt(t, zone("UTC"))


def _id_of(raw: Mapping[str, Any]) -> str | None:
    v = raw.get("id")
    return None if v is None else str(v)


def _rebase(state: CaseState, pb: Playbook) -> CaseState:
    """An ended case of another version, restamped so ``start`` only reads its sequence."""
    if state.content_hash == pb.content_hash:
        return state
    return replace(state, playbook=pb.id, version=pb.version, content_hash=pb.content_hash)
