"""SPEC §5: all findings are reported at once — a schema error does not hide reference,
expression and calendar errors elsewhere in the playbook, and a rejected entry does not cause
false "unknown reference" reports."""

from __future__ import annotations

from carepath.loading.loader import check

BAD = """\
carepath: 1
id: Bad Desk
version: 1
timezone: Asia/Ho_Chi_Minh
fields:
  priority: {type: enum, values: [low, high]}
calendars:
  office: {hours: {mon-fri: ["08:00-12:00", "11:00-17:00"]}}
start: {on: case.opened}
stages:
  new:
    initial: true
    on:
      agent.replied: opne
      case.escalated: {to: open, when: priorty == "urgent"}
  open: {on: {case.solved: done}}
  done: {final: true}
  broken: {initial: maybe}
  waiting: {on: {ping: broken}}
slas:
  first_response:
    start: {on: case.opened}
    stop: {on: agent.replied}
    targets: [{within: 2d}]
"""


def test_schema_errors_do_not_hide_the_rest() -> None:
    res = check(BAD, file="bad.yaml")
    found = sorted((d.code, d.line, d.col) for d in res.diagnostics)
    assert found == [
        ("CP203", 2, 5),    # the id
        ("CP203", 18, 21),  # initial: maybe
        ("CP205", 24, 24),  # 2d in business time
        ("CP301", 14, 22),  # opne → did you mean 'open'
        ("CP402", 15, 40),  # priorty → did you mean 'priority'
        ("CP506", 8, 45),   # overlapping hours
    ], [d.to_dict() for d in res.diagnostics]
    # `waiting` moves to `broken`, which the schema rejected: no false "unknown stage 'broken'"
    assert not any("'broken'" in d.message for d in res.diagnostics if d.code == "CP301")
    assert res.playbook is None


def test_a_playbook_without_required_sections_stops_at_the_schema() -> None:
    res = check("carepath: 1\nid: x\nversion: 1\n", file="x.yaml")
    assert sorted(d.code for d in res.diagnostics) == ["CP202", "CP202"]  # start, stages
