"""Allocation in the engine (SPEC §10): ``assign: {tier, strategy, skills}`` emits the strategy
and skills in the action's params, ``agent.assigned {agent}`` sets the built-in ``assignee`` and
``notify: assignee`` names it, on both engine backends (:class:`backends.Both`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backends import Both, runs_natively
from carepath import Event, loads
from carepath.errors import InvalidEvent, PlaybookError

VN = timezone(timedelta(hours=7))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=VN)

QUEUE = """
carepath: 1
id: elder
version: "1"
timezone: Asia/Ho_Chi_Minh
tiers: {L1: {}, L2: {}}
fields:
  age: {type: int, default: 0}
segments:
  seniors: age >= 65
events:
  case.opened: {age: {type: int, default: 0}}
start: {on: case.opened, set: {age: =event.age}}
stages:
  new:
    initial: true
    enter:
      - {assign: {tier: L2, strategy: skills, skills: [elder, vi]}, when: segment == "seniors"}
      - {assign: {tier: L1, strategy: round_robin}, when: age < 65}
    on:
      agent.assigned: open
  open:
    enter: [{notify: assignee, message: a case for you}]
    on:
      case.moved: {do: [{assign: L1}]}
      case.solved: done
  done: {final: true}
"""


def _ev(i: int, type_: str, minutes: int, **data: object) -> Event:
    return Event(id=f"e{i}", type=type_, at=T0 + timedelta(minutes=minutes), case="C-1", data=data)


def test_assign_carries_strategy_and_skills_and_agent_assigned_sets_assignee() -> None:
    both = Both(QUEUE)
    step = both.start(_ev(0, "case.opened", 0, age=80))
    (assign,) = step.actions
    assert assign.type == "assign"
    assert dict(assign.params) == {
        "strategy": "skills",
        "skills": ["elder", "vi"],
        "tier": "L2",
        "from": None,
    }
    assert step.state.tier == "L2"
    step = both.handle(_ev(1, "agent.assigned", 1, agent="lan"))
    assert step.state.stage == "open"
    assert step.state.data["assignee"] == "lan"
    (note,) = step.actions
    assert dict(note.params) == {"message": "a case for you", "to": "assignee", "agent": "lan"}
    # the short form sets the tier only: no strategy in the params
    step = both.handle(_ev(2, "case.moved", 2))
    assert dict(step.actions[0].params) == {"tier": "L1", "from": "L2"}
    assert step.state.data["assignee"] == "lan"


def test_round_robin_without_skills_and_a_reassignment() -> None:
    both = Both(QUEUE)
    step = both.start(_ev(0, "case.opened", 0, age=30))
    assert dict(step.actions[0].params) == {"strategy": "round_robin", "tier": "L1", "from": None}
    both.handle(_ev(1, "agent.assigned", 1, agent="an"))
    step = both.handle(_ev(2, "agent.assigned", 2, agent="binh"))
    assert step.state.data["assignee"] == "binh"


@pytest.mark.parametrize("agent", [None, "", 3, ["lan"]])
def test_agent_assigned_needs_an_agent_id(agent: object) -> None:
    both = Both(QUEUE)
    both.start(_ev(0, "case.opened", 0, age=80))
    with pytest.raises(InvalidEvent, match="is not an agent id"):
        both.handle(_ev(1, "agent.assigned", 1, agent=agent))


def test_conditions_read_assignee() -> None:
    text = QUEUE.replace("case.solved: done", 'case.solved: {to: done, when: assignee == "lan"}')
    both = Both(text)
    both.start(_ev(0, "case.opened", 0, age=80))
    both.handle(_ev(1, "agent.assigned", 1, agent="binh"))
    assert both.handle(_ev(2, "case.solved", 2)).state.stage == "open"
    both.handle(_ev(3, "agent.assigned", 3, agent="lan"))
    assert both.handle(_ev(4, "case.solved", 4)).state.stage == "done"
    # SPEC §4.1: one behaviour on both backends, so the core runs such a condition too
    assert runs_natively(text) is not False


def test_the_native_core_runs_allocation_playbooks() -> None:
    if runs_natively(QUEUE) is None:
        pytest.skip("the native core is not installed")
    assert runs_natively(QUEUE)


@pytest.mark.parametrize(
    ("assign", "message"),
    [
        ("{tier: L1, strategy: fastest}", "'round_robin', 'least_loaded' or 'skills'"),
        ("{tier: L1, skills: [vi]}", "`skills` needs `strategy: skills`, not no strategy"),
        ("{tier: L1, strategy: round_robin, skills: [vi]}", "`skills` needs `strategy: skills`"),
        ("{tier: L1, strategy: skills}", "`strategy: skills` needs a non-empty list of `skills`"),
        ("{tier: L1, strategy: skills, skills: []}", "needs a non-empty list"),
        ("{tier: L9, strategy: least_loaded}", "L9"),
        ("{strategy: least_loaded}", "tier"),
        ("{tier: L1, strategy: least_loaded, when: x}", "when"),
    ],
)
def test_bad_assign_is_a_located_error(assign: str, message: str) -> None:
    text = QUEUE.replace("{assign: {tier: L1, strategy: round_robin}", "{assign: " + assign)
    with pytest.raises(PlaybookError) as exc:
        loads(text)
    first = exc.value.diagnostics[0]
    assert message in first.message
    assert first.line == 19
