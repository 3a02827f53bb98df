"""Erlang C staffing (SPEC §6): the service level of N agents, and the agents a period needs.

The queue is M/M/N: ``contacts`` arrive at random over ``period``, each takes ``aht`` on average
to handle, and a contact waits when every agent is busy. With traffic intensity
``A = contacts × aht ÷ period`` (in Erlangs) and ``N > A`` agents:

* Erlang B by the stable recursion ``B(0) = 1``, ``B(n) = A·B(n−1) ÷ (n + A·B(n−1))`` — no
  factorials, no powers, no overflow for thousands of agents;
* the probability of waiting ``C = N·B ÷ (N − A·(1 − B))``;
* the service level (share answered within ``t``) ``1 − C·e^(−(N − A)·t ÷ aht)``.

>>> from datetime import timedelta
>>> round(service_level(14, 100, timedelta(minutes=30), timedelta(seconds=180), timedelta(seconds=20)), 4)
0.8884
>>> agents_needed(100, timedelta(minutes=30), timedelta(seconds=180), timedelta(seconds=20), 0.8)
14
"""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

__all__ = ["agents_needed", "erlang_b", "erlang_c", "occupancy", "service_level", "traffic"]

Seconds = timedelta | float
"""A duration: a ``timedelta`` or a number of seconds (beyond ``timedelta``'s range too)."""

MAX_AGENTS = 1_000_000
"""``agents_needed`` gives up (``ValueError``) beyond this many agents, at once when the traffic
intensity alone is beyond it (an ``aht`` of 1e300 seconds must not start a loop of 1e296 steps)."""


def _seconds(x: Seconds, what: str) -> float:
    s = x.total_seconds() if isinstance(x, timedelta) else float(x)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"{what} must be a finite, non-negative duration, got {x!r}")
    return s


def traffic(contacts: float, period: Seconds, aht: Seconds) -> float:
    """Traffic intensity in Erlangs: ``contacts × aht ÷ period``."""
    p = _seconds(period, "period")
    if p <= 0:
        raise ValueError("period must be longer than zero")
    if contacts < 0:
        raise ValueError(f"contacts must be at least 0, got {contacts!r}")
    return float(contacts) * _seconds(aht, "aht") / p


def erlang_b(agents: int, a: float) -> float:
    """Erlang B blocking probability of ``agents`` servers under ``a`` Erlangs (stable recursion)."""
    if agents < 0:
        raise ValueError("agents must be at least 0")
    b = 1.0
    for n in range(1, agents + 1):
        ab = a * b
        b = ab / (n + ab)
    return b


def _c_from_b(n: int, a: float, b: float) -> float:
    if n <= a:
        return 1.0
    return n * b / (n - a * (1.0 - b))


def erlang_c(agents: int, a: float) -> float:
    """Erlang C: the probability that a contact waits (1.0 when ``agents ≤ a``: the queue grows)."""
    if a <= 0:
        return 0.0
    return _c_from_b(agents, a, erlang_b(agents, a))


def _sl(n: int, a: float, c: float, t: float, aht: float) -> float:
    if n <= a:
        return 0.0
    if a <= 0:
        return 1.0
    return max(0.0, 1.0 - c * math.exp(-(n - a) * t / aht))


def service_level(
    agents: int, contacts: float, period: Seconds, aht: Seconds, answer_within: Seconds
) -> float:
    """The share of contacts answered within ``answer_within`` by ``agents`` agents (0.0 when the
    agents cannot keep up: ``agents ≤`` the traffic intensity)."""
    a = traffic(contacts, period, aht)
    t = _seconds(answer_within, "answer_within")
    h = _seconds(aht, "aht")
    if agents < 0:
        raise ValueError("agents must be at least 0")
    if a <= 0:
        return 1.0
    return _sl(agents, a, erlang_c(agents, a), t, h)


def occupancy(agents: int, contacts: float, period: Seconds, aht: Seconds) -> float:
    """Traffic ÷ agents (the share of time agents are busy)."""
    if agents <= 0:
        raise ValueError("agents must be at least 1")
    return traffic(contacts, period, aht) / agents


def agents_needed(
    contacts: float,
    period: Seconds,
    aht: Seconds,
    answer_within: Seconds,
    target: float,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> int:
    """The smallest N above the traffic intensity whose service level reaches ``target`` and whose
    occupancy is at most ``max_occupancy``, divided by ``1 − shrinkage`` and rounded up (an exact
    quotient is not pushed up by floating-point noise). No contacts need no agents."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target!r}")
    if not 0 < max_occupancy <= 1:
        raise ValueError(f"max_occupancy must be in (0, 1], got {max_occupancy!r}")
    if not 0 <= shrinkage < 1:
        raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage!r}")
    a = traffic(contacts, period, aht)
    t = _seconds(answer_within, "answer_within")
    h = _seconds(aht, "aht")
    if a <= 0:
        return 0
    if a >= MAX_AGENTS:
        raise ValueError(f"a traffic of {a:.4g} Erlangs needs more than {MAX_AGENTS} agents")
    # Erlang B up to the first candidate, then one recursion step per further candidate: O(N).
    n = math.floor(a) + 1
    b = erlang_b(n, a)
    while True:
        c = _c_from_b(n, a, b)
        if _sl(n, a, c, t, h) >= target and a / n <= max_occupancy:
            break
        if n >= MAX_AGENTS:
            raise ValueError(
                f"no staffing up to {MAX_AGENTS} agents reaches a service level of {target}"
            )
        n += 1
        ab = a * b
        b = ab / (n + ab)
    if shrinkage == 0:
        return n
    # Decimal reading of the float (0.3 → 3/10), so 14 ÷ 0.7 is exactly 20, not 20.000000000000004.
    keep = 1 - Fraction(repr(float(shrinkage)))
    return math.ceil(Fraction(n) / keep)
