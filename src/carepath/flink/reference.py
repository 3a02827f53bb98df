"""An in-memory run with the embedded runtime's simulated clock, for comparison with the Flink job.

:func:`run_reference` reads event lines in order and, for each event, routes it to every playbook
(:func:`carepath.engine.router.route`, the same call the Flink function makes), then — after the last
event — advances every case to ``until`` (or to the last event's instant). Per case this is the
simulated clock of ``carepath run --clock simulated``: wake-ups due strictly before an event fire
before it (``Engine.handle`` fires them), those due at its instant after it. Cases are
independent, so the order in which *different* cases wake up does not change any result.

It needs no PyFlink: the tests compare the Flink job with it, and ``bench/bench_flink.py`` times
it as the embedded engine's throughput on the same log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carepath.events import Event, Line
from carepath.flink.core import (
    action_line,
    advance_to,
    apply_event,
    cap_us,
    control_at,
    erase_case,
    erase_records,
    is_control,
    line_rejection,
    micros,
    parse_line,
    rejection,
    skip_line,
)
from carepath.state import Action, CaseState

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.engine.engine import Engine

__all__ = ["Result", "run_reference"]


@dataclass(slots=True)
class Result:
    """Actions and rejections (JSON lines, in emission order) and the final state of each case."""

    actions: list[str] = field(default_factory=list)
    states: dict[tuple[str, str], CaseState] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    def state_lines(self) -> list[str]:
        """``CaseState.to_json()`` of each case, sorted by (playbook, case)."""
        return [self.states[k].to_json() for k in sorted(self.states)]


def run_reference(
    playbooks: Sequence[Playbook], lines: Iterable[str | Line], until: datetime | None = None
) -> Result:
    """Run ``lines`` (JSONL event lines, or :class:`~carepath.events.Line` as :func:`read_lines`
    reads them: one the reader refused is rejected, located) through ``playbooks`` in memory (see
    the module docstring)."""
    from carepath.engine.engine import Engine

    engines = [Engine(p, trace=False) for p in playbooks]
    cases: list[dict[str, CaseState]] = [{} for _ in engines]
    seen: set[str] = set()
    out = Result()
    last_us: int | None = None
    for raw in lines:
        if isinstance(raw, Line):
            if raw.problem is not None:
                out.rejected.append(line_rejection(raw))
                continue
            raw = raw.text
        line = raw.rstrip("\n")
        if skip_line(line):
            continue
        event, obj, err = parse_line(line)
        if event is None and is_control(obj):  # an `erase` control line, in arrival order
            _erase(engines, cases, obj, out)
            continue
        if event is None:
            out.rejected.append(rejection(obj, "invalid", err))
            continue
        us = micros(event.at)
        last_us = us if last_us is None else max(last_us, us)
        if event.id in seen:
            continue
        rej, steps = _route(engines, cases, event, obj)
        if rej is not None:
            out.rejected.append(rej)
            continue
        seen.add(event.id)
        for i, key, st, acts in steps:
            cases[i][key] = st
            out.actions.extend(action_line(a) for a in acts)
    cap = _cap(until, last_us)
    for i, engine in enumerate(engines):
        for key, st in cases[i].items():
            final: CaseState | None = st
            if cap is not None:
                final, acts = advance_to(engine, st, cap)
                out.actions.extend(action_line(a) for a in acts)
            if final is not None:
                out.states[(final.playbook, key)] = final
    return out


def _erase(
    engines: Sequence[Engine], cases: list[dict[str, CaseState]], obj: Any, out: Result
) -> None:
    """Apply an ``erase`` control line to the cases it names (or reject it)."""
    records, rej = erase_records(engines, obj)
    if rej is not None:
        out.rejected.append(rej)
    for rec in records:
        key = rec.key.split(":", 1)[1]
        # wake-ups due strictly before the erasure fire before it, as in the job
        before = (micros(control_at(obj)) - 1) / 1_000_000
        st, acts = advance_to(engines[rec.pb], cases[rec.pb].get(key), before)
        out.actions.extend(action_line(a) for a in acts)
        st, _ = erase_case(engines[rec.pb], st)
        if st is not None:
            cases[rec.pb][key] = st


def _cap(until: datetime | None, last_us: int | None) -> float | None:
    c = cap_us(None if until is None else micros(until), last_us)
    return None if c is None else c / 1_000_000


def _route(
    engines: Sequence[Engine], cases: list[dict[str, CaseState]], event: Event, obj: Any
) -> tuple[str | None, list[tuple[int, str, CaseState, list[Action]]]]:
    """The embedded runtime's decision over every playbook: all or nothing (a hard rejection by
    one playbook rejects the event for all), else applied by some, else ``unknown_case``, else
    "no case key"."""
    steps: list[tuple[int, str, CaseState, list[Action]]] = []
    unknown: list[str] = []
    no_key = ""
    for i, engine in enumerate(engines):
        if not engine.mentions(event.type):
            continue
        try:
            key = engine.case_key(event)
        except Exception as exc:
            return rejection(
                obj,
                "invalid",
                f"{engine.playbook.id}: cannot compute the case key of event {event.id}: {exc}",
                engine.playbook.id,
            ), []
        if not key:
            no_key = no_key or rejection(
                obj,
                "invalid",
                f"event {event.id} ({event.type}) has no case key",
                engine.playbook.id,
            )
            continue
        res = apply_event(engine, cases[i].get(key), event)
        if res.status == "rejected":
            line = rejection(obj, res.reason or "invalid", res.message, engine.playbook.id)
            if res.reason == "unknown_case":
                unknown.append(line)
                continue
            return line, []
        if res.status == "applied" and res.state is not None:
            steps.append((i, key, res.state, res.actions))
    if steps:
        return None, steps
    if unknown:
        return unknown[0], []
    return (no_key or None), []


def read_lines(path: str) -> list[Line]:
    """The lines of an events file, through the one bounded reader
    (:func:`carepath.drivers.eventfile.read_lines`): a line that is not UTF-8 or too long comes
    back with its ``problem`` instead of failing the whole file."""
    from carepath.drivers.eventfile import read_lines as bounded_lines

    return list(bounded_lines(path))


def state_key(line: str) -> tuple[str, str]:
    """``(playbook, case)`` of a ``CaseState.to_json()`` line."""
    d = json.loads(line)
    return (d["playbook"]["id"], d["case"])
