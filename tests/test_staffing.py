"""Erlang C staffing (SPEC §6): the SPEC's examples, a published worked example, exact rounding,
stability for large centres, and a cross-check against the textbook factorial formula."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest

from carepath.staffing import agents_needed, erlang_b, erlang_c, occupancy, service_level, traffic

S = timedelta(seconds=1)
HALF_HOUR = timedelta(minutes=30)


def test_spec_service_level_example() -> None:
    sl = service_level(agents=14, contacts=100, period=HALF_HOUR, aht=180 * S, answer_within=20 * S)
    assert 0.888 <= sl < 0.889


def test_spec_agents_needed_example() -> None:
    assert (
        agents_needed(
            contacts=100,
            period=HALF_HOUR,
            aht=180 * S,
            answer_within=20 * S,
            target=0.8,
            max_occupancy=1.0,
            shrinkage=0.0,
        )
        == 14
    )
    # 13 agents do not reach 80 %: 14 is the smallest
    assert service_level(13, 100, HALF_HOUR, 180 * S, 20 * S) < 0.8


def test_published_worked_example_360_calls() -> None:
    # The classic worked example of the Erlang C method (Mitan Ltd, "The Erlang-C formula": 360 calls
    # per half hour, 4-minute calls, 55 agents), also used as a checkpoint by open-source calculators:
    # traffic 48 E, occupancy 87.3 %, P(wait) 0.2387, ASA 8.18 s, 86.7 % answered within 20 s, and
    # 54 agents the first N that meets 80/20.
    a = traffic(360, HALF_HOUR, timedelta(minutes=4))
    assert a == 48.0
    assert occupancy(55, 360, HALF_HOUR, timedelta(minutes=4)) == pytest.approx(0.8727, abs=1e-4)
    c = erlang_c(55, a)
    assert c == pytest.approx(0.23870, abs=1e-5)
    assert c * 240 / (55 - a) == pytest.approx(8.184, abs=1e-3)  # average speed of answer
    assert service_level(55, 360, HALF_HOUR, timedelta(minutes=4), 20 * S) == pytest.approx(
        0.8668, abs=5e-4
    )
    assert agents_needed(360, HALF_HOUR, timedelta(minutes=4), 20 * S, 0.8) == 54


def _erlang_c_factorial(n: int, a: Fraction) -> Fraction:
    top = a**n / math.factorial(n) * Fraction(n, 1) / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(
    ("n", "a"), [(3, Fraction(1, 2)), (14, Fraction(10)), (55, Fraction(48)), (31, Fraction(30))]
)
def test_recursion_matches_textbook_formula(n: int, a: Fraction) -> None:
    assert erlang_c(n, float(a)) == pytest.approx(float(_erlang_c_factorial(n, a)), rel=1e-12)


def test_erlang_b_edges() -> None:
    assert erlang_b(0, 4.0) == 1.0
    assert erlang_b(1, 1.0) == 0.5
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)


def test_shrinkage_exact_quotient_not_pushed_up() -> None:
    # 14 ÷ (1 − 0.9) is exactly 140; float arithmetic gives 140.00000000000003
    assert 14 / (1 - 0.9) > 140
    assert agents_needed(100, HALF_HOUR, 180 * S, 20 * S, 0.8, shrinkage=0.9) == 140
    assert agents_needed(100, HALF_HOUR, 180 * S, 20 * S, 0.8, shrinkage=0.3) == 20
    assert agents_needed(100, HALF_HOUR, 180 * S, 20 * S, 0.8, shrinkage=0.25) == 19  # 18.67 → 19


def test_answer_within_zero() -> None:
    n = agents_needed(100, HALF_HOUR, 180 * S, 0 * S, 0.8)
    assert 1 - erlang_c(n, 10.0) >= 0.8 > 1 - erlang_c(n - 1, 10.0)
    assert service_level(n, 100, HALF_HOUR, 180 * S, 0 * S) == pytest.approx(1 - erlang_c(n, 10.0))


def test_max_occupancy_binds() -> None:
    # a lax target is met by 11 agents, but 10 E at most 50 % busy needs 20
    assert agents_needed(100, HALF_HOUR, 180 * S, 20 * S, 0.1) == 11
    assert agents_needed(100, HALF_HOUR, 180 * S, 20 * S, 0.1, max_occupancy=0.5) == 20


def test_above_traffic_and_unstable_queue() -> None:
    assert service_level(10, 100, HALF_HOUR, 180 * S, 20 * S) == 0.0  # N == A: the queue grows
    assert agents_needed(1, HALF_HOUR, 180 * S, 20 * S, 0.8) == 1


def test_no_contacts_need_no_agents() -> None:
    assert agents_needed(0, HALF_HOUR, 180 * S, 20 * S, 0.8) == 0
    assert service_level(0, 0, HALF_HOUR, 180 * S, 20 * S) == 1.0


def test_large_centre_is_stable() -> None:
    # 100,000 contacts an hour at 3 minutes: 5,000 E; factorials would overflow floats long before
    n = agents_needed(100_000, timedelta(hours=1), 180 * S, 20 * S, 0.8)
    assert 5000 < n < 5100
    assert service_level(n, 100_000, timedelta(hours=1), 180 * S, 20 * S) >= 0.8
    assert service_level(n - 1, 100_000, timedelta(hours=1), 180 * S, 20 * S) < 0.8


def test_monotone_in_agents() -> None:
    sls = [service_level(n, 300, timedelta(hours=1), 240 * S, 30 * S) for n in range(21, 40)]
    assert sls == sorted(sls)


@pytest.mark.parametrize(
    "bad", [{"target": 0}, {"target": 1.5}, {"shrinkage": 1.0}, {"max_occupancy": 0}]
)
def test_bad_arguments(bad: dict[str, float]) -> None:
    kw = {"target": 0.8, "max_occupancy": 1.0, "shrinkage": 0.0, **bad}
    with pytest.raises(ValueError):
        agents_needed(100, HALF_HOUR, 180 * S, 20 * S, **kw)
    with pytest.raises(ValueError):
        traffic(10, timedelta(0), 180 * S)
