"""Several workers claiming at once never hold one item together (SPEC §9), on SQLite and
PostgreSQL: real processes and threads claiming from one store, and a Hypothesis property over
any interleaving of claims, acks, nacks and the passing of time.

The clock is injected: in the concurrent tests it does not move, so every lease stays live and any
item handed out twice would be a double lease.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carepath
from carepath.runtime import Runtime, Store, open_store
from carepath.runtime.clock import ManualClock
from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

PLAYBOOK = """
carepath: 1
id: claims
version: "1"
timezone: UTC
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello}]
    on: {ticket.closed: done}
    after: [{in: 1d, to: done}]
  done: {final: true}
"""

URLS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'cases.db'}",
    "postgres": lambda tmp: postgres_schema_url(),
}

_WORKER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    import carepath
    from carepath.runtime import Runtime, open_store
    from carepath.runtime.clock import ManualClock

    url, playbook, at, name = sys.argv[1:5]
    rt = Runtime([carepath.loads(open(playbook).read())], open_store(url),
                 clock=ManualClock(datetime.fromisoformat(at)), worker=name)
    print("ready", flush=True)
    sys.stdin.readline()                      # go: every worker claims at once
    got = []
    while True:
        items = rt.claim(limit=3)
        if not items:
            break
        for i in items:
            got.append(i.id)
            if len(got) % 2:                  # answer half of them; the others stay leased
                assert rt.ack(i.id)
    print(json.dumps(got), flush=True)
""")


def _fill(url: str, n: int) -> list[str]:
    store = open_store(url)
    try:
        rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0))
        at = T0.isoformat()
        rs = rt.submit_many(
            {"id": f"o{k}", "type": "ticket.opened", "at": at, "case": f"T-{k}"} for k in range(n)
        )
        assert all(r.status == "applied" for r in rs)
        return [i.id for i in store.outbox()]
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(URLS))
def test_processes_claiming_at_once_never_share_an_item(kind: str, tmp_path: Path) -> None:
    url = URLS[kind](tmp_path)
    ids = _fill(url, 240)
    playbook = tmp_path / "claims.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    at = (T0 + timedelta(seconds=1)).isoformat()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, str(playbook), at, f"w{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for n in range(4)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    got = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    claimed = [i for g in got for i in g]
    assert sorted(claimed) == sorted(ids)  # every item once: none handed to two live leases
    store = open_store(url)
    try:
        statuses = [i.status for i in store.outbox()]
        assert statuses.count("delivered") == sum((len(g) + 1) // 2 for g in got)
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(URLS))
def test_threads_claiming_at_once_never_share_an_item(kind: str, tmp_path: Path) -> None:
    url = URLS[kind](tmp_path)
    ids = _fill(url, 150)
    clock = ManualClock(T0 + timedelta(seconds=1))
    pb = carepath.loads(PLAYBOOK)
    stores = [open_store(url) for _ in range(2)]
    # two threads on each store object: sharing a connection (pool) and not
    runtimes = [Runtime([pb], stores[n % 2], clock=clock) for n in range(4)]
    got: list[list[str]] = [[] for _ in runtimes]
    go = threading.Barrier(len(runtimes))

    def work(n: int) -> None:
        go.wait()
        while items := runtimes[n].claim(limit=2):
            got[n].extend(i.id for i in items)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(runtimes))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    finally:
        for s in stores:
            s.close()
    assert sorted(i for g in got for i in g) == sorted(ids)


# -- the property -------------------------------------------------------------------------------
@dataclass
class _Model:
    """What the runtime promised: who holds which item until when, and when it may come back."""

    holder: dict[str, tuple[int, float]] = field(default_factory=dict)  # item → (worker, until)
    not_before: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # delivered or dead


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.integers(0, 2), st.integers(1, 3), st.integers(1, 60)),
        st.tuples(st.just("ack"), st.integers(0, 2), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("nack"), st.integers(0, 2), st.integers(0, 5), st.integers(0, 90)),
        st.tuples(st.just("dead"), st.integers(0, 2), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("wait"), st.just(0), st.just(0), st.integers(1, 70)),
    ),
    max_size=40,
)


def _check_interleaving(store: Store, ops: list[tuple[str, int, int, int]]) -> None:
    clock = ManualClock(T0)
    pb = carepath.loads(PLAYBOOK)
    workers = [Runtime([pb], store, clock=clock, max_attempts=3) for _ in range(3)]
    for k in range(6):
        workers[0].submit(
            {"id": f"o{k}", "type": "ticket.opened", "at": T0.isoformat(), "case": f"T-{k}"}
        )
    m = _Model()
    for op, w, arg, secs in ops:
        now = clock.now.timestamp()
        rt = workers[w]
        if op == "wait":
            clock.advance(secs)
        elif op == "claim":
            for item in rt.claim(limit=arg, lease=timedelta(seconds=secs)):
                held = m.holder.get(item.id)
                assert held is None or held[1] <= now, f"{item.id} handed to two live leases"
                assert item.id not in m.done
                assert now >= m.not_before.get(item.id, now)
                assert item.attempts == m.attempts.get(item.id, 0) + 1
                m.attempts[item.id] = item.attempts
                m.holder[item.id] = (w, now + secs)
        else:
            item_id = f"T-{arg}:1"
            held = m.holder.get(item_id)
            live = held is not None and held[0] == w and held[1] > now and item_id not in m.done
            if op == "ack":
                ok = rt.ack(item_id)
            else:
                ok = rt.nack(item_id, timedelta(seconds=secs), permanent=op == "dead")
            assert ok == live, (op, item_id, held, now)
            if ok:
                del m.holder[item_id]
                if op == "ack" or op == "dead" or m.attempts[item_id] >= 3:
                    m.done.add(item_id)
                else:
                    m.not_before[item_id] = now + secs
    statuses = {i.id: i.status for i in store.outbox()}
    assert {i for i, s in statuses.items() if s != "pending"} <= m.done | {
        i for i, n in m.attempts.items() if n >= 3
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_no_two_live_leases_property_sqlite(ops: list[tuple[str, int, int, int]]) -> None:
    store = open_store("sqlite://:memory:")
    try:
        _check_interleaving(store, ops)
    finally:
        store.close()


@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_no_two_live_leases_property_postgres(ops: list[tuple[str, int, int, int]]) -> None:
    store = open_store(postgres_schema_url())
    try:
        _check_interleaving(store, ops)
    finally:
        store.drop()  # type: ignore[attr-defined]
        store.close()
