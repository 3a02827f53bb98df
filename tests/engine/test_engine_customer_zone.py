"""Calendars in the customer's time zone (SPEC §10): ``timezone: customer`` reads the hours in the
zone the field ``customer_timezone`` names; a missing or unknown zone falls back to the playbook's
with a ``timezone.fallback`` signal. :class:`backends.Both` steps the reference and the native
core (when installed) side by side: they must agree."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from backends import Both, runs_natively
from carepath import Event, loads
from carepath.errors import PlaybookError

VN = timezone(timedelta(hours=7))

PLAYBOOK = """
carepath: 1
id: quiet
version: "1"
timezone: Asia/Ho_Chi_Minh
customer_timezone: customer.tz
fields:
  customer.tz: string
calendars:
  quiet_hours: {timezone: customer, hours: {mon-sun: ["08:00-21:00"]}}
start: {on: purchase.made, set: {customer.tz: =event.tz}}
stages:
  bought:
    initial: true
    enter: [{send: thanks, window: quiet_hours}]
    after: [{in: 30d, to: closed}]
  closed: {final: true}
"""


def start(tz: Any) -> Any:
    both = Both(PLAYBOOK)
    # 22:00 in Hanoi is 16:00 in Berlin (winter): inside a Berlin customer's hours
    at = datetime(2026, 1, 5, 22, 0, tzinfo=VN)
    return both, both.start(
        Event(id="e0", type="purchase.made", at=at, case="KH-1", data={"tz": tz})
    )


def test_quiet_hours_are_the_customers_own() -> None:
    _, s = start("Europe/Berlin")
    assert [a.params["template"] for a in s.actions] == ["thanks"]
    assert runs_natively(PLAYBOOK) in (True, None)  # the core runs it (SPEC §4.1), when built
    _, s = start("Asia/Ho_Chi_Minh")
    assert s.actions == []
    assert [d.due for d in s.deadlines if d.kind == "action"] == [
        datetime(2026, 1, 6, 8, 0, tzinfo=VN)
    ]


@pytest.mark.parametrize("tz", [None, "Mars/Olympus", "", "../../etc/passwd"])
def test_a_missing_or_unknown_zone_falls_back_to_the_playbooks_with_a_signal(tz: Any) -> None:
    _, s = start(tz)
    assert s.actions == []  # 22:00 in Hanoi: closed
    assert [(x.type, dict(x.data)) for x in s.signals] == [
        (
            "timezone.fallback",
            {"calendar": "quiet_hours", "zone": tz, "timezone": "Asia/Ho_Chi_Minh"},
        )
    ]


def _error(text: str) -> str:
    with pytest.raises(PlaybookError) as info:
        loads(text)
    d = info.value.diagnostics[0]
    return f"{d.code} {d.path}: {d.message}"


def test_validation_knows_the_field_must_be_a_string() -> None:
    msg = _error(
        PLAYBOOK.replace("customer.tz: string", "customer.tz: int").replace("=event.tz", "7")
    )
    assert msg.startswith("CP203 customer_timezone:") and "must be a string" in msg
    msg = _error(
        PLAYBOOK.replace("customer_timezone: customer.tz", "customer_timezone: customer.zone")
    )
    assert msg.startswith("CP402 customer_timezone:")
    msg = _error(PLAYBOOK.replace("customer_timezone: customer.tz\n", ""))
    assert msg.startswith("CP202 calendars.quiet_hours.timezone:")
