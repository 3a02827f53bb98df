"""Arithmetic in ``=`` values and conditions, and calendar months (SPEC §10, §2.2), on both
engine backends: each test runs the reference and ``auto`` (the native core where it is
installed and supports the playbook) and asserts both give the same steps, byte for byte."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from backends import Both, runs_natively
from carepath import Event, loads
from carepath.errors import InvalidEvent, PlaybookError

VN = timezone(timedelta(hours=7))
T0 = datetime(2026, 1, 31, 9, 0, tzinfo=VN)

PLAYBOOK = """
carepath: 1
id: loyalty
version: "1"
timezone: Asia/Ho_Chi_Minh
fields:
  orders: {type: int, default: 0}
  total: {type: decimal, default: "0"}
  average: float
  purchased: datetime
  follow_up: datetime
  wait: {type: duration, default: 1h}
events:
  order.placed: {amount: decimal}
start: {on: case.opened}
stages:
  active:
    initial: true
    on:
      order.placed:
        - when: orders + 1 >= 3
          to: loyal
          set: {orders: =orders + 1, total: =total + event.amount}
        - set:
            orders: =orders + 1
            total: =total + event.amount
            average: =(total + event.amount) / (orders + 1)
            purchased: =event.at
            follow_up: =event.at + wait * 2 - duration("30m")
      boost: {set: {orders: =orders * 1000000000000000}}
    after:
      - {in: 3mo, do: [{send: care_reminder}]}
      - {in: 1y, to: loyal}
  loyal: {final: true}
"""

# the same without calendar months: the native core runs it (conditions and values computing
# through the reference functions it calls)
PLAYBOOK_DAYS = PLAYBOOK.replace("{in: 3mo", "{in: 89d").replace("{in: 1y", "{in: 365d")


def ev(type_: str, at: datetime, n: int, **data: Any) -> Event:
    return Event(id=f"e{n}", type=type_, at=at, case="KH-1", data=data)


@pytest.mark.parametrize("text", [PLAYBOOK, PLAYBOOK_DAYS])
def test_set_values_compute_with_numbers_decimals_durations_and_instants(text: str) -> None:
    both = Both(text)
    both.start(ev("case.opened", T0, 0))
    s = both.handle(ev("order.placed", T0, 1, amount="12.50"))
    assert s.state.data["orders"] == 1
    assert s.state.data["total"] == "12.5"
    assert s.state.data["average"] == 12.5
    # 1h * 2 - 30m after the purchase: exact time
    assert s.state.data["follow_up"] == "2026-01-31T10:30:00+07:00"
    s = both.handle(ev("order.placed", T0 + timedelta(days=1), 2, amount="0.25"))
    assert s.state.data["orders"] == 2 and s.state.data["total"] == "12.75"
    assert s.state.data["average"] == pytest.approx(6.375)
    # the condition computes too: the third order moves the case
    s = both.handle(ev("order.placed", T0 + timedelta(days=2), 3, amount="1"))
    assert s.state.stage == "loyal" and s.state.data["orders"] == 3


@pytest.mark.parametrize("text", [PLAYBOOK, PLAYBOOK_DAYS])
def test_an_overflow_is_an_invalid_event_and_leaves_the_state_unchanged(text: str) -> None:
    both = Both(text)
    both.start(ev("case.opened", T0, 0))
    both.handle(ev("order.placed", T0, 1, amount="1"))
    both.handle(ev("order.placed", T0, 2, amount="1"))  # 2 × 10^15 is past the bound
    before = [s.to_json() for s in both.states]
    with pytest.raises(InvalidEvent, match="arithmetic overflow"):
        both.handle(ev("boost", T0 + timedelta(hours=1), 3))
    assert [s.to_json() for s in both.states] == before


def test_an_overflowing_operand_from_an_event_is_invalid_too() -> None:
    both = Both(PLAYBOOK_DAYS)
    both.start(ev("case.opened", T0, 0))
    with pytest.raises(InvalidEvent, match="arithmetic overflow"):
        both.handle(ev("order.placed", T0, 1, amount="1e40"))


def test_months_count_calendar_months_clamped_to_the_last_day() -> None:
    both = Both(PLAYBOOK)
    s = both.start(ev("case.opened", T0, 0))  # 31 January, 09:00 in Hanoi
    timers = {d.name: d.due for d in s.deadlines if d.kind == "timer"}
    assert timers["stages.active.after[0]"] == datetime(2026, 4, 30, 9, 0, tzinfo=VN)
    assert timers["stages.active.after[1]"] == datetime(2027, 1, 31, 9, 0, tzinfo=VN)
    s = both.advance(datetime(2026, 4, 30, 9, 0, tzinfo=VN))
    assert [a.params["template"] for a in s.actions] == ["care_reminder"]


def _error(text: str) -> str:
    with pytest.raises(PlaybookError) as info:
        loads(text)
    d = info.value.diagnostics[0]
    return f"{d.code} {d.path} {d.message}"


def test_type_errors_are_reported_at_load_time_with_their_place() -> None:
    bad = PLAYBOOK.replace("=orders * 1000000000000000", '=orders + "one"')
    msg = _error(bad)
    assert msg.startswith("CP403 stages.active.on.boost.set.orders")
    assert "'+' does not apply to int and string" in msg
    wrong_field = PLAYBOOK.replace("=orders * 1000000000000000", "=orders / 2")
    msg = _error(wrong_field)
    assert "expression gives float, field 'orders' is int" in msg


def test_months_are_rejected_where_time_is_business_time() -> None:
    bad = PLAYBOOK.replace("{in: 3mo, do:", "{in: 3mo, calendar: always, do:")
    msg = _error(bad)
    assert msg.startswith("CP205") and "calendar months" in msg


def test_which_backend_runs_what() -> None:
    """Calendar months and arithmetic run natively wherever the core is installed (for months
    the core asks the reference's arithmetic, ``wall_months``: SPEC §4.1, one behaviour)."""
    pytest.importorskip("carepath_core")
    assert runs_natively(PLAYBOOK)
    assert runs_natively(PLAYBOOK_DAYS)
