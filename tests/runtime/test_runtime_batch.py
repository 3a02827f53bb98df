"""The batch path of the runtime (``submit_many``: one :meth:`Tx.prefetch`, every event decided in
memory, one commit) on every store, and the PostgreSQL races it must survive.

Each property compares a batch with the same events sent one by one, which takes the simplest
path (a batch of one). Time is injected; nothing sleeps.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carepath.engine.batch_gc import BATCH_GC_THRESHOLDS
from carepath.engine.engine import Engine
from carepath.events import Event
from carepath.runtime import Prefetched, Runtime, Store, Tx, open_store
from carepath.runtime.clock import ManualClock
from conftest import postgres_schema_url, postgres_url
from test_runtime import mini
from test_store import STORE_FACTORIES

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


def ev(i: Any, type_: str, minutes: float, case: str | None = "T-1", **data: Any) -> Event:
    return Event(str(i), type_, T0 + timedelta(minutes=minutes), case, data)


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything a run leaves behind, in comparable form."""
    return (
        [c.to_json() for c in store.cases()],
        sorted(
            (i.playbook, i.id, json.dumps(i.action.to_dict(), sort_keys=True))
            for i in store.outbox()
        ),
        sorted((r.reason, json.dumps(r.event, sort_keys=True)) for r in store.rejected()),
        store.processed_count(),
    )


def one_by_one(events: list[Any]) -> tuple[list[tuple[str, str | None]], tuple[Any, ...]]:
    s = open_store("sqlite://:memory:")
    rt = Runtime([mini()], s, clock=ManualClock(T0))
    statuses = [(r.status, r.reason) for r in (rt.submit(e) for e in events)]
    out = statuses, snapshot(s)
    s.close()
    return out


# -- the cases a batch must get right ---------------------------------------------------------------
def test_a_case_repeated_in_one_batch_sees_its_own_earlier_steps(store: Store) -> None:
    events = [
        ev("o1", "ticket.opened", 0, priority="high"),
        ev("o2", "ticket.opened", 1, case="T-2"),
        ev("a1", "ticket.answered", 2),
        ev("o3", "ticket.opened", 61),  # T-1 ended: re-entry opens it again
        ev("a2", "ticket.answered", 4, case="T-2"),
    ]
    rt = Runtime([mini("always")], store, clock=ManualClock(T0))
    got = rt.submit_many(events, batch=len(events))
    assert [r.status for r in got] == ["applied"] * 5
    t1 = store.get("mini", "T-1")
    assert t1 is not None and t1.stage == "new" and t1.opened == T0 + timedelta(minutes=61)
    assert store.get("mini", "T-2").stage == "done"  # type: ignore[union-attr]
    ids = [i.id for i in store.outbox(case="T-1")]
    assert ids == ["T-1:1", "T-1:2"]  # the second opening continued the sequence of the first
    # a later batch reads back what this one wrote (the store's state cache, if any, agrees)
    assert rt.submit_many([ev("a3", "ticket.answered", 62)], batch=10)[0].status == "applied"
    assert store.get("mini", "T-1").stage == "done"  # type: ignore[union-attr]


def test_a_duplicate_id_within_one_batch_and_across_batches(store: Store) -> None:
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    got = rt.submit_many(
        [
            ev("e1", "ticket.opened", 0),
            ev("e1", "ticket.answered", 1),
            ev("e2", "ticket.opened", 0, case="T-2"),
        ],
        batch=10,
    )
    assert [r.status for r in got] == ["applied", "duplicate", "applied"]
    assert store.get("mini", "T-1").stage == "new"  # type: ignore[union-attr]
    again = rt.submit_many(
        [
            ev("e2", "ticket.answered", 2, case="T-2"),
            ev("e3", "ticket.answered", 2),
            ev("e3", "ticket.answered", 3),
        ],
        batch=10,
    )
    assert [r.status for r in again] == ["duplicate", "applied", "duplicate"]
    assert store.processed_count() == 3
    assert rt.counters["duplicate"] == 3


def test_a_rejected_event_mid_batch_loses_none_of_the_others(store: Store) -> None:
    rt = Runtime([mini()], store, clock=ManualClock(T0))
    batch: list[Any] = [
        ev("o1", "ticket.opened", 10),
        "{not json",
        ev("x1", "ticket.answered", 11, case="T-404"),
        ev("late", "ticket.answered", 5),
        ev("o2", "ticket.opened", 10, case="T-2"),
        ev("a1", "ticket.answered", 12),
    ]
    got = rt.submit_many(batch, batch=len(batch))
    assert [(r.status, r.reason) for r in got] == [
        ("applied", None),
        ("rejected", "invalid"),
        ("rejected", "unknown_case"),
        ("rejected", "out_of_order"),
        ("applied", None),
        ("applied", None),
    ]
    assert {(c.case, c.stage) for c in store.cases()} == {("T-1", "done"), ("T-2", "new")}
    assert sorted(r.reason for r in store.rejected()) == ["invalid", "out_of_order", "unknown_case"]
    assert store.processed_count() == 3
    # a rejected id stays unseen: sent again in a later batch, fixed, it applies
    fixed = rt.submit_many([ev("x1", "ticket.opened", 13, case="T-404")], batch=5)
    assert fixed[0].status == "applied"


def test_batch_equals_one_by_one_on_the_examples(store: Store) -> None:
    events = [ev(f"o{k}", "ticket.opened", k, case=f"T-{k % 4}") for k in range(12)]
    events += [ev(f"a{k}", "ticket.answered", 20 + k, case=f"T-{k % 5}") for k in range(10)]
    events += [*events[:3], "[1]"]
    rt = Runtime([mini("always")], store, clock=ManualClock(T0))
    got = [(r.status, r.reason) for r in rt.submit_many(events, batch=7)]
    ref = Runtime([mini("always")], s := open_store("sqlite://:memory:"), clock=ManualClock(T0))
    want = [(r.status, r.reason) for r in (ref.submit(e) for e in events)]
    assert got == want
    assert snapshot(store) == snapshot(s)
    s.close()


def test_batches_raise_the_collectors_thresholds_only_while_they_run(store: Store) -> None:
    """Full collections over the live cases wait until the batches are over (``batch_gc``); the
    host's thresholds are back afterwards, also when a batch fails."""
    seen: list[tuple[int, ...]] = []
    atomic = store.atomic

    def spy(fn: Any) -> Any:
        seen.append(gc.get_threshold())
        return atomic(fn)

    old = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        store.atomic = spy  # type: ignore[method-assign]
        rt = Runtime([mini("always")], store, clock=ManualClock(T0))
        rt.submit_many([ev(f"g{k}", "ticket.opened", k, case=f"T-{k}") for k in range(5)], batch=2)
        rt.run_due(T0 + timedelta(days=30))
        assert seen and set(seen) == {BATCH_GC_THRESHOLDS}
        assert gc.get_threshold() == (700, 10, 10)

        def broken(fn: Any) -> Any:
            raise OSError("disk gone")

        store.atomic = broken  # type: ignore[method-assign]
        with pytest.raises(OSError):
            rt.submit_many([ev("g9", "ticket.opened", 9, case="T-9")])
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*old)
        store.atomic = atomic  # type: ignore[method-assign]


@pytest.mark.parametrize("backend", ["native", "python"])
def test_results_build_actions_and_signals_when_read_in_either_order(
    store: Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store writes the outbox from the steps; a result's actions and signals are built when
    read, in either order, equal to the engine's and to what the outbox holds."""
    monkeypatch.setenv("CAREPATH_ENGINE", backend)
    events = [ev(f"o{k}", "ticket.opened", k, case=f"T-{k % 3}") for k in range(6)]
    events += [ev(f"a{k}", "ticket.answered", 30 + k, case=f"T-{k % 3}") for k in range(3)]
    rt = Runtime([mini("always")], store, clock=ManualClock(T0))
    assert rt.engines["mini"].backend == backend
    results = rt.submit_many(events, batch=4)
    engine = Engine(mini("always"), backend="python")
    states: dict[str, Any] = {}
    for k, (e, r) in enumerate(zip(events, results, strict=True)):
        prev = states.get(e.case or "")
        step = engine.start(e) if prev is None else engine.handle(prev, e)
        states[e.case or ""] = step.state
        first, second = ("actions", "signals") if k % 2 else ("signals", "actions")
        got = {first: getattr(r, first), second: getattr(r, second)}
        assert [a.to_dict() for a in got["actions"]] == [a.to_dict() for a in step.actions]
        assert [x.to_dict() for x in got["signals"]] == [x.to_dict() for x in step.signals]
        assert r.actions is got["actions"] and r.signals is got["signals"]  # built once
    queued = sorted(json.dumps(i.action.to_dict(), sort_keys=True) for i in store.outbox())
    made = sorted(json.dumps(a.to_dict(), sort_keys=True) for r in results for a in r.actions)
    assert queued == made and made
    assert rt.counters["actions"] == len(made)


# -- a generated log: a batch of any size decides exactly what one-by-one decides -------------------
TYPES = ("ticket.opened", "ticket.answered", "nobody.cares")


@st.composite
def logs(draw: Any) -> list[Any]:
    n = draw(st.integers(1, 30))
    out: list[Any] = []
    for i in range(n):
        if draw(st.integers(0, 19)) == 0:
            out.append(
                draw(
                    st.sampled_from(
                        ["{bad", "[]", json.dumps({"id": f"b{i}", "type": "ticket.opened"})]
                    )
                )
            )
            continue
        eid = f"e{draw(st.integers(0, n))}"  # ids repeat now and then: duplicates within and across batches
        out.append(
            ev(
                eid,
                draw(st.sampled_from(TYPES)),
                draw(st.integers(0, 120)),
                case=draw(st.sampled_from(["T-1", "T-2", "T-3", None])),
                **({"priority": "high"} if draw(st.booleans()) else {}),
            )
        )
    return out


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), batch=st.integers(2, 12))
def test_property_batches_equal_one_by_one_sqlite(log: list[Any], batch: int) -> None:
    want_status, want = one_by_one(log)
    s = open_store("sqlite://:memory:")
    rt = Runtime([mini()], s, clock=ManualClock(T0))
    got_status = [(r.status, r.reason) for r in rt.submit_many(log, batch=batch)]
    assert got_status == want_status
    assert snapshot(s) == want
    s.close()


@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(log=logs(), batch=st.integers(2, 12))
def test_property_batches_equal_one_by_one_postgres(log: list[Any], batch: int) -> None:
    want_status, want = one_by_one(log)
    s = open_store(postgres_schema_url())
    try:
        rt = Runtime([mini()], s, clock=ManualClock(T0))
        got_status = [(r.status, r.reason) for r in rt.submit_many(log, batch=batch)]
        assert got_status == want_status
        assert snapshot(s) == want
        # what was processed is a duplicate the second time, read back through the state cache
        done = [e for e, (status, _) in zip(log, got_status, strict=True) if status != "rejected"]
        assert {r.status for r in rt.submit_many(done, batch=batch)} <= {"duplicate"}
        assert snapshot(s) == want
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()


# -- the store hook ----------------------------------------------------------------------------------
def test_prefetch_answers_ids_and_cases_of_a_batch(store: Store) -> None:
    engine = Engine(mini())
    a = engine.start(ev("o1", "ticket.opened", 0)).state
    store.atomic(lambda tx: [tx.save(a, 0.0), tx.mark_processed("o1", 0.0)])

    def read(tx: Tx) -> Prefetched:
        return tx.prefetch(["o1", "x", "o1"], [("mini", "T-2"), ("mini", "T-1"), ("other", "T-1")])

    got = store.atomic(read)
    assert got.seen == frozenset({"o1"})
    assert got.states == {("mini", "T-1"): a, ("mini", "T-2"): None, ("other", "T-1"): None}
    assert store.atomic(lambda tx: tx.prefetch([], [])) == Prefetched(frozenset(), {})


def test_the_default_prefetch_asks_one_by_one() -> None:
    from carepath.runtime.sqlite import _SQLiteTx

    s = open_store("sqlite://:memory:")
    calls: list[str] = []

    class OneByOne(_SQLiteTx):
        prefetch = Tx.prefetch

        def seen(self, event_id: str) -> bool:
            calls.append(f"seen {event_id}")
            return super().seen(event_id)

        def load(self, playbook: str, case: str) -> Any:
            calls.append(f"load {case}")
            return super().load(playbook, case)

    got = s.atomic(lambda tx: OneByOne(tx.c).prefetch(["e1"], [("mini", "T-2"), ("mini", "T-1")]))  # type: ignore[attr-defined]
    assert got == Prefetched(frozenset(), {("mini", "T-1"): None, ("mini", "T-2"): None})
    assert calls == ["seen e1", "load T-1", "load T-2"]  # keys in sorted order
    s.close()


# -- PostgreSQL: locks and races ----------------------------------------------------------------------
def _pg_store() -> tuple[Store, str]:
    url = postgres_schema_url()
    return open_store(url), url.split("schema=")[1]


def test_postgres_prefetch_locks_the_cases_until_commit() -> None:
    import psycopg
    from psycopg import errors as pgerr

    s, schema = _pg_store()
    try:
        engine = Engine(mini())
        for k in ("T-1", "T-2"):
            st_ = engine.start(ev(f"o-{k}", "ticket.opened", 0, case=k)).state
            s.atomic(lambda tx, st_=st_: tx.save(st_, 0.0))  # type: ignore[misc]
        with psycopg.connect(postgres_url(), autocommit=True) as other:

            def probe(tx: Tx) -> list[bool]:
                tx.prefetch([], [("mini", "T-1")])
                locked = []
                for k in ("T-1", "T-2"):
                    try:
                        other.execute(
                            f'SELECT 1 FROM "{schema}".cases WHERE case_key = %s FOR UPDATE NOWAIT',
                            (k,),
                        )
                        locked.append(False)
                    except pgerr.LockNotAvailable:
                        locked.append(True)
                return locked

            assert s.atomic(probe) == [True, False]
            other.execute(
                f'SELECT 1 FROM "{schema}".cases WHERE case_key = %s FOR UPDATE NOWAIT', ("T-1",)
            )
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()


def test_postgres_an_id_processed_by_another_worker_meanwhile_reruns_the_batch() -> None:
    """The race two workers given the same event would run: both see the id unprocessed; the one
    that commits second must not apply it again."""
    import psycopg

    s, schema = _pg_store()
    try:
        runs: list[bool] = []
        with psycopg.connect(postgres_url(), autocommit=True) as other:

            def unit(tx: Tx) -> bool:
                seen = "e9" in tx.prefetch(["e9"], []).seen
                runs.append(seen)
                if not runs[1:]:  # first attempt: the other worker commits e9 now
                    other.execute(
                        f'INSERT INTO "{schema}".processed (event_id, at) VALUES (%s, 0)', ("e9",)
                    )
                if not seen:
                    tx.mark_processed("e9", 1.0)
                return seen

            assert s.atomic(unit) is True
        assert runs == [False, True]
        assert s.processed_count() == 1
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()


def test_postgres_a_case_opened_by_another_worker_meanwhile_reruns_the_batch() -> None:
    import psycopg

    s, schema = _pg_store()
    try:
        engine = Engine(mini())
        mine = engine.start(ev("o1", "ticket.opened", 0)).state
        theirs = engine.start(ev("o2", "ticket.opened", 1, priority="high")).state
        runs: list[bool] = []
        with psycopg.connect(postgres_url(), autocommit=True) as other:

            def unit(tx: Tx) -> None:
                found = tx.prefetch([], [("mini", "T-1")]).states[("mini", "T-1")]
                runs.append(found is not None)
                if found is None:
                    if (
                        len(runs) == 1
                    ):  # the other worker opens T-1 and commits before this batch does
                        other.execute(
                            f'INSERT INTO "{schema}".cases (playbook, case_key, version, hash, stage, state, '
                            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, 0)",
                            (
                                "mini",
                                "T-1",
                                theirs.version,
                                theirs.content_hash,
                                theirs.stage,
                                theirs.to_json(),
                            ),
                        )
                    tx.save(mine, 1.0)

            s.atomic(unit)
        assert runs == [False, True]  # the second run found their case (and left it as it was)
        assert s.get("mini", "T-1") == theirs
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()


def test_postgres_state_cache_never_hides_a_row_changed_elsewhere() -> None:
    url = postgres_schema_url()
    a, b = open_store(url), open_store(url)
    try:
        ra = Runtime([mini()], a, clock=ManualClock(T0))
        rb = Runtime([mini()], b, clock=ManualClock(T0))
        ra.submit_many([ev("o1", "ticket.opened", 0)], batch=5)  # a caches T-1 as it wrote it
        rb.submit_many([ev("a1", "ticket.answered", 1)], batch=5)  # b moves it on
        r = ra.submit_many([ev("o2", "ticket.opened", 200, priority="high")], batch=5)[0]
        assert (
            r.status == "applied" and r.cases[0].stage == "new"
        )  # re-entry after b's exit: a saw it
        assert a.states.hits == 0 and a.states.misses >= 1  # type: ignore[attr-defined]
        assert [i.id for i in a.outbox(case="T-1")][-1] == "T-1:2"
    finally:
        a.drop()  # type: ignore[attr-defined]
        a.close()
        b.close()


def test_postgres_state_cache_can_be_turned_off() -> None:
    s = open_store(postgres_schema_url(state_cache="0"))
    try:
        assert s.states.size == 0  # type: ignore[attr-defined]
        rt = Runtime([mini()], s, clock=ManualClock(T0))
        rt.submit_many([ev("o1", "ticket.opened", 0)], batch=5)
        assert rt.submit_many([ev("a1", "ticket.answered", 1)], batch=5)[0].status == "applied"
        assert s.states.hits == 0  # type: ignore[attr-defined]
    finally:
        s.drop()  # type: ignore[attr-defined]
        s.close()
