"""The runtime (SPEC §7) on every store of the store suite: routing, entry and re-entry,
idempotency, rejections, wake-ups, the outbox, delivery with back-off and leases, batching.
Time is injected (a :class:`ManualClock`); nothing sleeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import carepath
from carepath.drivers.simulate import Simulator
from carepath.events import Event
from carepath.runtime import Runtime, Store, SubmitResult
from carepath.runtime.clock import ManualClock
from carepath.state import Action, CaseState
from test_store import STORE_FACTORIES

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

MINI = """
carepath: 1
id: mini
version: "VERSION"
timezone: UTC
events:
  ticket.opened: {priority: {type: enum, values: [low, high], default: low}}
fields:
  priority: {type: enum, values: [low, high], default: low}
tiers:
  L1: {title: Agent}
start:
  on: ticket.opened
  key: event.case
  set: {priority: =event.priority}
  reentry: REENTRY
  min_interval: 1h
stages:
  new:
    initial: true
    enter: [{send: ack}]
    on:
      ticket.answered: done
    after:
      - {in: 10m, do: [{notify: L1}]}
      - {in: 30m, to: done}
  done: {final: true}
"""


def mini(reentry: str = "after_exit", version: str = "1") -> carepath.Playbook:
    return carepath.loads(MINI.replace("REENTRY", reentry).replace("VERSION", version))


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = STORE_FACTORIES[request.param](tmp_path)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def ev(i: Any, type_: str, minutes: float, case: str | None = "T-1", **data: Any) -> Event:
    return Event(str(i), type_, T0 + timedelta(minutes=minutes), case, data)


def line(i: Any, type_: str, minutes: float, case: str | None = "T-1", **data: Any) -> str:
    return json.dumps(ev(i, type_, minutes, case, **data).to_dict())


# -- submit ---------------------------------------------------------------------------------------
def test_submit_applies_opens_and_is_idempotent(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock)
    r = rt.submit(ev("e1", "ticket.opened", 0, priority="high"))
    assert isinstance(r, SubmitResult) and r.status == "applied" and r.reason is None
    assert [(s.playbook, s.case, s.stage) for s in r.cases] == [("mini", "T-1", "new")]
    assert [a.type for a in r.actions] == ["send"]
    st = store.get("mini", "T-1")
    assert (
        st is not None
        and st.data["priority"] == "high"
        and st.next_wakeup == T0 + timedelta(minutes=10)
    )
    assert [i.id for i in store.outbox()] == ["T-1:1"]
    # a known id is a duplicate whatever its content
    again = rt.submit(ev("e1", "ticket.answered", 5))
    assert again.status == "duplicate" and again.cases == []
    assert store.get("mini", "T-1") == st
    assert rt.submit(ev("e2", "ticket.answered", 5)).status == "applied"
    assert store.get("mini", "T-1").stage == "done"  # type: ignore[union-attr]
    assert store.processed_count() == 2


def test_ignored_events(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini("never")], store, clock=clock)
    assert rt.submit(ev("x", "nobody.cares", 0)).status == "ignored"
    rt.submit(ev("e1", "ticket.opened", 0))
    rt.submit(ev("e2", "ticket.answered", 1))
    r = rt.submit(ev("e3", "ticket.opened", 120))  # ended, reentry never
    assert r.status == "ignored"
    assert rt.submit(ev("e3", "ticket.opened", 121)).status == "duplicate"  # ignored ids are known


def test_reentry_after_exit_with_min_interval_continues_the_sequence(
    store: Store, clock: ManualClock
) -> None:
    rt = Runtime([mini("after_exit")], store, clock=clock)
    rt.submit(ev("e1", "ticket.opened", 0))
    assert (
        rt.submit(ev("e1b", "ticket.opened", 5)).status == "applied"
    )  # open case: handled, no new case
    rt.submit(ev("e2", "ticket.answered", 10))
    assert rt.submit(ev("e3", "ticket.opened", 30)).status == "ignored"  # within min_interval (1h)
    r = rt.submit(ev("e4", "ticket.opened", 61))
    assert (
        r.status == "applied"
        and r.cases[0].stage == "new"
        and r.cases[0].opened == T0 + timedelta(minutes=61)
    )
    ids = [i.id for i in store.outbox()]
    assert len(ids) == len(set(ids)) and ids[-1] == r.actions[-1].id
    assert int(ids[-1].split(":")[1]) > int(ids[0].split(":")[1])


def test_reentry_always_restarts_an_open_case(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini("always")], store, clock=clock)
    rt.submit(ev("e1", "ticket.opened", 0))
    r = rt.submit(ev("e2", "ticket.opened", 90))
    assert r.status == "applied" and r.cases[0].opened == T0 + timedelta(minutes=90)
    assert len({i.id for i in store.outbox()}) == len(store.outbox())


def test_bad_input_is_rejected_recorded_and_processing_goes_on(
    store: Store, clock: ManualClock
) -> None:
    rt = Runtime([mini()], store, clock=clock)
    rt.submit(ev("e1", "ticket.opened", 10))
    bad: list[Any] = [
        "{not json",  # malformed line
        "[1, 2]",  # JSON, not an object
        json.dumps({"id": "b1", "at": "2027-02-01T09:00:00+00:00"}),  # missing type
        json.dumps({"id": "b2", "type": "ticket.answered", "at": 5}),  # mistyped at
        json.dumps(
            {"id": "b3", "type": "ticket.answered", "at": "2027-02-01T09:00:00"}
        ),  # naive at
        json.dumps(
            {
                "id": "b4",
                "type": "ticket.opened",
                "at": "2027-02-01T09:00:00Z",
                "case": "T-2",
                "data": {"priority": "extreme"},
            }
        ),  # payload breaks the declared type
        {
            "id": "b5",
            "type": "ticket.answered",
            "at": "2027-02-01T09:00:00Z",
            "case": "T-2",
            "data": [1],
        },
        ev("b6", "ticket.answered", 20, case="T-404"),  # unknown case
        ev("b7", "ticket.answered", 5),  # older than the case's now
        ev("b8", "ticket.answered", 20, case=None),  # no case key
    ]
    results = [rt.submit(b) for b in bad]
    assert [r.status for r in results] == ["rejected"] * len(bad)
    assert [r.reason for r in results] == ["invalid"] * 7 + [
        "unknown_case",
        "out_of_order",
        "invalid",
    ]
    rej = store.rejected()
    assert len(rej) == len(bad)
    assert rej[0].event == {"raw": "{not json"} and "JSON" in rej[0].message
    assert rej[7].event["case"] == "T-404" and rej[7].reason == "unknown_case"
    assert all(r.message for r in rej)
    assert [r.reason for r in store.rejected(case="T-404")] == ["unknown_case"]
    # processing continues, and a rejected id stays unseen: it can be sent again, fixed
    assert rt.submit(ev("b7", "ticket.answered", 15)).status == "applied"
    assert store.get("mini", "T-1").stage == "done"  # type: ignore[union-attr]
    assert rt.counters["rejected"] == len(bad)


@pytest.mark.parametrize("value", [5, 1.5, True, None, [1, 2], {1, 2}], ids=repr)
def test_a_decoded_json_value_that_is_not_an_object_is_rejected_not_raised(
    store: Store, clock: ManualClock, value: Any
) -> None:
    """A host may hand over what ``json.loads`` gave it: anything but an object is ``invalid``,
    recorded as its JSON text, and the runtime goes on."""
    rt = Runtime([mini()], store, clock=clock)
    r = rt.submit(value)
    assert (r.status, r.reason) == ("rejected", "invalid")
    assert r.message is not None and "JSON object" in r.message
    (rej,) = store.rejected()
    assert rej.event == {"raw": json.dumps(value, default=str)}
    assert rt.submit(ev("e1", "ticket.opened", 0)).status == "applied"


def test_submit_raw(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock)
    assert rt.submit_raw(line("e1", "ticket.opened", 0)).status == "applied"
    assert rt.submit_raw(b"\xff\xfe garbage").status == "rejected"
    assert store.rejected()[0].event["raw"].endswith("garbage")


def test_retired_playbook_version_is_a_mismatch(store: Store, clock: ManualClock) -> None:
    Runtime([mini(version="1")], store, clock=clock).submit(ev("e1", "ticket.opened", 0))
    rt2 = Runtime([mini(version="2")], store, clock=clock)
    r = rt2.submit(ev("e2", "ticket.answered", 5))
    assert r.status == "rejected" and r.reason == "playbook_mismatch"
    assert store.rejected()[0].reason == "playbook_mismatch"
    # the old version's cases are not woken by the new version's runtime
    assert rt2.run_due(T0 + timedelta(hours=2)) == 0
    assert rt2.submit(ev("e3", "ticket.opened", 0, case="T-2")).status == "applied"


def test_routing_to_several_playbooks(store: Store, clock: ManualClock) -> None:
    support = carepath.load(ROOT / "examples" / "vn-retail-support.yaml")
    rt = Runtime([mini(), support], store, clock=clock)
    r = rt.submit(ev("e1", "ticket.opened", 0))
    assert [s.playbook for s in r.cases] == ["mini"]
    r = rt.submit(ev("e2", "case.opened", 0, case="T-9", channel="email"))
    assert [s.playbook for s in r.cases] == ["vn-retail-support"]
    assert {(s.playbook, s.case) for s in store.cases()} == {
        ("mini", "T-1"),
        ("vn-retail-support", "T-9"),
    }


def test_one_playbook_rejecting_rejects_the_event_everywhere(
    store: Store, clock: ManualClock
) -> None:
    a, b = (
        mini(),
        carepath.loads(
            MINI.replace("id: mini", "id: other")
            .replace("REENTRY", "after_exit")
            .replace("VERSION", "1")
        ),
    )
    rt = Runtime([a, b], store, clock=clock)
    rt.submit(ev("e1", "ticket.opened", 10))
    st_a, st_b = store.get("mini", "T-1"), store.get("other", "T-1")
    assert rt.submit(ev("e2", "ticket.answered", 5)).reason == "out_of_order"
    assert (store.get("mini", "T-1"), store.get("other", "T-1")) == (st_a, st_b)


# -- wake-ups -----------------------------------------------------------------------------------
def test_run_due_advances_due_cases_only(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock)
    for i in range(5):
        rt.submit(ev(f"o{i}", "ticket.opened", i, case=f"T-{i}"))
    assert rt.run_due(T0 + timedelta(minutes=9)) == 0
    assert rt.run_due(T0 + timedelta(minutes=12)) == 3  # T-0, T-1, T-2 at 10, 11, 12 minutes
    assert rt.run_due(T0 + timedelta(minutes=12)) == 0
    assert len(store.outbox(status="pending")) == 5 + 3
    clock.set(T0 + timedelta(hours=1))
    assert rt.run_due() == 5  # the clock: T-3/T-4 reminders and all five timeouts to `done`
    assert all(s.ended for s in store.cases())
    assert rt.run_due(T0 + timedelta(days=1)) == 0


def test_run_due_in_small_batches(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock, batch=2)
    for i in range(7):
        rt.submit(ev(f"o{i}", "ticket.opened", 0, case=f"T-{i}"))
    assert rt.run_due(T0 + timedelta(minutes=10)) == 7


# -- delivery -----------------------------------------------------------------------------------
def test_deliver_hands_over_once_and_keeps_ids(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock)
    got: list[tuple[Action, CaseState | None]] = []

    @rt.action("send")
    def send(action: Action, state: CaseState | None) -> None:
        got.append((action, state))

    rt.submit(ev("e1", "ticket.opened", 0))
    rt.run_due(T0 + timedelta(minutes=10))
    assert rt.deliver(T0 + timedelta(minutes=10)) == 1  # the notify has no handler: stays pending
    assert [(a.id, a.type) for a, _ in got] == [("T-1:1", "send")]
    assert got[0][1] is not None and got[0][1].case == "T-1"
    assert rt.deliver(T0 + timedelta(minutes=10)) == 0
    assert {i.type: i.status for i in store.outbox()} == {"send": "delivered", "notify": "pending"}
    rt.handlers["*"] = lambda a, s: got.append((a, s))
    assert rt.deliver(T0 + timedelta(minutes=10)) == 1
    assert [a.type for a, _ in got] == ["send", "notify"]
    assert all(i.status == "delivered" and i.attempts == 1 for i in store.outbox())


def test_failing_handler_backs_off_on_the_runtime_clock_then_dies(
    store: Store, clock: ManualClock
) -> None:
    rt = Runtime([mini()], store, clock=clock, max_attempts=4, backoff=timedelta(seconds=10))
    calls: list[datetime] = []

    @rt.action("*")
    def flaky(action: Action, state: CaseState | None) -> None:
        calls.append(clock())
        raise ConnectionError("SMTP down")

    rt.submit(ev("e1", "ticket.opened", 0))
    assert rt.deliver() == 1
    item = store.outbox()[0]
    assert (
        item.status == "pending" and item.attempts == 1 and "SMTP down" in (item.last_error or "")
    )
    assert rt.deliver() == 0  # not before the back-off
    clock.advance(9)
    assert rt.deliver() == 0
    clock.advance(1)
    assert rt.deliver() == 1  # 10 s
    clock.advance(19)
    assert rt.deliver() == 0
    clock.advance(1)
    assert rt.deliver() == 1  # +20 s
    clock.advance(40)
    assert rt.deliver() == 1  # +40 s: the 4th hand-over fails: dead
    assert store.outbox()[0].status == "dead" and store.outbox()[0].attempts == 4
    clock.advance(3600)
    assert rt.deliver() == 0 and len(calls) == 4


def test_claims_of_a_killed_worker_lapse_within_60_s(store: Store, clock: ManualClock) -> None:
    rt = Runtime([mini()], store, clock=clock)
    rt.submit(ev("e1", "ticket.opened", 0))
    # a worker claimed the item and died before finishing
    store.claim_outbox(clock().timestamp(), 10, clock().timestamp() + 60, "killed")
    seen: list[str] = []
    rt.handlers["send"] = lambda a, s: seen.append(a.id)
    assert rt.deliver() == 0
    clock.advance(60)
    assert rt.deliver() == 1 and seen == ["T-1:1"]
    item = store.outbox()[0]
    assert item.status == "delivered" and item.attempts == 2


# -- batching and the simulated timeline ----------------------------------------------------------
def _example(name: str) -> tuple[carepath.Playbook, list[str]]:
    pb = carepath.load(ROOT / "examples" / f"{name}.yaml")
    lines = (
        (ROOT / "examples" / "events" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    )
    return pb, [x for x in lines if x.strip()]


@pytest.mark.parametrize("name", ["vn-retail-support", "omnichannel-journey"])
@pytest.mark.parametrize("batch", [1, 16])
def test_timeline_equals_the_in_memory_simulator(store: Store, name: str, batch: int) -> None:
    pb, lines = _example(name)
    until = datetime(2027, 6, 1, tzinfo=UTC)
    clock = ManualClock()
    rt = Runtime([pb], store, clock=clock)
    results = rt.submit_many(lines, batch=batch, timeline=True)
    assert {r.status for r in results} == {"applied"}
    rt.run_due(until)
    sim = Simulator(pb)
    sim_actions: list[dict[str, Any]] = []
    for s in sim.run([Event.from_dict(json.loads(x)) for x in lines], until=until):
        if s.step is not None:
            sim_actions.extend(a.to_dict() for a in s.step.actions)
    assert {s.case: s.to_json() for s in store.cases()} == {
        k: s.to_json() for k, s in sim.cases.items()
    }
    assert sorted((i.action.to_dict() for i in store.outbox()), key=lambda a: a["id"]) == sorted(
        sim_actions, key=lambda a: a["id"]
    )


def test_batched_and_unbatched_submission_agree(tmp_path: Path) -> None:
    pb, lines = _example("vn-retail-support")
    out = []
    for batch in (1, 10, 1000):
        (tmp_path / str(batch)).mkdir()
        s = STORE_FACTORIES["sqlite-file"](tmp_path / str(batch))
        rt = Runtime([pb], s, clock=ManualClock())
        statuses = [r.status for r in rt.submit_many(lines + lines[:5], batch=batch)]
        out.append((statuses, [c.to_json() for c in s.cases()], [i.to_dict() for i in s.outbox()]))
        s.close()
    assert out[0] == out[1] == out[2]
    assert out[0][0][-5:] == ["duplicate"] * 5


def test_options_are_checked(store: Store) -> None:
    with pytest.raises(ValueError):
        Runtime([], store)
    with pytest.raises(ValueError):
        Runtime([mini(), mini()], store)
    with pytest.raises(ValueError):
        Runtime([mini()], store, lease=timedelta(seconds=61))
    with pytest.raises(ValueError):
        Runtime([mini()], store, clock=lambda: datetime(2027, 1, 1)).submit(
            ev("e", "ticket.opened", 0)
        )


def test_hostile_event_lines_are_rejected_with_a_reason_not_a_crash(tmp_path: Path) -> None:
    """Untrusted events are bounded: a huge line, a deep nesting bomb and deep `data` are
    rejected with a reason and recorded; nothing raises."""
    from carepath.events import MAX_EVENT_BYTES
    from carepath.runtime import open_store

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    rt = Runtime(
        [carepath.load(ROOT / "examples" / "vn-retail-support.yaml")],
        store,
        clock=lambda: datetime(2027, 2, 1, tzinfo=UTC),
    )
    deep_data = {
        "id": "d",
        "type": "case.opened",
        "at": "2027-02-01T09:00:00+07:00",
        "case": "T-9",
        "data": {"x": json.loads("[" * 40 + "]" * 40)},
    }
    lines = ["[" * 100_000 + "]" * 100_000, "x" * (MAX_EVENT_BYTES + 1), json.dumps(deep_data)]
    for line in lines:
        r = rt.submit(line)
        assert r.status == "rejected" and r.reason == "invalid", r
    messages = [x.message for x in store.rejected()]
    assert len(messages) == 3
    assert "deeper" in messages[0] and "limit" in messages[1] and "deeper" in messages[2]
    store.close()
