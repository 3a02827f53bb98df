"""Built-in and custom metrics, statistics, windows, grouping and goals (SPEC §6)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carepath import loads
from carepath.drivers.replay import replay
from carepath.events import Event
from carepath.metrics import Metrics, evaluate_goals, percentile, resolve_window, summary
from carepath.metrics.targets import parse_target

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

PLAYBOOK = """
carepath: 1
id: tiny
version: "1"
timezone: Asia/Ho_Chi_Minh
events:
  case.opened:
    channel: {type: enum, values: [chat, email]}
    tier: {type: enum, values: [standard, vip], default: standard}
  survey.answered: {survey: {type: enum, values: [csat, nps, ces]}, score: int}
  order.placed: {customer: string, amount: {type: int, default: 0}}
fields:
  channel: {type: enum, values: [chat, email]}
  customer.tier: {type: enum, values: [standard, vip], default: standard}
channels:
  chat: {calendar: always}
  email: {calendar: always}
segments:
  vip: customer.tier == "vip"
  standard: true
tiers:
  L1: {title: Agent}
  L2: {title: Senior}
start:
  on: case.opened
  reentry: %(reentry)s
  set: {channel: =event.channel, customer.tier: =event.tier}
stages:
  new:
    initial: true
    on:
      agent.replied: open
      case.solved: solved
  open:
    on:
      case.solved: solved
  solved:
    on:
      case.reopened: open
    after: [{in: 2d, to: closed}]
  closed: {final: true}
on:
  sla.first_response.breached: {do: [{escalate: next}]}
slas:
  first_response:
    start: {on: case.opened}
    stop: {on: agent.replied}
    targets: [{within: 1h}]
  resolution:
    start: {on: case.opened, enter: open}
    stop: {enter: solved}
    repeat: true
    targets: [{within: 8h}]
metrics:
  events: %(renames)s
  custom:
    big_orders: {type: count, event: order.placed, when: event.amount >= 100}
    big_share: {type: ratio, event: order.placed, when: event.amount >= 100, over: order.placed}
    vip_chat_share: {type: ratio, event: case.opened, when: event.tier == "vip", over: case.opened, over_when: event.channel == "chat"}
    basket: {type: mean, event: order.placed, value: =event.amount}
    vip_surveys: {type: count, event: survey.answered, when: segment == "vip"}
    chat_top_scores: {type: count, event: survey.answered, when: 'channel == "chat" and event.score >= 5'}
    top_scores: {type: count, event: survey.answered, when: event.score >= 5}
goals: %(goals)s
"""


def pb(goals: str = "[]", reentry: str = "never", renames: str = "{}") -> Any:
    return loads(PLAYBOOK % {"goals": goals, "reentry": reentry, "renames": renames})


T0 = datetime(2027, 3, 1, 9, 0, tzinfo=TZ)
_n = 0


def ev(type_: str, minutes: float, case: str | None = "A", t0: datetime = T0, **data: Any) -> Event:
    global _n
    _n += 1
    return Event(id=f"e{_n}", type=type_, at=t0 + timedelta(minutes=minutes), case=case, data=data)


def metrics(events: list[Event], playbook: Any = None) -> Metrics:
    return Metrics(replay(playbook or pb(), events))


# -- statistics ---------------------------------------------------------------------------------
def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    for n in (1, 2, 3, 5, 10, 17, 101):
        xs = [rng.uniform(0, 10_000) for _ in range(n)]
        for q in (0, 10, 50, 90, 95, 99, 100):
            assert percentile(xs, q) == float(np.percentile(xs, q)), (n, q)


def test_percentile_small_cases() -> None:
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([5], 95) == 5
    assert percentile([], 50) is None
    s = summary([10, 20, 30, 40])
    assert s == {
        "mean": 25.0,
        "median": 25.0,
        "p90": pytest.approx(37.0),
        "p95": pytest.approx(38.5),
        "samples": 4,
    }


def test_targets_in_metric_units() -> None:
    assert parse_target(">= 90%", "share").value == pytest.approx(0.9)
    assert parse_target("<= 2h", "time").value == 7200
    assert parse_target(">= 40", "nps").value == 40
    assert parse_target("<= 1h30m", "time").met_by(5400)
    assert not parse_target("> 0.8", "share").met_by(0.8)


# -- surveys ------------------------------------------------------------------------------------
def test_csat_nps_ces() -> None:
    evs = [ev("case.opened", 0, channel="chat")]
    for i, s in enumerate((5, 4, 3, 1)):
        evs.append(ev("survey.answered", 10 + i, survey="csat", score=s))
    for i, s in enumerate((10, 9, 7, 6, 0)):
        evs.append(ev("survey.answered", 20 + i, survey="nps", score=s))
    for i, s in enumerate((2, 3)):
        evs.append(ev("survey.answered", 30 + i, survey="ces", score=s))
    evs.append(ev("survey.answered", 40, survey="csat", score=9))  # out of range: not a sample
    m = metrics(evs)
    assert (m.measure("csat").value, m.measure("csat").samples) == (0.5, 4)
    assert (m.measure("nps").value, m.measure("nps").samples) == (
        0.0,
        5,
    )  # (2 promoters − 2 detractors) / 5
    assert m.measure("ces").value == 2.5


# -- clocks -------------------------------------------------------------------------------------
def test_first_response_time_and_attainment() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 30, "A"),
        ev("case.opened", 0, "B", channel="email"),
        ev("agent.replied", 120, "B"),
        ev("case.opened", 200, "C", channel="chat"),
    ]  # still open at the last event: not a sample
    m = metrics(evs)
    frt = m.measure("first_response_time")
    assert frt.samples == 2
    assert (
        frt.stats is not None and frt.stats["mean"] == 4500.0 and frt.value == 4500.0
    )  # median of 1800, 7200
    assert m.measure("first_response_time", stat="p90").value == pytest.approx(1800 + 0.9 * 5400)
    att = m.measure("sla_attainment", sla="first_response")
    assert (att.value, att.samples) == (0.5, 2)
    by = m.group("sla_attainment", "channel", sla="first_response")
    assert {k: v.value for k, v in by.items()} == {"chat": 1.0, "email": 0.0}


def test_replay_stops_at_last_event() -> None:
    # A's resolution cycle breaches at +8h; the log ends at +7h: the cycle is open, not counted.
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 10, "A"),
        ev("case.opened", 420, "B", channel="chat"),
    ]
    rp = replay(pb(), evs)
    assert [f.clock for f in rp.records] == ["first_response"]
    assert not rp.breaches
    # one more event after the breach instant: the breach fires first (strictly before)
    rp = replay(pb(), [*evs, ev("case.opened", 500, "C", channel="chat")])
    assert [b[1] for b in rp.breaches] == ["first_response", "resolution"] or sorted(
        b[1] for b in rp.breaches
    ) == ["first_response", "resolution"]


# -- cases: fcr, reopen -------------------------------------------------------------------------
def test_fcr_and_reopen_rate() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 5, "A"),
        ev("case.solved", 10, "A"),
        ev("case.opened", 0, "B", channel="chat"),
        ev("agent.replied", 5, "B"),
        ev("agent.replied", 6, "B"),
        ev("case.solved", 10, "B"),
        ev("case.opened", 0, "C", channel="email"),
        ev("agent.replied", 5, "C"),
        ev("case.solved", 10, "C"),
        ev("case.reopened", 60, "C"),
        ev("agent.replied", 70, "C"),
        ev("case.solved", 80, "C"),
        ev("case.opened", 0, "D", channel="email"),
        ev("agent.replied", 5, "D"),  # never solved
    ]
    m = metrics(evs)
    assert (m.measure("fcr").value, m.measure("fcr").samples) == (pytest.approx(1 / 3), 3)
    assert (m.measure("reopen_rate").value, m.measure("reopen_rate").samples) == (
        pytest.approx(1 / 3),
        3,
    )


def test_fcr_counts_by_first_solve_date() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 5, "A"),
        ev("case.solved", 10, "A"),
        ev("case.reopened", 3 * 24 * 60, "A"),
    ]  # reopened days later (after auto-close: still counts)
    m = metrics(evs)
    d = T0.date()
    assert m.measure("reopen_rate", d, d).value == 1.0
    assert m.measure("reopen_rate", d + timedelta(days=1), d + timedelta(days=5)).samples == 0


# -- orders, complaints, aht --------------------------------------------------------------------
def test_order_metrics_complaints_aht() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("case.opened", 1, "B", channel="chat"),
        ev("complaint.filed", 2, "A"),
        ev("order.placed", 3, None, customer="k1", amount=50),
        ev("order.placed", 4, None, customer="k1", amount=150),
        ev("order.placed", 5, None, customer="k2", amount=300),
        ev("order.returned", 6, None),
        ev("contact.handled", 7, "A", duration=100),
        ev("contact.handled", 8, "B", duration=300),
    ]
    m = metrics(evs)
    assert (m.measure("repeat_purchase_rate").value, m.measure("repeat_purchase_rate").samples) == (
        0.5,
        2,
    )
    assert (m.measure("complaint_rate").value, m.measure("complaint_rate").samples) == (0.5, 2)
    assert (m.measure("return_rate").value, m.measure("return_rate").samples) == (
        pytest.approx(1 / 3),
        3,
    )
    aht = m.measure("aht")
    assert aht.value == 200.0 and aht.samples == 2
    assert aht.to_dict()["value"] == 200.0 and aht.to_dict()["median"] == 200.0


def test_custom_metrics() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat", tier="vip"),
        ev("case.opened", 0, "B", channel="chat"),
        ev("case.opened", 0, "C", channel="email", tier="vip"),
        ev("order.placed", 3, None, customer="k1", amount=50),
        ev("order.placed", 4, None, customer="k1", amount=150),
        ev("order.placed", 5, None, customer="k2", amount=400),
        ev("survey.answered", 6, "A", survey="csat", score=5),
        ev("survey.answered", 7, "B", survey="csat", score=5),
    ]
    m = metrics(evs)
    assert (m.measure("big_orders").value, m.measure("big_orders").samples) == (2, 2)
    assert m.measure("big_share").value == pytest.approx(2 / 3)
    # numerator: vip openings (any channel); denominator: chat openings
    assert (m.measure("vip_chat_share").value, m.measure("vip_chat_share").samples) == (1.0, 2)
    assert m.measure("basket").value == pytest.approx(200.0)
    assert m.measure("vip_surveys").value == 1  # `segment` read from the case at the event
    # three rules on one event type, reading the case, the case and the event, the event alone:
    # each sees what it reads (the collector builds the case's values and the view only once)
    assert m.measure("chat_top_scores").value == 2
    assert m.measure("top_scores").value == 2


def test_renamed_conventional_events() -> None:
    playbook = pb(renames='{"survey.answered": feedback.given}')
    evs = [
        ev("case.opened", 0, channel="chat"),
        ev("feedback.given", 5, survey="csat", score=5),
        ev("survey.answered", 6, survey="csat", score=1),
    ]
    assert metrics(evs, playbook).measure("csat").samples == 1


def test_grouping_uses_case_values_at_the_event() -> None:
    evs = [
        ev("case.opened", 0, "A", channel="chat", tier="vip"),
        ev("survey.answered", 5, "A", survey="csat", score=5),
        ev("case.opened", 0, "B", channel="email"),
        ev("survey.answered", 5, "B", survey="csat", score=2),
    ]
    m = metrics(evs)
    assert m.measure("csat", where={"segment": "vip"}).value == 1.0
    assert {k: v.value for k, v in m.group("csat", "channel").items()} == {
        "chat": 1.0,
        "email": 0.0,
    }
    assert {k: v.samples for k, v in m.group("csat", "stage").items()} == {"new": 2}


def test_reentry_after_exit_on_timer_close() -> None:
    playbook = pb(reentry="after_exit")
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 5, "A"),
        ev("case.solved", 10, "A"),
        ev("case.opened", 3 * 24 * 60, "A", channel="email"),
    ]  # closed by the 2d timer: a new case
    rp = replay(playbook, evs)
    assert rp.cases == 2 and rp.case_ids[-1] == "A#1"
    rp = replay(pb(reentry="never"), evs)
    assert rp.cases == 1


# -- windows and goals --------------------------------------------------------------------------
def test_rolling_window_is_local_dates_ending_at_last_event() -> None:
    assert resolve_window("rolling 30d", date(2027, 3, 31)) == (date(2027, 3, 2), date(2027, 3, 31))
    assert resolve_window("rolling 2w", date(2027, 3, 31)) == (date(2027, 3, 18), date(2027, 3, 31))


def _surveys(days: range, score: int, per_day: int) -> list[Event]:
    out = [ev("case.opened", 0, "S", channel="chat")]
    for d in days:
        for i in range(per_day):
            out.append(ev("survey.answered", d * 24 * 60 + i, "S", survey="csat", score=score))
    return out


def test_goal_attained_trend_and_samples() -> None:
    goals = '[{id: g, metric: csat, target: ">= 80%", window: rolling 10d, min_samples: 5}]'
    # days 0..9: score 2 (previous window); days 10..19: score 5 (current window)
    evs = _surveys(range(10), 2, 1) + _surveys(range(10, 20), 5, 1)[1:]
    evs.sort(key=lambda e: e.at)
    m = metrics(evs, pb(goals))
    last = (T0 + timedelta(days=19)).date()
    (g,) = evaluate_goals(m, last)
    assert g.window == (last - timedelta(days=9), last)
    assert (g.value, g.samples, g.attained, g.reason) == (1.0, 10, True, None)
    assert g.trend == 0.0


def test_goal_with_too_few_samples_is_not_attained() -> None:
    goals = '[{id: g, metric: csat, target: ">= 80%", window: {from: 2027-03-01, to: 2027-03-31}}]'
    m = metrics(_surveys(range(3), 5, 1), pb(goals))
    (g,) = evaluate_goals(m, date(2027, 3, 3))
    d = g.to_dict()
    assert (
        d["attained"] is None
        and d["reason"] == "too_few_samples"
        and d["value"] == 1.0
        and d["samples"] == 3
    )
    assert d["window"] == {"from": "2027-03-01", "to": "2027-03-31"} and d["days_left"] == 28
    assert d["trend"] is None


def test_goal_missed_and_filters() -> None:
    goals = (
        '[{id: frt, metric: first_response_time, stat: p90, target: "<= 1h", window: rolling 7d, min_samples: 2},'
        ' {id: vip, metric: sla_attainment, sla: first_response, segment: vip, target: ">= 90%", window: rolling 7d, min_samples: 1}]'
    )
    evs = [
        ev("case.opened", 0, "A", channel="chat"),
        ev("agent.replied", 30, "A"),
        ev("case.opened", 0, "B", channel="chat", tier="vip"),
        ev("agent.replied", 90, "B"),
    ]
    m = metrics(evs, pb(goals))
    frt, vip = evaluate_goals(m, T0.date())
    assert frt.attained is False and frt.value == pytest.approx(1800 + 0.9 * 3600)
    assert (vip.value, vip.samples, vip.attained) == (0.0, 1, False)


def test_value_is_null_only_without_samples() -> None:
    goals = '[{id: g, metric: nps, target: ">= 40", window: rolling 30d}]'
    m = metrics([ev("case.opened", 0, channel="chat")], pb(goals))
    (g,) = evaluate_goals(m, T0.date())
    assert (
        g.value is None and g.samples == 0 and g.attained is None and g.reason == "too_few_samples"
    )


def test_metrics_asked_in_any_order_give_the_same_values() -> None:
    """The series of the clock cycles and the cases are built on the first metric that reads
    them: none is built for the collector's own samples, and the values do not depend on which
    metric was asked first."""
    from pathlib import Path

    from carepath import load
    from carepath.drivers.generate import generate
    from carepath.metrics import Collector
    from carepath.metrics.facts import KIND

    pb = load(Path(__file__).resolve().parents[2] / "examples" / "vn-retail-support.yaml")
    events = [
        Event.from_dict(d)
        for d in generate("retail", days=3, base=20, peak=40, seed=3, start=date(2027, 1, 25))
    ]
    rp = replay(pb, events, sink=Collector(pb), keep_events=False)
    whole = {n: m.to_dict() for n, m in Metrics(rp).all_builtin().items()}
    assert {"aht", "csat", "fcr", "sla_attainment", "first_response_time"} <= whole.keys()
    for seed in range(5):
        names = list(KIND)
        random.Random(seed).shuffle(names)
        m = Metrics(rp)
        got = {n: m.measure(n).to_dict() for n in names}
        assert {n: v for n, v in got.items() if n in whole} == whole
    m = Metrics(rp)
    for ch in ("phone", "email", "chat", "zalo"):
        m.measure("aht", where={"channel": ch})
    m.measure("csat")
    assert m._built is False  # the collector's own samples: no series of cycles built
    m.measure("fcr")
    assert m._built is True
