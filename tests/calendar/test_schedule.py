"""Cron schedules (SPEC §4.4): wall-clock cron, DST (rule 8) and quiet hours (window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carepath.calendar.business import Calendar
from carepath.calendar.schedule import Schedule
from carepath.errors import DefinitionError

NY = ZoneInfo("America/New_York")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
LHI = ZoneInfo("Australia/Lord_Howe")


def test_next_after_is_strict() -> None:
    s = Schedule("0 9 * * MON", "Asia/Ho_Chi_Minh")
    mon9 = datetime(2026, 3, 2, 9, tzinfo=HCM)
    assert s.next_after(datetime(2026, 3, 1, 12, tzinfo=HCM)) == mon9
    assert s.next_after(mon9) == datetime(2026, 3, 9, 9, tzinfo=HCM)
    assert s.next_after_s(mon9.timestamp()) == datetime(2026, 3, 9, 9, tzinfo=HCM).timestamp()


def test_spring_forward_moves_by_the_gap() -> None:
    s = Schedule("30 2 * * *", "America/New_York")
    assert s.next_after(datetime(2026, 3, 8, 0, tzinfo=NY)) == datetime(
        2026, 3, 8, 3, 30, tzinfo=NY
    )
    # Just after the gap, the moved 02:30 fire (03:30) is still ahead.
    assert s.next_after(datetime(2026, 3, 8, 3, 10, tzinfo=NY)) == datetime(
        2026, 3, 8, 3, 30, tzinfo=NY
    )
    assert s.next_after(datetime(2026, 3, 8, 3, 30, tzinfo=NY)) == datetime(
        2026, 3, 9, 2, 30, tzinfo=NY
    )


def test_every_ten_minutes_over_the_gap_keeps_order() -> None:
    s = Schedule("*/10 * * * *", "America/New_York")
    t = datetime(2026, 3, 8, 1, 45, tzinfo=NY)
    fires = []
    for _ in range(5):
        t = s.next_after(t)
        fires.append(t.strftime("%H:%M"))
    assert fires == ["01:50", "03:00", "03:10", "03:20", "03:30"]


def test_fall_back_fires_once_at_first_occurrence() -> None:
    s = Schedule("30 1 * * *", "America/New_York")
    first = s.next_after(datetime(2026, 11, 1, 0, tzinfo=NY))
    assert first.utcoffset() == timedelta(hours=-4)  # EDT, the first occurrence
    assert s.next_after(first) == datetime(2026, 11, 2, 1, 30, tzinfo=NY)


def test_lord_howe_half_hour_shift() -> None:
    s = Schedule("15 2 * * *", "Australia/Lord_Howe")  # 02:00-02:30 does not exist on 2026-10-04
    u = s.next_after(datetime(2026, 10, 4, 0, tzinfo=LHI))
    assert u == datetime(2026, 10, 4, 2, 45, tzinfo=LHI)


def test_quiet_hours_shift_into_the_window() -> None:
    office = Calendar.from_dict(
        {
            "timezone": "Asia/Ho_Chi_Minh",
            "hours": {"mon-fri": ["08:00-17:00"]},
            "holidays": ["2026-03-03"],
        }
    )
    s = Schedule("0 20 * * *", "Asia/Ho_Chi_Minh", window=office)
    # Monday 20:00 is outside the window; Tuesday is a holiday: Wednesday's opening.
    assert s.next_after(datetime(2026, 3, 2, 12, tzinfo=HCM)) == datetime(2026, 3, 4, 8, tzinfo=HCM)
    inside = Schedule("0 10 * * *", "Asia/Ho_Chi_Minh", window=office)
    assert inside.next_after(datetime(2026, 3, 2, 9, tzinfo=HCM)) == datetime(
        2026, 3, 2, 10, tzinfo=HCM
    )
    assert inside.next_after(datetime(2026, 3, 7, 9, tzinfo=HCM)) == datetime(
        2026, 3, 9, 8, tzinfo=HCM
    )


def test_bad_definitions() -> None:
    with pytest.raises(ValueError, match="invalid cron"):
        Schedule("61 * * * *", "UTC")
    with pytest.raises(DefinitionError, match="timezone"):
        Schedule("0 9 * * *", "Mars/Base")
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule("0 9 * * *", "UTC").next_after(datetime(2026, 1, 1))


def test_result_in_schedule_zone() -> None:
    s = Schedule("0 9 * * *", "Asia/Ho_Chi_Minh")
    u = s.next_after(datetime(2026, 3, 2, 0, tzinfo=UTC))
    assert u == datetime(2026, 3, 2, 9, tzinfo=HCM) and u.tzinfo == HCM
