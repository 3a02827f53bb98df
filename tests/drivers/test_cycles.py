"""Clock facts in columns (:class:`~carepath.drivers.cycles.ClockFacts`): moving them keeps
each cycle whole, whatever the count, with the core moving the numbers' columns or without it,
and the stop order is stable with ties by key."""

from __future__ import annotations

import sys
from datetime import UTC
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath.drivers.cycles import ClockFacts, Ctx

_CTX = Ctx("vip", "chat", "L1", "triage")


def _facts(stops: list[int]) -> ClockFacts:
    facts = ClockFacts(UTC)
    for i, stop in enumerate(stops):
        fields = (
            i,
            float(stop - 60),
            float(stop),
            60.0,
            0.0,
            None if i % 3 else 120.0,
            None if i % 4 == 0 else i % 2 == 0,
            None,
        )
        facts.append_fields(f"c{i % 2}", fields, float(stop), f"T-{i}", _CTX)
    return facts


def _rows(facts: ClockFacts) -> list[tuple[object, ...]]:
    return [(f.clock, f.record, f.stopped_s, f.case, f.ctx) for f in facts]


@given(st.lists(st.integers(0, 5), max_size=12), st.data())
def test_take_keeps_each_cycle_whole(stops: list[int], data: st.DataObject) -> None:
    facts = _facts(stops)
    n = len(stops)
    indexes = data.draw(st.lists(st.integers(-n, n - 1), max_size=12)) if stops else []
    taken = facts.take(indexes)
    assert _rows(taken) == [_rows(facts)[i] for i in indexes]
    assert len(taken) == len(indexes)
    with mock.patch.dict(sys.modules, {"carepath_core": None}):  # without the core
        assert _rows(facts.take(indexes)) == _rows(taken)


def test_the_core_takes_whole_items_in_range() -> None:
    core = pytest.importorskip("carepath_core")
    assert core._take(bytes(range(8)), 4, [1, 0, 1]) == bytes([4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(IndexError, match="index 2 out of range for 2 items"):
        core._take(bytes(8), 4, [2])
    with pytest.raises(ValueError, match="not whole items"):
        core._take(bytes(7), 4, [0])


@given(st.lists(st.integers(0, 5), max_size=12), st.data())
def test_sort_by_stop_is_stable_with_ties_by_key(stops: list[int], data: st.DataObject) -> None:
    facts = _facts(stops)
    before = _rows(facts)
    keys = data.draw(st.lists(st.integers(-3, 3), min_size=len(stops), max_size=len(stops)))
    order = facts.sort_by_stop(keys)
    assert order == sorted(range(len(stops)), key=lambda i: (stops[i], keys[i]))
    assert _rows(facts) == [before[i] for i in order]
