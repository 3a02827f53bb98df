"""Pull delivery (``claim``/``ack``/``nack``), the ``action.delivered``/``action.failed`` events
and the worker loop ``run_forever`` (SPEC §9), on every store of the store suite.

Time is injected (a :class:`ManualClock`); nothing sleeps: the loop test waits on events its
handlers set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath.runtime import Runtime, Store
from carepath.runtime.clock import ManualClock
from test_store import STORE_FACTORIES

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

# a playbook that follows its deliveries: the reserved events move the case
FOLLOW = """
carepath: 1
id: follow
version: "1"
timezone: UTC
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello}, {notify: L1, in: 1h, keep: true}]
    on:
      action.delivered:
        - {when: 'event.action.type == "send"', to: sent}
      action.failed: {to: failed, set: {why: =event.reason}}
      ticket.closed: done
    after: [{in: 1d, to: done}]
  sent:
    on: {ticket.closed: done}
    after: [{in: 1d, to: done}]
  failed:
    on: {ticket.closed: done}
    after: [{in: 1d, to: done}]
  done: {final: true}
fields:
  why: {type: string}
tiers:
  L1: {title: Agent}
"""

# the same without a word about deliveries: no reserved event is submitted to its cases
QUIET = """
carepath: 1
id: quiet
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


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def _rt(store: Store, clock: ManualClock, *texts: str, **kw: Any) -> Runtime:
    return Runtime([carepath.loads(t) for t in texts or (FOLLOW,)], store, clock=clock, **kw)


def _open(rt: Runtime, case: str = "T-1", at: datetime = T0) -> None:
    r = rt.submit(
        {"id": f"open-{case}", "type": "ticket.opened", "at": at.isoformat(), "case": case}
    )
    assert r.status == "applied", r


# -- claim ----------------------------------------------------------------------------------------
def test_claim_leases_due_items_once_until_the_lease_lapses(
    store: Store, clock: ManualClock
) -> None:
    rt, other = _rt(store, clock), _rt(store, clock)
    _open(rt)
    got = rt.claim()
    assert [(i.id, i.type, i.status, i.attempts) for i in got] == [("T-1:1", "send", "pending", 1)]
    assert got[0].to_dict()["action"]["params"]["template"] == "hello"
    assert rt.claim() == [] and other.claim() == []  # leased, and the notify is not due yet
    clock.advance(59)
    assert other.claim() == []
    clock.advance(1)  # the lease has lapsed: anyone may take it, one attempt more
    again = other.claim(lease=timedelta(seconds=10))
    assert [(i.id, i.attempts) for i in again] == [("T-1:1", 2)]
    assert rt.ack("T-1:1") is False  # not rt's lease any more
    clock.advance(hours=1)
    assert rt.claim(types=["notify"]) == []  # the delayed action is emitted by its wake-up
    assert rt.run_due() == 1
    assert [i.type for i in rt.claim(types=["notify"])] == ["notify"]


def test_claim_limit_types_and_bad_arguments(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, QUIET)
    for n in range(5):
        _open(rt, f"T-{n}")
    assert rt.claim(types=["notify"]) == [] and rt.claim(types=[]) == []
    assert [i.case for i in rt.claim(limit=2)] == ["T-0", "T-1"]
    assert [i.case for i in rt.claim(limit=10, types="send")] == ["T-2", "T-3", "T-4"]
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            rt.claim(limit=bad)  # type: ignore[arg-type]
    for lease in (timedelta(0), timedelta(seconds=61)):
        with pytest.raises(ValueError, match="at most 60 s"):
            rt.claim(lease=lease)


# -- ack / nack -----------------------------------------------------------------------------------
def test_ack_only_under_the_callers_live_lease(store: Store, clock: ManualClock) -> None:
    rt, other = _rt(store, clock, QUIET), _rt(store, clock, QUIET)
    _open(rt)
    assert rt.ack("T-1:1") is False  # not claimed
    [item] = rt.claim(lease=timedelta(seconds=30))
    assert other.ack(item.id) is False and other.nack(item.id) is False
    assert rt.ack("T-1:99") is False
    assert store.outbox()[0].status == "pending"
    assert rt.ack(item.id) is True
    assert [(i.status, i.attempts) for i in store.outbox()] == [("delivered", 1)]
    assert rt.ack(item.id) is False and rt.nack(item.id) is False  # answered already


def test_ack_after_the_lease_lapsed_changes_nothing(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, QUIET)
    _open(rt)
    [item] = rt.claim(lease=timedelta(seconds=5))
    clock.advance(5)
    assert rt.ack(item.id) is False
    assert rt.nack(item.id, permanent=True) is False
    got = store.outbox()[0]
    assert (got.status, got.last_error) == ("pending", None)
    assert [i.attempts for i in rt.claim()] == [2]


def test_nack_backs_off_then_dies(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, QUIET, max_attempts=3)
    _open(rt)
    rt.claim()
    assert rt.nack("T-1:1", retry_in=timedelta(minutes=10), reason="503 from Zalo") is True
    item = store.outbox()[0]
    assert (item.status, item.last_error, item.claimed_by) == ("pending", "503 from Zalo", None)
    clock.advance(minutes=10, seconds=-1)
    assert rt.claim() == []  # not before retry_in
    clock.advance(1)
    assert [i.attempts for i in rt.claim()] == [2]
    assert rt.nack("T-1:1", retry_in=timedelta(0)) is True
    assert [i.attempts for i in rt.claim()] == [3]
    # the last allowed attempt: a nack makes it dead, whatever retry_in says
    assert rt.nack("T-1:1", retry_in=timedelta(seconds=1), reason="still 503") is True
    assert [(i.status, i.last_error) for i in store.outbox()] == [("dead", "still 503")]
    clock.advance(hours=1)
    assert rt.claim() == []
    with pytest.raises(ValueError, match="retry_in"):
        rt.nack("T-1:1", retry_in=timedelta(seconds=-1))


def test_nack_permanent_is_dead_at_once(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, QUIET)
    _open(rt)
    rt.claim()
    assert rt.nack("T-1:1", permanent=True, reason="no such Zalo user") is True
    assert [(i.status, i.attempts, i.last_error) for i in store.outbox()] == [
        ("dead", 1, "no such Zalo user")
    ]


def test_same_id_in_two_playbooks_needs_the_playbook(store: Store, clock: ManualClock) -> None:
    other = QUIET.replace("id: quiet", "id: quiet2")
    rt = _rt(store, clock, QUIET, other)
    _open(rt)
    assert sorted((i.playbook, i.id) for i in rt.claim()) == [
        ("quiet", "T-1:1"),
        ("quiet2", "T-1:1"),
    ]
    with pytest.raises(ValueError, match="several playbooks"):
        rt.ack("T-1:1")
    assert rt.ack("T-1:1", playbook="quiet2") is True
    assert rt.nack("T-1:1", permanent=True) is True  # the one left
    assert {(i.playbook, i.status) for i in store.outbox()} == {
        ("quiet", "dead"),
        ("quiet2", "delivered"),
    }


# -- action.delivered / action.failed -------------------------------------------------------------
def test_ack_submits_action_delivered_to_the_case(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock)
    _open(rt)
    clock.advance(30)
    rt.claim()
    assert rt.ack("T-1:1")
    st = store.get("follow", "T-1")
    assert st is not None and st.stage == "sent" and st.now == T0 + timedelta(seconds=30)
    assert store.processed_count() == 2
    # the event's id is the action's: seen, so a second delivery report is a duplicate
    again = rt.submit(
        {
            "id": "T-1:1/delivered",
            "type": "action.delivered",
            "at": st.now.isoformat(),
            "case": "T-1",
        }
    )
    assert again.status == "duplicate"


def test_handler_delivery_submits_action_delivered(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock)
    seen: list[str] = []
    rt.handlers["send"] = lambda a, s: seen.append(a.id)
    _open(rt)
    assert rt.deliver() == 1 and seen == ["T-1:1"]
    assert store.get("follow", "T-1").stage == "sent"  # type: ignore[union-attr]


def test_permanent_nack_submits_action_failed_with_reason(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock)
    _open(rt)
    rt.claim()
    assert rt.nack("T-1:1", permanent=True, reason="blocked by the user")
    st = store.get("follow", "T-1")
    assert st is not None and st.stage == "failed" and st.data["why"] == "blocked by the user"


def test_retries_are_not_reported_only_the_end_is(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, max_attempts=2)
    calls: list[str] = []

    def fail(action: Any, state: Any) -> None:
        calls.append(action.id)
        raise ConnectionError("zalo down")

    rt.handlers["send"] = fail
    _open(rt)
    assert rt.deliver() == 1
    assert store.get("follow", "T-1").stage == "open"  # type: ignore[union-attr]
    clock.advance(rt.backoff)
    assert rt.deliver() == 1 and calls == ["T-1:1", "T-1:1"]
    st = store.get("follow", "T-1")
    assert (
        st is not None and st.stage == "failed" and st.data["why"] == "ConnectionError: zalo down"
    )


def test_a_lapsed_last_lease_is_reported_failed(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock, max_attempts=1)
    _open(rt)
    rt.claim(lease=timedelta(seconds=10))  # the claimer dies
    clock.advance(10)
    assert rt.claim() == []
    assert [(i.status, i.last_error) for i in store.outbox()] == [("dead", "lease lapsed")]
    st = store.get("follow", "T-1")
    assert st is not None and st.stage == "failed" and st.data["why"] == "lease lapsed"


def test_no_reserved_event_where_the_playbook_does_not_ask(
    store: Store, clock: ManualClock
) -> None:
    rt = _rt(store, clock, QUIET)
    _open(rt)
    rt.claim()
    assert rt.ack("T-1:1")
    assert store.processed_count() == 1 and store.rejected() == []
    assert store.get("quiet", "T-1").stage == "open"  # type: ignore[union-attr]


def test_the_report_on_an_ended_case_is_ignored(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock)
    _open(rt)
    rt.claim()
    clock.advance(10)
    rt.submit({"id": "c", "type": "ticket.closed", "at": clock.now.isoformat(), "case": "T-1"})
    assert rt.ack("T-1:1")
    assert store.get("follow", "T-1").stage == "done"  # type: ignore[union-attr]
    assert store.rejected() == []


# -- the worker loop ------------------------------------------------------------------------------
def test_run_forever_fires_wakeups_and_delivers_until_stopped(
    store: Store, clock: ManualClock
) -> None:
    rt = _rt(store, clock)
    got: dict[str, threading.Event] = {"send": threading.Event(), "notify": threading.Event()}
    rt.handlers["*"] = lambda a, s: got[a.type].set()
    stop = threading.Event()
    worker = threading.Thread(target=rt.run_forever, kwargs={"stop": stop, "poll": 0.01})
    worker.start()
    try:
        _open(rt)
        assert got["send"].wait(30)
        assert not got["notify"].is_set()  # due in an hour of the injected clock
        clock.advance(hours=1)
        assert got["notify"].wait(30)
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()
    assert [i.status for i in store.outbox()] == ["delivered", "delivered"]
    assert store.get("follow", "T-1").stage == "sent"  # type: ignore[union-attr]


def test_run_forever_returns_at_once_when_stopped(store: Store, clock: ManualClock) -> None:
    rt = _rt(store, clock)
    stop = threading.Event()
    stop.set()
    rt.run_forever(stop=stop, poll=3600)
    with pytest.raises(ValueError, match="poll"):
        rt.run_forever(stop=stop, poll=0)


def test_playbooks_may_handle_the_reserved_events_without_a_finding() -> None:
    pb = carepath.loads(FOLLOW)
    assert pb.warnings == ()
    assert {"action.delivered", "action.failed"} <= pb.event_types


# a send with a fallback: the runtime reports its end though the playbook never names the events
FALLBACK = """
carepath: 1
id: fallback
version: "1"
timezone: UTC
fields:
  channel: {type: enum, values: [zalo, sms, email], default: zalo}
channels: {zalo: {}, sms: {}, email: {}}
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello, fallback: [sms, email]}]
    on: {ticket.closed: done}
    after: [{in: 1d, to: done}]
  done: {final: true}
"""


def test_a_send_with_a_fallback_goes_on_to_the_next_channel(
    store: Store, clock: ManualClock
) -> None:
    rt = _rt(store, clock, FALLBACK)
    _open(rt)
    [first] = rt.claim()
    assert (first.type, first.action.params["channel"]) == ("send", "zalo")
    assert rt.nack(first.id, permanent=True, reason="no Zalo account")
    [second] = rt.claim()
    assert second.action.params["channel"] == "sms" and second.id != first.id
    assert rt.ack(second.id)  # reported too (action.delivered), nothing more is sent
    assert rt.claim() == []
    assert store.processed_count() == 3 and store.rejected() == []
