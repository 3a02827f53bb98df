"""The JSON shape of a native state, read straight from the core's tuples.

:meth:`CaseState.to_dict` of a :class:`~carepath._native.backend.NativeState` would first build the
state's Python fields (a ``Clock`` per clock, a ``ClockRecord`` with four ``datetime``/``timedelta``
values per finished cycle, ``Pending`` items) only to take them apart again; a store encodes every
state it saves, so that detour cost about twice the step itself. :func:`state_dict` writes the
same dictionary from the numbers the core holds: every rule of ``Clock.to_dict`` (defaults left
out, implied values left out, whole seconds as integers) is applied to the tuple's fields in the
same order. ``tests/native/test_native_diff.py`` compares the JSON of every native step with the
reference's, byte for byte, so the two cannot drift apart.

The core writes the same text itself (``CoreState.to_json``, ``core/src/state_json.rs``, issue
17): :meth:`NativeState.to_json <carepath._native.backend.NativeState.to_json>` uses it, and
``dumps(state_dict(...))`` stays the path for what the core hands back (an integer beyond 64 bits,
a lone surrogate, a value of another type in the case data) and the reference that
``tests/native/test_state_text.py`` holds the core's text to. The core asks :func:`iso_text`
for the ISO texts of the instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from carepath._instants import json_data, round_micros, to_iso, zone
from carepath.state import _CLOSED, STATE_FORMAT, ClockRecord, _n

__all__ = ["iso_text", "state_dict"]


def _secs(x: Any) -> Any:
    """Seconds as a ``timedelta`` holds them (to the microsecond), as the reference reads them,
    written as ``_n`` writes them (a whole number as an integer)."""
    if x.__class__ is float and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return _n(timedelta(seconds=x).total_seconds())


def _instant(x: Any) -> Any:
    """POSIX seconds as a ``datetime`` holds them (to the microsecond) and ``round_micros`` reads
    them back, written as ``_n`` writes them."""
    if x.__class__ is float and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return _n(round_micros(round(x * 1_000_000) / 1_000_000))


def _row(r: Any) -> list[Any]:
    """A history row ``[cycle, started, stopped, elapsed, paused, target, met, failed_by]`` of a
    record the core keeps as numbers, or of a ``ClockRecord``."""
    if r.__class__ is ClockRecord:
        return [
            r.cycle,
            _n(round_micros(r.started.timestamp())),
            _n(round_micros(r.stopped.timestamp())),
            _n(r.elapsed.total_seconds()),
            _n(r.paused.total_seconds()),
            None if r.target is None else _n(r.target.total_seconds()),
            r.met,
            None if r.failed_by is None else _n(r.failed_by.total_seconds()),
        ]
    cycle, started, stopped, elapsed, paused, target, met, failed = r
    return [
        cycle,
        _instant(started),
        _instant(stopped),
        _secs(elapsed),
        _secs(paused),
        None if target is None else _secs(target),
        met,
        None if failed is None else _secs(failed),
    ]


def _clock(c: Sequence[Any] | None, now_s: float) -> dict[str, Any]:  # noqa: C901 - one rule per field of Clock.to_dict, in its order
    """``Clock.to_dict(now_s)`` of a core clock tuple: a field is written when it differs from
    what the decoder infers (``state._implied``), else when it differs from its default."""
    if c is None:
        return {"status": "pending"}
    (_, status, cycle, breached, started, as_of, elapsed, paused, pause_from, pauses, index) = c[
        :11
    ]
    target, calendar, breach, due, fired, conds, hist = c[11:]
    d: dict[str, Any] = {"status": status}
    if cycle != 0:
        d["cycle"] = _n(cycle)
    if breached:
        d["breached"] = _n(breached)
    row = _row(hist[-1]) if hist and status in _CLOSED else None
    if row is not None and row[0] == cycle:  # the closed cycle's own values are its last row
        if started != float(row[1]):
            d["started_s"] = _n(started)
        if as_of != float(row[2]):
            d["as_of_s"] = _n(as_of)
        if elapsed != float(row[3]):
            d["elapsed_s"] = _n(elapsed)
        if paused != float(row[4]):
            d["paused_s"] = _n(paused)
        closed_target: Any = None if row[5] is None else float(row[5])
        implied_target = True
    else:
        if started is not None:
            d["started_s"] = _n(started)
        if as_of != (now_s if status != "pending" else None):
            d["as_of_s"] = _n(as_of)
        if elapsed != 0.0:
            d["elapsed_s"] = _n(elapsed)
        if paused != 0.0:
            d["paused_s"] = _n(paused)
        closed_target, implied_target = None, False
    if pause_from is not None:
        d["pause_from_s"] = _n(pause_from)
    if index is not None:
        d["target_index"] = _n(index)
    if target != closed_target if implied_target else target is not None:
        d["target_s"] = _n(target)
    if calendar is not None:
        d["calendar"] = calendar
    if breach is not None:
        d["breach_s"] = _n(breach)
    if due != (breach if breached else None):
        d["due_s"] = _n(due)
    if fired != 0:
        d["fired"] = _n(fired)
    if conds != 0:
        d["conds"] = _n(conds)
    if pauses:
        d["pauses"] = [[_n(a), _n(b)] for a, b in pauses]
    if hist:
        d["history"] = [_row(r) for r in hist]
    return d


#: ISO texts of instants, by timezone name: a case's ``opened`` is written again at every save,
#: its ``next_wakeup`` often too (an instant is the same text however often it is written).
_ISO: dict[str, dict[float, str]] = {}
_ISO_KEPT = 1 << 16  # texts kept per timezone before the cache starts again


def iso_text(x: float | None, tzname: str) -> str | None:
    """``to_iso(x, zone(tzname))``, remembered (the core's ``CoreState.to_json`` calls it too)."""
    if x is None:
        return None
    texts = _ISO.get(tzname)
    if texts is None:
        texts = _ISO[tzname] = {}
    text = texts.get(x)
    if text is None:
        if len(texts) >= _ISO_KEPT:
            texts.clear()
        text = texts[x] = to_iso(x, zone(tzname))  # type: ignore[assignment]
    return text


def state_dict(st: Any, core: Any, names: Sequence[str]) -> dict[str, Any]:
    """``CaseState.to_dict()`` of the native state ``st`` whose core state is ``core`` (clocks
    named ``names``, in the playbook's order), without building its Python fields."""
    data, tier, segment, segments, clocks, opened, seq, epoch, pending, sends = core.rest()
    tzname = st.timezone
    now_s = st.now_s
    d: dict[str, Any] = {
        "format": STATE_FORMAT,
        "playbook": {"id": st.playbook, "version": st.version, "hash": st.content_hash},
        "case": st.case,
        "stage": st.stage,
        "data": json_data(data),
        "tier": tier,
        "segments": list(segments),
        "clocks": {n: _clock(c, now_s) for n, c in zip(names, clocks, strict=True)},
        "now": iso_text(now_s, tzname),
        "opened": iso_text(opened, tzname),
        "seq": seq,
        "epoch": epoch,
        "timezone": st.timezone,
        "next_wakeup": iso_text(st.next_wakeup_s, tzname),
    }
    if segment != (segments[0] if segments else None):
        d["segment"] = segment
    if st.ended:
        d["ended"] = True
    if pending:
        d["pending"] = [
            [_n(p[0]), p[1], p[2], list(p[3]), p[4], _n(p[5])]
            if p.__class__ is tuple
            else p.to_list()
            for p in pending
        ]
    if sends:
        d["sends"] = {k: list(v) for k, v in sends.items()}
    return d
