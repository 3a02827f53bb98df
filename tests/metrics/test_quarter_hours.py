"""Many instants' local dates and hours at once (:func:`carepath._instants.per_quarter_hour`):
the same values as one instant at a time, in order or not, across daylight-saving changes
(one at midnight, where the local date goes back) and quarter-hour offsets."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from carepath._instants import per_quarter_hour, zone
from carepath.metrics.facts import _DayCache

# São Paulo's clocks went back at midnight on 2018-02-18, to 23:00 on the 17th (the 17th's last
# hour is lived twice); Lord Howe's daylight saving is half an hour; Kathmandu is +05:45
ZONES = ["America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
START = 1_518_800_000.0  # 2018-02-16, two days before São Paulo's change

instants = st.floats(START - 86_400 * 3, START + 86_400 * 3).map(
    lambda t: round(t * 1_000_000) / 1_000_000
)


@given(st.sampled_from(ZONES), st.lists(instants, max_size=60), st.booleans())
def test_many_instants_give_each_one_s_date(name: str, ts: list[float], ordered: bool) -> None:
    if ordered:
        ts.sort()
    assert _DayCache(name).many(ts) == [_DayCache(name)(t) for t in ts]


@given(st.sampled_from(ZONES), st.lists(instants, max_size=60))
def test_each_quarter_hour_is_computed_once(name: str, ts: list[float]) -> None:
    tz = zone(name)
    ts.sort()
    asked: list[int] = []

    def hour(k: int) -> float:
        asked.append(k)
        local = datetime.fromtimestamp(k * 900, tz)
        return local.replace(minute=0, second=0, microsecond=0).timestamp()

    cache: dict[int, float] = {}
    got = per_quarter_hour(ts, hour, cache)
    assert got == [hour(int(t // 900)) for t in ts]
    assert len(asked) == 2 * len(ts) + len({int(t // 900) for t in ts}) - len(ts)


def test_the_night_an_hour_is_lived_twice() -> None:
    day = _DayCache("America/Sao_Paulo")
    change = 1_518_919_200.0  # 2018-02-17 23:59:59 -02:00, then 2018-02-17 23:00:00 -03:00
    ts = [change - 1, change, change + 3599, change + 3600]
    seventeenth = datetime(2018, 2, 17).toordinal()
    assert day.many(ts) == [seventeenth, seventeenth, seventeenth, seventeenth + 1]
