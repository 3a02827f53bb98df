"""Consent, fallback channels, action-level ``when`` and frequency caps (SPEC §10), on both engine
backends (:class:`backends.Both` asserts every step is equal byte for byte)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from backends import Both, runs_natively
from carepath import Event, loads
from carepath.errors import InvalidEvent, PlaybookError

VN = timezone(timedelta(hours=7))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=VN)

# consent alone: what the native core runs too
CONSENT = """
carepath: 1
id: consent
version: "1"
timezone: Asia/Ho_Chi_Minh
fields:
  channel: {type: enum, values: [zalo, sms, email], default: zalo}
channels: {zalo: {}, sms: {}, email: {}}
start: {on: purchase.made}
stages:
  bought:
    initial: true
    on:
      nudge: {do: [{send: tip}, {send: tip, channel: email}, {survey: csat}]}
      customer.opted_out: {do: [{notify: customer, message: goodbye}]}
      done: closed
    after: [{in: 30d, to: closed}]
  closed: {final: true}
"""

# the Zalo care reminder three months after a purchase, falling back to SMS (then e-mail)
CARE = """
carepath: 1
id: care
version: "1"
timezone: Asia/Ho_Chi_Minh
fields:
  channel: {type: enum, values: [zalo, sms, email], default: zalo}
channels:
  zalo: {frequency_cap: {per: 7d, max: 1, mode: defer, exempt: [receipt]}}
  sms: {frequency_cap: {per: 1d, max: 1}}
  email: {}
start: {on: purchase.made}
stages:
  bought:
    initial: true
    enter:
      - {send: receipt}
      - {send: thanks}
      - {send: ack, channel: email, when: channel == "email"}
    on:
      complaint: {do: [{send: sorry, fallback: [sms, email]}]}
    after:
      - {in: 3mo, do: [{send: care_reminder, fallback: [sms, email]}]}
      - {in: 1y, to: closed}
  closed: {final: true}
"""

_n = 0


def ev(type_: str, at: datetime, **data: Any) -> Event:
    global _n
    _n += 1
    return Event(id=f"d{_n}", type=type_, at=at, case="KH-1", data=data)


def sent(step: Any) -> list[tuple[str, Any]]:
    return [
        (a.params.get("template") or a.params.get("survey"), a.params["channel"])
        for a in step.actions
        if a.type in ("send", "survey")
    ]


def signals(step: Any, *types: str) -> list[dict[str, Any]]:
    return [{"type": s.type, **s.data} for s in step.signals if not types or s.type in types]


def failed(action: Any, at: datetime, permanent: bool = True) -> Event:
    return ev("action.failed", at, action=action.to_dict(), reason="bounced", permanent=permanent)


def test_consent_is_true_by_default_and_opt_events_set_it() -> None:
    both = Both(CONSENT)
    both.start(ev("purchase.made", T0))
    s = both.handle(ev("nudge", T0 + timedelta(hours=1)))
    assert sent(s) == [("tip", "zalo"), ("tip", "email"), ("csat", "zalo")]
    s = both.handle(ev("customer.opted_out", T0 + timedelta(hours=2), channel="zalo"))
    assert s.state.data["consent.zalo"] is False
    assert [a.params["to"] for a in s.actions] == ["customer"]  # the playbook's handler runs too
    s = both.handle(ev("nudge", T0 + timedelta(hours=3)))
    assert sent(s) == [("tip", "email")]
    assert signals(s, "send.suppressed") == [
        {
            "type": "send.suppressed",
            "reason": "no_consent",
            "channel": "zalo",
            "template": "tip",
            "source": "stages.bought.on.nudge.do[0]",
        },
        {
            "type": "send.suppressed",
            "reason": "no_consent",
            "channel": "zalo",
            "template": "csat",
            "source": "stages.bought.on.nudge.do[2]",
        },
    ]
    s = both.handle(ev("customer.opted_out", T0 + timedelta(hours=4), channel="all"))
    assert {k: v for k, v in s.state.data.items() if k.startswith("consent.")} == {
        "consent.zalo": False,
        "consent.sms": False,
        "consent.email": False,
    }
    s = both.handle(ev("customer.opted_in", T0 + timedelta(hours=5), channel="zalo"))
    s = both.handle(ev("nudge", T0 + timedelta(hours=6)))
    assert sent(s) == [("tip", "zalo"), ("csat", "zalo")]
    assert runs_natively(both.text) is not False  # consent alone runs on the core


def test_an_opt_event_for_an_unknown_channel_is_invalid_and_changes_nothing() -> None:
    both = Both(CONSENT)
    both.start(ev("purchase.made", T0))
    before = [s.to_json() for s in both.states]
    with pytest.raises(InvalidEvent, match="`channel` = 'fax' is not a channel"):
        both.handle(ev("customer.opted_out", T0 + timedelta(hours=1), channel="fax"))
    assert [s.to_json() for s in both.states] == before


def test_consent_default_false_suppresses_until_the_customer_opts_in() -> None:
    both = Both(CONSENT.replace("timezone: Asia", "consent_default: false\ntimezone: Asia"))
    both.start(ev("purchase.made", T0))
    s = both.handle(ev("nudge", T0 + timedelta(hours=1)))
    assert sent(s) == []
    assert [x["channel"] for x in signals(s, "send.suppressed")] == ["zalo", "email", "zalo"]
    both.handle(ev("customer.opted_in", T0 + timedelta(hours=2), channel="email"))
    s = both.handle(ev("nudge", T0 + timedelta(hours=3)))
    assert sent(s) == [("tip", "email")]


def test_conditions_read_consent() -> None:
    text = CONSENT.replace(
        "done: closed", "done: closed\n      ping: {to: closed, when: not consent.zalo}"
    )
    both = Both(text)
    both.start(ev("purchase.made", T0))
    assert both.handle(ev("ping", T0 + timedelta(hours=1))).state.stage == "bought"
    both.handle(ev("customer.opted_out", T0 + timedelta(hours=2), channel="zalo"))
    assert both.handle(ev("ping", T0 + timedelta(hours=3))).state.stage == "closed"
    # SPEC §4.1: one behaviour on both backends, so the core runs such a condition too
    assert runs_natively(text) is not False


def test_conditions_read_consent_default_false_until_opted_in() -> None:
    text = CONSENT.replace("timezone: Asia", "consent_default: false\ntimezone: Asia").replace(
        "done: closed", "done: closed\n      ping: {to: closed, when: consent.zalo}"
    )
    both = Both(text)
    both.start(ev("purchase.made", T0))
    assert both.handle(ev("ping", T0 + timedelta(hours=1))).state.stage == "bought"
    both.handle(ev("customer.opted_in", T0 + timedelta(hours=2), channel="all"))
    assert both.handle(ev("ping", T0 + timedelta(hours=3))).state.stage == "closed"
    assert runs_natively(text) is not False


def test_action_when_is_checked_when_the_action_would_be_emitted() -> None:
    both = Both(CARE)
    s = both.start(ev("purchase.made", T0))
    assert ("ack", "email") not in sent(s)
    other = Both(CARE.replace("default: zalo}", "default: email}"))
    s = other.start(ev("purchase.made", T0))
    assert ("ack", "email") in sent(s)


def test_a_failed_send_falls_back_to_the_next_consenting_channel() -> None:
    both = Both(CARE)
    both.start(ev("purchase.made", T0))
    s = both.handle(ev("complaint", T0 + timedelta(days=10)))
    assert sent(s) == [("sorry", "zalo")]
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=10, minutes=5)))
    assert sent(s) == [("sorry", "sms")]
    assert s.actions[0].source == "stages.bought.on.complaint.do[0]"
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=10, minutes=9)))
    assert sent(s) == [("sorry", "email")]
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=10, minutes=20)))
    assert sent(s) == []
    assert signals(s) == [
        {
            "type": "send.exhausted",
            "channel": "email",
            "template": "sorry",
            "source": "stages.bought.on.complaint.do[0]",
        }
    ]


def test_the_zalo_care_reminder_after_three_months_falls_back_to_sms() -> None:
    both = Both(CARE)
    s = both.start(ev("purchase.made", datetime(2026, 1, 31, 10, 0, tzinfo=VN)))
    due = {d.name: d.due for d in s.deadlines if d.kind == "timer"}
    assert due["stages.bought.after[0]"] == datetime(2026, 4, 30, 10, 0, tzinfo=VN)
    s = both.advance(datetime(2026, 4, 30, 10, 0, tzinfo=VN))
    assert sent(s) == [("care_reminder", "zalo")]
    # Zalo bounces for good: the same reminder goes by SMS; SMS opted out: e-mail
    both.handle(ev("customer.opted_out", datetime(2026, 4, 30, 10, 1, tzinfo=VN), channel="sms"))
    s = both.handle(failed(s.actions[0], datetime(2026, 4, 30, 10, 2, tzinfo=VN)))
    assert sent(s) == [("care_reminder", "email")]
    assert [x["channel"] for x in signals(s, "send.suppressed")] == ["sms"]


def test_no_consent_on_the_case_channel_goes_straight_to_the_fallback() -> None:
    both = Both(CARE)
    both.start(ev("purchase.made", T0))
    both.handle(ev("customer.opted_out", T0 + timedelta(days=8), channel="zalo"))
    s = both.handle(ev("complaint", T0 + timedelta(days=9)))
    assert sent(s) == [("sorry", "sms")]
    assert [x["type"] for x in signals(s)] == ["send.suppressed"]


def test_a_capped_send_is_deferred_until_the_window_has_room_and_exempt_ones_pass() -> None:
    both = Both(CARE)
    s = both.start(ev("purchase.made", T0))
    # the receipt is exempt (neither counts nor is capped); thanks takes the week's one Zalo send
    assert sent(s) == [("receipt", "zalo"), ("thanks", "zalo")]
    s = both.handle(ev("complaint", T0 + timedelta(days=1)))
    assert sent(s) == []
    assert signals(s, "capped") == [
        {
            "type": "capped",
            "channel": "zalo",
            "template": "sorry",
            "source": "stages.bought.on.complaint.do[0]",
            "until": "2026-03-09T09:00:00+07:00",
        }
    ]
    s = both.advance(T0 + timedelta(days=7))
    assert sent(s) == [("sorry", "zalo")]
    assert s.actions[0].at == T0 + timedelta(days=7)


def test_a_deferred_fallback_keeps_its_channel() -> None:
    both = Both(
        CARE.replace(
            "{send: sorry, fallback: [sms, email]}",
            "{send: sorry, channel: email, fallback: [zalo]}",
        )
    )
    both.start(ev("purchase.made", T0))  # thanks takes Zalo's one send of the week
    s = both.handle(ev("complaint", T0 + timedelta(days=1)))
    assert sent(s) == [("sorry", "email")]
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=1, hours=1)))
    assert sent(s) == [] and [x["until"] for x in signals(s, "capped")] == [
        "2026-03-09T09:00:00+07:00"
    ]
    assert [d.name for d in s.deadlines if d.kind == "action"] == [
        "stages.bought.on.complaint.do[0]#zalo"
    ]
    s = both.advance(T0 + timedelta(days=7))
    assert sent(s) == [("sorry", "zalo")]


def _codes(text: str) -> list[str]:
    try:
        pb = loads(text)
    except PlaybookError as exc:
        return [f"{d.code} {d.path}" for d in exc.diagnostics]
    return [f"{d.code} {d.path}" for d in pb.warnings]


def test_validation_of_fallback_when_and_caps() -> None:
    assert _codes(
        CARE.replace("fallback: [sms, email]}]}\n    after", "fallback: [sms, fax]}]}\n    after")
    ) == ["CP304 stages.bought.on.complaint.do[0].fallback[1]"]
    assert _codes(CARE.replace('when: channel == "email"', 'when: channel == "mail"'))[
        0
    ].startswith("CP403 stages.bought.enter[2].when")
    assert _codes(CARE.replace("{send: thanks}", "{notify: customer, fallback: [sms]}")) == [
        "CP203 stages.bought.enter[1]"
    ]


def test_action_when_runs_on_the_native_core_too() -> None:
    text = CONSENT.replace(
        "nudge: {do: [{send: tip}, {send: tip, channel: email}, {survey: csat}]}",
        'nudge: {do: [{send: tip, when: event.n > 1}, {send: late, in: 1h, when: channel == "sms"}]}',
    )
    both = Both(text)
    both.start(ev("purchase.made", T0))
    assert sent(both.handle(ev("nudge", T0 + timedelta(hours=1), n=1))) == []
    assert sent(both.handle(ev("nudge", T0 + timedelta(hours=2), n=2))) == [("tip", "zalo")]
    assert sent(both.advance(T0 + timedelta(hours=4))) == []  # the delayed one: channel is zalo
    assert runs_natively(both.text) is not False


# fallback, consent and `when` without the reference-only parts (defer, exempt): the core runs it
CARE_NATIVE = (
    CARE.replace(
        "zalo: {frequency_cap: {per: 7d, max: 1, mode: defer, exempt: [receipt]}}",
        "zalo: {frequency_cap: {per: 7d, max: 3}}",
    )
    .replace("{in: 3mo", "{in: 90d")
    .replace("{in: 1y", "{in: 365d")
)


def test_fallback_runs_on_the_native_core_too() -> None:
    both = Both(CARE_NATIVE)
    both.start(ev("purchase.made", T0))
    both.handle(ev("customer.opted_out", T0 + timedelta(minutes=1), channel="sms"))
    s = both.handle(ev("complaint", T0 + timedelta(days=1)))
    assert sent(s) == [("sorry", "zalo")]
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=1, minutes=5)))
    assert sent(s) == [("sorry", "email")]  # sms opted out: suppressed, then e-mail
    assert [x["type"] for x in signals(s)] == ["send.suppressed"]
    s = both.handle(failed(s.actions[0], T0 + timedelta(days=1, minutes=9), permanent=False))
    assert sent(s) == [] and [x["type"] for x in signals(s)] == ["send.exhausted"]
    both.handle(ev("customer.opted_out", T0 + timedelta(days=2), channel="zalo"))
    both.handle(ev("customer.opted_in", T0 + timedelta(days=2, hours=1), channel="sms"))
    s = both.handle(ev("complaint", T0 + timedelta(days=3)))  # no consent on zalo: straight to sms
    assert sent(s) == [("sorry", "sms")]
    # a failure report of another action, or a malformed one, changes nothing
    s = both.handle(ev("action.failed", T0 + timedelta(days=3, hours=1), action={"type": "notify"}))
    assert sent(s) == [] and signals(s) == []
    s = both.handle(ev("action.failed", T0 + timedelta(days=3, hours=2), action="KH-1:9"))
    assert sent(s) == [] and signals(s) == []
    assert runs_natively(both.text) is not False
