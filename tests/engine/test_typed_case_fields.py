"""Typed case fields compare as their types (issue 15 #7), on both backends.

A case keeps its ``date``, ``datetime`` and ``decimal`` fields in their JSON form (ISO text, a
decimal's text), so that a state round-trips; conditions and ``set`` values must still read them
as the type the playbook declares — whether the state was made by the step before or restored
from its JSON, as a store hands it back. The state JSON itself does not change.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carepath import CaseState, Engine, loads
from typed_fields import TYPED_CASE, backends, checked, installed_backends, placed, results

PLAYBOOK = loads(TYPED_CASE)
ENGINES: dict[str, Engine] = {}


def _engine(backend: str) -> Engine:
    engine = ENGINES.get(backend)
    if engine is None:
        engine = ENGINES[backend] = Engine(PLAYBOOK, backend=backend)
    assert engine.backend == backend
    return engine


def _restore(state: CaseState, how: str) -> CaseState:
    return CaseState.from_json(state.to_json()) if how == "json" else state


@pytest.mark.parametrize("how", ["memory", "json"])
@pytest.mark.parametrize("backend", backends())
def test_typed_case_fields_compare_as_their_types(backend: str, how: str) -> None:
    engine = _engine(backend)
    opened = engine.start(placed("2026-12-31", "2026-03-02T09:00:00+07:00", "12.50")).state
    state = _restore(opened, how)
    step = engine.handle(state, checked("2027-01-01", "2026-03-02T03:00:00+00:00", "10"))
    # as text, "2026-03-02T09:00:00+07:00" sorts after "2026-03-02T03:00:00+00:00"; as instants
    # it is an hour earlier
    assert step.state.stage == "checked"
    assert results(step.state.data) == {
        "renewal_before": True,
        "renewal_same": False,
        "seen_before": True,
        "amount_above": True,
        "fee_above": True,
    }


@pytest.mark.parametrize("how", ["memory", "json"])
@pytest.mark.parametrize("backend", backends())
def test_typed_comparisons_that_do_not_hold_are_false(backend: str, how: str) -> None:
    engine = _engine(backend)
    state = _restore(engine.start(placed("2027-01-01", "2026-03-02T09:00:00Z", "9.99")).state, how)
    step = engine.handle(state, checked("2027-01-01", "2026-03-02T09:00:00+00:00", "10.00"))
    assert results(step.state.data) == {
        "renewal_before": False,
        "renewal_same": True,
        "seen_before": False,
        "amount_above": False,
        "fee_above": True,
    }


@pytest.mark.parametrize("backend", backends())
def test_typed_fields_keep_their_json_form_in_the_state(backend: str) -> None:
    engine = _engine(backend)
    state = engine.start(placed("2026-12-31", "2026-03-02T09:00:00+07:00", "12.50")).state
    data = state.data
    assert (data["renewal"], data["seen"], data["fee"]) == (
        "2026-12-31",
        "2026-03-02T09:00:00+07:00",
        "12.50",
    )
    again = CaseState.from_json(state.to_json())
    assert again.to_json() == state.to_json() and again == state
    step = engine.handle(again, checked("2027-01-01", "2026-03-02T03:00:00+00:00", "10"))
    assert step.state.data["renewal"] == "2026-12-31" and step.state.data["fee"] == "12.50"


_DATES = st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31))
_INSTANTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1))
_OFFSETS = st.sampled_from(["+00:00", "+07:00", "-05:30", "Z"])
_DECIMALS = st.decimals(
    min_value=Decimal("-100000"), max_value=Decimal("100000"), places=2, allow_nan=False
)


def _aware(naive: datetime, offset: str) -> str:
    return naive.replace(microsecond=0).isoformat() + offset


@settings(max_examples=60, deadline=None, database=None)
@given(
    renewal=_DATES,
    before=_DATES,
    seen=_INSTANTS,
    seen_offset=_OFFSETS,
    cutoff=_INSTANTS,
    cutoff_offset=_OFFSETS,
    amount=_DECIMALS,
    floor=_DECIMALS,
    how=st.sampled_from(["memory", "json"]),
)
def test_restored_typed_fields_compare_like_the_values_they_spell(
    renewal: date,
    before: date,
    seen: datetime,
    seen_offset: str,
    cutoff: datetime,
    cutoff_offset: str,
    amount: Decimal,
    floor: Decimal,
    how: str,
) -> None:
    seen_text, cutoff_text = _aware(seen, seen_offset), _aware(cutoff, cutoff_offset)
    expected = {
        "renewal_before": renewal < before,
        "renewal_same": renewal == before,
        "seen_before": datetime.fromisoformat(seen_text) < datetime.fromisoformat(cutoff_text),
        # a decimal is read as the number it spells, a float (as a JSON number is read)
        "amount_above": float(amount) > float(floor),
        "fee_above": True,
    }
    for backend in installed_backends():
        engine = _engine(backend)
        opened = engine.start(placed(renewal.isoformat(), seen_text, str(amount)))
        state = _restore(opened.state, how)
        step = engine.handle(state, checked(before.isoformat(), cutoff_text, str(floor)))
        assert results(step.state.data) == expected, backend
