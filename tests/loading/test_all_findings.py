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
        ("CP203", 2, 5),  # the id
        ("CP203", 18, 21),  # initial: maybe
        ("CP205", 24, 24),  # 2d in business time
        ("CP301", 14, 22),  # opne → did you mean 'open'
        ("CP402", 15, 40),  # priorty → did you mean 'priority'
        ("CP506", 8, 45),  # overlapping hours
    ], [d.to_dict() for d in res.diagnostics]
    # `waiting` moves to `broken`, which the schema rejected: no false "unknown stage 'broken'"
    assert not any("'broken'" in d.message for d in res.diagnostics if d.code == "CP301")
    assert res.playbook is None


def test_a_playbook_without_required_sections_stops_at_the_schema() -> None:
    res = check("carepath: 1\nid: x\nversion: 1\n", file="x.yaml")
    assert sorted(d.code for d in res.diagnostics) == ["CP202", "CP202"]  # start, stages


def test_a_reference_error_does_not_hide_goal_findings() -> None:
    # issue 15 #16: `assign: L9` stopped the run before the goals were checked
    text = """\
carepath: 1
id: t
version: "1"
tiers: {L1: {}}
start: {on: case.opened}
stages:
  new: {initial: true, enter: [{assign: L9}], on: {x: done}, after: [{in: 1h, to: done}]}
  done: {final: true}
goals:
  - {id: a, metric: csat, target: ">= 80%", window: rolling 30d, sla: nope}
  - {id: b, metric: csat, target: ">= 80%", window: rolling 30d, segment: nope}
  - {id: c, metric: csat, target: ">= 80%", window: rolling 30d, channel: nope}
  - {id: d, metric: csat, target: ">= 80%", window: rolling 30d, tier: nope}
  - {id: d, metric: csatt, target: ">= 80%", window: rolling 3h}
"""
    res = check(text, file="t.yaml")
    assert sorted((d.code, d.path) for d in res.diagnostics) == [
        ("CP302", "goals[3].tier"),
        ("CP302", "stages.new.enter[0].assign"),
        ("CP304", "goals[2].channel"),
        ("CP305", "goals[1].segment"),
        ("CP308", "goals[0].sla"),
        ("CP509", "goals[4].metric"),
        ("CP513", "goals[4].window"),
        ("CP514", "goals[4].id"),
    ]


def test_an_error_in_a_folded_condition_is_located_at_the_token() -> None:
    # issue 15 #17: it was located at the `>` of the block scalar
    text = """\
carepath: 1
id: t
version: "1"
start: {on: case.opened}
stages:
  new:
    initial: true
    on:
      x:
        to: done
        when: >
          event.a == 1 and
            event.b == 2 and
          bogus > 2
      y:
        to: done
        when: |-
          event.a == 1 or
          event.c == 3 or
          priorty > 1
      z:
        to: done
        when: event.a == 1 and
          prio > 2
    after: [{in: 1h, to: done}]
  done: {final: true}
templates:
  hi:
    text: |
      Hello {name},
      your case {case} is {stat}.
"""
    res = check(text, file="t.yaml")
    assert sorted((d.code, d.line, d.col) for d in res.diagnostics) == [
        ("CP306", 30, 13),  # {name}: in a literal block scalar
        ("CP306", 31, 27),  # {stat}: on its second line
        ("CP402", 14, 11),  # bogus: folded, with a more-indented line before it
        ("CP402", 20, 11),  # priorty: literal
        ("CP402", 24, 11),  # prio: a plain scalar over two lines
    ], [d.to_dict() for d in res.diagnostics]


def test_an_error_in_a_quoted_condition_is_located_at_the_token() -> None:
    # SPEC §2.1: "an error inside an expression at its column within the line" — also in a quoted
    # scalar that spans lines or holds escapes (it was placed by the offset in the parsed value)
    text = """\
carepath: 1
id: t
version: "1"
start: {on: case.opened}
stages:
  new:
    initial: true
    on:
      a: {to: done, when: 'event.a == ''x'' and bogus1'}
      b:
        to: done
        when: "event.a == 'x' and
          bogus2 > 1"
      c: {to: done, when: "event.a == \\"x\\" and bogus3"}
      d: {to: done, when: "event.a == \\u0022x\\" and bogus4"}
      e:
        to: done
        when: "event.a == 1 and \\
          bogus5"
      f: {to: done, when: 'event.a == 1 and bogus6'}
    after: [{in: 1h, to: done}]
  done: {final: true}
"""
    res = check(text, file="t.yaml")
    lines = text.splitlines()
    want = []
    for n in range(1, 7):
        line = next(i for i, t in enumerate(lines, 1) if f"bogus{n}" in t)
        want.append(("CP402", line, lines[line - 1].index(f"bogus{n}") + 1))
    assert sorted((d.code, d.line, d.col) for d in res.diagnostics) == sorted(want)
