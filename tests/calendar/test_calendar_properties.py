"""Hypothesis properties of business time over awkward time zones and calendar shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from carepath.calendar.business import Calendar

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Ho_Chi_Minh"]
US = timedelta(microseconds=1)


def _shapes(zone: str) -> list[dict[str, object]]:
    return [
        {  # lunch breaks, a Saturday morning, holidays (a range too) and overrides
            "timezone": zone,
            "hours": {"mon-fri": ["08:00-12:00", "13:00-17:30"], "sat": ["08:00-12:00"]},
            "holidays": ["2026-12-25", {"from": "2027-04-01", "to": "2027-04-07"}],
            "overrides": {"2026-12-26": ["10:00-11:00"], "2027-03-02": []},
        },
        {  # crossing midnight, and through the DST gap of these zones (02:00-03:00 / 02:00-02:30)
            "timezone": zone,
            "hours": {"mon-sun": ["21:00-02:30"]},
            "holidays": ["2026-03-08", "2026-10-04"],
        },
        {  # intervals inside the DST transitions on Sundays, and a whole day
            "timezone": zone,
            "hours": {
                "sun": ["01:30-02:15", "02:30-03:15"],
                "wed": ["00:00-24:00"],
                "fri": ["09:00-10:00"],
            },
            "overrides": {"2026-11-01": ["00:30-02:45"]},
        },
    ]


CALENDARS = [Calendar.from_dict(spec) for zone in ZONES for spec in _shapes(zone)]
CALENDARS.append(
    Calendar.from_dict(
        {
            "timezone": "Asia/Ho_Chi_Minh",
            "hours": {"mon-fri": ["08:00-17:00"]},
            "holidays": [{"country": "VN"}],
        }
    )
)
LO = datetime(2025, 6, 1, tzinfo=UTC)

calendars = st.sampled_from(CALENDARS)
instants = st.integers(0, 3 * 365 * 86400 * 10**6).map(lambda us: LO + timedelta(microseconds=us))
durations = st.one_of(
    st.integers(0, 300 * 3600 * 10**6).map(lambda us: timedelta(microseconds=us)),
    st.integers(0, 300 * 60).map(lambda m: timedelta(minutes=m)),  # whole minutes hit boundaries
)
positive = durations.filter(lambda d: d > timedelta(0))
CALENDAR = settings(max_examples=300, deadline=None)  # this module's own budget, not the session's


def _in_zone(cal: Calendar, t: datetime) -> datetime:
    return t.astimezone(ZoneInfo(cal.timezone))


@CALENDAR
@given(calendars, instants, durations)
def test_elapsed_inverts_add(cal: Calendar, t: datetime, d: timedelta) -> None:
    assert cal.elapsed(t, cal.add(t, d)) == d


@CALENDAR
@given(calendars, instants, durations)
def test_result_is_open_or_a_closing_boundary(cal: Calendar, t: datetime, d: timedelta) -> None:
    u = cal.add(t, d)
    assert u >= t
    if d == timedelta(0):
        assert cal.is_open(u) and cal.elapsed(t, u) == timedelta(0)
    else:
        assert cal.is_open(u) or cal.is_open(u - US)


@CALENDAR
@given(calendars, instants, instants, durations)
def test_monotonic_in_t(cal: Calendar, t1: datetime, t2: datetime, d: timedelta) -> None:
    t1, t2 = min(t1, t2), max(t1, t2)
    assert cal.add(t1, d) <= cal.add(t2, d)


@CALENDAR
@given(calendars, instants, durations, durations)
def test_monotonic_in_d(cal: Calendar, t: datetime, d1: timedelta, d2: timedelta) -> None:
    d1, d2 = min(d1, d2), max(d1, d2)
    assert cal.add(t, d1) <= cal.add(t, d2)


@CALENDAR
@given(calendars, instants, durations, positive)
def test_add_composes(cal: Calendar, t: datetime, a: timedelta, b: timedelta) -> None:
    assert cal.add(cal.add(t, a), b) == cal.add(t, a + b)


@CALENDAR
@given(calendars, instants, positive)
def test_subtract_inverts_add(cal: Calendar, t: datetime, d: timedelta) -> None:
    assert cal.subtract(cal.add(t, d), d) == cal.next_open(t)
    if cal.is_open(t):
        back = cal.add(cal.subtract(t, d), d)
        # `t` itself, or — when `t` is an opening — the closing boundary before it, which is the
        # same business instant (SPEC §3 rule 3: a budget that runs out at a close lands on it)
        assert back == t or (back < t and cal.elapsed(back, t) == timedelta(0))
    assert cal.elapsed(cal.subtract(t, d), t) == d


@CALENDAR
@given(calendars, instants, instants)
def test_elapsed_is_additive_and_antisymmetric(cal: Calendar, a: datetime, b: datetime) -> None:
    m = a + (b - a) / 2
    assert cal.elapsed(a, b) == cal.elapsed(a, m) + cal.elapsed(m, b)
    assert cal.elapsed(a, b) == -cal.elapsed(b, a)


@CALENDAR
@given(calendars, instants, st.integers(0, 20))
def test_add_days_lands_open_and_moves_forward(cal: Calendar, t: datetime, n: int) -> None:
    u = cal.add_days(t, n)
    assert cal.is_open(u)
    s = cal.next_open(t)
    if n == 0:
        assert u == s
    else:
        assert _in_zone(cal, u).date() > _in_zone(cal, s).date()
        assert cal.add_days(t, n + 1) >= u


@CALENDAR
@given(calendars, instants, durations)
def test_fast_path_agrees_with_datetime_api(cal: Calendar, t: datetime, d: timedelta) -> None:
    ts = t.timestamp()
    assert abs(cal.add_s(ts, d.total_seconds()) - cal.add(t, d).timestamp()) < 1e-6
    assert (
        cal.next_open_s(ts) == cal.next_open(t).timestamp()
        or abs(cal.next_open_s(ts) - cal.next_open(t).timestamp()) < 1e-6
    )
    assert cal.is_open_s(ts) == cal.is_open(t)
