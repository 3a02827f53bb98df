"""Worked SLA examples from other engines' tests and public documentation, restated for carepath.

Each test names its source. The numbers are theirs; the playbooks are ours.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from carepath import Engine, Event, loads


def engine(slas: dict[str, Any], calendars: dict[str, Any], tz: str, **extra: Any) -> Engine:
    d: dict[str, Any] = {
        "carepath": 1,
        "id": "worked",
        "version": "1",
        "timezone": tz,
        "fields": {
            "priority": {"type": "enum", "values": ["low", "medium", "high"], "default": "low"}
        },
        "calendars": calendars,
        "tiers": {"L1": {}, "L2": {}},
        "start": {"on": "ticket.created", "set": {"priority": "=event.priority"}},
        "events": {
            "ticket.created": {
                "priority": {"type": "enum", "values": ["low", "medium", "high"], "default": "low"}
            }
        },
        "stages": {
            "open": {
                "initial": True,
                "on": {"ticket.pending": "pending", "ticket.closed": "closed"},
            },
            "pending": {"on": {"customer.replied": "open", "ticket.closed": "closed"}},
            "closed": {"final": True},
        },
        "slas": slas,
    }
    d.update(extra)
    return Engine(loads(json.dumps(d)))


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s + "+00:00")


def ev(type_: str, t: datetime, **data: Any) -> Event:
    return Event(id=f"{type_}@{t.isoformat()}", type=type_, at=t, case="Z-1", data=data)


BERLIN_9_17 = {"hours": {"mon-fri": ["09:00-17:00"]}}
BERLIN_8_18 = {"hours": {"mon-fri": ["08:00-18:00"]}}


def zammad_slas(cal: str, fr: str, solution: str) -> dict[str, Any]:
    return {
        "first_response": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "agent.replied"},
            "calendar": cal,
            "targets": [{"within": fr}],
        },
        "solution": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "ticket.closed"},
            "calendar": cal,
            "targets": [{"within": solution}],
        },
    }


def test_zammad_ticket_sla_eu1_calendar() -> None:
    # zammad/zammad test/unit/ticket_sla_test.rb ("ticket sla"): calendar "EU 1", Europe/Berlin,
    # Mon–Fri 09:00–17:00; ticket created 2013-03-21 09:30 UTC (Thu, 10:30 CET). With a 60 min
    # first response and 240 min solution time: first response escalates at 10:30 UTC, close at
    # 13:30 UTC; with 120 min first response, 11:30 UTC.
    subject = engine(zammad_slas("eu1", "60m", "240m"), {"eu1": BERLIN_9_17}, "Europe/Berlin")
    s = subject.start(ev("ticket.created", utc("2013-03-21T09:30:00"))).state
    assert s.clocks["first_response"].due == utc("2013-03-21T10:30:00")
    assert s.clocks["solution"].due == utc("2013-03-21T13:30:00")
    eng2 = engine(zammad_slas("eu1", "120m", "240m"), {"eu1": BERLIN_9_17}, "Europe/Berlin")
    s2 = eng2.start(ev("ticket.created", utc("2013-03-21T09:30:00"))).state
    assert s2.clocks["first_response"].due == utc("2013-03-21T11:30:00")


def test_zammad_ticket_sla_eu2_in_time_and_late() -> None:
    # Same file, calendar "EU 2" (Mon–Fri 08:00–18:00), first response 60 min, solution 180 min:
    # escalations at 10:30 and 12:30 UTC. A first response at 10:00 UTC took 30 min (30 to spare);
    # one at 14:00 UTC took 270 min, 210 min late. A close at 11:30 UTC took 120 min (in time); at
    # 13:00 UTC, 210 min, 30 min late.
    subject = engine(zammad_slas("eu2", "60m", "180m"), {"eu2": BERLIN_8_18}, "Europe/Berlin")
    s = subject.start(ev("ticket.created", utc("2013-03-21T09:30:00"))).state
    assert s.clocks["first_response"].due == utc("2013-03-21T10:30:00")
    assert s.clocks["solution"].due == utc("2013-03-21T12:30:00")

    ok = subject.handle(s, ev("agent.replied", utc("2013-03-21T10:00:00"))).state
    rec = ok.clocks["first_response"].history[-1]
    assert rec.met is True and rec.elapsed == timedelta(minutes=30)
    assert rec.target - rec.elapsed == timedelta(minutes=30)

    late = subject.handle(s, ev("agent.replied", utc("2013-03-21T14:00:00"))).state
    rec = late.clocks["first_response"].history[-1]
    assert (
        rec.met is False
        and rec.elapsed == timedelta(minutes=270)
        and rec.failed_by == timedelta(minutes=210)
    )
    assert late.clocks["first_response"].due == utc("2013-03-21T10:30:00")  # dated at the breach

    closed_ok = subject.handle(s, ev("ticket.closed", utc("2013-03-21T11:30:00"))).state
    rec = closed_ok.clocks["solution"].history[-1]
    assert rec.met is True and rec.elapsed == timedelta(minutes=120)
    closed_late = subject.handle(s, ev("ticket.closed", utc("2013-03-21T13:00:00"))).state
    rec = closed_late.clocks["solution"].history[-1]
    assert (
        rec.met is False
        and rec.elapsed == timedelta(minutes=210)
        and rec.failed_by == timedelta(minutes=30)
    )


def test_znuny_escalation_suspend_pending_reminder() -> None:
    # znuny/Znuny4OTRS-EscalationSuspend doc/de/feature.md ("Beispielfall"): created 08:00 with a
    # 2 h solution time (due 10:00); set to "pending reminder" at 09:00; the customer answers at
    # 10:05 and the ticket is open again → the escalation moves to 11:05, and the ticket escalates
    # at 11:05.
    slas = {
        "solution": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "ticket.closed"},
            "pause": {"in": ["pending"]},
            "calendar": "always",
            "targets": [{"within": "2h"}],
        }
    }
    subject = engine(slas, {}, "Europe/Berlin")
    t = datetime.fromisoformat("2027-03-01T08:00:00+01:00")
    s = subject.start(ev("ticket.created", t)).state
    assert s.clocks["solution"].due == t + timedelta(hours=2)
    p = subject.handle(s, ev("ticket.pending", t + timedelta(hours=1))).state
    assert p.clocks["solution"].status == "paused" and p.clocks["solution"].due is None
    r = subject.handle(p, ev("customer.replied", t + timedelta(hours=2, minutes=5))).state
    assert r.clocks["solution"].due == t + timedelta(hours=3, minutes=5)
    b = subject.advance(r, t + timedelta(hours=3, minutes=5))
    assert [x.type for x in b.signals] == ["sla.solution.breached"]


def test_time_to_sla_pause_moves_the_target_by_the_pause() -> None:
    # Time to SLA for Jira, "Set When the SLA Pauses"
    # (https://appfire.atlassian.net/wiki/spaces/TTS/pages/43876910/Set+When+the+SLA+Pauses):
    # "if your SLA is paused for 10 minutes, the Target Date will also be 10 minutes later".
    # Jira Service Management counts in the goal's calendar too ("paused" outside a 9–5 calendar:
    # https://confluence.atlassian.com/jirakb/understanding-why-an-sla-is-paused-in-a-jira-service-management-ticket-1271267987.html).
    slas = {
        "ttr": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "ticket.closed"},
            "pause": {"in": ["pending"]},
            "calendar": "nine_five",
            "targets": [{"within": "4h"}],
        }
    }
    subject = engine(slas, {"nine_five": {"hours": {"mon-fri": ["09:00-17:00"]}}}, "UTC")
    s = subject.start(ev("ticket.created", utc("2027-03-01T10:00:00"))).state
    assert s.clocks["ttr"].due == utc("2027-03-01T14:00:00")
    p = subject.handle(s, ev("ticket.pending", utc("2027-03-01T11:00:00"))).state
    r = subject.handle(p, ev("customer.replied", utc("2027-03-01T11:10:00"))).state
    assert r.clocks["ttr"].due == utc("2027-03-01T14:10:00")
    # created at 16:00: one hour today, three tomorrow from 09:00 — the clock does not run at night
    n = subject.start(ev("ticket.created", utc("2027-03-01T16:00:00"))).state
    assert n.clocks["ttr"].due == utc("2027-03-02T12:00:00")


def test_servicenow_percentage_timers_50_75_100() -> None:
    # ServiceNow "SLA Percentage Timer workflow activity"
    # (https://www.servicenow.com/docs/r/servicenow-platform/workflow-activities/r_SLAPercentageTimer.html):
    # the default SLA workflow waits for 50 %, 75 % and 100 % of the SLA's duration, counted on the
    # SLA's schedule. A 4 h resolution SLA on 08:00–17:00 weekdays, attached Fri 15:00.
    slas = {
        "resolution": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "ticket.closed"},
            "calendar": "weekdays",
            "targets": [{"within": "4h"}],
            "thresholds": [
                {"at": "50%", "do": [{"notify": "L1"}]},
                {"at": "75%", "do": [{"notify": "L2"}]},
                {"at": "100%", "do": [{"escalate": "next"}]},
            ],
        }
    }
    subject = engine(slas, {"weekdays": {"hours": {"mon-fri": ["08:00-17:00"]}}}, "UTC")
    s = subject.start(ev("ticket.created", utc("2027-03-05T15:00:00"))).state  # a Friday
    dues = []
    st_ = s
    while st_.next_wakeup is not None:
        when = st_.next_wakeup
        step = subject.advance(st_, when)
        dues.append((when, [x.type for x in step.signals]))
        st_ = step.state
    assert dues == [
        (
            utc("2027-03-05T17:00:00"),
            ["sla.resolution.warning"],
        ),  # 2 h: Fri 15:00 → 17:00 (closing)
        (utc("2027-03-08T09:00:00"), ["sla.resolution.warning"]),  # 3 h: Mon 08:00 + 1 h
        (utc("2027-03-08T10:00:00"), ["sla.resolution.breached"]),  # 4 h
    ]


def test_servicenow_reset_condition_cancels_and_attaches_a_new_sla() -> None:
    # ServiceNow "SLA conditions" (https://raw.githubusercontent.com/ServiceNow/ServiceNowDocs/australia/
    # markdown/it-service-management/service-level-management/c_SLAConditions.md): when the reset
    # condition matches, the current task SLA is cancelled and a new one attached.
    slas = {
        "resolution": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "ticket.closed"},
            "reset": {"on": "ticket.reassigned"},
            "calendar": "always",
            "targets": [{"within": "8h"}],
        }
    }
    subject = engine(slas, {}, "UTC")
    s = subject.start(ev("ticket.created", utc("2027-03-01T08:00:00"))).state
    r = subject.handle(s, ev("ticket.reassigned", utc("2027-03-01T12:00:00"))).state
    c = r.clocks["resolution"]
    assert c.cycle == 2 and c.history[-1].met is None and c.due == utc("2027-03-01T20:00:00")


def test_frappe_helpdesk_first_matching_agreement_then_default() -> None:
    # frappe/helpdesk helpdesk/helpdesk/doctype/hd_service_level_agreement/test_hd_service_level_agreement.py
    # (test_default_sla_assignment, test_blank_condition_sla_is_not_a_false_positive): a ticket
    # whose priority matches no conditional agreement falls back to the default one; and
    # (test_priority_removed_from_sla_detaches_ticket) the clock's start survives a change of
    # agreement. In carepath: the first matching target wins, the last is unconditional, and a
    # retarget re-measures from the cycle's start.
    slas = {
        "response": {
            "start": {"on": "ticket.created"},
            "stop": {"on": "agent.replied"},
            "calendar": "always",
            "targets": [
                {"when": 'priority == "high"', "within": "1h"},
                {"when": 'priority == "medium"', "within": "4h"},
                {"within": "24h"},
            ],
        }
    }
    subject = engine(
        slas,
        {},
        "UTC",
        on={"priority.changed": {"set": {"priority": "=event.priority"}}},
        events={
            "ticket.created": {
                "priority": {"type": "enum", "values": ["low", "medium", "high"], "default": "low"}
            },
            "priority.changed": {"priority": {"type": "enum", "values": ["low", "medium", "high"]}},
        },
    )
    t = utc("2027-03-01T12:00:00")
    low = subject.start(ev("ticket.created", t)).state
    assert low.clocks["response"].target == timedelta(hours=24)
    med = subject.start(ev("ticket.created", t, priority="medium")).state
    assert med.clocks["response"].target == timedelta(hours=4)
    up = subject.handle(
        med, ev("priority.changed", t + timedelta(minutes=30), priority="high")
    ).state
    c = up.clocks["response"]
    assert c.started == t and c.target == timedelta(hours=1) and c.due == t + timedelta(hours=1)
