"""Semantic checks (``carepath.lint.checks``): each check on small playbooks, positive and negative."""

from __future__ import annotations

import textwrap

import pytest

from carepath.lint.checks import typical_open_day
from carepath.lint.goals import MAX_GAP_CLOSED
from carepath.loading.loader import check, loads
from carepath.metrics.targets import TargetError, parse_target, parse_value

HEAD = """\
carepath: 1
id: t
version: "1"
fields:
  channel: {type: enum, values: [chat, email], default: chat}
channels:
  chat: {calendar: always}
  email: {calendar: always}
tiers: {L1: {}, L2: {}}
start: {on: case.opened}
"""


def findings(body: str, head: str = HEAD, tail: str = "") -> list[tuple[str, str]]:
    res = check(head + textwrap.dedent(body) + tail)
    return sorted((d.code, d.path) for d in res.diagnostics)


def codes(body: str, head: str = HEAD, tail: str = "") -> list[str]:
    return [c for c, _ in findings(body, head, tail)]


# -- CP503 no way out --------------------------------------------------------------------------


def test_no_way_out_is_an_error() -> None:
    assert findings("""
        stages:
          new: {initial: true, on: {x: stuck}}
          stuck:
            on: {y: stuck}
            every: [{cron: "0 9 * * *", do: [{send: hi}]}]
          done: {final: true}
    """) == [("CP503", "stages.stuck"), ("CP601", "stages.done"), ("CP602", "stages.new")]


def test_root_handler_and_exit_are_ways_out() -> None:
    assert (
        codes("""
        stages:
          new: {initial: true, after: [{in: 1d, to: new}]}
          done: {final: true}
        on: {case.closed: done}
    """)
        == []
    )
    assert (
        codes("""
        stages:
          new: {initial: true, after: [{in: 1d, to: new}]}
        exit: {on: unsubscribed}
    """)
        == []
    )


def test_own_unconditional_handler_hides_the_root_one() -> None:
    got = findings("""
        stages:
          new: {initial: true, on: {case.closed: {do: [{send: bye}]}}, after: [{in: 1d, to: new}]}
          done: {final: true}
        on: {case.closed: done}
    """)
    assert got == [("CP503", "stages.new"), ("CP601", "stages.done")]


# -- CP601 unreachable -------------------------------------------------------------------------


def test_unreachable_and_reachability_rules() -> None:
    assert findings("""
        stages:
          new: {initial: true, on: {go: {to: a, when: "1 > 2"}}, after: [{in: 1d, to: done}]}
          a: {after: [{in: 1d, to: done}]}
          b: {after: [{in: 1d, to: done}]}
          done: {final: true}
        on:
          tier.exhausted: b
    """) == [("CP601", "stages.a")]  # constant-false `when` is no edge; a signal handler is one


def test_handlers_after_an_unconditional_one_are_dead() -> None:
    got = codes("""
        stages:
          new: {initial: true, on: {go: [done, a]}}
          a: {after: [{in: 1d, to: done}]}
          done: {final: true}
    """)
    assert got == ["CP601", "CP602"]  # `a` unreachable; `new` has nothing running


# -- CP602 forgotten customer ------------------------------------------------------------------

FORGOTTEN = [
    ("after: [{in: 2d, do: [{send: reminder}]}]", True),  # one-shot: then nothing
    ("after: [{in: 7d, to: done}]", False),  # always moves on
    ("after: [{in: 7d, to: done, when: 'channel == \"chat\"'}]", True),  # may not move on
    ("after: [{in: 7d, to: new}]", False),  # re-entry re-arms the timer
    ("every: [{cron: '0 9 * * MON', do: [{send: checkin}]}]", False),
    ("enter: [{send: offer, in: 14d}]", True),  # a delayed action fires once
]


@pytest.mark.parametrize(("stage", "warn"), FORGOTTEN)
def test_forgotten_customer_timers(stage: str, warn: bool) -> None:
    got = codes(f"""
        stages:
          new: {{initial: true, on: {{close: done}}, {stage}}}
          done: {{final: true}}
    """)
    assert got == (["CP602"] if warn else [])


CLOCK = """
slas:
  resolution:
    start: {on: case.opened}
    stop: {enter: done}
    calendar: always
    targets: [{within: 8h}]
"""


def test_a_running_clock_keeps_the_case_in_view() -> None:
    assert (
        codes(
            """
        stages:
          new: {initial: true, on: {close: done, wait: waiting}}
          waiting: {on: {reply: new}}
          done: {final: true}
    """,
            tail=CLOCK,
        )
        == []
    )


def test_a_paused_clock_does_not() -> None:
    got = findings(
        """
        stages:
          new: {initial: true, on: {close: done, wait: waiting}}
          waiting: {on: {reply: new}}
          done: {final: true}
    """,
        tail=CLOCK + "    pause: {in: waiting}\n",
    )
    assert got == [("CP602", "stages.waiting")]


def test_a_clock_that_may_be_paused_does_not() -> None:
    got = codes(
        """
        stages:
          new: {initial: true, on: {close: done}}
          done: {final: true}
    """,
        tail=CLOCK + "    pause: {when: 'channel == \"email\"'}\n",
    )
    assert got == ["CP602"]


def test_a_clock_started_on_only_one_way_in() -> None:
    body = """
        stages:
          new: {initial: true, on: {a: work, b: work2}, after: [{in: 1d, to: done}]}
          work: {on: {close: done}}
          work2: {on: {close: done}}
          done: {final: true}
        slas:
          handling:
            start: {enter: work}
            stop: {enter: done}
            calendar: always
            targets: [{within: 8h}]
    """
    assert findings(body) == [("CP602", "stages.work2")]


def test_joint_analysis_two_clocks_cover_two_paths() -> None:
    # Every way into `work` leaves one of the two clocks running: exact over the product.
    body = """
        stages:
          new: {initial: true, on: {a: work, b: work}, after: [{in: 1d, to: done}]}
          work: {on: {close: done}}
          done: {final: true}
        slas:
          x:
            start: {on: a}
            stop: {enter: done}
            calendar: always
            targets: [{within: 8h}]
          y:
            start: {on: b}
            stop: {enter: done}
            calendar: always
            targets: [{within: 8h}]
    """
    assert codes(body) == []


def test_stopped_clock_does_not_count() -> None:
    body = """
        stages:
          new: {initial: true, on: {reply: open}}
          open: {on: {solve: done, reply: open}}
          done: {final: true}
        slas:
          first_response:
            start: {on: case.opened}
            stop: {on: reply}
            calendar: always
            targets: [{within: 1h}]
    """
    assert findings(body) == [("CP602", "stages.open")]


# -- CP603 / CP604 ------------------------------------------------------------------------------


def test_clock_never_starts_when_false() -> None:
    got = findings("""
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        slas:
          x:
            start: {when: "1 == 2"}
            stop: {on: close}
            calendar: always
            targets: [{within: 8h}]
    """)
    assert got == [("CP603", "slas.x.start")]


def test_reset_opens_a_cycle() -> None:
    assert (
        codes("""
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        slas:
          x:
            start: {enter: done}
            reset: {on: again}
            stop: {on: close}
            calendar: always
            targets: [{within: 8h}]
    """)
        == []
    )


def test_clock_never_stops_when_its_stop_stage_is_unreachable() -> None:
    got = findings("""
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          solved: {after: [{in: 1d, to: done}]}
          done: {final: true}
        slas:
          x:
            start: {on: case.opened}
            stop: {enter: solved}
            calendar: always
            targets: [{within: 8h}]
    """)
    assert got == [("CP601", "stages.solved"), ("CP604", "slas.x.stop")]


# -- CP605 ---------------------------------------------------------------------------------------


def test_segment_after_catch_all() -> None:
    got = findings("""
        segments:
          vip: 'channel == "chat"'
          all: "true"
          late: 'channel == "email"'
          later: "1 == 1"
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
    """)
    assert got == [("CP605", "segments.late"), ("CP605", "segments.later")]


# -- CP505 / CP606 -----------------------------------------------------------------------------


def thresholds(targets: str, ths: str, calendar: str = "always", extra: str = "") -> list[str]:
    return codes(f"""
        {extra}
        stages:
          new: {{initial: true, on: {{close: done}}, after: [{{in: 1d, to: done}}]}}
          done: {{final: true}}
        slas:
          x:
            start: {{on: case.opened}}
            stop: {{on: close}}
            calendar: {calendar}
            targets: {targets}
            thresholds: {ths}
    """)


def test_thresholds_in_order_for_every_target() -> None:
    ths = "[{at: 50%, do: [{notify: L1}]}, {at: -30m, do: [{notify: L1}]}]"
    assert thresholds("[{within: 4h}]", ths) == []  # 2h then 3h30m
    assert thresholds("[{when: 'channel == \"chat\"', within: 40m}, {within: 4h}]", ths) == [
        "CP505"
    ]  # 20m then 10m


def test_thresholds_bd_use_the_typical_open_day() -> None:
    office = 'calendars: {office: {hours: {mon-fri: ["09:00-12:00", "13:00-17:00"]}}}'
    ths = "[{at: +6h, do: [{notify: L1}]}, {at: 200%, do: [{notify: L1}]}]"
    # 1bd ≈ 7h: +6h → 13h, 200% → 14h: in order; 2bd ≈ 14h: +6h → 20h, 200% → 28h.
    assert thresholds("[{within: 1bd}]", ths, "office", office) == []
    ths2 = "[{at: +8h, do: [{notify: L1}]}, {at: 200%, do: [{notify: L1}]}]"  # 15h then 14h
    assert thresholds("[{within: 1bd}]", ths2, "office", office) == ["CP505"]


def test_threshold_beyond_reason() -> None:
    assert thresholds("[{within: 10m}]", "[{at: +2h, do: [{notify: L1}]}]") == ["CP606"]
    assert thresholds("[{within: 10m}]", "[{at: 1500%, do: [{notify: L1}]}]") == ["CP606"]
    # over ten times the small target but not the large one: fine
    assert (
        thresholds(
            "[{when: 'channel == \"chat\"', within: 3m}, {within: 2h}]",
            "[{at: +1h, do: [{notify: L1}]}]",
        )
        == []
    )


def test_typical_open_day() -> None:
    pb = loads(
        HEAD
        + textwrap.dedent("""
        calendars:
          office: {hours: {mon-fri: ["08:00-12:00", "13:00-17:30"], sat: ["08:00-12:00"]}}
          night: {hours: {mon-sun: ["21:00-02:00"]}}
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
    """)
    )
    assert typical_open_day(pb, "always") == 86400
    assert typical_open_day(pb, "office") == (5 * 8.5 + 4) * 3600 / 6
    assert typical_open_day(pb, "night") == 5 * 3600


# -- CP607 -------------------------------------------------------------------------------------


def channel_clock(head: str) -> list[tuple[str, str]]:
    return findings(
        """
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        slas:
          x:
            start: {on: case.opened}
            stop: {on: close}
            targets: [{within: 8h}]
    """,
        head,
    )


def test_channel_calendar_with_unset_channel() -> None:
    no_default = HEAD.replace(", default: chat}", "}")
    assert channel_clock(no_default) == [("CP607", "slas.x")]
    assert channel_clock(HEAD) == []
    set_by_start = no_default.replace(
        "start: {on: case.opened}", "start: {on: case.opened, set: {channel: email}}"
    )
    assert channel_clock(set_by_start) == []
    no_channels = 'carepath: 1\nid: t\nversion: "1"\nstart: {on: case.opened}\n'
    assert channel_clock(no_channels) == [("CP607", "slas.x")]


def test_bd_timer_counts_in_the_channel_calendar() -> None:
    head = HEAD.replace(", default: chat}", "}")
    got = findings(
        """
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 2bd, to: done}]}
          done: {final: true}
    """,
        head,
    )
    assert got == [("CP607", "stages.new.after[0].in")]


def test_channel_value_without_a_channel_entry_is_a_warning_not_an_error() -> None:
    # SPEC §2 declares `facebook` among the values of field `channel` without a `channels` entry,
    # and §4.4: "`calendar: channel` on a case with ... a channel without a calendar uses
    # `always`; validation warns when a clock can run on such a case".
    head = HEAD.replace("values: [chat, email]", "values: [chat, facebook, email]")
    assert channel_clock(head) == [("CP607", "fields.channel.values[1]")]
    office = head.replace(
        "tiers:", 'calendars: {office: {hours: {mon-fri: ["09:00-17:00"]}}}\ntiers:'
    )
    named = findings(
        """
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        slas:
          x:
            start: {on: case.opened}
            stop: {on: close}
            calendar: office
            targets: [{within: 8h}]
    """,
        office,
    )
    assert named == []  # nothing counts in the case channel's calendar: nothing to warn of


# -- CP508 -------------------------------------------------------------------------------------


def test_escalate_next_on_exhausted_is_a_cycle() -> None:
    got = findings("""
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        on:
          tier.exhausted: {do: [{escalate: next}]}
    """)
    assert got == [("CP508", "on.tier.exhausted")]


def test_delayed_escalation_is_not_a_cycle() -> None:
    assert (
        codes("""
        stages:
          new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        on:
          tier.exhausted: {do: [{escalate: next, in: 1h}]}
    """)
        == []
    )


def test_clock_signals_cycle_across_stages() -> None:
    body = """
        stages:
          a: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
          b: {on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
        on:
          sla.x.started: b
          sla.x.met: a
        slas:
          x:
            start: {enter: a}
            stop: {enter: b}
            repeat: true
            calendar: always
            targets: [{within: 8h}]
    """
    assert "CP508" in codes(body)


def test_signal_handled_in_another_stage_only_is_no_cycle() -> None:
    body = """
        stages:
          a: {initial: true, on: {close: done, tier.exhausted: {to: b, do: [{escalate: next}]}}}
          b: {on: {close: done}, after: [{in: 1d, to: done}]}
          done: {final: true}
    """
    assert codes(body) == ["CP602"]


# -- goals -------------------------------------------------------------------------------------

GOAL_BODY = """
stages:
  new: {initial: true, on: {close: done}, after: [{in: 1d, to: done}]}
  done: {final: true}
slas:
  first_response:
    start: {on: case.opened}
    stop: {on: close}
    calendar: always
    targets: [{within: 8h}]
goals:
"""


@pytest.mark.parametrize(
    ("goal", "want"),
    [
        ('{id: g, metric: csat, target: ">= 90%", window: rolling 30d}', []),
        ('{id: g, metric: csat, target: ">= 0.9", window: rolling 30d}', []),
        ('{id: g, metric: csat, target: ">= 90", window: rolling 30d}', ["CP510"]),
        ('{id: g, metric: nps, target: ">= 40", window: rolling 30d}', []),
        ('{id: g, metric: nps, target: ">= -20", window: rolling 30d}', []),
        ('{id: g, metric: nps, target: ">= 40%", window: rolling 30d}', ["CP510"]),
        ('{id: g, metric: ces, target: "<= 2.5", window: rolling 30d}', []),
        ('{id: g, metric: ces, target: "<= 9", window: rolling 30d}', ["CP510"]),
        (
            '{id: g, metric: first_response_time, stat: p90, target: "<= 2h", window: rolling 30d}',
            [],
        ),
        ('{id: g, metric: first_response_time, target: "<= 2bd", window: rolling 30d}', ["CP510"]),
        (
            '{id: g, metric: resolution_time, sla: first_response, target: "<= 1h30m", window: rolling 30d}',
            [],
        ),
        ('{id: g, metric: resolution_time, target: "<= 8h", window: rolling 30d}', ["CP308"]),
        ('{id: g, metric: fcr, target: "== 80%", window: rolling 30d}', ["CP510"]),
        ('{id: g, metric: fcr, target: ">= 80%"}', ["CP511"]),
        ('{id: g, metric: fcr, target: ">= 80%", window: {from: 2027-01-01, to: 2027-03-31}}', []),
        ('{id: g, metric: fcr, target: ">= 80%", window: rolling 30d, tier: L3}', ["CP302"]),
        ('{id: g, metric: fcr, target: ">= 80%", window: rolling 30d, channel: chat}', []),
        ('{id: g, metric: cssat, target: ">= 80%", window: rolling 30d}', ["CP509"]),
        ('{id: g, metric: csat, target: ">= 90%", baseline: 82%, window: rolling 30d}', []),
        ('{id: g, metric: csat, target: ">= 97%", baseline: 82%, window: rolling 30d}', ["CP608"]),
        ('{id: g, metric: csat, target: ">= 97%", baseline: 182%, window: rolling 30d}', ["CP510"]),
        (
            '{id: g, metric: first_response_time, target: "<= 1h", baseline: 10h, window: rolling 30d}',
            ["CP608"],
        ),
        (
            '{id: g, metric: first_response_time, target: "<= 6h", baseline: 10h, window: rolling 30d}',
            [],
        ),
        ('{id: g, metric: orders, target: ">= 100", window: rolling 30d}', []),
    ],
)
def test_goals(goal: str, want: list[str]) -> None:
    head = HEAD
    if "orders" in goal:
        head += "metrics: {custom: {orders: {type: count, event: order.placed}}}\n"
    res = check(head + GOAL_BODY + "  - " + goal + "\n")
    assert [d.code for d in res.diagnostics] == want, [d.message for d in res.diagnostics]


def test_goal_value_parsing() -> None:
    t = parse_target(">= 90%", "share")
    assert (t.op, t.value) == (">=", 0.9)
    assert parse_value("2h", "time") == 7200
    for bad in ("90%", 0.9):  # no operator
        with pytest.raises(TargetError):
            parse_target(bad, "share")
    with pytest.raises(TargetError):
        parse_value("120%", "share")
    assert 0 < MAX_GAP_CLOSED < 1


# -- the SPEC example -------------------------------------------------------------------------

SPEC_EXAMPLE = """\
carepath: 1
id: vn-retail-support
version: "2026.11"
timezone: Asia/Ho_Chi_Minh
events:
  case.opened: {priority: string, channel: string}
  agent.replied: {needs_customer: {type: bool, default: false}}
fields:
  priority: {type: enum, values: [low, normal, high, urgent], default: normal}
  channel:  {type: enum, values: [phone, email, chat, zalo, chatbot]}
  customer.tier: {type: enum, values: [standard, gold, vip], default: standard}
  customer.age: int
  customer.lives_alone: {type: bool, default: false}
calendars:
  office:
    hours: {mon-fri: ["08:00-12:00", "13:00-17:30"], sat: ["08:00-12:00"]}
channels:
  phone: {calendar: office}
  email: {calendar: office}
  chat: {calendar: office}
  zalo: {calendar: always}
  chatbot: {calendar: always, automated: true}
segments:
  vip: customer.tier == "vip"
  senior: customer.age >= 60 or customer.lives_alone
  standard: true
tiers:
  L1: {title: Agent}
  L2: {title: Senior agent}
  L3: {title: Supervisor}
start:
  on: case.opened
  set: {priority: =event.priority, channel: =event.channel}
stages:
  new:
    initial: true
    enter: [{assign: L1}]
    on:
      agent.replied: open
  open:
    on:
      agent.replied: {to: waiting_customer, when: event.needs_customer}
      case.solved: solved
  waiting_customer:
    on:
      customer.replied: open
    after:
      - {in: 2bd, do: [{send: reminder}]}
      - {in: 7d, to: closed}
  solved:
    enter: [{survey: csat, in: 1h}]
    on:
      customer.replied: open
    after: [{in: 5d, to: closed}]
  closed: {final: true}
on:
  case.cancelled: closed
  sla.resolution.breached: {do: [{escalate: next}]}
slas:
  first_response:
    start: {on: case.opened}
    stop: {on: agent.replied}
    pause: {in: [waiting_customer]}
    calendar: channel
    targets:
      - {when: segment == "vip" and channel == "chat", within: 3m}
      - {when: priority == "urgent", within: 30m, calendar: always}
      - {within: 2h}
    thresholds:
      - {at: 75%, do: [{notify: L2}]}
      - {at: 100%, do: [{escalate: L2}, {notify: L3}]}
      - {at: +1h, do: [{escalate: L3}]}
  next_response:
    start: {on: customer.replied}
    stop: {on: agent.replied}
    repeat: true
    targets: [{within: 4h}]
  resolution:
    start: {on: case.opened, enter: open}
    stop: {enter: [solved, closed]}
    repeat: true
    reset: {on: case.reopened}
    pause: {in: [waiting_customer]}
    targets:
      - {when: 'priority in ["high", "urgent"]', within: 8h}
      - {within: 3bd}
goals:
  - id: csat-vip
    metric: csat
    target: ">= 90%"
    segment: vip
    window: {from: 2027-01-01, to: 2027-06-30}
    baseline: 82%
  - {id: frt-p90, metric: first_response_time, stat: p90, target: "<= 2h", window: rolling 30d}
  - {id: fcr, metric: fcr, target: ">= 80%", window: rolling 90d}
"""


def test_spec_example_is_clean() -> None:
    res = check(SPEC_EXAMPLE)
    assert [(d.code, d.path) for d in res.diagnostics] == []


def test_spec_example_forgotten_when_no_timer_in_waiting() -> None:
    text = SPEC_EXAMPLE.replace("      - {in: 7d, to: closed}\n", "")
    res = check(text)
    assert [(d.code, d.path) for d in res.diagnostics] == [("CP602", "stages.waiting_customer")]


# -- issue 15: hostile and unusual playbooks (#12, #15, #18, #19) ------------------------------

SLA_TAIL = """
slas:
  first_response: {start: {on: case.opened}, stop: {on: agent.replied}, targets: [{within: 1h}]}
"""


def test_start_without_events_is_an_error_not_a_crash() -> None:
    # #12: `start: {on: []}` with an SLA crashed lint (zip() of clock statuses); now CP203
    head = HEAD.replace("start: {on: case.opened}", "start: {on: []}")
    res = check(
        head
        + textwrap.dedent("""
        stages:
          new: {initial: true, on: {agent.replied: done}}
          done: {final: true}
    """)
        + SLA_TAIL
    )
    assert [(d.code, d.path, d.line, d.col) for d in res.diagnostics] == [
        ("CP203", "start.on", 10, 13)
    ]
    assert res.playbook is None


GOALS = """
stages:
  new: {initial: true, on: {agent.replied: done}, after: [{in: 7d, to: done}]}
  done: {final: true}
goals:
"""


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("rolling 30x", "cannot read window 'rolling 30x'"),
        ("rolling 3h", "cannot read window 'rolling 3h'"),
        ("rolling 0d", "window 'rolling 0d' holds no day"),
        ("rolling 99999999d", "longer than 36525 days"),
        (
            "{from: 2027-06-30, to: 2027-01-01}",
            "window ends (2027-01-01) before it begins (2027-06-30)",
        ),
    ],
)
def test_goal_windows_the_report_cannot_evaluate_are_rejected(window: str, message: str) -> None:
    # #15: these validated with exit 0, then `report` failed
    res = check(HEAD + GOALS + f'  - {{id: g, metric: csat, target: ">= 80%", window: {window}}}\n')
    (d,) = res.diagnostics
    assert d.code == "CP513" and message in d.message
    assert d.path in ("goals[0].window", "goals[0].window.to")


def test_goal_windows_that_the_report_reads_are_accepted() -> None:
    for window in ("rolling 30d", "rolling 4w", "rolling 1d", "{from: 2027-01-01, to: 2027-01-01}"):
        res = check(
            HEAD + GOALS + f'  - {{id: g, metric: csat, target: ">= 80%", window: {window}}}\n'
        )
        assert res.diagnostics == [], window


def test_duplicate_goal_ids_are_rejected_at_the_second() -> None:
    res = check(
        HEAD + GOALS + '  - {id: g, metric: csat, target: ">= 80%", window: rolling 30d}\n'
        '  - {id: g, metric: csat, target: ">= 90%", window: rolling 7d}\n'
    )
    assert [(d.code, d.path) for d in res.diagnostics] == [("CP514", "goals[1].id")]


def test_fixed_window_without_to_says_to_is_missing() -> None:
    # #15: it said "unknown key 'from' … did you mean 'from'?" (the rolling form of the union)
    res = check(
        HEAD + GOALS + '  - {id: g, metric: csat, target: ">= 80%", window: {from: 2027-01-01}}\n'
    )
    assert [(d.code, d.message) for d in res.diagnostics] == [("CP202", "missing key 'to'")]


def test_start_key_must_be_declared_by_every_start_event() -> None:
    # #18: `simulate` skipped such events silently and `run` rejected them
    body = """
        stages:
          new: {initial: true, on: {agent.replied: done}, after: [{in: 7d, to: done}]}
          done: {final: true}
    """
    undeclared = HEAD.replace(
        "start: {on: case.opened}", "start: {on: case.opened, key: event.customer}"
    )
    res = check(undeclared + textwrap.dedent(body))
    (d,) = res.diagnostics
    assert (d.code, d.path, d.line, d.col) == ("CP402", "start.key", 10, 31)
    assert "'case.opened' declares no payload" in d.message
    two = HEAD.replace(
        "start: {on: case.opened}", "start: {on: [case.opened, chat.started], key: event.customer}"
    )
    events = "events:\n  case.opened: {customer: string}\n  chat.started: {topic: string}\n"
    res = check(two + events + textwrap.dedent(body))
    assert [(d.code, d.path) for d in res.diagnostics] == [("CP402", "start.key")]
    assert "'chat.started' does not declare 'customer'" in res.diagnostics[0].message
    declared = "events:\n  case.opened: {customer: string}\n  chat.started: {customer: {type: string, default: anon}}\n"
    assert check(two + declared + textwrap.dedent(body)).diagnostics == []


def test_calendar_on_an_action_without_delay_is_rejected() -> None:
    # #19: `{task: b, due: 4h, calendar: office}` ignored the calendar silently
    assert findings("""
        calendars:
          office: {hours: {mon-fri: ["08:00-17:00"]}}
        stages:
          new:
            initial: true
            enter: [{task: b, due: 4h, calendar: office}, {in: 4h, calendar: office, notify: L1}]
            on: {agent.replied: done}
            after: [{in: 7d, to: done}]
          done: {final: true}
    """) == [("CP203", "stages.new.enter[0].calendar")]


def test_notify_names_a_declared_tier_or_role() -> None:
    # #19: `notify: L2` with no such tier or role was accepted
    body = """
        stages:
          new:
            initial: true
            enter: [{notify: L3}, {notify: L1}, {notify: lead}, {notify: assignee}, {task: t, for: lead},
                    {task: u, for: L9}]
            on: {agent.replied: done}
            after: [{in: 7d, to: done}]
          done: {final: true}
    """
    head = HEAD.replace("tiers: {L1: {}, L2: {}}", "tiers: {L1: {}, L2: {role: lead}}")
    assert findings(body, head) == [
        ("CP302", "stages.new.enter[0].notify"),
        ("CP302", "stages.new.enter[5].for"),
    ]
    # without tiers, recipients are the host's (README: `notify: supervisor`)
    no_tiers = HEAD.replace("tiers: {L1: {}, L2: {}}\n", "")
    assert findings(body, no_tiers) == []


def test_timers_and_schedules_of_a_final_stage_never_fire() -> None:
    # SPEC §4.4: "`final: true` stages end the case: no timers". A timer, a schedule or a delayed
    # entry action (without `keep`) there was accepted in silence and never fired.
    assert findings("""
        stages:
          new: {initial: true, on: {agent.replied: done}, after: [{in: 1h, to: done}]}
          done:
            final: true
            enter: [{notify: L1}, {notify: L2, in: 1h}, {notify: L2, in: 2h, keep: true}]
            after: [{in: 1d, do: [{notify: L1}]}]
            every: [{cron: "0 9 * * *", do: [{notify: L1}]}]
    """) == [
        ("CP609", "stages.done.after[0].in"),
        ("CP609", "stages.done.enter[1].in"),
        ("CP609", "stages.done.every[0].cron"),
    ]


def test_timer_that_can_never_fire_is_flagged() -> None:
    # #19: an unreachable timer was not flagged
    assert findings("""
        stages:
          new:
            initial: true
            on: {agent.replied: done}
            after:
              - {in: 1h, to: done}
              - {in: 2h, do: [{notify: L1}]}
              - {in: 30m, do: [{notify: L2}]}
              - {in: 1bd, do: [{notify: L2}], when: false}
          done: {final: true}
    """) == [("CP609", "stages.new.after[1].in"), ("CP609", "stages.new.after[3].when")]
    # an earlier timer with a condition, another calendar or a window may not move the case first
    assert (
        codes("""
        calendars:
          office: {hours: {mon-fri: ["08:00-17:00"]}}
        stages:
          new:
            initial: true
            on: {agent.replied: done}
            after:
              - {in: 1h, to: done, when: 'channel == "chat"'}
              - {in: 2h, to: done, calendar: office}
              - {in: 3h, to: done, window: office}
              - {in: 4h, to: done}
          done: {final: true}
    """)
        == []
    )
