"""Backend selection (SPEC §4.1) and the native step's public objects (issue 16).

``Engine(pb, backend=...)``, ``engine.backend`` and ``CAREPATH_ENGINE``; a native step's state is
a :class:`~carepath.CaseState` in every way the API promises — attributes, read-only mappings,
equality with the reference's state, ``to_json``/``from_json``, ``dataclasses.replace`` — and its
``trace`` is the reference's. The ``backend`` fixture runs a test once per backend.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carepath import CaseState, Engine, Event, load, loads
from carepath.errors import CarepathError

try:
    import carepath_core  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CAREPATH_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("carepath-core is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.fromisoformat("2027-03-01T09:00:00+07:00")  # a Monday


@pytest.fixture(scope="module")
def desk() -> Any:
    return load(ROOT / "examples" / "vn-retail-support.yaml")


@pytest.fixture(params=["python", "native"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _ev(i: int, type_: str, minutes: float, **data: Any) -> Event:
    return Event(id=f"e{i}", type=type_, at=T0 + timedelta(minutes=minutes), case="T-1", data=data)


def _walk(engine: Engine) -> list[Any]:
    steps = [
        engine.start(_ev(0, "case.opened", 0, channel="chat", priority="high", customer_tier="vip"))
    ]
    for i, (ty, m, data) in enumerate(
        [
            ("agent.replied", 5, {"needs_customer": True}),
            ("customer.replied", 200, {}),
            ("case.priority_changed", 210, {"priority": "urgent"}),
            ("case.solved", 600, {}),
        ],
        1,
    ):
        steps.append(engine.handle(steps[-1].state, _ev(i, ty, m, **data)))
    steps.append(engine.advance(steps[-1].state, T0 + timedelta(days=3)))
    return steps


def test_backend_is_reported(desk: Any, backend: str) -> None:
    assert Engine(desk, backend=backend).backend == backend


def test_auto_picks_native_and_the_environment_overrides_it(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAREPATH_ENGINE", raising=False)
    assert Engine(desk).backend == "native"
    monkeypatch.setenv("CAREPATH_ENGINE", "python")
    assert Engine(desk).backend == "python"
    assert Engine(desk, backend="native").backend == "native"  # an explicit choice wins
    monkeypatch.setenv("CAREPATH_ENGINE", "native")
    assert Engine(desk).backend == "native"
    monkeypatch.setenv("CAREPATH_ENGINE", "fast")
    with pytest.raises(ValueError, match="CAREPATH_ENGINE"):
        Engine(desk)
    with pytest.raises(ValueError, match="backend"):
        Engine(desk, backend="rust")


UNSUPPORTED = """
carepath: 1
id: watch
version: "1"
timezone: UTC
start: {on: opened}
stages:
  a:
    initial: true
    on:
      poke: {to: b, when: sla.reply.remaining != null}
  b: {final: true}
slas:
  reply:
    start: {on: opened}
    stop: {on: answered}
    targets: [{within: 1h}]
"""


def test_unsupported_playbooks_fall_back_or_refuse() -> None:
    pb = loads(UNSUPPORTED)
    assert Engine(pb).backend == "python"  # auto: the reference runs it
    with pytest.raises(CarepathError, match=r"does not support it: .*sla\.reply\.remaining"):
        Engine(pb, backend="native")


def test_native_states_are_case_states(desk: Any) -> None:
    ref = _walk(Engine(desk, backend="python"))
    nat = _walk(Engine(desk, backend="native"))
    for a, b in zip(ref, nat, strict=True):
        s = b.state
        assert isinstance(s, CaseState)
        # the engine's constants, set on their first read (read first here: nothing read them)
        assert (s.timezone, s.playbook, s.version, s.content_hash) == (
            a.state.timezone,
            a.state.playbook,
            a.state.version,
            a.state.content_hash,
        )
        assert s == a.state and a.state == s
        assert (s != a.state) is False and (a.state != s) is False
        assert s.to_json() == a.state.to_json()
        assert CaseState.from_json(s.to_json()) == s
        assert repr(s) == repr(a.state)
        assert (s.case, s.stage, s.tier, s.segment, s.segments, s.now, s.opened, s.next_wakeup) == (
            a.state.case,
            a.state.stage,
            a.state.tier,
            a.state.segment,
            a.state.segments,
            a.state.now,
            a.state.opened,
            a.state.next_wakeup,
        )
        assert dict(s.data) == dict(a.state.data)
        with pytest.raises(TypeError):
            s.data["priority"] = "low"  # type: ignore[index]
        with pytest.raises(TypeError):
            s.clocks["resolution"] = s.clocks["resolution"]  # type: ignore[index]
        for name, c in a.state.clocks.items():
            d = s.clocks[name]
            assert (
                d.status,
                d.breached,
                d.due,
                d.elapsed,
                d.remaining,
                d.paused,
                d.failed_by,
                d.cycle,
                d.history,
            ) == (
                c.status,
                c.breached,
                c.due,
                c.elapsed,
                c.remaining,
                c.paused,
                c.failed_by,
                c.cycle,
                c.history,
            )
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.stage = "x"  # type: ignore[misc]
        assert b.trace == a.trace and b.explain() == a.explain()
        assert [x.to_dict() for x in b.deadlines] == [x.to_dict() for x in a.deadlines]
    moved = dataclasses.replace(nat[-1].state, stage="open")
    assert moved.stage == "open" and moved.clocks == ref[-1].state.clocks


def test_inputs_are_not_mutated_and_steps_repeat(desk: Any, backend: str) -> None:
    engine = Engine(desk, backend=backend)
    s = engine.start(_ev(0, "case.opened", 0, channel="email")).state
    before = s.to_json()
    a = engine.handle(s, _ev(1, "agent.replied", 30))
    b = engine.handle(s, _ev(1, "agent.replied", 30))
    assert s.to_json() == before
    assert a.state.to_json() == b.state.to_json() and [x.to_dict() for x in a.actions] == [
        x.to_dict() for x in b.actions
    ]


def test_a_state_from_json_continues_natively(desk: Any) -> None:
    ref = Engine(desk, backend="python")
    nat = Engine(desk, backend="native")
    s = ref.start(_ev(0, "case.opened", 0, channel="phone", priority="urgent")).state
    s2 = CaseState.from_json(s.to_json())
    ev = _ev(1, "agent.replied", 50)
    assert nat.handle(s2, ev).state.to_json() == ref.handle(s, ev).state.to_json()
    t = T0 + timedelta(days=2)
    assert nat.advance(s2, t).state.to_json() == ref.advance(s, t).state.to_json()
