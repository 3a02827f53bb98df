"""The runtime's allocator (SPEC §10) on SQLite and PostgreSQL: strategies, capacity, calendars,
``assign.queued`` and the retry at the next poll, releases when a case ends, rosters from files;
and, with real worker processes and threads on one store, that no agent ever holds more open
cases than its capacity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carepath
from carepath.runtime import Runtime, Store, open_store
from carepath.runtime.allocation import RosterError, load_roster
from carepath.runtime.clock import ManualClock
from conftest import postgres_schema_url

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)  # a Monday

PLAYBOOK = """
carepath: 1
id: desk
version: "1"
timezone: UTC
tiers: {L1: {}, L2: {}}
calendars:
  office: {hours: {mon-fri: ["08:00-17:00"]}}
events:
  ticket.opened:
    strategy: {type: enum, values: [round_robin, least_loaded, skills], default: round_robin}
    senior: {type: bool, default: false}
fields:
  senior: {type: bool, default: false}
  strategy: string
start: {on: ticket.opened, set: {senior: =event.senior, strategy: =event.strategy}}
stages:
  new:
    initial: true
    enter:
      - {assign: {tier: L2, strategy: skills, skills: [elder]}, when: senior}
      - {assign: {tier: L1, strategy: round_robin}, when: not senior and strategy == "round_robin"}
      - {assign: {tier: L1, strategy: least_loaded}, when: not senior and strategy == "least_loaded"}
    on:
      agent.assigned: open
      ticket.closed: done
  open:
    enter: [{notify: assignee}]
    on:
      ticket.closed: done
  done: {final: true}
"""

ROSTER = [
    {"id": "an", "tiers": ["L1"], "capacity": 2},
    {"id": "binh", "tiers": ["L1"], "capacity": 2},
    {"id": "chi", "tiers": ["L1", "L2"], "skills": ["elder"], "capacity": 1},
    {"id": "dung", "tiers": ["L2"], "skills": ["elder", "vi"], "active": False},
]

URLS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'cases.db'}",
    "postgres": lambda tmp: postgres_schema_url(),
}


@pytest.fixture(params=sorted(URLS))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return URLS[request.param](tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = open_store(url)
    yield s
    s.close()


def _open(k: int, at: datetime = T0, **data: Any) -> dict[str, Any]:
    return {
        "id": f"o{k}",
        "type": "ticket.opened",
        "at": at.isoformat(),
        "case": f"T-{k}",
        "data": data,
    }


def _close(k: int, at: datetime) -> dict[str, Any]:
    return {"id": f"c{k}", "type": "ticket.closed", "at": at.isoformat(), "case": f"T-{k}"}


def _assignee(store: Store, k: int) -> str | None:
    st_ = store.get("desk", f"T-{k}")
    assert st_ is not None
    return st_.data.get("assignee")


def test_round_robin_goes_on_after_the_last_choice_and_skips_full_agents(store: Store) -> None:
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0), roster=ROSTER)
    got = []
    for k in range(5):
        r = rt.submit(_open(k))
        assert r.status == "applied"
        got.append(_assignee(store, k))
    # an, binh, chi, an, binh; then everybody of L1 is full (chi holds 1 of 1)
    assert got == ["an", "binh", "chi", "an", "binh"]
    r = rt.submit(_open(5))
    assert [s.type for s in r.signals] == ["assign.queued"]
    assert r.signals[0].data == {"action": "T-5:1", "tier": "L1", "strategy": "round_robin"}
    assert _assignee(store, 5) is None
    st5 = store.get("desk", "T-5")
    assert st5 is not None and st5.stage == "new" and st5.tier == "L1"
    # the applied agent.assigned goes out with the step: its notify names the agent
    r = rt.submit(_close(1, T0 + timedelta(minutes=5)))  # binh frees one place
    assert r.status == "applied"
    assert rt.run_due() == 0  # the next poll finds binh
    assert _assignee(store, 5) == "binh"
    notes = [i.action for i in store.outbox() if i.type == "notify" and i.case == "T-5"]
    assert [dict(a.params) for a in notes] == [{"to": "assignee", "agent": "binh"}]
    # the round robin goes on after binh
    rt.submit(_close(0, T0 + timedelta(minutes=6)))
    rt.submit(_open(6, T0 + timedelta(minutes=7)))
    assert _assignee(store, 6) == "an"


def test_least_loaded_and_skills(store: Store) -> None:
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0), roster=ROSTER)
    rt.submit(_open(0, strategy="round_robin"))  # an
    rt.submit(_open(1, strategy="least_loaded"))  # binh (an holds 1), ties in roster order
    rt.submit(_open(2, strategy="least_loaded"))  # chi: 0
    rt.submit(_open(3, strategy="least_loaded"))  # an: 1, binh 1 → an
    assert [_assignee(store, k) for k in range(4)] == ["an", "binh", "chi", "an"]
    # skills: only chi has `elder` and is active (dung is not), and chi is full
    r = rt.submit(_open(4, senior=True))
    assert [s.type for s in r.signals] == ["assign.queued"]
    assert r.signals[0].data["skills"] == ["elder"]
    rt.submit(_close(2, T0 + timedelta(minutes=1)))
    rt.run_due()
    assert _assignee(store, 4) == "chi"


def test_an_agent_outside_calendar_hours_is_skipped(store: Store) -> None:
    roster = [
        {"id": "night", "tiers": ["L1"], "calendar": "office"},
        {"id": "day", "tiers": ["L1"]},
    ]
    saturday = T0 + timedelta(days=5)
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(saturday), roster=roster)
    rt.submit(_open(0, saturday))
    assert _assignee(store, 0) == "day"


def test_a_manual_assignment_counts_in_the_load(store: Store) -> None:
    roster = [{"id": "an", "tiers": ["L1"], "capacity": 1}]
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0), roster=roster)
    rt.submit(_open(0))
    assert _assignee(store, 0) == "an"
    r = rt.submit(_open(1))
    assert [s.type for s in r.signals] == ["assign.queued"]
    # the host hands case 0 to someone else: an is free again, the queue moves at the next poll
    rt.submit(
        {
            "id": "m",
            "type": "agent.assigned",
            "at": T0.isoformat(),
            "case": "T-0",
            "data": {"agent": "boss"},
        }
    )
    rt.run_due()
    assert _assignee(store, 1) == "an"


def test_without_a_roster_assign_is_only_an_action(store: Store) -> None:
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0))
    r = rt.submit(_open(0))
    assert [a.type for a in r.actions] == ["assign"] and not r.signals
    assert _assignee(store, 0) is None


def test_a_crash_redelivery_of_the_same_event_does_not_assign_twice(store: Store) -> None:
    rt = Runtime([carepath.loads(PLAYBOOK)], store, clock=ManualClock(T0), roster=ROSTER)
    rt.submit(_open(0))
    assert rt.submit(_open(0)).status == "duplicate"
    rt.submit(_open(1))
    assert [_assignee(store, 0), _assignee(store, 1)] == ["an", "binh"]


@pytest.mark.parametrize(
    ("roster", "message"),
    [
        ("[]\n", None),
        ("- {id: an}\n", "agent 1 (an): `tiers` must be a non-empty list of names"),
        ("- {id: an, tiers: [L1], capacity: -1}\n", "`capacity` must be a whole number"),
        ("- {id: an, tiers: [L1], active: yes}\n", "`active` must be true or false"),
        ("- {id: an, tiers: [L1], team: x}\n", "unknown key 'team'"),
        (
            "- {id: an, tiers: [L1]}\n- {id: an, tiers: [L2]}\n",
            "agent 2 (an): id 'an' is given twice",
        ),
        ("- {tiers: [L1]}\n", "agent 1: `id` must be a non-empty string"),
        ("{id: an}\n", "a roster is a list of agents"),
        ("- [an\n", ":1:"),
        ("- {id: an, tiers: [L9]}\n", "tier 'L9' is not a tier of the playbooks"),
        ("- {id: an, tiers: [L1], calendar: night}\n", "calendar 'night' is not a calendar"),
    ],
)
def test_bad_rosters_are_one_line_errors(
    tmp_path: Path, roster: str, message: str | None, store: Store
) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(roster, encoding="utf-8")
    pb = carepath.loads(PLAYBOOK)
    if message is None:
        assert Runtime([pb], store, roster=path).roster == ()
        return
    with pytest.raises(RosterError) as exc:
        Runtime([pb], store, roster=path)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_json_rosters(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    path.write_text(json.dumps(ROSTER), encoding="utf-8")
    assert [a.id for a in load_roster(path)] == ["an", "binh", "chi", "dung"]
    path.write_text("[{", encoding="utf-8")
    with pytest.raises(RosterError, match=r"roster\.json: not JSON"):
        load_roster(path)


# -- capacity under concurrent workers -----------------------------------------------------------
CAPACITY_ROSTER = [
    {"id": "an", "tiers": ["L1"], "capacity": 3},
    {"id": "binh", "tiers": ["L1"], "capacity": 2},
    {"id": "chi", "tiers": ["L1"], "capacity": 4},
]

_WORKER = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timedelta
    import carepath
    from carepath.runtime import Runtime, open_store
    from carepath.runtime.clock import ManualClock

    url, playbook, roster, first, n, strategy = sys.argv[1:7]
    t0 = datetime(2027, 2, 1, 9, 0).astimezone()
    rt = Runtime([carepath.loads(open(playbook).read())], open_store(url),
                 clock=ManualClock(datetime.fromisoformat("2027-02-01T09:00:00+00:00")),
                 roster=json.loads(roster))
    print("ready", flush=True)
    sys.stdin.readline()
    for k in range(int(first), int(first) + int(n)):
        rt.submit({"id": f"o{k}", "type": "ticket.opened", "at": "2027-02-01T09:00:00+00:00",
                   "case": f"T-{k}", "data": {"strategy": strategy}})
        if k % 3 == 0:
            rt.submit({"id": f"c{k}", "type": "ticket.closed", "at": "2027-02-01T09:00:00+00:00",
                       "case": f"T-{k}"})
        rt.run_due()
    print("done", flush=True)
""")


def _holders(store: Store) -> dict[str, int]:
    held: dict[str, int] = {}
    for s in store.cases():
        if not s.ended and s.data.get("assignee"):
            held[s.data["assignee"]] = held.get(s.data["assignee"], 0) + 1
    return held


def _check_capacity(store: Store) -> None:
    caps = {a["id"]: a["capacity"] for a in CAPACITY_ROSTER}
    held = _holders(store)
    assert all(held.get(a, 0) <= c for a, c in caps.items()), held
    assert held == store.atomic(lambda tx: tx.agent_loads())  # the store's load is the truth


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded"])
def test_worker_processes_never_exceed_capacity(url: str, tmp_path: Path, strategy: str) -> None:
    playbook = tmp_path / "desk.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    open_store(url).close()  # migrate once
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                url,
                str(playbook),
                json.dumps(CAPACITY_ROSTER),
                str(w * 100),
                "20",
                strategy,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for w in range(2)
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
    assert [p.returncode for p in procs] == [0, 0], outs
    store = open_store(url)
    try:
        _check_capacity(store)
        assert sum(_holders(store).values()) == 9  # every place is taken: 27 open cases
    finally:
        store.close()


def test_worker_threads_never_exceed_capacity(url: str) -> None:
    pb = carepath.loads(PLAYBOOK)
    stores = [open_store(url) for _ in range(2)]
    clock = ManualClock(T0)
    runtimes = [Runtime([pb], stores[n], clock=clock, roster=CAPACITY_ROSTER) for n in range(2)]
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            go.wait()
            for k in range(n * 100, n * 100 + 15):
                runtimes[n].submit(_open(k, strategy="least_loaded"))
                if k % 4 == 0:
                    runtimes[n].submit(_close(k, T0))
                runtimes[n].run_due()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    try:
        assert not errors
        _check_capacity(stores[0])
    finally:
        for s in stores:
            s.close()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["open", "close", "poll"]),
        st.integers(0, 1),  # which worker
        st.integers(0, 11),  # which case
        st.sampled_from(["round_robin", "least_loaded"]),
    ),
    max_size=30,
)


@pytest.mark.parametrize("kind", sorted(URLS))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_any_interleaving_keeps_capacity_and_loads_true(
    kind: str, tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int, str]]
) -> None:
    url = URLS[kind](tmp_path_factory.mktemp("alloc"))
    store = open_store(url)
    try:
        pb = carepath.loads(PLAYBOOK)
        clock = ManualClock(T0)
        workers = [Runtime([pb], store, clock=clock, roster=CAPACITY_ROSTER) for _ in range(2)]
        for i, (op, w, k, strategy) in enumerate(ops):
            clock.advance(1)
            rt = workers[w]
            if op == "open":
                rt.submit(_open(k, clock.now, strategy=strategy) | {"id": f"o{k}-{i}"})
            elif op == "close":
                rt.submit(_close(k, clock.now) | {"id": f"c{k}-{i}"})
            else:
                rt.run_due()
            _check_capacity(store)
        # a poll leaves nobody queued while somebody is free
        workers[0].run_due()
        queued = store.atomic(lambda tx: tx.queued_assignments(100))
        if queued:
            caps = {a["id"]: a["capacity"] for a in CAPACITY_ROSTER}
            held = _holders(store)
            assert all(held.get(a, 0) == c for a, c in caps.items())
    finally:
        if hasattr(store, "drop"):
            store.drop()
        store.close()


def test_a_store_of_schema_1_is_migrated_with_its_cases(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'old.db'}"
    s = open_store(url)
    Runtime([carepath.loads(PLAYBOOK)], s, clock=ManualClock(T0)).submit(_open(0))
    s.close()
    c = sqlite3.connect(tmp_path / "old.db")  # back to what the schema-1 release wrote
    for t in ("assignments", "alloc_last", "alloc_queue"):
        c.execute(f"DROP TABLE {t}")
    c.execute("PRAGMA user_version = 1")
    c.commit()
    c.close()
    s = open_store(url)
    try:
        assert s.schema_version() == 3
        rt = Runtime([carepath.loads(PLAYBOOK)], s, clock=ManualClock(T0), roster=ROSTER)
        rt.submit(_open(1))
        assert _assignee(s, 0) is None and _assignee(s, 1) == "an"
    finally:
        s.close()
