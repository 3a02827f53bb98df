"""``transitions`` as an independent oracle for the engine's stage path (issue 4).

For generated playbooks whose stage path depends only on the events (no timers moving the case,
no signal handlers, guards that read only the event), feeding the same event sequence to the
engine and to ``to_machine(playbook)`` gives the same stage after every event.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath import Engine, load, loads
from carepath.errors import CaseError
from carepath.graph.machine import to_machine
from strategies import playbooks, streams, timed, yaml_text

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=256)
def _engine(text: str) -> Engine:
    return Engine(loads(text))


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_engine_stage_path_equals_the_transitions_machine(data: st.DataObject) -> None:
    pbd = data.draw(playbooks(timers=False, signals=False, event_guards=True))
    subject = _engine(yaml_text(pbd))
    pb = subject.playbook
    events = timed(data.draw(streams(pbd)))
    machine = to_machine(pb)
    model = machine.models[0]
    state = subject.start(events[0]).state
    # the opening event runs through the initial stage's handlers too
    model.trigger(events[0].type, event=dict(events[0].data))
    engine_path, machine_path = [state.stage], [model.state]
    ended = state.ended or machine.get_state(model.state).final
    for e in events[1:]:
        if ended:
            break
        try:
            state = subject.handle(state, e).state
        except CaseError:
            continue
        view = {k: d for k, (_, d, _) in pb.events.get(e.type, {}).items()}  # declared defaults
        view.update(e.data)
        model.trigger(e.type, event=view)
        engine_path.append(state.stage)
        machine_path.append(model.state)
        ended = machine.get_state(model.state).final or (
            e.type in pb.exit_on and pb.exit_when is None
        )
        assert state.ended == ended
    assert engine_path == machine_path


def test_example_machines_expose_the_stage_graph() -> None:
    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    m = to_machine(pb)
    assert set(m.states) == set(pb.stages)
    model = m.models[0]
    assert model.state == "new"
    model.trigger("agent.replied", event={"needs_customer": True})
    assert model.state == "waiting_customer"
    model.trigger("customer.replied", event={})
    assert model.state == "open"
    model.trigger("agent.replied", event={"needs_customer": False})  # guard false: stays
    assert model.state == "open"
    model.trigger("case.cancelled", event={})  # a root handler
    assert model.state == "closed" and m.get_state("closed").final
    assert (
        m.carepath_guards[("agent.replied", "open", "waiting_customer")] == "event.needs_customer"
    )
    triggers = m.get_triggers("waiting_customer")
    assert "after:stages.waiting_customer.after[2]" in triggers
    j = to_machine(load(ROOT / "examples" / "omnichannel-journey.yaml"))
    assert "after:stages.awareness.after[1]" in j.get_triggers("awareness")


def test_machine_and_engine_agree_on_the_support_log() -> None:
    import json

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    subject = Engine(pb)
    machines: dict[str, Any] = {}
    states: dict[str, Any] = {}
    for line in (
        (ROOT / "examples" / "events" / "vn-retail-support.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ):
        from carepath import Event

        e = Event.from_dict(json.loads(line))
        key = e.case
        if key not in states:
            states[key] = subject.start(e).state
            machines[key] = to_machine(pb)
        else:
            states[key] = subject.handle(states[key], e).state
        view = {k: d for k, (_, d, _) in pb.events.get(e.type, {}).items()}
        view.update(e.data)
        model = machines[key].models[0]
        # guards here may read case data (segment, channel): give the model the engine's data
        model.data = dict(states[key].data)
        if not machines[key].get_state(model.state).final:
            model.trigger(e.type, event=view)
        assert model.state == states[key].stage, (e.id, model.state, states[key].stage)
