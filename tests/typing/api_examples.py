"""The documented public API (README, SPEC §3, §4.1, §6, §7), type-checked with mypy --strict by
``scripts/check`` — so a signature change that breaks the docs fails CI. Not collected by pytest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from carepath import Calendar, CaseState, Engine, Event, PlaybookError, Step, load, loads
from carepath.runtime import Runtime, open_store
from carepath.staffing import agents_needed, service_level


def engine_contract(t0: datetime, t1: datetime) -> CaseState:
    try:
        playbook = load("examples/vn-retail-support.yaml")
    except PlaybookError as exc:
        for d in exc.diagnostics:
            print(d.location(), d.code, d.message)
        raise
    engine = Engine(playbook)
    opened = Event(
        id="e0", type="case.opened", at=t0, case="T-1", data={"priority": "high", "channel": "chat"}
    )
    step: Step = engine.start(opened)
    step = engine.handle(step.state, Event(id="e1", type="agent.replied", at=t1, case="T-1"))
    step = engine.advance(step.state, t1 + timedelta(hours=1))
    clock = step.state.clocks["first_response"]
    status: str = clock.status
    due: datetime | None = clock.due
    elapsed: timedelta = clock.elapsed
    print(status, due, elapsed, step.state.next_wakeup, [a.to_dict() for a in step.actions])
    return CaseState.from_json(step.state.to_json())


def calendars(t: datetime) -> timedelta:
    cal = Calendar.from_dict(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    )
    u: datetime = cal.add(t, timedelta(hours=8))
    v: datetime = cal.add_days(t, 2)
    assert cal.is_open(cal.next_open(t))
    always = Calendar.from_dict("always")
    text = Path("examples/vn-retail-support.yaml").read_text(encoding="utf-8")
    office: Calendar = loads(text, base_dir="examples").calendars["office"]
    return cal.elapsed(u, v) + always.elapsed(u, v) + office.elapsed(u, v)


def staffing() -> int:
    sl: float = service_level(
        agents=14,
        contacts=100,
        period=timedelta(minutes=30),
        aht=timedelta(seconds=180),
        answer_within=timedelta(seconds=20),
    )
    assert sl > 0.88
    return agents_needed(
        contacts=100,
        period=timedelta(minutes=30),
        aht=timedelta(seconds=180),
        answer_within=timedelta(seconds=20),
        target=0.8,
        max_occupancy=1.0,
        shrinkage=0.0,
    )


def runtime(event: Event) -> int:
    store = open_store("sqlite:///cases.db")
    rt = Runtime([load("examples/vn-retail-support.yaml")], store, clock=lambda: datetime.now(UTC))

    @rt.action("send")
    def deliver(action: object, state: object) -> None:
        print(action, state)

    r = rt.submit(event)
    print(r.status, r.reason, r.cases)
    return (
        rt.run_due()
        + rt.deliver()
        + len(store.cases())
        + len(store.outbox())
        + len(store.rejected())
    )
