"""The native backend: ``Engine.start/handle/advance`` run by ``carepath_core`` (SPEC §4.1).

:func:`attach` is called by :class:`~carepath.engine.Engine` for ``backend="auto"`` and
``"native"``. It lowers the playbook (:mod:`.lower`) and, when the core is installed and supports
the playbook, replaces the engine's three step methods on that instance. Everything else
(``opens``, ``case_key``, ``deadlines``, ``migrate``) stays the reference's, and so do the rare
paths of a step that change nothing (an ignored event, an ``advance`` with nothing due) and the
checks before a step (playbook mismatch, order, payload validation): they produce the same
objects either way.

A native step is lazy: its state is a :class:`NativeState` (a ``CaseState`` whose fields are
built from the core's state on first read; the next native step reads the core's state itself),
its actions, signals and deadlines are built on first read, and its ``trace`` is built by
replaying the step on the reference engine (both are pure, so the replay takes the same
decisions).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from carepath._instants import dumps, typed_data
from carepath._instants import round_micros as _r
from carepath._native.lower import Unsupported, calendar_pair, lower
from carepath._native.state_json import iso_text, state_dict
from carepath._records import slot_setter
from carepath.compile.ir import ASSIGNEE
from carepath.errors import BackendError, CarepathError, CaseError, InvalidEvent, SignalLoop
from carepath.events import Event
from carepath.state import (
    STATE_FORMAT,
    Action,
    CaseState,
    Clock,
    ClockRecord,
    Pending,
    Signal,
    clock_record,
)

# The engine passes itself and its Step class in: nothing here imports the engine back (no cycle).
Engine = Any
Step = Any

__all__ = ["BACKENDS", "NativeState", "attach"]

BACKENDS = ("auto", "native", "python")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_new_clock: Any = Clock  # Clock(*fields, tz): the core gives the fields before tz, in order
_KIND_ORDER = {"clock": 0, "threshold": 0, "action": 1, "timer": 2, "schedule": 3}


def _choice(backend: str) -> str:
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "auto":
        env = os.environ.get("CAREPATH_ENGINE", "").strip().lower()
        if env in ("python", "native"):
            return env
        if env not in ("", "auto"):
            raise BackendError(f"CAREPATH_ENGINE must be python or native, not {env!r}")
    return backend


def attach(engine: Engine, backend: str, step_cls: type) -> None:
    """Make ``engine`` run its steps natively when ``backend`` (and ``CAREPATH_ENGINE``) allow it.

    ``auto`` falls back to the Python engine when the core is not installed or does not support
    the playbook; ``native`` raises :class:`~carepath.errors.CarepathError` saying why instead.
    """
    choice = _choice(backend)
    if choice == "python":
        return
    pb = engine.playbook
    try:
        import carepath_core
    except ImportError:
        if choice == "native":
            raise BackendError(
                "backend='native' needs the carepath-core package (pip install carepath[native])"
            ) from None
        return
    try:
        plain = lower(pb)
    except Unsupported as exc:
        if choice == "native":
            raise BackendError(
                f"playbook {pb.id} {pb.version}: the native core does not support it: {exc}"
            ) from None
        return
    helpers = _helpers(engine)
    native = _Native(engine, carepath_core.Engine(plain, helpers), step_cls, helpers["record"])
    engine.start = native.start
    engine.handle = native.handle
    engine.advance = native.advance
    engine._core_watch = native.core.watch
    engine.backend = "native"


def _special(consent_default: bool, data: Mapping[str, Any], name: str) -> Any:
    """``CaseScope.get`` of ``assignee`` and ``consent.<channel>`` (SPEC §10), for the core's
    scope: a consent is ``consent_default`` until an opt-out or opt-in sets it."""
    value = data.get(name)
    if name == ASSIGNEE:
        return value
    return consent_default if value is None else value


def _zoned(plan: Any, name: str, zone: str) -> tuple[Any, Any] | None:
    """Calendar ``name`` (declared ``timezone: customer``) in ``zone`` as the core takes it
    (:func:`~carepath._native.lower.calendar_pair`), built as the engine builds it; ``None`` when
    ``zone`` is no IANA zone."""
    cal = plan.zoned(name, zone)
    return None if cal is None else calendar_pair(cal)


def _helpers(engine: Engine) -> dict[str, Callable[..., Any]]:
    from carepath.compile.ir import AGENT_ASSIGNED, CONSENT_PREFIX
    from carepath.durations import add_months, parse_duration
    from carepath.engine.delivery import assignee_updates, consent_updates
    from carepath.expr.types import coerce as _coerce
    from carepath.expr.types import describe

    tz = engine.tz
    fromts = datetime.fromtimestamp

    def dt(x: float) -> datetime:
        return fromts(x, tz)

    record = functools.partial(clock_record, tz)

    def wall_days(t: float, days: int) -> float:
        local = fromts(t, tz)
        wall = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=tz)
        return _r(wall.timestamp())

    def wall_months(t: float, months: int, days: int) -> float:
        # the reference's calendar months then days (CaseRun.delay_due), in the playbook's zone
        local = add_months(fromts(t, tz).replace(tzinfo=None), months)
        wall = (local + timedelta(days=days)).replace(tzinfo=tz)
        return _r(wall.timestamp())

    @functools.lru_cache(maxsize=64)
    def duration(text: Any) -> tuple[float, int, int, int]:
        d = parse_duration(text)
        return (float(d.seconds), int(d.days), int(d.business_days), int(d.months))

    def iso(t: float) -> str:
        return fromts(t, tz).isoformat()

    def coerce(v: Any, t: Any) -> tuple[bool, Any, Any]:
        if isinstance(v, timedelta):
            v = v.total_seconds()
        vc = v.__class__
        k = t.kind
        if (
            (vc is str and (k == "string" or (k == "enum" and v in t.values)))
            or (vc is bool and k == "bool")
            or (vc is int and k == "int")
        ):
            return True, v, v  # the engine's _coerce: the common already-valid cases inline
        ok, cv = _coerce(v, t)
        return ok, cv, v

    playbook = engine.playbook
    default = playbook.consent_default

    def consents(data: Any, channel: Any) -> bool:
        if channel is None:
            return True
        value = data.get(CONSENT_PREFIX + str(channel))
        return default if value is None else value is True

    def opt_updates(type_: str, view: Any) -> dict[str, Any] | None:
        if type_ == AGENT_ASSIGNED:
            return assignee_updates(view)
        return consent_updates(playbook, type_, view) if playbook.consent_channels else None

    typed = engine.plan.typed

    def typed_view(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return typed_data(data, typed)

    helpers: dict[str, Callable[..., Any]] = {
        "consents": consents,
        "special": functools.partial(_special, default),
        "opt_updates": opt_updates,
        "zoned": functools.partial(_zoned, engine.plan),
        "dt": dt,
        "record": record,
        "wall_days": wall_days,
        "wall_months": wall_months,
        "duration": duration,
        "iso": iso,
        "coerce": coerce,
        "describe": describe,
        "invalid": lambda msg, event: InvalidEvent(msg, event=event),
        "signal_loop": lambda msg, event: SignalLoop(msg, event=event),
        "case_error": lambda msg, event: CaseError(msg),
    }
    if typed:  # the case's date, datetime and decimal text, as conditions read it (issue 15 #7)
        helpers["typed_view"] = typed_view
    return helpers


class _Native:
    """The three step methods of one engine, run by the core."""

    __slots__ = (
        "consts",
        "content_hash",
        "core",
        "engine",
        "names",
        "pbid",
        "record",
        "ref",
        "step_cls",
        "step_setters",
        "timezone",
        "version",
    )

    def __init__(
        self, engine: Engine, core: Any, step_cls: type, record: Callable[..., ClockRecord]
    ) -> None:
        self.engine = engine
        self.core = core
        self.record = record
        self.names = tuple(engine.playbook.clocks)
        self.ref = type(engine)  # the reference's methods (the instance's own are ours)
        self.step_cls = _native_step_class(step_cls)
        self.step_setters = tuple(slot_setter(self.step_cls, n) for n in ("state", "_out", "_call"))
        pb = engine.playbook
        self.pbid, self.version = pb.id, pb.version
        self.content_hash, self.timezone = pb.content_hash, pb.timezone
        # what the core's JSON text of a state takes besides the state (``CoreState.to_json``)
        self.consts = (STATE_FORMAT, self.pbid, self.version, self.content_hash, self.timezone)

    def start(self, event: Event, previous: CaseState | None = None) -> Step:
        Engine = self.ref
        engine = self.engine
        pb = engine.playbook
        if previous is None:  # the usual case: the checks, the view and the key in the core
            try:
                out = self.core.start_fast(event)
            except CarepathError:
                raise
            except Exception as exc:
                raise CaseError(
                    f"native core failed on playbook {pb.id}, event {event.id}: {exc!r}",
                    event=event,
                ) from exc
            if out is not None:
                return self._step(out, ("start", event, None))
        if event.type not in pb.start.on or previous is not None:
            # a refusal, or a re-entered key: the reference checks and raises the same way; a
            # re-entry is rare enough to run there whole
            return Engine.start(engine, event, previous)
        view = engine._event_view(event)
        if pb.start.when is not None and pb.start.when({}, view, _NULL_SCOPE) is not True:
            return Engine.start(engine, event, previous)
        key = pb.start.key({}, view, _NULL_SCOPE)
        if key is None or key == "":
            return Engine.start(engine, event, previous)
        try:
            out = self.core.start(event, view, str(key), event._ts, 0)
        except CarepathError:
            raise
        except Exception as exc:
            raise CaseError(
                f"native core failed on playbook {pb.id}, event {event.id}: {exc!r}", event=event
            ) from exc
        return self._step(out, ("start", event, previous))

    def handle(self, state: CaseState, event: Event) -> Step:
        Engine = self.ref
        engine = self.engine
        if state.__class__ is NativeState:  # the usual case: the checks and the view in the core
            core = state._core
            if core is not None:
                try:
                    out = self.core.handle_fast(core, event)
                except CarepathError:
                    raise
                except Exception as exc:
                    raise CaseError(
                        f"native core failed on playbook {engine.playbook.id}, event {event.id}: {exc!r}",
                        event=event,
                        state=state,
                    ) from exc
                if out is not None:
                    return self._step(out, ("handle", state, event))
        engine._check(state, event)
        if event._ts < state.now_s - 1e-6 or state.ended or event.type not in engine.plan.mentioned:
            return Engine.handle(
                engine, state, event
            )  # raises, or an `ignored` step with the state as it is
        view = engine._event_view(event, state=state)
        core = getattr(state, "_core", None) if state.__class__ is NativeState else None
        try:
            out = self.core.handle(
                state if core is None else core, event, view, event._ts, state.next_wakeup_s
            )
        except CarepathError:
            raise
        except Exception as exc:
            raise CaseError(
                f"native core failed on playbook {engine.playbook.id}, event {event.id}: {exc!r}",
                event=event,
                state=state,
            ) from exc
        return self._step(out, ("handle", state, event))

    def advance(self, state: CaseState, now: datetime) -> Step:
        Engine = self.ref
        engine = self.engine
        engine._check(state, None)
        t = _r(now.timestamp()) if now.tzinfo is not None else None
        if t is None or t <= state.now_s or state.next_wakeup_s is None or state.next_wakeup_s > t:
            return Engine.advance(engine, state, now)  # raises, or nothing due: the state as it is
        core = getattr(state, "_core", None) if state.__class__ is NativeState else None
        try:
            out = self.core.advance(state if core is None else core, t)
        except CarepathError:
            raise
        except Exception as exc:
            raise CaseError(
                f"native core failed on playbook {engine.playbook.id}, advance to {now.isoformat()}: "
                f"{exc!r}",
                state=state,
            ) from exc
        return self._step(out, ("advance", state, now))

    def handle_raw(
        self, state: CaseState, event: Event
    ) -> tuple[CaseState, list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
        """:meth:`handle`'s usual case without its ``Step``: the new state, and the actions and
        signals as the core returned them (see :func:`~carepath._native.raw.raw_outputs`); ``None`` when the core
        does not take the event alone (then :meth:`handle` decides, and raises what it raises;
        so does an error of the core here, unwrapped)."""
        if state.__class__ is NativeState:
            core = state._core
            if core is not None:
                out = self.core.handle_fast(core, event)
                if out is not None:
                    return self._state(out), out[1], out[2]
        return None

    def start_raw(
        self, event: Event
    ) -> tuple[CaseState, list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
        """:meth:`start`'s usual case (a new key, the core opening the case alone) without its
        ``Step``: as :meth:`handle_raw`; ``None`` when the core does not open it alone (then
        :meth:`start` decides; an error of the core is raised unwrapped)."""
        out = self.core.start_fast(event)
        if out is None:
            return None
        return self._state(out), out[1], out[2]

    def advance_out(self, state: CaseState, t: float) -> tuple[Any, ...] | None:
        """:meth:`advance`'s usual case without its ``Step`` nor its state's wrapper, to ``t``
        (POSIX seconds, whole microseconds: ``_r(now.timestamp())``) for a state of this engine
        with a wake-up due: the core's output ``(core, actions, signals, …)`` (see :meth:`_step`;
        :meth:`_state` wraps its state, :func:`~carepath._native.raw.raw_outputs` describes them);
        ``None`` otherwise (then :meth:`advance` decides). The end of a replay advances every open
        case once and reads the new state only when a signal needs its values."""
        if (
            state.__class__ is NativeState
            and state._ctx is self
            and state.next_wakeup_s is not None
            and state.now_s < t
            and state.next_wakeup_s <= t
        ):
            core = state._core
            if core is not None:
                return self.core.advance(core, t)  # type: ignore[no-any-return]
        return None

    def advance_due(
        self, states: list[CaseState], t: float, stop: float
    ) -> tuple[dict[str, int], list[tuple[int, tuple[Any, ...]]], list[int]]:
        """The end of a replay that keeps no state: each of ``states`` with a wake-up due before
        ``stop`` advanced to ``t`` (as :meth:`advance_out`; ``t``: just before ``stop``, whole
        microseconds), by the core in one call: the actions counted by type, ``(index, output)``
        of each advance that gave signals, and the indexes of the states due that the core
        does not advance alone (for :meth:`advance`)."""
        cores: list[Any] = []
        general: list[int] = []
        for i, st in enumerate(states):
            w = st.next_wakeup_s
            if st.ended or w is None or w >= stop:
                cores.append(None)
            elif (
                st.__class__ is NativeState
                and st._ctx is self
                and st._core is not None
                and st.now_s < t
                and w <= t
            ):
                cores.append(st._core)
            else:
                cores.append(None)
                general.append(i)
        counts, signalled = self.core.advance_many(cores, t)
        return counts, signalled, general

    def _step(self, out: tuple[Any, ...], call: tuple[str, Any, Any]) -> Step:
        """The lazy step of the core's ``out``: ``(core, actions, signals, items, case, stage,
        now, ended, next_wakeup)``; ``call`` (the reference method and its arguments) replays
        it for ``trace``."""
        step = _new(self.step_cls)
        set_state, set_out, set_call = self.step_setters
        set_state(step, self._state(out))
        set_out(step, out)
        set_call(step, call)
        return step

    def _state(self, out: tuple[Any, ...]) -> NativeState:
        """The lazy :class:`NativeState` of the core's ``out`` (see :meth:`_step`)."""
        state = _new(NativeState)
        _S_CORE(state, out[0])
        _S_CTX(state, self)
        _S_CASE(state, out[4])
        _S_STAGE(state, out[5])
        _S_NOW(state, out[6])
        _S_ENDED(state, out[7])
        _S_WAKEUP(state, out[8])
        return state

    def replay(self, call: tuple[str, Any, Any]) -> Step:
        """The reference's step for ``call`` (``trace`` of a native step)."""
        kind, a, b = call
        engine = self.engine
        if kind == "start":
            return self.ref.start(engine, a, b)
        if kind == "handle":
            return self.ref.handle(engine, a, b)
        return self.ref.advance(engine, a, b)

    def materialize_step(self, step: Any, name: str | None = None) -> None:
        """Build a native step's ``name`` (``actions``, ``signals`` or ``_items``; all three when
        ``None``) on its first read: a runtime that stores the actions never builds the signals."""
        _core, actions, signals, items, case = object.__getattribute__(step, "_out")[:5]
        tz = self.engine.tz
        fromts = datetime.fromtimestamp
        dts: dict[float, datetime] = {}

        def at_(x: float) -> datetime:
            d = dts.get(x)
            if d is None:
                d = dts[x] = fromts(x, tz)
            return d

        if name in (None, "actions"):
            pbid = self.engine.playbook.id
            _set(
                step,
                "actions",
                [
                    Action(i, pbid, case, verb, MappingProxyType(params), at_(at), src)
                    for i, verb, params, at, src in actions
                ],
            )
        if name in (None, "signals"):
            record = self.record
            _set(
                step,
                "signals",
                [
                    Signal(
                        ty,
                        at_(at),
                        sla,
                        cycle,
                        record(*rec) if rec.__class__ is tuple else rec,
                        MappingProxyType(dict(d)) if d else _EMPTY,
                    )
                    for ty, at, sla, cycle, rec, d in signals
                ],
            )
        if name in (None, "_items"):
            _set(step, "_items", tuple((d, _KIND_ORDER[k], k, n) for d, k, n in items))

    def materialize(self, st: NativeState, core: Any) -> None:
        """Fill the lazy fields of ``st`` from the core's state."""
        data, tier, segment, segments, clocks, opened, seq, epoch, pending, sends = core.rest()
        tz = self.engine.tz
        cm: dict[str, Clock] = {}
        record = self.record
        for n, c in zip(self.names, clocks, strict=True):
            if c is None:
                cm[n] = Clock(n, tz=tz)
                continue
            hist = c[17]
            if hist:  # records the core ended are numbers until read
                c = (*c[:17], tuple(record(*r) if r.__class__ is tuple else r for r in hist))
            cm[n] = _new_clock(*c, tz)
        _set(st, "data", data if data.__class__ is MappingProxyType else MappingProxyType(data))
        _set(st, "tier", tier)
        _set(st, "segment", segment)
        _set(st, "segments", segments)
        _set(st, "clocks", MappingProxyType(cm))
        _set(st, "opened_s", opened)
        _set(st, "seq", seq)
        _set(st, "epoch", epoch)
        _set(st, "pending", tuple(Pending(*p) if p.__class__ is tuple else p for p in pending))
        _set(
            st,
            "sends",
            _EMPTY
            if sends is None
            else sends
            if sends.__class__ is MappingProxyType
            else MappingProxyType(sends),
        )


_new = object.__new__
_set = object.__setattr__
_LAZY_STEP = frozenset({"actions", "signals", "_items"})
#: The fields every state of one engine holds alike (set on their first read).
_CONSTANT = frozenset({"playbook", "version", "content_hash", "timezone"})
_LAZY = frozenset(
    {
        "data",
        "tier",
        "segment",
        "segments",
        "clocks",
        "opened_s",
        "seq",
        "epoch",
        "pending",
        "sends",
    }
)
_FIELDS = tuple(f.name for f in dataclasses.fields(CaseState))


class NativeState(CaseState):
    """A :class:`~carepath.state.CaseState` a native step produced: the core keeps the case;
    the fields are built on first read (the scalars a step checks are set at once; the engine's
    constants, the same for all its states, on the first read of one of them). It is a
    ``CaseState`` in every other respect: equal to the reference's state of the same case, the
    same JSON, the same ``repr``; the next native step reads the core's state directly."""

    __slots__ = ("_core", "_ctx")
    __hash__ = CaseState.__hash__

    def __getattr__(self, name: str) -> Any:
        if name in _CONSTANT:  # the engine's, the same for every state: set on first read
            ctx = object.__getattribute__(self, "_ctx")
            _S_PLAYBOOK(self, ctx.pbid)
            _S_VERSION(self, ctx.version)
            _S_HASH(self, ctx.content_hash)
            _S_TIMEZONE(self, ctx.timezone)
            return object.__getattribute__(self, name)
        if name in _LAZY:
            ctx = object.__getattribute__(self, "_ctx")
            ctx.materialize(self, object.__getattribute__(self, "_core"))
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseState):
            return NotImplemented
        return tuple(getattr(self, f) for f in _FIELDS) == tuple(getattr(other, f) for f in _FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, written from the core's state while the fields are not built yet
        (:mod:`carepath._native.state_json`; the same dictionary)."""
        try:
            object.__getattribute__(self, "clocks")
        except AttributeError:
            core = getattr(self, "_core", None)
            if core is not None:
                ctx = object.__getattribute__(self, "_ctx")
                return state_dict(self, core, ctx.names)
        return CaseState.to_dict(self)

    def to_json(self) -> str:
        """The JSON text, written by the core from its state when it can write it exactly
        (``CoreState.to_json``: the same bytes as ``dumps(self.to_dict())``), else by
        :meth:`to_dict` and :func:`~carepath._instants.dumps` (an integer beyond 64 bits, a
        lone surrogate, a value of another type in the case data)."""
        core = getattr(self, "_core", None)
        if core is not None:
            try:
                text: str | None = core.to_json(
                    object.__getattribute__(self, "_ctx").consts, iso_text
                )
            except AttributeError:  # a core built before CoreState.to_json
                text = None
            if text is not None:
                return text
        return dumps(self.to_dict())

    def summary_parts(self) -> tuple[str | None, list[tuple[str, str, float | None]]] | None:
        """``(tier, [(clock, status, due_s)…])`` read from the core while the fields are not
        built yet (a service answers every posted event with its cases' summaries: building a
        ``Clock`` per clock for two fields of each cost more than the step); ``None`` once they
        are built (read them)."""
        try:
            object.__getattribute__(self, "clocks")
        except AttributeError:
            core = getattr(self, "_core", None)
            if core is not None:
                names = object.__getattribute__(self, "_ctx").names
                _, tier, _, _, clocks, *_ = core.rest()
                return tier, [
                    (n, "pending", None) if c is None else (n, c[1], c[14])
                    for n, c in zip(names, clocks, strict=True)
                ]
        return None

    def __repr__(self) -> str:
        return "CaseState" + CaseState.__repr__(self)[len("NativeState") :]

    def __reduce__(self) -> tuple[Any, ...]:
        return (CaseState, tuple(getattr(self, f) for f in _FIELDS))


(
    _S_CORE,
    _S_CTX,
    _S_PLAYBOOK,
    _S_VERSION,
    _S_HASH,
    _S_TIMEZONE,
    _S_CASE,
    _S_STAGE,
    _S_NOW,
    _S_ENDED,
    _S_WAKEUP,
) = (
    slot_setter(NativeState, n)
    for n in (
        "_core",
        "_ctx",
        "playbook",
        "version",
        "content_hash",
        "timezone",
        "case",
        "stage",
        "now_s",
        "ended",
        "next_wakeup_s",
    )
)


class _NullScope:
    def get(self, name: str, default: Any = None) -> Any:
        return default


_NULL_SCOPE = _NullScope()


@functools.cache
def _native_step_class(Step: type[Any]) -> Any:
    if True:

        class NativeStep(Step):  # type: ignore[misc]
            """A :class:`~carepath.engine.Step` from the core: its actions, signals and deadlines
            are built on first read; ``trace`` replays the step on the reference."""

            __slots__ = ("_call", "_out")
            __qualname__ = "NativeStep"
            _trace = ()  # the trace is the reference's (below)

            def __getattr__(self, name: str) -> Any:
                if name in _LAZY_STEP:
                    object.__getattribute__(self, "state")._ctx.materialize_step(self, name)
                    return object.__getattribute__(self, name)
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

            def __repr__(self) -> str:
                return "Step" + str(super().__repr__())[len("NativeStep") :]

            @property
            def trace(self) -> list[tuple[str, str, str, str]]:
                ctx = object.__getattribute__(self, "state")._ctx
                trace: list[tuple[str, str, str, str]] = ctx.replay(self._call).trace
                return trace

    return NativeStep
