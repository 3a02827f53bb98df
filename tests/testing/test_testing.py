"""carepath.testing.harness: FakeClock, CaseDriver and run_scenario, as a CRM's pytest suite uses them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from carepath.errors import InvalidEvent
from carepath.loading.loader import load
from carepath.testing.harness import CaseDriver, FakeClock, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "examples" / "vn-retail-support.yaml"
ICT = timezone(timedelta(hours=7))


@pytest.fixture(scope="module")
def playbook():  # type: ignore[no-untyped-def]
    return load(SUPPORT)


def test_fake_clock() -> None:
    clock = FakeClock(datetime(2027, 3, 1, 9, tzinfo=ICT))
    assert clock() == clock.now == datetime(2027, 3, 1, 9, tzinfo=ICT)
    assert clock.advance(hours=2) == datetime(2027, 3, 1, 11, tzinfo=ICT)
    assert clock.advance(timedelta(minutes=30), seconds=15) == datetime(
        2027, 3, 1, 11, 30, 15, tzinfo=ICT
    )
    assert clock.set("2027-03-02T08:00:00+07:00") == datetime(2027, 3, 2, 8, tzinfo=ICT)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2027, 3, 1, tzinfo=ICT))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(hours=-1)
    with pytest.raises(ValueError, match="naive"):
        FakeClock(datetime(2027, 3, 1))
    assert FakeClock().now.tzinfo is not None


def test_case_driver_breach_and_escalation(playbook) -> None:  # type: ignore[no-untyped-def]
    case = CaseDriver(playbook, start="2027-03-01 09:00", case="T-1")  # local time of the playbook
    step = case.send("case.opened", data={"channel": "chat"})
    assert step is not None and step.state.stage == "new"
    assert case.stage == "new" and case.tier == "L1" and case.segment == "standard"
    assert case.clock("first_response").status == "running"
    assert case.clock("first_response").due == datetime(2027, 3, 1, 9, 15, tzinfo=ICT)
    case.advance(minutes=15)
    assert case.clock("first_response").breached
    assert case.tier == "L2"
    assert "sla.first_response.breached" in case.signal_types()
    assert case.action_types() == ["assign", "notify", "escalate"]
    taken = case.take_actions()
    assert len(taken) == 3 and case.actions == []
    case.send("agent.replied", at="2027-03-01T09:20:00+07:00")
    assert case.stage == "open"
    assert case.clock("first_response").status == "breached"
    assert case.time.now == datetime(2027, 3, 1, 9, 20, tzinfo=ICT)


def test_case_driver_many_cases_and_errors(playbook) -> None:  # type: ignore[no-untyped-def]
    case = CaseDriver(str(SUPPORT), start=datetime(2027, 3, 1, 9, tzinfo=ICT))
    case.send("case.opened", case="A", data={"channel": "email"})
    case.send("case.opened", case="B", data={"channel": "zalo"}, at="2027-03-01T09:05:00+07:00")
    assert case.case == "B"
    assert case.state_of("A").stage == "new"
    with pytest.raises(InvalidEvent, match="channel"):
        case.send("case.opened", case="C", data={"channel": "fax"})
    with pytest.raises(KeyError, match="no case 'C'"):
        case.state_of("C")
    with pytest.raises(KeyError, match="no clock"):
        case.clock("nope")
    case.advance(to="2027-03-20T00:00:00+07:00")
    assert case.deadlines == [] or all(d.due > case.time.now for d in case.deadlines)


def test_run_scenario_passes_and_fails_with_a_diff(playbook) -> None:  # type: ignore[no-untyped-def]
    steps = [
        {"event": "case.opened", "data": {"channel": "email"}},
        {
            "expect": {
                "stage": "new",
                "clocks": {"first_response": {"due": "2027-03-01 11:00"}},
                "actions": {"include": [{"send": "ack_email"}]},
            }
        },
        {"event": "agent.replied", "at": "+30m"},
        {"expect": {"stage": "open", "clocks": {"first_response": "met"}}},
    ]
    res = run_scenario(playbook, steps, start="2027-03-01 09:00", case="T-9")
    assert res.passed
    with pytest.raises(AssertionError) as exc:
        run_scenario(
            playbook, [*steps[:3], {"expect": {"stage": "solved"}}], start="2027-03-01 09:00"
        )
    assert "stage: expected 'solved', got 'open'" in str(exc.value)
