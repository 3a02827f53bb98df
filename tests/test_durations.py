"""Durations (SPEC §2.2): short forms, ISO 8601, business-time rules, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath.durations import DurationError, parse_duration

parts = st.fixed_dictionaries(
    {}, optional={"h": st.integers(0, 500), "m": st.integers(0, 59), "s": st.integers(0, 59)}
).filter(bool)


def short(p: dict[str, int]) -> str:
    return "".join(f"{p[u]}{u}" for u in ("h", "m", "s") if u in p)


def iso(p: dict[str, int]) -> str:
    return "PT" + "".join(f"{p[u]}{u.upper()}" for u in ("h", "m", "s") if u in p)


@given(parts)
def test_short_and_iso_forms_agree_and_are_exact(p: dict[str, int]) -> None:
    seconds = p.get("h", 0) * 3600 + p.get("m", 0) * 60 + p.get("s", 0)
    a, b = parse_duration(short(p), business=True), parse_duration(iso(p), business=True)
    assert a.seconds == b.seconds == seconds
    assert a.is_exact and b.is_exact
    assert str(a) == short(p)


@given(st.integers(1, 500), st.sampled_from(["d", "w"]))
def test_calendar_days_are_wall_clock_only(n: int, unit: str) -> None:
    d = parse_duration(f"{n}{unit}")
    assert d.days == n * (7 if unit == "w" else 1) and d.seconds == 0 and not d.is_exact
    with pytest.raises(DurationError) as exc:
        parse_duration(f"{n}{unit}", business=True)
    assert exc.value.code == "CP205"
    assert "bd" in (exc.value.hint or "")


@given(st.integers(1, 3000))
def test_business_days_stand_alone(n: int) -> None:
    d = parse_duration(f"{n}bd", business=True)
    assert d.business_days == n and d.seconds == 0 and d.days == 0
    with pytest.raises(DurationError):
        parse_duration(f"{n}bd2h")


@given(st.text(max_size=12))
def test_anything_else_is_a_clear_error_never_a_crash(text: str) -> None:
    try:
        d = parse_duration(text)
    except DurationError as exc:
        assert str(exc)
    else:
        assert d.seconds >= 0 and d.days >= 0 and d.business_days >= 0


@pytest.mark.parametrize(
    ("text", "seconds", "days"),
    [
        ("45s", 45, 0),
        ("15m", 900, 0),
        ("2h", 7200, 0),
        ("1h30m", 5400, 0),
        ("3d", 0, 3),
        ("2w", 0, 14),
        ("PT2H", 7200, 0),
        ("P3D", 0, 3),
        ("P1DT2H30M", 9000, 1),
        ("PT0.5S", 0.5, 0),
    ],
)
def test_spec_examples(text: str, seconds: float, days: int) -> None:
    d = parse_duration(text)
    assert (d.seconds, d.days) == (seconds, days)


@pytest.mark.parametrize(
    ("value", "hint"), [(30, "30m"), ("", "2h"), ("2x", "45s"), ("1h1h", None), ("P", "PT2H")]
)
def test_bad_durations_say_what_was_expected(value: object, hint: str | None) -> None:
    with pytest.raises(DurationError) as exc:
        parse_duration(value)
    assert exc.value.code == "CP204"
    if hint:
        assert hint in (exc.value.hint or "")


def test_absurd_lengths_are_rejected() -> None:
    with pytest.raises(DurationError, match="ten years"):
        parse_duration("100000h")
