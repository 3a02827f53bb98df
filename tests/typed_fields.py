"""Shared helpers for the typed case-field tests (issue 15 #7): a playbook whose case keeps a
``date``, a ``datetime`` and two ``decimal`` fields (in their JSON form, text) and compares them in
conditions, and the events that drive it.

The opening event sets ``renewal``, ``seen`` and ``amount``; ``fee`` keeps its default ``"12.50"``
(a decimal held as text). ``order.checked`` records each comparison as a bool field, so one step
shows them all: ``renewal < event.before``, ``seen < event.cutoff``, ``amount > event.floor``,
``fee > 10``, and ``renewal == event.before`` (equality, not only order).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carepath import Event

TYPED_CASE = """
carepath: 1
id: typed-case
version: "1"
timezone: Asia/Ho_Chi_Minh
events:
  order.placed:
    renewal: date
    seen: datetime
    amount: decimal
  order.checked:
    before: date
    cutoff: datetime
    floor: decimal
fields:
  renewal: date
  seen: datetime
  amount: decimal
  fee: {type: decimal, default: "12.50"}
  renewal_before: {type: bool, default: false}
  renewal_same: {type: bool, default: false}
  seen_before: {type: bool, default: false}
  amount_above: {type: bool, default: false}
  fee_above: {type: bool, default: false}
start:
  on: order.placed
  key: event.case
  set:
    renewal: =event.renewal
    seen: =event.seen
    amount: =event.amount
stages:
  open:
    initial: true
    on:
      order.checked:
        - when: renewal < event.before and seen < event.cutoff and amount > event.floor
          set:
            renewal_before: true
            seen_before: true
            amount_above: true
            renewal_same: =renewal == event.before
            fee_above: =fee > 10
          to: checked
        - set:
            renewal_before: =renewal < event.before
            renewal_same: =renewal == event.before
            seen_before: =seen < event.cutoff
            amount_above: =amount > event.floor
            fee_above: =fee > 10
          to: checked
  checked: {final: true}
"""

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESULTS = ("renewal_before", "renewal_same", "seen_before", "amount_above", "fee_above")


def placed(renewal: str, seen: str, amount: str, case: str = "C-1") -> Event:
    """The opening event, with the three typed values as JSON would carry them (text)."""
    return Event(
        "placed-" + case,
        "order.placed",
        T0,
        case,
        {"renewal": renewal, "seen": seen, "amount": amount},
    )


def checked(before: str, cutoff: str, floor: str, case: str = "C-1") -> Event:
    """The event whose handler compares the case's typed fields with its own."""
    return Event(
        "checked-" + case,
        "order.checked",
        T0 + timedelta(hours=1),
        case,
        {"before": before, "cutoff": cutoff, "floor": floor},
    )


def results(data: Any) -> dict[str, Any]:
    """The comparisons the ``order.checked`` step recorded."""
    return {name: data[name] for name in RESULTS}


def _have_core() -> bool:
    try:
        import carepath_core  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the machine
        return os.environ.get("CAREPATH_REQUIRE_NATIVE") == "1"
    return True


def installed_backends() -> list[str]:
    """The backends this machine can run (the native one fails here if CI requires it)."""
    return ["python", "native"] if _have_core() else ["python"]


def backends() -> list[Any]:
    """``python`` and ``native`` as test parameters (native skipped without the core, unless CI
    requires it)."""
    have_core = _have_core()
    return [
        "python",
        pytest.param(
            "native", marks=pytest.mark.skipif(not have_core, reason="carepath-core not installed")
        ),
    ]
