"""Business time (SPEC §3): rules 1-10, worked examples from other engines, validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carepath.calendar.business import Calendar
from carepath.errors import CalendarError, NoOpenTime

H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
BER = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
UTC = UTC


def at(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def nine_to_five(tz: str = "Europe/Berlin", **more: object) -> Calendar:
    return Calendar.from_dict({"timezone": tz, "hours": {"mon-fri": ["09:00-17:00"]}, **more})


# -- rules 1-4 -----------------------------------------------------------------------------------


def test_rule3_budget_ending_at_close_lands_on_close() -> None:
    cal = nine_to_five()
    mon9 = at(BER, 2026, 3, 2, 9)
    assert cal.add(mon9, 8 * H) == at(BER, 2026, 3, 2, 17)
    assert cal.add(mon9, 8 * H + S) == at(BER, 2026, 3, 3, 9, 0, 1)


def test_rule2_start_outside_hours_counts_from_next_opening() -> None:
    cal = nine_to_five()
    assert cal.add(at(BER, 2026, 3, 7, 12), H) == at(BER, 2026, 3, 9, 10)  # Saturday → Monday
    assert cal.add(at(BER, 2026, 3, 2, 6), H) == at(BER, 2026, 3, 2, 10)


def test_rule4_add_zero_is_next_open() -> None:
    cal = nine_to_five()
    assert cal.add(at(BER, 2026, 3, 2, 17), timedelta(0)) == at(BER, 2026, 3, 3, 9)
    assert cal.add(at(BER, 2026, 3, 2, 12), timedelta(0)) == at(BER, 2026, 3, 2, 12)
    assert cal.next_open(at(BER, 2026, 3, 6, 17)) == at(BER, 2026, 3, 9, 9)
    assert cal.is_open(at(BER, 2026, 3, 2, 9)) and not cal.is_open(at(BER, 2026, 3, 2, 17))


def test_negative_add_and_subtract() -> None:
    cal = nine_to_five()
    tue10 = at(BER, 2026, 3, 3, 10)
    assert cal.subtract(tue10, H) == at(BER, 2026, 3, 3, 9)  # lands on the opening
    assert cal.subtract(tue10, H + S) == at(BER, 2026, 3, 2, 16, 59, 59)
    assert cal.add(tue10, -15 * M) == at(BER, 2026, 3, 3, 9, 45)
    assert cal.subtract(tue10, timedelta(0)) == tue10


def test_elapsed_and_its_sign() -> None:
    cal = nine_to_five()
    a, b = at(BER, 2026, 3, 2, 16), at(BER, 2026, 3, 3, 10)
    assert cal.elapsed(a, b) == 2 * H
    assert cal.elapsed(b, a) == -2 * H
    assert cal.elapsed(a, a) == timedelta(0)


def test_result_keeps_the_callers_tzinfo() -> None:
    cal = nine_to_five()
    u = cal.add(datetime(2026, 3, 2, 8, tzinfo=UTC), H)  # 09:00 Berlin
    assert u.tzinfo is UTC and u == datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_naive_datetimes_are_rejected() -> None:
    cal = nine_to_five()
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(datetime(2026, 3, 2, 9), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.elapsed(at(BER, 2026, 3, 2, 9), datetime(2026, 3, 2, 10))


# -- rule 5: holidays and overrides ----------------------------------------------------------------


def test_holiday_dates_ranges_and_overrides() -> None:
    cal = nine_to_five(
        holidays=[
            "2026-12-24",
            date(2026, 12, 25),
            {"from": "2026-12-28", "to": "2026-12-31", "name": "break"},
        ],
        overrides={"2026-12-26": ["10:00-12:00"], date(2026, 12, 29): ["09:00-10:00"]},
    )
    # Wed 23rd 16:00 + 2h: 1h on the 23rd, Sat 26th is a make-up morning (override), then the
    # 29th's override beats the range holiday.
    assert cal.add(at(BER, 2026, 12, 23, 16), 2 * H) == at(BER, 2026, 12, 26, 11)
    assert cal.add(at(BER, 2026, 12, 23, 16), 4 * H) == at(BER, 2026, 12, 29, 10)
    assert cal.add(at(BER, 2026, 12, 23, 16), 4 * H + S) == at(BER, 2027, 1, 1, 9, 0, 1)


def test_override_closing_a_day() -> None:
    cal = nine_to_five(overrides={"2026-03-03": []})
    assert cal.add(at(BER, 2026, 3, 2, 16), 2 * H) == at(BER, 2026, 3, 4, 10)


def test_holiday_on_closed_day_changes_nothing() -> None:
    base, hol = nine_to_five(), nine_to_five(holidays=["2026-03-07"])
    t = at(BER, 2026, 3, 6, 16)
    assert base.add(t, 3 * H) == hol.add(t, 3 * H) == at(BER, 2026, 3, 9, 11)


def test_interval_belongs_to_its_opening_date() -> None:
    cal = Calendar.from_dict(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-sun": ["21:00-02:00"]},
            "holidays": ["2026-03-10"],
        }
    )
    # The interval that opened on the 9th still runs past midnight into the holiday...
    assert cal.is_open(at(BER, 2026, 3, 10, 1))
    # ...but the one opening on the 10th is gone.
    assert not cal.is_open(at(BER, 2026, 3, 10, 22))
    assert cal.add(at(BER, 2026, 3, 9, 22), 5 * H) == at(BER, 2026, 3, 11, 22)


def test_country_holidays_and_removal() -> None:
    spec = {"timezone": "Asia/Ho_Chi_Minh", "hours": {"mon-fri": ["08:00-17:00"]}}
    vn = Calendar.from_dict({**spec, "holidays": [{"country": "VN"}]})
    # Friday before Tet 2026 (16-20 Feb are public holidays): the next working hour is the 23rd.
    assert vn.add(at(HCM, 2026, 2, 13, 16), 2 * H) == at(HCM, 2026, 2, 23, 9)
    assert not vn.is_open(at(HCM, 2026, 4, 30, 10))
    kept = Calendar.from_dict({**spec, "holidays": [{"country": "VN", "except": ["2026-04-30"]}]})
    assert kept.is_open(at(HCM, 2026, 4, 30, 10))
    removed = Calendar.from_dict(
        {**spec, "holidays": [{"country": "VN"}, "2026-04-30", {"remove": ["2026-04-30"]}]}
    )
    assert removed.is_open(at(HCM, 2026, 4, 30, 10))
    scoped = Calendar.from_dict(
        {**spec, "holidays": [{"country": "VN", "except": ["2026-04-30"]}, "2026-04-30"]}
    )
    assert not scoped.is_open(at(HCM, 2026, 4, 30, 10))  # `except` only filters the country's list
    ranged = Calendar.from_dict(
        {
            **spec,
            "holidays": [{"country": "VN"}, {"remove": {"from": "2026-02-16", "to": "2026-02-18"}}],
        }
    )
    assert ranged.is_open(at(HCM, 2026, 2, 17, 10)) and not ranged.is_open(at(HCM, 2026, 2, 19, 10))


# -- rule 6: business days ------------------------------------------------------------------------


def test_rule6_business_days() -> None:
    cal = nine_to_five()
    fri_evening, sat = at(BER, 2026, 3, 6, 20), at(BER, 2026, 3, 7, 11)
    assert cal.add_days(fri_evening, 1) == at(BER, 2026, 3, 10, 9)  # Tuesday's opening
    assert cal.add_days(sat, 1) == at(BER, 2026, 3, 10, 9)
    assert cal.add_days(at(BER, 2026, 3, 5, 14, 30), 2) == at(BER, 2026, 3, 9, 14, 30)
    assert cal.add_days(at(BER, 2026, 3, 5, 14, 30), 0) == at(BER, 2026, 3, 5, 14, 30)
    assert cal.add_days(at(BER, 2026, 3, 9, 14, 30), -1) == at(BER, 2026, 3, 6, 14, 30)


def test_rule6_time_outside_hours_on_target_day_moves_to_next_opening() -> None:
    cal = Calendar.from_dict(
        {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00-17:00"], "tue": ["09:00-12:00"]}}
    )
    assert cal.add_days(at(BER, 2026, 3, 2, 16, 30), 1) == at(BER, 2026, 3, 9, 9)


def test_rule6_date_of_s_inside_interval_opened_the_evening_before() -> None:
    cal = Calendar.from_dict({"timezone": "UTC", "hours": {"mon-fri": ["21:00-02:00"]}})
    # Tue 01:00 is inside Monday's interval; s's date is Tuesday, the next open date Wednesday,
    # and Wednesday 01:00 is open (inside Tuesday's interval).
    assert cal.add_days(datetime(2026, 3, 3, 1, tzinfo=UTC), 1) == datetime(
        2026, 3, 4, 1, tzinfo=UTC
    )
    # From Friday 01:00 the next open date is Monday (Saturday's 01:00 still belongs to Friday's
    # interval, but Saturday is not an open date); Monday 01:00 is closed, so Monday 21:00.
    assert cal.add_days(datetime(2026, 3, 6, 1, tzinfo=UTC), 1) == datetime(
        2026, 3, 9, 21, tzinfo=UTC
    )


# -- rules 8-9: DST, 24:00, midnight crossing ------------------------------------------------------


def test_dst_interval_lengths_follow_the_tz_database() -> None:
    cal = Calendar.from_dict(
        {"timezone": "America/New_York", "hours": {"mon-sun": ["01:00-03:00"]}}
    )
    spring = at(NY, 2026, 3, 8, 0)
    assert cal.elapsed(spring, at(NY, 2026, 3, 8, 12)) == H  # 02:00-03:00 does not exist
    fall = at(NY, 2026, 11, 1, 0)
    assert cal.elapsed(fall, at(NY, 2026, 11, 1, 12)) == 3 * H  # 01:00-02:00 happens twice


def test_dst_interval_opening_in_the_gap_is_empty_when_pushed_past_close() -> None:
    cal = Calendar.from_dict(
        {"timezone": "America/New_York", "hours": {"sun": ["02:30-03:15", "10:00-11:00"]}}
    )
    day = at(NY, 2026, 3, 8, 0)
    assert cal.next_open(day) == at(NY, 2026, 3, 8, 10)
    assert cal.next_open(at(NY, 2026, 3, 1, 0)) == at(NY, 2026, 3, 1, 2, 30)


def test_24_00_and_whole_days() -> None:
    cal = Calendar.from_dict({"timezone": "Europe/Berlin", "hours": {"sat": ["00:00-24:00"]}})
    assert cal.elapsed(at(BER, 2026, 3, 7, 0), at(BER, 2026, 3, 9, 0)) == 24 * H
    # 24 h of wall clock on the spring-forward Saturday night... (Berlin switches on Sunday)
    assert cal.elapsed(at(BER, 2026, 3, 28, 0), at(BER, 2026, 3, 30, 0)) == 24 * H


def test_adjacent_intervals_across_midnight_merge() -> None:
    cal = Calendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": ["20:00-24:00"], "tue": ["00:00-04:00"]}}
    )
    mon = datetime(2026, 3, 2, 22, tzinfo=UTC)
    assert cal.add(mon, 4 * H) == datetime(2026, 3, 3, 2, tzinfo=UTC)


# -- rule 10: no open time ------------------------------------------------------------------------


def test_empty_hours_are_a_validation_error() -> None:
    with pytest.raises(CalendarError) as err:
        Calendar.from_dict({"timezone": "UTC", "hours": {"mon-fri": []}})
    assert err.value.problems == [
        (("hours",), "the weekly hours are empty: the calendar is never open")
    ]
    assert [p[2] for p in Calendar.validate_dict({"hours": {}})] == ["CP507"]


def test_no_open_time_within_a_year_raises_never_hangs() -> None:
    cal = nine_to_five(holidays=[{"from": "2025-01-01", "to": "2028-12-31"}])
    t = at(BER, 2026, 6, 1, 12)
    with pytest.raises(NoOpenTime, match="within a year"):
        cal.add(t, H)
    with pytest.raises(NoOpenTime):
        cal.next_open(t)
    with pytest.raises(NoOpenTime):
        cal.add_days(t, 1)
    with pytest.raises(NoOpenTime):
        cal.subtract(t, H)
    assert cal.elapsed(t, at(BER, 2027, 6, 1, 12)) == timedelta(0)


def test_open_time_a_bit_less_than_a_year_away_is_found() -> None:
    cal = nine_to_five(holidays=[{"from": "2026-01-01", "to": "2026-12-31"}])
    assert cal.add(at(BER, 2026, 1, 10, 12), H) == at(BER, 2027, 1, 1, 10)


# -- always ------------------------------------------------------------------------------------------


def test_always() -> None:
    cal = Calendar.from_dict("always", timezone="Europe/Berlin")
    assert cal.always and cal.timezone == "Europe/Berlin"
    t = at(BER, 2026, 3, 28, 12)
    assert cal.add(t, 30 * H) == (t.astimezone(UTC) + 30 * H)  # real hours: DST night included
    assert (
        cal.add(t, 30 * H) == at(BER, 2026, 3, 29, 19) and cal.is_open(t) and cal.next_open(t) == t
    )
    assert cal.elapsed(t, t + H) == H and cal.subtract(t, H) == t - H
    assert cal.add_days(t, 1) == at(BER, 2026, 3, 29, 12)  # same wall time over the DST switch
    assert Calendar.from_dict("always").timezone == "UTC"
    assert not nine_to_five().always


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "path", "code"),
    [
        ({"timezone": "Mars/Base", "hours": {"mon": ["09:00-17:00"]}}, ("timezone",), "CP512"),
        ({"hours": {"mon-fri": ["09:00-17:00", "16:00-18:00"]}}, ("hours", "mon-fri", 1), "CP506"),
        (
            {"hours": {"mon-fri": ["09:00-17:00"], "wed": ["12:00-13:00"]}},
            ("hours", "wed", 0),
            "CP506",
        ),
        ({"hours": {"mon": ["9-5"]}}, ("hours", "mon", 0), "CP506"),
        ({"hours": {"mon": ["09:00-24:30"]}}, ("hours", "mon", 0), "CP506"),
        ({"hours": {"mon": ["24:00-02:00"]}}, ("hours", "mon", 0), "CP506"),
        ({"hours": {"sun": ["22:00-10:00"], "mon": ["09:00-17:00"]}}, ("hours", "sun", 0), "CP506"),
        (
            {"hours": {"mon": ["09:00-17:00"]}, "overrides": {"2026-03-01": ["22:00-10:00"]}},
            ("overrides", "2026-03-01"),
            "CP506",
        ),
        (
            {"hours": {"sun": ["22:00-10:00"]}, "overrides": {"2026-03-02": ["09:00-12:00"]}},
            ("overrides", "2026-03-02"),
            "CP506",
        ),
        (
            {
                "hours": {"mon": ["09:00-17:00"]},
                "overrides": {"2026-03-02": ["09:00-12:00", "11:00-13:00"]},
            },
            ("overrides", "2026-03-02", 1),
            "CP506",
        ),
        ({"hours": {"funday": ["09:00-17:00"]}}, ("hours", "funday"), "CP512"),
        ({"hours": {"mon": ["09:00-17:00"]}, "holidays": ["2026-02-30"]}, ("holidays", 0), "CP512"),
        (
            {
                "hours": {"mon": ["09:00-17:00"]},
                "holidays": [{"from": "2026-03-05", "to": "2026-03-01"}],
            },
            ("holidays", 0, "to"),
            "CP512",
        ),
        (
            {"hours": {"mon": ["09:00-17:00"]}, "holidays": [{"country": "ZZ"}]},
            ("holidays", 0, "country"),
            "CP512",
        ),
        (
            {"hours": {"mon": ["09:00-17:00"]}, "holidays": [{"country": "US", "subdiv": "ZZ"}]},
            ("holidays", 0, "subdiv"),
            "CP512",
        ),
        (
            {"hours": {"mon": ["09:00-17:00"]}, "overrides": {"soon": []}},
            ("overrides", "soon"),
            "CP512",
        ),
        ({"hours": {"mon": ["09:00-17:00"]}, "hollidays": []}, ("hollidays",), "CP512"),
        ({"hours": {"mon": []}}, ("hours",), "CP507"),
        ("sometimes", (), "CP512"),
    ],
)
def test_validation_paths_and_codes(spec: object, path: tuple[object, ...], code: str) -> None:
    problems = Calendar.validate_dict(spec)
    assert (path, code) in [(p, c) for p, _, c in problems], problems
    with pytest.raises(CalendarError) as err:
        Calendar.from_dict(spec)  # type: ignore[arg-type]
    assert path in [p for p, _ in err.value.problems]


def test_validation_reports_everything_at_once() -> None:
    spec = {"timezone": "Nope", "hours": {"xyz": [], "mon": ["bad"]}, "holidays": ["nope"]}
    assert len(Calendar.validate_dict(spec)) == 5  # tz, day key, interval, holiday, empty hours


def test_valid_forms() -> None:
    spec = {
        "hours": {"Mon-Wed,FRI": "08:00-12:00", "fri-mon": ["13:00-14:00"], "thu": ["00:00-00:00"]},
        "holidays": [{"date": "2026-05-01", "name": "Labour"}, date(2026, 5, 2)],
        "overrides": {date(2026, 5, 3): []},
    }
    assert Calendar.validate_dict(spec, timezone="Asia/Ho_Chi_Minh") == []
    cal = Calendar.from_dict(spec, timezone="Asia/Ho_Chi_Minh")
    assert cal.timezone == "Asia/Ho_Chi_Minh"
    assert cal.is_open(at(HCM, 2026, 3, 8, 13, 30))  # Sunday, in the wrapping range fri-mon
    assert (
        cal.elapsed(at(HCM, 2026, 3, 5, 0), at(HCM, 2026, 3, 6, 12)) == 24 * H + 4 * H
    )  # thu: 24 h; fri 08-12


# -- worked examples from other engines -------------------------------------------------------------

# Zendesk biz: the README's first example schedule (Etc/UTC; mon 09-17, tue 10-16, wed 09-17,
# thu 10-16, fri 09-17, sat 11:00-14:30), used by its calculation specs.
BIZ = {
    "timezone": "Etc/UTC",
    "hours": {"mon,wed,fri": ["09:00-17:00"], "tue,thu": ["10:00-16:00"], "sat": ["11:00-14:30"]},
}


def test_biz_for_duration() -> None:
    # zendesk/biz spec/calculation/for_duration_spec.rb: 19 hours after 2006-01-02 11:00 is
    # 2006-01-04 16:00, and 19 hours before 2006-01-04 16:00 is 2006-01-02 11:00.
    cal = Calendar.from_dict(BIZ)
    assert cal.add(datetime(2006, 1, 2, 11, tzinfo=UTC), 19 * H) == datetime(
        2006, 1, 4, 16, tzinfo=UTC
    )
    assert cal.subtract(datetime(2006, 1, 4, 16, tzinfo=UTC), 19 * H) == datetime(
        2006, 1, 2, 11, tzinfo=UTC
    )


def test_biz_duration_within() -> None:
    # zendesk/biz spec/calculation/duration_within_spec.rb: 39.5 hours between 2006-01-01 and
    # 2006-01-08. (biz returns zero for a reversed span; carepath returns the negation.)
    cal = Calendar.from_dict(BIZ)
    a, b = datetime(2006, 1, 1, tzinfo=UTC), datetime(2006, 1, 8, tzinfo=UTC)
    assert cal.elapsed(a, b) == timedelta(hours=39.5)
    assert cal.elapsed(b, a) == -timedelta(hours=39.5)


# Frappe Helpdesk, frappe/helpdesk helpdesk/helpdesk/doctype/hd_ticket/test_hd_ticket.py: working
# hours Mon-Fri 10:00-18:00; the dates below are a fixed week (Mon 2026-03-02).
FRAPPE = {"timezone": "UTC", "hours": {"mon-fri": ["10:00-18:00"]}}


def test_frappe_after_hours_and_weekend() -> None:
    cal = Calendar.from_dict(FRAPPE)
    mon20 = datetime(2026, 3, 2, 20, tzinfo=UTC)
    assert cal.add(mon20, 30 * M) == datetime(2026, 3, 3, 10, 30, tzinfo=UTC)  # Tuesday 10:30
    assert cal.add(mon20, 2 * H) == datetime(2026, 3, 3, 12, tzinfo=UTC)
    sat15 = datetime(2026, 3, 7, 15, tzinfo=UTC)
    assert cal.add(sat15, 24 * H) == datetime(
        2026, 3, 11, 18, tzinfo=UTC
    )  # Wednesday 18:00, on the close
    assert cal.add(sat15, 72 * H) == datetime(2026, 3, 19, 18, tzinfo=UTC)  # 12 days later, 18:00
    fri17 = datetime(2026, 3, 6, 17, tzinfo=UTC)
    assert cal.add(fri17, 2 * H) == datetime(2026, 3, 9, 11, tzinfo=UTC)  # 1 h Friday + 1 h Monday


def test_frappe_holiday_and_hold_time() -> None:
    cal = Calendar.from_dict({**FRAPPE, "holidays": ["2026-03-05", "2026-03-06"]})
    thu15 = datetime(2026, 3, 5, 15, tzinfo=UTC)
    assert cal.add(thu15, 30 * M) == datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    plain = Calendar.from_dict(FRAPPE)
    # A 2 h target from Thursday 15:00 plus 1 h on hold ends at 18:00 sharp; one second more of
    # hold time moves it to Friday 10:00:01 (rule 3).
    assert plain.add(thu15, 3 * H) == datetime(2026, 3, 5, 18, tzinfo=UTC)
    assert plain.add(thu15, 3 * H + S) == datetime(2026, 3, 6, 10, 0, 1, tzinfo=UTC)


def test_jsm_style_calendar_with_breaks() -> None:
    # Jira Service Management style calendars (e.g. HelpDesk for Jira, docs.teamlead.one
    # /helpdesk-for-jira/v2.1.23/calendars-sla-2-0): Monday 07:00-21:00 with breaks 11:00-12:00
    # and 16:00-17:00 is three intervals, 12 hours of work, and overlapping frames are refused.
    cal = Calendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": ["07:00-11:00", "12:00-16:00", "17:00-21:00"]}}
    )
    mon = datetime(2026, 3, 2, tzinfo=UTC)
    assert cal.elapsed(mon, mon + 24 * H) == 12 * H
    assert cal.add(mon + 10 * H, 2 * H) == mon + 13 * H
    assert (
        Calendar.validate_dict({"hours": {"mon": ["07:00-11:00", "10:00-12:00"]}})[0][2] == "CP506"
    )
