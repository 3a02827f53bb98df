"""Helpers for testing playbooks from Python (a CRM's own pytest suite).

``FakeClock`` is a controllable clock (a callable returning an aware ``datetime``, as the runtime's
``clock=`` expects): the runtime's :class:`~carepath.runtime.clock.ManualClock` under the name a
test-suite looks for. ``CaseDriver`` drives one case (or several) through a playbook in memory::

    from carepath.testing.harness import CaseDriver

    def test_chat_breach():
        case = CaseDriver("playbooks/support.yaml", start="2027-03-01T09:00:00+07:00", case="T-1")
        case.send("case.opened", data={"channel": "chat"})
        case.advance(minutes=15)
        assert case.stage == "new"
        assert case.clock("first_response").breached
        assert case.tier == "L2"
        assert "sla.first_response.breached" in case.signal_types()

``run_scenario(playbook, steps)`` runs the steps of the ``*.test.yaml`` format (as dicts) and
raises ``AssertionError`` with the readable diff when an expectation fails.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from carepath.runtime.clock import ManualClock as FakeClock

if TYPE_CHECKING:
    from carepath.compile.ir import Playbook
    from carepath.drivers.simulate import SimStep
    from carepath.engine.engine import Step
    from carepath.state import Action, CaseState, Clock, Deadline, Signal
    from carepath.testing.scenario import ScenarioResult

__all__ = ["CaseDriver", "FakeClock", "run_scenario"]


def _aware(t: datetime | str, tz: tzinfo | None = None) -> datetime:
    from datetime import UTC

    from carepath.drivers.simulate import parse_instant

    if isinstance(t, str):
        return parse_instant(t, tz or UTC)
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()} is not allowed: give a timezone")
    return t


def _playbook(playbook: Playbook | str | os.PathLike[str]) -> Playbook:
    from carepath.compile.ir import Playbook
    from carepath.loading.loader import load

    if isinstance(playbook, Playbook):
        return playbook
    return load(playbook)


class CaseDriver:
    """Drives cases of a playbook in memory, with a :class:`FakeClock`.

    ``send`` applies an event (``at`` defaults to the clock's time; the clock moves to it);
    ``advance`` moves the clock and wakes every case. Reading properties (``stage``, ``tier``,
    ``data``, ``state``, ``clock(name)``…) look at the default case (``case=``, or the case of
    the last event sent); ``actions``/``signals`` accumulate everything emitted for it, and
    ``take_actions()`` returns and forgets them.
    """

    def __init__(
        self,
        playbook: Playbook | str | os.PathLike[str],
        *,
        start: datetime | str | None = None,
        case: str = "C-1",
        clock: FakeClock | None = None,
    ) -> None:
        from carepath._instants import zone
        from carepath.drivers.simulate import Simulator

        self.playbook = _playbook(playbook)
        self.tz = zone(self.playbook.timezone)
        self.time = (
            clock
            if clock is not None
            else FakeClock(_aware(start, self.tz) if start is not None else None)
        )
        self.sim = Simulator(self.playbook)
        self.case = case
        self.steps: list[SimStep] = []
        self._actions: dict[str, list[Action]] = {}
        self._signals: dict[str, list[Signal]] = {}
        self._n = 0

    # -- driving --------------------------------------------------------------------------------
    def send(
        self,
        type: str,
        *,
        at: datetime | str | None = None,
        data: Mapping[str, Any] | None = None,
        case: str | None = None,
        id: str | None = None,
    ) -> Step | None:
        """Apply an event; returns the case's engine step (``None`` if no case took it).
        Engine errors (``InvalidEvent``, ``EventOutOfOrder``…) propagate."""
        from carepath.events import Event

        if at is not None:
            self.time.set(at)
        self._n += 1
        key = case or self.case
        ev = Event(id=id or f"e{self._n}", type=type, at=self.time.now, case=key, data=data or {})
        steps = self.sim.feed(ev)
        self._record(steps)
        self.case = key
        last = steps[-1] if steps else None
        return None if last is None or last.kind != "event" else last.step

    def advance(
        self, delta: timedelta | None = None, *, to: datetime | str | None = None, **kwargs: float
    ) -> list[SimStep]:
        """Move the clock (by ``delta``/``hours=``… or ``to=`` an instant) and wake every case."""
        t = self.time.set(to) if to is not None else self.time.advance(delta, **kwargs)
        steps = self.sim.advance_to(t)
        self._record(steps)
        return steps

    def _record(self, steps: list[SimStep]) -> None:
        self.steps.extend(steps)
        for s in steps:
            if s.case is None:
                continue
            if s.step is not None:
                self._actions.setdefault(s.case, []).extend(s.step.actions)
            self._signals.setdefault(s.case, []).extend(s.signals)

    # -- reading --------------------------------------------------------------------------------
    def state_of(self, case: str | None = None) -> CaseState:
        """The state of ``case`` (default: the current case); ``KeyError`` if it never opened."""
        key = case or self.case
        st = self.sim.cases.get(key)
        if st is None:
            raise KeyError(f"no case {key!r}: no event opened it")
        return st

    @property
    def state(self) -> CaseState:
        """The current case's state."""
        return self.state_of()

    @property
    def stage(self) -> str:
        """The current case's stage."""
        return self.state.stage

    @property
    def tier(self) -> str | None:
        """The current case's tier."""
        return self.state.tier

    @property
    def segment(self) -> str | None:
        """The current case's segment."""
        return self.state.segment

    @property
    def data(self) -> Mapping[str, Any]:
        """The current case's data."""
        return self.state.data

    @property
    def ended(self) -> bool:
        """Whether the current case has ended."""
        return self.state.ended

    def clock(self, name: str) -> Clock:
        """An SLA clock of the current case."""
        clocks = self.state.clocks
        if name not in clocks:
            raise KeyError(f"no clock {name!r} (clocks: {', '.join(clocks)})")
        return clocks[name]

    @property
    def deadlines(self) -> list[Deadline]:
        """The current case's deadlines, sorted."""
        return self.sim.engine.deadlines(self.state)

    @property
    def actions(self) -> list[Action]:
        """Every action emitted for the current case (since the last ``take_actions``)."""
        return list(self._actions.get(self.case, []))

    @property
    def signals(self) -> list[Signal]:
        """Every signal raised for the current case (since the last ``take_signals``)."""
        return list(self._signals.get(self.case, []))

    def action_types(self) -> list[str]:
        """``[a.type for a in actions]``."""
        return [a.type for a in self.actions]

    def signal_types(self) -> list[str]:
        """``[s.type for s in signals]``."""
        return [s.type for s in self.signals]

    def take_actions(self) -> list[Action]:
        """The actions so far, forgotten afterwards."""
        return self._actions.pop(self.case, [])

    def take_signals(self) -> list[Signal]:
        """The signals so far, forgotten afterwards."""
        return self._signals.pop(self.case, [])


def run_scenario(
    playbook: Playbook | str | os.PathLike[str],
    steps: Sequence[Mapping[str, Any]],
    *,
    name: str = "scenario",
    start: datetime | str | None = None,
    case: str | None = None,
) -> ScenarioResult:
    """Run scenario steps (the ``*.test.yaml`` step format, as dicts); raises ``AssertionError``
    with the diff on the first failing step, returns the result otherwise."""
    from carepath.testing.scenario import run_steps

    res = run_steps(_playbook(playbook), steps, name=name, start=start, case=case)
    if res.failures:
        raise AssertionError("\n".join(f.render() for f in res.failures))
    return res
