"""The native core against the reference: byte-identical steps (SPEC §4.1, issue 16).

Both example logs, and Hypothesis-generated playbooks × event streams × extra ``advance`` calls,
run through ``Engine(pb, backend="python")`` and ``Engine(pb, backend="native")`` side by side;
every step must agree on ``state.to_json()``, the actions, the signals, the deadlines and the
errors raised. Generated playbooks the core does not support (``Unsupported``) are skipped; the
examples must be supported. Without the core installed the module skips, unless
``CAREPATH_REQUIRE_NATIVE=1`` (CI on a machine with cargo), where it fails.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from carepath import CaseState, Engine, Event, load, loads
from carepath.errors import CarepathError
from carepath.events import event_from_line
from strategies import ADVANCE, native_playbook, playbooks, streams, timed, with_advances, yaml_text
from typed_fields import TYPED_CASE, checked, placed, results

try:
    import carepath_core  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CAREPATH_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip(
        "carepath-core is not installed (scripts/bootstrap builds it when cargo is present)",
        allow_module_level=True,
    )

from carepath._native import lower
from carepath._native.raw import action_count, outbox_rows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    ("vn-retail-support.yaml", "vn-retail-support.jsonl"),
    ("omnichannel-journey.yaml", "omnichannel-journey.jsonl"),
    ("zalo-care.yaml", "zalo-care.jsonl"),
]
T_OPEN = datetime.fromisoformat("2027-03-01T09:00:00+07:00")
SETTINGS = settings(
    max_examples=int(os.environ.get("CAREPATH_EXAMPLES", "80")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _dump(step: Any) -> tuple[Any, ...]:
    return (
        step.state.to_json(),
        [a.to_dict() for a in step.actions],
        [s.to_dict() for s in step.signals],
        [d.to_dict() for d in step.deadlines],
        step.state.next_wakeup,
    )


def _do(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except CarepathError as exc:
        return "error", (type(exc).__name__, str(exc))


class Pair:
    """One case through both backends in lockstep; every step compared."""

    def __init__(self, pb: Any) -> None:
        self.py = Engine(pb, backend="python")
        self.nt = Engine(pb, backend="native")
        assert self.py.backend == "python" and self.nt.backend == "native"
        self.sp: Any = None
        self.sn: Any = None
        self.steps = 0
        self.native: list[Any] = []  # the native steps, in order

    def _both(self, name: str, *args: Any) -> None:
        a = _do(
            getattr(self.py, name), *((self.sp, *args) if name != "start" else (*args, self.sp))
        )
        b = _do(
            getattr(self.nt, name), *((self.sn, *args) if name != "start" else (*args, self.sn))
        )
        assert a[0] == b[0], (name, args, a, b)
        if a[0] == "error":
            assert a[1] == b[1]
            return
        # the outbox rows a store writes from the core's tuples, before anything read the
        # native step's actions, are those of the reference's Action objects
        assert outbox_rows(b[1]) == outbox_rows(a[1]), (name, args)
        assert action_count(b[1]) == len(a[1].actions)
        assert _dump(a[1]) == _dump(b[1]), (name, args)
        self.sp, self.sn = a[1].state, b[1].state
        self.native.append(b[1])
        self.steps += 1

    def event(self, ev: Any) -> None:
        if self.sp is None or self.sp.ended:
            if self.py.opens(ev):
                self._both("start", ev)
            return
        self._both("handle", ev)

    def advance(self, t: Any) -> None:
        if self.sp is not None:
            self._both("advance", t)

    def wake(self, before: Any = None, limit: int = 50) -> None:
        """Advance to each wake-up in turn, those strictly before ``before`` (``None``: all),
        at most ``limit`` of them."""
        for _ in range(limit):
            due = self.sp.next_wakeup if self.sp is not None else None
            if due is None or (before is not None and due >= before):
                return
            self.advance(due)


@pytest.mark.parametrize(("yaml", "log"), EXAMPLES)
def test_examples_are_supported(yaml: str, log: str) -> None:
    lower(load(ROOT / "examples" / yaml))
    assert Engine(load(ROOT / "examples" / yaml), backend="native").backend == "native"


@pytest.mark.parametrize("wakeups", [False, True], ids=["events", "events+wakeups"])
@pytest.mark.parametrize(("yaml", "log"), EXAMPLES)
def test_example_logs_are_byte_identical(yaml: str, log: str, wakeups: bool) -> None:
    pb = load(ROOT / "examples" / yaml)
    pairs: dict[str, Pair] = {}
    lines = [
        ln.strip()
        for ln in (ROOT / "examples" / "events" / log).read_text().splitlines()
        if ln.strip()
    ]
    for line in lines:
        ev = event_from_line(line)
        key = Engine(pb, backend="python").case_key(ev) or ""
        p = pairs.setdefault(key, Pair(pb))
        if wakeups:  # advance to every wake-up before the event, and to a quiet instant
            p.wake(before=ev.at)
            if p.sp is not None:
                p.advance(p.sp.now + (ev.at - p.sp.now) / 3)
        p.event(ev)
    assert sum(p.steps for p in pairs.values()) >= len(lines) // 2
    for p in pairs.values():  # and everything still due, a week on
        if p.sp is not None:
            p.advance(p.sp.now + timedelta(days=7))


@pytest.mark.parametrize(
    ("opening", "check"),
    [
        (
            ("2026-12-31", "2026-03-02T09:00:00+07:00", "12.50"),
            ("2027-01-01", "2026-03-02T03:00:00+00:00", "10"),
        ),
        (
            ("2027-01-01", "2026-03-02T09:00:00Z", "9.99"),
            ("2027-01-01", "2026-03-02T09:00Z", "10.00"),
        ),
    ],
    ids=["holding", "not-holding"],
)
def test_a_state_restored_from_json_compares_typed_fields_identically(
    opening: tuple[str, str, str], check: tuple[str, str, str]
) -> None:
    """Issue 15 #7: a state read back from its JSON (text dates, datetimes and decimals) gives
    both backends the same step, with the comparisons made on the typed values."""
    p = Pair(loads(TYPED_CASE))
    p.event(placed(*opening))
    p.sp = CaseState.from_json(p.sp.to_json())
    p.sn = CaseState.from_json(p.sn.to_json())
    p.event(checked(*check))
    assert p.steps == 2 and p.sp.stage == p.sn.stage == "checked"
    holding = opening[0] < check[0]
    assert results(p.sn.data)["renewal_before"] is holding
    assert results(p.sn.data)["seen_before"] is holding
    assert results(p.sn.data)["amount_above"] is holding


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("T-1", {"channel": "chat"}),
        ("T-1", {"channel": "chat", "priority": "urgent", "customer_age": 70}),
        ("T-1", {}),  # channel is required: refused the same way
        ("T-1", {"channel": "fax"}),  # not one of the enum's values
        ("T-1", {"channel": "chat", "customer_age": "70"}),  # an int field given text
        ("T-1", {"channel": "chat", "lives_alone": 1}),  # a bool field given an int
        ("", {"channel": "chat"}),  # no case key
        (None, {"channel": "chat"}),
    ],
)
def test_opening_a_case_in_the_core_agrees_with_the_reference(case: Any, data: Any) -> None:
    """The core opens a case alone when it can (``start_fast``); every other opening, and every
    refusal, goes the reference's way: both backends give the same step or the same error."""
    from carepath import Event

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    ev = Event("o-1", "case.opened", T_OPEN, case, data)
    p = Pair(pb)
    p._both("start", ev)


@SETTINGS
@given(data=st.data())
def test_generated_playbooks_and_streams_are_byte_identical(data: Any) -> None:
    d = data.draw(playbooks())
    pb = native_playbook(yaml_text(d))
    assume(pb is not None)
    stream = data.draw(streams(d).flatmap(with_advances))
    p = Pair(pb)
    # both note the cases that select the watched targets alike, and watching changes no step
    watch = {
        name: data.draw(st.sets(st.integers(0, len(clock.targets) - 1)))
        for name, clock in pb.clocks.items()
    }
    noted = [p.py.watch_targets(watch), p.nt.watch_targets(watch)]
    for ev in timed(stream):
        if ev.type == ADVANCE:
            p.advance(ev.at)
        else:
            p.event(ev)
    if p.sp is not None:
        p.advance(p.sp.now + timedelta(days=30))
    assert noted[0] == noted[1]
    everything = {name: set(range(len(clock.targets))) for name, clock in pb.clocks.items()}
    if p.sp is not None and any(c.cycle for c in p.sp.clocks.values()) and watch == everything:
        assert noted[0] == {p.sp.case}  # a cycle started: it selected a target


def test_a_generated_support_desk_log_is_byte_identical() -> None:
    """``bench_engine.stream``: interleaved cases with every clock running, both backends step by
    step (``CAREPATH_DIFF_CASES=14000`` makes it the issue's ~100k-event log)."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_engine import stream

    pb = load(ROOT / "examples" / "vn-retail-support.yaml")
    pairs: dict[str, Pair] = {}
    events = stream(int(os.environ.get("CAREPATH_DIFF_CASES", "150")), seed=11)
    for ev in events:
        p = pairs.setdefault(ev.case or "", Pair(pb))
        p.event(ev)
    assert sum(p.steps for p in pairs.values()) == len(events)
    last = max(ev.at for ev in events) + timedelta(days=10)
    for p in pairs.values():
        p.advance(last)


MONTHS = """
carepath: 1
id: care
version: "1"
timezone: America/New_York
start: {on: purchase.made}
stages:
  bought:
    initial: true
    enter:
      - {send: thanks, in: 1mo}
      - {task: call_back, due: 2mo}
      - {send: anniversary, in: 1y1d}
    after:
      - {in: 3mo, do: [{send: care_reminder}, {task: survey_call, due: 1mo2d}]}
      - {in: 1y2mo, to: lapsed}
    on:
      purchase.repeated: {do: [{send: thanks_again, in: 1mo, keep: true}]}
  lapsed: {final: true}
"""


@pytest.mark.parametrize(
    "opened",
    [
        "2027-01-31T09:30:00-05:00",  # + 1mo: clamped to 28 February
        "2028-02-29T23:59:59.500000-05:00",  # leap day, + 1y: 28 February
        "2027-02-14T02:30:00-05:00",  # + 1mo: 14 March 02:30 does not exist (DST gap)
        "2027-10-07T01:30:00-04:00",  # + 1mo: 7 November 01:30 is ambiguous (DST ends)
    ],
)
def test_delays_in_calendar_months_run_natively_and_byte_identically(opened: str) -> None:
    # SPEC §4.1: both backends give equal steps for every playbook; §10: `mo` and `y` delays
    pb = loads(MONTHS)
    assert Engine(pb, backend="native").backend == "native"
    t0 = datetime.fromisoformat(opened)
    pair = Pair(pb)
    pair.event(Event("e0", "purchase.made", t0, "C-1"))
    pair.event(Event("e1", "purchase.repeated", t0 + timedelta(days=40), "C-1"))
    pair.wake(limit=8)  # every wake-up in turn, to the end
    assert pair.sp.ended and pair.steps >= 6


CONSENT_CONDITIONS = """
carepath: 1
id: care2
version: "1"
timezone: Asia/Ho_Chi_Minh
consent_default: false
channels:
  zalo: {}
  sms: {}
  email: {}
segments:
  reachable: consent.zalo or consent.sms
  quiet: "true"
tiers:
  L1: {title: Agent}
start: {on: purchase.made}
stages:
  bought:
    initial: true
    enter: [{send: hi, channel: zalo, fallback: [sms, email], when: consent.email or consent.zalo}]
    on:
      nudge: {do: [{send: tip, channel: sms, when: not consent.sms}, {notify: assignee, when: assignee != null}]}
      close: {to: done, when: segment == "reachable" and assignee == "lan"}
  done: {final: true}
"""


def test_conditions_on_consent_and_assignee_are_byte_identical() -> None:
    # SPEC §4.1 and §10: segments, action `when`s and handler `when`s reading consent.<channel>
    # (consent_default: false until opted in) and assignee, through both backends step by step
    pb = loads(CONSENT_CONDITIONS)
    t0 = datetime.fromisoformat("2027-01-05T09:00:00+00:00")
    pair = Pair(pb)
    stream = [
        ("purchase.made", {}),
        ("nudge", {}),
        ("customer.opted_in", {"channel": "sms"}),
        ("close", {}),
        ("agent.assigned", {"agent": "lan"}),
        ("nudge", {}),
        ("customer.opted_out", {"channel": "all"}),
        ("close", {}),
        ("customer.opted_in", {"channel": "zalo"}),
        ("nudge", {}),
        ("close", {}),
    ]
    for i, (type_, data) in enumerate(stream):
        pair.event(Event(f"e{i}", type_, t0 + timedelta(minutes=i), "C", data))
    assert pair.steps == len(stream) and pair.sp.stage == "done"


CAPS = """
carepath: 1
id: caps
version: "1"
timezone: Asia/Ho_Chi_Minh
channels:
  zalo: {frequency_cap: {per: 1d, max: 2, mode: defer, exempt: [receipt]}}
  sms: {frequency_cap: {per: 7d, max: 1, mode: defer}}
  email: {frequency_cap: {per: 1d, max: 1}}
tiers:
  L1: {title: Agent}
start: {on: purchase.made, set: {channel: =event.channel}}
fields:
  channel: {type: string}
stages:
  bought:
    initial: true
    enter: [{send: receipt}, {send: thanks}]
    on:
      nudge:
        do:
          - {send: tip}
          - {send: receipt}
          - {send: promo, channel: sms, fallback: [zalo], keep: true}
          - {send: digest, channel: email}
      move: done
    after:
      - {in: 2d, do: [{send: reminder}]}
  done:
    enter: [{send: bye, channel: zalo}]
    on:
      nudge: {do: [{send: tip}]}
      finish: closed
  closed: {final: true}
"""


@pytest.mark.parametrize("channel", ["zalo", "sms"])
def test_frequency_caps_that_defer_and_exempt_run_natively_and_byte_identically(
    channel: str,
) -> None:
    # SPEC §4.6 and §10: `mode: defer` holds a capped send until the window has room (a
    # fallback's channel goes with it), `exempt` templates neither count nor are capped; a
    # deferred send not `keep` goes with its stage visit, one that is `keep` outlives it
    pb = loads(CAPS)
    assert Engine(pb, backend="native").backend == "native"
    t0 = datetime.fromisoformat("2027-01-05T09:00:00+07:00")
    pair = Pair(pb)
    stream = [
        ("purchase.made", {"channel": channel}),
        ("nudge", {}),
        ("customer.opted_out", {"channel": "sms"}),
        ("nudge", {}),
        ("nudge", {}),
        ("move", {}),
        ("nudge", {}),
    ]
    for i, (type_, data) in enumerate(stream):
        at = t0 + timedelta(hours=i)
        pair.wake(before=at)  # what fell due before the event, in turn
        pair.event(Event(f"e{i}", type_, at, "C", data))
    pair.wake(limit=12)  # then every wake-up in turn, to the last
    assert pair.steps >= len(stream) + 2
    signals = [s for step in pair.native for s in step.signals]
    actions = [a for step in pair.native for a in step.actions]
    capped = [dict(s.data) for s in signals if s.type == "capped"]
    sent = [(a.params["template"], a.params["channel"]) for a in actions if a.type == "send"]
    # exempt on zalo: never capped, every one sent (at the opening and at each of 3 nudges)
    assert not [c for c in capped if c["template"] == "receipt" and c["channel"] == "zalo"]
    assert sent.count(("receipt", channel)) == 4 or channel != "zalo"
    # deferred: the capped send says until when, and is sent then
    assert any(c["channel"] == channel and "until" in c for c in capped)
    assert not [c for c in capped if c["channel"] == "email" and "until" in c]  # email drops
    assert ("promo", "zalo") in sent  # after the opt-out from sms, its fallback
    if channel == "zalo":
        # promo goes by sms first; once sms is opted out it falls back to zalo, is deferred
        # there and sent there
        assert ("promo", "sms") in sent
        assert any(c["template"] == "promo" and c["channel"] == "zalo" for c in capped)
        assert sent.count(("promo", "zalo")) == 2


CUSTOMER_ZONE = """
carepath: 1
id: abroad
version: "1"
timezone: Asia/Ho_Chi_Minh
customer_timezone: customer.tz
fields:
  customer.tz: string
calendars:
  quiet:
    timezone: customer
    hours: {mon-sun: ["08:00-21:00"]}
  desk:
    timezone: customer
    hours: {mon-fri: ["09:00-17:00"]}
tiers:
  L1: {title: Agent}
start: {on: purchase.made, set: {customer.tz: =event.tz}}
slas:
  answer:
    start: {on: purchase.made}
    stop: {on: answered}
    calendar: desk
    targets: [{within: 4h}]
    thresholds: [{at: 50%, do: [{notify: L1}]}]
stages:
  bought:
    initial: true
    enter: [{send: thanks, window: quiet}, {send: tip, in: 10h, window: quiet}]
    on:
      moved:
        set: {customer.tz: =event.tz}
        do: [{send: welcome, window: quiet}]
      answered: done
    after:
      - {in: 1d, window: quiet, do: [{send: nudge}]}
  done: {final: true}
"""


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("America/New_York", "Europe/Berlin"),  # New York's clocks go forward on 14 March 2027
        ("Europe/Berlin", None),
        (None, "Asia/Tokyo"),  # no zone: the playbook's, with timezone.fallback
        ("Mars/Olympus_Mons", "America/New_York"),  # no such zone
        ("", ""),
    ],
)
def test_calendars_in_the_customers_zone_run_natively_and_byte_identically(
    first: Any, then: Any
) -> None:
    # SPEC §10: a `timezone: customer` calendar reads its hours in the zone the case field
    # `customer_timezone` names; a missing or unknown zone falls back to the playbook's, with a
    # `timezone.fallback` signal once a step. Windows, delays and an SLA clock on such calendars
    pb = loads(CUSTOMER_ZONE)
    assert Engine(pb, backend="native").backend == "native"
    t0 = datetime.fromisoformat("2027-03-13T21:30:00-05:00")  # a Saturday night in New York
    pair = Pair(pb)
    stream: list[tuple[str, dict[str, Any]]] = [
        ("purchase.made", {} if first is None else {"tz": first}),
        ("moved", {} if then is None else {"tz": then}),
        ("noise", {}),
        ("answered", {}),
    ]
    for i, (type_, data) in enumerate(stream):
        at = t0 + timedelta(hours=9 * i)
        pair.wake(before=at)
        pair.event(Event(f"e{i}", type_, at, "C", data))
    pair.wake(limit=12)
    assert pair.steps >= 4
    fallbacks = [
        [dict(s.data) for s in step.signals if s.type == "timezone.fallback"]
        for step in pair.native
    ]
    assert all(len(f) <= 1 for f in fallbacks)  # once a step at most
    valid = isinstance(first, str) and first in ("America/New_York", "Europe/Berlin")
    assert bool(fallbacks[0]) is not valid
    if fallbacks[0]:
        assert fallbacks[0][0]["zone"] == first and fallbacks[0][0]["timezone"] == pb.timezone
    if first == "America/New_York":
        # 21:30 in New York is after the quiet hours: thanks waits for 08:00 there
        thanks = [a for s in pair.native for a in s.actions if a.params.get("template") == "thanks"]
        assert thanks and thanks[0].at.astimezone(ZoneInfo(first)).hour == 8
