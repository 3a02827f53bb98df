"""The wake-up index as one SQLite transaction sees it (:mod:`carepath.runtime._wakeups`): the
file's rows read ahead in a window, overlaid by the transaction's buffered saves.

The property drives one transaction through random saves, due questions (at any instant, with any
limit, versions and exclusions) and statements that send the buffer to the file, and compares
every answer with a plain model of the index: the rows due at ``now``, earliest first, ties by
playbook and case key.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import carepath
from carepath.engine.engine import Engine
from carepath.events import Event
from carepath.runtime import Tx, open_store
from carepath.state import CaseState

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC).timestamp()
OTHER = "0" * 64  # another version's content hash


@pytest.fixture(scope="module")
def base() -> CaseState:
    pb = carepath.load(ROOT / "examples" / "vn-retail-support.yaml")
    step = Engine(pb).start(
        Event(
            "open",
            "case.opened",
            datetime.fromtimestamp(T0, UTC),
            "K",
            {"channel": "email", "priority": "normal"},
        )
    )
    return step.state


KEYS = [f"K-{i}" for i in range(5)]
# few distinct instants, so that ties (several rows at one instant) are common
WAKE = st.one_of(st.none(), st.integers(0, 30).map(lambda n: T0 + 10 * n))
ROW = st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(KEYS), WAKE, st.booleans())

OP = st.one_of(
    st.tuples(st.just("save"), ROW),
    st.tuples(
        st.just("due"),
        st.integers(-2, 32).map(lambda n: T0 + 10 * n),
        st.integers(1, 20),
        st.booleans(),
        st.lists(st.sampled_from(KEYS), max_size=3),
    ),
    st.tuples(st.just("flush")),
)


def _state(base: CaseState, row: tuple[str, str, float | None, bool]) -> CaseState:
    pb, key, wake, current = row
    return dataclasses.replace(
        base,
        playbook=pb,
        case=key,
        next_wakeup_s=wake,
        content_hash=base.content_hash if current else OTHER,
    )


def _model_due(
    rows: dict[tuple[str, str], CaseState],
    now: float,
    limit: int,
    pbs: set[tuple[str, str]],
    ex: set[tuple[str, str]],
) -> list[tuple[str, str, float | None]]:
    due = sorted(
        (s for s in rows.values() if s.next_wakeup_s is not None and s.next_wakeup_s <= now),
        key=lambda s: (s.next_wakeup_s, s.playbook, s.case),
    )
    got = [s for s in due if (s.playbook, s.content_hash) in pbs and (s.playbook, s.case) not in ex]
    return [(s.playbook, s.case, s.next_wakeup_s) for s in got[:limit]]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(  # a row read into the window, then saved again: the save replaces it
    before=[("a", "K-1", T0, True)],
    ops=[
        ("due", T0 + 100, 5, True, []),
        ("save", ("a", "K-1", T0 + 20, True)),
        ("due", T0 + 100, 5, True, []),
        ("save", ("a", "K-1", None, True)),
        ("due", T0 + 100, 5, True, []),
    ],
)
@given(
    before=st.lists(ROW, min_size=1, max_size=16),
    ops=st.lists(OP, min_size=2, max_size=40),
)
def test_property_due_in_a_transaction_matches_the_index(
    base: CaseState, before: list[Any], ops: list[Any]
) -> None:
    store = open_store("sqlite://:memory:")
    try:
        model: dict[tuple[str, str], CaseState] = {}
        first = [_state(base, r) for r in before]
        for s in first:
            model[(s.playbook, s.case)] = s
        store.atomic(lambda tx: [tx.save(s, T0) for s in first])

        def run(tx: Tx) -> None:
            for op in ops:
                if op[0] == "save":
                    s = _state(base, op[1])
                    tx.save(s, T0)
                    model[(s.playbook, s.case)] = s
                elif op[0] == "due":
                    _, now, limit, both, exclude = op
                    pbs = {("a", base.content_hash)}
                    if both:
                        pbs.add(("b", base.content_hash))
                    ex = {("a", k) for k in exclude}
                    got = tx.due(now, limit, sorted(pbs), exclude=sorted(ex))
                    assert [(s.playbook, s.case, s.next_wakeup_s) for s in got] == _model_due(
                        model, now, limit, pbs, ex
                    )
                    for s in got:  # the whole state, not only its key
                        assert s == model[(s.playbook, s.case)]
                else:  # a statement: the buffer goes to the file, the window is read again
                    tx._arun("SELECT 1")  # type: ignore[attr-defined]

        store.atomic(run)
        # and the file holds what the transaction saved last
        assert {(s.playbook, s.case): s for s in store.cases()} == model
    finally:
        store.close()
