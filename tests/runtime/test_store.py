"""The store suite: written once against the :class:`carepath.runtime.Store` interface and run
over every store factory in ``STORE_FACTORIES`` (a PostgreSQL store adds its own entry).

No sleeps: time is passed in as POSIX seconds, as the runtime does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath.engine.engine import Engine
from carepath.events import Event
from carepath.runtime import Rejected, Store, StoreError, Tx, open_store
from carepath.state import Action, CaseState
from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC).timestamp()

StoreFactory = Callable[[Path], Store]

STORE_FACTORIES: dict[str, StoreFactory] = {
    "sqlite-memory": lambda tmp: open_store("sqlite://:memory:"),
    "sqlite-file": lambda tmp: open_store(f"sqlite:///{tmp / 'cases.db'}"),
    "postgres": lambda tmp: open_store(
        postgres_schema_url()
    ),  # skips (or fails in CI) without a server
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def playbook() -> carepath.Playbook:
    return carepath.load(ROOT / "examples" / "vn-retail-support.yaml")


def _case(pb: carepath.Playbook, key: str, at: float = T0) -> tuple[CaseState, list[Action]]:
    engine = Engine(pb)
    step = engine.start(
        Event(
            f"open-{key}",
            "case.opened",
            datetime.fromtimestamp(at, UTC),
            key,
            {"channel": "email", "priority": "normal"},
        )
    )
    return step.state, step.actions


def _action(key: str, n: int, at: float = T0, type_: str = "send", pb: str = "p") -> Action:
    return Action(
        f"{key}:{n}", pb, key, type_, {"n": n}, datetime.fromtimestamp(at, UTC), "stages.x.enter[0]"
    )


# -- transactions ---------------------------------------------------------------------------------
def test_atomic_commits_everything_or_nothing(store: Store, playbook: carepath.Playbook) -> None:
    st, acts = _case(playbook, "T-1")

    def boom(tx: Tx) -> None:
        tx.save(st, T0)
        tx.add_outbox(acts)
        tx.mark_processed("e1", T0)
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        store.atomic(boom)
    assert store.get(playbook.id, "T-1") is None
    assert store.outbox() == []
    assert store.processed_count() == 0
    assert not store.atomic(lambda tx: tx.seen("e1"))

    def ok(tx: Tx) -> int:
        tx.save(st, T0)
        tx.add_outbox(acts)
        tx.mark_processed("e1", T0)
        return 7

    assert store.atomic(ok) == 7
    assert store.get(playbook.id, "T-1") == st
    assert [i.id for i in store.outbox()] == [a.id for a in acts]
    assert store.atomic(lambda tx: tx.seen("e1"))
    assert store.processed_count() == 1


def test_nested_atomic_joins_the_open_transaction(
    store: Store, playbook: carepath.Playbook
) -> None:
    st, _ = _case(playbook, "T-2")

    def outer(tx: Tx) -> None:
        store.atomic(lambda inner: inner.save(st, T0))
        raise ValueError("roll back both")

    with pytest.raises(ValueError):
        store.atomic(outer)
    assert store.get(playbook.id, "T-2") is None


def test_state_round_trip_and_listing(store: Store, playbook: carepath.Playbook) -> None:
    states = [_case(playbook, k)[0] for k in ("T-3", "T-1", "T-2")]
    store.atomic(lambda tx: [tx.save(s, T0) for s in states])
    assert [s.case for s in store.cases()] == ["T-1", "T-2", "T-3"]
    assert store.cases("other") == []
    got = store.get(playbook.id, "T-1")
    assert got is not None and got.to_json() == states[1].to_json()
    assert store.atomic(lambda tx: tx.load(playbook.id, "T-1")) == states[1]
    assert store.atomic(lambda tx: tx.load(playbook.id, "nope")) is None
    # replace keeps one row per key
    moved = dataclasses.replace(states[1], stage="open")
    store.atomic(lambda tx: tx.save(moved, T0))
    assert len(store.cases()) == 3
    got = store.get(playbook.id, "T-1")
    assert got is not None and got.stage == "open"


def test_wakeup_index(store: Store, playbook: carepath.Playbook) -> None:
    key = (playbook.id, playbook.content_hash)
    base, _ = _case(playbook, "T-0")
    rows = [
        dataclasses.replace(base, case=f"T-{i}", next_wakeup_s=T0 + 100 * i) for i in range(1, 6)
    ]
    rows.append(dataclasses.replace(base, case="T-none", next_wakeup_s=None))
    rows.append(dataclasses.replace(base, case="T-old", content_hash="0" * 64, next_wakeup_s=T0))
    store.atomic(lambda tx: [tx.save(s, T0) for s in rows])
    due = store.atomic(lambda tx: tx.due(T0 + 300, 10, [key]))
    assert [s.case for s in due] == [
        "T-1",
        "T-2",
        "T-3",
    ]  # earliest first; other versions not taken
    assert [s.case for s in store.atomic(lambda tx: tx.due(T0 + 300, 2, [key]))] == ["T-1", "T-2"]
    assert [
        s.case
        for s in store.atomic(
            lambda tx: tx.due(T0 + 300, 10, [key], exclude=[(playbook.id, "T-1")])
        )
    ] == ["T-2", "T-3"]
    assert store.atomic(lambda tx: tx.due(T0 + 300, 10, [])) == []
    assert store.next_wakeup([key]) == T0 + 100
    assert store.next_wakeup() == T0
    assert store.next_wakeup([("x", "y")]) is None


def test_processed_ids(store: Store) -> None:
    store.atomic(
        lambda tx: [
            tx.mark_processed("a", T0),
            tx.mark_processed("a", T0),
            tx.mark_processed("b", T0),
        ]
    )
    assert store.processed_count() == 2
    assert store.atomic(lambda tx: (tx.seen("a"), tx.seen("b"), tx.seen("c"))) == (
        True,
        True,
        False,
    )


# -- outbox -------------------------------------------------------------------------------------
def test_outbox_insert_is_idempotent_per_playbook_and_id(store: Store) -> None:
    a1, a2 = _action("T-1", 1), _action("T-1", 2)
    store.atomic(lambda tx: tx.add_outbox([a1, a2]))
    store.atomic(lambda tx: tx.add_outbox([a1, dataclasses.replace(a1, playbook="q")]))
    items = store.outbox()
    assert [(i.playbook, i.id) for i in items] == [("p", "T-1:1"), ("p", "T-1:2"), ("q", "T-1:1")]
    first = items[0]
    assert first.status == "pending" and first.attempts == 0 and first.action == a1
    assert first["status"] == "pending" and first["action"] == a1
    assert first.to_dict()["action"] == a1.to_dict()
    assert set(first.to_dict()) == {
        "id",
        "playbook",
        "case",
        "type",
        "status",
        "attempts",
        "action",
    }
    assert [i.id for i in store.outbox(playbook="q")] == ["T-1:1"]
    assert [i.id for i in store.outbox(case="T-1", playbook="p")] == ["T-1:1", "T-1:2"]


def test_claims_leases_and_lapse(store: Store) -> None:
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", n, at=T0 + n) for n in range(1, 4)]))
    assert store.claim_outbox(T0, 10, T0 + 60, "w1") == []  # none available yet (at T0+1…)
    got = store.claim_outbox(T0 + 2, 10, T0 + 62, "w1")
    assert [i.id for i in got] == ["T-1:1", "T-1:2"]
    assert all(i.attempts == 1 and i.claimed_by == "w1" for i in got)
    # w1 is killed: its claims stay until the lease ends
    assert [i.id for i in store.claim_outbox(T0 + 10, 10, T0 + 70, "w2")] == ["T-1:3"]
    assert store.claim_outbox(T0 + 61, 10, T0 + 121, "w2") == []
    taken = store.claim_outbox(T0 + 62, 10, T0 + 122, "w2")
    assert [(i.id, i.attempts) for i in taken] == [("T-1:1", 2), ("T-1:2", 2)]
    # a late failure report of w1 does not undo w2's claim; delivered always wins
    store.finish_outbox("p", "T-1:1", "w1", delivered=False, retry_at=T0 + 1000, error="late")
    assert store.outbox()[0].claimed_by == "w2"
    store.finish_outbox("p", "T-1:1", "w1", delivered=True)
    store.finish_outbox("p", "T-1:1", "w2", delivered=True)  # idempotent
    assert store.outbox()[0].status == "delivered"


def test_claim_filters_types_and_retries_and_dead(store: Store) -> None:
    store.atomic(
        lambda tx: tx.add_outbox(
            [_action("T-1", 1, type_="send"), _action("T-1", 2, type_="notify")]
        )
    )
    assert [i.id for i in store.claim_outbox(T0, 10, T0 + 30, "w", types=["notify"])] == ["T-1:2"]
    assert store.claim_outbox(T0, 10, T0 + 30, "w", types=[]) == []
    store.finish_outbox("p", "T-1:2", "w", delivered=False, retry_at=T0 + 100, error="503")
    item = store.outbox()[1]
    assert item.status == "pending" and item.last_error == "503" and item.claimed_by is None
    assert store.claim_outbox(T0 + 99, 10, T0 + 130, "w", types=["notify"]) == []
    again = store.claim_outbox(T0 + 100, 10, T0 + 130, "w", types=["notify"], max_attempts=2)
    assert [(i.id, i.attempts) for i in again] == [("T-1:2", 2)]
    store.finish_outbox("p", "T-1:2", "w", delivered=False, retry_at=T0 + 200, error="503")
    # two hand-overs done: the next claim marks it dead instead of handing it over
    assert store.claim_outbox(T0 + 300, 10, T0 + 330, "w", types=["notify"], max_attempts=2) == []
    assert store.outbox(status="dead")[0].id == "T-1:2"
    store.claim_outbox(T0, 10, T0 + 30, "w", types=["send"])
    store.finish_outbox("p", "T-1:1", "w", delivered=False, error="bad request")
    assert {i.id for i in store.outbox(status="dead")} == {"T-1:1", "T-1:2"}


def test_release_claims(store: Store) -> None:
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", 1)]))
    store.claim_outbox(T0, 10, T0 + 60, "dead-worker")
    assert store.claim_outbox(T0 + 1, 10, T0 + 61, "w") == []
    assert store.release_claims() == 1
    assert [i.attempts for i in store.claim_outbox(T0 + 1, 10, T0 + 61, "w")] == [2]


def test_tx_claim_reports_the_items_it_finds_dead(store: Store) -> None:
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", 1), _action("T-1", 2)]))
    first = store.atomic(lambda tx: tx.claim_outbox(T0, 1, T0 + 60, "w", max_attempts=1))
    assert [i.id for i in first.items] == ["T-1:1"] and first.dead == []
    # the lease of the last allowed attempt lapses: the next claim finds it dead and says so
    got = store.atomic(lambda tx: tx.claim_outbox(T0 + 60, 10, T0 + 120, "w2", max_attempts=1))
    assert [i.id for i in got.items] == ["T-1:2"]
    assert [(i.id, i.status, i.last_error) for i in got.dead] == [("T-1:1", "dead", "lease lapsed")]
    assert [i.status for i in store.outbox()] == ["dead", "pending"]


def test_finish_says_whether_it_changed_the_item(store: Store) -> None:
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", 1), _action("T-1", 2)]))
    store.claim_outbox(T0, 10, T0 + 60, "w1")
    # with live_at: only the worker holding a live lease, on a pending item
    assert not store.finish_outbox("p", "T-1:1", "w2", delivered=True, live_at=T0 + 1)
    assert not store.finish_outbox("p", "T-1:1", "w1", delivered=True, live_at=T0 + 60)
    assert not store.finish_outbox("p", "nope", "w1", delivered=True, live_at=T0 + 1)
    assert store.outbox()[0].status == "pending" and store.outbox()[0].claimed_by == "w1"
    assert store.finish_outbox("p", "T-1:1", "w1", delivered=True, live_at=T0 + 59.5)
    assert not store.finish_outbox("p", "T-1:1", "w1", delivered=True, live_at=T0 + 1)
    assert not store.finish_outbox("p", "T-1:1", "w1", delivered=True)  # delivered already
    retry: dict[str, Any] = {
        "delivered": False,
        "retry_at": T0 + 500,
        "error": "busy",
        "live_at": T0 + 2,
    }
    assert not store.finish_outbox("p", "T-1:2", "w2", **retry)
    assert store.finish_outbox("p", "T-1:2", "w1", **retry)
    item = store.outbox()[1]
    assert (item.status, item.available_at, item.last_error, item.claimed_by) == (
        "pending",
        T0 + 500,
        "busy",
        None,
    )
    assert not store.finish_outbox("p", "T-1:2", "w1", **retry)
    assert store.claim_outbox(T0 + 499, 10, T0 + 530, "w1") == []
    store.claim_outbox(T0 + 500, 10, T0 + 530, "w1")
    assert store.finish_outbox("p", "T-1:2", "w1", delivered=False, error="gone", live_at=T0 + 501)
    assert [(i.status, i.last_error) for i in store.outbox()] == [
        ("delivered", None),
        ("dead", "gone"),
    ]


# -- rejected -----------------------------------------------------------------------------------
def test_rejected_events_are_kept_once_per_content_and_reason(store: Store) -> None:
    r1 = Rejected(
        {"id": "e1", "type": "x", "case": "T-1"}, "unknown_case", "no case", T0, (("p", "T-1"),)
    )
    r2 = Rejected({"raw": "{not json"}, "invalid", "not JSON", T0 + 1)
    store.atomic(lambda tx: [tx.add_rejected(r1), tx.add_rejected(r2), tx.add_rejected(r1)])
    got = store.rejected()
    assert [(r.reason, r.event) for r in got] == [("unknown_case", r1.event), ("invalid", r2.event)]
    assert got[0].cases == (("p", "T-1"),) and got[0].message == "no case" and got[0].at == T0
    assert set(got[0].to_dict()) >= {"event", "reason", "message", "at"}
    assert got[0]["at"].startswith("2027-02-01T09:00:00")
    assert [r.event for r in store.rejected(case="T-1")] == [r1.event]


# -- files --------------------------------------------------------------------------------------
def test_sqlite_file_reopens_with_its_data_and_schema(
    tmp_path: Path, playbook: carepath.Playbook
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = open_store(url)
    st, acts = _case(playbook, "T-1")
    s.atomic(lambda tx: [tx.save(st, T0), tx.add_outbox(acts)])
    assert s.schema_version() == 3
    s.close()
    s2 = open_store(url, migrate=False)
    assert s2.get(playbook.id, "T-1") == st and len(s2.outbox()) == len(acts)
    s2.close()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepath.runtime.sqlite import parse_sqlite_url

    assert parse_sqlite_url("sqlite:///rel.db") == ("rel.db", {})
    assert parse_sqlite_url("sqlite:////abs/x.db") == ("/abs/x.db", {})
    assert parse_sqlite_url("sqlite://:memory:") == (":memory:", {})
    assert parse_sqlite_url("sqlite:///x.db?synchronous=normal") == (
        "x.db",
        {"synchronous": "normal"},
    )
    monkeypatch.chdir(tmp_path)
    s = open_store("sqlite:///rel.db?synchronous=normal")
    s.close()
    assert (tmp_path / "rel.db").is_file()
    with pytest.raises(StoreError):
        open_store("sqlite://host/x.db")
    with pytest.raises(StoreError):
        open_store("mysql://x")
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{tmp_path / 'absent.db'}", create=False)


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    import sqlite3

    p = tmp_path / "new.db"
    c = sqlite3.connect(p)
    c.execute("PRAGMA user_version = 99")
    c.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(f"sqlite:///{p}")


def test_finish_delivered_ends_many_as_finish_outbox_ends_each(store: Store) -> None:
    # the bulk end of a claim (one statement for all, the SQLite store) answers and writes what
    # ending the items one by one would: an item delivered already is not changed again
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", n) for n in range(1, 5)]))
    store.atomic(lambda tx: tx.add_outbox([_action("T-2", 1, pb="q")]))
    store.claim_outbox(T0, 10, T0 + 60, "w")
    assert store.finish_outbox("p", "T-1:2", "other", delivered=True, delivered_at=T0 + 1)
    keys = [("p", "T-1:1"), ("p", "T-1:2"), ("q", "T-2:1"), ("p", "nope"), ("p", "T-1:4")]
    oks = store.atomic(lambda tx: tx.finish_delivered(keys, "w", T0 + 5))
    assert oks == [True, False, True, False, True]
    got = {(i.playbook, i.id): i for i in store.outbox()}
    assert [(got[k].status, got[k].available_at, got[k].claimed_by) for k in keys if k in got] == [
        ("delivered", T0 + 5, None),
        ("delivered", T0 + 1, None),  # its own delivery instant stays
        ("delivered", T0 + 5, None),
        ("delivered", T0 + 5, None),
    ]
    assert got[("p", "T-1:3")].status == "pending" and got[("p", "T-1:3")].claimed_by == "w"


def test_claimed_items_are_the_rows_the_claim_leaves(store: Store) -> None:
    # a claim answers with its items as the store then holds them (attempts, lease, worker, and
    # for an item found dead its status and last error), without reading them twice
    store.atomic(lambda tx: tx.add_outbox([_action("T-1", n, at=T0 + n) for n in range(1, 4)]))
    store.claim_outbox(T0 + 1, 1, T0 + 31, "w1", max_attempts=1)
    got = store.atomic(lambda tx: tx.claim_outbox(T0 + 40, 10, T0 + 70.5, "w2", max_attempts=1))
    held = {i.id: i for i in store.outbox()}
    assert [i.id for i in got.items] == ["T-1:2", "T-1:3"] and [i.id for i in got.dead] == ["T-1:1"]
    for item in [*got.items, *got.dead]:
        assert item == held[item.id]
    assert got.items[0].claimed_until == T0 + 70.5 and got.items[0].attempts == 1
