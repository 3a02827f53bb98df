"""Properties of arithmetic (SPEC §10): it never raises anything but ``InvalidEvent``, whatever
the values; month arithmetic keeps the wall time and clamps the day to the month's last."""

from __future__ import annotations

import calendar
import contextlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from carepath.durations import add_months
from carepath.errors import InvalidEvent
from carepath.expr.arithmetic import MAX_NUMBER, add, div, mul, sub
from carepath.expr.compiler import compile_expr
from carepath.expr.types import DATETIME, DECIMAL, DURATION, FLOAT, INT, TypeEnv

ZONES = st.sampled_from(["UTC", "Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York"])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.timedeltas(),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES.map(ZoneInfo)
    ),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)


@given(VALUES, VALUES, st.sampled_from([add, sub, mul, div]))
@settings(max_examples=600, deadline=None)
def test_the_helpers_raise_nothing_but_invalid_event(a: Any, b: Any, op: Any) -> None:
    try:
        r = op(a, b)
    except InvalidEvent as exc:
        assert str(exc).startswith("arithmetic overflow")
        return
    if isinstance(r, int | float | Decimal) and not isinstance(r, bool):
        assert abs(r) <= MAX_NUMBER


ENV = TypeEnv(
    {"n": INT, "x": FLOAT, "d": DECIMAL, "w": DURATION, "t": DATETIME},
    specials={},
)
SOURCES = st.sampled_from(
    [
        "n + x * 2",
        "d * n - x",
        "w * n + w / x",
        "t + w * 3 - w",
        "(t - t) / w",
        "n / x > d",
        "event.a + event.b * n",
        "event.a / event.b",
        "w / (n - n)",
    ]
)
DATA = st.fixed_dictionaries(
    {
        "n": st.one_of(st.none(), st.integers(min_value=-(10**17), max_value=10**17)),
        "x": st.one_of(st.none(), st.floats()),
        "d": st.one_of(st.none(), st.sampled_from(["0", "1.5", "-2", "1e30", "x"])),
        "w": st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e12)),
        "t": st.one_of(
            st.none(),
            st.sampled_from(["2026-01-31T09:00:00+07:00", "bad", "8999-12-31T23:00:00+00:00"]),
        ),
    }
)


@given(SOURCES, DATA, VALUES, VALUES)
@settings(max_examples=400, deadline=None)
def test_compiled_expressions_raise_nothing_but_invalid_event(
    source: str, data: dict[str, Any], a: Any, b: Any
) -> None:
    expr = compile_expr(source, ENV, want=None)
    assert expr.type.kind in ("int", "float", "decimal", "duration", "datetime", "bool", "any")
    with contextlib.suppress(InvalidEvent):
        expr(data, {"a": a, "b": b}, {})


@given(
    st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 12, 31)),
    st.integers(min_value=0, max_value=120),
)
def test_month_arithmetic_keeps_the_wall_time_and_clamps_the_day(
    start: datetime, months: int
) -> None:
    out = add_months(start, months)
    total = start.year * 12 + start.month - 1 + months
    assert (out.year, out.month) == (total // 12, total % 12 + 1)
    last = calendar.monthrange(out.year, out.month)[1]
    assert out.day == min(start.day, last)
    assert out.time() == start.time()
    assert out - start >= timedelta(days=28 * months) - timedelta(days=3)
