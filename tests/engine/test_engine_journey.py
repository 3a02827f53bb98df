"""Scenario tests on the journey example (``examples/omnichannel-journey.yaml``).

quiet_hours: messages 08:00–21:00 every day (closed 2027-02-06…08, Tết); warehouse: Mon–Sat
08:00–20:00 minus VN holidays and 2027-02-04…10. Zalo is capped at 3 sends per 7 days per case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carepath import Engine, Event, load

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load(ROOT / "examples" / "omnichannel-journey.yaml"))


def at(s: str) -> datetime:
    """``"01-04 09:00"`` → 2027-01-04T09:00+07:00."""
    return datetime.fromisoformat(f"2027-{s.replace(' ', 'T')}:00+07:00")


_n = 0


def ev(type_: str, when: str, case: str = "KH-1", **data: Any) -> Event:
    global _n
    _n += 1
    return Event(id=f"j{_n}", type=type_, at=at(when), case=case, data=data)


def order(when: str, n: int = 1, ltv: int = 1_000_000, oid: str = "DH-1", **kw: Any) -> Event:
    return ev(
        "order.placed",
        when,
        customer="KH-1",
        order_id=oid,
        amount=500_000,
        order_count=n,
        lifetime_value=ltv,
        **kw,
    )


def sends(step: Any) -> list[str]:
    return [a.params["template"] for a in step.actions if a.type == "send"]


def test_welcome_waits_for_the_sending_window(engine: Engine) -> None:
    s = engine.start(ev("customer.subscribed", "01-04 21:30", channel="zalo", name="Lan"))
    assert s.actions == []
    assert [(d.kind, d.name, d.due) for d in s.deadlines if d.kind == "action"] == [
        ("action", "stages.awareness.on.customer.subscribed.do[0]", at("01-05 08:00"))
    ]
    a = engine.advance(s.state, at("01-05 12:00"))
    assert sends(a) == ["welcome"] and a.actions[0].at == at("01-05 08:00")
    assert a.actions[0].params["channel"] == "zalo"
    # in the window an immediate send goes at once
    s2 = engine.start(ev("customer.subscribed", "01-04 10:00", channel="zalo", name="Lan"))
    assert sends(s2) == ["welcome"]


def test_intro_offer_timer_and_churn(engine: Engine) -> None:
    s = engine.start(ev("customer.subscribed", "01-04 10:00", channel="email"))
    tm = {d.name: d.due for d in s.deadlines if d.kind == "timer"}
    assert tm["stages.awareness.after[0]"] == at("01-07 10:00")  # 3d, in the window
    assert tm["stages.awareness.after[1]"] == at("03-05 10:00")  # 60 calendar days
    a = engine.advance(s.state, at("01-08 00:00"))
    assert sends(a) == ["intro_offer"]
    end = engine.advance(a.state, at("03-05 10:00"))
    assert end.state.stage == "churned" and end.state.ended


def test_purchase_delivery_met_and_after_sales(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", channel="zalo"))
    assert s.state.stage == "purchase"
    assert sends(s) == ["thank_you_order"]  # only an opt-in gets the welcome
    d = s.state.clocks["delivery"]
    # 3bd on the warehouse calendar from Mon 09:00 → Thu 09:00 (3 × 12 h of open time)
    assert d.target == timedelta(hours=36) and d.due == at("01-07 09:00")
    s = engine.handle(s.state, ev("order.delivered", "01-06 15:00", order_id="DH-1"))
    assert s.state.stage == "after_sales" and "sla.delivery.met" in [x.type for x in s.signals]
    assert sends(s) == ["thank_you_delivery"]
    due = {d.name: d.due for d in s.deadlines if d.kind == "action"}
    assert due["stages.after_sales.enter[1]"] == at("01-07 15:00")  # csat survey in 1d
    assert due["stages.after_sales.enter[2]"] == at("01-20 15:00")  # next-purchase offer in 14d


def test_late_delivery_breach_apology_and_chase_task(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", channel="email"))
    b = engine.advance(s.state, at("01-07 09:00"))
    assert [a.type for a in b.actions] == ["task"] and b.actions[0].params[
        "task"
    ] == "chase_carrier"
    assert "sla.delivery.breached" in [x.type for x in b.signals]
    d = engine.handle(b.state, ev("order.delivered", "01-08 10:00", order_id="DH-1"))
    assert sends(d)[:1] == ["late_delivery_apology"]  # the guarded handler matched
    assert any(t[1] == "handler" and "when sla.delivery.breached" in t[3] for t in d.trace)
    rec = d.state.clocks["delivery"].history[-1]
    # Thu 09:00 → Fri 10:00 on the warehouse calendar = 11 h + 2 h = 13 h late
    assert rec.met is False and rec.failed_by == timedelta(hours=13)


def test_next_purchase_offer_is_cancelled_by_a_new_order(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", channel="email"))
    s = engine.handle(s.state, ev("order.delivered", "01-06 15:00", order_id="DH-1"))
    s = engine.handle(s.state, order("01-12 11:00", n=2, oid="DH-2"))
    assert s.state.stage == "purchase"
    assert not [d for d in s.deadlines if d.name == "stages.after_sales.enter[2]"]
    later = engine.advance(s.state, at("01-25 00:00"))
    assert "next_purchase_offer" not in sends(later)


def test_zalo_frequency_cap_drops_the_fourth_send(engine: Engine) -> None:
    # welcome, thank_you_order (2), a second order's thank-you (3), a third one (4th → capped)
    s = engine.start(ev("customer.subscribed", "01-04 08:30", channel="zalo"))
    s = engine.handle(s.state, order("01-04 09:00", channel="zalo"))
    s = engine.handle(s.state, order("01-04 10:00", n=2, oid="DH-2"))
    assert sends(s) == ["thank_you_order"]
    c = engine.handle(s.state, order("01-05 10:00", n=3, oid="DH-3"))
    assert sends(c) == []
    capped = [x for x in c.signals if x.type == "capped"]
    assert len(capped) == 1 and capped[0].data["channel"] == "zalo"
    # a week after the first sends, the channel is open again
    ok = engine.handle(c.state, order("01-11 10:00", n=4, oid="DH-4"))
    assert sends(ok) == ["thank_you_order"]


def test_loyal_monthly_checkin_cron_in_window(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", n=2, ltv=3_000_000, channel="email"))
    s = engine.handle(s.state, ev("order.delivered", "01-05 09:00", order_id="DH-1"))
    s = engine.advance(s.state, at("02-04 09:00"))  # 30d in after_sales with orders >= 2 → loyal
    assert s.state.stage == "loyal"
    sch = [d for d in s.deadlines if d.kind == "schedule"]
    assert [d.due for d in sch] == [at("03-01 10:00")]  # "0 10 1 * *" after 02-04 09:00
    assert "loyalty_welcome" in sends(s)
    m = engine.advance(s.state, at("03-01 12:00"))
    assert [a.type for a in m.actions] == ["survey", "send"]  # the NPS survey (7d) was due first
    assert m.actions[0].at == at("02-11 09:00")
    assert sends(m) == ["monthly_checkin"] and m.actions[1].at == at("03-01 10:00")
    assert m.actions[1].source == "stages.loyal.every[0].do[0]"
    # re-armed for the next month
    assert [d.due for d in m.deadlines if d.kind == "schedule"] == [at("04-01 10:00")]


def test_nps_promoter_becomes_advocate(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", n=2, ltv=3_000_000, channel="email"))
    s = engine.handle(s.state, ev("order.delivered", "01-05 09:00", order_id="DH-1"))
    s = engine.advance(s.state, at("02-04 09:00"))
    a = engine.handle(s.state, ev("survey.answered", "02-05 09:00", survey="nps", score=10))
    assert a.state.stage == "advocate" and a.state.data["nps"] == 10
    assert sends(a) == ["referral_invite"]
    d = engine.handle(s.state, ev("survey.answered", "02-05 09:00", survey="nps", score=7))
    assert d.state.stage == "loyal" and d.state.data["nps"] == 7  # the second handler: set, stay


def test_unsubscribe_exits_wherever_the_case_is(engine: Engine) -> None:
    s = engine.start(order("01-04 09:00", channel="email"))
    u = engine.handle(s.state, ev("customer.unsubscribed", "01-05 09:00"))
    assert u.state.ended and u.state.stage == "purchase"  # the stage is unchanged
    assert u.state.clocks["delivery"].status == "cancelled"
    assert "sla.delivery.cancelled" in [x.type for x in u.signals]
    assert u.deadlines == [] and u.state.next_wakeup is None
    ig = engine.handle(u.state, ev("order.delivered", "01-06 09:00", order_id="DH-1"))
    assert ig.state is u.state and [x.type for x in ig.signals] == ["ignored"]


def test_reentry_continues_the_action_sequence(engine: Engine) -> None:
    s = engine.start(ev("customer.subscribed", "01-04 10:00", channel="email"))
    end = engine.advance(s.state, at("03-10 00:00"))  # intro offer, then churned after 60d
    assert end.state.ended and end.state.stage == "churned"
    ids = [a.id for a in s.actions + end.actions]
    again = engine.start(ev("customer.subscribed", "06-10 10:00", channel="email"), end.state)
    assert again.state.stage == "awareness" and not again.state.ended
    new_ids = [a.id for a in again.actions]
    assert new_ids and not set(new_ids) & set(ids)
    assert int(new_ids[0].split(":")[1]) == end.state.seq + 1


def test_complaint_root_handler_and_stage_handler(engine: Engine) -> None:
    s = engine.start(ev("customer.subscribed", "01-04 10:00", channel="email"))
    r = engine.handle(s.state, ev("complaint.filed", "01-04 11:00"))
    assert [(a.type, a.params["to"]) for a in r.actions] == [("notify", "L1")]
    assert r.actions[0].source.startswith("on.complaint.filed")


def test_event_log_replays(engine: Engine) -> None:
    import json

    states: dict[str, Any] = {}
    for line in (
        (ROOT / "examples" / "events" / "omnichannel-journey.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ):
        e = Event.from_dict(json.loads(line))
        key = engine.case_key(e)
        st_ = states.get(key)
        if st_ is None or st_.ended:
            if not engine.opens(e):
                continue
            step = engine.start(e, st_)
        else:
            step = engine.handle(st_, e)
        states[key] = step.state
    assert states["KH-1003"].ended  # unsubscribed
    assert states["KH-1007"].clocks["delivery"].status == "cancelled"
