"""A native step's outputs read as the core returned them, without building the ``Step``, its
``Action`` and ``Signal`` objects or the state's fields: what the replay, the runtime's stores
and the metrics read of every step (:mod:`carepath._native.backend` makes the steps)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from carepath._instants import dumps, json_data
from carepath._native.backend import NativeState, _Native
from carepath.events import Event
from carepath.state import CaseState, ClockRecord

Engine = Any

__all__ = [
    "action_count",
    "case_values",
    "ctx_key",
    "outbox_rows",
    "raw_advancer",
    "raw_handler",
    "raw_outputs",
    "raw_starter",
    "signal_types",
]


def case_values(
    state: CaseState,
) -> tuple[Mapping[str, Any], str | None, str | None, tuple[str, ...]]:
    """``(data, tier, segment, segments)`` of ``state``. For a native state they are read from the
    core, without building the state's clocks, records and pending items (what a report reads for
    every event: the values it groups by)."""
    if state.__class__ is NativeState:
        core = getattr(state, "_core", None)
        if core is not None:
            try:
                data, tier, segment, segments = core.values()
            except AttributeError:  # a core built before CoreState.values: the fields
                return state.data, state.tier, state.segment, state.segments
            if data.__class__ is not MappingProxyType:
                data = MappingProxyType(data)
            return data, tier, segment, segments
    return state.data, state.tier, state.segment, state.segments


def ctx_key(state: CaseState) -> tuple[str | None, Any, str | None, str]:
    """``(segment, channel, tier, stage)`` of ``state``: what a report groups its samples by, the
    channel as the case data holds it (None when it holds none). For a native state they are
    read from the core without building the data's view (``CoreState.ctx_key``)."""
    if state.__class__ is NativeState:
        core = getattr(state, "_core", None)
        if core is not None:
            try:
                return core.ctx_key()  # type: ignore[no-any-return]
            except AttributeError:  # a core built before CoreState.ctx_key: its values
                pass
    data, tier, segment, _ = case_values(state)
    return segment, data.get("channel"), tier, state.stage


def signal_types(step: Any) -> list[str]:
    """The types of a step's signals, without building a native step's ``Signal`` objects (read
    from the core's tuples, which the ``Signal`` objects are built from whenever they are)."""
    out = getattr(step, "_out", None)
    if out is not None:
        return [sig[0] for sig in out[2]]
    return [s.type for s in step.signals]


def action_count(step: Any) -> int:
    """How many actions a step produced, without building a native step's ``Action`` objects
    (the core's tuples, one per ``Action`` whenever they are built)."""
    out = getattr(step, "_out", None)
    if out is not None:
        return len(out[1])
    return len(step.actions)


def outbox_rows(step: Any) -> list[tuple[str, str, str, str, str, float]]:
    """The outbox rows of a step's actions, ``(playbook, id, case, type, JSON, available_at)``:
    ``Action.to_json()`` and ``action.at.timestamp()`` of each, in order. A native step's are
    written from the core's tuples, without building its ``Action`` objects (the same instant,
    the same dictionary, the same text)."""
    out = getattr(step, "_out", None)
    if out is None:
        return [
            (a.playbook, a.id, a.case, a.type, a.to_json(), a.at.timestamp()) for a in step.actions
        ]
    ctx: _Native = object.__getattribute__(step, "state")._ctx
    pbid, case, tz = ctx.engine.playbook.id, out[4], ctx.engine.tz
    fromts = datetime.fromtimestamp
    rows = []
    for i, verb, params, at, src in out[1]:
        d = fromts(at, tz)
        doc = {
            "id": i,
            "playbook": pbid,
            "case": case,
            "type": verb,
            "params": json_data(params),
            "at": d.isoformat(),
            "source": src,
        }
        rows.append((pbid, i, case, verb, dumps(doc), d.timestamp()))
    return rows


def raw_handler(
    engine: Engine,
) -> Callable[[CaseState, Event], tuple[CaseState, list[Any], list[Any]] | None] | None:
    """A native engine's ``handle`` without its ``Step`` (:meth:`_Native.handle_raw`: the
    state, the core's actions and signals, or ``None``); ``None`` for the reference engine."""
    native = getattr(engine.handle, "__self__", None)
    return native.handle_raw if isinstance(native, _Native) else None


def raw_starter(
    engine: Engine,
) -> Callable[[Event], tuple[CaseState, list[Any], list[Any]] | None] | None:
    """A native engine's ``start`` of a new key without its ``Step`` (:meth:`_Native.start_raw`);
    ``None`` for the reference engine."""
    native = getattr(engine.start, "__self__", None)
    return native.start_raw if isinstance(native, _Native) else None


def raw_advancer(
    engine: Engine,
) -> (
    tuple[
        Callable[[CaseState, float], tuple[Any, ...] | None],
        Callable[..., CaseState],
        Callable[..., tuple[dict[str, int], list[tuple[int, tuple[Any, ...]]], list[int]]],
    ]
    | None
):
    """A native engine's ``advance`` without its ``Step``, to POSIX seconds
    (:meth:`_Native.advance_out`), with the wrapper of an output's state (:meth:`_Native._state`)
    and the end of a replay's advances in one call (:meth:`_Native.advance_due`); ``None`` for
    the reference engine."""
    native = getattr(engine.advance, "__self__", None)
    if not isinstance(native, _Native):
        return None
    return native.advance_out, native._state, native.advance_due


def raw_outputs(
    step: Any,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Callable[..., ClockRecord]] | None:
    """A native step's actions and signals as the core returned them, without building the
    ``Action`` and ``Signal`` objects; ``None`` for a step of the reference engine.

    ``actions``: ``(id, type, params, at_s, source)``; ``signals``: ``(type, at_s, sla, cycle,
    record, data)``, where ``record`` is ``None``, a ``ClockRecord``, or its fields as a tuple
    (``make_record(*fields)`` builds the ``ClockRecord`` the step's ``signals`` would hold).
    """
    out = getattr(step, "_out", None)
    if out is None:
        return None
    ctx: _Native = object.__getattribute__(step, "state")._ctx
    return out[1], out[2], ctx.record
